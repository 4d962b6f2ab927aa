// The dashboard server. Routes (GET only; every other method is answered 405):
//
//   /                                       studies and recent runs (HTML)
//   /study/NAME, /run/NAME                  a study, a run (HTML, kept live by the script)
//   /static/dashboard.js, dashboard.css     the embedded assets
//   /api/studies                            {studies: [study_entry]}
//   /api/studies/NAME[/summary]             study_summary
//   /api/studies/NAME/trials?offset=&limit=&sort=&order=&state=&q=   query_trials
//   /api/studies/NAME/trials/NUMBER         one trial in full
//   /api/studies/NAME/plots/KIND.svg        history, intermediate, parallel, importance, pareto
//   /api/runs?study=&command=&limit=        {runs: [...]} newest first
//   /api/runs/NAME, /api/runs/NAME/metrics[?key=], /api/runs/NAME/plots/learning.svg
//
// Path segments are percent-decoded one by one (a study may have '/' in its name).
// Errors are JSON {error} under /api: 404 for an unknown study, run or trial, 400 naming
// the query parameter that was wrong. Study snapshots (dashboard_data.h) are replaced
// whole under snap_mu_ and read without a lock; each plot is rendered once per snapshot
// version, under its own mutex, so concurrent first requests wait for one rendering.
#include "deft/track/dashboard.h"

#include <httplib.h>
#include <sys/socket.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/track/dashboard_assets.h"
#include "deft/track/dashboard_data.h"
#include "deft/track/run_store.h"
#include "deft/track/study_plots.h"
#include "deft/track/study_store.h"

namespace deft::track {

using json = nlohmann::json;
using dash::StudySnapshot;
using Snapshot = std::shared_ptr<const StudySnapshot>;

namespace {

// Above this many running/waiting trials, a refresh reads every trial from the oldest
// open one on in one query instead of reading the open ones one by one.
constexpr size_t kMaxSingleRereads = 32;

// A plot of a changed study is drawn again only when the last drawing is older than
// this many times the drawing took: a big study that changes every second costs at most
// a tenth of a core per plot; meanwhile the older plot is served, marked X-Deft-Stale.
constexpr double kPlotRedrawFactor = 10;

const char* const kPlotKinds[] = {"history", "intermediate", "parallel", "importance", "pareto"};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void reply_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  res.set_content(dump(j), "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message, const std::string& param = "") {
  json j{{"error", message}};
  if (!param.empty()) j["param"] = param;
  reply_json(res, status, j);
}

void reply_html(httplib::Response& res, int status, const std::string& html) {
  res.status = status;
  res.set_header("Cache-Control", "no-store");
  // Defence in depth behind the escaping: no inline or foreign script can run.
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                 "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'");
  res.set_content(html, "text/html; charset=utf-8");
}

void reply_svg(httplib::Response& res, const std::string& svg) {
  res.set_header("Cache-Control", "no-store");
  res.set_content(svg, "image/svg+xml");
}

// gzip, once per plot: the plot of a 10,000-trial study is megabytes, and httplib would
// compress it again for every request.
std::string gzip(const std::string& data) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return {};
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END ? out : std::string();
}

bool accepts_gzip(const httplib::Request& req) {
  return req.get_header_value("Accept-Encoding").find("gzip") != std::string::npos;
}

std::optional<std::string> query_param(const httplib::Request& req, const char* name) {
  if (!req.has_param(name)) return std::nullopt;
  return req.get_param_value(name);
}

