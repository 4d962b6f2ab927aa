// Pruners against worked examples, and Pareto ranking on a hand example.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "deft/tensor/error.h"
#include "deft/tune/pruner.h"

namespace deft::tune {
namespace {

using json = nlohmann::json;

TrialRecord trial(int64_t number, TrialState state, std::map<int64_t, std::vector<double>> intermediate = {},
                  json system_attrs = json::object()) {
  TrialRecord t;
  t.id = number + 1000;
  t.number = number;
  t.state = state;
  t.intermediate = std::move(intermediate);
  t.system_attrs = std::move(system_attrs);
  if (state == TrialState::Complete && !t.intermediate.empty()) t.values = t.intermediate.rbegin()->second;
  return t;
}

StudyView study(std::vector<TrialRecord> trials, std::vector<Direction> dirs = {Direction::Minimize}) {
  return StudyView{"study", std::move(dirs), std::move(trials)};
}

bool prune(Pruner& p, const StudyView& view, const TrialRecord& t) {
  json attrs = json::object();
  return p.prune(view, t, attrs);
}

// ---- Pareto ----------------------------------------------------------------------------------

TEST(ParetoRanks, HandExample) {
  // Minimize both. A(1,5) B(2,2) C(5,1) are the front; D(3,3) is dominated only by B;
  // E(4,4) by D (and B); F(6,6) by everything; G(2,2) ties with B, so neither dominates.
  const std::vector<std::vector<double>> pts = {{1, 5}, {2, 2}, {5, 1}, {3, 3}, {4, 4}, {6, 6}, {2, 2}};
  const std::vector<Direction> min2 = {Direction::Minimize, Direction::Minimize};
  EXPECT_EQ(pareto_ranks(pts, min2), (std::vector<int>{0, 0, 0, 1, 2, 3, 0}));
  // Minimize x, maximize y. Front: A(1,5) (smallest x) and F(6,6) (largest y); A dominates
  // B, D, E and G. Next front: B, D, E, G (none dominates another). C(5,1) is dominated by B.
  const std::vector<Direction> min_max = {Direction::Minimize, Direction::Maximize};
  EXPECT_EQ(pareto_ranks(pts, min_max), (std::vector<int>{0, 1, 2, 1, 1, 0, 1}));
}

TEST(ParetoRanks, Dominates) {
  const std::vector<Direction> mm = {Direction::Minimize, Direction::Maximize};
  EXPECT_TRUE(dominates({1, 5}, {2, 5}, mm));
  EXPECT_TRUE(dominates({1, 6}, {1, 5}, mm));
  EXPECT_FALSE(dominates({1, 5}, {1, 5}, mm));  // equal: not better anywhere
  EXPECT_FALSE(dominates({0, 4}, {1, 5}, mm));  // better in one, worse in the other
  EXPECT_THROW(dominates({1}, {1, 2}, mm), InputError);
}

// ---- none, factory -------------------------------------------------------------------------

TEST(PrunerNone, NeverPrunes) {
  auto p = make_pruner("none");
  const StudyView v = study({trial(0, TrialState::Complete, {{1, {0.0}}})});
  EXPECT_FALSE(prune(*p, v, trial(1, TrialState::Running, {{1, {std::nan("")}}})));
}

TEST(PrunerFactory, UnknownNamesAndOptionsAreInputErrors) {
  EXPECT_THROW(make_pruner("patience"), InputError);
  EXPECT_THROW(make_pruner("median", {{"n_startup", 5}}), InputError);
  EXPECT_THROW(make_pruner("hyperband", {{"min_resource", 1}}), InputError);  // max_resource required
  EXPECT_THROW(make_pruner("asha", {{"reduction_factor", 1}}), InputError);
}

// ---- median / percentile -------------------------------------------------------------------

// Five Complete trials reporting 1..5 at step 1 and 10..50 at step 2: the median at step 1
// is 3, at step 2 it is 30.
std::vector<TrialRecord> five_complete() {
  std::vector<TrialRecord> out;
  for (int i = 1; i <= 5; ++i)
    out.push_back(trial(i - 1, TrialState::Complete, {{1, {double(i)}}, {2, {10.0 * i}}}));
  return out;
}

TEST(PrunerMedian, PrunesWorseThanMedianAfterStartup) {
  auto p = make_pruner("median");
  const StudyView v = study(five_complete());
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {3.5}}})));   // 3.5 > 3
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {3.0}}})));  // equal to the median
  // The best value so far counts: 2.0 at step 1 beats the step-2 median 30.
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {2.0}}, {2, {99.0}}})));
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {40.0}}, {2, {35.0}}})));
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {std::nan("")}}})));
  // No Complete trial reported this step: nothing to compare with.
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{7, {1e9}}})));

  // Four Complete trials (and a Running and a Pruned one) are not enough for n_startup 5.
  std::vector<TrialRecord> four = five_complete();
  four.pop_back();
  four.push_back(trial(20, TrialState::Running, {{1, {0.0}}}));
  four.push_back(trial(21, TrialState::Pruned, {{1, {0.0}}}));
  EXPECT_FALSE(prune(*p, study(four), trial(10, TrialState::Running, {{1, {100.0}}})));
}

