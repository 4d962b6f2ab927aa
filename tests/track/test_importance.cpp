// fANOVA importances on synthetic objectives whose answer is known.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <numeric>

#include "deft/track/importance.h"

namespace deft::track {
namespace {

// Uniform [0, 1) numbers and standard normals from a fixed LCG: the test's data do not
// depend on the library's generators.
struct TestRng {
  uint64_t s;
  double uniform() {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  }
  double normal() { return std::sqrt(-2 * std::log(1 - uniform())) * std::cos(2 * M_PI * uniform()); }
};

const std::vector<std::pair<double, double>> kUnit2 = {{0, 1}, {0, 1}};

TEST(Importance, TheParameterThatDrivesALinearObjectiveExplainsMostOfIt) {
  TestRng r{1};
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 200; ++i) {
    const double a = r.uniform(), b = r.uniform();
    x.push_back({a, b});
    y.push_back(10 * a + 0.1 * b + 0.1 * r.normal());
  }
  std::vector<double> sd;
  const auto imp = fanova_importances(x, y, kUnit2, {}, &sd);
  ASSERT_EQ(imp.size(), 2u);
  EXPECT_GT(imp[0], 0.9) << imp[0] << " " << imp[1];
  EXPECT_NEAR(imp[0] + imp[1], 1.0, 1e-12);
  EXPECT_GE(sd[0], 0);
  // deterministic for a seed; another seed gives (slightly) other trees
  EXPECT_EQ(imp, fanova_importances(x, y, kUnit2));
  EXPECT_NE(imp, fanova_importances(x, y, kUnit2, {.seed = 7}));
}

TEST(Importance, AnObjectiveOfTheSecondParameterOnlyRanksItFirst) {
  TestRng r{2};
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (int i = 0; i < 150; ++i) {
    const double a = r.uniform(), b = r.uniform();
    x.push_back({a, b});
    y.push_back(std::sin(6 * b));
  }
  const auto imp = fanova_importances(x, y, kUnit2);
  EXPECT_GT(imp[1], imp[0]);
  EXPECT_GT(imp[1], 0.9);
}

TEST(Importance, AConstantObjectiveGivesZerosNotNaN) {
  std::vector<std::vector<double>> x = {{0.1, 0.2}, {0.5, 0.9}, {0.7, 0.3}, {0.2, 0.6}};
  const auto imp = fanova_importances(x, {1, 1, 1, 1}, kUnit2);
  ASSERT_EQ(imp.size(), 2u);
  for (double v : imp) {
    EXPECT_FALSE(std::isnan(v));
    EXPECT_EQ(v, 0);
  }
  EXPECT_EQ(fanova_importances({}, {}, kUnit2), (std::vector<double>{0, 0}));
}

// Trials as the study store holds them: a log-scaled float, an int and a categorical.
std::vector<TrialRecord> trials(const std::function<double(double lr, int64_t units, int64_t opt)>& f, int n = 80) {
  TestRng r{3};
  const Distribution lr = Distribution::float_range(1e-5, 1e-1, true);
  const Distribution units = Distribution::int_range(16, 512, true);
  const Distribution opt = Distribution::categorical({"sgd", "adam", "rmsprop"});
  std::vector<TrialRecord> out;
  for (int i = 0; i < n; ++i) {
    TrialRecord t;
    t.number = i;
    t.state = TrialState::Complete;
    const double l = std::exp(std::log(1e-5) + r.uniform() * (std::log(1e-1) - std::log(1e-5)));
    const auto u = static_cast<int64_t>(16 + r.uniform() * 496);
    const auto o = static_cast<int64_t>(r.uniform() * 3);
    t.params = {{"lr", l}, {"units", static_cast<double>(u)}, {"optimizer", static_cast<double>(o)}};
    t.distributions = {{"lr", lr}, {"units", units}, {"optimizer", opt}};
    t.values = {f(l, u, o)};
    out.push_back(t);
  }
  return out;
}

TEST(Importance, ACategoricalParameterThatDecidesTheObjectiveRanksFirst) {
  auto t = trials([](double lr, int64_t, int64_t opt) { return (opt == 1 ? 0.9 : opt == 2 ? 0.7 : 0.3) + 0.001 * std::log(lr); });
  // pruned and failed trials, and one without a value, are left out
  TrialRecord p = t[0];
  p.state = TrialState::Pruned;
  p.values = {100};
  t.push_back(p);
  EXPECT_EQ(importance_trial_count(t), 80u);
  const auto imp = param_importances(t);
  ASSERT_EQ(imp.size(), 3u);
  EXPECT_EQ(imp[0].name, "optimizer");
  EXPECT_GT(imp[0].importance, 0.8);
  double sum = 0;
  for (const auto& x : imp) sum += x.importance;
  EXPECT_NEAR(sum, 1.0, 1e-9);
}

TEST(Importance, LogScaledParametersAreSplitInLogSpace) {
  const auto imp = param_importances(trials([](double lr, int64_t, int64_t) { return -std::pow(std::log10(lr) + 3, 2); }));
  ASSERT_EQ(imp.size(), 3u);
  EXPECT_EQ(imp[0].name, "lr");
  EXPECT_GT(imp[0].importance, 0.8);
}

TEST(Importance, ConstantObjectivesSingleValuedAndConditionalParametersAreWellDefined) {
  auto t = trials([](double, int64_t, int64_t) { return 0.5; });
  for (const auto& x : param_importances(t)) {
    EXPECT_FALSE(std::isnan(x.importance)) << x.name;
    EXPECT_EQ(x.importance, 0) << x.name;
  }
  // a single-valued parameter gets 0; one only some trials have is left out (Optuna's rule)
  t = trials([](double, int64_t u, int64_t) { return static_cast<double>(u); });
  for (size_t i = 0; i < t.size(); ++i) {
    t[i].params["fixed"] = 0;
    t[i].distributions["fixed"] = Distribution::categorical({"only"});
    if (i % 2) {
      t[i].params["dropout"] = 0.1;
      t[i].distributions["dropout"] = Distribution::float_range(0, 0.5);
    }
  }
  const auto imp = param_importances(t);
  ASSERT_EQ(imp.size(), 4u);
  EXPECT_EQ(imp[0].name, "units");
  for (const auto& x : imp) {
    EXPECT_NE(x.name, "dropout");
    if (x.name == "fixed") {
      EXPECT_EQ(x.importance, 0);
    }
  }
  EXPECT_TRUE(param_importances({}).empty());
  EXPECT_TRUE(param_importances({t[0]}).empty());
}

}  // namespace
}  // namespace deft::track
