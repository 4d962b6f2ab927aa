// Views, copies, joining and indexing.
#include <algorithm>
#include <cstring>

#include "deft/tensor/kernels.h"
#include "deft/tensor/loops.h"
#include "deft/tensor/parallel.h"

namespace deft {
namespace detail {

Shape broadcast_strides(const Tensor& t, const Shape& out_shape) {
  const int64_t nd = static_cast<int64_t>(out_shape.size());
  const int64_t td = t.dim();
  Shape st(nd, 0);
  for (int64_t i = 0; i < td; ++i) {
    const int64_t o = nd - td + i;
    st[o] = t.shape()[i] == 1 && out_shape[o] != 1 ? 0 : t.strides()[i];
  }
  return st;
}

}  // namespace detail

namespace kernel {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    DEFT_CHECK_SHAPE(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast", op,
                     shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == -1) {
      DEFT_CHECK_SHAPE(infer < 0, "{}: only one dimension can be -1 in {}", op, shape_str(shape));
      infer = static_cast<int64_t>(i);
    } else {
      DEFT_CHECK_SHAPE(out[i] >= 0, "{}: invalid dimension {} in {}", op, out[i], shape_str(shape));
      known *= out[i];
    }
  }
  if (infer >= 0) {
    DEFT_CHECK_SHAPE(known != 0 && numel % known == 0,
                     "{}: shape {} is invalid for input of size {}", op, shape_str(shape), numel);
    out[infer] = numel / known;
  }
  DEFT_CHECK_SHAPE(shape_numel(out) == numel, "{}: shape {} is invalid for input of size {}", op,
                   shape_str(shape), numel);
  return out;
}

