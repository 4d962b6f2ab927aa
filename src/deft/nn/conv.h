// Layers for convolutional networks on NCHW images (per-example shape [C,H,W]), and
// the containers that make residual and multi-branch networks out of Sequentials:
//
//   Conv2d(filters, kernel, {.stride, .padding, .dilation, .groups, .use_bias, .activation,
//                            .kernel_init, .bias_init})
//   MaxPool2d(kernel, {.stride, .padding, .ceil_mode})   AvgPool2d(kernel, {... .count_include_pad})
//   AdaptiveAvgPool2d({oh, ow})   GlobalAvgPool2d()   BatchNorm2d({.momentum, .eps})   Dropout2d(rate)
//   Add{branch, branch, ...}   Concat{branch, branch, ...}   Identity()
//
// A basic residual block (He et al. 2016):
//
//   Add({Sequential{Conv2d(16, 3, {.padding = 1, .use_bias = false}), BatchNorm2d(), ReLU(),
//                   Conv2d(16, 3, {.padding = 1, .use_bias = false}), BatchNorm2d()},
//        Identity()},
//       "relu")
//
// Sizes (kernel, stride, dilation) are one int for both axes or {h, w}. Padding is
// "valid" (none), "same" (TensorFlow's: output = ceil(input / stride) for any stride,
// the odd pixel after; worked out from the input's size), or explicit zeros: one
// value, {h, w}, or {top, bottom, left, right}. Conv2d learns its input channels in
// build() like Dense and stores its kernel as PyTorch does, OIHW [filters, C/groups,
// kh, kw] ("kernel"), with a bias [filters] ("bias"). Its default initialiser is
// Keras's glorot_uniform with fan_in = C/groups*kh*kw and fan_out = filters*kh*kw (the
// fans Keras and PyTorch use).
//
// Add and Concat run every branch (each a Module, usually a Sequential; Identity()
// for a skip path) on the same input. Add sums the outputs, whose shapes must match,
// then applies its activation; Concat joins them along the channel axis (axis 1 of
// the batch), the other axes must match. Branches are children "0", "1", ..., so a
// parameter is named e.g. "3.0.1.kernel" (layer 3 of a Sequential, branch 0, its
// layer 1).
#pragma once
#include <array>
#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "deft/nn/layers.h"
#include "deft/nn/module.h"

namespace deft::nn {

// A size along (height, width): Size2(3) is 3x3.
struct Size2 {
  int64_t h = 1, w = 1;
  Size2() = default;
  template <std::integral I>
  Size2(I v) : h(static_cast<int64_t>(v)), w(static_cast<int64_t>(v)) {}  // NOLINT: implicit on purpose
  Size2(int64_t height, int64_t width) : h(height), w(width) {}
  bool operator==(const Size2&) const = default;
};
// One int when h == w, else [h, w]; and back (an int, [n] or [h, w]; `owner` names the
// layer and field in errors).
nlohmann::json size2_to_json(Size2 s);
Size2 size2_from_json(const nlohmann::json& j, const std::string& owner);

class Padding {
 public:
  Padding() = default;               // "valid"
  Padding(const char* mode);         // NOLINT: "valid" or "same"
  Padding(const std::string& mode);  // NOLINT
  template <std::integral I>
  Padding(I all) : Padding(static_cast<int64_t>(all), static_cast<int64_t>(all)) {}  // NOLINT
  Padding(int64_t h, int64_t w) : Padding(h, h, w, w) {}
  Padding(int64_t top, int64_t bottom, int64_t left, int64_t right);

  bool same() const { return same_; }
  // {top, bottom, left, right} for an input of h x w.
  std::array<int64_t, 4> resolve(int64_t h, int64_t w, Size2 kernel, Size2 stride, Size2 dilation = 1) const;
  // "valid", "same", one int, [h, w] or [top, bottom, left, right], whichever is shortest.
  nlohmann::json to_json() const;
  // Reads what to_json writes (and [p] / [t, b, l, r] in any form); `owner` names the
  // layer and field in errors.
  static Padding from_json(const nlohmann::json& j, const std::string& owner);
  std::string str() const;  // for messages: "same", "[1,1,2,2]"

 private:
  bool same_ = false;
  std::array<int64_t, 4> pads_{0, 0, 0, 0};
};

struct Conv2dOptions {
  Size2 stride = 1;
  Padding padding;  // "valid"
  Size2 dilation = 1;
  int64_t groups = 1;  // input channels and filters must both divide by it; = C for depthwise
  bool use_bias = true;
  std::string activation;  // applied after the bias, by name (nn::activate)
  std::string kernel_init = "glorot_uniform";
  std::string bias_init = "zeros";
};

class Conv2d : public Module {
 public:
  Conv2d(int64_t filters, Size2 kernel_size, Conv2dOptions options = {});
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Conv2d"; }
  nlohmann::json config() const override;
  const Tensor& kernel() const { return kernel_; }
  const Tensor& bias() const { return bias_; }
  int64_t filters() const { return filters_; }