TEST(PrunerMedian, MaximizeUsesTheUpperPercentile) {
  auto p = make_pruner("percentile", {{"percentile", 25.0}, {"n_startup_trials", 0}});
  const StudyView v = study(five_complete(), {Direction::Maximize});
  // Maximize with percentile 25 compares with the 75th percentile of 1..5 = 4.
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {3.9}}})));
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {4.0}}})));
}

TEST(PrunerMedian, WarmupAndInterval) {
  auto p = make_pruner("median", {{"n_warmup_steps", 2}, {"interval_steps", 3}});
  std::vector<TrialRecord> others;
  for (int i = 0; i < 5; ++i) {
    std::map<int64_t, std::vector<double>> iv;
    for (int s = 0; s <= 10; ++s) iv[s] = {0.0};
    others.push_back(trial(i, TrialState::Complete, iv));
  }
  const StudyView v = study(others);
  const auto at = [](std::vector<int64_t> steps) {
    std::map<int64_t, std::vector<double>> iv;
    for (const int64_t s : steps) iv[s] = {1.0};  // always worse than the others' 0
    return trial(10, TrialState::Running, iv);
  };
  // Pruning steps are 2, 5, 8, ...: steps 0 and 1 are warm-up.
  EXPECT_FALSE(prune(*p, v, at({0})));
  EXPECT_FALSE(prune(*p, v, at({0, 1})));
  EXPECT_TRUE(prune(*p, v, at({0, 1, 2})));
  // Step 3 and 4: the step-2 check already happened in this interval.
  EXPECT_FALSE(prune(*p, v, at({0, 1, 2, 3})));
  EXPECT_FALSE(prune(*p, v, at({0, 1, 2, 3, 4})));
  EXPECT_TRUE(prune(*p, v, at({0, 1, 2, 3, 4, 5})));
  // Reports that skipped step 5: step 6 is the first in [5, 8), so it is checked.
  EXPECT_TRUE(prune(*p, v, at({0, 1, 2, 3, 4, 6})));
}

TEST(PrunerMedian, MultiObjectivePrunesWhenTheMedianVectorDominates) {
  auto p = make_pruner("median");
  // Objectives: minimize, maximize. Medians at step 1: 3 and 30.
  std::vector<TrialRecord> others;
  for (int i = 1; i <= 5; ++i) others.push_back(trial(i - 1, TrialState::Complete, {{1, {double(i), 10.0 * i}}}));
  const StudyView v = study(others, {Direction::Minimize, Direction::Maximize});
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {4.0, 20.0}}})));   // worse in both
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {4.0, 40.0}}})));  // better in the second
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {3.0, 30.0}}})));  // equal: not dominated
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {3.0, 29.0}}})));
}

// ---- successive halving --------------------------------------------------------------------

// eta = 3, min_resource = 1, min_early_stopping_rate = 0: rung r is reached at step 3^r,
// i.e. steps 1, 3, 9. At a rung with n competing values (the trial's own included) a trial
// is promoted when it is among the best max(1, floor(n / 3)).
TEST(PrunerAsha, WorkedExampleRungZero) {
  auto p = make_pruner("asha");
  std::vector<TrialRecord> others;
  for (int i = 0; i < 5; ++i)
    others.push_back(trial(i, TrialState::Complete, {}, {{"completed_rung_0", 0.1 * (i + 1)}}));
  const StudyView v = study(others);
  // Values 0.1..0.5 plus 0.25: n = 6, top floor(6/3) = 2 are 0.1 and 0.2; 0.25 is 3rd -> pruned.
  json attrs = json::object();
  EXPECT_TRUE(p->prune(v, trial(10, TrialState::Running, {{1, {0.25}}}), attrs));
  EXPECT_EQ(attrs, (json{{"completed_rung_0", 0.25}}));
  // 0.15 is 2nd of 6 -> promoted; rung 1 needs step 3, so it stops there.
  attrs = json::object();
  EXPECT_FALSE(p->prune(v, trial(10, TrialState::Running, {{1, {0.15}}}), attrs));
  EXPECT_EQ(attrs, (json{{"completed_rung_0", 0.15}}));
  // A tie with the 2nd value is promoted (Optuna compares with <=).
  EXPECT_FALSE(prune(*p, v, trial(10, TrialState::Running, {{1, {0.2}}})));
  // NaN at a rung is pruned.
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{1, {std::nan("")}}})));
  // Step 0 is below the first rung: nothing happens.
  attrs = json::object();
  EXPECT_FALSE(p->prune(v, trial(10, TrialState::Running, {{0, {9.0}}}), attrs));
  EXPECT_TRUE(attrs.empty());
}

