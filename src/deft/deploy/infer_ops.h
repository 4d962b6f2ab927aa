// The ops of the inference runtime: each reads float32 buffers of a batch and writes
// one output buffer, with no graph, no autograd and no allocation per call.
//
// A plan (infer_plan.h) is a list of these in execution order. Every op sees its
// per-example shapes at construction (they never change) and the batch size `n` at
// run time; buffers hold n examples back to back, row-major (images NCHW).
//
//   LinearOp   y = act(x·W + b)              W [in, out] (BatchNorm folded in)
//   ConvOp     y = act(conv(x, W) + b)       oneDNN, W OIHW (BatchNorm folded in)
//   PoolOp     max / average / adaptive-average / global-average pooling
//   AffineOp   y = act(x * scale[c] + shift[c])   (an unfolded BatchNorm)
//   LayerNormOp, ActivationOp, SoftmaxOp, AddOp, ConcatOp, EmbeddingOp
//
// Swapping an op: LinearOp and ConvOp expose their (folded) float weights, so another
// implementation — an int8 one from deploy/quant*, say — can be built from them and
// put in the plan in their place (Plan::replace); it only has to honour run().
#pragma once
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::deploy::infer {

// Element-wise activations, fused into the op before them where they follow one.
struct Activation {
  enum class Kind { None, Relu, LeakyRelu, Elu, Gelu, Silu, Sigmoid, Tanh };
  Kind kind = Kind::None;
  float param = 0;  // leaky_relu slope, elu alpha

  // "" / "linear" -> None; "relu", "leaky_relu", "elu", "gelu", "silu"/"swish", "sigmoid",
  // "tanh". Softmax is not element-wise: false for it and for unknown names.
  static bool parse(const std::string& name, double param, Activation* out);
  bool none() const { return kind == Kind::None; }
  std::string name() const;
};

// Applies `act` to x[0..count) in place, vectorised, multi-threaded above a size.
void apply_activation(const Activation& act, float* x, int64_t count);

class Op {
 public:
  virtual ~Op() = default;
  // "linear", "conv2d", ... and the details, for Predictor::describe and errors.
  virtual std::string kind() const = 0;
  virtual std::string describe() const { return kind(); }
  // inputs[i] holds n examples of input_shapes[i]; output gets n examples of output_shape.
  virtual void run(std::span<const float* const> inputs, float* output, int64_t n) = 0;
  // Element-wise ops may write over their (only) input when nothing reads it later.
  virtual bool in_place() const { return false; }
  // Can `act` run inside this op (no pass of its own)? Only asked while it has none.
  virtual bool fuse_activation(const Activation& /*act*/) { return false; }
  // Can y*scale[c]+shift[c] over output channels (axis 0 of the per-example output) be
  // folded into this op's weights? Only asked while it has no activation.
  virtual bool fold_channel_affine(const std::vector<float>& /*scale*/, const std::vector<float>& /*shift*/) {
    return false;
  }

  std::vector<Shape> input_shapes;  // per example
  Shape output_shape;               // per example
};

// Dense / Linear over the last axis: rows = n * (numel(input) / in).
class LinearOp : public Op {
 public:
  LinearOp(const Shape& input, Tensor kernel /* [in,out] */, Tensor bias /* [out] or undefined */);
  ~LinearOp() override;
  std::string kind() const override { return "linear"; }
  std::string describe() const override;
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool fuse_activation(const Activation& act) override;
  bool fold_channel_affine(const std::vector<float>& scale, const std::vector<float>& shift) override;

  const Tensor& kernel() const { return kernel_; }  // float32 [in, out], contiguous
  const Tensor& bias() const { return bias_; }      // float32 [out] (zeros when the layer had none)
  const Activation& activation() const { return act_; }

 private:
  // A oneDNN matmul for one batch size, with the weights reordered once into the
  // layout it wants (dnnl_sgemm packs them on every call: 10 us of a 14 us MLP
  // prediction at batch 1), and bias and ReLU as post-ops.
  struct Primitive;
  Primitive& primitive(int64_t rows);
  int64_t in_, out_, rows_per_example_;
  Tensor kernel_, bias_;
  Activation act_;
  std::map<int64_t, std::unique_ptr<Primitive>> cache_;
};

struct ConvGeometry {
  int64_t C = 0, H = 0, W = 0, O = 0, kh = 1, kw = 1, Ho = 0, Wo = 0;
  std::array<int64_t, 2> stride{1, 1}, dilation{1, 1};
  std::array<int64_t, 4> padding{0, 0, 0, 0};  // top, bottom, left, right (resolved)
  int64_t groups = 1;
};

// 2-D convolution on oneDNN. Per batch size it creates the primitive once, with the
// weights reordered once into the layout the primitive wants, and its own buffers for
// the blocked layouts, so a call is two reorders and the convolution.
class ConvOp : public Op {
 public:
  ConvOp(const ConvGeometry& g, Tensor kernel /* [O, C/groups, kh, kw] */,
         Tensor bias /* [O] or undefined */);
  ~ConvOp() override;
  std::string kind() const override { return "conv2d"; }
  std::string describe() const override;
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool fuse_activation(const Activation& act) override;
  bool fold_channel_affine(const std::vector<float>& scale, const std::vector<float>& shift) override;

  const ConvGeometry& geometry() const { return g_; }
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }
  const Activation& activation() const { return act_; }

 private:
  struct Primitive;  // oneDNN objects for one batch size
  Primitive& primitive(int64_t n);
  ConvGeometry g_;
  Tensor kernel_, bias_;
  Activation act_;
  std::map<int64_t, std::unique_ptr<Primitive>> cache_;
};

