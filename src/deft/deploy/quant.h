// Post-training int8 quantisation: the building blocks `deft export --quantize int8`
// and the inference runtime use for Dense and Conv2d layers.
//
//   // 1. calibrate: one observer per quantised layer, fed that layer's float input
//   RangeObserver obs({.method = CalibrationMethod::Percentile, .percentile = 99.99});
//   for (const Tensor& batch : calibration_inputs) obs.observe(batch);
//   ActivationQuant in = obs.params();                   // u8 scale + zero point
//   // 2. quantise a layer (BN already folded into its float weight and bias)
//   QuantizedDense fc(quantize_weights(kernel, WeightLayout::DenseInOut), bias, in, /*relu=*/true);
//   QuantizedConv2d conv(quantize_weights(w, WeightLayout::ConvOIHW), b, in, conv_params, /*relu=*/true);
//   // 3. run: float in, float out, a drop-in for the float op
//   fc.forward(x_ptr, n, y_ptr);                         // x [n, in] -> y [n, out]
//   conv.forward(x_ptr, {n, c, h, w}, y_ptr);            // NCHW -> NCHW [n, o, ho, wo]
//
// The scheme is the one oneDNN runs fastest on x86 (u8 x s8 -> s32, one VNNI
// instruction per 4 products):
//   weights      symmetric int8 per output channel: q = round(w / s_c), s_c = max|w_c| / 127
//   activations  asymmetric uint8 per tensor: q = clamp(round(x / s) + zp, 0, 255)
//   output       y = s * s_c * sum((q_x - zp) * q_w) + bias  (float; ReLU fused when asked)
// Weight values lie in [-127, 127] (never -128: the range is symmetric). On CPUs
// without VNNI oneDNN's u8 x s8 path sums pairs of products in 16 bits and can
// saturate; deft's targets (AVX-512 VNNI, AVX-VNNI) have no such limit.
// int8_pays_off() says which layers to quantise (not a first conv on 1-3 channels).
//
// Each op creates its oneDNN primitive, reorders its weights into the layout the
// primitive wants and allocates its buffers once per (batch size, thread count), then
// reuses them: a steady-state forward() allocates nothing. An op object is not
// thread-safe (one caller at a time, like the Predictor that owns it), but may be
// built on one thread and run on another.
//
// In a .deft file a quantised layer is its int8 weight (safetensors dtype I8, the
// float weight's shape and layout) and its per-channel scales (F32 [O]) next to the
// float bias, plus a JSON description in the metadata (see layer_quant_json).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "deft/tensor/conv.h"
#include "deft/tensor/safetensors.h"
#include "deft/tensor/tensor.h"

namespace deft::deploy {

// ---- weights ----------------------------------------------------------------------

// Where a layer's output channel sits in its float weight.
enum class WeightLayout {
  DenseInOut,  // Dense kernel [in, out] (Keras-style): channel = column
  ConvOIHW,    // Conv2d weight [O, C/groups, kh, kw]: channel = first index
};

struct QuantizedWeights {
  WeightLayout layout = WeightLayout::DenseInOut;
  Shape shape;                 // the float weight's shape
  std::vector<int8_t> values;  // row-major in that shape; each in [-127, 127]
  std::vector<float> scales;   // one per output channel, > 0 (1 for an all-zero channel)