 protected:
  std::vector<Slot> slots() override { return {{"kernel", &kernel_, false}, {"bias", &bias_, false}}; }
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  int64_t filters_;
  Size2 kernel_size_;
  Conv2dOptions opt_;
  Tensor kernel_, bias_;
};

struct Pool2dOptions {
  Size2 stride = 0;        // 0: the kernel size (non-overlapping windows, as in PyTorch and Keras)
  Padding padding;         // "valid"; explicit padding must be at most half the kernel
  bool ceil_mode = false;  // PyTorch's: round the output size up
  // AvgPool2d: divide by the whole window, padding included (PyTorch's default); false
  // divides by the input pixels only, as Keras's "same" average pooling does.
  bool count_include_pad = true;
};

// Max or average pooling over kernel windows.
class Pool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  nlohmann::json config() const override;

 protected:
  Pool2d(const char* name, bool average, Size2 kernel, Pool2dOptions options);
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  const char* name_;
  bool average_;
  Size2 kernel_;
  Pool2dOptions opt_;
};

class MaxPool2d : public Pool2d {
 public:
  explicit MaxPool2d(Size2 kernel = 2, Pool2dOptions options = {})
      : Pool2d("MaxPool2d", false, kernel, options) {}
  std::string type() const override { return "MaxPool2d"; }
};

class AvgPool2d : public Pool2d {
 public:
  explicit AvgPool2d(Size2 kernel = 2, Pool2dOptions options = {})
      : Pool2d("AvgPool2d", true, kernel, options) {}
  std::string type() const override { return "AvgPool2d"; }
};

// PyTorch's adaptive average pooling to a fixed output size: [C,H,W] -> [C,oh,ow].
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "AdaptiveAvgPool2d"; }
  nlohmann::json config() const override;

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  Size2 output_size_;
};

// The mean of each channel over the image: [C,H,W] -> [C] (Keras's GlobalAveragePooling2D).
class GlobalAvgPool2d : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "GlobalAvgPool2d"; }

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;
};

// Normalises each channel over the batch and the image: input [C,H,W]. Running
// statistics are buffers; eval() normalises with them.
class BatchNorm2d : public BatchNorm {
 public:
  explicit BatchNorm2d(NormOptions options = {}) : BatchNorm(options, {3}, "[C,H,W]") {}
  std::string type() const override { return "BatchNorm2d"; }
};

// Zeroes whole channels with probability `rate` while training (PyTorch's
// Dropout2d); the mask generator is a buffer ("rng") as in Dropout.
class Dropout2d : public Dropout {
 public:
  explicit Dropout2d(double rate) : Dropout(rate, "Dropout2d") {}
  std::string type() const override { return "Dropout2d"; }

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;
  Tensor drop(const Tensor& x, float p, Generator& gen) const override;
};

// Passes its input through: the skip path of a residual block.
class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type() const override { return "Identity"; }

 protected:
  Shape build_impl(const Shape& input, Generator&) override { return input; }
};

// Runs branches side by side on one input; Add and Concat combine their outputs.
class Branches : public Module {
 public:
  std::vector<std::pair<std::string, Module*>> children() const override;
  const std::vector<std::shared_ptr<Module>>& branches() const { return branches_; }
  nlohmann::json config() const override;  // {"branches": [{"type":..., "config":...}, ...]}

 protected:
  Branches(const char* name, std::vector<std::shared_ptr<Module>> branches);
  std::vector<Shape> build_branches(const Shape& input, Generator& gen);
  std::vector<Tensor> forward_branches(const Tensor& x);
  // "branch 0 (Sequential) [16,14,14], branch 1 (Identity) [16,28,28]"
  std::string describe(const std::vector<Shape>& shapes) const;
  const char* name_;

 private:
  std::vector<std::shared_ptr<Module>> branches_;
};

// The sum of the branches' outputs, then `activation` ("" for none).
class Add : public Branches {
 public:
  Add(std::initializer_list<Layer> branches, std::string activation = "");
  explicit Add(std::vector<std::shared_ptr<Module>> branches, std::string activation = "");
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Add"; }
  nlohmann::json config() const override;  // {"branches": [...], "activation": ...}

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  std::string activation_;
};

// The branches' outputs joined along the channel axis.
class Concat : public Branches {
 public:
  Concat(std::initializer_list<Layer> branches);
  explicit Concat(std::vector<std::shared_ptr<Module>> branches);
  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Concat"; }

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;
};

}  // namespace deft::nn
