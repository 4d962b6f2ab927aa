// Learning-rate schedules: the lr an optimizer should use at each epoch or batch.
//
// A trainer binds a schedule to the run, then asks it for the lr before every
// batch (per_batch() schedules) or before every epoch (the others), and feeds
// the monitored value at the end of each epoch to those that need_metric():
//
//   auto sched = optim::make_schedule("one_cycle", {{"max_lr", 0.01}});
//   sched->begin(opt.lr(), steps_per_epoch, epochs);   // opt.lr() is the base lr
//   for (epoch...) {
//     if (!sched->per_batch()) opt.set_lr(sched->lr(epoch, step));
//     for (batch...) { if (sched->per_batch()) opt.set_lr(sched->lr(epoch, step)); ...; ++step; }
//     if (sched->needs_metric()) sched->observe(val_loss);
//   }
//
// `epoch` and `step` are 0-based; `step` counts optimizer steps from the start of
// training, not of the epoch. lr() is a pure function of them and the state, so
// asking twice is harmless. Resume: load_state() with what state_json() saved; it
// restores the base lr (which the optimizer's lr no longer is) and the run's
// length, and needs no begin().
//
// Formulas are PyTorch's (torch.optim.lr_scheduler), written out beside each class.
// Past the end of a finite schedule the lr stays at its final value (PyTorch's
// OneCycleLR would throw mid-training).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace deft::optim {

// How often a StepLR / ExponentialLR counts: epochs (PyTorch's usual use) or batches
// (Keras's ExponentialDecay counts optimizer steps). JSON: "epoch" / "batch".
enum class ScheduleInterval { Epoch, Batch };

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  LRSchedule(const LRSchedule&) = delete;
  LRSchedule& operator=(const LRSchedule&) = delete;

  virtual std::string type() const = 0;  // the name make_schedule takes
  virtual bool per_batch() const = 0;    // lr changes within an epoch
  virtual bool needs_metric() const { return false; }

  // Binds the schedule to a run: the lr training starts from and the run's
  // length (0 = unknown), used by settings given in epochs and by totals left at
  // 0 ("the whole run"). InputError if the settings cannot be resolved.
  virtual void begin(double base_lr, int64_t steps_per_epoch = 0, int64_t epochs = 0);
  bool begun() const { return begun_; }
  double base_lr() const { return base_lr_; }

  virtual double lr(int64_t epoch, int64_t step) const = 0;
  // The monitored value at the end of an epoch (ReduceLROnPlateau).
  virtual void observe(double /*value*/) {}

  virtual nlohmann::json config() const = 0;  // make_schedule's input
  virtual nlohmann::json state_json() const;
  virtual void load_state(const nlohmann::json& state);
  // A fresh schedule with the same type and config, not begun.
  std::unique_ptr<LRSchedule> clone() const;

 protected:
  LRSchedule() = default;
  void check_begun() const;
  int64_t steps_per_epoch_ = 0;
  int64_t epochs_ = 0;

 private:
  bool begun_ = false;
  double base_lr_ = 0;
};

// lr = base_lr * gamma^floor(t / step_size), t the epoch (or step).
struct StepLROptions {
  int64_t step_size = 1;
  double gamma = 0.1;
  ScheduleInterval interval = ScheduleInterval::Epoch;
};
class StepLR : public LRSchedule {
 public:
  explicit StepLR(StepLROptions options);
  std::string type() const override { return "step"; }
  bool per_batch() const override { return options_.interval == ScheduleInterval::Batch; }
  double lr(int64_t epoch, int64_t step) const override;
  nlohmann::json config() const override;

 private:
  StepLROptions options_;
};

// lr = base_lr * gamma^t, t the epoch (or step).
struct ExponentialLROptions {
  double gamma = 0.9;
  ScheduleInterval interval = ScheduleInterval::Epoch;
};
class ExponentialLR : public LRSchedule {
 public:
  explicit ExponentialLR(ExponentialLROptions options);
  std::string type() const override { return "exponential"; }
  bool per_batch() const override { return options_.interval == ScheduleInterval::Batch; }
  double lr(int64_t epoch, int64_t step) const override;
  nlohmann::json config() const override;

 private:
  ExponentialLROptions options_;
};