  int64_t channels() const;  // the output channel count: shape[1] (Dense) or shape[0] (Conv)
  // InputError when the sizes disagree with `shape` (wrong scale or value count), a
  // scale is not finite and positive, or a value is -128.
  void validate(const std::string& what) const;
};

// Symmetric per-output-channel int8. InputError for a weight of the wrong rank or with
// non-finite values.
QuantizedWeights quantize_weights(const Tensor& w, WeightLayout layout);
// The float weight the int8 values stand for (q * s_c), in the original shape.
Tensor dequantize_weights(const QuantizedWeights& q);

// Whether int8 should beat float32 for a layer with this float weight (Dense [in, out]
// or Conv2d [O, C/groups, kh, kw]). A convolution with a short reduction per output
// (C/groups * kh * kw < 32: an image net's first layer on 1-3 channels, a depthwise
// conv) spends its time converting layouts, not multiplying, and stays float:
// bench/quant_bench.cpp measured simple_cnn's 1->32 3x3 conv at 0.5x in int8 (the f32
// NHWC->NCHW output reorder costs as much as the convolution), its 32->64 conv at 2.6x.
bool int8_pays_off(const Shape& weight_shape, WeightLayout layout);

// ---- activations ------------------------------------------------------------------

// u8 per-tensor parameters: x ~ scale * (q - zero_point).
struct ActivationQuant {
  float scale = 1.0f;
  int32_t zero_point = 0;                        // in [0, 255]; 0 for non-negative inputs (after a ReLU)
  void validate(const std::string& what) const;  // InputError unless scale > 0, finite, zp in range
};

// The u8 parameters that cover [lo, hi] (widened to include 0, so 0 is exact and
// zero padding means 0).
ActivationQuant activation_quant_for_range(float lo, float hi);
// q = clamp(round(x / scale) + zp, 0, 255) with round-half-to-even; NaN -> zp.
void quantize_activations(const float* x, int64_t n, const ActivationQuant& q, uint8_t* out);
uint8_t quantize_activation(float x, float inv_scale, int32_t zero_point);  // the same, one value

enum class CalibrationMethod {
  MinMax,      // the exact range seen
  Percentile,  // clip both tails at `percentile` (e.g. 99.99: 0.01% of the values saturate)
  Mse,         // the clipping range that minimises the expected squared quantisation error
};
const char* calibration_method_name(CalibrationMethod m);             // "minmax", "percentile", "mse"
CalibrationMethod parse_calibration_method(const std::string& name);  // InputError naming the choices

struct ObserverOptions {
  CalibrationMethod method = CalibrationMethod::Percentile;
  double percentile = 99.99;  // Percentile only; in (50, 100]
  int bins = 2048;            // histogram resolution (Percentile and Mse)
};

// Tracks the range of one layer's input over calibration batches. Keeps the exact
// min/max and a histogram over the range seen so far; when a batch widens the range
// the old counts move to the new bins by their bin centres (PyTorch's
// HistogramObserver does the same), so the order of batches matters only within one bin.
class RangeObserver {
 public:
  explicit RangeObserver(ObserverOptions options = {});
  void observe(const Tensor& x);  // any shape, Float32; NaN values are skipped
  void observe(const float* x, int64_t n);

  int64_t count() const { return count_; }
  float min() const { return min_; }
  float max() const { return max_; }
  // The clipping range the method picks (before widening to include 0).
  std::pair<float, float> range() const;
  // InputError when nothing has been observed.
  ActivationQuant params() const;
  const ObserverOptions& options() const { return opt_; }

 private:
  void add_to_histogram(const float* x, int64_t n);
  void widen(float lo, float hi);
  float bin_edge(double i) const { return static_cast<float>(lo_ + (hi_ - lo_) * i / hist_.size()); }

  ObserverOptions opt_;
  int64_t count_ = 0;
  float min_ = 0, max_ = 0;
  double lo_ = 0, hi_ = 0;  // histogram range
  std::vector<double> hist_;
};

// ---- ops --------------------------------------------------------------------------

// A Dense layer on int8: y = x·kernel + bias, [n, in] -> [n, out], float in and out.
class QuantizedDense {
 public:
  // weights: layout DenseInOut; bias: Float32 [out] or undefined. InputError when the
  // counts or parameters do not fit together.
  QuantizedDense(QuantizedWeights weights, const Tensor& bias, ActivationQuant input, bool relu = false);
  ~QuantizedDense();
  QuantizedDense(QuantizedDense&&) noexcept;
  QuantizedDense& operator=(QuantizedDense&&) noexcept;

