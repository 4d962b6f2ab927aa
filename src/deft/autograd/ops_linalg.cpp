// matmul, softmax, log_softmax: forward and backward side by side.
#include "deft/autograd/ops.h"
#include "deft/tensor/kernels.h"

namespace deft {

namespace k = kernel;

static const OpDef& kMatmul = define_op("matmul");
Tensor matmul(const Tensor& a, const Tensor& b) {
  Tensor out = k::matmul(a, b);
  if (!needs_grad({a, b})) return out;
  return record(kMatmul, {a, b}, out, [a = a.detach(), b = b.detach()](const Tensor& g, NeedsGrad need) {
    // Work on the >= 2-D forms: a [...,M,K], b [...,K,N], g [...,M,N].
    const Tensor a2 = a.dim() == 1 ? k::unsqueeze(a, 0) : a;
    const Tensor b2 = b.dim() == 1 ? k::unsqueeze(b, 1) : b;
    Shape gs(g.shape());
    if (a.dim() == 1) gs.insert(gs.end() - (b.dim() == 1 ? 0 : 1), 1);
    if (b.dim() == 1) gs.push_back(1);
    const Tensor g2 = k::reshape(g, gs);
    Tensor ga, gb;
    if (need[0]) ga = k::reshape(k::sum_to(k::matmul(g2, k::transpose(b2, -1, -2)), a2.shape()), a.shape());
    if (need[1]) {
      if (b2.dim() == 2 && a2.dim() > 2) {
        // Weight shared over a batch: one GEMM over all rows, no per-batch partial sums.
        const int64_t K = a2.size(-1), N = g2.size(-1);
        gb = k::matmul(k::transpose(k::reshape(a2, {-1, K}), 0, 1), k::reshape(g2, {-1, N}));
      } else {
        gb = k::sum_to(k::matmul(k::transpose(a2, -1, -2), g2), b2.shape());
      }
      gb = k::reshape(gb, b.shape());
    }
    return Grads{ga, gb};
  });
}

static const OpDef& kSoftmax = define_op("softmax");
Tensor softmax(const Tensor& x, int64_t axis) {
  Tensor out = k::softmax(x, axis);
  if (!needs_grad({x})) return out;
  return record(kSoftmax, {x}, out, [y = out.detach(), axis](const Tensor& g, NeedsGrad) {
    return Grads{k::softmax_backward(g, y, axis)};
  });
}

static const OpDef& kLogSoftmax = define_op("log_softmax");
Tensor log_softmax(const Tensor& x, int64_t axis) {
  Tensor out = k::log_softmax(x, axis);
  if (!needs_grad({x})) return out;
  return record(kLogSoftmax, {x}, out, [y = out.detach(), axis](const Tensor& g, NeedsGrad) {
    return Grads{k::log_softmax_backward(g, y, axis)};
  });
}

}  // namespace deft
