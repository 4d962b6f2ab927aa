// The RunStore over a SqlConnection (one implementation for SQLite and PostgreSQL),
// system_info(), and RunSignalGuard.
//
// Every public call is one transaction through SqlTransactions (retried while the
// database is busy). JSON fields are stored as JSON text; a metric batch is written
// with multi-row upserts of 100, then 10, then 1 rows, so a batch costs one
// transaction and a handful of statements, each prepared once per connection.
#include <dnnl.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "deft/tensor/parallel.h"
#include "deft/track/sql_store.h"
#include "deft/version.h"

namespace deft::track {

using json = nlohmann::json;

std::string to_string(RunStatus s) {
  switch (s) {
    case RunStatus::Running: return "running";
    case RunStatus::Finished: return "finished";
    case RunStatus::Failed: return "failed";
    case RunStatus::Killed: return "killed";
  }
  return "?";
}

RunStatus run_status_from_string(const std::string& s) {
  for (RunStatus r : {RunStatus::Running, RunStatus::Finished, RunStatus::Failed, RunStatus::Killed})
    if (to_string(r) == s) return r;
  fail("run status '{}' is not one of running, finished, failed, killed", s);
}

double RunRecord::duration() const {
  const double end = end_time > 0 ? end_time : heartbeat;
  return end > start_time ? end - start_time : 0.0;
}

namespace {

SqlValue real(double v) { return std::isnan(v) ? SqlValue{} : SqlValue{v}; }  // NaN is stored as NULL
SqlValue integer(int64_t v) { return SqlValue{v}; }
SqlValue text(std::string v) { return SqlValue{std::move(v)}; }

std::string host_name() {
  char buf[256] = {};
  if (gethostname(buf, sizeof buf - 1) != 0) return "";
  return buf;
}

// The start of process `pid` in clock ticks after boot (/proc/PID/stat field 22): a
// process id and its start identify a process even when the id is reused. -1 when
// there is no such process (or it is a zombie), 0 when /proc cannot tell.
int64_t process_start(int64_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) {
    if (kill(static_cast<pid_t>(pid), 0) == -1 && errno == ESRCH) return -1;
    return 0;
  }
  std::string line;
  std::getline(f, line);
  const size_t close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream in(line.substr(close + 1));
  std::string field;
  in >> field;  // field 3, the state
  if (field == "Z" || field == "X") return -1;
  for (int k = 4; k < 22 && in >> field;) ++k;
  int64_t start = 0;
  return in >> start ? start : 0;
}

bool process_alive(int64_t pid, int64_t start) {
  if (pid <= 0) return true;  // unknown: leave it alone
  const int64_t now = process_start(pid);
  if (now < 0) return false;
  return start <= 0 || now <= 0 || now == start;
}

json parse_object(const SqlValue& v) {
  if (sql_null(v)) return json::object();
  json j = json::parse(sql_text(v), nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

bool all_digits(const std::string& s) {
  return !s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos;
}

const char* kRunColumns =
    "id, name, command, study, trial_number, status, config_json, params_json, system_json, artifacts_json, "
    "summary_json, start_time, end_time, heartbeat, host, pid";

RunRecord record_from_row(const SqlRow& row) {
  RunRecord r;
  r.id = sql_int(row[0]);
  r.name = sql_text(row[1]);
  r.command = sql_text(row[2]);
  r.study = sql_text(row[3]);
  r.trial_number = sql_int(row[4]);
  r.status = run_status_from_string(sql_text(row[5]));
  r.config = parse_object(row[6]);
  r.params = parse_object(row[7]);
  r.system = parse_object(row[8]);
  r.artifacts = parse_object(row[9]);
  r.summary = parse_object(row[10]);
  r.start_time = sql_real(row[11]);
  r.end_time = sql_real(row[12]);
  r.heartbeat = sql_real(row[13]);
  r.host = sql_text(row[14]);
  r.pid = sql_int(row[15]);
  return r;
}

// "INSERT ... VALUES (?, ?, ?, ?, ?), ... ON CONFLICT ... DO UPDATE": n rows at once.
std::string upsert_metrics_sql(size_t n) {
  std::string sql = "INSERT INTO run_metrics (run_id, key, step, value, wall_time) VALUES ";
  for (size_t i = 0; i < n; ++i) sql += i ? ", (?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?)";
  return sql + " ON CONFLICT (run_id, key, step) DO UPDATE SET value = excluded.value, wall_time = excluded.wall_time";
}

class SqlRunStore final : public RunStore {
 public:
  explicit SqlRunStore(std::unique_ptr<SqlConnection> db)
      : db_(std::move(db)), tx_(*db_), host_(host_name()), pid_(getpid()), pid_start_(process_start(getpid())) {
    init_schema(*db_, tx_);
  }

  std::string url() const override { return db_->url(); }

  int64_t create_run(const RunRecord& r) override {
    const std::pair<const char*, const json*> fields[] = {
        {"config", &r.config}, {"params", &r.params}, {"system", &r.system}, {"artifacts", &r.artifacts},
        {"summary", &r.summary}};
    for (const auto& [field, j] : fields)
      DEFT_CHECK(j->is_object() || j->is_null(), "{}: run '{}': {} must be a JSON object, got {}", url(), r.name, field,
                 j->dump());
    const double start = r.start_time > 0 ? r.start_time : unix_now();
    static std::atomic<int64_t> counter{0};
    return transact(true, [&] {
      // An unnamed run is inserted under a name no user gives, then named after its id.
      const std::string name =
          r.name.empty() ? fmt::format("\x01new-{}-{}-{}", host_, pid_, counter.fetch_add(1)) : r.name;
      auto rows = db_->query(
          "INSERT INTO runs (name, command, study, trial_number, status, config_json, params_json, system_json, "
          "artifacts_json, summary_json, start_time, end_time, heartbeat, host, pid, pid_start) "
          "VALUES (?, ?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
          {text(name), text(r.command), text(r.study), integer(r.trial_number), text(object_text(r.config)),
           text(object_text(r.params)), text(object_text(r.system)), text(object_text(r.artifacts)),
           text(object_text(r.summary)), real(start), real(start), text(host_), integer(pid_), integer(pid_start_)});
      DEFT_CHECK(!rows.empty(), "{}: a run named '{}' exists already (run names are unique)", url(), r.name);
      const int64_t id = sql_int(rows[0][0]);
      if (r.name.empty()) {
        std::string auto_name = fmt::format("run-{}", id);
        for (int k = 2; !db_->query("SELECT id FROM runs WHERE name = ?", {text(auto_name)}).empty(); ++k)
          auto_name = fmt::format("run-{}-{}", id, k);
        db_->query("UPDATE runs SET name = ? WHERE id = ?", {text(auto_name), integer(id)});
      }
      return id;
    });
  }

  void set_params(int64_t run_id, const json& params) override { merge_into(run_id, "params_json", "params", params); }
  void set_system(int64_t run_id, const json& system) override { merge_into(run_id, "system_json", "system", system); }

  void set_config(int64_t run_id, const json& config) override {
    DEFT_CHECK(config.is_object(), "{}: run {}: config must be a JSON object, got {}", url(), run_id, config.dump());
    transact(true, [&] {
      check_run(run_id);
      db_->query("UPDATE runs SET config_json = ?, heartbeat = ? WHERE id = ?",
                 {text(config.dump()), real(unix_now()), integer(run_id)});
      return 0;
    });
  }

  void set_artifact(int64_t run_id, const std::string& name, const std::string& path) override {
    DEFT_CHECK(!name.empty(), "{}: run {}: an artifact needs a name (path '{}')", url(), run_id, path);
    merge_into(run_id, "artifacts_json", "artifacts", json{{name, path}});
  }

  void log_metrics(int64_t run_id, const std::vector<MetricPoint>& points) override {
    // A (key, step) given twice keeps its last value: one statement may not upsert a row twice.
    std::map<std::pair<std::string, int64_t>, size_t> last;
    for (size_t i = 0; i < points.size(); ++i) {
      DEFT_CHECK(!points[i].key.empty(), "{}: run {}: metric point {} (step {}) has no key", url(), run_id, i,
                 points[i].step);
      last[{points[i].key, points[i].step}] = i;
    }
    std::vector<size_t> order;
    order.reserve(last.size());
    for (const auto& [key, i] : last) order.push_back(i);
    std::sort(order.begin(), order.end());
    const double now = unix_now();
    transact(true, [&] {
      check_run(run_id);
      size_t at = 0;
      std::vector<SqlValue> args;
      for (size_t chunk : {size_t{100}, size_t{10}, size_t{1}}) {
        const std::string& sql = upsert_sql(chunk);
        for (; order.size() - at >= chunk; at += chunk) {
          args.clear();
          for (size_t i = at; i < at + chunk; ++i) {
            const MetricPoint& p = points[order[i]];
            args.insert(args.end(), {integer(run_id), text(p.key), integer(p.step), real(p.value),
                                     real(p.time > 0 ? p.time : now)});
          }
          db_->query(sql, args);
        }
      }
      db_->query("UPDATE runs SET heartbeat = ? WHERE id = ?", {real(now), integer(run_id)});
      return 0;
    });
  }

  void finish_run(int64_t run_id, RunStatus status, const json& summary) override {
    DEFT_CHECK(status != RunStatus::Running, "{}: run {}: finish_run needs finished, failed or killed", url(), run_id);
    DEFT_CHECK(summary.is_object() || summary.is_null(), "{}: run {}: summary must be a JSON object, got {}", url(),
               run_id, summary.dump());
    transact(true, [&] {
      json merged = load_column(run_id, "summary_json");
      if (summary.is_object()) merged.update(summary);
      const double now = unix_now();
      db_->query("UPDATE runs SET status = ?, summary_json = ?, end_time = ?, heartbeat = ? WHERE id = ?",
                 {text(to_string(status)), text(merged.dump()), real(now), real(now), integer(run_id)});
      return 0;
    });
  }

  std::optional<RunRecord> find_run(const std::string& name_or_id) override {
    return transact(false, [&]() -> std::optional<RunRecord> {
      auto rows = db_->query(std::string("SELECT ") + kRunColumns + " FROM runs WHERE name = ?", {text(name_or_id)});
      if (rows.empty() && all_digits(name_or_id))
        rows = db_->query(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?",
                          {integer(std::stoll(name_or_id))});
      if (rows.empty()) return std::nullopt;
      return record_from_row(rows[0]);
    });
  }

  RunRecord run(int64_t run_id) override {
    return transact(false, [&] {
      auto rows = db_->query(std::string("SELECT ") + kRunColumns + " FROM runs WHERE id = ?", {integer(run_id)});
      DEFT_CHECK(!rows.empty(), "{}: no run with id {}", url(), run_id);
      return record_from_row(rows[0]);
    });
  }

  std::vector<RunRecord> list_runs(const RunFilter& f) override {
    std::string sql = std::string("SELECT ") + kRunColumns + " FROM runs";
    std::vector<SqlValue> args;
    std::string where;
    auto filter = [&](const char* column, const std::string& v) {
      if (v.empty()) return;
      where += (where.empty() ? " WHERE " : " AND ") + std::string(column) + " = ?";
      args.push_back(text(v));
    };
    filter("study", f.study);
    filter("command", f.command);
    filter("status", f.status);
    sql += where + " ORDER BY id DESC";
    if (f.limit > 0) {
      sql += " LIMIT ?";
      args.push_back(integer(f.limit));
    }
    return transact(false, [&] {
      std::vector<RunRecord> out;
      for (const auto& row : db_->query(sql, args)) out.push_back(record_from_row(row));
      return out;
    });
  }

  std::vector<std::string> metric_keys(int64_t run_id) override {
    return transact(false, [&] {
      check_run(run_id, false);
      std::vector<std::string> out;
      for (const auto& row :
           db_->query("SELECT DISTINCT key FROM run_metrics WHERE run_id = ? ORDER BY key", {integer(run_id)}))
        out.push_back(sql_text(row[0]));
      return out;
    });
  }

  std::vector<MetricPoint> metrics(int64_t run_id, const std::string& key) override {
    return transact(false, [&] {
      check_run(run_id, false);
      auto rows = key.empty() ? db_->query(
                                    "SELECT key, step, value, wall_time FROM run_metrics WHERE run_id = ? "
                                    "ORDER BY key, step",
                                    {integer(run_id)})
                              : db_->query(
                                    "SELECT key, step, value, wall_time FROM run_metrics WHERE run_id = ? AND key = ? "
                                    "ORDER BY step",
                                    {integer(run_id), text(key)});
      std::vector<MetricPoint> out;
      out.reserve(rows.size());
      for (const auto& row : rows) out.push_back({sql_text(row[0]), sql_int(row[1]), sql_real(row[2]), sql_real(row[3])});
      return out;
    });
  }

  void delete_run(int64_t run_id) override {
    transact(true, [&] {
      check_run(run_id);
      db_->query("DELETE FROM run_metrics WHERE run_id = ?", {integer(run_id)});
      db_->query("DELETE FROM runs WHERE id = ?", {integer(run_id)});
      return 0;
    });
  }

  std::vector<int64_t> reap_dead_runs() override {
    return transact(true, [&] {
      std::vector<int64_t> reaped;
      auto rows = db_->query(
          "SELECT id, pid, pid_start, heartbeat, summary_json FROM runs WHERE status = 'running' AND host = ?" +
              db_->for_update(),
          {text(host_)});
      for (const auto& row : rows) {
        const int64_t pid = sql_int(row[1]);
        if (process_alive(pid, sql_int(row[2]))) continue;
        const double last_seen = sql_real(row[3]);
        json summary = parse_object(row[4]);
        summary["error"] = fmt::format("the process (pid {} on {}) ended without finishing the run", pid, host_);
        db_->query("UPDATE runs SET status = 'killed', end_time = ?, summary_json = ? WHERE id = ?",
                   {real(last_seen), text(summary.dump()), integer(sql_int(row[0]))});
        reaped.push_back(sql_int(row[0]));
      }
      return reaped;
    });
  }

 private:
  template <class Fn>
  auto transact(bool write, Fn&& fn) -> decltype(fn()) {
    return tx_.run(write, std::forward<Fn>(fn));
  }

  static std::string object_text(const json& j) { return j.is_null() ? "{}" : j.dump(); }

  const std::string& upsert_sql(size_t n) {
    auto it = upsert_sql_.find(n);
    if (it == upsert_sql_.end()) it = upsert_sql_.emplace(n, upsert_metrics_sql(n)).first;
    return it->second;
  }

  // In a write transaction, locks the run's row until the end of it.
  void check_run(int64_t run_id, bool lock = true) {
    DEFT_CHECK(!db_->query("SELECT id FROM runs WHERE id = ?" + (lock ? db_->for_update() : std::string()),
                           {integer(run_id)})
                    .empty(),
               "{}: no run with id {}", url(), run_id);
  }

  // One of the run's JSON columns, locked until the transaction ends.
  json load_column(int64_t run_id, const char* column) {
    auto rows = db_->query(std::string("SELECT ") + column + " FROM runs WHERE id = ?" + db_->for_update(),
                           {integer(run_id)});
    DEFT_CHECK(!rows.empty(), "{}: no run with id {}", url(), run_id);
    return parse_object(rows[0][0]);
  }

  void merge_into(int64_t run_id, const char* column, const char* field, const json& values) {
    DEFT_CHECK(values.is_object(), "{}: run {}: {} must be a JSON object, got {}", url(), run_id, field, values.dump());
    transact(true, [&] {
      json merged = load_column(run_id, column);
      merged.update(values);
      db_->query(std::string("UPDATE runs SET ") + column + " = ?, heartbeat = ? WHERE id = ?",
                 {text(merged.dump()), real(unix_now()), integer(run_id)});
      return 0;
    });
  }

  std::unique_ptr<SqlConnection> db_;
  SqlTransactions tx_;
  std::string host_;
  int64_t pid_, pid_start_;
  std::map<size_t, std::string> upsert_sql_;  // used inside transactions only (under tx_'s lock)
};

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "";
}

}  // namespace

std::unique_ptr<RunStore> make_sql_run_store(std::unique_ptr<SqlConnection> db) {
  return std::make_unique<SqlRunStore>(std::move(db));
}

json system_info() {
  json s;
  s["deft_version"] = DEFT_VERSION;
#ifdef DEFT_GIT_COMMIT
  s["git_commit"] = DEFT_GIT_COMMIT;
#endif
  s["hostname"] = host_name();
  s["cpu_model"] = cpu_model();
  s["logical_cores"] = std::thread::hardware_concurrency();
  s["threads"] = num_threads();
  const dnnl_version_t* dv = dnnl_version();
  s["onednn"] = fmt::format("{}.{}.{}", dv->major, dv->minor, dv->patch);
  s["sqlite"] = sqlite3_libversion();
  const int pq = PQlibVersion();
  s["libpq"] = fmt::format("{}.{}", pq / 10000, pq % 10000);
#if defined(__clang__)
  s["compiler"] = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  s["compiler"] = std::string("gcc ") + __VERSION__;
#else
  s["compiler"] = __VERSION__;
#endif
  utsname u{};
  if (uname(&u) == 0) s["os"] = fmt::format("{} {} {}", u.sysname, u.release, u.machine);
  return s;
}

int64_t create_run_unique(RunStore& store, RunRecord r) {
  if (r.name.empty()) return store.create_run(r);
  const std::string base = r.name;
  for (int k = 2;; ++k) {
    if (!store.find_run(r.name)) {
      try {
        return store.create_run(r);
      } catch (const InputError&) {
        if (!store.find_run(r.name)) throw;  // not the name: another problem
      }
    }
    r.name = fmt::format("{}-{}", base, k);
  }
}

// ---- RunSignalGuard ---------------------------------------------------------------------------

namespace {

std::atomic<int> g_signal_fd{-1};  // the write end of the active guard's pipe; -1: none
static_assert(std::atomic<int>::is_always_lock_free, "read in a signal handler");

extern "C" void on_stop_signal(int sig) {
  const int fd = g_signal_fd.load();
  if (fd < 0) return;
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(sig);
  [[maybe_unused]] const ssize_t n = write(fd, &byte, 1);
  errno = saved;
}

}  // namespace

struct RunSignalGuard::State {
  explicit State(RunStore& s) : store(s) {}
  RunStore& store;
  std::mutex mu;
  std::set<int64_t> runs;
  int fds[2] = {-1, -1};
  std::map<int, struct sigaction> previous;  // the signals whose handler this guard installed
  std::thread watcher;

