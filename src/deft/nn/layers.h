// The standard layers, named as in Keras (PyTorch's names as aliases):
//
//   Dense(units, activation = "", {.use_bias, .kernel_init, .bias_init})   (alias Linear)
//   Dropout(rate)   Flatten()   Reshape({7, 7, 16})
//   ReLU() LeakyReLU(0.01) ELU(1) GELU() SiLU() Sigmoid() Tanh() Softmax(-1), or Activation("relu")
//   BatchNorm1d({.momentum, .eps})   LayerNorm({.eps})   Embedding(vocabulary, dim)
//
// Weights are created in build() from the incoming shape and initialised with
// Keras's defaults: Glorot-uniform kernels, zero biases, ones/zeros for the
// normalisation scales/offsets, uniform(-0.05, 0.05) embeddings. Dense stores its
// kernel Keras-style as [in, out] (y = x·kernel + bias).
//
// Dropout draws its masks from its own Philox generator, seeded in build() from
// the model's generator; the generator's position is a buffer ("rng"), so a
// checkpoint resumes with exactly the masks an uninterrupted run would draw.
#pragma once
#include <string>
#include "deft/nn/init.h"
#include "deft/nn/module.h"

namespace deft::nn {

// Applies a named activation: "", "linear", "relu", "leaky_relu", "elu", "gelu",
// "silu"/"swish", "sigmoid", "tanh", "softmax". InputError names an unknown one.
Tensor activate(const std::string& name, const Tensor& x);
bool is_activation_name(const std::string& name);

struct DenseOptions {
  bool use_bias = true;
  std::string kernel_init = "glorot_uniform";
  std::string bias_init = "zeros";
};

class Dense : public Module {
 public:
  explicit Dense(int64_t units, std::string activation = "", DenseOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Dense"; }
  nlohmann::json config() const override;
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }
  int64_t units() const { return units_; }
  const std::string& activation() const { return activation_; }

 protected:
  std::vector<Slot> slots() override { return {{"kernel", &kernel_, false}, {"bias", &bias_, false}}; }
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  int64_t units_;
  std::string activation_;
  DenseOptions opt_;
  Tensor kernel_, bias_;
};

// PyTorch spelling: Linear(in, out) checks the input width at build.
class Linear : public Dense {
 public:
  Linear(int64_t in_features, int64_t out_features, DenseOptions options = {});
  std::string type() const override { return "Linear"; }
  nlohmann::json config() const override;

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  int64_t in_features_;
};

class Dropout : public Module {
 public:
  explicit Dropout(double rate);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Dropout"; }
  nlohmann::json config() const override { return {{"rate", rate_}}; }
  double rate() const { return rate_; }

 protected:
  std::vector<Slot> slots() override { return {{"rng", &rng_, true}}; }
  Shape build_impl(const Shape& input, Generator& gen) override;
  Dropout(double rate, const char* layer);  // `layer` names the type in errors
  // The masking op (Dropout2d drops whole channels instead of elements).
  virtual Tensor drop(const Tensor& x, float p, Generator& gen) const;

 private:
  double rate_;
  Tensor rng_;  // int64 [2]: the mask generator's seed and offset
};

// [N, d1, d2, ...] -> [N, d1*d2*...].
class Flatten : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Flatten"; }

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;
};

// Per-example target shape; one entry may be -1 (inferred).
class Reshape : public Module {
 public:
  explicit Reshape(Shape shape);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Reshape"; }
  nlohmann::json config() const override { return {{"shape", shape_}}; }

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  Shape shape_, resolved_;
};

class Activation : public Module {
 public:
  explicit Activation(std::string name, double param = 0);
  Tensor forward(const Tensor& x) override;
  std::string type() const override;
  nlohmann::json config() const override;
  const std::string& name() const { return name_; }

 protected:
  Shape build_impl(const Shape& input, Generator&) override { return input; }

 private:
  std::string name_;
  double param_;  // leaky_relu slope, elu alpha, softmax axis
};
struct ReLU : Activation { ReLU() : Activation("relu") {} };
struct LeakyReLU : Activation { explicit LeakyReLU(double slope = 0.01) : Activation("leaky_relu", slope) {} };
struct ELU : Activation { explicit ELU(double alpha = 1.0) : Activation("elu", alpha) {} };
struct GELU : Activation { GELU() : Activation("gelu") {} };
struct SiLU : Activation { SiLU() : Activation("silu") {} };
struct Sigmoid : Activation { Sigmoid() : Activation("sigmoid") {} };
struct Tanh : Activation { Tanh() : Activation("tanh") {} };
struct Softmax : Activation { explicit Softmax(int64_t axis = -1) : Activation("softmax", static_cast<double>(axis)) {} };

struct NormOptions {
  double momentum = 0.1;  // batch norm: running = (1 - momentum) * running + momentum * batch
  double eps = 1e-5;
  bool affine = true;     // learnable scale (gamma) and offset (beta)
};

// Batch normalisation of axis 1 over every other axis (batch_norm in autograd/ops_nn.h),
// with running statistics as buffers that eval() normalises with. BatchNorm1d and
// BatchNorm2d (nn/conv.h) differ only in the per-example shapes they accept.
class BatchNorm : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  nlohmann::json config() const override;

 protected:
  // `ranks`: the per-example ranks accepted; `expects` names them for errors ("[C] or [C,L]").
  BatchNorm(NormOptions options, std::vector<size_t> ranks, const char* expects)
      : opt_(options), ranks_(std::move(ranks)), expects_(expects) {}
  std::vector<Slot> slots() override;
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  NormOptions opt_;
  std::vector<size_t> ranks_;
  const char* expects_;
  Tensor gamma_, beta_, running_mean_, running_var_;
};

// Normalises each feature (axis 1) over the batch: [N,C] or [N,C,L].
class BatchNorm1d : public BatchNorm {
 public:
  explicit BatchNorm1d(NormOptions options = {}) : BatchNorm(options, {1, 2}, "[C] or [C,L]") {}
  std::string type() const override { return "BatchNorm1d"; }
};

// Normalises each example over its last axis.
class LayerNorm : public Module {
 public:
  explicit LayerNorm(NormOptions options = {}) : opt_(options) {}
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "LayerNorm"; }
  nlohmann::json config() const override;

 protected:
  std::vector<Slot> slots() override;
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  NormOptions opt_;
  Tensor gamma_, beta_;
};

// int64 token ids [N, ...] -> [N, ..., dim].
class Embedding : public Module {
 public:
  Embedding(int64_t vocabulary, int64_t dim, std::string init = "uniform_0.05");
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Embedding"; }
  nlohmann::json config() const override;

 protected:
  std::vector<Slot> slots() override { return {{"embeddings", &table_, false}}; }
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  int64_t vocabulary_, dim_;
  std::string init_;
  Tensor table_;
};

}  // namespace deft::nn
