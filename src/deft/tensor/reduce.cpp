// Reductions along any axes. Deterministic: each output is accumulated in a
// fixed order, and long rows are cut into fixed-size blocks whose partial
// results are combined in order, so the result does not depend on the number
// of threads either.
#include <algorithm>
#include <cmath>
#include <limits>

#include "deft/tensor/kernels.h"
#include "deft/tensor/loops.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/vecmath.h"

namespace deft::kernel {

std::vector<int64_t> normalize_axes(std::vector<int64_t> axes, int64_t ndim, const char* op) {
  if (axes.empty()) {
    for (int64_t i = 0; i < ndim; ++i) axes.push_back(i);
    return axes;
  }
  for (int64_t& a : axes) a = normalize_axis(a, ndim, op);
  std::sort(axes.begin(), axes.end());
  axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
  if (ndim == 0) axes.clear();
  return axes;
}

namespace {

constexpr int64_t kBlock = 65536;  // fixed block for long rows

struct SumOp {
  static constexpr float init() { return 0.0f; }
  static float step(float acc, float v) { return acc + v; }
};
struct MaxOp {
  static constexpr float init() { return -std::numeric_limits<float>::infinity(); }
  static float step(float acc, float v) { return (v > acc || v != v) ? v : acc; }
};
struct MinOp {
  static constexpr float init() { return std::numeric_limits<float>::infinity(); }
  static float step(float acc, float v) { return (v < acc || v != v) ? v : acc; }
};

// Contiguous row, 16 independent lanes (vectorised), lanes combined in order.
template <class Op>
float row_reduce_small(const float* p, int64_t n) {
  float lanes[16];
  for (float& l : lanes) l = Op::init();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) lanes[j] = Op::step(lanes[j], p[i + j]);
  float acc = Op::init();
  for (float l : lanes) acc = Op::step(acc, l);
  for (; i < n; ++i) acc = Op::step(acc, p[i]);
  return acc;
}

template <class Op>
float row_reduce(const float* p, int64_t n, bool parallel) {
  if (n <= kBlock) return row_reduce_small<Op>(p, n);
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<float> partial(nb);
  auto body = [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b)
      partial[b] = row_reduce_small<Op>(p + b * kBlock, std::min(kBlock, n - b * kBlock));
  };
  if (parallel) parallel_for(0, nb, 1, body);
  else body(0, nb);
  float acc = Op::init();
  for (float v : partial) acc = Op::step(acc, v);
  return acc;
}

