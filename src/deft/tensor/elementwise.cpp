// Elementwise kernels: unary, binary with broadcasting, where, fused backward helpers.
#include <cmath>

#include "deft/tensor/kernels.h"
#include "deft/tensor/loops.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/vecmath.h"

namespace deft::kernel {
namespace {

template <class T>
const T* cptr(const Tensor& t) {
  return static_cast<const T*>(t.raw_data());
}

// out[i] = f(a[i], b[i]) over the broadcast shape of a and b.
template <class T, class R, class F>
Tensor binary_loop(const Tensor& a, const Tensor& b, DType out_dtype, const char* op, F f) {
  const Shape os = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(os, out_dtype);
  if (out.numel() == 0) return out;
  R* o = static_cast<R*>(out.raw_data());
  const T* pa = cptr<T>(a);
  const T* pb = cptr<T>(b);
  if (a.is_contiguous() && b.is_contiguous() && a.shape() == os && b.shape() == os) {
    parallel_for(0, out.numel(), detail::kParallelGrain, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) o[i] = f(pa[i], pb[i]);
    });
    return out;
  }
  const detail::LoopPlan<3> plan(os, {out.strides(), detail::broadcast_strides(a, os),
                                      detail::broadcast_strides(b, os)});
  const int64_t sa = plan.inner_stride(1), sb = plan.inner_stride(2);
  parallel_for(0, plan.numel, detail::kParallelGrain, [&](int64_t lo, int64_t hi) {
    plan.run(lo, hi, [&](const std::array<int64_t, 3>& off, int64_t n) {
      R* y = o + off[0];
      const T* x0 = pa + off[1];
      const T* x1 = pb + off[2];
      if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < n; ++i) y[i] = f(x0[i], x1[i]);
      } else if (sa == 1 && sb == 0) {
        const T v = *x1;
        for (int64_t i = 0; i < n; ++i) y[i] = f(x0[i], v);
      } else if (sa == 0 && sb == 1) {
        const T v = *x0;
        for (int64_t i = 0; i < n; ++i) y[i] = f(v, x1[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) y[i] = f(x0[i * sa], x1[i * sb]);
      }
    });
  });
  return out;
}

// out[i] = f(x[i]) for float32 x.
template <class F>
Tensor unary_loop(const Tensor& x, const char* op, F f) {
  DEFT_CHECK(x.dtype() == DType::Float32, "{}: expects float32, got {}", op, dtype_name(x.dtype()));
  Tensor out = Tensor::empty(x.shape(), DType::Float32);
  if (out.numel() == 0) return out;
  float* o = out.data<float>();
  const float* p = x.data<float>();
  if (x.is_contiguous()) {
    parallel_for(0, out.numel(), detail::kParallelGrain / 4, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) o[i] = f(p[i]);
    });
    return out;
  }
  const detail::LoopPlan<2> plan(x.shape(), {out.strides(), x.strides()});
  const int64_t sx = plan.inner_stride(1);
  parallel_for(0, plan.numel, detail::kParallelGrain / 4, [&](int64_t lo, int64_t hi) {
    plan.run(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
      for (int64_t i = 0; i < n; ++i) o[off[0] + i] = f(p[off[1] + i * sx]);
    });
  });
  return out;
}

template <class G>
Tensor backward_loop(const Tensor& g, const Tensor& x, const char* op, G f) {
  DEFT_CHECK(g.dtype() == DType::Float32 && x.dtype() == DType::Float32, "{}: expects float32", op);
  return binary_loop<float, float>(g, x, DType::Float32, op, f);
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

}  // namespace

const char* unary_name(Unary op) {
  static const char* names[] = {"neg",        "abs",  "exp",     "log",  "sqrt", "rsqrt", "square",
                                "reciprocal", "relu", "sigmoid", "tanh", "gelu", "silu",  "sign"};
  return names[static_cast<int>(op)];
}

const char* binary_name(Binary op) {
  static const char* names[] = {"add", "sub", "mul", "div", "maximum", "minimum", "pow",
                                "eq",  "ne",  "lt",  "le",  "gt",      "ge"};
  return names[static_cast<int>(op)];
}

