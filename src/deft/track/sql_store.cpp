// The StudyStore over a SqlConnection: every query and rule, once for both backends.
//
// Every public call is one transaction, run by transact() (SqlTransactions, below): a
// write transaction takes the write lock first, and a transaction that finds the
// database busy or loses a race (TransientDbError) is rolled back and run again after
// a jittered, growing pause, so concurrent processes never see "database is locked".
// Trial numbers come from the per-study counter studies.next_number, incremented inside
// the transaction that creates the trial (the row lock on PostgreSQL, the write lock on
// SQLite make it atomic).
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <unistd.h>

#include "deft/track/sql_store.h"

namespace deft::track {

namespace {

using json = nlohmann::json;

SqlValue real(double v) { return std::isnan(v) ? SqlValue{} : SqlValue{v}; }  // NaN is stored as NULL
SqlValue integer(int64_t v) { return SqlValue{v}; }
SqlValue text(std::string v) { return SqlValue{std::move(v)}; }

class SqlStudyStore final : public StudyStore {
 public:
  explicit SqlStudyStore(std::unique_ptr<SqlConnection> db) : db_(std::move(db)), tx_(*db_) { init_schema(*db_, tx_); }

  std::string url() const override { return db_->url(); }

  int64_t create_study(const std::string& name, const std::vector<Direction>& directions) override {
    DEFT_CHECK(!name.empty(), "{}: a study needs a name", url());
    DEFT_CHECK(!directions.empty(), "{}: study '{}' needs at least one direction", url(), name);
    json dirs = json::array();
    for (Direction d : directions) dirs.push_back(to_string(d));
    return transact(true, [&] {
      const std::string find = "SELECT id, directions FROM studies WHERE name = ?";
      auto rows = db_->query(find, {text(name)});
      if (rows.empty()) {  // another process may be creating it right now: then theirs is kept
        db_->query("INSERT INTO studies (name, directions, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING",
                   {text(name), text(dirs.dump()), real(unix_now())});
        rows = db_->query(find, {text(name)});
      }
      const std::string stored = sql_text(rows[0][1]);
      DEFT_CHECK(json::parse(stored) == dirs, "{}: study '{}' exists with directions {}, not {}", url(), name, stored,
                 dirs.dump());
      return sql_int(rows[0][0]);
    });
  }

  std::optional<StudyRecord> find_study(const std::string& name) override {
    return transact(false, [&]() -> std::optional<StudyRecord> {
      auto rows = db_->query("SELECT id FROM studies WHERE name = ?", {text(name)});
      if (rows.empty()) return std::nullopt;
      return load_study(sql_int(rows[0][0]));
    });
  }

  StudyRecord study(int64_t study_id) override {
    return transact(false, [&] { return load_study(study_id); });
  }

  std::vector<StudyRecord> list_studies() override {
    return transact(false, [&] {
      std::vector<StudyRecord> out;
      for (const auto& row : db_->query("SELECT id FROM studies ORDER BY id")) out.push_back(load_study(sql_int(row[0])));
      return out;
    });
  }

  void delete_study(int64_t study_id) override {
    transact(true, [&] {
      check_study(study_id);
      const std::string in_study = " WHERE trial_id IN (SELECT id FROM trials WHERE study_id = ?)";
      for (const char* table : {"trial_params", "trial_values", "trial_intermediate_values", "trial_user_attrs",
                                "trial_system_attrs"})
        db_->query(std::string("DELETE FROM ") + table + in_study, {integer(study_id)});
      for (const char* table : {"trials", "study_user_attrs", "study_system_attrs"})
        db_->query(std::string("DELETE FROM ") + table + " WHERE study_id = ?", {integer(study_id)});
      db_->query("DELETE FROM studies WHERE id = ?", {integer(study_id)});
      return 0;
    });
  }

  void set_study_user_attr(int64_t study_id, const std::string& key, const json& v) override {
    set_study_attr("study_user_attrs", study_id, key, v);
  }
  void set_study_system_attr(int64_t study_id, const std::string& key, const json& v) override {
    set_study_attr("study_system_attrs", study_id, key, v);
  }

