// Study: define-by-run trials over a real SQLite store; workers, failures, deadlines, retries.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <set>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"
#include "deft/tune/study.h"
#include "deft/tune/study_report.h"

namespace deft::tune {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

struct TempDb {
  fs::path dir;
  std::string url;
  TempDb() {
    dir = fs::temp_directory_path() / fmt::format("deft_study_{}_{}", ::getpid(), counter()++);
    fs::create_directories(dir);
    url = "sqlite:///" + (dir / "study.db").string();
  }
  ~TempDb() {
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

std::shared_ptr<track::StudyStore> open(const TempDb& db) { return track::open_study_store(db.url); }

TEST(Study, OptimizesAQuadraticAndRecordsEveryTrial) {
  TempDb db;
  Study study(open(db), "quad", {Direction::Minimize}, make_sampler("tpe", {{"seed", 3}}));
  study.optimize([](Trial& t) {
    const double x = t.suggest_float("x", -10, 10);
    const int64_t k = t.suggest_int("k", 0, 4);
    return (x - 2) * (x - 2) + static_cast<double>(k);
  }, {.n_trials = 40});
  const auto trials = study.trials();
  ASSERT_EQ(trials.size(), 40u);
  std::set<int64_t> numbers;
  for (const auto& t : trials) {
    numbers.insert(t.number);
    EXPECT_EQ(t.state, TrialState::Complete);
    ASSERT_EQ(t.values.size(), 1u);
    const double x = t.params.at("x");
    EXPECT_DOUBLE_EQ(t.values[0], (x - 2) * (x - 2) + t.params.at("k"));
  }
  EXPECT_EQ(numbers.size(), 40u);
  const TrialRecord best = study.best_trial();
  for (const auto& t : trials) EXPECT_LE(best.values[0], t.values[0]);
  EXPECT_LT(best.values[0], 1.0);  // random search's expected best of 40 over this space is ~0.5-1; TPE does better
}

TEST(Study, AFailingOrNaNObjectiveFailsOnlyItsTrial) {
  TempDb db;
  Study study(open(db), "fails", {Direction::Maximize}, make_sampler("random", {{"seed", 1}}));
  study.optimize([](Trial& t) -> double {
    const double x = t.suggest_float("x", 0, 1);
    if (t.number() % 3 == 1) throw std::runtime_error("boom in trial");
    if (t.number() % 3 == 2) return NAN;
    return x;
  }, {.n_trials = 9});
  int complete = 0, failed = 0;
  for (const auto& t : study.trials()) {
    if (t.state == TrialState::Complete) ++complete;
    if (t.state == TrialState::Fail) {
      ++failed;
      ASSERT_TRUE(t.user_attrs.contains("fail_reason"));
      const std::string why = t.user_attrs["fail_reason"].get<std::string>();
      EXPECT_TRUE(why.find("boom in trial") != std::string::npos || why.find("NaN") != std::string::npos) << why;
    }
  }
  EXPECT_EQ(complete, 3);
  EXPECT_EQ(failed, 6);
}

TEST(Study, WorkersRunTrialsSideBySideWithTheCoresSplit) {
  TempDb db;
  Study study(open(db), "workers", {Direction::Minimize}, make_sampler("tpe", {{"seed", 2}, {"constant_liar", true}}));
  std::atomic<int> running{0}, max_running{0};
  std::atomic<int> threads_seen{0};
  study.optimize([&](Trial& t) {
    const double x = t.suggest_float("x", -1, 1);
    const int now = ++running;
    int prev = max_running.load();
    while (now > prev && !max_running.compare_exchange_weak(prev, now)) {
    }
    threads_seen.store(num_threads());
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    --running;
    return x * x;
  }, {.n_trials = 12, .workers = 3, .threads = 6});
  EXPECT_EQ(study.trials().size(), 12u);
  EXPECT_EQ(max_running.load(), 3);
  EXPECT_EQ(threads_seen.load(), 2);  // 6 threads over 3 workers
  for (const auto& t : study.trials()) EXPECT_EQ(t.state, TrialState::Complete);
}

TEST(Study, PrunedTrialsKeepTheirLastIntermediateValue) {
  TempDb db;
  Study study(open(db), "prune", {Direction::Maximize}, make_sampler("random", {{"seed", 4}}),
              make_pruner("asha", {{"min_resource", 1}, {"reduction_factor", 3}}));
  study.optimize([](Trial& t) {
    const double q = t.suggest_float("q", 0, 1);
    for (int step = 1; step <= 9; ++step) {
      t.report(q * step / 9.0, step);
      if (t.should_prune()) throw TrialPruned();
    }
    return q;
  }, {.n_trials = 20});
  int pruned = 0;
  for (const auto& t : study.trials()) {
    if (t.state != TrialState::Pruned) continue;
    ++pruned;
    ASSERT_FALSE(t.values.empty());
    EXPECT_DOUBLE_EQ(t.values[0], t.intermediate.rbegin()->second[0]);
    EXPECT_LT(t.intermediate.rbegin()->first, 9);
  }
  EXPECT_GT(pruned, 5);  // with eta 3, most of 20 uniformly drawn trials stop at rung 1 or 3
}

TEST(Study, TheDeadlineIsHardForRunningTrials) {
  TempDb db;
  Study study(open(db), "deadline", {Direction::Maximize}, make_sampler("random"));
  const auto t0 = std::chrono::steady_clock::now();
  study.optimize([](Trial& t) {
    t.suggest_float("x", 0, 1);
    for (int step = 1; step <= 1000; ++step) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      t.report(step, step);
      if (t.should_prune()) throw TrialPruned();
    }
    return 1.0;
  }, {.timeout_s = 0.5, .workers = 2});
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(s, 2.0);  // each trial alone would take 10 s
  const auto trials = study.trials();
  ASSERT_EQ(trials.size(), 2u);
  for (const auto& t : trials) {
    EXPECT_EQ(t.state, TrialState::Pruned);
    EXPECT_EQ(t.user_attrs.value("stopped", ""), "deadline");
  }
}

TEST(Study, StaleTrialsAreFailedAndRetriedWithTheSameParameters) {
  TempDb db;
  auto store = open(db);
  Study study(store, "retry", {Direction::Minimize}, make_sampler("random", {{"seed", 9}}));
  // A trial started by a "process" that then died: it never beats again.
  Trial dead = study.ask();
  const double x = dead.suggest_float("x", -5, 5);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const auto failed = study.fail_stale_trials(1.0, 1);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0], dead.number());
  std::vector<double> seen;
  study.optimize([&](Trial& t) {
    const double v = t.suggest_float("x", -5, 5);
    seen.push_back(v);
    return v * v;
  }, {.n_trials = 1});
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], x);  // the retry, not a fresh sample
  const auto trials = study.trials();
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].state, TrialState::Fail);
  EXPECT_EQ(trials[1].state, TrialState::Complete);
  EXPECT_EQ(trials[1].system_attrs.value("retry_of", int64_t{-1}), dead.number());
}