struct PoolGeometry {
  enum class Kind { Max, Avg, AdaptiveAvg, GlobalAvg };
  Kind kind = Kind::Max;
  int64_t C = 0, H = 0, W = 0, Ho = 0, Wo = 0;
  std::array<int64_t, 2> kernel{2, 2}, stride{2, 2};
  std::array<int64_t, 4> padding{0, 0, 0, 0};
  bool count_include_pad = true;
};

class PoolOp : public Op {
 public:
  explicit PoolOp(const PoolGeometry& g);
  std::string kind() const override;
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;

 private:
  PoolGeometry g_;
};

// y = act(x * scale[c] + shift[c]); c is axis 0 of the per-example shape (BatchNorm's channel).
class AffineOp : public Op {
 public:
  AffineOp(const Shape& shape, std::vector<float> scale, std::vector<float> shift);
  std::string kind() const override { return "affine"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool in_place() const override { return true; }
  bool fuse_activation(const Activation& act) override;

 private:
  std::vector<float> scale_, shift_;
  int64_t channels_, inner_;
  Activation act_;
};

class LayerNormOp : public Op {
 public:
  LayerNormOp(const Shape& shape, std::vector<float> gamma, std::vector<float> beta, float eps);
  std::string kind() const override { return "layer_norm"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool in_place() const override { return true; }
  bool fuse_activation(const Activation& act) override;

 private:
  std::vector<float> gamma_, beta_;
  float eps_;
  Activation act_;
};

class ActivationOp : public Op {
 public:
  ActivationOp(const Shape& shape, Activation act);
  std::string kind() const override { return act_.name(); }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool in_place() const override { return true; }

 private:
  Activation act_;
};

// Softmax along one axis of the per-example shape.
class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const Shape& shape, int64_t axis);
  std::string kind() const override { return "softmax"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool in_place() const override { return true; }

 private:
  int64_t outer_, len_, inner_;  // per example
};

// The sum of its inputs (same shapes), then an activation: the join of a residual block.
class AddOp : public Op {
 public:
  AddOp(const std::vector<Shape>& inputs, Activation act);
  std::string kind() const override { return "add"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  bool fuse_activation(const Activation& act) override;

 private:
  Activation act_;
};

// Inputs joined along axis 0 of the per-example shape (the channels).
class ConcatOp : public Op {
 public:
  explicit ConcatOp(const std::vector<Shape>& inputs);
  std::string kind() const override { return "concat"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
};

// Token ids (float values holding integers) -> rows of the table.
class EmbeddingOp : public Op {
 public:
  EmbeddingOp(const Shape& input, Tensor table /* [vocabulary, dim] */);
  std::string kind() const override { return "embedding"; }
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;

 private:
  Tensor table_;
};

}  // namespace deft::deploy::infer
