// Reductions: forward and backward side by side.
#include <algorithm>

#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"

namespace deft {

using kernel::Binary;
using kernel::Reduce;
namespace k = kernel;

namespace {
// Shape of the reduced result with the reduced axes kept as size 1.
Shape keepdim_shape(const Shape& s, const std::vector<int64_t>& axes) {
  Shape out = s;
  for (int64_t a : axes) out[a] = 1;
  return out;
}
// Broadcasts a gradient of the reduced result back over the input's shape (a view).
Tensor expand_back(const Tensor& g, const Shape& in_shape, const std::vector<int64_t>& axes) {
  return k::expand(k::reshape(g, keepdim_shape(in_shape, axes)), in_shape);
}
}  // namespace

static const OpDef& kSum = define_op("sum");
Tensor sum(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  axes = k::normalize_axes(std::move(axes), x.dim(), "sum");
  Tensor out = k::reduce(Reduce::Sum, x, axes, keepdim);
  if (!needs_grad({x})) return out;
  return record(kSum, {x}, out, [s = x.shape(), axes](const Tensor& g, NeedsGrad) {
    return Grads{expand_back(g, s, axes)};
  });
}

static const OpDef& kMean = define_op("mean");
Tensor mean(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  axes = k::normalize_axes(std::move(axes), x.dim(), "mean");
  Tensor out = k::reduce(Reduce::Mean, x, axes, keepdim);
  if (!needs_grad({x})) return out;
  int64_t n = 1;
  for (int64_t a : axes) n *= x.shape()[a];
  return record(kMean, {x}, out, [s = x.shape(), axes, n](const Tensor& g, NeedsGrad) {
    return Grads{expand_back(k::affine(g, 1.0f / static_cast<float>(n), 0.0f), s, axes)};
  });
}

namespace {
// max/min: the gradient goes to the elements equal to the extreme, split evenly on ties.
Tensor extreme(const OpDef& op, Reduce kind, const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  axes = k::normalize_axes(std::move(axes), x.dim(), op.name);
  Tensor out = k::reduce(kind, x, axes, keepdim);
  if (!needs_grad({x})) return out;
  return record(op, {x}, out, [x = x.detach(), y = out.detach(), axes](const Tensor& g, NeedsGrad) {
    const Shape ks = keepdim_shape(x.shape(), axes);
    const Tensor mask = k::convert(k::binary(Binary::Eq, x, k::reshape(y, ks)), DType::Float32);
    const Tensor count = k::reduce(Reduce::Sum, mask, axes, true);
    const Tensor share = k::binary(Binary::Div, k::reshape(g, ks), count);
    return Grads{k::binary(Binary::Mul, mask, share)};
  });
}
}  // namespace

static const OpDef& kMax = define_op("max");
Tensor max(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return extreme(kMax, Reduce::Max, x, std::move(axes), keepdim);
}
static const OpDef& kMin = define_op("min");
Tensor min(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  return extreme(kMin, Reduce::Min, x, std::move(axes), keepdim);
}

static const OpDef& kLogSumExp = define_op("logsumexp");
Tensor logsumexp(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  axes = k::normalize_axes(std::move(axes), x.dim(), "logsumexp");
  Tensor out = k::logsumexp(x, axes, keepdim);
  if (!needs_grad({x})) return out;
  return record(kLogSumExp, {x}, out, [x = x.detach(), y = out.detach(), axes](const Tensor& g, NeedsGrad) {
    // d lse / dx = exp(x - lse)
    const Shape ks = keepdim_shape(x.shape(), axes);
    const Tensor p = k::unary(k::Unary::Exp, k::binary(Binary::Sub, x, k::reshape(y, ks)));
    return Grads{k::binary(Binary::Mul, p, k::reshape(g, ks))};
  });
}

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) { return k::argmax(x, axis, keepdim); }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) { return k::argmin(x, axis, keepdim); }

}  // namespace deft
