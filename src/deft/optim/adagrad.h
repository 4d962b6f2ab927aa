// Adagrad, with PyTorch's torch.optim.Adagrad semantics.
//
//   optim::Adagrad opt(model.named_parameters(), {.lr = 0.01});
//
// Per parameter at step t, with g the gradient (PyTorch docs):
//   g <- g + weight_decay * theta                       (L2 penalty)
//   clr = lr / (1 + (t - 1) * lr_decay)
//   s <- s + g^2                 (s starts at initial_accumulator_value)
//   theta <- theta - clr * g / (sqrt(s) + eps)
// State per parameter: "sum".
#pragma once

#include "deft/optim/optimizer.h"

namespace deft::optim {

struct AdagradOptions {
  double lr = 0.01;
  double lr_decay = 0.0;
  double weight_decay = 0.0;
  double initial_accumulator_value = 0.0;
  double eps = 1e-10;
};

class Adagrad : public Optimizer {
 public:
  explicit Adagrad(AdagradOptions options = {});
  template <ParamList P>
  Adagrad(const P& params, AdagradOptions options = {}) : Adagrad(options) {
    attach(params);
  }
  // Keys: lr, lr_decay, weight_decay, initial_accumulator_value, eps.
  static AdagradOptions parse(const nlohmann::json& config);

  std::string type() const override { return "adagrad"; }
  nlohmann::json config() const override;
  const AdagradOptions& options() const { return options_; }  // as built; lr() is the live lr

 protected:
  std::vector<std::string> buffer_names() const override { return {"sum"}; }
  double buffer_init() const override { return options_.initial_accumulator_value; }
  void update(Slot& slot, float* param, const float* grad, int64_t n) override;

 private:
  AdagradOptions options_;
};

}  // namespace deft::optim