  TrialRecord start_trial(int64_t study_id) override {
    const int64_t id = transact(true, [&] {
      lock_study(study_id);
      const double now = unix_now();
      auto waiting = db_->query("SELECT id FROM trials WHERE study_id = ? AND state = 'waiting' ORDER BY number LIMIT 1" +
                                    db_->for_update(),
                                {integer(study_id)});
      if (!waiting.empty()) {
        const int64_t tid = sql_int(waiting[0][0]);
        db_->query("UPDATE trials SET state = 'running', start_time = ?, heartbeat = ? WHERE id = ?",
                   {real(now), real(now), integer(tid)});
        return tid;
      }
      return insert_trial(study_id, "running", now);
    });
    return trial(id);
  }

  int64_t enqueue_trial(int64_t study_id, const std::map<std::string, double>& params,
                        const std::map<std::string, Distribution>& distributions, const json& system_attrs) override {
    DEFT_CHECK(system_attrs.is_null() || system_attrs.is_object(), "{}: trial system attrs must be a JSON object",
               url());
    for (const auto& [name, v] : params)
      DEFT_CHECK(distributions.count(name), "{}: enqueued parameter '{}' (value {}) has no distribution", url(), name,
                 v);
    return transact(true, [&] {
      lock_study(study_id);
      const int64_t tid = insert_trial(study_id, "waiting", 0);
      for (const auto& [name, v] : params) write_param(tid, name, v, distributions.at(name));
      if (system_attrs.is_object())
        for (const auto& [key, v] : system_attrs.items()) write_attr("trial_system_attrs", "trial_id", tid, key, v);
      return tid;
    });
  }

  void set_param(int64_t trial_id, const std::string& name, double internal, const Distribution& d) override {
    transact(true, [&] {
      lock_running(trial_id);
      write_param(trial_id, name, internal, d);
      return 0;
    });
  }

  void report(int64_t trial_id, int64_t step, const std::vector<double>& values) override {
    transact(true, [&] {
      const auto t = lock_running(trial_id);
      check_value_count(t, values);
      for (size_t k = 0; k < values.size(); ++k)
        db_->query(
            "INSERT INTO trial_intermediate_values (trial_id, step, objective, value) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (trial_id, step, objective) DO UPDATE SET value = excluded.value",
            {integer(trial_id), integer(step), integer(static_cast<int64_t>(k)), real(values[k])});
      return 0;
    });
  }

  void set_trial_user_attr(int64_t trial_id, const std::string& key, const json& v) override {
    transact(true, [&] {
      lock_running(trial_id);
      write_attr("trial_user_attrs", "trial_id", trial_id, key, v);
      return 0;
    });
  }

  void set_trial_system_attr(int64_t trial_id, const std::string& key, const json& v) override {
    transact(true, [&] {
      lock_running(trial_id);
      write_attr("trial_system_attrs", "trial_id", trial_id, key, v);
      return 0;
    });
  }

  bool finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values) override {
    DEFT_CHECK(is_finished(state), "{}: finish_trial needs complete, pruned or fail, not {}", url(), to_string(state));
    return transact(true, [&] {
      const auto t = lock_trial(trial_id);
      if (t.state != TrialState::Running) return false;
      std::vector<double> vals = values;
      if (state == TrialState::Pruned && vals.empty()) {  // a pruned trial's value is its last intermediate one
        auto last = db_->query(
            "SELECT objective, value FROM trial_intermediate_values WHERE trial_id = ? AND step = "
            "(SELECT MAX(step) FROM trial_intermediate_values WHERE trial_id = ?) ORDER BY objective",
            {integer(trial_id), integer(trial_id)});
        for (const auto& row : last) vals.push_back(sql_real(row[1]));
      }
      if (state == TrialState::Complete || !vals.empty()) check_value_count(t, vals);
      db_->query("DELETE FROM trial_values WHERE trial_id = ?", {integer(trial_id)});
      for (size_t k = 0; k < vals.size(); ++k)
        db_->query("INSERT INTO trial_values (trial_id, objective, value) VALUES (?, ?, ?)",
                   {integer(trial_id), integer(static_cast<int64_t>(k)), real(vals[k])});
      db_->query("UPDATE trials SET state = ?, end_time = ? WHERE id = ?",
                 {text(to_string(state)), real(unix_now()), integer(trial_id)});
      return true;
    });
  }

