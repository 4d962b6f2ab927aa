#include "deft/optim/adam.h"

#include <algorithm>
#include <cmath>

#include "deft/optim/checks.h"
#include "deft/tensor/config_reader.h"

namespace deft::optim {

namespace {

// The fields Adam and AdamW share, so one validator, parser and kernel serve both.
struct AdamParams {
  double lr, beta1, beta2, eps, weight_decay;
  bool amsgrad;
};

template <class Options>
AdamParams params_of(const Options& o) {
  return {o.lr, o.betas.first, o.betas.second, o.eps, o.weight_decay, o.amsgrad};
}

template <class Options>
Options validated(const std::string& owner, Options o) {
  detail::check_non_negative(owner, "lr", o.lr);
  detail::check_unit_interval(owner, "betas[0]", o.betas.first);
  detail::check_unit_interval(owner, "betas[1]", o.betas.second);
  detail::check_non_negative(owner, "eps", o.eps);
  detail::check_non_negative(owner, "weight_decay", o.weight_decay);
  return o;
}

template <class Options>
Options parse_adam(const std::string& owner, const nlohmann::json& config) {
  ConfigReader r(owner, config);
  Options o;
  o.lr = r.number("lr", o.lr);
  // Tuners search one scalar at a time, so beta1/beta2 are accepted beside PyTorch's pair.
  const std::vector<double> betas = r.numbers("betas", {o.betas.first, o.betas.second}, 2);
  o.betas = {betas[0], betas[1]};
  DEFT_CHECK(!(r.has("betas") && (r.has("beta1") || r.has("beta2"))),
             "{}: give either 'betas' or 'beta1'/'beta2', not both", owner);
  o.betas.first = r.number("beta1", o.betas.first);
  o.betas.second = r.number("beta2", o.betas.second);
  o.eps = r.number("eps", o.eps);
  o.weight_decay = r.number("weight_decay", o.weight_decay);
  o.amsgrad = r.boolean("amsgrad", o.amsgrad);
  r.finish();
  return validated(owner, o);
}

nlohmann::json config_of(double lr, const AdamParams& a) {
  return {{"lr", lr},
          {"betas", {a.beta1, a.beta2}},
          {"eps", a.eps},
          {"weight_decay", a.weight_decay},
          {"amsgrad", a.amsgrad}};
}

std::vector<std::string> buffers_of(const AdamParams& a) {
  if (a.amsgrad) return {"m", "v", "vmax"};
  return {"m", "v"};
}

// Per-step constants of the update, in float as the loop uses them.
struct AdamScalars {
  float wd, decay, b1, one_minus_b1, b2, one_minus_b2, step_size, inv_bc2_sqrt, eps;
};

// One fused pass: decay, both moments and the parameter update, reading each
// array once. The flags are template arguments so every variant is a branch-free
// loop the compiler vectorises.
template <bool kDecoupled, bool kAmsgrad>
void adam_pass(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
               float* __restrict vmax, int64_t n, const AdamScalars s) {
  const float wd = s.wd, decay = s.decay, b1 = s.b1, omb1 = s.one_minus_b1, b2 = s.b2, omb2 = s.one_minus_b2;
  const float step_size = s.step_size, inv_bc2_sqrt = s.inv_bc2_sqrt, eps = s.eps;
  for (int64_t i = 0; i < n; ++i) {
    float theta = p[i];
    float d = g[i];
    if constexpr (kDecoupled) {
      theta = theta * decay;
    } else {
      d = d + wd * theta;
    }
    const float mi = b1 * m[i] + omb1 * d;
    const float vi = b2 * v[i] + omb2 * (d * d);
    m[i] = mi;
    v[i] = vi;
    float vu = vi;
    if constexpr (kAmsgrad) {
      vu = std::max(vmax[i], vi);
      vmax[i] = vu;
    }
    const float denom = std::sqrt(vu) * inv_bc2_sqrt + eps;
    p[i] = theta - step_size * (mi / denom);
  }
}

void adam_update(const AdamParams& a, double lr, bool decoupled, int64_t t, std::vector<Tensor>& buffers,
                 float* p, const float* g, int64_t n) {
  // Step-dependent scalars in double, as PyTorch computes them in Python floats.
  const double bc1 = 1.0 - std::pow(a.beta1, static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(a.beta2, static_cast<double>(t));
  const AdamScalars s{static_cast<float>(a.weight_decay), static_cast<float>(1.0 - lr * a.weight_decay),
                      static_cast<float>(a.beta1),        static_cast<float>(1.0 - a.beta1),
                      static_cast<float>(a.beta2),        static_cast<float>(1.0 - a.beta2),
                      static_cast<float>(lr / bc1),       static_cast<float>(1.0 / std::sqrt(bc2)),
                      static_cast<float>(a.eps)};
  float* m = buffers[0].data<float>();
  float* v = buffers[1].data<float>();
  float* vmax = a.amsgrad ? buffers[2].data<float>() : nullptr;
  for_update_ranges(n, [&](int64_t b, int64_t e) {
    float* vm = vmax ? vmax + b : nullptr;
    const int64_t len = e - b;
    if (decoupled && a.amsgrad) adam_pass<true, true>(p + b, g + b, m + b, v + b, vm, len, s);
    if (decoupled && !a.amsgrad) adam_pass<true, false>(p + b, g + b, m + b, v + b, vm, len, s);
    if (!decoupled && a.amsgrad) adam_pass<false, true>(p + b, g + b, m + b, v + b, vm, len, s);
    if (!decoupled && !a.amsgrad) adam_pass<false, false>(p + b, g + b, m + b, v + b, vm, len, s);
  });
}

}  // namespace

Adam::Adam(AdamOptions options) : Optimizer(options.lr), options_(validated("adam", options)) {}
AdamOptions Adam::parse(const nlohmann::json& config) { return parse_adam<AdamOptions>("adam", config); }
nlohmann::json Adam::config() const { return config_of(lr(), params_of(options_)); }
std::vector<std::string> Adam::buffer_names() const { return buffers_of(params_of(options_)); }
void Adam::update(Slot& slot, float* param, const float* grad, int64_t n) {
  adam_update(params_of(options_), lr(), false, slot.step, slot.buffers, param, grad, n);
}

AdamW::AdamW(AdamWOptions options) : Optimizer(options.lr), options_(validated("adamw", options)) {}
AdamWOptions AdamW::parse(const nlohmann::json& config) { return parse_adam<AdamWOptions>("adamw", config); }
nlohmann::json AdamW::config() const { return config_of(lr(), params_of(options_)); }
std::vector<std::string> AdamW::buffer_names() const { return buffers_of(params_of(options_)); }
void AdamW::update(Slot& slot, float* param, const float* grad, int64_t n) {
  adam_update(params_of(options_), lr(), true, slot.step, slot.buffers, param, grad, n);
}

}  // namespace deft::optim