Tensor unary(Unary op, const Tensor& x) {
  const char* name = unary_name(op);
  if (x.dtype() == DType::Int64 && (op == Unary::Neg || op == Unary::Abs)) {
    Tensor zero = Tensor::zeros({}, DType::Int64);
    return op == Unary::Neg
               ? binary_loop<int64_t, int64_t>(zero, x, DType::Int64, name, [](int64_t, int64_t v) { return -v; })
               : binary_loop<int64_t, int64_t>(zero, x, DType::Int64, name,
                                               [](int64_t, int64_t v) { return v < 0 ? -v : v; });
  }
  switch (op) {
    case Unary::Neg: return unary_loop(x, name, [](float v) { return -v; });
    case Unary::Abs: return unary_loop(x, name, [](float v) { return std::fabs(v); });
    case Unary::Exp: return unary_loop(x, name, [](float v) { return vm::exp(v); });
    case Unary::Log: return unary_loop(x, name, [](float v) { return std::log(v); });
    case Unary::Sqrt: return unary_loop(x, name, [](float v) { return std::sqrt(v); });
    case Unary::Rsqrt: return unary_loop(x, name, [](float v) { return 1.0f / std::sqrt(v); });
    case Unary::Square: return unary_loop(x, name, [](float v) { return v * v; });
    case Unary::Reciprocal: return unary_loop(x, name, [](float v) { return 1.0f / v; });
    case Unary::Relu: return unary_loop(x, name, [](float v) { return v > 0.0f ? v : 0.0f; });
    case Unary::Sigmoid: return unary_loop(x, name, [](float v) { return vm::sigmoid(v); });
    case Unary::Tanh: return unary_loop(x, name, [](float v) { return vm::tanh(v); });
    case Unary::Gelu:
      return unary_loop(x, name, [](float v) { return 0.5f * v * (1.0f + std::erf(v * kInvSqrt2)); });
    case Unary::Silu: return unary_loop(x, name, [](float v) { return v * vm::sigmoid(v); });
    case Unary::Sign:
      return unary_loop(x, name, [](float v) { return static_cast<float>((v > 0.0f) - (v < 0.0f)); });
  }
  fail<Error>("unary: unknown op");
}

namespace {
template <class T>
Tensor binary_typed(Binary op, const Tensor& a, const Tensor& b) {
  const char* n = binary_name(op);
  const DType dt = a.dtype();
  constexpr DType u8 = DType::UInt8;
  switch (op) {
    case Binary::Add: return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return static_cast<T>(x + y); });
    case Binary::Sub: return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return static_cast<T>(x - y); });
    case Binary::Mul: return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return static_cast<T>(x * y); });
    case Binary::Maximum: return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return x > y || x != x ? x : y; });
    case Binary::Minimum: return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return x < y || x != x ? x : y; });
    case Binary::Eq: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x == y; });
    case Binary::Ne: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x != y; });
    case Binary::Lt: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x < y; });
    case Binary::Le: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x <= y; });
    case Binary::Gt: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x > y; });
    case Binary::Ge: return binary_loop<T, uint8_t>(a, b, u8, n, [](T x, T y) -> uint8_t { return x >= y; });
    case Binary::Div:
    case Binary::Pow:
      if constexpr (std::is_same_v<T, float>) {
        if (op == Binary::Div) return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return x / y; });
        return binary_loop<T, T>(a, b, dt, n, [](T x, T y) { return std::pow(x, y); });
      } else {
        fail("{}: needs float32 operands, got {}; convert with .to(DType::Float32)", n, dtype_name(dt));
      }
  }
  fail<Error>("binary: unknown op");
}
}  // namespace

Tensor binary(Binary op, const Tensor& a, const Tensor& b) {
  DEFT_CHECK(a.dtype() == b.dtype(), "{}: dtypes {} and {} differ; convert one explicitly with .to()",
             binary_name(op), dtype_name(a.dtype()), dtype_name(b.dtype()));
  switch (a.dtype()) {
    case DType::Float32: return binary_typed<float>(op, a, b);
    case DType::Int64: return binary_typed<int64_t>(op, a, b);
    case DType::UInt8: return binary_typed<uint8_t>(op, a, b);
  }
  fail<Error>("binary: unknown dtype");
}

