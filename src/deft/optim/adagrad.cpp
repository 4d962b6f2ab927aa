#include "deft/optim/adagrad.h"

#include <cmath>

#include "deft/optim/checks.h"
#include "deft/tensor/config_reader.h"

namespace deft::optim {

namespace {

AdagradOptions validated(AdagradOptions o) {
  detail::check_non_negative("adagrad", "lr", o.lr);
  detail::check_non_negative("adagrad", "lr_decay", o.lr_decay);
  detail::check_non_negative("adagrad", "weight_decay", o.weight_decay);
  detail::check_non_negative("adagrad", "initial_accumulator_value", o.initial_accumulator_value);
  detail::check_non_negative("adagrad", "eps", o.eps);
  return o;
}

void adagrad_pass(float* __restrict p, const float* __restrict g, float* __restrict sum, int64_t n, float clr,
                  float wd, float eps) {
  for (int64_t i = 0; i < n; ++i) {
    const float d = g[i] + wd * p[i];
    const float s = sum[i] + d * d;
    sum[i] = s;
    p[i] = p[i] - clr * (d / (std::sqrt(s) + eps));
  }
}

}  // namespace

Adagrad::Adagrad(AdagradOptions options) : Optimizer(options.lr), options_(validated(options)) {}

AdagradOptions Adagrad::parse(const nlohmann::json& config) {
  ConfigReader r("adagrad", config);
  AdagradOptions o;
  o.lr = r.number("lr", o.lr);
  o.lr_decay = r.number("lr_decay", o.lr_decay);
  o.weight_decay = r.number("weight_decay", o.weight_decay);
  o.initial_accumulator_value = r.number("initial_accumulator_value", o.initial_accumulator_value);
  o.eps = r.number("eps", o.eps);
  r.finish();
  return validated(o);
}

nlohmann::json Adagrad::config() const {
  return {{"lr", lr()},
          {"lr_decay", options_.lr_decay},
          {"weight_decay", options_.weight_decay},
          {"initial_accumulator_value", options_.initial_accumulator_value},
          {"eps", options_.eps}};
}

void Adagrad::update(Slot& slot, float* param, const float* grad, int64_t n) {
  const auto clr = static_cast<float>(lr() / (1.0 + static_cast<double>(slot.step - 1) * options_.lr_decay));
  const auto wd = static_cast<float>(options_.weight_decay);
  const auto eps = static_cast<float>(options_.eps);
  float* sum = slot.buffers[0].data<float>();
  for_update_ranges(
      n, [&](int64_t b, int64_t e) { adagrad_pass(param + b, grad + b, sum + b, e - b, clr, wd, eps); });
}

}  // namespace deft::optim
