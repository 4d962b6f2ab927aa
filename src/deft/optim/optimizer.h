// Optimizers: update a model's parameters in place from their gradients.
//
// Keras style, configured before the model has weights, attached later:
//   optim::Adam opt({.lr = 1e-3});              // e.g. handed to model.compile
//   opt.attach(model.named_parameters());       // names like "0.kernel"
// PyTorch style, in one go:
//   optim::Adam opt(model.named_parameters(), {.lr = 1e-3});
//   loss.backward(); opt.step(); opt.zero_grad();
// By name, from a config file or a tuner:
//   auto opt = optim::make_optimizer("adamw", {{"lr", 3e-4}, {"weight_decay", 0.05}});
//
// step() reads each parameter's grad() (parameters without one are skipped, as
// in PyTorch) and writes the parameter's storage in place, so the model that
// owns the same tensors sees the new values. Each update is one fused pass over
// contiguous floats per parameter; per-parameter state (moments, momentum
// buffers) is allocated at the first step that parameter gets a gradient.
// Results do not depend on the thread count: every element is updated alone.
// The update formulas are PyTorch's (written out in each optimizer's header);
// results agree with PyTorch to float rounding, not bit for bit.
//
// Exact resume: save state_json() and state_tensors() (tensors named
// "adam.m/0.kernel", ...), then load_state() them into a fresh optimizer with
// the same config attached to the same parameters; later steps are bit-identical
// to an uninterrupted run.
//
// Writing an optimizer: derive, give type()/config()/buffer_names() and the
// update() pass (see adagrad.cpp, the smallest), and add it to make_optimizer.
#pragma once

#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "deft/tensor/parallel.h"
#include "deft/tensor/tensor.h"

namespace deft::optim {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// What the optimizers' PyTorch-style constructors take: named or unnamed parameters.
// (A template, so that `Adam({.lr = 1e-3})` is not ambiguous with it under GCC 12,
// which treats a designated initializer list as convertible to a vector.)
template <class P>
concept ParamList = std::same_as<std::remove_cvref_t<P>, NamedTensors> ||
    std::same_as<std::remove_cvref_t<P>, std::vector<Tensor>>;

class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Takes the parameters to update (float32, contiguous, distinct names and
  // tensors). Attaching again replaces them and drops all state.
  void attach(NamedTensors named_params);
  // Unnamed parameters are named "0", "1", ... in order.
  void attach(const std::vector<Tensor>& params);
  bool attached() const { return attached_; }
  const NamedTensors& params() const { return params_; }

  // One update of every parameter that has a gradient.
  void step();
  // Drops every parameter's gradient (Tensor::zero_grad).
  void zero_grad();
  // Number of step() calls so far (restored by load_state).
  int64_t steps() const { return steps_; }

  double lr() const { return lr_; }
  void set_lr(double lr);  // what LR schedules call

  virtual std::string type() const = 0;       // "adam", the name make_optimizer takes
  virtual nlohmann::json config() const = 0;  // every hyperparameter, make_optimizer's input
  // A fresh, unattached optimizer with the same type and config (no state). The
  // default goes through make_optimizer; an optimizer outside the factory overrides it.
  virtual std::unique_ptr<Optimizer> clone() const;

  // {"type", "lr", "steps", "param_steps": {name: steps}} for exact resume.
  nlohmann::json state_json() const;
  // The state buffers, named "<type>.<buffer>/<param>". These are the live
  // buffers, not copies: write or clone them before the next step().
  NamedTensors state_tensors() const;
  // Restores what state_json()/state_tensors() saved. Needs the same type and
  // attached parameters; InputError names any missing or mis-shaped tensor.
  // Tensors in `tensors` that do not start with "<type>." are ignored (a
  // checkpoint may keep model weights in the same map).
  void load_state(const nlohmann::json& state, const std::map<std::string, Tensor>& tensors);

 protected:
  explicit Optimizer(double lr);

  // Per-parameter state: how many updates it has had and its buffers, in the
  // order of buffer_names().
  struct Slot {
    int64_t step = 0;
    std::vector<Tensor> buffers;
  };
  // Names of the state buffers each parameter gets; may depend on the config
  // (Adam's "vmax" only with amsgrad).
  virtual std::vector<std::string> buffer_names() const = 0;
  // Value the buffers start from (Adagrad's initial accumulator).
  virtual double buffer_init() const { return 0.0; }
  // Updates `n` floats of one parameter in place; slot.step already counts this update.
  virtual void update(Slot& slot, float* param, const float* grad, int64_t n) = 0;

 private:
  double lr_;
  bool attached_ = false;
  NamedTensors params_;
  std::vector<Slot> slots_;
  int64_t steps_ = 0;
};

// Runs f(begin, end) over [0, n) for an update pass. A parameter is split over
// the pool only when every thread gets at least kParallelUpdateMin elements:
// waking the second core costs 6-8 us, about what a 64K-element Adam pass saves,
// and on the shared 2-core target the split measured slower for the 100K-element
// Fashion-MNIST kernel. Optimizers update each element alone, so the split never
// changes a result.
inline constexpr int64_t kParallelUpdateMin = int64_t{1} << 16;
template <class F>
void for_update_ranges(int64_t n, const F& f) {
  if (n < 2 * kParallelUpdateMin) {
    f(int64_t{0}, n);
  } else {
    parallel_for(0, n, kParallelUpdateMin, f);
  }
}

// Builds an optimizer by name: "sgd", "adam", "adamw", "rmsprop", "adagrad".
// Unknown names and config keys are InputErrors listing the valid ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, const nlohmann::json& config = {});
std::vector<std::string> optimizer_names();

}  // namespace deft::optim