// Linear warmup over W steps, then cosine annealing to min_lr at step T
// (PyTorch's CosineAnnealingLR with T_max = T - W after the warmup), per batch:
//   s < W:  lr = base_lr * (s + 1) / W
//   s >= W: lr = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(s - W, T - W) / (T - W))) / 2
// Warmup and total may be given in steps or in epochs (not both); total 0 = the whole run.
struct CosineLROptions {
  int64_t warmup_steps = 0;
  int64_t warmup_epochs = 0;
  int64_t total_steps = 0;
  int64_t total_epochs = 0;
  double min_lr = 0.0;
};
class CosineLR : public LRSchedule {
 public:
  explicit CosineLR(CosineLROptions options);
  std::string type() const override { return "cosine"; }
  bool per_batch() const override { return true; }
  void begin(double base_lr, int64_t steps_per_epoch = 0, int64_t epochs = 0) override;
  double lr(int64_t epoch, int64_t step) const override;
  nlohmann::json config() const override;
  int64_t warmup() const { return warmup_; }  // resolved, in steps (after begin)
  int64_t total() const { return total_; }

 private:
  CosineLROptions options_;
  int64_t warmup_ = 0, total_ = 0;
};

// PyTorch's OneCycleLR, per batch. With T total steps, initial = max_lr / div_factor,
// final = initial / final_div_factor, phases (end step: from -> to):
//   two-phase:   pct_start*T - 1: initial -> max_lr;   T - 1: max_lr -> final
//   three-phase: pct_start*T - 1: initial -> max_lr;   2*pct_start*T - 2: max_lr -> initial;
//                T - 1: initial -> final
// In the phase containing step s (start step a, end step b): pct = (s - a) / (b - a),
//   cos:    lr = to + (from - to) / 2 * (cos(pi * pct) + 1)
//   linear: lr = (to - from) * pct + from
// max_lr 0 = the base lr; total_steps 0 = the whole run. Momentum is not cycled.
struct OneCycleLROptions {
  double max_lr = 0.0;
  int64_t total_steps = 0;
  double pct_start = 0.3;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
  bool three_phase = false;
  std::string anneal_strategy = "cos";  // or "linear"
};
class OneCycleLR : public LRSchedule {
 public:
  explicit OneCycleLR(OneCycleLROptions options);
  std::string type() const override { return "one_cycle"; }
  bool per_batch() const override { return true; }
  void begin(double base_lr, int64_t steps_per_epoch = 0, int64_t epochs = 0) override;
  double lr(int64_t epoch, int64_t step) const override;
  nlohmann::json config() const override;

 private:
  OneCycleLROptions options_;
  double max_lr_ = 0;
  int64_t total_ = 0;
};

// PyTorch's ReduceLROnPlateau, per epoch: after each observe(value),
//   better = mode min: value < best * (1 - threshold)  (rel) or value < best - threshold (abs)
//            mode max: value > best * (1 + threshold)  (rel) or value > best + threshold (abs)
//   better: best = value, bad = 0; else bad += 1
//   in cooldown (counter > 0): counter -= 1, bad = 0
//   bad > patience: lr = max(lr * factor, min_lr) (if that lowers it by more than eps);
//                   counter = cooldown, bad = 0
// Keras's min_delta is threshold with threshold_mode "abs" (its default); give one or the other.
struct ReduceLROnPlateauOptions {
  std::string mode = "min";  // or "max"
  double factor = 0.1;
  int64_t patience = 10;
  double threshold = 1e-4;
  std::string threshold_mode = "rel";  // or "abs"
  int64_t cooldown = 0;
  double min_lr = 0.0;
  double eps = 1e-8;
};
class ReduceLROnPlateau : public LRSchedule {
 public:
  explicit ReduceLROnPlateau(ReduceLROnPlateauOptions options = {});
  std::string type() const override { return "reduce_on_plateau"; }
  bool per_batch() const override { return false; }
  bool needs_metric() const override { return true; }
  void begin(double base_lr, int64_t steps_per_epoch = 0, int64_t epochs = 0) override;
  double lr(int64_t epoch, int64_t step) const override;
  void observe(double value) override;
  nlohmann::json config() const override;
  nlohmann::json state_json() const override;
  void load_state(const nlohmann::json& state) override;
  int64_t bad_epochs() const { return bad_epochs_; }

 private:
  bool better(double value) const;
  ReduceLROnPlateauOptions options_;
  double lr_ = 0;
  double best_ = 0;
  int64_t bad_epochs_ = 0;
  int64_t cooldown_counter_ = 0;
};

// Builds a schedule by name: "step", "exponential", "cosine", "one_cycle",
// "reduce_on_plateau". Keys are the option fields above ("interval": "epoch" or
// "batch"; "min_delta" for ReduceLROnPlateau). Unknown names and keys are
// InputErrors listing the valid ones.
std::unique_ptr<LRSchedule> make_schedule(const std::string& name, const nlohmann::json& config = {});
std::vector<std::string> schedule_names();

}  // namespace deft::optim