  // A heartbeat for a trial that is no longer running changes nothing: the worker's
  // heartbeat thread may outlive the trial by a beat; its next write reports the state.
  void heartbeat(int64_t trial_id) override {
    transact(true, [&] {
      db_->query("UPDATE trials SET heartbeat = ? WHERE id = ? AND state = 'running'",
                 {real(unix_now()), integer(trial_id)});
      return 0;
    });
  }

  std::vector<int64_t> fail_stale_trials(int64_t study_id, double grace_s, int max_retries) override {
    return transact(true, [&] {
      lock_study(study_id);
      const double now = unix_now();
      auto stale = db_->query(
          "SELECT id, number FROM trials WHERE study_id = ? AND state = 'running' AND heartbeat < ? ORDER BY number" +
              db_->for_update(),
          {integer(study_id), real(now - grace_s)});
      std::vector<int64_t> failed;
      for (const auto& row : stale) {
        const int64_t tid = sql_int(row[0]);
        failed.push_back(sql_int(row[1]));
        db_->query("UPDATE trials SET state = 'fail', end_time = ? WHERE id = ?", {real(now), integer(tid)});
        const json sys = load_attrs("trial_system_attrs", "trial_id", tid);
        const int64_t origin = sys.contains("retry_of") ? sys["retry_of"].get<int64_t>() : sql_int(row[1]);
        const int64_t retries = sys.value("retries", int64_t{0}) + 1;
        if (retries > max_retries) continue;
        const int64_t retry = insert_trial(study_id, "waiting", 0);
        db_->query(
            "INSERT INTO trial_params (trial_id, name, value, distribution) "
            "SELECT CAST(? AS BIGINT), name, value, distribution FROM trial_params WHERE trial_id = ?",
            {integer(retry), integer(tid)});
        write_attr("trial_system_attrs", "trial_id", retry, "retry_of", origin);
        write_attr("trial_system_attrs", "trial_id", retry, "retries", retries);
      }
      return failed;
    });
  }

  TrialRecord trial(int64_t trial_id) override {
    return transact(false, [&] {
      auto rows = load_trials("WHERE id = ?", {integer(trial_id)});
      DEFT_CHECK(!rows.empty(), "{}: no trial with id {}", url(), trial_id);
      return std::move(rows[0]);
    });
  }

  std::vector<TrialRecord> trials(int64_t study_id) override {
    return transact(false, [&] {
      check_study(study_id);
      return load_trials("WHERE study_id = ?", {integer(study_id)});
    });
  }

  std::vector<TrialRecord> trials_from(int64_t study_id, int64_t first_number) override {
    return transact(false, [&] {
      check_study(study_id);
      return load_trials("WHERE study_id = ? AND number >= ?", {integer(study_id), integer(first_number)});
    });
  }

 private:
  struct TrialHead {
    int64_t number, study_id;
    TrialState state;
    size_t n_objectives;
  };

  template <class Fn>
  auto transact(bool write, Fn&& fn) -> decltype(fn()) {
    return tx_.run(write, std::forward<Fn>(fn));
  }

  void check_study(int64_t study_id) {
    DEFT_CHECK(!db_->query("SELECT id FROM studies WHERE id = ?", {integer(study_id)}).empty(),
               "{}: no study with id {}", url(), study_id);
  }

  // Serialises the transactions that number trials of one study.
  void lock_study(int64_t study_id) {
    DEFT_CHECK(!db_->query("SELECT id FROM studies WHERE id = ?" + db_->for_update(), {integer(study_id)}).empty(),
               "{}: no study with id {}", url(), study_id);
  }

  int64_t insert_trial(int64_t study_id, const char* state, double now) {
    auto next = db_->query("UPDATE studies SET next_number = next_number + 1 WHERE id = ? RETURNING next_number",
                           {integer(study_id)});
    const int64_t number = sql_int(next[0][0]) - 1;
    auto rows = db_->query(
        "INSERT INTO trials (study_id, number, state, start_time, end_time, heartbeat) VALUES (?, ?, ?, ?, 0, ?) "
        "RETURNING id",
        {integer(study_id), integer(number), text(state), real(now), real(now)});
    return sql_int(rows[0][0]);
  }