TEST(Study, MultiObjectiveBestTrialsAreTheParetoFront) {
  TempDb db;
  Study study(open(db), "mo", {Direction::Minimize, Direction::Minimize}, make_sampler("tpe", {{"seed", 5}}));
  study.optimize(Objective([](Trial& t) {
    const double x = t.suggest_float("x", 0, 1);
    const double y = t.suggest_float("y", 0, 1);
    return std::vector<double>{x, (1 + y) * (1 - std::sqrt(x))};
  }), {.n_trials = 30});
  const auto front = study.best_trials();
  ASSERT_FALSE(front.empty());
  const auto all = study.trials();
  for (const auto& f : front)
    for (const auto& t : all) EXPECT_FALSE(dominates(t.values, f.values, study.directions())) << t.number << " " << f.number;
  EXPECT_THROW(study.best_trial(), InputError);
}

TEST(Study, SuggestingOneNameWithTwoRangesIsAnError) {
  TempDb db;
  Study study(open(db), "clash", {Direction::Minimize}, make_sampler("random"));
  Trial t = study.ask();
  t.suggest_float("x", 0, 1);
  EXPECT_EQ(t.suggest_float("x", 0, 1), t.params()["x"].get<double>());  // same range: same value
  EXPECT_THROW(t.suggest_int("x", 5, 9), InputError);
}

TEST(Study, ReportsListShowBestAndExport) {
  TempDb db;
  auto store = open(db);
  Study study(store, "report", {Direction::Maximize}, make_sampler("random", {{"seed", 1}}));
  study.optimize([](Trial& t) {
    const std::string opt = t.suggest_categorical("opt", std::vector<std::string>{"adam", "sgd"});
    return t.suggest_float("lr", 1e-3, 1, true) * (opt == "adam" ? 2 : 1);
  }, {.n_trials = 6});
  const TrialRecord best = study.best_trial();
  const std::string list = format_study_list(*store);
  EXPECT_NE(list.find("report"), std::string::npos);
  EXPECT_NE(list.find(fmt::format("{:.4f}", best.values[0])), std::string::npos);
  const json b = json::parse(format_best(*store, "report", "json"));
  EXPECT_EQ(b["number"].get<int64_t>(), best.number);
  EXPECT_EQ(b["params"]["opt"], best.param_json()["opt"]);
  const std::string csv = format_study(*store, "report", "csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 7);  // header + 6 trials
  EXPECT_NE(csv.find("params_lr"), std::string::npos);
  const json all = json::parse(format_study(*store, "report", "json"));
  EXPECT_EQ(all["trials"].size(), 6u);
  EXPECT_THROW(format_study(*store, "nope", "table"), InputError);
}

TEST(Study, DurationsParse) {
  EXPECT_DOUBLE_EQ(parse_duration("90"), 90);
  EXPECT_DOUBLE_EQ(parse_duration("90s"), 90);
  EXPECT_DOUBLE_EQ(parse_duration("10m"), 600);
  EXPECT_DOUBLE_EQ(parse_duration("1h30m"), 5400);
  EXPECT_DOUBLE_EQ(parse_duration("1.5h"), 5400);
  EXPECT_THROW(parse_duration("ten"), InputError);
  EXPECT_THROW(parse_duration("5x"), InputError);
  EXPECT_THROW(parse_duration("1h30"), InputError);
}

}  // namespace
}  // namespace deft::tune
