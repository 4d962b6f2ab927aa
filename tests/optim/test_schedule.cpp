// LR schedules against PyTorch's formulas. Where PyTorch has a recursive
// ("chainable") form of a schedule, the test uses it, so the closed forms in
// deft are checked against a different computation; the rest are transcribed
// from torch/optim/lr_scheduler.py and backed by values worked out by hand.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "deft/optim/schedule.h"
#include "optim_test_util.h"

namespace deft::optim_test {
namespace {

using nlohmann::json;
using optim::LRSchedule;
using optim::make_schedule;

constexpr double kPi = std::numbers::pi;

TEST(SchedStep, MatchesPyTorchsRecursiveForm) {
  auto s = make_schedule("step", {{"step_size", 3}, {"gamma", 0.5}});
  s->begin(0.1);
  EXPECT_FALSE(s->per_batch());
  // By hand: 0.1 for epochs 0-2, 0.05 for 3-5, 0.025 for 6-8, 0.0125 at 9.
  EXPECT_DOUBLE_EQ(s->lr(2, 999), 0.1);
  EXPECT_DOUBLE_EQ(s->lr(3, 0), 0.05);
  EXPECT_DOUBLE_EQ(s->lr(8, 0), 0.025);
  EXPECT_DOUBLE_EQ(s->lr(9, 0), 0.0125);
  // StepLR.get_lr: lr unchanged unless last_epoch % step_size == 0, then lr * gamma.
  double lr = 0.1;
  for (int e = 0; e < 20; ++e) {
    if (e > 0 && e % 3 == 0) lr *= 0.5;
    EXPECT_NEAR(s->lr(e, 0), lr, 1e-15) << "epoch " << e;
  }
}

TEST(SchedStep, CountsBatchesWhenAskedTo) {
  auto s = make_schedule("step", {{"step_size", 2}, {"gamma", 0.1}, {"interval", "batch"}});
  s->begin(1.0);
  EXPECT_TRUE(s->per_batch());
  EXPECT_DOUBLE_EQ(s->lr(0, 1), 1.0);
  EXPECT_NEAR(s->lr(0, 2), 0.1, 1e-15);
  EXPECT_NEAR(s->lr(5, 5), 0.01, 1e-15);  // the epoch does not matter
}

TEST(SchedExponential, MatchesPyTorchsRecursiveForm) {
  auto s = make_schedule("exponential", {{"gamma", 0.9}});
  s->begin(2.0);
  EXPECT_NEAR(s->lr(2, 0), 2.0 * 0.81, 1e-15);
  double lr = 2.0;  // ExponentialLR.get_lr: lr * gamma each epoch after the first
  for (int e = 0; e < 30; ++e) {
    if (e > 0) lr *= 0.9;
    EXPECT_NEAR(s->lr(e, 12345), lr, 1e-14) << "epoch " << e;
  }
}

// CosineAnnealingLR.get_lr's recursive form, for T_cur = 1..T_max:
//   lr = (1 + cos(pi T_cur / T_max)) / (1 + cos(pi (T_cur - 1) / T_max)) * (lr - eta_min) + eta_min
std::vector<double> pytorch_cosine(double base, double eta_min, int t_max) {
  std::vector<double> lrs{base};
  for (int t = 1; t <= t_max; ++t) {
    const double prev = lrs.back();
    lrs.push_back((1 + std::cos(kPi * t / t_max)) / (1 + std::cos(kPi * (t - 1) / t_max)) * (prev - eta_min) +
                  eta_min);
  }
  return lrs;
}

TEST(SchedCosine, WarmupThenPyTorchsCosineAnnealing) {
  auto s = make_schedule("cosine", {{"warmup_steps", 4}, {"total_steps", 14}, {"min_lr", 0.1}});
  s->begin(1.0);
  EXPECT_TRUE(s->per_batch());
  // Warmup by hand: (s + 1) / 4.
  for (int k = 0; k < 4; ++k) EXPECT_DOUBLE_EQ(s->lr(0, k), (k + 1) / 4.0);
  const std::vector<double> ref = pytorch_cosine(1.0, 0.1, 10);
  for (int t = 0; t <= 10; ++t) EXPECT_NEAR(s->lr(0, 4 + t), ref[t], 1e-12) << "T_cur " << t;
  EXPECT_NEAR(s->lr(0, 9), 0.55, 1e-12);  // halfway: (1 + 0.1) / 2
  EXPECT_DOUBLE_EQ(s->lr(0, 14), 0.1);
  EXPECT_DOUBLE_EQ(s->lr(7, 1000), 0.1);  // past the end: stays at min_lr
}

TEST(SchedCosine, EpochSettingsAndTheWholeRun) {
  auto s = make_schedule("cosine", {{"warmup_epochs", 1}});
  s->begin(0.5, /*steps_per_epoch=*/4, /*epochs=*/3);  // total: the run, 12 steps
  auto* cos = dynamic_cast<optim::CosineLR*>(s.get());
  ASSERT_NE(cos, nullptr);
  EXPECT_EQ(cos->warmup(), 4);
  EXPECT_EQ(cos->total(), 12);
  const std::vector<double> ref = pytorch_cosine(0.5, 0.0, 8);
  for (int t = 0; t <= 8; ++t) EXPECT_NEAR(s->lr((4 + t) / 4, 4 + t), ref[t], 1e-12);
}

// OneCycleLR.get_lr, transcribed from torch/optim/lr_scheduler.py.
double pytorch_one_cycle(int step_num, int total, double max_lr, double pct_start, double div,
                         double final_div, bool three_phase, bool cos) {
  const double initial = max_lr / div, min_lr = initial / final_div;
  struct Phase {
    double end_step, start_lr, end_lr;
  };
  std::vector<Phase> phases;
  if (three_phase) {
    phases = {{pct_start * total - 1, initial, max_lr},
              {2 * pct_start * total - 2, max_lr, initial},
              {total - 1.0, initial, min_lr}};
  } else {
    phases = {{pct_start * total - 1, initial, max_lr}, {total - 1.0, max_lr, min_lr}};
  }
  double start_step = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const double end_step = phases[i].end_step;
    if (step_num <= end_step || i == phases.size() - 1) {
      const double pct = (step_num - start_step) / (end_step - start_step);
      const double a = phases[i].start_lr, b = phases[i].end_lr;
      return cos ? b + (a - b) / 2.0 * (std::cos(kPi * pct) + 1) : (b - a) * pct + a;
    }
    start_step = phases[i].end_step;
  }
  return -1;
}

TEST(SchedOneCycle, MatchesPyTorch) {
  auto s = make_schedule("one_cycle", {{"max_lr", 1.0}, {"total_steps", 100}});
  s->begin(0.001);  // the base lr is not used when max_lr is given
  // By hand: initial = 1/25 = 0.04, peak at step 0.3*100 - 1 = 29, final = 0.04/1e4 at 99,
  // halfway down (step 64) = (1 + 4e-6) / 2.
  EXPECT_NEAR(s->lr(0, 0), 0.04, 1e-15);
  EXPECT_NEAR(s->lr(0, 29), 1.0, 1e-15);
  EXPECT_NEAR(s->lr(0, 64), 0.500002, 1e-12);
  EXPECT_NEAR(s->lr(0, 99), 4e-6, 1e-18);
  EXPECT_NEAR(s->lr(3, 150), 4e-6, 1e-18);  // past the end (PyTorch would throw)
  for (int k = 0; k < 100; ++k) {
    EXPECT_NEAR(s->lr(0, k), pytorch_one_cycle(k, 100, 1.0, 0.3, 25, 1e4, false, true), 1e-12) << k;
  }
}

TEST(SchedOneCycle, ThreePhaseAndLinear) {
  auto s = make_schedule("one_cycle", {{"max_lr", 0.5},
                                       {"total_steps", 50},
                                       {"pct_start", 0.25},
                                       {"div_factor", 10},
                                       {"final_div_factor", 100},
                                       {"three_phase", true},
                                       {"anneal_strategy", "linear"}});
  s->begin(0.1);
  // By hand: phases end at 11.5, 23, 49; initial 0.05, final 5e-4; step 23 is back at 0.05.
  EXPECT_NEAR(s->lr(0, 23), 0.05, 1e-15);
  EXPECT_NEAR(s->lr(0, 49), 5e-4, 1e-15);
  for (int k = 0; k < 50; ++k) {
    EXPECT_NEAR(s->lr(0, k), pytorch_one_cycle(k, 50, 0.5, 0.25, 10, 100, true, false), 1e-12) << k;
  }
}

TEST(SchedOneCycle, DefaultsToTheBaseLrAndTheWholeRun) {
  auto s = make_schedule("one_cycle");
  s->begin(0.5, /*steps_per_epoch=*/10, /*epochs=*/10);
  for (int k = 0; k < 100; k += 7) {
    EXPECT_NEAR(s->lr(k / 10, k), pytorch_one_cycle(k, 100, 0.5, 0.3, 25, 1e4, false, true), 1e-12) << k;
  }
}

// ReduceLROnPlateau.step, transcribed from torch/optim/lr_scheduler.py.
struct PyTorchPlateau {
  bool min_mode, rel;
  double factor, threshold, min_lr, eps = 1e-8;
  int patience, cooldown;
  double lr, best = 0;
  int bad = 0, cooldown_counter = 0;
  bool first = true;
  bool is_better(double a) const {
    if (first) return !std::isnan(a);  // best starts at +-inf
    if (min_mode) return rel ? a < best * (1 - threshold) : a < best - threshold;
    return rel ? a > best * (threshold + 1) : a > best + threshold;
  }
  void step(double current) {
    if (is_better(current)) {
      best = current;
      first = false;
      bad = 0;
    } else {
      bad += 1;
    }
    if (cooldown_counter > 0) {
      cooldown_counter -= 1;
      bad = 0;
    }
    if (bad > patience) {
      const double new_lr = std::max(lr * factor, min_lr);
      if (lr - new_lr > eps) lr = new_lr;
      cooldown_counter = cooldown;
      bad = 0;
    }
  }
};

TEST(SchedPlateau, HandTracedSequence) {
  auto s = make_schedule("reduce_on_plateau",
                         {{"factor", 0.5}, {"patience", 1}, {"threshold", 0.1}, {"cooldown", 1}});
  s->begin(1.0);
  EXPECT_FALSE(s->per_batch());
  EXPECT_TRUE(s->needs_metric());
  // Improvement means below 0.9 * best. Traced by hand (see the PyTorch algorithm in schedule.h):
  const std::vector<double> values{10, 9.5, 9.2, 8.0, 7.5, 7.4, 7.3, 7.3, 7.3};
  const std::vector<double> lr_after{1, 1, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125};
  PyTorchPlateau ref{.min_mode = true,
                     .rel = true,
                     .factor = 0.5,
                     .threshold = 0.1,
                     .min_lr = 0,
                     .patience = 1,
                     .cooldown = 1,
                     .lr = 1.0};
  for (size_t e = 0; e < values.size(); ++e) {
    s->observe(values[e]);
    ref.step(values[e]);
    EXPECT_DOUBLE_EQ(s->lr(static_cast<int64_t>(e) + 1, 0), lr_after[e]) << "epoch " << e;
    EXPECT_DOUBLE_EQ(ref.lr, lr_after[e]) << "epoch " << e;
  }
}

TEST(SchedPlateau, MatchesPyTorchOnRandomCurves) {
  const std::vector<float> noise = random_floats(300, 5, -1, 1);
  for (const char* mode : {"min", "max"}) {
    for (const char* tmode : {"rel", "abs"}) {
      auto s = make_schedule("reduce_on_plateau", {{"mode", mode},
                                                   {"threshold_mode", tmode},
                                                   {"threshold", 0.01},
                                                   {"factor", 0.7},
                                                   {"patience", 2},
                                                   {"cooldown", 2},
                                                   {"min_lr", 0.01}});
      s->begin(0.3);
      PyTorchPlateau ref{.min_mode = std::string(mode) == "min",
                         .rel = std::string(tmode) == "rel",
                         .factor = 0.7,
                         .threshold = 0.01,
                         .min_lr = 0.01,
                         .patience = 2,
                         .cooldown = 2,
                         .lr = 0.3};
      for (int e = 0; e < 300; ++e) {
        const double v = 1.0 / (1 + 0.05 * e) + 0.05 * noise[e];  // a noisy loss curve that flattens
        s->observe(v);
        ref.step(v);
        ASSERT_DOUBLE_EQ(s->lr(e + 1, 0), ref.lr) << mode << " " << tmode << " epoch " << e;
      }
      EXPECT_LT(ref.lr, 0.3);  // the curve did make it reduce
    }
  }
}

TEST(SchedPlateau, MinLrMinDeltaAndNaN) {
  auto s = make_schedule("reduce_on_plateau", {{"factor", 0.1}, {"patience", 0}, {"min_lr", 0.05}});
  s->begin(1.0);
  for (double expected : {1.0, 0.1, 0.05, 0.05}) {
    s->observe(5.0);
    EXPECT_NEAR(s->lr(0, 0), expected, 1e-15);
  }
  // Keras's min_delta: an absolute threshold. 0.505 does not beat 0.5 by 0.01 in max mode.
  auto k = make_schedule("reduce_on_plateau", {{"mode", "max"}, {"min_delta", 0.01}, {"patience", 0}});
  EXPECT_EQ(k->config()["threshold_mode"], "abs");
  k->begin(1.0);
  k->observe(0.5);
  EXPECT_DOUBLE_EQ(k->lr(0, 0), 1.0);
  k->observe(0.505);
  EXPECT_NEAR(k->lr(0, 0), 0.1, 1e-15);
  k->observe(0.6);
  k->observe(std::nan(""));  // a diverged epoch is not an improvement
  EXPECT_NEAR(k->lr(0, 0), 0.01, 1e-15);
}

TEST(SchedState, ResumeGivesTheSameSequence) {
  // Plateau: resume mid-run, and before any value (best is still infinite).
  for (int cut : {0, 5}) {
    const json cfg{{"patience", 1}, {"factor", 0.5}, {"cooldown", 1}};
    auto a = make_schedule("reduce_on_plateau", cfg);
    auto b = make_schedule("reduce_on_plateau", cfg);
    a->begin(1.0);
    b->begin(1.0);
    const std::vector<double> values{3, 2, 2.5, 2.4, 2.3, 1.0, 1.2, 1.1, 1.3, 1.3, 1.3};
    for (int e = 0; e < cut; ++e) b->observe(values[e]);
    const std::string saved = b->state_json().dump();
    auto c = make_schedule(b->type(), b->config());
    c->load_state(json::parse(saved));
    for (int e = 0; e < static_cast<int>(values.size()); ++e) {
      a->observe(values[e]);
      if (e < cut) continue;
      c->observe(values[e]);
      EXPECT_EQ(a->lr(e, 0), c->lr(e, 0)) << "cut " << cut << " epoch " << e;
    }
  }
  // Time-based schedules: the base lr and the run length come back.
  for (const auto& [name, cfg] :
       std::vector<std::pair<std::string, json>>{{"cosine", {{"warmup_epochs", 1}, {"min_lr", 0.01}}},
                                                 {"one_cycle", json::object()},
                                                 {"step", {{"step_size", 2}}},
                                                 {"exponential", {{"gamma", 0.5}, {"interval", "batch"}}}}) {
    auto a = make_schedule(name, cfg);
    a->begin(0.3, 5, 4);
    auto c = make_schedule(name, cfg);
    c->load_state(json::parse(a->state_json().dump()));
    EXPECT_EQ(c->base_lr(), 0.3);
    for (int k = 0; k < 20; ++k) EXPECT_EQ(a->lr(k / 5, k), c->lr(k / 5, k)) << name << " step " << k;
  }
}

TEST(SchedFactory, ConfigRoundTripsAndClone) {
  for (const std::string& name : optim::schedule_names()) {
    const json cfg = name == "step" ? json{{"step_size", 4}} : json::object();
    auto s = make_schedule(name, cfg);
    EXPECT_EQ(s->type(), name);
    EXPECT_EQ(make_schedule(name, s->config())->config(), s->config()) << name;
    auto c = s->clone();
    EXPECT_EQ(c->config(), s->config());
    EXPECT_FALSE(c->begun());
  }
}

TEST(SchedFactory, ErrorsNameTheProblem) {
  expect_input_error([] { make_schedule("warmup"); }, {"'warmup'", "step, exponential, cosine, one_cycle"});
  expect_input_error([] { make_schedule("step", {{"stepsize", 3}}); }, {"'stepsize'", "step_size", "gamma"});
  expect_input_error([] { make_schedule("step", {{"step_size", 0}}); }, {"step_size", "0"});
  expect_input_error([] { make_schedule("step", {{"step_size", 2.5}}); }, {"step_size", "integer", "2.5"});
  expect_input_error([] { make_schedule("exponential", {{"interval", "week"}}); }, {"interval", "week"});
  expect_input_error(
      [] {
        make_schedule("one_cycle", {{"anneal_strategy", "exp"}});
      },
      {"anneal_strategy", "exp"});
  expect_input_error([] { make_schedule("one_cycle", {{"pct_start", 1.5}}); }, {"pct_start", "1.5"});
  expect_input_error([] { make_schedule("reduce_on_plateau", {{"factor", 1.0}}); }, {"factor", "1"});
  expect_input_error([] { make_schedule("reduce_on_plateau", {{"mode", "lowest"}}); }, {"mode", "lowest"});
  expect_input_error(
      [] {
        make_schedule("reduce_on_plateau", {{"min_delta", 0.1}, {"threshold", 0.1}});
      },
      {"min_delta", "threshold"});
  expect_input_error(
      [] {
        make_schedule("cosine", {{"warmup_steps", 2}, {"warmup_epochs", 1}});
      },
      {"warmup_steps", "warmup_epochs"});
  auto cos = make_schedule("cosine");
  expect_input_error([&] { cos->begin(0.1); }, {"cosine", "total_steps"});
  expect_input_error(
      [&] {
        make_schedule("cosine", {{"warmup_steps", 10}, {"total_steps", 10}})->begin(0.1);
      },
      {"warmup", "10"});
  expect_input_error(
      [&] {
        make_schedule("cosine", {{"warmup_epochs", 1}, {"total_steps", 10}})->begin(0.1);
      },
      {"steps per epoch"});
  auto step = make_schedule("step");
  EXPECT_THROW(step->lr(0, 0), Error);  // not begun: a programming error
  step->begin(0.1);
  expect_input_error([&] { step->lr(-1, 0); }, {"epoch", "-1"});
  expect_input_error([&] { step->begin(-0.1); }, {"base lr", "-0.1"});
  expect_input_error([&] { step->load_state(make_schedule("exponential")->config()); }, {"load_state"});
}

}  // namespace
}  // namespace deft::optim_test
