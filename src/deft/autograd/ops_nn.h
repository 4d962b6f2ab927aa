// Differentiable functional ops for layers and losses: dropout, layer and batch
// normalisation, embedding lookup, dense (linear) layers, and fused loss kernels.
//
// Each op is one fused kernel, forward and backward side by side in ops_nn.cpp,
// so a layer costs one pass over its data instead of a chain of elementwise ops
// with temporaries. The nn layer (deft/nn) builds modules and losses on these.
//
//   Tensor h = relu(linear(x, w1, b1));               // w stored [in, out], Keras-style
//   h = dropout(h, 0.2f, gen);                        // training only: the layer decides
//   Tensor loss = cross_entropy_logits(linear(h, w2, b2), labels);
//   loss.backward();
//
// Loss kernels take per-sample weights (float [N], constants: never differentiated);
// with Reduction::Mean they give sum(w_i * l_i) / sum(w_i), and 0 when that sum is 0
// (a batch with nothing to learn from contributes nothing rather than NaN).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "deft/autograd/graph.h"
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace deft {

// ---- layers ------------------------------------------------------------------------------
// Inverted dropout: zeroes each element with probability p and scales the kept ones by
// 1/(1-p). The mask comes from `gen`'s Philox stream (counters reserved up front, so it
// does not depend on the thread count). p == 0 returns x itself; p outside [0,1) throws.
Tensor dropout(const Tensor& x, float p, Generator& gen);

// Normalises over the last axis: (x - mean) / sqrt(var + eps) * weight + bias, with the
// biased variance. weight and bias are [D] (D = x's last axis) or undefined.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);

// Batch normalisation over every axis but the channel axis 1 of x [N,C] or [N,C,*]
// (PyTorch semantics). training: normalises with the batch mean and biased variance and
// updates running_mean/running_var in place (no grad): r = (1-momentum)*r + momentum*b,
// with the unbiased variance for running_var. Otherwise normalises with the running
// statistics. weight/bias are [C] or undefined; running_mean/running_var are float [C],
// or undefined (then the batch statistics are used in both modes and nothing is updated).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// Rows of weight [V, D] picked by int64 indices of any shape: result indices.shape + [D].
// An index outside [0, V) throws InputError naming it.
Tensor embedding(const Tensor& weight, const Tensor& indices);

// Dense layer y = x . w + b with w stored [in, out] (Keras layout) and x [..., in];
// b is [out] or undefined. The bias add is fused into the output pass.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

// ---- fused loss kernels --------------------------------------------------------------------
enum class Reduction { Mean, Sum, None };

struct CrossEntropyOptions {
  // PyTorch's label smoothing: the target becomes (1-s)*onehot + s/C.
  float label_smoothing = 0.0f;
  // Per-class weights (size C); empty means 1 for every class. With Reduction::Mean the
  // loss is divided by the sum of the weights of the samples' classes, as in PyTorch.
  std::vector<float> class_weights;
  Reduction reduction = Reduction::Mean;
  // Samples whose label equals this add nothing to the loss or to the mean's divisor.
  std::optional<int64_t> ignore_index;
};

// log-softmax + negative log-likelihood in one kernel: logits [N,C], integer labels [N]
// (or [N,1]). Backward is (softmax - onehot) scaled, computed from the saved row
// log-sum-exp. Returns a scalar, or [N] for Reduction::None. A label outside [0, C)
// (other than ignore_index) throws InputError naming the label and C.
Tensor cross_entropy_logits(const Tensor& logits, const Tensor& labels,
                            const CrossEntropyOptions& options = {}, const Tensor& sample_weights = {});

// The same against probability targets [N,C] (each row a distribution): loss_i =
// -sum_c w_c t_ic log_softmax(z)_ic, the mean divided by N (or the sample weights' sum).
// ignore_index is not supported here. The targets get a gradient when they require one.
Tensor soft_cross_entropy_logits(const Tensor& logits, const Tensor& target_probs,
                                 const CrossEntropyOptions& options = {}, const Tensor& sample_weights = {});

// Elementwise losses of pred against a target of the same shape ([N] and [N,1] are
// accepted for each other); Reduction::None keeps pred's shape. Sample weights are [N]
// with N = pred.size(0). Targets may be int64 (converted) and get a gradient when they
// are float and require one.
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean,
                const Tensor& sample_weights = {});
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean,
               const Tensor& sample_weights = {});
// PyTorch HuberLoss: 0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta).
Tensor huber_loss(const Tensor& pred, const Tensor& target, float delta = 1.0f,
                  Reduction reduction = Reduction::Mean, const Tensor& sample_weights = {});
// -(t log p + (1-t) log(1-p)) with each log clamped at -100 like PyTorch; p in [0,1].
Tensor binary_cross_entropy_loss(const Tensor& probs, const Tensor& target,
                                 Reduction reduction = Reduction::Mean, const Tensor& sample_weights = {});
// Stable form on logits: (1-t) z + (1 + (pw-1) t) softplus(-z); with pos_weight 1 this is
// max(z,0) - z t + log(1 + exp(-|z|)), gradient sigmoid(z) - t.
Tensor binary_cross_entropy_with_logits_loss(const Tensor& logits, const Tensor& target,
                                             Reduction reduction = Reduction::Mean,
                                             const Tensor& sample_weights = {}, float pos_weight = 1.0f);

}  // namespace deft
