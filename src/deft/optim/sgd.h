// Stochastic gradient descent with optional momentum and Nesterov momentum,
// with PyTorch's torch.optim.SGD semantics.
//
//   optim::SGD opt(model.named_parameters(), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
//
// Per parameter, with g the gradient (PyTorch docs):
//   g  <- g + weight_decay * theta                  (L2 penalty, when weight_decay != 0)
//   b  <- g at the first step, else momentum * b + (1 - dampening) * g
//   g  <- g + momentum * b  (nesterov)   or   g <- b   (momentum != 0)
//   theta <- theta - lr * g
#pragma once

#include "deft/optim/optimizer.h"

namespace deft::optim {

struct SGDOptions {
  double lr = 0.01;  // Keras's default; PyTorch requires one
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0, as in PyTorch
};

class SGD : public Optimizer {
 public:
  explicit SGD(SGDOptions options = {});
  template <ParamList P>
  SGD(const P& params, SGDOptions options = {}) : SGD(options) {
    attach(params);
  }
  static SGDOptions parse(const nlohmann::json& config);  // InputError on bad keys/values

  std::string type() const override { return "sgd"; }
  nlohmann::json config() const override;
  const SGDOptions& options() const { return options_; }  // as built; lr() is the live lr

 protected:
  std::vector<std::string> buffer_names() const override;
  void update(Slot& slot, float* param, const float* grad, int64_t n) override;

 private:
  SGDOptions options_;
};

}  // namespace deft::optim
