// One table-driven gradient check for every differentiable op. Every op
// registered with define_op() must appear here at least once, or
// Gradcheck.EveryRegisteredOpHasACase fails.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

#include "deft/autograd/gradcheck.h"
#include "deft/autograd/ops.h"
#include "deft/autograd/ops_conv.h"
#include "deft/autograd/ops_nn.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/random.h"

namespace deft {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct Case {
  std::string op;     // registered op name this case covers
  std::string label;  // what variant (broadcast, non-contiguous, ...)
  Fn f;
  std::vector<Shape> shapes;
  GradcheckOptions opt{};
  // Input values: normal by default; `positive` keeps them in [0.5, 2] for log/sqrt/pow.
  bool positive = false;
  bool separated = false;  // values spaced apart, so max/min/abs/relu have no ties or kinks near eps
};

Tensor idx(std::vector<int64_t> v, Shape s = {}) {
  if (s.empty()) s = {static_cast<int64_t>(v.size())};
  return Tensor::from_vector(v, s);
}

// Inputs with distinct values at least 0.1 apart and away from 0 (no kinks within eps).
Tensor separated_values(const Shape& s, Generator& gen) {
  const int64_t n = shape_numel(s);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = 0.15f * static_cast<float>(i - n / 2) + (i - n / 2 >= 0 ? 0.07f : -0.07f);
  for (int64_t i = n - 1; i > 0; --i) std::swap(v[i], v[gen.next_u32() % (i + 1)]);
  return Tensor::from_vector(v, s);
}

std::vector<Case> cases() {
  GradcheckOptions loose;
  loose.atol = 5e-3;
  loose.rtol = 2e-2;
  std::vector<Case> c;
  // elementwise binary, with broadcasting and non-contiguous operands
  c.push_back({"add", "same shape", [](auto& in) { return add(in[0], in[1]); }, {{3, 4}, {3, 4}}});
  c.push_back({"add", "broadcast row", [](auto& in) { return in[0] + in[1]; }, {{3, 4}, {4}}});
  c.push_back({"add", "broadcast both", [](auto& in) { return in[0] + in[1]; }, {{3, 1}, {1, 4}}});
  c.push_back({"add", "transposed", [](auto& in) { return transpose(in[0], 0, 1) + in[1]; }, {{4, 3}, {3, 4}}});
  c.push_back({"sub", "broadcast", [](auto& in) { return in[0] - in[1]; }, {{2, 3, 4}, {3, 1}}});
  c.push_back({"mul", "broadcast", [](auto& in) { return in[0] * in[1]; }, {{2, 3, 4}, {4}}});
  c.push_back({"mul", "expanded view", [](auto& in) { return expand(in[0], {3, 4}) * in[1]; }, {{1, 4}, {3, 4}}});
  c.push_back({"div", "broadcast", [](auto& in) { return in[0] / in[1]; }, {{3, 4}, {3, 1}}, {}, true});
  c.push_back({"pow", "tensor exponent", [](auto& in) { return pow(in[0], in[1]); }, {{3, 4}, {4}}, {}, true});
  c.push_back({"maximum", "broadcast", [](auto& in) { return maximum(in[0], in[1]); }, {{3, 4}, {4}}, {}, false, true});
  c.push_back({"minimum", "non-contiguous", [](auto& in) { return minimum(transpose(in[0], 0, 1), in[1]); },
               {{4, 3}, {3, 4}}, {}, false, true});
  c.push_back({"where", "broadcast",
               [](auto& in) {
                 const Tensor mask = Tensor::from_vector<uint8_t>({1, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1}, {3, 4});
                 return where(mask, in[0], in[1]);
               },
               {{3, 4}, {4}}});
  // unary
  c.push_back({"neg", "", [](auto& in) { return -in[0]; }, {{3, 4}}});
  c.push_back({"affine", "scalar ops", [](auto& in) { return 2.5f - in[0] * 3.0f / 2.0f + 1.0f; }, {{3, 4}}});
  c.push_back({"pow_scalar", "square", [](auto& in) { return square(in[0]); }, {{3, 4}}});
  c.push_back({"pow_scalar", "cube root-ish", [](auto& in) { return pow(in[0], 1.5f); }, {{3, 4}}, {}, true});
  c.push_back({"exp", "", [](auto& in) { return exp(in[0]); }, {{3, 4}}});
  c.push_back({"log", "", [](auto& in) { return log(in[0]); }, {{3, 4}}, {}, true});
  c.push_back({"sqrt", "", [](auto& in) { return sqrt(in[0]); }, {{3, 4}}, {}, true});
  c.push_back({"abs", "", [](auto& in) { return abs(in[0]); }, {{3, 4}}, {}, false, true});
  c.push_back({"relu", "", [](auto& in) { return relu(in[0]); }, {{3, 4}}, {}, false, true});
  c.push_back({"relu", "non-contiguous", [](auto& in) { return relu(slice(in[0], 1, 0, 4, 2)); }, {{3, 4}}, {}, false, true});
  c.push_back({"leaky_relu", "", [](auto& in) { return leaky_relu(in[0], 0.1f); }, {{3, 4}}, {}, false, true});
  c.push_back({"elu", "", [](auto& in) { return elu(in[0], 0.7f); }, {{3, 4}}, {}, false, true});
  c.push_back({"gelu", "", [](auto& in) { return gelu(in[0]); }, {{3, 4}}});
  c.push_back({"silu", "", [](auto& in) { return silu(in[0]); }, {{3, 4}}});
  c.push_back({"sigmoid", "", [](auto& in) { return sigmoid(in[0]); }, {{3, 4}}});
  c.push_back({"tanh", "transposed", [](auto& in) { return tanh(transpose(in[0], 0, 1)); }, {{3, 4}}});
  c.push_back({"clamp", "", [](auto& in) { return clamp(in[0], -0.5f, 0.6f); }, {{3, 4}}, {}, false, true});
  // reductions
  c.push_back({"sum", "all", [](auto& in) { return sum(in[0]); }, {{3, 4}}});
  c.push_back({"sum", "axis keepdim", [](auto& in) { return sum(in[0], {1}, true); }, {{2, 3, 4}}});
  c.push_back({"sum", "two axes, transposed", [](auto& in) { return sum(transpose(in[0], 0, 2), {0, 2}); }, {{2, 3, 4}}});
  c.push_back({"mean", "axis", [](auto& in) { return mean(in[0], {0}); }, {{3, 4}}});
  c.push_back({"mean", "all", [](auto& in) { return mean(in[0]); }, {{2, 3, 4}}});
  c.push_back({"max", "axis", [](auto& in) { return max(in[0], {1}); }, {{3, 4}}, {}, false, true});
  c.push_back({"max", "all", [](auto& in) { return max(in[0]); }, {{3, 4}}, {}, false, true});
  c.push_back({"min", "axis keepdim", [](auto& in) { return min(in[0], {0}, true); }, {{3, 4}}, {}, false, true});
  c.push_back({"logsumexp", "axis", [](auto& in) { return logsumexp(in[0], {1}); }, {{3, 4}}});
  c.push_back({"logsumexp", "two axes", [](auto& in) { return logsumexp(in[0], {0, 2}, true); }, {{2, 3, 4}}});
  // linear algebra and softmax
  c.push_back({"matmul", "2-D", [](auto& in) { return matmul(in[0], in[1]); }, {{3, 5}, {5, 4}}});
  c.push_back({"matmul", "transposed operands",
               [](auto& in) { return matmul(transpose(in[0], 0, 1), transpose(in[1], 0, 1)); }, {{5, 3}, {4, 5}}});
  c.push_back({"matmul", "batched broadcast", [](auto& in) { return matmul(in[0], in[1]); }, {{2, 3, 5}, {5, 4}}});
  c.push_back({"matmul", "batch broadcast both", [](auto& in) { return matmul(in[0], in[1]); },
               {{2, 1, 3, 5}, {3, 5, 2}}});
  c.push_back({"matmul", "vector-matrix", [](auto& in) { return matmul(in[0], in[1]); }, {{5}, {5, 4}}});
  c.push_back({"matmul", "matrix-vector", [](auto& in) { return matmul(in[0], in[1]); }, {{3, 5}, {5}}});
  c.push_back({"matmul", "dot", [](auto& in) { return matmul(in[0], in[1]); }, {{5}, {5}}});
  c.push_back({"softmax", "last axis", [](auto& in) { return softmax(in[0], -1); }, {{3, 4}}});
  c.push_back({"softmax", "axis 0, non-contiguous", [](auto& in) { return softmax(transpose(in[0], 0, 1), 0); }, {{3, 4}}});
  c.push_back({"log_softmax", "last axis", [](auto& in) { return log_softmax(in[0], -1); }, {{3, 4}}});
  c.push_back({"log_softmax", "middle axis", [](auto& in) { return log_softmax(in[0], 1); }, {{2, 3, 4}}});
  // shape ops
  c.push_back({"reshape", "", [](auto& in) { return reshape(in[0], {4, -1}) * 2.0f; }, {{2, 3, 2}}});
  c.push_back({"reshape", "of a transposed view (copies)", [](auto& in) { return reshape(transpose(in[0], 0, 1), {-1}); },
               {{3, 4}}});
  c.push_back({"reshape", "flatten/squeeze/unsqueeze",
               [](auto& in) { return squeeze(unsqueeze(flatten(in[0], 1), 0), 0); }, {{2, 3, 2}}});
  c.push_back({"permute", "", [](auto& in) { return permute(in[0], {2, 0, 1}) * 3.0f; }, {{2, 3, 4}}});
  c.push_back({"slice", "step", [](auto& in) { return slice(in[0], 1, 1, 4, 2); }, {{3, 5}}});
  c.push_back({"slice", "negative", [](auto& in) { return slice(in[0], 0, -2, 3); }, {{3, 5}}});
  c.push_back({"expand", "", [](auto& in) { return expand(in[0], {2, 3, 4}); }, {{3, 1}}});
  c.push_back({"contiguous", "", [](auto& in) { return contiguous(transpose(in[0], 0, 1)); }, {{3, 4}}});
  c.push_back({"cat", "axis 1", [](auto& in) { return cat({in[0], in[1]}, 1); }, {{2, 3}, {2, 2}}});
  c.push_back({"cat", "stack", [](auto& in) { return stack({in[0], transpose(in[1], 0, 1)}, 0); }, {{2, 3}, {3, 2}}});
  c.push_back({"index_select", "embedding rows",
               [](auto& in) { return index_select(in[0], 0, idx({2, 0, 2, 1})); }, {{3, 4}}});
  c.push_back({"index_select", "axis 1", [](auto& in) { return index_select(in[0], 1, idx({3, 3, 0})); }, {{2, 4}}});
  c.push_back({"gather", "labels",
               [](auto& in) { return gather(in[0], 1, idx({1, 0, 3}, {3, 1})); }, {{3, 4}}});
  c.push_back({"gather", "repeated indices",
               [](auto& in) { return gather(in[0], 0, idx({1, 1, 0, 1, 0, 0}, {2, 3})); }, {{2, 3}}});
  // layers (ops_nn.h)
  c.push_back({"dropout", "mask fixed by seed",
               [](auto& in) {
                 Generator g(11);  // a fresh generator per call: every evaluation draws the same mask
                 return dropout(in[0], 0.3f, g);
               },
               {{4, 5}}});
  c.push_back({"layer_norm", "weight and bias", [](auto& in) { return layer_norm(in[0], in[1], in[2]); },
               {{3, 5}, {5}, {5}}});
  c.push_back({"layer_norm", "no affine, 3-D, transposed",
               [](auto& in) { return layer_norm(transpose(in[0], 0, 1), Tensor(), Tensor(), 1e-3f); }, {{3, 2, 4}}});
  c.push_back({"batch_norm", "training [N,C]",
               [](auto& in) {
                 Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
                 return batch_norm(in[0], in[1], in[2], rm, rv, true);
               },
               {{6, 3}, {3}, {3}}});
  c.push_back({"batch_norm", "training NCHW",
               [](auto& in) {
                 Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
                 return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.1f, 1e-3f);
               },
               {{2, 3, 2, 2}, {3}, {3}}});
  c.push_back({"batch_norm", "eval with running stats",
               [](auto& in) {
                 Tensor rm = Tensor::from_vector<float>({0.5f, -0.2f, 0.1f});
                 Tensor rv = Tensor::from_vector<float>({1.5f, 0.7f, 2.0f});
                 return batch_norm(in[0], in[1], in[2], rm, rv, false);
               },
               {{2, 3, 4}, {3}, {3}}});
  c.push_back({"batch_norm", "no affine, no running stats",
               [](auto& in) {
                 Tensor none;
                 return batch_norm(in[0], Tensor(), Tensor(), none, none, true, 0.1f, 1e-3f);
               },
               {{5, 2}}});
  c.push_back({"embedding", "repeated indices",
               [](auto& in) { return embedding(in[0], idx({2, 0, 2, 1, 0, 2}, {2, 3})); }, {{3, 4}}});
  c.push_back({"linear", "bias", [](auto& in) { return linear(in[0], in[1], in[2]); }, {{4, 5}, {5, 3}, {3}}});
  c.push_back({"linear", "no bias, 3-D input", [](auto& in) { return linear(in[0], in[1], Tensor()); },
               {{2, 3, 5}, {5, 4}}});
  c.push_back({"linear", "transposed weight",
               [](auto& in) { return linear(in[0], transpose(in[1], 0, 1), in[2]); }, {{4, 5}, {3, 5}, {3}}});
  // fused losses (ops_nn.h)
  c.push_back({"cross_entropy", "mean", [](auto& in) { return cross_entropy_logits(in[0], idx({1, 0, 3, 3})); },
               {{4, 5}}});
  c.push_back({"cross_entropy", "smoothing, class weights, ignore, sample weights",
               [](auto& in) {
                 CrossEntropyOptions o{
                     .label_smoothing = 0.2f, .class_weights = {0.5f, 2.0f, 1.0f, 1.5f}, .ignore_index = -1};
                 return cross_entropy_logits(in[0], idx({1, -1, 3, 0, 2}), o,
                                             Tensor::from_vector<float>({1.0f, 3.0f, 0.5f, 2.0f, 1.0f}));
               },
               {{5, 4}}});
  c.push_back({"cross_entropy", "none",
               [](auto& in) {
                 return cross_entropy_logits(in[0], idx({2, 0, 1}),
                                             {.label_smoothing = 0.1f, .reduction = Reduction::None});
               },
               {{3, 4}}});
  c.push_back({"soft_cross_entropy", "targets from softmax, smoothing, weights",
               [](auto& in) {
                 CrossEntropyOptions o{.label_smoothing = 0.1f, .class_weights = {1.0f, 0.5f, 2.0f, 1.0f}};
                 return soft_cross_entropy_logits(in[0], softmax(in[1], -1), o,
                                                  Tensor::from_vector<float>({1.0f, 2.0f, 0.5f}));
               },
               {{3, 4}, {3, 4}}});
  c.push_back({"soft_cross_entropy", "sum",
               [](auto& in) { return soft_cross_entropy_logits(in[0], softmax(in[1], -1), {.reduction = Reduction::Sum}); },
               {{2, 3}, {2, 3}}});
  c.push_back({"mse_loss", "mean, [N,1] vs [N]", [](auto& in) { return mse_loss(in[0], in[1]); }, {{4, 1}, {4}}});
  c.push_back({"mse_loss", "none, sample weights",
               [](auto& in) {
                 return mse_loss(in[0], in[1], Reduction::None, Tensor::from_vector<float>({1.0f, 0.5f, 2.0f}));
               },
               {{3, 2}, {3, 2}}});
  c.push_back({"l1_loss", "target 0 (no kink within eps)",
               [](auto& in) { return l1_loss(in[0], Tensor::zeros({3, 4}), Reduction::Sum); }, {{3, 4}}, {}, false,
               true});
  c.push_back({"huber_loss", "both branches",
               [](auto& in) {
                 return huber_loss(in[0], Tensor::zeros({3, 4}), 0.3f, Reduction::Mean,
                                   Tensor::from_vector<float>({1.0f, 2.0f, 0.5f}));
               },
               {{3, 4}}, {}, false, true});
  c.push_back({"binary_cross_entropy", "probabilities and soft targets",
               [](auto& in) { return binary_cross_entropy_loss(sigmoid(in[0]), sigmoid(in[1])); }, {{5}, {5}}});
  c.push_back({"binary_cross_entropy", "int64 targets, none",
               [](auto& in) {
                 return binary_cross_entropy_loss(sigmoid(in[0]), idx({1, 0, 0, 1}, {4, 1}), Reduction::None);
               },
               {{4, 1}}});
  c.push_back({"binary_cross_entropy_with_logits", "pos_weight, sample weights, soft targets",
               [](auto& in) {
                 return binary_cross_entropy_with_logits_loss(in[0], sigmoid(in[1]), Reduction::Mean,
                                                              Tensor::from_vector<float>({1.0f, 2.0f, 0.5f, 1.0f}), 2.5f);
               },
               {{4, 1}, {4}}});
  // convolution and pooling (NCHW), every option
  c.push_back({"conv2d", "bias, 3x3, no padding", [](auto& in) { return conv2d(in[0], in[1], in[2]); },
               {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}}});
  c.push_back({"conv2d", "stride 2, asymmetric padding, no bias",
               [](auto& in) {
                 return conv2d(in[0], in[1], Tensor(), {.stride = {2, 2}, .padding = {0, 1, 1, 0}});
               },
               {{2, 2, 6, 5}, {3, 2, 3, 2}}});
  c.push_back({"conv2d", "dilation 2, stride (1, 2), same-style padding",
               [](auto& in) {
                 return conv2d(in[0], in[1], in[2], {.stride = {1, 2}, .padding = {2, 2, 2, 2}, .dilation = {2, 2}});
               },
               {{1, 2, 6, 6}, {2, 2, 3, 3}, {2}}});
  c.push_back({"conv2d", "groups 2",
               [](auto& in) { return conv2d(in[0], in[1], in[2], {.padding = {1, 1, 1, 1}, .groups = 2}); },
               {{2, 4, 4, 4}, {6, 2, 3, 3}, {6}}});
  c.push_back({"conv2d", "depthwise (groups = channels), 1x1 kernel elsewhere",
               [](auto& in) {
                 const Tensor d = conv2d(in[0], in[1], Tensor(), {.padding = {1, 1, 1, 1}, .groups = 3});
                 return conv2d(d, in[2], Tensor());
               },
               {{2, 3, 4, 4}, {3, 1, 3, 3}, {2, 3, 1, 1}}});
  c.push_back({"conv2d", "non-contiguous input (NHWC view)",
               [](auto& in) { return conv2d(permute(in[0], {0, 3, 1, 2}), in[1], in[2]); },
               {{2, 4, 4, 3}, {2, 3, 2, 2}, {2}}});
  c.push_back({"conv2d_relu", "bias, padding 1",
               [](auto& in) { return conv2d_relu(in[0], in[1], in[2], {.padding = {1, 1, 1, 1}}); },
               {{2, 2, 4, 4}, {3, 2, 3, 3}, {3}}});
  c.push_back({"conv2d_relu", "3 input channels (plain-layout forward), stride 2",
               [](auto& in) { return conv2d_relu(in[0], in[1], Tensor(), {.stride = {2, 2}}); },
               {{2, 3, 5, 5}, {4, 3, 3, 3}}});
  c.push_back({"max_pool2d", "2x2 stride 2", [](auto& in) { return max_pool2d(in[0]); }, {{2, 3, 4, 6}}, {}, false,
               true});
  c.push_back({"max_pool2d", "2x2 stride 2, odd size (last row and column unused)",
               [](auto& in) { return max_pool2d(in[0]); }, {{1, 2, 5, 7}}, {}, false, true});
  c.push_back({"max_pool2d", "3x3 stride 2 padding 1 ceil mode, odd size",
               [](auto& in) {
                 return max_pool2d(in[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}, .ceil_mode = true});
               },
               {{1, 2, 6, 5}}, {}, false, true});
  c.push_back({"max_pool2d", "2x2 stride 1 (overlapping windows)",
               [](auto& in) { return max_pool2d(in[0], {.kernel = {2, 2}, .stride = {1, 1}}); }, {{1, 2, 3, 4}}, {},
               false, true});
  c.push_back({"avg_pool2d", "2x2 stride 2", [](auto& in) { return avg_pool2d(in[0]); }, {{2, 3, 4, 4}}});
  c.push_back({"avg_pool2d", "3x3 stride 2 padding 1, pad excluded, ceil mode",
               [](auto& in) {
                 return avg_pool2d(in[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1},
                                           .ceil_mode = true, .count_include_pad = false});
               },
               {{1, 2, 6, 5}}});
  c.push_back({"avg_pool2d", "3x3 stride 2 padding 1, pad included",
               [](auto& in) {
                 return avg_pool2d(in[0], {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}});
               },
               {{1, 2, 5, 5}}});
  c.push_back({"adaptive_avg_pool2d", "global", [](auto& in) { return adaptive_avg_pool2d(in[0], {1, 1}); },
               {{2, 3, 4, 5}}});
  c.push_back({"adaptive_avg_pool2d", "overlapping bins 5x7 -> 3x2",
               [](auto& in) { return adaptive_avg_pool2d(in[0], {3, 2}); }, {{2, 2, 5, 7}}});
  c.push_back({"dropout2d", "p 0.5, same mask each call",
               [](auto& in) {
                 Generator g(11);
                 return dropout2d(in[0], 0.5f, g);
               },
               {{3, 4, 2, 2}}});
  for (auto& x : c)
    if (x.op == "pow" || x.op == "logsumexp" || x.op == "gelu" || x.op == "div" || x.op == "layer_norm" ||
        x.op == "batch_norm" || x.op == "conv2d" || x.op == "conv2d_relu")
      x.opt = loose;
  return c;
}