  int64_t in_features() const { return weights_.shape[0]; }
  int64_t out_features() const { return weights_.shape[1]; }
  const QuantizedWeights& weights() const { return weights_; }
  const std::vector<float>& bias() const { return bias_; }  // empty when none
  const ActivationQuant& input_quant() const { return input_; }
  bool relu() const { return relu_; }

  void forward(const float* x, int64_t n, float* y);
  Tensor forward(const Tensor& x);        // [n, in] Float32 -> [n, out]
  std::string implementation(int64_t n);  // oneDNN's kernel for batch n, e.g. "brgemm:avx512_core_vnni"

 private:
  struct Plan;
  Plan& plan(int64_t n);

  QuantizedWeights weights_;
  std::vector<float> bias_;
  ActivationQuant input_;
  bool relu_ = false;
  std::vector<float> folded_bias_;  // bias / (s * s_c) - zp * sum_k q_w[k, c]
  std::map<std::pair<int64_t, int>, std::unique_ptr<Plan>> plans_;
};

// A Conv2d layer on int8 (stride, padding, dilation and groups as deft's Conv2d),
// NCHW float in and out.
class QuantizedConv2d {
 public:
  // weights: layout ConvOIHW [O, C/g, kh, kw]; bias: Float32 [O] or undefined.
  QuantizedConv2d(QuantizedWeights weights, const Tensor& bias, ActivationQuant input, Conv2dParams params,
                  bool relu = false);
  ~QuantizedConv2d();
  QuantizedConv2d(QuantizedConv2d&&) noexcept;
  QuantizedConv2d& operator=(QuantizedConv2d&&) noexcept;

  const QuantizedWeights& weights() const { return weights_; }
  const std::vector<float>& bias() const { return bias_; }
  const ActivationQuant& input_quant() const { return input_; }
  const Conv2dParams& params() const { return params_; }
  bool relu() const { return relu_; }

  // [N, C, H, W] -> [N, O, Ho, Wo]; ShapeError when C or the spatial size does not fit.
  Shape output_shape(const Shape& x_shape) const;
  void forward(const float* x, const Shape& x_shape, float* y);
  Tensor forward(const Tensor& x);
  std::string implementation(const Shape& x_shape);

 private:
  struct Plan;
  Plan& plan(const Shape& x_shape);

  QuantizedWeights weights_;
  std::vector<float> bias_;
  ActivationQuant input_;
  Conv2dParams params_;
  bool relu_ = false;
  std::vector<float> folded_bias_;  // bias / (s * s_c)
  std::map<std::vector<int64_t>, std::unique_ptr<Plan>> plans_;
};

// ---- model files ------------------------------------------------------------------

// The tensors of one quantised layer, named "<prefix>.weight_int8" (a UInt8 tensor of
// two's-complement bytes, to be written as I8: its name is added to `stored_dtypes`,
// the map write_safetensors takes) and "<prefix>.weight_scale" (Float32 [O]).
void append_quantized_weights(const std::string& prefix, const QuantizedWeights& w,
                              std::vector<std::pair<std::string, Tensor>>& tensors,
                              std::map<std::string, std::string>& stored_dtypes);
// Reads them back (stored as I8, or as U8 bytes); InputError naming the file and
// tensor when one is missing, of the wrong dtype or shape, or the counts disagree.
QuantizedWeights read_quantized_weights(const SafetensorsFile& f, const std::string& prefix,
                                        WeightLayout layout);

// A layer's quantisation, for the architecture JSON in the file's metadata:
//   {"weight": {"dtype": "int8", "scheme": "symmetric_per_channel", "axis": 1},
//    "input": {"dtype": "uint8", "scale": 0.0123, "zero_point": 0,
//              "method": "percentile", "percentile": 99.99}}
nlohmann::json layer_quant_json(const QuantizedWeights& w, const ActivationQuant& input,
                                const ObserverOptions& calibration);
// The input parameters back from that JSON; InputError naming `what` when absent or invalid.
ActivationQuant input_quant_from_json(const nlohmann::json& j, const std::string& what);

}  // namespace deft::deploy
