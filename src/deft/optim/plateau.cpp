// ReduceLROnPlateau: the one schedule driven by a monitored value, not by time.
#include <cmath>
#include <limits>

#include "deft/optim/checks.h"
#include "deft/optim/schedule.h"
#include "deft/tensor/error.h"

namespace deft::optim {

namespace {
constexpr double kInf = std::numeric_limits<double>::infinity();
}

ReduceLROnPlateau::ReduceLROnPlateau(ReduceLROnPlateauOptions options) : options_(std::move(options)) {
  const ReduceLROnPlateauOptions& o = options_;
  const std::string owner = "schedule reduce_on_plateau";
  DEFT_CHECK(o.mode == "min" || o.mode == "max", "{}: mode must be \"min\" or \"max\", got \"{}\"", owner,
             o.mode);
  DEFT_CHECK(o.threshold_mode == "rel" || o.threshold_mode == "abs",
             "{}: threshold_mode must be \"rel\" or \"abs\", got \"{}\"", owner, o.threshold_mode);
  // A factor of 1 or more would never lower the lr (PyTorch rejects it too).
  detail::check_unit_interval(owner, "factor", o.factor);
  DEFT_CHECK(o.patience >= 0, "{}: patience must be >= 0, got {}", owner, o.patience);
  DEFT_CHECK(o.cooldown >= 0, "{}: cooldown must be >= 0, got {}", owner, o.cooldown);
  detail::check_non_negative(owner, "threshold", o.threshold);
  detail::check_non_negative(owner, "min_lr", o.min_lr);
  detail::check_non_negative(owner, "eps", o.eps);
}

void ReduceLROnPlateau::begin(double base_lr, int64_t steps_per_epoch, int64_t epochs) {
  LRSchedule::begin(base_lr, steps_per_epoch, epochs);
  lr_ = base_lr;
  best_ = options_.mode == "min" ? kInf : -kInf;
  bad_epochs_ = 0;
  cooldown_counter_ = 0;
}

double ReduceLROnPlateau::lr(int64_t epoch, int64_t step) const {
  check_begun();
  DEFT_CHECK(epoch >= 0 && step >= 0, "schedule {}: epoch and step must be >= 0, got epoch {} and step {}",
             type(), epoch, step);
  return lr_;
}

bool ReduceLROnPlateau::better(double value) const {
  const double t = options_.threshold;
  const bool rel = options_.threshold_mode == "rel";
  if (options_.mode == "min") return rel ? value < best_ * (1.0 - t) : value < best_ - t;
  return rel ? value > best_ * (1.0 + t) : value > best_ + t;
}

void ReduceLROnPlateau::observe(double value) {
  check_begun();
  // NaN is never better, so a diverging run counts as a bad epoch (as in PyTorch).
  if (better(value)) {
    best_ = value;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_counter_ > 0) {
    --cooldown_counter_;
    bad_epochs_ = 0;
  }
  if (bad_epochs_ > options_.patience) {
    const double reduced = std::max(lr_ * options_.factor, options_.min_lr);
    if (lr_ - reduced > options_.eps) lr_ = reduced;
    cooldown_counter_ = options_.cooldown;
    bad_epochs_ = 0;
  }
}

nlohmann::json ReduceLROnPlateau::config() const {
  const ReduceLROnPlateauOptions& o = options_;
  return {{"mode", o.mode},
          {"factor", o.factor},
          {"patience", o.patience},
          {"threshold", o.threshold},
          {"threshold_mode", o.threshold_mode},
          {"cooldown", o.cooldown},
          {"min_lr", o.min_lr},
          {"eps", o.eps}};
}

nlohmann::json ReduceLROnPlateau::state_json() const {
  nlohmann::json s = LRSchedule::state_json();
  s["lr"] = lr_;
  // JSON has no infinity: "no best value yet" is null.
  s["best"] = std::isfinite(best_) ? nlohmann::json(best_) : nlohmann::json(nullptr);
  s["bad_epochs"] = bad_epochs_;
  s["cooldown_counter"] = cooldown_counter_;
  return s;
}

void ReduceLROnPlateau::load_state(const nlohmann::json& state) {
  const std::string t = type();
  LRSchedule::load_state(state);  // checks type, restores the base and resets the rest
  for (const char* key : {"lr", "best", "bad_epochs", "cooldown_counter"}) {
    DEFT_CHECK(state.contains(key), "schedule {}: load_state: state has no '{}'", t, key);
  }
  DEFT_CHECK(state["lr"].is_number() && state["lr"].get<double>() >= 0,
             "schedule {}: load_state: 'lr' must be a number >= 0, got {}", t, state["lr"].dump());
  DEFT_CHECK(state["best"].is_number() || state["best"].is_null(),
             "schedule {}: load_state: 'best' must be a number or null, got {}", t, state["best"].dump());
  for (const char* key : {"bad_epochs", "cooldown_counter"}) {
    DEFT_CHECK(state[key].is_number_integer() && state[key].get<int64_t>() >= 0,
               "schedule {}: load_state: '{}' must be an integer >= 0, got {}", t, key, state[key].dump());
  }
  lr_ = state["lr"].get<double>();
  if (state["best"].is_number()) best_ = state["best"].get<double>();
  bad_epochs_ = state["bad_epochs"].get<int64_t>();
  cooldown_counter_ = state["cooldown_counter"].get<int64_t>();
}

}  // namespace deft::optim