std::optional<int64_t> parse_int(const std::string& text) {
  try {
    size_t used = 0;
    const long long v = std::stoll(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

// The path of a request target split at '/', each segment percent-decoded.
std::vector<std::string> path_segments(const std::string& target) {
  std::string_view path(target);
  path = path.substr(0, path.find_first_of("?#"));
  std::vector<std::string> out;
  size_t start = path.empty() || path[0] != '/' ? 0 : 1;
  while (start < path.size()) {
    const size_t slash = std::min(path.find('/', start), path.size());
    out.push_back(dash::percent_decode(path.substr(start, slash - start)));
    start = slash + 1;
  }
  return out;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host == "[::1]" || host.rfind("127.", 0) == 0;
}

// A page on a loopback address answers only requests addressed to a loopback name, so a
// web site the user visits cannot read it by pointing its own name at 127.0.0.1.
bool host_header_allowed(const httplib::Request& req) {
  if (!req.has_header("Host")) return true;
  std::string host = req.get_header_value("Host");
  if (!host.empty() && host[0] == '[') host = host.substr(0, host.find(']') + 1);
  else host = host.substr(0, host.find(':'));
  return is_loopback(host);
}

json run_json(const RunRecord& r, bool full, double now) {
  json j{{"name", r.name},
         {"id", r.id},
         {"command", r.command},
         {"study", r.study.empty() ? json(nullptr) : json(r.study)},
         {"trial_number", r.trial_number >= 0 ? json(r.trial_number) : json(nullptr)},
         {"status", to_string(r.status)},
         {"start_time", r.start_time > 0 ? json(r.start_time) : json(nullptr)},
         {"end_time", r.end_time > 0 ? json(r.end_time) : json(nullptr)},
         {"duration_s", r.start_time > 0 ? json((r.end_time > 0 ? r.end_time : now) - r.start_time) : json(nullptr)},
         {"params", r.params},
         {"summary", r.summary}};
  if (full) {
    j["config"] = r.config;
    j["system"] = r.system;
    j["artifacts"] = r.artifacts;
  }
  return j;
}

}  // namespace

struct Dashboard::Impl {
  explicit Impl(DashboardOptions opts) : o(std::move(opts)) {
    DEFT_CHECK(o.port >= 0 && o.port <= 65535, "dashboard: port {} is not in 0..65535", o.port);
    DEFT_CHECK(o.refresh_s > 0, "dashboard: refresh interval {} s must be > 0", o.refresh_s);
    store = open_study_store(o.storage);
    runs = open_run_store(o.storage);
  }

  DashboardOptions o;
  std::unique_ptr<StudyStore> store;  // thread-safe: one transaction at a time
  std::unique_ptr<RunStore> runs;
  std::mutex runs_mu;  // the run store's thread safety is its own business: one call at a time here
  httplib::Server server;
  std::thread server_thread, refresher;
  int bound_port = -1;

  std::mutex snap_mu;  // guards snapshots and order (the snapshots themselves are immutable)
  std::map<std::string, Snapshot> snapshots;
  std::vector<std::string> order;  // study names as the store lists them (by id)
  std::atomic<int64_t> next_version{1};
  std::mutex refresh_mu;  // one refresh at a time
  std::atomic<bool> loaded{false};
  std::string last_refresh_error;

  struct PlotImage {
    std::string svg, gz;  // gz: empty when compression failed
  };
  struct Plot {
    std::mutex compute;
    int64_t version = -1;
    std::shared_ptr<const PlotImage> image;
    std::chrono::steady_clock::time_point drawn;
    double draw_s = 0;
  };
  std::mutex plot_mu;  // guards plots (the map; each entry has its own mutex)
  std::map<std::string, std::shared_ptr<Plot>> plots;

  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stopping = false, stopped = false;

  // ---- snapshots ------------------------------------------------------------------------

  // The next snapshot of a study from the cached one: only the open trials and the new
  // ones are read again; the whole study when it was replaced or lost trials.
  Snapshot update(const Snapshot& prev, StudyRecord rec) {
    const int64_t id = rec.id;
    if (!prev || prev->study.id != id || rec.n_trials < static_cast<int64_t>(prev->trials.size()))
      return dash::make_snapshot(std::move(rec), store->trials(id), next_version++);
    std::vector<TrialRecord> reread;
    const auto& open_numbers = prev->open_numbers;
    const bool grown = rec.n_trials > static_cast<int64_t>(prev->trials.size());
    const int64_t next_number = prev->trials.empty() ? 0 : prev->trials.back().number + 1;
    if (open_numbers.size() > kMaxSingleRereads) {
      reread = store->trials_from(id, open_numbers.front());
    } else {
      for (int64_t n : open_numbers) reread.push_back(store->trial(prev->trials[*dash::find_trial(*prev, n)].id));
      if (grown)
        for (auto& t : store->trials_from(id, next_number)) reread.push_back(std::move(t));
    }
    return dash::refresh_snapshot(prev, std::move(rec), std::move(reread), next_version++);
  }

  Snapshot cached(const std::string& name) {
    std::lock_guard<std::mutex> hold(snap_mu);
    auto it = snapshots.find(name);
    return it == snapshots.end() ? nullptr : it->second;
  }

  void refresh() {
    std::lock_guard<std::mutex> one_at_a_time(refresh_mu);
    refresh_locked();
  }

  void refresh_locked() {
    std::map<std::string, Snapshot> next;
    std::vector<std::string> names;
    for (auto& rec : store->list_studies()) {
      const std::string name = rec.name;
      const Snapshot prev = cached(name);
      try {
        next[name] = update(prev, std::move(rec));
      } catch (const Error&) {  // e.g. deleted since it was listed: shown as it was until the next refresh
        if (!prev) continue;
        next[name] = prev;
      }
      names.push_back(name);
    }
    {
      std::lock_guard<std::mutex> hold(snap_mu);
      snapshots = std::move(next);
      order = std::move(names);
    }
    std::lock_guard<std::mutex> hold(plot_mu);
    std::erase_if(plots, [&](const auto& kv) { return !cached(kv.first.substr(0, kv.first.find('\0'))); });
    loaded = true;
  }

  void ensure_loaded() {
    if (loaded) return;
    std::lock_guard<std::mutex> one_at_a_time(refresh_mu);
    if (!loaded) refresh_locked();  // else the refresher loaded it while this waited
  }

  void refresh_loop() {
    for (;;) {
      try {
        refresh();
        last_refresh_error.clear();
      } catch (const std::exception& e) {  // the database went away for a while: keep what is shown
        if (last_refresh_error != e.what()) std::fprintf(stderr, "deft dashboard: refresh failed: %s\n", e.what());
        last_refresh_error = e.what();
      }
      std::unique_lock<std::mutex> hold(stop_mu);
      if (stop_cv.wait_for(hold, std::chrono::duration<double>(o.refresh_s), [&] { return stopping; })) return;
    }
  }

  // The study's snapshot, read from the store when it was created since the last refresh;
  // null when there is no such study.
  Snapshot snapshot(const std::string& name) {
    ensure_loaded();
    if (auto s = cached(name)) return s;
    auto rec = store->find_study(name);
    if (!rec) return nullptr;
    auto s = dash::make_snapshot(*rec, store->trials(rec->id), next_version++);
    std::lock_guard<std::mutex> hold(snap_mu);
    auto& slot = snapshots[name];
    if (!slot || slot->study.id != s->study.id) slot = s;
    return slot;
  }

  std::vector<Snapshot> all_snapshots() {
    ensure_loaded();
    std::lock_guard<std::mutex> hold(snap_mu);
    std::vector<Snapshot> out;
    for (const auto& name : order)
      if (auto it = snapshots.find(name); it != snapshots.end()) out.push_back(it->second);
    return out;
  }

  json studies_json() {
    json list = json::array();
    for (const auto& s : all_snapshots()) list.push_back(dash::study_entry(*s));
    return list;
  }

  // ---- plots ----------------------------------------------------------------------------

  // The plot and whether it is of an older version of the study.
  std::pair<std::shared_ptr<const PlotImage>, bool> plot(const Snapshot& s, const std::string& kind) {
    std::shared_ptr<Plot> p;
    {
      std::lock_guard<std::mutex> hold(plot_mu);
      auto& slot = plots[s->study.name + '\0' + kind];
      if (!slot) slot = std::make_shared<Plot>();
      p = slot;
    }
    std::lock_guard<std::mutex> hold(p->compute);
    const auto now = std::chrono::steady_clock::now();
    // versions only grow: a newer plot is never replaced by an older one
    if (p->version < s->version &&
        (p->version < 0 || std::chrono::duration<double>(now - p->drawn).count() >= kPlotRedrawFactor * p->draw_s)) {
      auto image = std::make_shared<PlotImage>();
      image->svg = render_plot(*s, kind);
      image->gz = gzip(image->svg);
      p->image = std::move(image);
      p->version = s->version;
      p->drawn = std::chrono::steady_clock::now();
      p->draw_s = std::chrono::duration<double>(p->drawn - now).count();
    }
    return {p->image, p->version < s->version};
  }

  static std::string render_plot(const StudySnapshot& s, const std::string& kind) {
    if (kind == "history") return plot_optimization_history(s.study, s.trials);
    if (kind == "intermediate") return plot_intermediate_values(s.study, s.trials);
    if (kind == "parallel") return plot_parallel_coordinates(s.study, s.trials);
    if (kind == "importance") return plot_param_importance(s.study, s.trials);
    return plot_pareto_front(s.study, s.trials);
  }

  // ---- routes ---------------------------------------------------------------------------

  void handle_get(const httplib::Request& req, httplib::Response& res) {
    const auto seg = path_segments(req.target);
    const bool api = !seg.empty() && seg[0] == "api";
    try {
      if (is_loopback(o.host) && !host_header_allowed(req)) {
        if (api) reply_error(res, 403, "the dashboard answers only requests addressed to a loopback name");
        else reply_html(res, 403, dash::not_found_page("this address"));
        return;
      }
      if (api) return route_api(seg, req, res);
      return route_page(seg, res);
    } catch (const dash::BadQuery& e) {
      reply_error(res, 400, e.what(), e.param());
    } catch (const InputError& e) {
      reply_error(res, 400, e.what());
    } catch (const std::exception& e) {
      reply_error(res, 500, e.what());
    }
  }

  int refresh_ms() const { return static_cast<int>(o.refresh_s * 1000 + 0.5); }

  void route_page(const std::vector<std::string>& seg, httplib::Response& res) {
    if (seg.empty()) return reply_html(res, 200, dash::index_page(studies_json(), runs_json(20), refresh_ms()));
    if (seg.size() == 2 && seg[0] == "static") {
      res.set_header("Cache-Control", "no-cache");
      if (seg[1] == "dashboard.js") return res.set_content(std::string(dash::kDashboardJs), "text/javascript");
      if (seg[1] == "dashboard.css") return res.set_content(std::string(dash::kDashboardCss), "text/css");
    }
    if (seg.size() == 2 && seg[0] == "study") {
      if (auto s = snapshot(seg[1]))
        return reply_html(res, 200, dash::study_page(dash::study_summary(*s, unix_now()), refresh_ms()));
      return reply_html(res, 404, dash::not_found_page("study '" + seg[1] + "'"));
    }
    if (seg.size() == 2 && seg[0] == "run") {
      if (!run_exists(seg[1])) return reply_html(res, 404, dash::not_found_page("run '" + seg[1] + "'"));
      return reply_html(res, 200, dash::run_page(seg[1], refresh_ms()));
    }
    reply_html(res, 404, dash::not_found_page("this page"));
  }

  void route_api(const std::vector<std::string>& seg, const httplib::Request& req, httplib::Response& res) {
    const size_t n = seg.size();
    if (n == 2 && seg[1] == "studies") return reply_json(res, 200, {{"studies", studies_json()}});
    if (n >= 3 && seg[1] == "studies") {
      const Snapshot s = snapshot(seg[2]);
      if (!s) return reply_error(res, 404, "no study '" + seg[2] + "' in " + store->url());
      const double now = unix_now();
      if (n == 3 || (n == 4 && seg[3] == "summary")) return reply_json(res, 200, dash::study_summary(*s, now));
      if (n == 4 && seg[3] == "trials") {
        const auto q = dash::parse_trial_query([&](const char* k) { return query_param(req, k); });
        return reply_json(res, 200, dash::query_trials(*s, q, now));
      }
      if (n == 5 && seg[3] == "trials") {
        const auto number = parse_int(seg[4]);
        if (!number) return reply_error(res, 400, "trial number: '" + seg[4] + "' is not a whole number", "number");
        const auto at = dash::find_trial(*s, *number);
        if (!at) return reply_error(res, 404, "study '" + s->study.name + "' has no trial " + seg[4]);
        return reply_json(res, 200, dash::trial_json(*s, *at, now, true));
      }
      if (n == 5 && seg[3] == "plots") {
        for (const char* kind : kPlotKinds)
          if (seg[4] == std::string(kind) + ".svg") {
            const auto [image, stale] = plot(s, kind);
            if (stale) res.set_header("X-Deft-Stale", "1");
            res.set_header("Vary", "Accept-Encoding");
            if (image->gz.empty() || !accepts_gzip(req)) return reply_svg(res, image->svg);
            res.set_header("Cache-Control", "no-store");
            res.set_header("Content-Encoding", "gzip");
            // a Content-Type httplib does not compress (it matches "image/svg+xml" exactly)
            return res.set_content(image->gz, "image/svg+xml; charset=utf-8");
          }
        return reply_error(res, 404, "no plot '" + seg[4] + "' (history, intermediate, parallel, importance, pareto .svg)");
      }
    }
    if (n == 2 && seg[1] == "runs") {
      int64_t limit = 100;
      if (auto v = query_param(req, "limit")) {
        auto l = parse_int(*v);
        if (!l || *l < 1 || *l > 100000)
          throw dash::BadQuery("limit", "must be a whole number from 1 to 100000, got '" + *v + "'");
        limit = *l;
      }
      return reply_json(res, 200,
                        {{"runs", runs_json(limit, query_param(req, "study").value_or(""),
                                            query_param(req, "command").value_or(""))}});
    }
    if (n >= 3 && seg[1] == "runs") return route_run(seg, req, res);
    reply_error(res, 404, "no API endpoint " + req.path);
  }

  // ---- runs -----------------------------------------------------------------------------

  json runs_json(int64_t limit, const std::string& study = "", const std::string& command = "") {
    json list = json::array();
    const double now = unix_now();
    std::lock_guard<std::mutex> hold(runs_mu);
    for (const auto& r : runs->list_runs({.study = study, .command = command, .limit = limit}))
      list.push_back(run_json(r, false, now));
    return list;
  }

  bool run_exists(const std::string& name) {
    std::lock_guard<std::mutex> hold(runs_mu);
    return runs->find_run(name).has_value();
  }

  void route_run(const std::vector<std::string>& seg, const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> hold(runs_mu);
    const auto r = runs->find_run(seg[2]);
    if (!r) return reply_error(res, 404, "no run '" + seg[2] + "' in " + runs->url());
    const size_t n = seg.size();
    if (n == 3) {
      json j = run_json(*r, true, unix_now());
      j["metric_keys"] = runs->metric_keys(r->id);
      return reply_json(res, 200, j);
    }
    if (n == 4 && seg[3] == "metrics") {
      json series = json::object();
      for (const auto& p : runs->metrics(r->id, query_param(req, "key").value_or(""))) {
        json& s = series[p.key];
        if (s.is_null()) s = {{"steps", json::array()}, {"values", json::array()}, {"times", json::array()}};
        s["steps"].push_back(p.step);
        s["values"].push_back(dash::number_or_null(p.value));
        s["times"].push_back(p.time);
      }
      return reply_json(res, 200, {{"run", r->name}, {"series", std::move(series)}});
    }
    if (n == 5 && seg[3] == "plots" && seg[4] == "learning.svg") {
      return reply_svg(res, plot_learning_curves(runs->metrics(r->id)));
    }
    reply_error(res, 404, "no API endpoint " + req.path);
  }

  // ---- serving --------------------------------------------------------------------------

  void configure_server() {
    server.new_task_queue = [] { return new httplib::ThreadPool(16); };
    // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server
    // share a port that is in use instead of failing.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_keep_alive_timeout(2);
    server.set_tcp_nodelay(true);  // else a small response waits for the client's delayed ACK (40 ms)
    server.set_payload_max_length(1 << 20);
    server.set_default_headers({{"X-Content-Type-Options", "nosniff"}, {"Referrer-Policy", "no-referrer"}});
    server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) { handle_get(req, res); });
    const auto read_only = [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", "GET, HEAD");
      reply_error(res, 405, req.method + " " + req.path + ": the dashboard is read-only (GET only)");
    };
    server.Post(".*", read_only);
    server.Put(".*", read_only);
    server.Patch(".*", read_only);
    server.Delete(".*", read_only);
    server.Options(".*", read_only);
  }

  void start() {
    DEFT_CHECK(bound_port < 0, "dashboard: start() is called once");
    configure_server();
    if (o.port == 0) {
      bound_port = server.bind_to_any_port(o.host);
      DEFT_CHECK(bound_port > 0, "dashboard: cannot listen on {} (any port): is the host one of this machine's addresses?",
                 o.host);
    } else {
      DEFT_CHECK(server.bind_to_port(o.host, o.port),
                 "dashboard: cannot listen on {} port {}: the port is in use or the address is not this machine's "
                 "(choose another with --port, or --port 0 for any free port)",
                 o.host, o.port);
      bound_port = o.port;
    }
    refresher = std::thread([this] { refresh_loop(); });
    server_thread = std::thread([this] { server.listen_after_bind(); });
    // stop() can only stop a server that is listening: wait for it
    for (int i = 0; i < 10000 && !server.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  void stop() {
    {
      std::lock_guard<std::mutex> hold(stop_mu);
      if (stopped) return;
      stopping = stopped = true;
    }
    stop_cv.notify_all();
    if (server_thread.joinable()) {
      server.stop();
      server_thread.join();
    }
    if (refresher.joinable()) refresher.join();
  }
};

Dashboard::Dashboard(DashboardOptions o) : impl_(std::make_unique<Impl>(std::move(o))) {}
Dashboard::~Dashboard() { impl_->stop(); }
void Dashboard::start() { impl_->start(); }
void Dashboard::stop() { impl_->stop(); }
int Dashboard::port() const { return impl_->bound_port; }

std::string Dashboard::url() const {
  const std::string& h = impl_->o.host;
  const bool v6 = h.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + h + "]" : h) + ":" + std::to_string(impl_->bound_port) + "/";
}

}  // namespace deft::track
