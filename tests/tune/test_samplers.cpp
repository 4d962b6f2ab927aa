// Samplers: values inside their distributions, determinism, the grid's coverage, the
// Sobol sequence's stratification, and TPE against random search on Branin.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numbers>
#include <set>

#include "deft/tensor/error.h"
#include "deft/tune/sampler.h"
#include "deft/tune/sobol.h"

namespace deft::tune {
namespace {

using json = nlohmann::json;

SearchSpace mixed_space() {
  return {
      {"a_lin", Distribution::float_range(-3, 5)},
      {"b_log", Distribution::float_range(1e-5, 1, true)},
      {"c_step", Distribution::float_range(0, 1, false, 0.25)},
      {"d_int", Distribution::int_range(1, 10)},
      {"e_int_step", Distribution::int_range(0, 20, false, 5)},
      {"f_int_log", Distribution::int_range(1, 1000, true)},
      {"g_cat", Distribution::categorical({"x", "y", "z"})},
  };
}

// Asks the sampler for every parameter of `space` the way a study does: the relative
// space first, then each parameter the relative sample left out.
TrialRecord suggest(Sampler& s, StudyView& view, int64_t number, const SearchSpace& space) {
  TrialRecord t;
  t.id = number + 100;
  t.number = number;
  t.state = TrialState::Running;
  const SearchSpace rel_space = s.infer_relative_search_space(view, t);
  const std::map<std::string, double> rel = s.sample_relative(view, t, rel_space);
  for (const auto& [name, d] : space) {
    auto it = rel.find(name);
    t.params[name] = it != rel.end() ? it->second : s.sample_independent(view, t, name, d);
    t.distributions[name] = d;
  }
  return t;
}

// A whole study in memory: suggest, evaluate, record as Complete.
std::vector<TrialRecord> run_study(Sampler& s, const SearchSpace& space, int n_trials,
                                   const std::function<double(const TrialRecord&)>& objective) {
  StudyView view{"test", {Direction::Minimize}, {}};
  for (int i = 0; i < n_trials; ++i) {
    TrialRecord t = suggest(s, view, i, space);
    t.values = {objective(t)};
    t.state = TrialState::Complete;
    view.trials.push_back(t);
  }
  return view.trials;
}

double branin(double x1, double x2) {
  const double pi = std::numbers::pi;
  const double b = 5.1 / (4 * pi * pi), c = 5 / pi, t = 1 / (8 * pi);
  return std::pow(x2 - b * x1 * x1 + c * x1 - 6, 2) + 10 * (1 - t) * std::cos(x1) + 10;
}

SearchSpace branin_space() {
  return {{"x1", Distribution::float_range(-5, 10)}, {"x2", Distribution::float_range(0, 15)}};
}

double best_branin(Sampler& s, int n_trials) {
  const auto trials = run_study(s, branin_space(), n_trials,
                                [](const TrialRecord& t) { return branin(t.params.at("x1"), t.params.at("x2")); });
  double best = std::numeric_limits<double>::infinity();
  for (const auto& t : trials) best = std::min(best, t.values[0]);
  return best;
}

TEST(SamplerAll, ValuesLieInTheirDistributions) {
  const SearchSpace space = mixed_space();
  for (const std::string name : {"random", "sobol", "tpe", "tpe-multivariate"}) {
    const bool mv = name == "tpe-multivariate";
    auto s = make_sampler(mv ? "tpe" : name, mv ? json{{"seed", 5}, {"multivariate", true}} : json{{"seed", 5}});
    const auto trials = run_study(*s, space, 40, [](const TrialRecord& t) {
      return t.params.at("a_lin") + std::log(t.params.at("b_log")) + t.params.at("d_int") + t.params.at("g_cat");
    });
    std::set<double> cats;
    for (const auto& t : trials)
      for (const auto& [p, d] : space) {
        EXPECT_TRUE(d.contains(t.params.at(p))) << name << " " << p << " = " << t.params.at(p);
        if (p == "g_cat") cats.insert(t.params.at(p));
      }
    EXPECT_EQ(cats.size(), 3u) << name;
  }
}

TEST(SamplerRandom, CoversRangesOnTheirScale) {
  auto s = make_sampler("random", {{"seed", 1}});
  const SearchSpace space = mixed_space();
  const auto trials = run_study(*s, space, 400, [](const TrialRecord&) { return 0.0; });
  std::set<double> ints, steps;
  int below_1e3 = 0;
  for (const auto& t : trials) {
    ints.insert(t.params.at("d_int"));
    steps.insert(t.params.at("c_step"));
    below_1e3 += t.params.at("b_log") < 1e-3;
  }
  EXPECT_EQ(ints.size(), 10u);
  EXPECT_EQ(steps, (std::set<double>{0, 0.25, 0.5, 0.75, 1.0}));
  // Log-uniform on [1e-5, 1]: P(x < 1e-3) = 2/5; uniform would give 0.1%.
  EXPECT_NEAR(below_1e3 / 400.0, 0.4, 0.08);
}

TEST(SamplerRandom, DeterministicPerSeedAndTrialsDiffer) {
  const Distribution d = Distribution::float_range(0, 1);
  StudyView view{"s", {Direction::Minimize}, {}};
  const auto draw = [&](uint64_t seed, int64_t number) {
    auto s = make_sampler("random", {{"seed", seed}});
    TrialRecord t;
    t.number = number;
    return s->sample_independent(view, t, "x", d);
  };
  EXPECT_EQ(draw(3, 7), draw(3, 7));
  EXPECT_NE(draw(3, 7), draw(4, 7));
  EXPECT_NE(draw(3, 7), draw(3, 8));
  auto s = make_sampler("random", {{"seed", 3}});
  TrialRecord t;
  t.number = 7;
  EXPECT_NE(s->sample_independent(view, t, "x", d), s->sample_independent(view, t, "y", d));
}

TEST(SamplerFactory, UnknownNamesAndOptionsAreInputErrors) {
  EXPECT_THROW(make_sampler("cmaes"), InputError);
  EXPECT_THROW(make_sampler("random", {{"sed", 1}}), InputError);
  EXPECT_THROW(make_sampler("tpe", {{"startup", "lhs"}}), InputError);
  EXPECT_THROW(make_sampler("grid", json::object()), InputError);
}

TEST(GridSampler, VisitsEveryPointOnceInSizeTrials) {
  const json grid = {{"x", {1, 2, 3}}, {"y", {"a", "b"}}, {"z", {0.5, 0.25}}};
  const SearchSpace space = {{"x", Distribution::int_range(1, 3)},
                             {"y", Distribution::categorical({"a", "b"})},
                             {"z", Distribution::float_range(0, 1)}};
  auto s = make_sampler("grid", {{"search_space", grid}, {"seed", 1}});
  const auto trials = run_study(*s, space, 24, [](const TrialRecord&) { return 0.0; });
  std::set<std::vector<double>> seen;
  std::vector<std::vector<double>> order;
  for (int i = 0; i < 12; ++i) {
    const auto& p = trials[static_cast<size_t>(i)].params;
    order.push_back({p.at("x"), p.at("y"), p.at("z")});
    seen.insert(order.back());
  }
  EXPECT_EQ(seen.size(), 12u);
  for (int i = 12; i < 24; ++i) {  // the second pass repeats the first
    const auto& p = trials[static_cast<size_t>(i)].params;
    EXPECT_EQ((std::vector<double>{p.at("x"), p.at("y"), p.at("z")}), order[static_cast<size_t>(i - 12)]);
  }
  // Another seed visits the same points in another order.
  auto s2 = make_sampler("grid", {{"search_space", grid}, {"seed", 2}});
  const auto trials2 = run_study(*s2, space, 12, [](const TrialRecord&) { return 0.0; });
  std::vector<std::vector<double>> order2;
  for (const auto& t : trials2) order2.push_back({t.params.at("x"), t.params.at("y"), t.params.at("z")});
  EXPECT_NE(order, order2);
  EXPECT_EQ(seen, std::set<std::vector<double>>(order2.begin(), order2.end()));
}

TEST(GridSampler, UnknownParameterAndOutOfRangeValueAreInputErrors) {
  auto s = make_sampler("grid", {{"search_space", {{"x", {1, 2}}, {"w", {5}}}}});
  StudyView view{"s", {Direction::Minimize}, {}};
  TrialRecord t;
  t.number = 0;
  try {
    s->sample_independent(view, t, "lr", Distribution::float_range(0, 1));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'lr'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(s->sample_independent(view, t, "w", Distribution::int_range(0, 3)), InputError);
}

TEST(SobolSequence, KnownFirstPointsUnscrambled) {
  // Dimension 1 is van der Corput; dimension 2 (x+1, m1 = 1) gives 0, 1/2, 3/4, 1/4.
  SobolSequence s(2, false, 0);
  const std::vector<std::vector<double>> expected = {{0, 0}, {0.5, 0.5}, {0.25, 0.75}, {0.75, 0.25}};
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(s.point(i), expected[i]) << i;
}

// Each of the first 2^m points of every coordinate falls in its own 1/2^m interval, and
// the first two coordinates form a (0, m, 2)-net: 64 points, one per cell of an 8x8 grid.
// Owen scrambling keeps both properties.
TEST(SobolSequence, StratifiedProjections) {
  for (const bool scramble : {false, true}) {
    SobolSequence s(SobolSequence::kMaxDims, scramble, 11);
    std::vector<std::vector<double>> pts;
    for (uint64_t i = 0; i < 64; ++i) pts.push_back(s.point(i));
    for (int j = 0; j < s.dims(); ++j) {
      std::set<int> bins;
      for (const auto& p : pts) {
        ASSERT_GE(p[static_cast<size_t>(j)], 0.0);
        ASSERT_LT(p[static_cast<size_t>(j)], 1.0);
        bins.insert(static_cast<int>(p[static_cast<size_t>(j)] * 64));
      }
      EXPECT_EQ(bins.size(), 64u) << "dimension " << j << " scramble " << scramble;
    }
    std::set<std::pair<int, int>> cells;
    for (const auto& p : pts) cells.insert({static_cast<int>(p[0] * 8), static_cast<int>(p[1] * 8)});
    EXPECT_EQ(cells.size(), 64u) << "scramble " << scramble;
  }
}

TEST(SobolSequence, ScrambleIsSeeded) {
  SobolSequence a(4, true, 1), b(4, true, 1), c(4, true, 2);
  EXPECT_EQ(a.point(5), b.point(5));
  EXPECT_NE(a.point(5), c.point(5));
  EXPECT_THROW(SobolSequence(SobolSequence::kMaxDims + 1, false, 0), InputError);
}

TEST(SobolSampler, RelativeSamplesFollowTheSequence) {
  // After one Complete trial the intersection space is {u, v}; trials 0..63 then take the
  // 64 points of the scrambled sequence: one per cell of an 8x8 grid over the box.
  auto s = make_sampler("sobol", {{"seed", 4}});
  const SearchSpace space = {{"u", Distribution::float_range(-1, 1)}, {"v", Distribution::float_range(10, 20)}};
  StudyView view{"s", {Direction::Minimize}, {}};
  TrialRecord first;
  first.id = 1;
  first.number = 0;
  first.state = TrialState::Complete;
  first.values = {0};
  first.params = {{"u", 0}, {"v", 15}};
  first.distributions = space;
  view.trials.push_back(first);
  std::set<std::pair<int, int>> cells;
  for (int64_t n = 0; n < 64; ++n) {
    TrialRecord t;
    t.number = n;
    const SearchSpace rel = s->infer_relative_search_space(view, t);
    ASSERT_EQ(rel.size(), 2u);
    const auto x = s->sample_relative(view, t, rel);
    cells.insert({static_cast<int>((x.at("u") + 1) / 2 * 8), static_cast<int>((x.at("v") - 10) / 10 * 8)});
  }
  EXPECT_EQ(cells.size(), 64u);
}

TEST(TpeSampler, BeatsRandomSearchOnBranin) {
  // 60 trials, 10 seeds. Branin's minimum is 0.397887.
  int tpe_wins = 0;
  double tpe_sum = 0, random_sum = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto tpe = make_sampler("tpe", {{"seed", seed}});
    auto rnd = make_sampler("random", {{"seed", seed}});
    const double a = best_branin(*tpe, 60), b = best_branin(*rnd, 60);
    tpe_sum += a;
    random_sum += b;
    tpe_wins += a < b;
  }
  std::printf("branin best after 60 trials, mean over 10 seeds: tpe %.4f random %.4f (tpe better in %d)\n",
              tpe_sum / 10, random_sum / 10, tpe_wins);
  EXPECT_LT(tpe_sum, random_sum);
  EXPECT_GE(tpe_wins, 6);
}

TEST(TpeSampler, MultivariateBeatsRandomSearchOnBranin) {
  int wins = 0;
  double tpe_sum = 0, random_sum = 0;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    auto tpe = make_sampler("tpe", {{"seed", seed}, {"multivariate", true}});
    auto rnd = make_sampler("random", {{"seed", seed}});
    const double a = best_branin(*tpe, 60), b = best_branin(*rnd, 60);
    tpe_sum += a;
    random_sum += b;
    wins += a < b;
  }
  std::printf("branin multivariate: tpe %.4f random %.4f (tpe better in %d)\n", tpe_sum / 10, random_sum / 10, wins);
  EXPECT_LT(tpe_sum, random_sum);
  EXPECT_GE(wins, 6);
}

TEST(TpeSampler, SobolStartupStillOptimizes) {
  auto tpe = make_sampler("tpe", {{"seed", 2}, {"startup", "sobol"}, {"multivariate", true}});
  EXPECT_LT(best_branin(*tpe, 60), 3.0);
}

TEST(TpeSampler, DeterministicGivenSeedAndHistory) {
  const auto objective = [](const TrialRecord& t) { return branin(t.params.at("x1"), t.params.at("x2")); };
  for (const bool mv : {false, true}) {
    auto a = make_sampler("tpe", {{"seed", 9}, {"multivariate", mv}});
    auto b = make_sampler("tpe", {{"seed", 9}, {"multivariate", mv}});
    auto c = make_sampler("tpe", {{"seed", 10}, {"multivariate", mv}});
    const auto ta = run_study(*a, branin_space(), 25, objective);
    const auto tb = run_study(*b, branin_space(), 25, objective);
    const auto tc = run_study(*c, branin_space(), 25, objective);
    EXPECT_EQ(ta.back().params, tb.back().params);
    EXPECT_NE(ta.back().params, tc.back().params);
  }
}

// "kind" chooses a branch; x exists only for "good", y only for "bad". The sampler must
// cope with parameters missing from most trials and learn that "good" is better.
TEST(TpeSampler, ConditionalSpace) {
  for (const bool mv : {false, true}) {
    auto s = make_sampler("tpe", {{"seed", 3}, {"multivariate", mv}});
    StudyView view{"s", {Direction::Minimize}, {}};
    const Distribution kind = Distribution::categorical({"good", "bad"});
    const Distribution dx = Distribution::float_range(0, 1), dy = Distribution::float_range(-1, 1);
    int good_late = 0;
    for (int64_t i = 0; i < 50; ++i) {
      TrialRecord t;
      t.id = i;
      t.number = i;
      const SearchSpace rel_space = s->infer_relative_search_space(view, t);
      const auto rel = s->sample_relative(view, t, rel_space);
      const auto pick = [&](const std::string& name, const Distribution& d) {
        auto it = rel.find(name);
        const double v = it != rel.end() ? it->second : s->sample_independent(view, t, name, d);
        EXPECT_TRUE(d.contains(v)) << name << " " << v;
        t.params[name] = v;
        t.distributions[name] = d;
        return v;
      };
      if (pick("kind", kind) == 0) {
        const double x = pick("x", dx);
        t.values = {(x - 0.2) * (x - 0.2)};
        good_late += i >= 30;
      } else {
        const double y = pick("y", dy);
        t.values = {1 + y * y};
      }
      t.state = TrialState::Complete;
      view.trials.push_back(t);
    }
    EXPECT_GE(good_late, 14) << "multivariate " << mv;
  }
}

// Four workers start trials before any of them finishes. With the constant liar the
// pending trials count as the worst results, so the later suggestions move away from them.
TEST(TpeSampler, ConstantLiarSpreadsParallelSuggestions) {
  const Distribution d = Distribution::float_range(0, 1);
  double spread_liar = 0, spread_plain = 0;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    for (const bool liar : {false, true}) {
      auto s = make_sampler("tpe", {{"seed", seed}, {"constant_liar", liar}});
      StudyView view{"s", {Direction::Minimize}, {}};
      auto warm = make_sampler("random", {{"seed", seed + 100}});
      for (int64_t i = 0; i < 30; ++i) {
        TrialRecord t;
        t.id = i;
        t.number = i;
        t.params["x"] = warm->sample_independent(view, t, "x", d);
        t.distributions["x"] = d;
        t.values = {std::pow(t.params["x"] - 0.3, 2)};
        t.state = TrialState::Complete;
        view.trials.push_back(t);
      }
      std::vector<double> xs;
      for (int64_t i = 30; i < 34; ++i) {
        TrialRecord t;
        t.id = i;
        t.number = i;
        t.params["x"] = s->sample_independent(view, t, "x", d);
        t.distributions["x"] = d;
        view.trials.push_back(t);  // stays Running
        xs.push_back(t.params["x"]);
      }
      double pair = 0;
      for (size_t a = 0; a < xs.size(); ++a)
        for (size_t b = a + 1; b < xs.size(); ++b) pair += std::abs(xs[a] - xs[b]);
      (liar ? spread_liar : spread_plain) += pair;
    }
  }
  std::printf("sum of pairwise distances of 4 pending suggestions: liar %.4f plain %.4f\n", spread_liar, spread_plain);
  EXPECT_GT(spread_liar, spread_plain);
}

