// The dashboard over HTTP on 127.0.0.1: a SQLite store with a study of 36 trials of
// known values, states and parameters, a study with a hostile name, and one that grows
// while the test watches. Every test asks the running server, as the page's script does.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/track/dashboard.h"
#include "deft/track/dashboard_data.h"
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"

namespace deft::track {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr int kTrials = 36;
constexpr double kRefreshS = 0.2;
const std::string kHostile = "<script>alert(1)</script>";
const std::vector<std::string> kOptimizers = {"adam", "sgd", "rmsprop"};

// Trial i: complete with value value_of(i), except pruned (i % 5 == 4), failed
// (i % 7 == 3) and the last one, still running.
TrialState state_of(int i) {
  if (i == kTrials - 1) return TrialState::Running;
  if (i % 7 == 3) return TrialState::Fail;
  if (i % 5 == 4) return TrialState::Pruned;
  return TrialState::Complete;
}
double value_of(int i) { return 0.5 + 0.01 * ((i * 7) % kTrials); }  // distinct for i < 36

class DashboardHttp : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string tmpl = (fs::temp_directory_path() / "deft-dashboard-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    url_ = "sqlite:///" + (dir_ / "dash.db").string();
    auto store = open_study_store(url_);
    const int64_t sid = store->create_study("dash", {Direction::Maximize});
    const auto lr = Distribution::float_range(1e-4, 1e-1, true);
    const auto opt = Distribution::categorical({"adam", "sgd", "rmsprop"});
    const auto layers = Distribution::int_range(1, 4);
    for (int i = 0; i < kTrials; ++i) {
      const TrialRecord t = store->start_trial(sid);
      store->set_param(t.id, "lr", 1e-4 * (1 + i), lr);
      store->set_param(t.id, "optimizer", i % 3, opt);
      store->set_param(t.id, "layers", 1 + i % 4, layers);
      for (int step = 1; step <= 3; ++step) store->report(t.id, step, {value_of(i) * step / 3});
      const TrialState st = state_of(i);
      if (st == TrialState::Complete) store->finish_trial(t.id, st, {value_of(i)});
      else if (st != TrialState::Running) store->finish_trial(t.id, st, {});
    }
    const int64_t hostile = store->create_study(kHostile, {Direction::Minimize});
    const TrialRecord h = store->start_trial(hostile);
    store->set_param(h.id, "<img src=x onerror=alert(2)>", 0, Distribution::categorical({"<b>bold</b>"}));
    store->finish_trial(h.id, TrialState::Complete, {1.0});
    store->create_study("a/b c", {Direction::Minimize});
    live_study_ = store->create_study("live", {Direction::Minimize});
    auto runs = open_run_store(url_);
    const int64_t run = runs->create_run({.name = "mlp-1", .command = "train"});
    runs->set_params(run, {{"lr", 0.01}, {"model", "<i>mlp</i>"}});
    for (int64_t epoch = 1; epoch <= 3; ++epoch)
      runs->log_metrics(run, {{"loss", epoch, 1.0 / epoch, unix_now()}, {"val_loss", epoch, 1.2 / epoch, unix_now()}});
    runs->finish_run(run, RunStatus::Finished, {{"test_accuracy", 0.88}});
    dashboard_ = std::make_unique<track::Dashboard>(DashboardOptions{.storage = url_, .port = 0, .refresh_s = kRefreshS});
    dashboard_->start();
  }
  static void TearDownTestSuite() {
    dashboard_.reset();
    fs::remove_all(dir_);
  }

  static httplib::Client client() {
    httplib::Client c("127.0.0.1", dashboard_->port());
    c.set_connection_timeout(5);
    c.set_read_timeout(10);
    return c;
  }
  static json get_json(const std::string& path, int want_status = 200) {
    auto c = client();
    auto res = c.Get(path);
    if (!res) {
      ADD_FAILURE() << "GET " << path << ": no response";
      return nullptr;
    }
    EXPECT_EQ(res->status, want_status) << "GET " << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(res->body);
  }
  static std::vector<int64_t> numbers(const json& page) {
    std::vector<int64_t> out;
    for (const auto& r : page["rows"]) out.push_back(r["number"].get<int64_t>());
    return out;
  }