template <class Op>
void reduce_impl(const Tensor& x, const std::vector<int64_t>& axes, float* out) {
  const int64_t nd = x.dim();
  Shape kshape, kstrides, rshape, rstrides;
  for (int64_t i = 0; i < nd; ++i) {
    const bool red = std::binary_search(axes.begin(), axes.end(), i);
    (red ? rshape : kshape).push_back(x.shape()[i]);
    (red ? rstrides : kstrides).push_back(x.strides()[i]);
  }
  const detail::LoopPlan<1> kp(kshape, {kstrides});
  const detail::LoopPlan<1> rp(rshape, {rstrides});
  const int64_t n_out = kp.numel, n_red = rp.numel;
  const float* p = x.data<float>();
  const bool red_flat = rp.shape.size() == 1 && (rp.inner_stride(0) == 1 || rp.shape[0] == 1);
  const bool kept_flat = kp.shape.size() == 1 && kp.inner_stride(0) == 1;

  if (!red_flat && n_red > kBlock) {
    // Long strided reduction (e.g. a full reduction of a transposed or sliced view):
    // one running float per output would lose precision over this many elements, so
    // copy into contiguous rows (kept axes first, reduced axes last) and take the
    // laned, blocked row path below.
    std::vector<int64_t> perm, last_axes;
    for (int64_t i = 0; i < nd; ++i)
      if (!std::binary_search(axes.begin(), axes.end(), i)) perm.push_back(i);
    for (int64_t i = static_cast<int64_t>(perm.size()); i < nd; ++i) last_axes.push_back(i);
    perm.insert(perm.end(), axes.begin(), axes.end());
    reduce_impl<Op>(contiguous(permute(x, perm)), last_axes, out);
    return;
  }
  if (red_flat) {  // each output reduces one contiguous row
    if (n_out == 1) {
      out[0] = row_reduce<Op>(p, n_red, true);
      return;
    }
    parallel_for(0, n_out, std::max<int64_t>(1, 16384 / std::max<int64_t>(n_red, 1)), [&](int64_t lo, int64_t hi) {
      kp.run(lo, hi, [&](const std::array<int64_t, 1>& off, int64_t n) {
        const int64_t ks = kp.inner_stride(0);
        for (int64_t j = 0; j < n; ++j) out[lo + j] = row_reduce<Op>(p + off[0] + j * ks, n_red, false);
        lo += n;
      });
    });
    return;
  }
  if (kept_flat) {  // reduce over outer axes: accumulate whole contiguous rows
    parallel_for(0, n_out, 256, [&](int64_t lo, int64_t hi) {
      float* o = out + lo;
      const int64_t w = hi - lo;
      for (int64_t j = 0; j < w; ++j) o[j] = Op::init();
      rp.run(0, n_red, [&](const std::array<int64_t, 1>& off, int64_t n) {
        const int64_t rs = rp.inner_stride(0);
        for (int64_t r = 0; r < n; ++r) {
          const float* row = p + off[0] + r * rs + lo;
          for (int64_t j = 0; j < w; ++j) o[j] = Op::step(o[j], row[j]);
        }
      });
    });
    return;
  }
  parallel_for(0, n_out, 64, [&](int64_t lo, int64_t hi) {
    kp.run(lo, hi, [&](const std::array<int64_t, 1>& koff, int64_t n) {
      const int64_t ks = kp.inner_stride(0);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t base = koff[0] + j * ks;
        float acc = Op::init();
        rp.run(0, n_red, [&](const std::array<int64_t, 1>& roff, int64_t m) {
          const int64_t rs = rp.inner_stride(0);
          for (int64_t r = 0; r < m; ++r) acc = Op::step(acc, p[base + roff[0] + r * rs]);
        });
        out[lo + j] = acc;
      }
      lo += n;
    });
  });
}

Shape reduced_shape(const Shape& s, const std::vector<int64_t>& axes, bool keepdim) {
  Shape out;
  for (int64_t i = 0; i < static_cast<int64_t>(s.size()); ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i)) {
      if (keepdim) out.push_back(1);
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

const char* reduce_name(Reduce op) {
  switch (op) {
    case Reduce::Sum: return "sum";
    case Reduce::Mean: return "mean";
    case Reduce::Max: return "max";
    case Reduce::Min: return "min";
  }
  return "reduce";
}

}  // namespace

Tensor reduce(Reduce op, const Tensor& x, std::vector<int64_t> axes_in, bool keepdim) {
  const char* name = reduce_name(op);
  DEFT_CHECK(x.dtype() == DType::Float32, "{}: expects float32, got {}; convert with .to()", name,
             dtype_name(x.dtype()));
  const auto axes = normalize_axes(std::move(axes_in), x.dim(), name);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), axes, keepdim), DType::Float32);
  int64_t n_red = 1;
  for (int64_t a : axes) n_red *= x.shape()[a];
  if (out.numel() == 0) return out;
  if (n_red == 0) {
    DEFT_CHECK_SHAPE(op == Reduce::Sum || op == Reduce::Mean, "{}: cannot reduce over an empty axis of shape {}",
                     name, shape_str(x.shape()));
    out.fill(op == Reduce::Sum ? 0.0 : std::numeric_limits<double>::quiet_NaN());
    return out;
  }
  float* o = out.data<float>();
  switch (op) {
    case Reduce::Sum:
    case Reduce::Mean: reduce_impl<SumOp>(x, axes, o); break;
    case Reduce::Max: reduce_impl<MaxOp>(x, axes, o); break;
    case Reduce::Min: reduce_impl<MinOp>(x, axes, o); break;
  }
  if (op == Reduce::Mean) {
    const float inv = 1.0f / static_cast<float>(n_red);
    for (int64_t i = 0; i < out.numel(); ++i) o[i] *= inv;
  }
  return out;
}

