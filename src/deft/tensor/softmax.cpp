// Numerically stable softmax and log-softmax along one axis, with their backward.
#include <cmath>

#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/vecmath.h"

namespace deft::kernel {
namespace {

// Runs f(rows..) on contiguous rows of the given tensors with `axis` moved last,
// and moves the axis back in the result.
template <class F>
Tensor along_last(const std::vector<Tensor>& ins, int64_t axis, const char* op, F f) {
  for (const Tensor& t : ins)
    DEFT_CHECK(t.dtype() == DType::Float32, "{}: expects float32, got {}", op, dtype_name(t.dtype()));
  const Tensor& x0 = ins[0];
  const int64_t nd = x0.dim();
  const int64_t d = normalize_axis(axis, nd, op);
  const bool last = nd == 0 || d == nd - 1;
  std::vector<Tensor> cs;
  for (const Tensor& t : ins) {
    DEFT_CHECK_SHAPE(t.shape() == x0.shape(), "{}: shapes {} and {} differ", op, shape_str(x0.shape()),
                     shape_str(t.shape()));
    cs.push_back(contiguous(last ? t : transpose(t, d, nd - 1)));
  }
  const int64_t len = nd == 0 ? 1 : x0.shape()[d];
  Tensor out = Tensor::empty(cs[0].shape(), DType::Float32);
  const int64_t rows = len == 0 ? 0 : out.numel() / len;
  float* o = out.data<float>();
  std::vector<const float*> ps;
  for (const Tensor& t : cs) ps.push_back(t.data<float>());
  parallel_for(0, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(len, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) f(ps, r * len, len, o + r * len);
  });
  return last ? out : contiguous(transpose(out, d, nd - 1));
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t axis) {
  return along_last({x}, axis, "softmax", [](const std::vector<const float*>& p, int64_t off, int64_t n, float* o) {
    const float* r = p[0] + off;
    const float m = vm::stable_shift(r, n);
    float s = 0.0f;
    for (int64_t i = 0; i < n; ++i) {
      o[i] = vm::exp(r[i] - m);
      s += o[i];
    }
    const float inv = 1.0f / s;
    for (int64_t i = 0; i < n; ++i) o[i] *= inv;
  });
}

Tensor log_softmax(const Tensor& x, int64_t axis) {
  return along_last({x}, axis, "log_softmax", [](const std::vector<const float*>& p, int64_t off, int64_t n, float* o) {
    const float* r = p[0] + off;
    const float lse = vm::logsumexp(r, n);
    for (int64_t i = 0; i < n; ++i) o[i] = r[i] - lse;
  });
}

Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t axis) {
  // dx = y * (g - sum(g * y))
  return along_last({g, y}, axis, "softmax_backward",
                    [](const std::vector<const float*>& p, int64_t off, int64_t n, float* o) {
                      const float* gr = p[0] + off;
                      const float* yr = p[1] + off;
                      float dot = 0.0f;
                      for (int64_t i = 0; i < n; ++i) dot += gr[i] * yr[i];
                      for (int64_t i = 0; i < n; ++i) o[i] = yr[i] * (gr[i] - dot);
                    });
}

Tensor log_softmax_backward(const Tensor& g, const Tensor& y, int64_t axis) {
  // dx = g - exp(y) * sum(g)
  return along_last({g, y}, axis, "log_softmax_backward",
                    [](const std::vector<const float*>& p, int64_t off, int64_t n, float* o) {
                      const float* gr = p[0] + off;
                      const float* yr = p[1] + off;
                      float s = 0.0f;
                      for (int64_t i = 0; i < n; ++i) s += gr[i];
                      for (int64_t i = 0; i < n; ++i) o[i] = gr[i] - vm::exp(yr[i]) * s;
                    });
}

}  // namespace deft::kernel