  static inline fs::path dir_;
  static inline std::string url_;
  static inline int64_t live_study_ = -1;
  static inline std::unique_ptr<track::Dashboard> dashboard_;
};

TEST_F(DashboardHttp, ListsStudiesWithCountsAndBest) {
  const json j = get_json("/api/studies");
  ASSERT_EQ(j["studies"].size(), 4u);
  const json& s = j["studies"][0];
  EXPECT_EQ(s["name"], "dash");
  EXPECT_EQ(s["directions"], json::array({"maximize"}));
  EXPECT_EQ(s["n_trials"], kTrials);
  int complete = 0, pruned = 0, failed = 0, best = -1;
  for (int i = 0; i < kTrials; ++i) {
    complete += state_of(i) == TrialState::Complete;
    pruned += state_of(i) == TrialState::Pruned;
    failed += state_of(i) == TrialState::Fail;
    if (state_of(i) == TrialState::Complete && (best < 0 || value_of(i) > value_of(best))) best = i;
  }
  EXPECT_EQ(s["counts"]["complete"], complete);
  EXPECT_EQ(s["counts"]["pruned"], pruned);
  EXPECT_EQ(s["counts"]["fail"], failed);
  EXPECT_EQ(s["counts"]["running"], 1);
  EXPECT_EQ(s["best_trial"], best);
  EXPECT_DOUBLE_EQ(s["best_value"].get<double>(), value_of(best));
  EXPECT_EQ(j["studies"][1]["name"], kHostile);
}

