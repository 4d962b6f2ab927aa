#include "deft/optim/optimizer.h"

#include <cmath>
#include <set>

#include "deft/autograd/graph.h"
#include "deft/tensor/error.h"

namespace deft::optim {

Optimizer::Optimizer(double lr) : lr_(lr) {}

void Optimizer::attach(NamedTensors named_params) {
  std::set<std::string> names;
  std::set<const void*> tensors;
  for (const auto& [name, p] : named_params) {
    DEFT_CHECK(!name.empty(), "{}: attach: a parameter has an empty name", type());
    DEFT_CHECK(names.insert(name).second, "{}: attach: parameter name '{}' appears twice", type(), name);
    DEFT_CHECK(p.defined(), "{}: attach: parameter '{}' is undefined", type(), name);
    DEFT_CHECK(p.dtype() == DType::Float32,
               "{}: attach: parameter '{}' is {}, optimizers update float32 tensors", type(), name,
               dtype_name(p.dtype()));
    // The update runs over raw contiguous floats; a strided view would need a gather/scatter per step.
    DEFT_CHECK(p.is_contiguous(), "{}: attach: parameter '{}' (shape {}) is not contiguous", type(), name,
               shape_str(p.shape()));
    // The same memory under two names would be updated twice per step.
    DEFT_CHECK(p.numel() == 0 || tensors.insert(p.raw_data()).second,
               "{}: attach: parameter '{}' shares its memory with another parameter", type(), name);
  }
  params_ = std::move(named_params);
  slots_.assign(params_.size(), Slot{});
  steps_ = 0;
  attached_ = true;
}

void Optimizer::attach(const std::vector<Tensor>& params) {
  NamedTensors named;
  named.reserve(params.size());
  for (size_t i = 0; i < params.size(); ++i) named.emplace_back(std::to_string(i), params[i]);
  attach(std::move(named));
}

void Optimizer::set_lr(double lr) {
  DEFT_CHECK(std::isfinite(lr) && lr >= 0.0, "{}: lr must be a finite number >= 0, got {}", type(), lr);
  lr_ = lr;
}

void Optimizer::step() {
  DEFT_CHECK(attached_, "{}: step() called before attach(): the optimizer has no parameters", type());
  NoGradGuard no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    DEFT_CHECK_SHAPE(g.shape() == p.shape(), "{}: gradient of '{}' has shape {}, the parameter {}", type(),
                     name, shape_str(g.shape()), shape_str(p.shape()));
    DEFT_CHECK(g.dtype() == DType::Float32, "{}: gradient of '{}' is {}, expected float32", type(), name,
               dtype_name(g.dtype()));
    if (!g.is_contiguous()) g = g.clone();  // backward gives contiguous gradients; a user-set view may not be
    Slot& slot = slots_[i];
    if (slot.step == 0) {  // lazily, so a parameter that never gets a gradient costs no memory
      slot.buffers.clear();
      const size_t count = buffer_names().size();
      for (size_t b = 0; b < count; ++b) slot.buffers.push_back(Tensor::full(p.shape(), buffer_init()));
    }
    ++slot.step;
    update(slot, p.data<float>(), g.data<float>(), p.numel());
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

std::unique_ptr<Optimizer> Optimizer::clone() const { return make_optimizer(type(), config()); }

nlohmann::json Optimizer::state_json() const {
  nlohmann::json param_steps = nlohmann::json::object();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (slots_[i].step > 0) param_steps[params_[i].first] = slots_[i].step;
  }
  return {{"type", type()}, {"lr", lr_}, {"steps", steps_}, {"param_steps", param_steps}};
}

NamedTensors Optimizer::state_tensors() const {
  NamedTensors out;
  const std::vector<std::string> buffers = buffer_names();
  for (size_t i = 0; i < params_.size(); ++i) {
    if (slots_[i].buffers.empty()) continue;
    for (size_t b = 0; b < buffers.size(); ++b) {
      out.emplace_back(fmt::format("{}.{}/{}", type(), buffers[b], params_[i].first), slots_[i].buffers[b]);
    }
  }
  return out;
}

void Optimizer::load_state(const nlohmann::json& state, const std::map<std::string, Tensor>& tensors) {
  const std::string t = type();
  DEFT_CHECK(attached_, "{}: load_state: attach the parameters first", t);
  DEFT_CHECK(state.is_object(), "{}: load_state: state must be a JSON object, got {}", t, state.dump());
  for (const char* key : {"type", "lr", "steps", "param_steps"}) {
    DEFT_CHECK(state.contains(key), "{}: load_state: state has no '{}'", t, key);
  }
  DEFT_CHECK(state["type"] == t, "{}: load_state: state was saved by optimizer {}", t, state["type"].dump());
  DEFT_CHECK(
      state["lr"].is_number() && std::isfinite(state["lr"].get<double>()) && state["lr"].get<double>() >= 0,
      "{}: load_state: 'lr' must be a number >= 0, got {}", t, state["lr"].dump());
  DEFT_CHECK(state["steps"].is_number_integer() && state["steps"].get<int64_t>() >= 0,
             "{}: load_state: 'steps' must be an integer >= 0, got {}", t, state["steps"].dump());
  const nlohmann::json& param_steps = state["param_steps"];
  DEFT_CHECK(param_steps.is_object(), "{}: load_state: 'param_steps' must be an object, got {}", t,
             param_steps.dump());

  std::map<std::string, size_t> index;
  for (size_t i = 0; i < params_.size(); ++i) index[params_[i].first] = i;
  for (const auto& [name, steps] : param_steps.items()) {
    DEFT_CHECK(index.count(name), "{}: load_state: state is for parameter '{}', which is not attached", t,
               name);
    DEFT_CHECK(steps.is_number_integer() && steps.get<int64_t>() > 0,
               "{}: load_state: param_steps['{}'] must be an integer > 0, got {}", t, name, steps.dump());
  }

  // Build the new state completely before touching the current one, so a bad
  // checkpoint leaves the optimizer as it was.
  const std::vector<std::string> buffers = buffer_names();
  std::set<std::string> expected;
  std::vector<Slot> slots(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    if (!param_steps.contains(name)) continue;
    slots[i].step = param_steps[name].get<int64_t>();
    for (const std::string& b : buffers) {
      const std::string key = fmt::format("{}.{}/{}", t, b, name);
      expected.insert(key);
      auto it = tensors.find(key);
      DEFT_CHECK(it != tensors.end(), "{}: load_state: missing state tensor '{}'", t, key);
      const Tensor& s = it->second;
      DEFT_CHECK(s.defined() && s.dtype() == DType::Float32,
                 "{}: load_state: state tensor '{}' must be float32", t, key);
      DEFT_CHECK_SHAPE(s.shape() == p.shape(),
                       "{}: load_state: state tensor '{}' has shape {}, parameter '{}' has {}", t, key,
                       shape_str(s.shape()), name, shape_str(p.shape()));
      slots[i].buffers.push_back(s.clone());  // own the memory: the caller's map may be reused
    }
  }
  for (const auto& [key, value] : tensors) {
    if (key.rfind(t + ".", 0) != 0) continue;
    DEFT_CHECK(
        expected.count(key),
        "{}: load_state: unexpected state tensor '{}' (saved with a different config, or for a parameter "
        "without state?)",
        t, key);
  }
  slots_ = std::move(slots);
  lr_ = state["lr"].get<double>();
  steps_ = state["steps"].get<int64_t>();
}

}  // namespace deft::optim