TEST(TpeSampler, PrunedTrialsCountAfterCompleteOnes) {
  // Ten Complete trials near x = 0.9 with poor values and ten Pruned trials near x = 0.1
  // whose last intermediate values look excellent: gamma(20) = 2 puts Complete trials
  // (which rank first) in `below`, so TPE proposes near 0.9, not near the pruned ones.
  const Distribution d = Distribution::float_range(0, 1);
  StudyView view{"s", {Direction::Minimize}, {}};
  for (int64_t i = 0; i < 20; ++i) {
    TrialRecord t;
    t.id = i;
    t.number = i;
    const bool pruned = i % 2 == 1;
    t.params["x"] = pruned ? 0.05 + 0.01 * static_cast<double>(i) / 2 : 0.85 + 0.01 * static_cast<double>(i) / 2;
    t.distributions["x"] = d;
    if (pruned) {
      t.state = TrialState::Pruned;
      t.intermediate[3] = {-100.0};
    } else {
      t.state = TrialState::Complete;
      t.values = {10.0 + static_cast<double>(i)};
    }
    view.trials.push_back(t);
  }
  auto s = make_sampler("tpe", {{"seed", 1}});
  int near_complete = 0;
  for (int64_t n = 20; n < 30; ++n) {
    TrialRecord t;
    t.id = n;
    t.number = n;
    near_complete += s->sample_independent(view, t, "x", d) > 0.5;
  }
  EXPECT_GE(near_complete, 8);
}

TEST(TpeSampler, MultiObjectiveStaysInRangeAndFindsTradeOffs) {
  // Minimize (x^2, (x-1)^2): every x in [0, 1] is Pareto optimal; TPE should concentrate there.
  auto s = make_sampler("tpe", {{"seed", 4}});
  const Distribution d = Distribution::float_range(-5, 5);
  StudyView view{"s", {Direction::Minimize, Direction::Minimize}, {}};
  int inside_late = 0;
  for (int64_t i = 0; i < 60; ++i) {
    TrialRecord t;
    t.id = i;
    t.number = i;
    const double x = s->sample_independent(view, t, "x", d);
    ASSERT_TRUE(d.contains(x));
    t.params["x"] = x;
    t.distributions["x"] = d;
    t.values = {x * x, (x - 1) * (x - 1)};
    t.state = TrialState::Complete;
    view.trials.push_back(t);
    inside_late += i >= 30 && x > -0.5 && x < 1.5;
  }
  // Random search would land in [-0.5, 1.5] 20% of the time (6 of 30).
  EXPECT_GE(inside_late, 12);
}

}  // namespace
}  // namespace deft::tune