Tensor logsumexp(const Tensor& x, std::vector<int64_t> axes, bool keepdim) {
  const auto ax = normalize_axes(std::move(axes), x.dim(), "logsumexp");
  Tensor m = reduce(Reduce::Max, x, ax, true);
  float* mp = m.data<float>();
  for (int64_t i = 0; i < m.numel(); ++i)
    if (!std::isfinite(mp[i])) mp[i] = 0.0f;  // all -inf (or inf) rows: shift by 0
  Tensor s = reduce(Reduce::Sum, unary(Unary::Exp, binary(Binary::Sub, x, m)), ax, true);
  float* sp = s.data<float>();
  for (int64_t i = 0; i < s.numel(); ++i) sp[i] = std::log(sp[i]) + mp[i];
  return keepdim ? s : reshape(s, reduced_shape(x.shape(), ax, false));
}

namespace {
template <bool IsMax>
Tensor arg_reduce(const Tensor& x, int64_t axis, bool keepdim, const char* name) {
  DEFT_CHECK(x.dtype() == DType::Float32, "{}: expects float32, got {}", name, dtype_name(x.dtype()));
  const int64_t d = normalize_axis(axis, x.dim(), name);
  const int64_t len = x.dim() == 0 ? 1 : x.shape()[d];
  DEFT_CHECK_SHAPE(len > 0, "{}: cannot reduce over an empty axis of shape {}", name, shape_str(x.shape()));
  Shape ks = x.shape(), kst = x.strides();
  const int64_t stride = x.dim() == 0 ? 0 : x.strides()[d];
  if (x.dim() > 0) {
    ks.erase(ks.begin() + d);
    kst.erase(kst.begin() + d);
  }
  Tensor out = Tensor::empty(ks, DType::Int64);
  int64_t* o = out.data<int64_t>();
  const float* p = x.data<float>();
  const detail::LoopPlan<1> kp(ks, {kst});
  parallel_for(0, kp.numel, 256, [&](int64_t lo, int64_t hi) {
    kp.run(lo, hi, [&](const std::array<int64_t, 1>& off, int64_t n) {
      for (int64_t j = 0; j < n; ++j) {
        const float* row = p + off[0] + j * kp.inner_stride(0);
        int64_t best = 0;
        float bv = row[0];
        for (int64_t i = 1; i < len && bv == bv; ++i) {
          const float v = row[i * stride];
          if (IsMax ? (v > bv || v != v) : (v < bv || v != v)) {
            bv = v;
            best = i;
          }
        }
        o[lo + j] = best;
      }
      lo += n;
    });
  });
  if (keepdim && x.dim() > 0) return unsqueeze(out, d);
  return out;
}
}  // namespace

Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) { return arg_reduce<true>(x, axis, keepdim, "argmax"); }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) { return arg_reduce<false>(x, axis, keepdim, "argmin"); }

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  DEFT_CHECK_SHAPE(lead >= 0, "sum_to: cannot reduce shape {} to {}", shape_str(g.shape()), shape_str(shape));
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < lead; ++i) axes.push_back(i);
  for (int64_t i = 0; i < static_cast<int64_t>(shape.size()); ++i) {
    if (shape[i] == 1 && g.shape()[i + lead] != 1) axes.push_back(i + lead);
    else
      DEFT_CHECK_SHAPE(shape[i] == g.shape()[i + lead], "sum_to: cannot reduce shape {} to {}",
                       shape_str(g.shape()), shape_str(shape));
  }
  if (axes.empty()) return reshape(g, shape);
  return reshape(reduce(Reduce::Sum, g, axes, false), shape);
}

}  // namespace deft::kernel
