#include "deft/optim/schedule.h"

#include <cctype>
#include <cmath>
#include <numbers>

#include "deft/optim/checks.h"
#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"

namespace deft::optim {

// ---- base ----------------------------------------------------------------------------------

void LRSchedule::begin(double base_lr, int64_t steps_per_epoch, int64_t epochs) {
  DEFT_CHECK(std::isfinite(base_lr) && base_lr >= 0,
             "schedule {}: base lr must be a finite number >= 0, got {}", type(), base_lr);
  DEFT_CHECK(steps_per_epoch >= 0, "schedule {}: steps_per_epoch must be >= 0, got {}", type(),
             steps_per_epoch);
  DEFT_CHECK(epochs >= 0, "schedule {}: epochs must be >= 0, got {}", type(), epochs);
  base_lr_ = base_lr;
  steps_per_epoch_ = steps_per_epoch;
  epochs_ = epochs;
  begun_ = true;
}

void LRSchedule::check_begun() const {
  if (!begun_) fail<Error>("schedule {}: call begin() before asking for the lr", type());
}

nlohmann::json LRSchedule::state_json() const {
  check_begun();
  return {
      {"type", type()}, {"base_lr", base_lr_}, {"steps_per_epoch", steps_per_epoch_}, {"epochs", epochs_}};
}

void LRSchedule::load_state(const nlohmann::json& state) {
  const std::string t = type();
  DEFT_CHECK(state.is_object(), "schedule {}: load_state: state must be a JSON object, got {}", t,
             state.dump());
  for (const char* key : {"type", "base_lr", "steps_per_epoch", "epochs"}) {
    DEFT_CHECK(state.contains(key), "schedule {}: load_state: state has no '{}'", t, key);
  }
  DEFT_CHECK(state["type"] == t, "schedule {}: load_state: state was saved by schedule {}", t,
             state["type"].dump());
  DEFT_CHECK(state["base_lr"].is_number(), "schedule {}: load_state: 'base_lr' must be a number, got {}", t,
             state["base_lr"].dump());
  for (const char* key : {"steps_per_epoch", "epochs"}) {
    DEFT_CHECK(state[key].is_number_integer(), "schedule {}: load_state: '{}' must be an integer, got {}", t,
               key, state[key].dump());
  }
  // begin() again resolves the settings that depend on the run's length.
  begin(state["base_lr"].get<double>(), state["steps_per_epoch"].get<int64_t>(),
        state["epochs"].get<int64_t>());
}

std::unique_ptr<LRSchedule> LRSchedule::clone() const { return make_schedule(type(), config()); }

namespace {

void check_position(const std::string& type, int64_t epoch, int64_t step) {
  DEFT_CHECK(epoch >= 0 && step >= 0, "schedule {}: epoch and step must be >= 0, got epoch {} and step {}",
             type, epoch, step);
}

const char* interval_name(ScheduleInterval i) { return i == ScheduleInterval::Batch ? "batch" : "epoch"; }

ScheduleInterval parse_interval(ConfigReader& r, const std::string& owner, ScheduleInterval fallback) {
  const std::string s = r.string("interval", interval_name(fallback));
  if (s == "epoch") return ScheduleInterval::Epoch;
  if (s == "batch") return ScheduleInterval::Batch;
  fail("{}: 'interval' must be \"epoch\" or \"batch\", got \"{}\"", owner, s);
}

}  // namespace

// ---- step and exponential --------------------------------------------------------------------

StepLR::StepLR(StepLROptions options) : options_(options) {
  DEFT_CHECK(options_.step_size >= 1, "schedule step: step_size must be >= 1, got {}", options_.step_size);
  detail::check_positive("schedule step", "gamma", options_.gamma);
}

double StepLR::lr(int64_t epoch, int64_t step) const {
  check_begun();
  check_position(type(), epoch, step);
  const int64_t decays = (per_batch() ? step : epoch) / options_.step_size;  // whole periods only
  return base_lr() * std::pow(options_.gamma, static_cast<double>(decays));
}

nlohmann::json StepLR::config() const {
  return {{"step_size", options_.step_size},
          {"gamma", options_.gamma},
          {"interval", interval_name(options_.interval)}};
}

ExponentialLR::ExponentialLR(ExponentialLROptions options) : options_(options) {
  detail::check_positive("schedule exponential", "gamma", options_.gamma);
}

double ExponentialLR::lr(int64_t epoch, int64_t step) const {
  check_begun();
  check_position(type(), epoch, step);
  const int64_t t = per_batch() ? step : epoch;
  return base_lr() * std::pow(options_.gamma, static_cast<double>(t));
}

nlohmann::json ExponentialLR::config() const {
  return {{"gamma", options_.gamma}, {"interval", interval_name(options_.interval)}};
}

// ---- cosine with warmup ----------------------------------------------------------------------

CosineLR::CosineLR(CosineLROptions options) : options_(options) {
  const CosineLROptions& o = options_;
  for (auto [name, v] :
       {std::pair{"warmup_steps", o.warmup_steps}, std::pair{"warmup_epochs", o.warmup_epochs},
        std::pair{"total_steps", o.total_steps}, std::pair{"total_epochs", o.total_epochs}}) {
    DEFT_CHECK(v >= 0, "schedule cosine: {} must be >= 0, got {}", name, v);
  }
  DEFT_CHECK(o.warmup_steps == 0 || o.warmup_epochs == 0,
             "schedule cosine: give warmup_steps or warmup_epochs, not both (got {} and {})", o.warmup_steps,
             o.warmup_epochs);
  DEFT_CHECK(o.total_steps == 0 || o.total_epochs == 0,
             "schedule cosine: give total_steps or total_epochs, not both (got {} and {})", o.total_steps,
             o.total_epochs);
  detail::check_non_negative("schedule cosine", "min_lr", o.min_lr);
}

void CosineLR::begin(double base_lr, int64_t steps_per_epoch, int64_t epochs) {
  const CosineLROptions& o = options_;
  DEFT_CHECK(
      (o.warmup_epochs == 0 && o.total_epochs == 0) || steps_per_epoch > 0,
      "schedule cosine: warmup_epochs/total_epochs need the number of steps per epoch, which begin() was "
      "not given");
  int64_t warmup = o.warmup_steps + o.warmup_epochs * steps_per_epoch;
  int64_t total = o.total_steps + o.total_epochs * steps_per_epoch;
  if (total == 0) total = epochs * steps_per_epoch;  // the whole run
  DEFT_CHECK(
      total > 0,
      "schedule cosine: the schedule's length is unknown: set total_steps or total_epochs, or give begin() "
      "the run's length");
  DEFT_CHECK(warmup < total,
             "schedule cosine: warmup ({} steps) must be shorter than the schedule ({} steps)", warmup,
             total);
  LRSchedule::begin(base_lr, steps_per_epoch, epochs);
  warmup_ = warmup;
  total_ = total;
}

double CosineLR::lr(int64_t epoch, int64_t step) const {
  check_begun();
  check_position(type(), epoch, step);
  if (step < warmup_) return base_lr() * static_cast<double>(step + 1) / static_cast<double>(warmup_);
  const double t_max = static_cast<double>(total_ - warmup_);
  const double t_cur = std::min(static_cast<double>(step - warmup_), t_max);
  return options_.min_lr +
         (base_lr() - options_.min_lr) * (1.0 + std::cos(std::numbers::pi * t_cur / t_max)) / 2.0;
}

nlohmann::json CosineLR::config() const {
  return {{"warmup_steps", options_.warmup_steps},
          {"warmup_epochs", options_.warmup_epochs},
          {"total_steps", options_.total_steps},
          {"total_epochs", options_.total_epochs},
          {"min_lr", options_.min_lr}};
}

// ---- one-cycle -------------------------------------------------------------------------------

OneCycleLR::OneCycleLR(OneCycleLROptions options) : options_(std::move(options)) {
  const OneCycleLROptions& o = options_;
  detail::check_non_negative("schedule one_cycle", "max_lr", o.max_lr);
  DEFT_CHECK(o.total_steps >= 0, "schedule one_cycle: total_steps must be >= 0, got {}", o.total_steps);
  DEFT_CHECK(o.pct_start >= 0 && o.pct_start <= (o.three_phase ? 0.5 : 1.0),
             "schedule one_cycle: pct_start must be in [0, {}], got {}", o.three_phase ? "0.5" : "1",
             o.pct_start);
  detail::check_positive("schedule one_cycle", "div_factor", o.div_factor);
  detail::check_positive("schedule one_cycle", "final_div_factor", o.final_div_factor);
  DEFT_CHECK(o.anneal_strategy == "cos" || o.anneal_strategy == "linear",
             "schedule one_cycle: anneal_strategy must be \"cos\" or \"linear\", got \"{}\"",
             o.anneal_strategy);
}

void OneCycleLR::begin(double base_lr, int64_t steps_per_epoch, int64_t epochs) {
  const int64_t total = options_.total_steps > 0 ? options_.total_steps : epochs * steps_per_epoch;
  DEFT_CHECK(
      total > 0,
      "schedule one_cycle: the schedule's length is unknown: set total_steps, or give begin() the run's "
      "length");
  LRSchedule::begin(base_lr, steps_per_epoch, epochs);
  max_lr_ = options_.max_lr > 0 ? options_.max_lr : base_lr;
  total_ = total;
}

double OneCycleLR::lr(int64_t epoch, int64_t step) const {
  check_begun();
  check_position(type(), epoch, step);
  const OneCycleLROptions& o = options_;
  const double initial = max_lr_ / o.div_factor;
  const double final_lr = initial / o.final_div_factor;
  const double t = static_cast<double>(total_);
  struct Phase {
    double end, from, to;
  };
  std::vector<Phase> phases;
  if (o.three_phase) {
    phases = {{o.pct_start * t - 1, initial, max_lr_},
              {2 * o.pct_start * t - 2, max_lr_, initial},
              {t - 1, initial, final_lr}};
  } else {
    phases = {{o.pct_start * t - 1, initial, max_lr_}, {t - 1, max_lr_, final_lr}};
  }
  const double s = static_cast<double>(std::min(step, total_ - 1));  // past the end: stay at the final lr
  double start = 0;
  for (size_t i = 0; i < phases.size(); ++i) {
    const Phase& p = phases[i];
    if (s <= p.end || i + 1 == phases.size()) {
      // A phase shorter than one step (pct_start * total < 1) is already over; PyTorch divides by zero here.
      const double pct = p.end > start ? (s - start) / (p.end - start) : 1.0;
      if (o.anneal_strategy == "linear") return (p.to - p.from) * pct + p.from;
      return p.to + (p.from - p.to) / 2.0 * (std::cos(std::numbers::pi * pct) + 1.0);
    }
    start = p.end;
  }
  return final_lr;  // not reached: the last phase always matches
}

nlohmann::json OneCycleLR::config() const {
  return {{"max_lr", options_.max_lr},
          {"total_steps", options_.total_steps},
          {"pct_start", options_.pct_start},
          {"div_factor", options_.div_factor},
          {"final_div_factor", options_.final_div_factor},
          {"three_phase", options_.three_phase},
          {"anneal_strategy", options_.anneal_strategy}};
}

// ---- factory ---------------------------------------------------------------------------------

std::vector<std::string> schedule_names() {
  return {"step", "exponential", "cosine", "one_cycle", "reduce_on_plateau"};
}

std::unique_ptr<LRSchedule> make_schedule(const std::string& name, const nlohmann::json& config) {
  const std::string owner = "schedule " + name;
  if (name == "step") {
    ConfigReader r(owner, config);
    StepLROptions o;
    o.step_size = r.integer("step_size", o.step_size);
    o.gamma = r.number("gamma", o.gamma);
    o.interval = parse_interval(r, owner, o.interval);
    r.finish();
    return std::make_unique<StepLR>(o);
  }
  if (name == "exponential") {
    ConfigReader r(owner, config);
    ExponentialLROptions o;
    o.gamma = r.number("gamma", o.gamma);
    o.interval = parse_interval(r, owner, o.interval);
    r.finish();
    return std::make_unique<ExponentialLR>(o);
  }
  if (name == "cosine") {
    ConfigReader r(owner, config);
    CosineLROptions o;
    o.warmup_steps = r.integer("warmup_steps", o.warmup_steps);
    o.warmup_epochs = r.integer("warmup_epochs", o.warmup_epochs);
    o.total_steps = r.integer("total_steps", o.total_steps);
    o.total_epochs = r.integer("total_epochs", o.total_epochs);
    o.min_lr = r.number("min_lr", o.min_lr);
    r.finish();
    return std::make_unique<CosineLR>(o);
  }
  if (name == "one_cycle") {
    ConfigReader r(owner, config);
    OneCycleLROptions o;
    o.max_lr = r.number("max_lr", o.max_lr);
    o.total_steps = r.integer("total_steps", o.total_steps);
    o.pct_start = r.number("pct_start", o.pct_start);
    o.div_factor = r.number("div_factor", o.div_factor);
    o.final_div_factor = r.number("final_div_factor", o.final_div_factor);
    o.three_phase = r.boolean("three_phase", o.three_phase);
    o.anneal_strategy = r.string("anneal_strategy", o.anneal_strategy);
    r.finish();
    return std::make_unique<OneCycleLR>(o);
  }
  if (name == "reduce_on_plateau") {
    ConfigReader r(owner, config);
    ReduceLROnPlateauOptions o;
    o.mode = r.string("mode", o.mode);
    o.factor = r.number("factor", o.factor);
    o.patience = r.integer("patience", o.patience);
    const bool has_threshold = r.has("threshold") || r.has("threshold_mode");
    o.threshold = r.number("threshold", o.threshold);
    o.threshold_mode = r.string("threshold_mode", o.threshold_mode);
    if (r.has("min_delta")) {
      DEFT_CHECK(!has_threshold, "{}: give min_delta (Keras) or threshold/threshold_mode (PyTorch), not both",
                 owner);
      o.threshold = r.number("min_delta", o.threshold);
      o.threshold_mode = "abs";
    } else {
      r.number("min_delta", 0.0);  // a valid key, listed in errors
    }
    o.cooldown = r.integer("cooldown", o.cooldown);
    o.min_lr = r.number("min_lr", o.min_lr);
    o.eps = r.number("eps", o.eps);
    r.finish();
    return std::make_unique<ReduceLROnPlateau>(o);
  }
  std::string valid;
  for (const std::string& n : schedule_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown LR schedule '{}'; valid schedules: {}", name, valid);
}

}  // namespace deft::optim
