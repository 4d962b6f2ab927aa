// Views, joining and indexing: forward and backward side by side.
#include <numeric>

#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"

namespace deft {

namespace k = kernel;

static const OpDef& kReshape = define_op("reshape");
namespace {
Tensor reshape_like(const Tensor& x, Tensor out) {
  if (!needs_grad({x})) return out;
  return record(kReshape, {x}, out, [s = x.shape()](const Tensor& g, NeedsGrad) { return Grads{k::reshape(g, s)}; });
}
}  // namespace
Tensor reshape(const Tensor& x, const Shape& shape) { return reshape_like(x, k::reshape(x, shape)); }
Tensor view(const Tensor& x, const Shape& shape) { return reshape_like(x, k::view(x, shape)); }
Tensor squeeze(const Tensor& x, int64_t axis) { return reshape_like(x, k::squeeze(x, axis)); }
Tensor unsqueeze(const Tensor& x, int64_t axis) { return reshape_like(x, k::unsqueeze(x, axis)); }
Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  if (x.dim() == 0) return reshape(x, {1});
  const int64_t s = normalize_axis(start, x.dim(), "flatten");
  const int64_t e = normalize_axis(end, x.dim(), "flatten");
  DEFT_CHECK_SHAPE(s <= e, "flatten: start axis {} is after end axis {}", s, e);
  Shape shape(x.shape().begin(), x.shape().begin() + s);
  int64_t n = 1;
  for (int64_t i = s; i <= e; ++i) n *= x.shape()[i];
  shape.push_back(n);
  shape.insert(shape.end(), x.shape().begin() + e + 1, x.shape().end());
  return reshape(x, shape);
}

static const OpDef& kPermute = define_op("permute");
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  Tensor out = k::permute(x, dims);
  if (!needs_grad({x})) return out;
  std::vector<int64_t> inverse(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) inverse[normalize_axis(dims[i], x.dim(), "permute")] = static_cast<int64_t>(i);
  return record(kPermute, {x}, out, [inverse](const Tensor& g, NeedsGrad) { return Grads{k::permute(g, inverse)}; });
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  std::vector<int64_t> dims(x.dim());
  std::iota(dims.begin(), dims.end(), 0);
  if (x.dim() > 0) std::swap(dims[normalize_axis(a, x.dim(), "transpose")], dims[normalize_axis(b, x.dim(), "transpose")]);
  return permute(x, dims);
}

static const OpDef& kSlice = define_op("slice");
Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  Tensor out = k::slice(x, axis, start, end, step);
  if (!needs_grad({x})) return out;
  return record(kSlice, {x}, out, [s = x.shape(), axis, start, end, step](const Tensor& g, NeedsGrad) {
    Tensor gx = Tensor::zeros(s);
    k::copy(k::slice(gx, axis, start, end, step), g);
    return Grads{gx};
  });
}

static const OpDef& kExpand = define_op("expand");
Tensor expand(const Tensor& x, const Shape& shape) {
  Tensor out = k::expand(x, shape);
  if (!needs_grad({x})) return out;
  return record(kExpand, {x}, out, [s = x.shape()](const Tensor& g, NeedsGrad) { return Grads{k::sum_to(g, s)}; });
}

static const OpDef& kContiguous = define_op("contiguous");
Tensor contiguous(const Tensor& x) {
  Tensor out = k::contiguous(x);
  if (!needs_grad({x})) return out;
  return record(kContiguous, {x}, out, [](const Tensor& g, NeedsGrad) { return Grads{g}; });
}

static const OpDef& kCat = define_op("cat");
Tensor cat(const std::vector<Tensor>& xs, int64_t axis) {
  Tensor out = k::cat(xs, axis);
  if (!needs_grad(xs)) return out;
  const int64_t d = normalize_axis(axis, xs[0].dim(), "cat");
  std::vector<int64_t> sizes;
  for (const Tensor& x : xs) sizes.push_back(x.shape()[d]);
  return record(kCat, xs, out, [sizes, d](const Tensor& g, NeedsGrad need) {
    Grads grads;
    int64_t pos = 0;
    for (size_t i = 0; i < sizes.size(); ++i) {
      grads.push_back(need[i] ? k::slice(g, d, pos, pos + sizes[i]) : Tensor());
      pos += sizes[i];
    }
    return grads;
  });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  DEFT_CHECK(!xs.empty(), "stack: no tensors given");
  const int64_t d = normalize_axis(axis, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  for (const Tensor& x : xs) {
    DEFT_CHECK_SHAPE(x.shape() == xs[0].shape(), "stack: shapes {} and {} differ", shape_str(xs[0].shape()),
                     shape_str(x.shape()));
    us.push_back(unsqueeze(x, d));
  }
  return cat(us, d);
}

static const OpDef& kIndexSelect = define_op("index_select");
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  Tensor out = k::index_select(x, axis, index);
  if (!needs_grad({x})) return out;
  return record(kIndexSelect, {x}, out, [s = x.shape(), axis, idx = index.detach()](const Tensor& g, NeedsGrad) {
    return Grads{k::index_add(s, axis, idx, g)};
  });
}

static const OpDef& kGather = define_op("gather");
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  Tensor out = k::gather(x, axis, index);
  if (!needs_grad({x})) return out;
  return record(kGather, {x}, out, [s = x.shape(), axis, idx = index.detach()](const Tensor& g, NeedsGrad) {
    return Grads{k::scatter_add(s, axis, idx, g)};
  });
}

}  // namespace deft