TEST_F(DashboardHttp, PaginatesTrials) {
  json p = get_json("/api/studies/dash/trials?limit=10&offset=0");
  EXPECT_EQ(p["total"], kTrials);
  EXPECT_EQ(p["filtered"], kTrials);
  EXPECT_EQ(numbers(p), (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  p = get_json("/api/studies/dash/trials?limit=10&offset=30");
  EXPECT_EQ(numbers(p), (std::vector<int64_t>{30, 31, 32, 33, 34, 35}));
  p = get_json("/api/studies/dash/trials?limit=10&offset=100");
  EXPECT_TRUE(p["rows"].empty());
  EXPECT_EQ(p["total"], kTrials);
  p = get_json("/api/studies/dash/trials?order=desc&limit=3");
  EXPECT_EQ(numbers(p), (std::vector<int64_t>{35, 34, 33}));
  EXPECT_EQ(p["param_names"], json::array({"layers", "lr", "optimizer"}));
  const json& row = p["rows"][0];
  EXPECT_EQ(row["state"], "running");
  EXPECT_EQ(row["params"]["optimizer"], kOptimizers[35 % 3]);
  EXPECT_EQ(row["params"]["layers"], 1 + 35 % 4);
  EXPECT_EQ(row["last_step"], 3);
}

TEST_F(DashboardHttp, SortsByValueBothWays) {
  std::vector<std::pair<double, int64_t>> want;
  for (int i = 0; i < kTrials; ++i)
    if (state_of(i) == TrialState::Complete) want.emplace_back(value_of(i), i);
  std::sort(want.begin(), want.end());
  std::vector<int64_t> asc;
  for (const auto& w : want) asc.push_back(w.second);
  EXPECT_EQ(numbers(get_json("/api/studies/dash/trials?state=complete&sort=value&order=asc&limit=1000")), asc);
  std::vector<int64_t> desc(asc.rbegin(), asc.rend());
  EXPECT_EQ(numbers(get_json("/api/studies/dash/trials?state=complete&sort=value&order=desc&limit=1000")), desc);
  // trials without a value (failed, running) come last in either order
  for (const char* order : {"asc", "desc"}) {
    const json p = get_json(std::string("/api/studies/dash/trials?sort=value&limit=1000&order=") + order);
    ASSERT_EQ(p["rows"].size(), static_cast<size_t>(kTrials));
    EXPECT_EQ(p["rows"][kTrials - 1]["number"], kTrials - 1) << order;  // running: no value
    EXPECT_TRUE(p["rows"][0]["values"][0].is_number()) << order;
  }
  // a parameter column: layers ascending, ties by number
  const json p = get_json("/api/studies/dash/trials?sort=param:layers&limit=1000");
  for (size_t k = 1; k < p["rows"].size(); ++k) {
    const auto& a = p["rows"][k - 1];
    const auto& b = p["rows"][k];
    EXPECT_TRUE(a["params"]["layers"] < b["params"]["layers"] ||
                (a["params"]["layers"] == b["params"]["layers"] && a["number"] < b["number"]));
  }
}

TEST_F(DashboardHttp, FiltersByStateAndText) {
  json p = get_json("/api/studies/dash/trials?state=pruned&limit=1000");
  int pruned = 0;
  for (int i = 0; i < kTrials; ++i) pruned += state_of(i) == TrialState::Pruned;
  EXPECT_EQ(p["filtered"], pruned);
  EXPECT_EQ(p["total"], kTrials);
  for (const auto& r : p["rows"]) EXPECT_EQ(r["state"], "pruned");
  p = get_json("/api/studies/dash/trials?state=fail,running&limit=1000");
  for (const auto& r : p["rows"]) EXPECT_TRUE(r["state"] == "fail" || r["state"] == "running");

  p = get_json("/api/studies/dash/trials?q=OPTIMIZER%3Dsgd&limit=1000");  // case-insensitive "name=value"
  EXPECT_EQ(p["filtered"], kTrials / 3);
  for (const auto& r : p["rows"]) EXPECT_EQ(r["params"]["optimizer"], "sgd");
  p = get_json("/api/studies/dash/trials?q=sgd%20layers%3D2&state=complete&limit=1000");  // every word must match
  int want = 0;
  for (int i = 0; i < kTrials; ++i) want += i % 3 == 1 && 1 + i % 4 == 2 && state_of(i) == TrialState::Complete;
  EXPECT_EQ(p["filtered"], want);
  for (const auto& r : p["rows"]) {
    EXPECT_EQ(r["params"]["optimizer"], "sgd");
    EXPECT_EQ(r["params"]["layers"], 2);
  }
}

TEST_F(DashboardHttp, ShowsOneTrialInFull) {
  const json t = get_json("/api/studies/dash/trials/3");
  EXPECT_EQ(t["number"], 3);
  EXPECT_EQ(t["state"], "fail");
  ASSERT_EQ(t["intermediate"].size(), 3u);
  EXPECT_EQ(t["intermediate"][2]["step"], 3);
  EXPECT_NEAR(t["intermediate"][2]["values"][0].get<double>(), value_of(3), 1e-12);
  EXPECT_EQ(t["distributions"]["optimizer"]["type"], "categorical");
  EXPECT_EQ(t["params"]["optimizer"], "adam");
  const json s = get_json("/api/studies/dash/summary");
  EXPECT_EQ(s["n_trials"], kTrials);
  EXPECT_EQ(s["best"]["number"], s["best_trial"]);
  EXPECT_TRUE(s["elapsed_s"].is_number());
  EXPECT_EQ(s["params"].size(), 3u);
}

TEST_F(DashboardHttp, UnknownThingsAre404AndBadQueries400) {
  json e = get_json("/api/studies/nope/trials", 404);
  EXPECT_NE(e["error"].get<std::string>().find("nope"), std::string::npos);
  get_json("/api/studies/dash/trials/999", 404);
  get_json("/api/nothing", 404);
  for (const auto& [query, param] : std::vector<std::pair<std::string, std::string>>{{"sort=bogus", "sort"},
                                                                                    {"sort=param:nope", "sort"},
                                                                                    {"sort=value:3", "sort"},
                                                                                    {"limit=0", "limit"},
                                                                                    {"limit=ten", "limit"},
                                                                                    {"offset=-1", "offset"},
                                                                                    {"order=up", "order"},
                                                                                    {"state=done", "state"}}) {
    e = get_json("/api/studies/dash/trials?" + query, 400);
    EXPECT_EQ(e["param"], param) << query;
    EXPECT_EQ(e["error"].get<std::string>().rfind(param + ":", 0), 0u) << e["error"];
  }
  get_json("/api/studies/dash/trials/x", 400);
  auto c = client();
  auto res = c.Get("/study/nope");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
}

TEST_F(DashboardHttp, EscapesHostileNamesInPages) {
  auto c = client();
  const std::string escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
  auto res = c.Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find(escaped), std::string::npos);
  EXPECT_EQ(res->body.find(kHostile), std::string::npos);
  EXPECT_NE(res->body.find("/study/%3Cscript%3Ealert%281%29%3C%2Fscript%3E"), std::string::npos);
  res = c.Get("/study/%3Cscript%3Ealert(1)%3C%2Fscript%3E");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_NE(res->body.find("<h1 id=\"title\">" + escaped + "</h1>"), std::string::npos);
  EXPECT_NE(res->body.find("data-study=\"" + escaped + "\""), std::string::npos);
  EXPECT_EQ(res->body.find(kHostile), std::string::npos);
  EXPECT_NE(res->get_header_value("Content-Security-Policy").find("script-src 'self'"), std::string::npos);
  // the JSON API gives the name as it is (JSON-quoted); the script shows it as text
  const json s = get_json("/api/studies/%3Cscript%3Ealert(1)%3C%2Fscript%3E/trials");
  EXPECT_EQ(s["rows"][0]["params"]["<img src=x onerror=alert(2)>"], "<b>bold</b>");
  // a '/' in a name travels percent-encoded in one path segment
  EXPECT_EQ(get_json("/api/studies/a%2Fb%20c/summary")["name"], "a/b c");
}

TEST_F(DashboardHttp, RefusesWrites) {
  auto c = client();
  for (const std::string path : {"/api/studies", "/api/studies/dash", "/api/studies/dash/trials", "/study/dash", "/"}) {
    auto post = c.Post(path, "{}", "application/json");
    ASSERT_TRUE(post);
    EXPECT_EQ(post->status, 405) << path;
    auto put = c.Put(path, "{}", "application/json");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 405) << path;
    auto del = c.Delete(path);
    ASSERT_TRUE(del);
    EXPECT_EQ(del->status, 405) << path;
    auto patch = c.Patch(path, "{}", "application/json");
    ASSERT_TRUE(patch);
    EXPECT_EQ(patch->status, 405) << path;
  }
  EXPECT_EQ(get_json("/api/studies/dash/summary")["n_trials"], kTrials);
}