namespace {
// Strides for viewing `x` as `shape` without copying, if possible (PyTorch's rule:
// each run of merged input dims must be contiguous within itself).
bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
  const Shape& old_shape = x.shape();
  const Shape& old_strides = x.strides();
  out.assign(shape.size(), 0);
  if (x.numel() == 0 || old_shape.empty()) {
    out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = static_cast<int64_t>(old_shape.size()) - 1; td >= 0; --td) {
    tensor_numel *= old_shape[td];
    if (td == 0 || (old_shape[td - 1] != 1 && old_strides[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = old_strides[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}
}  // namespace

Tensor view(const Tensor& x, const Shape& shape) {
  const Shape s = infer_shape(shape, x.numel(), "view");
  Shape st;
  DEFT_CHECK_SHAPE(view_strides(x, s, st),
                   "view: a tensor of shape {} with strides {} cannot be viewed as {}; use reshape",
                   shape_str(x.shape()), shape_str(x.strides()), shape_str(s));
  return make_view(x, s, st, x.offset());
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  const Shape s = infer_shape(shape, x.numel(), "reshape");
  Shape st;
  if (view_strides(x, s, st)) return make_view(x, s, st, x.offset());
  Tensor c = x.clone();
  return make_view(c, s, contiguous_strides(s), 0);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  const int64_t nd = x.dim();
  DEFT_CHECK_SHAPE(static_cast<int64_t>(dims.size()) == nd,
                   "permute: {} dims given for a tensor of shape {}", dims.size(), shape_str(x.shape()));
  Shape s(nd), st(nd);
  std::vector<bool> seen(nd, false);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t d = normalize_axis(dims[i], nd, "permute");
    DEFT_CHECK_SHAPE(!seen[d], "permute: axis {} repeated", d);
    seen[d] = true;
    s[i] = x.shape()[d];
    st[i] = x.strides()[d];
  }
  return make_view(x, s, st, x.offset());
}

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  const int64_t nd = x.dim();
  std::vector<int64_t> dims(nd);
  for (int64_t i = 0; i < nd; ++i) dims[i] = i;
  if (nd == 0) return x.detach();
  std::swap(dims[normalize_axis(a, nd, "transpose")], dims[normalize_axis(b, nd, "transpose")]);
  return permute(x, dims);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  const int64_t d = normalize_axis(axis, x.dim(), "slice");
  DEFT_CHECK(step > 0, "slice: step must be positive, got {}", step);
  const int64_t n = x.shape()[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape s = x.shape(), st = x.strides();
  s[d] = (end - start + step - 1) / step;
  st[d] *= step;
  return make_view(x, s, st, x.offset() + start * x.strides()[d]);
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  const int64_t d = normalize_axis(axis, x.dim(), "squeeze");
  if (x.dim() == 0 || x.shape()[d] != 1) return x.detach();
  Shape s = x.shape(), st = x.strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return make_view(x, s, st, x.offset());
}

Tensor squeeze_all(const Tensor& x) {
  Shape s, st;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (x.shape()[i] != 1) {
      s.push_back(x.shape()[i]);
      st.push_back(x.strides()[i]);
    }
  return make_view(x, s, st, x.offset());
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  const int64_t d = normalize_axis(axis, x.dim() + 1, "unsqueeze");
  Shape s = x.shape(), st = x.strides();
  const int64_t stride = d < x.dim() ? x.strides()[d] * x.shape()[d] : 1;
  s.insert(s.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return make_view(x, s, st, x.offset());
}

Tensor expand(const Tensor& x, const Shape& shape) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  DEFT_CHECK_SHAPE(nd >= x.dim(), "expand: cannot expand shape {} to {}", shape_str(x.shape()),
                   shape_str(shape));
  Shape s(nd), st(nd, 0);
  for (int64_t i = 0; i < nd; ++i) {
    const int64_t xi = i - (nd - x.dim());
    const int64_t want = shape[i];
    if (xi < 0) {
      DEFT_CHECK_SHAPE(want >= 0, "expand: cannot expand shape {} to {}", shape_str(x.shape()),
                       shape_str(shape));
      s[i] = want;
      continue;
    }
    const int64_t have = x.shape()[xi];
    if (want == -1 || want == have) {
      s[i] = have;
      st[i] = x.strides()[xi];
    } else {
      DEFT_CHECK_SHAPE(have == 1, "expand: cannot expand shape {} to {}", shape_str(x.shape()),
                       shape_str(shape));
      s[i] = want;
    }
  }
  return make_view(x, s, st, x.offset());
}

Tensor contiguous(const Tensor& x) { return x.is_contiguous() ? x : x.clone(); }

// ---- copies ----------------------------------------------------------------------
namespace {
template <class D, class S>
void copy_typed(const Tensor& dst, const Tensor& src) {
  const detail::LoopPlan<2> plan(dst.shape(), {dst.strides(), detail::broadcast_strides(src, dst.shape())});
  D* d = static_cast<D*>(dst.raw_data());
  const S* s = static_cast<const S*>(src.raw_data());
  const int64_t ds = plan.inner_stride(0), ss = plan.inner_stride(1);
  parallel_for(0, plan.numel, detail::kParallelGrain, [&](int64_t b, int64_t e) {
    plan.run(b, e, [&](const std::array<int64_t, 2>& off, int64_t n) {
      D* dp = d + off[0];
      const S* sp = s + off[1];
      if (ds == 1 && ss == 1) {
        if constexpr (std::is_same_v<D, S>) {
          std::memcpy(dp, sp, static_cast<size_t>(n) * sizeof(D));
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i] = static_cast<D>(sp[i]);
        }
      } else {
        for (int64_t i = 0; i < n; ++i) dp[i * ds] = static_cast<D>(sp[i * ss]);
      }
    });
  });
}

template <class D>
void copy_from_any(const Tensor& dst, const Tensor& src) {
  switch (src.dtype()) {
    case DType::Float32: copy_typed<D, float>(dst, src); break;
    case DType::Int64: copy_typed<D, int64_t>(dst, src); break;
    case DType::UInt8: copy_typed<D, uint8_t>(dst, src); break;
  }
}
}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  const Shape b = broadcast_shapes(dst.shape(), src.shape(), "copy");
  DEFT_CHECK_SHAPE(b == dst.shape(), "copy: source shape {} does not broadcast to destination {}",
                   shape_str(src.shape()), shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  switch (dst.dtype()) {
    case DType::Float32: copy_from_any<float>(dst, src); break;
    case DType::Int64: copy_from_any<int64_t>(dst, src); break;
    case DType::UInt8: copy_from_any<uint8_t>(dst, src); break;
  }
}

Tensor convert(const Tensor& x, DType dtype) {
  Tensor out = Tensor::empty(x.shape(), dtype);
  copy(out, x);
  return out;
}

// ---- joining -----------------------------------------------------------------------
Tensor cat(const std::vector<Tensor>& xs, int64_t axis) {
  DEFT_CHECK(!xs.empty(), "cat: no tensors given");
  const Tensor& first = xs[0];
  DEFT_CHECK_SHAPE(first.dim() > 0, "cat: zero-dimensional tensors cannot be concatenated; use stack");
  const int64_t d = normalize_axis(axis, first.dim(), "cat");
  Shape out_shape = first.shape();
  int64_t total = 0;
  for (const Tensor& x : xs) {
    DEFT_CHECK(x.dtype() == first.dtype(), "cat: dtypes {} and {} differ", dtype_name(first.dtype()),
               dtype_name(x.dtype()));
    DEFT_CHECK_SHAPE(x.dim() == first.dim(), "cat: shapes {} and {} differ in rank",
                     shape_str(first.shape()), shape_str(x.shape()));
    for (int64_t i = 0; i < x.dim(); ++i)
      DEFT_CHECK_SHAPE(i == d || x.shape()[i] == first.shape()[i],
                       "cat: shapes {} and {} differ outside axis {}", shape_str(first.shape()),
                       shape_str(x.shape()), d);
    total += x.shape()[d];
  }
  out_shape[d] = total;
  Tensor out = Tensor::empty(out_shape, first.dtype());
  int64_t pos = 0;
  for (const Tensor& x : xs) {
    copy(slice(out, d, pos, pos + x.shape()[d]), x);
    pos += x.shape()[d];
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  DEFT_CHECK(!xs.empty(), "stack: no tensors given");
  const int64_t d = normalize_axis(axis, xs[0].dim() + 1, "stack");
  std::vector<Tensor> us;
  us.reserve(xs.size());
  for (const Tensor& x : xs) {
    DEFT_CHECK_SHAPE(x.shape() == xs[0].shape(), "stack: shapes {} and {} differ",
                     shape_str(xs[0].shape()), shape_str(x.shape()));
    us.push_back(unsqueeze(x, d));
  }
  return cat(us, d);
}

// ---- indexing --------------------------------------------------------------------------
namespace {
void check_index(const Tensor& index, const char* op) {
  DEFT_CHECK(index.dtype() == DType::Int64, "{}: index must be int64, got {}", op,
             dtype_name(index.dtype()));
}
// outer x axis x inner decomposition of a contiguous tensor
struct Blocks {
  int64_t outer = 1, axis = 1, inner = 1;
};
Blocks blocks_of(const Shape& s, int64_t d) {
  Blocks b;
  for (int64_t i = 0; i < d; ++i) b.outer *= s[i];
  b.axis = s[d];
  for (size_t i = static_cast<size_t>(d) + 1; i < s.size(); ++i) b.inner *= s[i];
  return b;
}
template <class F>
void dispatch_all(DType t, F&& f) {
  switch (t) {
    case DType::Float32: f(float{}); break;
    case DType::Int64: f(int64_t{}); break;
    case DType::UInt8: f(uint8_t{}); break;
  }
}
}  // namespace

Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  check_index(index, "index_select");
  DEFT_CHECK_SHAPE(index.dim() <= 1, "index_select: index must be 1-D, got shape {}",
                   shape_str(index.shape()));
  DEFT_CHECK_SHAPE(x.dim() > 0, "index_select: input must have at least 1 dim, got shape []");
  const int64_t d = normalize_axis(axis, x.dim(), "index_select");
  const Tensor xc = contiguous(x);
  const Tensor ic = contiguous(index);
  const int64_t* idx = ic.data<int64_t>();
  const int64_t ni = ic.numel();
  const Blocks b = blocks_of(xc.shape(), d);
  for (int64_t j = 0; j < ni; ++j)
    DEFT_CHECK_SHAPE(idx[j] >= 0 && idx[j] < b.axis,
                     "index_select: index {} is out of range for axis {} of size {}", idx[j], d, b.axis);
  Shape os = xc.shape();
  os[d] = ni;
  Tensor out = Tensor::empty(os, x.dtype());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(xc.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    parallel_for(0, b.outer * ni, std::max<int64_t>(1, detail::kParallelGrain / std::max<int64_t>(b.inner, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) {
                     const int64_t o = r / ni, j = r % ni;
                     std::memcpy(dst + r * b.inner, src + (o * b.axis + idx[j]) * b.inner,
                                 static_cast<size_t>(b.inner) * sizeof(T));
                   }
                 });
  });
  return out;
}

Tensor index_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src) {
  check_index(index, "index_add");
  DEFT_CHECK(src.dtype() == DType::Float32, "index_add: source must be float32");
  DEFT_CHECK_SHAPE(!shape.empty(), "index_add: shape must have at least 1 dim, got []");
  const int64_t d = normalize_axis(axis, static_cast<int64_t>(shape.size()), "index_add");
  const Tensor ic = contiguous(index);
  const Tensor sc = contiguous(src);
  const int64_t* idx = ic.data<int64_t>();
  const int64_t ni = ic.numel();
  Shape expect = shape;
  expect[d] = ni;
  DEFT_CHECK_SHAPE(sc.shape() == expect, "index_add: source shape {} does not match {}",
                   shape_str(sc.shape()), shape_str(expect));
  const Blocks b = blocks_of(shape, d);
  for (int64_t j = 0; j < ni; ++j)  // checked here: a throw inside the parallel loop would abort
    DEFT_CHECK_SHAPE(idx[j] >= 0 && idx[j] < b.axis,
                     "index_add: index {} is out of range for axis {} of size {}", idx[j], d, b.axis);
  Tensor out = Tensor::zeros(shape, DType::Float32);
  float* dst = out.data<float>();
  const float* s = sc.data<float>();
  // Parallel over the inner extent keeps the order of additions fixed per element.
  parallel_for(0, b.inner, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t o = 0; o < b.outer; ++o)
      for (int64_t j = 0; j < ni; ++j) {
        float* dp = dst + (o * b.axis + idx[j]) * b.inner;
        const float* sp = s + (o * ni + j) * b.inner;
        for (int64_t i = lo; i < hi; ++i) dp[i] += sp[i];
      }
  });
  return out;
}