TEST(Gradcheck, EveryRegisteredOpHasACase) {
  std::set<std::string> covered;
  for (const Case& c : cases()) covered.insert(c.op);
  std::vector<std::string> missing;
  for (const OpDef* op : registered_ops())
    if (!covered.count(op->name) && std::string(op->name).rfind("test_only_", 0) != 0) missing.push_back(op->name);
  std::string list;
  for (const auto& m : missing) list += m + " ";
  EXPECT_TRUE(missing.empty()) << "differentiable ops without a gradient-check case: " << list;
  // And every case names a real op.
  std::set<std::string> registered;
  for (const OpDef* op : registered_ops()) registered.insert(op->name);
  for (const Case& c : cases()) EXPECT_TRUE(registered.count(c.op)) << "case for unknown op " << c.op;
}

TEST(Gradcheck, AllOps) {
  Generator gen(7);
  for (const Case& c : cases()) {
    std::vector<Tensor> inputs;
    for (const Shape& s : c.shapes) {
      if (c.positive) inputs.push_back(Tensor::uniform(s, 0.5f, 2.0f, gen));
      else if (c.separated) inputs.push_back(separated_values(s, gen));
      else inputs.push_back(Tensor::normal(s, 0.0f, 1.0f, gen));
    }
    const GradcheckResult r = gradcheck(c.f, inputs, c.opt);
    EXPECT_TRUE(r.ok) << c.op << " (" << c.label << "): " << r.message;
  }
}

// The checker itself must be able to fail: a deliberately wrong backward is caught.
static const OpDef& kBrokenForTest = define_op("test_only_broken_square");
Tensor broken_square(const Tensor& x) {
  Tensor y = kernel::pow_scalar(x, 2.0f);
  if (!needs_grad({x})) return y;
  return record(kBrokenForTest, {x}, y, [x = x.detach()](const Tensor& g, NeedsGrad) {
    return Grads{kernel::binary(kernel::Binary::Mul, g, x)};  // should be 2 * x
  });
}

TEST(Gradcheck, DetectsAWrongBackward) {
  Generator gen(3);
  const GradcheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return broken_square(in[0]); }, {Tensor::randn({3, 3}, gen)});
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.message.find("analytic"), std::string::npos);
}

}  // namespace
}  // namespace deft