TEST_F(DashboardHttp, ServesPlotsAssetsAndGzip) {
  auto c = client();
  for (const char* kind : {"history", "intermediate", "parallel", "importance"}) {
    auto res = c.Get(std::string("/api/studies/dash/plots/") + kind + ".svg");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200) << kind;
    EXPECT_EQ(res->get_header_value("Content-Type"), "image/svg+xml");
    EXPECT_NE(res->body.find("<svg"), std::string::npos) << kind;
  }
  get_json("/api/studies/dash/plots/pie.svg", 404);
  // a cached plot is sent gzipped as it was compressed once (the client inflates it)
  auto plain = c.Get("/api/studies/dash/plots/history.svg");
  auto gz = c.Get("/api/studies/dash/plots/history.svg", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(plain && gz);
  EXPECT_EQ(gz->get_header_value("Content-Encoding"), "gzip");
  EXPECT_EQ(gz->body, plain->body);
  auto js = c.Get("/static/dashboard.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->body.find("innerHTML"), std::string::npos);  // data goes in as text only
  auto zipped = c.Get("/api/studies/dash/trials?limit=100", {{"Accept-Encoding", "gzip"}});
  ASSERT_TRUE(zipped);
  EXPECT_EQ(zipped->get_header_value("Content-Encoding"), "gzip");
}

TEST_F(DashboardHttp, AnswersOnlyLoopbackHostNames) {
  auto c = client();
  auto res = c.Get("/api/studies", {{"Host", "attacker.example:8080"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 403);
  res = c.Get("/api/studies", {{"Host", "localhost:8080"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
}

TEST_F(DashboardHttp, ShowsNewTrialsWithinTheRefreshInterval) {
  auto store = open_study_store(url_);
  EXPECT_EQ(get_json("/api/studies/live/trials")["total"], 0);
  const int64_t version = get_json("/api/studies/live/summary")["version"];
  const TrialRecord t = store->start_trial(live_study_);
  const auto wait_for = [&](const std::function<bool()>& done) {
    const auto start = std::chrono::steady_clock::now();
    while (!done()) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (s > kRefreshS + 1.0) return s;  // a refresh and a slow read's worth of slack
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double took = wait_for([&] { return get_json("/api/studies/live/trials")["total"] == 1; });
  EXPECT_LE(took, kRefreshS + 1.0) << "a new trial did not show";
  // a running trial's progress, then its end
  store->report(t.id, 1, {0.25});
  took = wait_for([&] { return get_json("/api/studies/live/trials/0")["intermediate"].size() == 1; });
  EXPECT_LE(took, kRefreshS + 1.0) << "an intermediate value did not show";
  store->finish_trial(t.id, TrialState::Complete, {0.125});
  took = wait_for([&] { return get_json("/api/studies/live/summary")["best_value"] == 0.125; });
  EXPECT_LE(took, kRefreshS + 1.0) << "the finished trial did not show";
  EXPECT_GT(get_json("/api/studies/live/summary")["version"].get<int64_t>(), version);
  // a study created after the dashboard started is found at once
  store->create_study("late", {Direction::Minimize});
  EXPECT_EQ(get_json("/api/studies/late/summary")["n_trials"], 0);
}

TEST_F(DashboardHttp, RefusesAPortInUse) {
  track::Dashboard second({.storage = url_, .port = dashboard_->port()});
  try {
    second.start();
    ADD_FAILURE() << "a second dashboard started on port " << dashboard_->port();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("port " + std::to_string(dashboard_->port())), std::string::npos) << e.what();
  }
}

TEST_F(DashboardHttp, ServesRuns) {
  const json list = get_json("/api/runs?limit=5");
  ASSERT_EQ(list["runs"].size(), 1u);
  EXPECT_EQ(list["runs"][0]["name"], "mlp-1");
  EXPECT_EQ(list["runs"][0]["status"], "finished");
  const json r = get_json("/api/runs/mlp-1");
  EXPECT_EQ(r["params"]["model"], "<i>mlp</i>");
  EXPECT_EQ(r["summary"]["test_accuracy"], 0.88);
  EXPECT_EQ(r["metric_keys"], json::array({"loss", "val_loss"}));
  const json m = get_json("/api/runs/mlp-1/metrics");
  EXPECT_EQ(m["series"]["loss"]["steps"], json::array({1, 2, 3}));
  EXPECT_DOUBLE_EQ(m["series"]["val_loss"]["values"][1].get<double>(), 0.6);
  get_json("/api/runs/nope", 404);
  EXPECT_EQ(get_json("/api/runs?limit=0", 400)["param"], "limit");
  auto c = client();
  auto svg = c.Get("/api/runs/mlp-1/plots/learning.svg");
  ASSERT_TRUE(svg);
  EXPECT_EQ(svg->status, 200);
  EXPECT_NE(svg->body.find("<svg"), std::string::npos);
  auto page = c.Get("/run/mlp-1");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  auto home = c.Get("/");
  ASSERT_TRUE(home);
  EXPECT_NE(home->body.find("href=\"/run/mlp-1\""), std::string::npos);
}

// The table logic alone: the snapshot refresh keeps finished trials and counts a change.
TEST(DashboardData, RefreshReplacesOnlyWhatChanged) {
  StudyRecord s;
  s.id = 1;
  s.name = "s";
  s.directions = {Direction::Minimize};
  std::vector<TrialRecord> trials(3);
  for (int i = 0; i < 3; ++i) {
    trials[i].number = i;
    trials[i].state = i == 2 ? TrialState::Running : TrialState::Complete;
    if (i < 2) trials[i].values = {1.0 - i};
  }
  const auto a = dash::make_snapshot(s, trials, 1);
  EXPECT_EQ(a->open_numbers, std::vector<int64_t>{2});
  EXPECT_EQ(dash::refresh_snapshot(a, s, {trials[2]}, 2), a);  // nothing new: the same snapshot
  TrialRecord done = trials[2];
  done.state = TrialState::Complete;
  done.values = {-1};
  TrialRecord added;
  added.number = 3;
  const auto b = dash::refresh_snapshot(a, s, {done, added}, 2);
  ASSERT_NE(b, a);
  EXPECT_EQ(b->version, 2);
  EXPECT_EQ(b->trials.size(), 4u);
  EXPECT_EQ(b->trials[*b->best].number, 2);
  EXPECT_EQ(b->counts.at(TrialState::Complete), 3);
  EXPECT_EQ(b->open_numbers, std::vector<int64_t>{3});
}

}  // namespace
}  // namespace deft::track
