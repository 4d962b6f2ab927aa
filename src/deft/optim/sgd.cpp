#include "deft/optim/sgd.h"

#include "deft/optim/checks.h"
#include "deft/tensor/config_reader.h"

namespace deft::optim {

namespace {

SGDOptions validated(SGDOptions o) {
  detail::check_non_negative("sgd", "lr", o.lr);
  detail::check_non_negative("sgd", "momentum", o.momentum);
  detail::check_finite("sgd", "dampening", o.dampening);
  detail::check_non_negative("sgd", "weight_decay", o.weight_decay);
  DEFT_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0),
             "sgd: nesterov needs momentum > 0 and dampening 0, got momentum {} and dampening {}", o.momentum,
             o.dampening);
  return o;
}

// One pass over a parameter; the flags are template arguments so each variant is
// a branch-free loop the compiler vectorises.
template <bool kMomentum, bool kFirst, bool kNesterov>
void sgd_pass(float* __restrict p, const float* __restrict g, float* __restrict buf, int64_t n, float lr,
              float wd, float momentum, float one_minus_dampening) {
  for (int64_t i = 0; i < n; ++i) {
    float d = g[i] + wd * p[i];
    if constexpr (kMomentum) {
      const float b = kFirst ? d : momentum * buf[i] + one_minus_dampening * d;
      buf[i] = b;
      d = kNesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
  }
}

}  // namespace

SGD::SGD(SGDOptions options) : Optimizer(options.lr), options_(validated(options)) {}

SGDOptions SGD::parse(const nlohmann::json& config) {
  ConfigReader r("sgd", config);
  SGDOptions o;
  o.lr = r.number("lr", o.lr);
  o.momentum = r.number("momentum", o.momentum);
  o.dampening = r.number("dampening", o.dampening);
  o.weight_decay = r.number("weight_decay", o.weight_decay);
  o.nesterov = r.boolean("nesterov", o.nesterov);
  r.finish();
  return validated(o);
}

nlohmann::json SGD::config() const {
  return {{"lr", lr()},
          {"momentum", options_.momentum},
          {"dampening", options_.dampening},
          {"weight_decay", options_.weight_decay},
          {"nesterov", options_.nesterov}};
}

std::vector<std::string> SGD::buffer_names() const {
  if (options_.momentum == 0) return {};
  return {"momentum_buffer"};
}

void SGD::update(Slot& slot, float* param, const float* grad, int64_t n) {
  const auto lr = static_cast<float>(this->lr());
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto mom = static_cast<float>(options_.momentum);
  const auto damp = static_cast<float>(1.0 - options_.dampening);
  float* buf = slot.buffers.empty() ? nullptr : slot.buffers[0].data<float>();
  // PyTorch starts the momentum buffer at the first gradient, undamped.
  const bool first = slot.step == 1;
  for_update_ranges(n, [&](int64_t b, int64_t e) {
    float* bb = buf ? buf + b : nullptr;
    if (mom == 0) {
      sgd_pass<false, false, false>(param + b, grad + b, bb, e - b, lr, wd, mom, damp);
    } else if (options_.nesterov) {
      if (first)
        sgd_pass<true, true, true>(param + b, grad + b, bb, e - b, lr, wd, mom, damp);
      else
        sgd_pass<true, false, true>(param + b, grad + b, bb, e - b, lr, wd, mom, damp);
    } else {
      if (first)
        sgd_pass<true, true, false>(param + b, grad + b, bb, e - b, lr, wd, mom, damp);
      else
        sgd_pass<true, false, false>(param + b, grad + b, bb, e - b, lr, wd, mom, damp);
    }
  });
}

}  // namespace deft::optim
