#include "deft/optim/rmsprop.h"

#include <algorithm>
#include <cmath>

#include "deft/optim/checks.h"
#include "deft/tensor/config_reader.h"

namespace deft::optim {

namespace {

RMSpropOptions validated(RMSpropOptions o) {
  detail::check_non_negative("rmsprop", "lr", o.lr);
  detail::check_unit_interval("rmsprop", "alpha", o.alpha);
  detail::check_non_negative("rmsprop", "eps", o.eps);
  detail::check_non_negative("rmsprop", "weight_decay", o.weight_decay);
  detail::check_non_negative("rmsprop", "momentum", o.momentum);
  return o;
}

template <bool kMomentum, bool kCentered>
void rmsprop_pass(float* __restrict p, const float* __restrict g, float* __restrict sq, float* __restrict buf,
                  float* __restrict avg, int64_t n, float lr, float wd, float alpha, float one_minus_alpha,
                  float eps, float momentum) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    const float s = alpha * sq[i] + one_minus_alpha * (d * d);
    sq[i] = s;
    float var = s;
    if constexpr (kCentered) {
      const float a = alpha * avg[i] + one_minus_alpha * d;
      avg[i] = a;
      // s >= a^2 in exact arithmetic; rounding can break that once the running
      // moments agree to float precision, where PyTorch would take sqrt of a
      // negative number and produce NaN.
      var = std::max(s - a * a, 0.0f);
    }
    const float denom = std::sqrt(var) + eps;
    if constexpr (kMomentum) {
      const float b = momentum * buf[i] + d / denom;
      buf[i] = b;
      p[i] = p[i] - lr * b;
    } else {
      p[i] = p[i] - lr * (d / denom);
    }
  }
}

}  // namespace

RMSprop::RMSprop(RMSpropOptions options) : Optimizer(options.lr), options_(validated(options)) {}

RMSpropOptions RMSprop::parse(const nlohmann::json& config) {
  ConfigReader r("rmsprop", config);
  RMSpropOptions o;
  o.lr = r.number("lr", o.lr);
  o.alpha = r.number("alpha", o.alpha);
  o.eps = r.number("eps", o.eps);
  o.weight_decay = r.number("weight_decay", o.weight_decay);
  o.momentum = r.number("momentum", o.momentum);
  o.centered = r.boolean("centered", o.centered);
  r.finish();
  return validated(o);
}

nlohmann::json RMSprop::config() const {
  return {{"lr", lr()},
          {"alpha", options_.alpha},
          {"eps", options_.eps},
          {"weight_decay", options_.weight_decay},
          {"momentum", options_.momentum},
          {"centered", options_.centered}};
}

std::vector<std::string> RMSprop::buffer_names() const {
  std::vector<std::string> names{"square_avg"};
  if (options_.momentum > 0) names.emplace_back("momentum_buffer");
  if (options_.centered) names.emplace_back("grad_avg");
  return names;
}

void RMSprop::update(Slot& slot, float* param, const float* grad, int64_t n) {
  const bool momentum = options_.momentum > 0, centered = options_.centered;
  float* sq = slot.buffers[0].data<float>();
  float* buf = momentum ? slot.buffers[1].data<float>() : nullptr;
  float* avg = centered ? slot.buffers[momentum ? 2 : 1].data<float>() : nullptr;
  const auto lr = static_cast<float>(this->lr());
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto alpha = static_cast<float>(options_.alpha);
  const auto oma = static_cast<float>(1.0 - options_.alpha);
  const auto eps = static_cast<float>(options_.eps);
  const auto mom = static_cast<float>(options_.momentum);
  for_update_ranges(n, [&](int64_t b, int64_t e) {
    float* pb = param + b;
    const float* gb = grad + b;
    float* bb = buf ? buf + b : nullptr;
    float* ab = avg ? avg + b : nullptr;
    const int64_t len = e - b;
    if (momentum && centered)
      rmsprop_pass<true, true>(pb, gb, sq + b, bb, ab, len, lr, wd, alpha, oma, eps, mom);
    if (momentum && !centered)
      rmsprop_pass<true, false>(pb, gb, sq + b, bb, ab, len, lr, wd, alpha, oma, eps, mom);
    if (!momentum && centered)
      rmsprop_pass<false, true>(pb, gb, sq + b, bb, ab, len, lr, wd, alpha, oma, eps, mom);
    if (!momentum && !centered)
      rmsprop_pass<false, false>(pb, gb, sq + b, bb, ab, len, lr, wd, alpha, oma, eps, mom);
  });
}

}  // namespace deft::optim