  TrialHead lock_trial(int64_t trial_id) {
    auto rows = db_->query("SELECT number, study_id, state FROM trials WHERE id = ?" + db_->for_update(),
                           {integer(trial_id)});
    DEFT_CHECK(!rows.empty(), "{}: no trial with id {}", url(), trial_id);
    const int64_t study_id = sql_int(rows[0][1]);
    auto dirs = db_->query("SELECT directions FROM studies WHERE id = ?", {integer(study_id)});
    return {sql_int(rows[0][0]), study_id, trial_state_from_string(sql_text(rows[0][2])),
            json::parse(sql_text(dirs.at(0)[0])).size()};
  }

  TrialHead lock_running(int64_t trial_id) {
    TrialHead t = lock_trial(trial_id);
    if (t.state != TrialState::Running) {
      const auto name = db_->query("SELECT name FROM studies WHERE id = ?", {integer(t.study_id)});
      fail("{}: trial {} of study '{}' is {}, not running", url(), t.number, sql_text(name.at(0)[0]),
           to_string(t.state));
    }
    return t;
  }

  void check_value_count(const TrialHead& t, const std::vector<double>& values) {
    DEFT_CHECK(values.size() == t.n_objectives, "{}: trial {} has {} objective(s), got {} value(s)", url(), t.number,
               t.n_objectives, values.size());
  }

  void write_param(int64_t trial_id, const std::string& name, double internal, const Distribution& d) {
    db_->query(
        "INSERT INTO trial_params (trial_id, name, value, distribution) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (trial_id, name) DO UPDATE SET value = excluded.value, distribution = excluded.distribution",
        {integer(trial_id), text(name), real(internal), text(d.to_json().dump())});
  }

  void write_attr(const char* table, const char* owner, int64_t owner_id, const std::string& key, const json& v) {
    db_->query(std::string("INSERT INTO ") + table + " (" + owner + ", key, value_json) VALUES (?, ?, ?) " +
                   "ON CONFLICT (" + owner + ", key) DO UPDATE SET value_json = excluded.value_json",
               {integer(owner_id), text(key), text(v.dump())});
  }

  void set_study_attr(const char* table, int64_t study_id, const std::string& key, const json& v) {
    transact(true, [&] {
      check_study(study_id);
      write_attr(table, "study_id", study_id, key, v);
      return 0;
    });
  }

  json load_attrs(const char* table, const char* owner, int64_t owner_id) {
    json out = json::object();
    for (const auto& row : db_->query(std::string("SELECT key, value_json FROM ") + table + " WHERE " + owner + " = ?",
                                      {integer(owner_id)}))
      out[sql_text(row[0])] = json::parse(sql_text(row[1]));
    return out;
  }

  StudyRecord load_study(int64_t study_id) {
    auto rows = db_->query("SELECT id, name, directions, created FROM studies WHERE id = ?", {integer(study_id)});
    DEFT_CHECK(!rows.empty(), "{}: no study with id {}", url(), study_id);
    StudyRecord s;
    s.id = sql_int(rows[0][0]);
    s.name = sql_text(rows[0][1]);
    for (const auto& d : json::parse(sql_text(rows[0][2]))) s.directions.push_back(direction_from_string(d));
    s.created = sql_real(rows[0][3]);
    s.user_attrs = load_attrs("study_user_attrs", "study_id", study_id);
    s.system_attrs = load_attrs("study_system_attrs", "study_id", study_id);
    for (const auto& row :
         db_->query("SELECT state, COUNT(*) FROM trials WHERE study_id = ? GROUP BY state", {integer(study_id)})) {
      const int64_t n = sql_int(row[1]);
      s.counts[trial_state_from_string(sql_text(row[0]))] = n;
      s.n_trials += n;
    }
    return s;
  }