TEST(PrunerAsha, WorkedExampleHigherRungs) {
  auto p = make_pruner("asha");
  // One other trial reached rung 1 with 0.3. Our trial already has rung 0 recorded.
  const StudyView v = study({trial(0, TrialState::Complete, {}, {{"completed_rung_0", 0.5}, {"completed_rung_1", 0.3}})});
  const json mine = {{"completed_rung_0", 0.4}};
  // Step 2: rung 1 needs step 3.
  json attrs = json::object();
  EXPECT_FALSE(p->prune(v, trial(10, TrialState::Running, {{1, {0.4}}, {2, {0.35}}}, mine), attrs));
  EXPECT_TRUE(attrs.empty());
  // Step 3 with 0.35: n = 2, the best one only (0.3) -> pruned.
  EXPECT_TRUE(prune(*p, v, trial(10, TrialState::Running, {{3, {0.35}}}, mine)));
  // Step 3 with 0.2: the best -> promoted, and rung 1 recorded.
  attrs = json::object();
  EXPECT_FALSE(p->prune(v, trial(10, TrialState::Running, {{3, {0.2}}}, mine), attrs));
  EXPECT_EQ(attrs, (json{{"completed_rung_1", 0.2}}));
  // A first report at step 9 walks rungs 0, 1 and 2 in one call (each alone or best).
  attrs = json::object();
  EXPECT_FALSE(p->prune(study({}), trial(11, TrialState::Running, {{9, {1.0}}}), attrs));
  EXPECT_EQ(attrs, (json{{"completed_rung_0", 1.0}, {"completed_rung_1", 1.0}, {"completed_rung_2", 1.0}}));
}

TEST(PrunerAsha, MaximizeEarlyStoppingRateAndBootstrap) {
  std::vector<TrialRecord> others;
  for (int i = 0; i < 5; ++i)
    others.push_back(trial(i, TrialState::Complete, {}, {{"completed_rung_0", 0.1 * (i + 1)}}));
  const StudyView vmax = study(others, {Direction::Maximize});
  auto p = make_pruner("asha");
  // Maximize: top 2 of {0.1..0.5, x} are 0.5 and 0.4.
  EXPECT_FALSE(prune(*p, vmax, trial(10, TrialState::Running, {{1, {0.45}}})));
  EXPECT_TRUE(prune(*p, vmax, trial(10, TrialState::Running, {{1, {0.35}}})));
  // min_early_stopping_rate 1: rung 0 is at step 3 (then 9, 27).
  auto late = make_pruner("asha", {{"min_early_stopping_rate", 1}});
  EXPECT_FALSE(prune(*late, vmax, trial(10, TrialState::Running, {{1, {0.0}}, {2, {0.0}}})));
  EXPECT_TRUE(prune(*late, vmax, trial(10, TrialState::Running, {{3, {0.0}}})));
  // bootstrap_count 2: a rung with <= 2 values (own included) prunes.
  auto boot = make_pruner("asha", {{"bootstrap_count", 2}});
  const StudyView one = study({trial(0, TrialState::Complete, {}, {{"completed_rung_0", 5.0}})});
  EXPECT_TRUE(prune(*boot, one, trial(10, TrialState::Running, {{1, {0.0}}})));
}

