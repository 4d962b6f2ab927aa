// RMSprop, with PyTorch's torch.optim.RMSprop semantics (its defaults too:
// lr 0.01, alpha 0.99, eps 1e-8; Keras's are lr 1e-3, rho 0.9, eps 1e-7).
//
//   optim::RMSprop opt(model.named_parameters(), {.lr = 1e-3, .alpha = 0.9});
//
// Per parameter, with g the gradient (PyTorch docs):
//   g <- g + weight_decay * theta                       (L2 penalty)
//   s <- alpha * s + (1 - alpha) * g^2
//   centered:  a <- alpha * a + (1 - alpha) * g;  denom = sqrt(s - a^2) + eps
//   otherwise: denom = sqrt(s) + eps
//   momentum > 0:  b <- momentum * b + g / denom;  theta <- theta - lr * b
//   otherwise:     theta <- theta - lr * g / denom
// State per parameter: "square_avg", then "momentum_buffer" (momentum > 0) and
// "grad_avg" (centered), zeros at the first step.
#pragma once

#include "deft/optim/optimizer.h"

namespace deft::optim {

struct RMSpropOptions {
  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.0;
  bool centered = false;
};

class RMSprop : public Optimizer {
 public:
  explicit RMSprop(RMSpropOptions options = {});
  template <ParamList P>
  RMSprop(const P& params, RMSpropOptions options = {}) : RMSprop(options) {
    attach(params);
  }
  // Keys: lr, alpha, eps, weight_decay, momentum, centered.
  static RMSpropOptions parse(const nlohmann::json& config);

  std::string type() const override { return "rmsprop"; }
  nlohmann::json config() const override;
  const RMSpropOptions& options() const { return options_; }  // as built; lr() is the live lr

 protected:
  std::vector<std::string> buffer_names() const override;
  void update(Slot& slot, float* param, const float* grad, int64_t n) override;

 private:
  RMSpropOptions options_;
};

}  // namespace deft::optim