  // Trials matching `where` (over the trials table), ordered by number, with
  // everything that belongs to them: six queries however many trials.
  std::vector<TrialRecord> load_trials(const std::string& where, const std::vector<SqlValue>& args) {
    std::vector<TrialRecord> out;
    std::map<int64_t, size_t> at;
    for (const auto& row : db_->query(
             "SELECT id, study_id, number, state, start_time, end_time, heartbeat FROM trials " + where +
                 " ORDER BY number",
             args)) {
      TrialRecord t;
      t.id = sql_int(row[0]);
      t.study_id = sql_int(row[1]);
      t.number = sql_int(row[2]);
      t.state = trial_state_from_string(sql_text(row[3]));
      t.start_time = sql_real(row[4]);
      t.end_time = sql_real(row[5]);
      t.heartbeat = sql_real(row[6]);
      at[t.id] = out.size();
      out.push_back(std::move(t));
    }
    if (out.empty()) return out;
    const std::string of_these = " WHERE trial_id IN (SELECT id FROM trials " + where + ")";
    for (const auto& row : db_->query("SELECT trial_id, name, value, distribution FROM trial_params" + of_these, args)) {
      TrialRecord& t = out[at.at(sql_int(row[0]))];
      const std::string name = sql_text(row[1]);
      t.params[name] = sql_real(row[2]);
      t.distributions.emplace(name, Distribution::from_json(json::parse(sql_text(row[3]))));
    }
    for (const auto& row :
         db_->query("SELECT trial_id, objective, value FROM trial_values" + of_these + " ORDER BY trial_id, objective",
                    args))
      out[at.at(sql_int(row[0]))].values.push_back(sql_real(row[2]));
    for (const auto& row : db_->query("SELECT trial_id, step, objective, value FROM trial_intermediate_values" +
                                          of_these + " ORDER BY trial_id, step, objective",
                                      args))
      out[at.at(sql_int(row[0]))].intermediate[sql_int(row[1])].push_back(sql_real(row[3]));
    for (const auto& row : db_->query("SELECT trial_id, key, value_json FROM trial_user_attrs" + of_these, args))
      out[at.at(sql_int(row[0]))].user_attrs[sql_text(row[1])] = json::parse(sql_text(row[2]));
    for (const auto& row : db_->query("SELECT trial_id, key, value_json FROM trial_system_attrs" + of_these, args))
      out[at.at(sql_int(row[0]))].system_attrs[sql_text(row[1])] = json::parse(sql_text(row[2]));
    return out;
  }

  std::unique_ptr<SqlConnection> db_;
  SqlTransactions tx_;  // one transaction at a time on the connection (e.g. a heartbeat thread)
};

}  // namespace

SqlTransactions::SqlTransactions(SqlConnection& db)
    : db_(db), rng_(std::random_device{}() ^ static_cast<unsigned>(getpid())) {}

void SqlTransactions::wait_to_retry(std::chrono::steady_clock::time_point start, double& pause_ms,
                                    const TransientDbError& e) {
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (waited > kMaxBusySeconds)
    fail<Error>("{}: the database stayed busy for {:.0f} s: {}", db_.url(), waited, e.what());
  std::uniform_real_distribution<double> jitter(0.5, 1.5);
  std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(pause_ms * jitter(rng_)));
  pause_ms = std::min(pause_ms * 2, 100.0);
}

void init_schema(SqlConnection& db, SqlTransactions& tx) {
  try {
    tx.run(true, [&] {
      db.lock_schema();
      db.exec_script("CREATE TABLE IF NOT EXISTS deft_schema (version INTEGER NOT NULL)");
      auto rows = db.query("SELECT version FROM deft_schema");
      if (rows.empty()) {
        db.exec_script(schema_sql(db.dialect()));
        db.query("INSERT INTO deft_schema (version) VALUES (?)", {integer(kSchemaVersion)});
        return 0;
      }
      const int64_t version = sql_int(rows[0][0]);
      DEFT_CHECK(rows.size() == 1 && version >= 1 && version <= kSchemaVersion,
                 "{}: the store has schema version {}, this deft reads versions 1 to {} (a newer deft wrote it?)",
                 db.url(), version, kSchemaVersion);
      if (version < kSchemaVersion) {  // an older deft's database: add what later versions have
        db.exec_script(schema_upgrade_sql(db.dialect(), version));
        db.query("UPDATE deft_schema SET version = ?", {integer(kSchemaVersion)});
      }
      return 0;
    });
  } catch (const InputError&) {
    throw;
  } catch (const Error& e) {  // not a database, unreadable, ...: the user's URL or file
    throw InputError(e.what());
  }
}

std::unique_ptr<StudyStore> make_sql_study_store(std::unique_ptr<SqlConnection> db) {
  return std::make_unique<SqlStudyStore>(std::move(db));
}

}  // namespace deft::track