namespace {
// Shared loop for gather/scatter_add: visits each index element with the flat
// offsets of the source position in `x_shape` and of the index element.
template <class F>
void for_each_index(const Shape& x_shape, int64_t d, const Tensor& ic, const char* op, F&& f) {
  const Shape& is = ic.shape();
  const int64_t nd = static_cast<int64_t>(is.size());
  DEFT_CHECK_SHAPE(!x_shape.empty(), "{}: input must have at least 1 dim, got shape []", op);
  DEFT_CHECK_SHAPE(nd == static_cast<int64_t>(x_shape.size()), "{}: index shape {} and input shape {} differ in rank",
                   op, shape_str(is), shape_str(x_shape));
  for (int64_t i = 0; i < nd; ++i)
    DEFT_CHECK_SHAPE(i == d || is[i] <= x_shape[i], "{}: index shape {} exceeds input shape {} at axis {}", op,
                     shape_str(is), shape_str(x_shape), i);
  const Shape xst = contiguous_strides(x_shape);
  const int64_t* idx = ic.data<int64_t>();
  const int64_t n = ic.numel();
  std::vector<int64_t> pos(nd, 0);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t v = idx[k];
    DEFT_CHECK_SHAPE(v >= 0 && v < x_shape[d], "{}: index {} is out of range for axis {} of size {}", op, v, d,
                     x_shape[d]);
    int64_t xo = 0;
    for (int64_t i = 0; i < nd; ++i) xo += (i == d ? v : pos[i]) * xst[i];
    f(xo, k);
    for (int64_t i = nd - 1; i >= 0; --i) {
      if (++pos[i] < is[i]) break;
      pos[i] = 0;
    }
  }
}
}  // namespace

Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  check_index(index, "gather");
  const int64_t d = normalize_axis(axis, x.dim(), "gather");
  const Tensor xc = contiguous(x);
  const Tensor ic = contiguous(index);
  Tensor out = Tensor::empty(ic.shape(), x.dtype());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(xc.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    for_each_index(xc.shape(), d, ic, "gather", [&](int64_t xo, int64_t k) { dst[k] = src[xo]; });
  });
  return out;
}

Tensor scatter_add(const Shape& shape, int64_t axis, const Tensor& index, const Tensor& src) {
  check_index(index, "scatter_add");
  DEFT_CHECK(src.dtype() == DType::Float32, "scatter_add: source must be float32");
  const int64_t d = normalize_axis(axis, static_cast<int64_t>(shape.size()), "scatter_add");
  const Tensor ic = contiguous(index);
  const Tensor sc = contiguous(src);
  DEFT_CHECK_SHAPE(sc.shape() == ic.shape(), "scatter_add: source shape {} and index shape {} differ",
                   shape_str(sc.shape()), shape_str(ic.shape()));
  Tensor out = Tensor::zeros(shape, DType::Float32);
  float* dst = out.data<float>();
  const float* s = sc.data<float>();
  for_each_index(shape, d, ic, "scatter_add", [&](int64_t xo, int64_t k) { dst[xo] += s[k]; });
  return out;
}

}  // namespace kernel
}  // namespace deft
