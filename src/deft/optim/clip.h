// Gradient clipping, applied between backward() and the optimizer's step(),
// with PyTorch's semantics (torch.nn.utils.clip_grad_norm_ / clip_grad_value_).
//
//   loss.backward();
//   double norm = optim::clip_grad_norm(model.parameters(), 1.0);
//   opt.step();
//
// Parameters without a gradient are skipped. Gradients are scaled in place.
#pragma once

#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::optim {

// Scales all gradients together so their joint L2 norm is at most max_norm:
// g <- g * max_norm / (norm + 1e-6) when that factor is below 1. Returns the
// norm before clipping, accumulated in double in a fixed order (the same for
// any thread count). A non-finite norm leaves the gradients untouched and is
// returned, so the caller can skip the step (PyTorch would scale by NaN).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

// Clamps every gradient element to [-clip, clip].
void clip_grad_value(const std::vector<Tensor>& params, double clip);

}  // namespace deft::optim