TEST(PrunerAsha, MultiObjectiveByParetoRank) {
  auto p = make_pruner("asha");
  // Minimize both. Others at rung 0: (1,5) (5,1) (3,3), all on one front. n = 4 with ours,
  // top max(1, floor(4/3)) = 1: promoted only when nothing ranks strictly better.
  std::vector<TrialRecord> others;
  for (const auto& v : std::vector<std::vector<double>>{{1, 5}, {5, 1}, {3, 3}})
    others.push_back(trial(static_cast<int64_t>(others.size()), TrialState::Complete, {}, {{"completed_rung_0", v}}));
  const StudyView view = study(others, {Direction::Minimize, Direction::Minimize});
  json attrs = json::object();
  EXPECT_FALSE(p->prune(view, trial(10, TrialState::Running, {{1, {0.5, 0.5}}}), attrs));  // dominates all
  EXPECT_EQ(attrs["completed_rung_0"], (json{0.5, 0.5}));
  EXPECT_TRUE(prune(*p, view, trial(10, TrialState::Running, {{1, {4, 4}}})));  // dominated by (3,3)
  // (0,6) joins the front at an extreme: infinite crowding distance, tied with the other
  // extreme (5,1); nothing is strictly better, so it is promoted.
  EXPECT_FALSE(prune(*p, view, trial(10, TrialState::Running, {{1, {0, 6}}})));
}

// ---- Hyperband -----------------------------------------------------------------------------

// min 1, max 27, eta 3: brackets s = 0..3 (floor(log3 27) + 1 = 4). Budgets as Optuna:
// bracket b has ceil(4 * 3^(3-b) / (4-b)) = 27, 12, 6, 4 of 49.
TEST(PrunerHyperband, BracketsCountAndAssignment) {
  auto p = make_pruner("hyperband", {{"min_resource", 1}, {"max_resource", 27}});
  std::map<int64_t, int> counts;
  const int n = 4900;
  for (int64_t i = 0; i < n; ++i) {
    json attrs = json::object();
    p->prune(study({}), trial(i, TrialState::Running), attrs);
    ASSERT_TRUE(attrs.contains("hyperband_bracket"));
    const int64_t b = attrs["hyperband_bracket"].get<int64_t>();
    ++counts[b];
    // Deterministic: the same trial in the same study gets the same bracket.
    json again = json::object();
    p->prune(study({}), trial(i, TrialState::Running), again);
    ASSERT_EQ(again["hyperband_bracket"], attrs["hyperband_bracket"]);
  }
  EXPECT_EQ(counts.size(), 4u);
  EXPECT_EQ(counts.begin()->first, 0);
  EXPECT_EQ(counts.rbegin()->first, 3);
  const double expected[] = {27.0 / 49, 12.0 / 49, 6.0 / 49, 4.0 / 49};
  for (int b = 0; b < 4; ++b) EXPECT_NEAR(counts[b] / double(n), expected[b], 0.03) << "bracket " << b;

  // max 26 < 27: only 3 brackets.
  auto p3 = make_pruner("hyperband", {{"min_resource", 1}, {"max_resource", 26}});
  std::set<int64_t> seen;
  for (int64_t i = 0; i < 500; ++i) {
    json attrs = json::object();
    p3->prune(study({}), trial(i, TrialState::Running), attrs);
    seen.insert(attrs["hyperband_bracket"].get<int64_t>());
  }
  EXPECT_EQ(seen, (std::set<int64_t>{0, 1, 2}));
}

TEST(PrunerHyperband, BracketsCompeteOnlyAmongThemselves) {
  auto p = make_pruner("hyperband", {{"min_resource", 1}, {"max_resource", 27}});
  const json b0 = {{"hyperband_bracket", 0}};
  // A stored bracket is reused.
  json attrs = json::object();
  p->prune(study({}), trial(5, TrialState::Running, {}, {{"hyperband_bracket", 2}}), attrs);
  EXPECT_EQ(attrs["hyperband_bracket"], 2);
  // Bracket 0 is ASHA with rungs at 1, 3, 9: against a better trial of bracket 0, pruned.
  json other = {{"hyperband_bracket", 0}, {"completed_rung_0", 0.1}};
  EXPECT_TRUE(prune(*p, study({trial(0, TrialState::Complete, {}, other)}), trial(9, TrialState::Running, {{1, {0.5}}}, b0)));
  // The same competitor in bracket 1 does not count: our trial is alone, so promoted.
  other["hyperband_bracket"] = 1;
  EXPECT_FALSE(prune(*p, study({trial(0, TrialState::Complete, {}, other)}), trial(9, TrialState::Running, {{1, {0.5}}}, b0)));
  // Bracket 1's first rung is at step 3: nothing happens at step 1.
  const json b1 = {{"hyperband_bracket", 1}};
  attrs = json::object();
  EXPECT_FALSE(p->prune(study({}), trial(9, TrialState::Running, {{1, {0.5}}}, b1), attrs));
  EXPECT_FALSE(attrs.contains("completed_rung_0"));
}

}  // namespace
}  // namespace deft::tune