  // In the watcher thread: marks the runs killed (at most 2 s), then ends the process.
  void on_signal(int sig) {
    std::set<int64_t> ids;
    {
      std::lock_guard<std::mutex> hold(mu);
      ids = runs;
    }
    const std::string why = sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> finished = done->get_future();
    // Detached: a database that does not answer must not keep the process alive.
    std::thread([&store = store, ids, why, done] {
      for (int64_t id : ids) {
        try {
          store.finish_run(id, RunStatus::Killed, {{"error", why}});
        } catch (...) {
        }
      }
      done->set_value();
    }).detach();
    finished.wait_for(std::chrono::seconds(2));
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    raise(sig);
  }
};

RunSignalGuard::RunSignalGuard(RunStore& store) {
  if (g_signal_fd.load() >= 0) return;  // another guard is active
  auto st = std::make_unique<State>(store);
  if (pipe(st->fds) != 0) return;
  for (int fd : st->fds) fcntl(fd, F_SETFD, FD_CLOEXEC);
  g_signal_fd.store(st->fds[1]);
  for (int sig : {SIGINT, SIGTERM}) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0 || (old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction act {};
    act.sa_handler = on_stop_signal;
    sigemptyset(&act.sa_mask);
    act.sa_flags = SA_RESTART | SA_RESETHAND;
    if (sigaction(sig, &act, nullptr) == 0) st->previous[sig] = old;
  }
  if (st->previous.empty()) {
    g_signal_fd.store(-1);
    close(st->fds[0]);
    close(st->fds[1]);
    return;
  }
  State* s = st.get();
  st->watcher = std::thread([s] {
    for (;;) {
      unsigned char byte = 0;
      const ssize_t n = read(s->fds[0], &byte, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || byte == 0) return;  // the guard ends
      s->on_signal(byte);
    }
  });
  state_ = std::move(st);
}

RunSignalGuard::~RunSignalGuard() {
  if (!state_) return;
  for (auto& [sig, old] : state_->previous) sigaction(sig, &old, nullptr);
  g_signal_fd.store(-1);
  const unsigned char stop = 0;
  [[maybe_unused]] const ssize_t n = write(state_->fds[1], &stop, 1);
  state_->watcher.join();
  close(state_->fds[0]);
  close(state_->fds[1]);
}

void RunSignalGuard::watch(int64_t run_id) {
  if (!state_) return;
  std::lock_guard<std::mutex> hold(state_->mu);
  state_->runs.insert(run_id);
}

void RunSignalGuard::unwatch(int64_t run_id) {
  if (!state_) return;
  std::lock_guard<std::mutex> hold(state_->mu);
  state_->runs.erase(run_id);
}

}  // namespace deft::track