Tensor affine(const Tensor& x, float scale, float shift) {
  return unary_loop(x, "affine", [=](float v) { return v * scale + shift; });
}
Tensor pow_scalar(const Tensor& x, float e) {
  if (e == 2.0f) return unary_loop(x, "pow", [](float v) { return v * v; });
  return unary_loop(x, "pow", [=](float v) { return std::pow(v, e); });
}
Tensor leaky_relu(const Tensor& x, float slope) {
  return unary_loop(x, "leaky_relu", [=](float v) { return v > 0.0f ? v : v * slope; });
}
Tensor elu(const Tensor& x, float alpha) {
  return unary_loop(x, "elu", [=](float v) { return v > 0.0f ? v : alpha * (vm::exp(v) - 1.0f); });
}
Tensor clamp(const Tensor& x, float lo, float hi) {
  return unary_loop(x, "clamp", [=](float v) { return v < lo ? lo : (v > hi ? hi : v); });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  DEFT_CHECK(cond.dtype() == DType::UInt8, "where: condition must be uint8 (a comparison result), got {}",
             dtype_name(cond.dtype()));
  DEFT_CHECK(a.dtype() == b.dtype(), "where: dtypes {} and {} differ", dtype_name(a.dtype()),
             dtype_name(b.dtype()));
  const Shape os = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(os, a.dtype());
  if (out.numel() == 0) return out;
  const detail::LoopPlan<4> plan(os, {out.strides(), detail::broadcast_strides(cond, os),
                                      detail::broadcast_strides(a, os), detail::broadcast_strides(b, os)});
  auto run = [&](auto tag) {
    using T = decltype(tag);
    T* o = static_cast<T*>(out.raw_data());
    const uint8_t* c = cptr<uint8_t>(cond);
    const T* pa = cptr<T>(a);
    const T* pb = cptr<T>(b);
    const int64_t sc = plan.inner_stride(1), sa = plan.inner_stride(2), sb = plan.inner_stride(3);
    parallel_for(0, plan.numel, detail::kParallelGrain, [&](int64_t lo, int64_t hi) {
      plan.run(lo, hi, [&](const std::array<int64_t, 4>& off, int64_t n) {
        for (int64_t i = 0; i < n; ++i)
          o[off[0] + i] = c[off[1] + i * sc] ? pa[off[2] + i * sa] : pb[off[3] + i * sb];
      });
    });
  };
  switch (a.dtype()) {
    case DType::Float32: run(float{}); break;
    case DType::Int64: run(int64_t{}); break;
    case DType::UInt8: run(uint8_t{}); break;
  }
  return out;
}

void add_inplace(const Tensor& dst, const Tensor& src, float alpha) {
  DEFT_CHECK(dst.dtype() == DType::Float32 && src.dtype() == DType::Float32, "add_: expects float32");
  const Shape b = broadcast_shapes(dst.shape(), src.shape(), "add_");
  DEFT_CHECK_SHAPE(b == dst.shape(), "add_: shape {} does not broadcast to {}", shape_str(src.shape()),
                   shape_str(dst.shape()));
  if (dst.numel() == 0) return;
  const detail::LoopPlan<2> plan(dst.shape(), {dst.strides(), detail::broadcast_strides(src, dst.shape())});
  float* d = dst.data<float>();
  const float* s = src.data<float>();
  const int64_t sd = plan.inner_stride(0), ss = plan.inner_stride(1);
  parallel_for(0, plan.numel, detail::kParallelGrain, [&](int64_t lo, int64_t hi) {
    plan.run(lo, hi, [&](const std::array<int64_t, 2>& off, int64_t n) {
      float* dp = d + off[0];
      const float* sp = s + off[1];
      if (sd == 1 && ss == 1) {
        if (alpha == 1.0f) {
          for (int64_t i = 0; i < n; ++i) dp[i] += sp[i];
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i] += alpha * sp[i];
        }
      } else {
        for (int64_t i = 0; i < n; ++i) dp[i * sd] += alpha * sp[i * ss];
      }
    });
  });
}

Tensor relu_backward(const Tensor& g, const Tensor& x) {
  return backward_loop(g, x, "relu_backward", [](float gv, float xv) { return xv > 0.0f ? gv : 0.0f; });
}
Tensor leaky_relu_backward(const Tensor& g, const Tensor& x, float slope) {
  return backward_loop(g, x, "leaky_relu_backward",
                       [=](float gv, float xv) { return xv > 0.0f ? gv : gv * slope; });
}
Tensor elu_backward(const Tensor& g, const Tensor& x, float alpha) {
  return backward_loop(g, x, "elu_backward",
                       [=](float gv, float xv) { return xv > 0.0f ? gv : gv * alpha * vm::exp(xv); });
}
Tensor sigmoid_backward(const Tensor& g, const Tensor& y) {
  return backward_loop(g, y, "sigmoid_backward", [](float gv, float yv) { return gv * yv * (1.0f - yv); });
}
Tensor tanh_backward(const Tensor& g, const Tensor& y) {
  return backward_loop(g, y, "tanh_backward", [](float gv, float yv) { return gv * (1.0f - yv * yv); });
}
Tensor gelu_backward(const Tensor& g, const Tensor& x) {
  return backward_loop(g, x, "gelu_backward", [](float gv, float xv) {
    const float cdf = 0.5f * (1.0f + std::erf(xv * kInvSqrt2));
    const float pdf = kInvSqrt2Pi * vm::exp(-0.5f * xv * xv);
    return gv * (cdf + xv * pdf);
  });
}
Tensor silu_backward(const Tensor& g, const Tensor& x) {
  return backward_loop(g, x, "silu_backward", [](float gv, float xv) {
    const float s = vm::sigmoid(xv);
    return gv * s * (1.0f + xv * (1.0f - s));
  });
}
Tensor clamp_backward(const Tensor& g, const Tensor& x, float lo, float hi) {
  return backward_loop(g, x, "clamp_backward",
                       [=](float gv, float xv) { return xv >= lo && xv <= hi ? gv : 0.0f; });
}

}  // namespace deft::kernel
