#include "deft/optim/clip.h"

#include <algorithm>
#include <cmath>

#include "deft/autograd/graph.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

namespace deft::optim {

namespace {

// Fixed blocks, as in the tensor layer's reductions: each block is summed in one
// order and the blocks are added in order, so the result is the same on any
// number of threads.
constexpr int64_t kBlock = int64_t{1} << 16;

double block_sum_squares(const float* __restrict x, int64_t n) {
  // Eight independent accumulators let the compiler vectorise a double sum
  // without reassociating it.
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) {
      const double v = x[i + j];
      acc[j] += v * v;
    }
  }
  double tail = 0;
  for (; i < n; ++i) tail += static_cast<double>(x[i]) * x[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

double sum_squares(const float* x, int64_t n) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  if (blocks <= 1) return block_sum_squares(x, n);
  std::vector<double> partial(static_cast<size_t>(blocks));
  parallel_for(0, blocks, 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      partial[k] = block_sum_squares(x + k * kBlock, std::min(kBlock, n - k * kBlock));
    }
  });
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

// Gradients from backward() are contiguous; a gradient a user set as a strided
// view is processed through a contiguous copy and written back.
template <class F>
void with_contiguous(const Tensor& g, bool write_back, const F& f) {
  if (g.is_contiguous()) {
    f(g.data<float>(), g.numel());
    return;
  }
  Tensor c = g.clone();
  f(c.data<float>(), c.numel());
  if (write_back) kernel::copy(g, c);
}

std::vector<Tensor> defined_grads(const std::vector<Tensor>& params, const char* op) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params) {
    DEFT_CHECK(p.defined(), "{}: a parameter is undefined", op);
    Tensor g = p.grad();
    if (!g.defined()) continue;
    DEFT_CHECK(g.dtype() == DType::Float32, "{}: gradient is {}, expected float32", op,
               dtype_name(g.dtype()));
    grads.push_back(std::move(g));
  }
  return grads;
}

}  // namespace

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  DEFT_CHECK(std::isfinite(max_norm) && max_norm >= 0,
             "clip_grad_norm: max_norm must be a finite number >= 0, got {}", max_norm);
  NoGradGuard no_grad;
  const std::vector<Tensor> grads = defined_grads(params, "clip_grad_norm");
  double squares = 0;
  for (const Tensor& g : grads) {
    with_contiguous(g, false, [&](float* x, int64_t n) { squares += sum_squares(x, n); });
  }
  const double norm = std::sqrt(squares);
  const double coef = max_norm / (norm + 1e-6);
  if (!std::isfinite(norm) || !(coef < 1.0)) return norm;
  const auto scale = static_cast<float>(coef);
  for (const Tensor& g : grads) {
    with_contiguous(g, true, [&](float* x, int64_t n) {
      parallel_for(0, n, kBlock, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x[i] *= scale;
      });
    });
  }
  return norm;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip) {
  DEFT_CHECK(std::isfinite(clip) && clip >= 0, "clip_grad_value: clip must be a finite number >= 0, got {}",
             clip);
  NoGradGuard no_grad;
  const auto hi = static_cast<float>(clip), lo = -hi;
  for (const Tensor& g : defined_grads(params, "clip_grad_value")) {
    with_contiguous(g, true, [&](float* x, int64_t n) {
      parallel_for(0, n, kBlock, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) x[i] = std::min(std::max(x[i], lo), hi);
      });
    });
  }
}

}  // namespace deft::optim
