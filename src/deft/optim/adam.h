// Adam and AdamW, with PyTorch's torch.optim.Adam / AdamW semantics.
//
//   optim::Adam opt(model.named_parameters(), {.lr = 1e-3});
//   optim::AdamW opt2({.lr = 3e-4, .weight_decay = 0.05});   // attach() later
//
// Per parameter at step t, with g the gradient (PyTorch docs):
//   Adam:  g <- g + weight_decay * theta                  (L2 penalty)
//   AdamW: theta <- theta - lr * weight_decay * theta      (decoupled decay)
//   m <- beta1 * m + (1 - beta1) * g
//   v <- beta2 * v + (1 - beta2) * g^2
//   vmax <- max(vmax, v), used in place of v           (amsgrad)
//   theta <- theta - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// State per parameter: "m", "v" (and "vmax" with amsgrad), zeros at the first step.
#pragma once

#include <utility>

#include "deft/optim/optimizer.h"

namespace deft::optim {

struct AdamOptions {
  double lr = 1e-3;
  std::pair<double, double> betas{0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool amsgrad = false;
};

// AdamW's default weight decay is 0.01, as in PyTorch.
struct AdamWOptions {
  double lr = 1e-3;
  std::pair<double, double> betas{0.9, 0.999};
  double eps = 1e-8;
  double weight_decay = 0.01;
  bool amsgrad = false;
};

class Adam : public Optimizer {
 public:
  explicit Adam(AdamOptions options = {});
  template <ParamList P>
  Adam(const P& params, AdamOptions options = {}) : Adam(options) {
    attach(params);
  }
  // Keys: lr, betas ([b1, b2]; or beta1 / beta2 alone), eps, weight_decay, amsgrad.
  static AdamOptions parse(const nlohmann::json& config);

  std::string type() const override { return "adam"; }
  nlohmann::json config() const override;
  const AdamOptions& options() const { return options_; }  // as built; lr() is the live lr

 protected:
  std::vector<std::string> buffer_names() const override;
  void update(Slot& slot, float* param, const float* grad, int64_t n) override;

 private:
  AdamOptions options_;
};

class AdamW : public Optimizer {
 public:
  explicit AdamW(AdamWOptions options = {});
  template <ParamList P>
  AdamW(const P& params, AdamWOptions options = {}) : AdamW(options) {
    attach(params);
  }
  static AdamWOptions parse(const nlohmann::json& config);  // same keys as Adam

  std::string type() const override { return "adamw"; }
  nlohmann::json config() const override;
  const AdamWOptions& options() const { return options_; }  // as built; lr() is the live lr

 protected:
  std::vector<std::string> buffer_names() const override;
  void update(Slot& slot, float* param, const float* grad, int64_t n) override;

 private:
  AdamWOptions options_;
};

}  // namespace deft::optim
