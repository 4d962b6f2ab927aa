// Int8 post-training quantisation: weights, calibration observers, oneDNN int8 ops.
#include "deft/deploy/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <limits>
#include <optional>
#include <unordered_map>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"

namespace deft::deploy {
namespace {

using dnnl::memory;
using Tag = memory::format_tag;
using DT = memory::data_type;

bool finite_positive(float s) { return std::isfinite(s) && s > 0.0f; }

// ---- oneDNN plumbing ---------------------------------------------------------------

// One engine for the process (an op may be built on one thread and run on another,
// e.g. loaded by deft serve's main thread, run by its batcher) and one stream per
// thread; execution is synchronous.
struct Dnnl {
  const dnnl::engine& engine;
  dnnl::stream stream;
};

Dnnl& dnnl_ctx() {
  static const dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  thread_local Dnnl d{engine, dnnl::stream(engine)};
  return d;
}

// A buffer of raw bytes, 64-byte aligned, for oneDNN memories we own.
class Buffer {
 public:
  explicit Buffer(size_t bytes)
      : data_(static_cast<std::byte*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64 + 64))) {
    DEFT_INTERNAL_CHECK(data_ != nullptr, "quantized op: out of memory allocating {} bytes", bytes);
  }
  void* get() const { return data_.get(); }

 private:
  struct Free {
    // The RAII owner of aligned_alloc's block.
    void operator()(std::byte* p) const { std::free(p); }  // NOLINT(cppcoreguidelines-no-malloc)
  };
  std::unique_ptr<std::byte, Free> data_;
};

dnnl::primitive_attr int8_attr(const std::vector<float>& output_scales, int32_t src_zero_point, bool relu) {
  dnnl::primitive_attr attr;
  attr.set_output_scales(1 << 1, output_scales);  // dst dim 1: the output channel
  if (src_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {src_zero_point});
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  return attr;
}

std::vector<float> output_scales(const QuantizedWeights& w, const ActivationQuant& in) {
  std::vector<float> s(w.scales.size());
  for (size_t c = 0; c < s.size(); ++c) s[c] = in.scale * w.scales[c];
  return s;
}

// The float bias in oneDNN 2.x's int8 convention, dst = scale_c * (acc + bias_c):
// the layer's bias divided by the output scale.
std::vector<float> scaled_bias(const std::vector<float>& bias, const std::vector<float>& out_scales) {
  std::vector<float> b(out_scales.size(), 0.0f);
  if (!bias.empty())
    for (size_t c = 0; c < b.size(); ++c) b[c] = bias[c] / out_scales[c];
  return b;
}

std::vector<float> bias_values(const Tensor& bias, int64_t channels, const char* op) {
  if (!bias.defined()) return {};
  DEFT_CHECK(bias.dtype() == DType::Float32 && bias.numel() == channels,
             "{}: bias {} ({}) does not match {} output channels", op, shape_str(bias.shape()),
             dtype_name(bias.dtype()), channels);
  std::vector<float> b = bias.to_vector<float>();
  for (float v : b) DEFT_CHECK(std::isfinite(v), "{}: bias has a non-finite value", op);
  return b;
}

void* mut(const void* p) { return const_cast<void*>(p); }

}  // namespace

// ---- weights ------------------------------------------------------------------------

int64_t QuantizedWeights::channels() const {
  if (shape.empty()) return 0;
  return layout == WeightLayout::DenseInOut ? (shape.size() > 1 ? shape[1] : 0) : shape[0];
}

void QuantizedWeights::validate(const std::string& what) const {
  const size_t rank = layout == WeightLayout::DenseInOut ? 2 : 4;
  DEFT_CHECK(shape.size() == rank, "{}: int8 weight has shape {}, expected rank {}", what, shape_str(shape),
             rank);
  for (int64_t d : shape) DEFT_CHECK(d > 0, "{}: int8 weight has an empty shape {}", what, shape_str(shape));
  DEFT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape),
             "{}: {} int8 values do not fill weight shape {}", what, values.size(), shape_str(shape));
  DEFT_CHECK(static_cast<int64_t>(scales.size()) == channels(),
             "{}: {} weight scales for {} output channels (weight shape {})", what, scales.size(), channels(),
             shape_str(shape));
  for (size_t c = 0; c < scales.size(); ++c)
    DEFT_CHECK(finite_positive(scales[c]), "{}: weight scale {} of channel {} is not finite and positive",
               what, scales[c], c);
  for (int8_t v : values)
    DEFT_CHECK(v != -128, "{}: int8 weight value -128 is outside the symmetric range", what);
}

QuantizedWeights quantize_weights(const Tensor& w, WeightLayout layout) {
  const int64_t rank = layout == WeightLayout::DenseInOut ? 2 : 4;
  const char* what = layout == WeightLayout::DenseInOut ? "quantize Dense kernel" : "quantize Conv2d weight";
  DEFT_CHECK(w.defined() && w.dtype() == DType::Float32 && w.dim() == rank,
             "{}: expected a Float32 rank-{} tensor, got {}", what, rank,
             w.defined() ? shape_str(w.shape()) : "undefined");
  QuantizedWeights q;
  q.layout = layout;
  q.shape = w.shape();
  const std::vector<float> v = w.to_vector<float>();
  const int64_t C = q.channels();
  // Element i belongs to channel (i % C) for [in, out], (i / per) for [O, ...].
  const int64_t per = static_cast<int64_t>(v.size()) / std::max<int64_t>(C, 1);
  auto channel = [&](size_t i) {
    return layout == WeightLayout::DenseInOut ? static_cast<int64_t>(i) % C : static_cast<int64_t>(i) / per;
  };
  std::vector<float> maxabs(C, 0.0f);
  for (size_t i = 0; i < v.size(); ++i) {
    DEFT_CHECK(std::isfinite(v[i]), "{}: weight {} has a non-finite value at element {}", what,
               shape_str(q.shape), i);
    float& m = maxabs[channel(i)];
    m = std::max(m, std::fabs(v[i]));
  }
  q.scales.resize(C);
  for (int64_t c = 0; c < C; ++c) q.scales[c] = maxabs[c] > 0.0f ? maxabs[c] / 127.0f : 1.0f;
  q.values.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float r = std::nearbyint(v[i] / q.scales[channel(i)]);
    q.values[i] = static_cast<int8_t>(std::clamp(r, -127.0f, 127.0f));
  }
  return q;
}

Tensor dequantize_weights(const QuantizedWeights& q) {
  q.validate("dequantize_weights");
  Tensor t = Tensor::empty(q.shape);
  float* p = t.data<float>();
  const int64_t C = q.channels(), n = static_cast<int64_t>(q.values.size()), per = n / C;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = q.layout == WeightLayout::DenseInOut ? i % C : i / per;
    p[i] = static_cast<float>(q.values[i]) * q.scales[c];
  }
  return t;
}

bool int8_pays_off(const Shape& w, WeightLayout layout) {
  if (layout == WeightLayout::DenseInOut) return true;
  return w.size() == 4 && w[1] * w[2] * w[3] >= 32;
}

// ---- activations ----------------------------------------------------------------------

void ActivationQuant::validate(const std::string& what) const {
  DEFT_CHECK(finite_positive(scale), "{}: input scale {} is not finite and positive", what, scale);
  DEFT_CHECK(zero_point >= 0 && zero_point <= 255, "{}: input zero point {} is outside [0, 255]", what,
             zero_point);
}

ActivationQuant activation_quant_for_range(float lo, float hi) {
  DEFT_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
             "activation range [{}, {}] is not a finite interval", lo, hi);
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  ActivationQuant q;
  if (hi - lo <= std::numeric_limits<float>::min() * 255.0f) return q;  // all zeros: any scale is exact
  q.scale = (hi - lo) / 255.0f;
  q.zero_point = static_cast<int32_t>(std::clamp(std::nearbyint(-lo / q.scale), 0.0f, 255.0f));
  return q;
}

uint8_t quantize_activation(float x, float inv_scale, int32_t zero_point) {
  float v = x * inv_scale + static_cast<float>(zero_point);
  v = v > 0.0f ? v : 0.0f;  // NaN -> 0 as well
  v = v < 255.0f ? v : 255.0f;
  // Round half to even by the 1.5 * 2^23 trick: exact for 0 <= v < 2^22, and it
  // vectorises where nearbyint would not (deft builds without -ffast-math).
  constexpr float kMagic = 12582912.0f;
  return static_cast<uint8_t>(static_cast<int32_t>((v + kMagic) - kMagic));
}

namespace {
// Parameters as locals and restrict pointers: a uint8_t store may alias anything, so
// without them GCC reloads the captured scale every element and does not vectorise
// (9x slower, measured).
void quantize_span(const float* __restrict x, int64_t n, float inv, int32_t zp, uint8_t* __restrict out) {
  for (int64_t i = 0; i < n; ++i) out[i] = quantize_activation(x[i], inv, zp);
}

// One image NCHW float -> NHWC u8, a tile of pixels at a time (reads sequential per
// channel, the tile's writes stay in cache).
void quantize_image_nhwc(const float* __restrict x, int64_t C, int64_t HW, float inv, int32_t zp,
                         uint8_t* __restrict out) {
  constexpr int64_t kTile = 64;
  uint8_t tile[kTile];
  for (int64_t i0 = 0; i0 < HW; i0 += kTile) {
    const int64_t len = std::min(kTile, HW - i0);
    for (int64_t c = 0; c < C; ++c) {
      quantize_span(x + c * HW + i0, len, inv, zp, tile);
      for (int64_t i = 0; i < len; ++i) out[(i0 + i) * C + c] = tile[i];
    }
  }
}
}  // namespace

void quantize_activations(const float* x, int64_t n, const ActivationQuant& q, uint8_t* out) {
  const float inv = 1.0f / q.scale;
  const int32_t zp = q.zero_point;
  parallel_for(0, n, 1 << 15, [=](int64_t b, int64_t e) { quantize_span(x + b, e - b, inv, zp, out + b); });
}

const char* calibration_method_name(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::MinMax:
      return "minmax";
    case CalibrationMethod::Percentile:
      return "percentile";
    case CalibrationMethod::Mse:
      return "mse";
  }
  return "?";
}

CalibrationMethod parse_calibration_method(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::MinMax;
  if (name == "percentile") return CalibrationMethod::Percentile;
  if (name == "mse") return CalibrationMethod::Mse;
  fail("unknown calibration method '{}' (choices: minmax, percentile, mse)", name);
}

RangeObserver::RangeObserver(ObserverOptions options) : opt_(options) {
  DEFT_CHECK(opt_.bins >= 16 && opt_.bins <= (1 << 20), "RangeObserver: bins must be in [16, 2^20], got {}",
             opt_.bins);
  DEFT_CHECK(opt_.percentile > 50.0 && opt_.percentile <= 100.0,
             "RangeObserver: percentile must be in (50, 100], got {}", opt_.percentile);
}

void RangeObserver::observe(const Tensor& x) {
  DEFT_CHECK(x.dtype() == DType::Float32, "RangeObserver: expected Float32 activations, got {}",
             dtype_name(x.dtype()));
  const Tensor c = x.contiguous_copy();
  observe(c.data<float>(), c.numel());
}

void RangeObserver::observe(const float* x, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
    ++finite;
  }
  if (finite == 0) return;
  if (count_ == 0) {
    min_ = lo;
    max_ = hi;
    lo_ = lo;
    hi_ = hi;
    hist_.assign(opt_.bins, 0.0);
  } else {
    min_ = std::min(min_, lo);
    max_ = std::max(max_, hi);
    if (lo < lo_ || hi > hi_) widen(lo, hi);
  }
  count_ += finite;
  add_to_histogram(x, n);
}

void RangeObserver::add_to_histogram(const float* x, int64_t n) {
  const double width = hi_ - lo_;
  const int64_t last = static_cast<int64_t>(hist_.size()) - 1;
  const double per = width > 0 ? static_cast<double>(hist_.size()) / width : 0.0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    const int64_t b = static_cast<int64_t>((x[i] - lo_) * per);
    hist_[std::clamp<int64_t>(b, 0, last)] += 1.0;
  }
}

void RangeObserver::widen(float lo, float hi) {
  const double nlo = std::min<double>(lo_, lo), nhi = std::max<double>(hi_, hi);
  std::vector<double> h(hist_.size(), 0.0);
  const double old_w = (hi_ - lo_) / hist_.size(), per = hist_.size() / (nhi - nlo);
  const int64_t last = static_cast<int64_t>(h.size()) - 1;
  for (size_t i = 0; i < hist_.size(); ++i) {
    if (hist_[i] == 0.0) continue;
    const double centre = lo_ + (static_cast<double>(i) + 0.5) * old_w;
    h[std::clamp<int64_t>(static_cast<int64_t>((centre - nlo) * per), 0, last)] += hist_[i];
  }
  hist_ = std::move(h);
  lo_ = nlo;
  hi_ = nhi;
}

std::pair<float, float> RangeObserver::range() const {
  DEFT_CHECK(count_ > 0, "RangeObserver: no calibration data observed (all batches empty or non-finite)");
  if (opt_.method == CalibrationMethod::MinMax || hi_ == lo_) return {min_, max_};
  const double total = count_;
  const size_t nb = hist_.size();
  if (opt_.method == CalibrationMethod::Percentile) {
    // The value below which a fraction `f` of the data lies, interpolated in its bin.
    auto quantile = [&](double f) {
      const double target = f * total;
      double cum = 0;
      for (size_t i = 0; i < nb; ++i) {
        if (cum + hist_[i] >= target && hist_[i] > 0)
          return bin_edge(static_cast<double>(i) + (target - cum) / hist_[i]);
        cum += hist_[i];
      }
      return static_cast<float>(hi_);
    };
    const double f = opt_.percentile / 100.0;
    const float lo = std::max(min_, quantile(1.0 - f)), hi = std::min(max_, quantile(f));
    return {std::min(lo, hi), std::max(lo, hi)};
  }
  // Mse: try clipping each end (0 stays inside) at 0.95^k of its extent, k < 64 (down
  // to 4%), and keep the pair with the least expected error: rounding noise step^2/12
  // inside, the squared distance to the clip point outside.
  const double lo0 = std::min(0.0f, min_), hi0 = std::max(0.0f, max_), bw = (hi_ - lo_) / nb;
  double best = std::numeric_limits<double>::infinity();
  std::pair<float, float> out{min_, max_};
  constexpr int kSteps = 64;
  for (int a = 0; a < kSteps; ++a) {
    const double lo = lo0 * std::pow(0.95, a);
    if (lo0 == 0.0 && a > 0) break;
    for (int b = 0; b < kSteps; ++b) {
      const double hi = hi0 * std::pow(0.95, b);
      if (hi0 == 0.0 && b > 0) break;
      const double step = (hi - lo) / 255.0, noise = step * step / 12.0;
      double err = 0;
      for (size_t i = 0; i < nb; ++i) {
        if (hist_[i] == 0.0) continue;
        const double v = lo_ + (static_cast<double>(i) + 0.5) * bw;
        const double d = v < lo ? lo - v : v > hi ? v - hi : 0.0;
        err += hist_[i] * (d > 0 ? d * d : noise);
      }
      if (err < best) {
        best = err;
        out = {static_cast<float>(std::max<double>(lo, min_)),
               static_cast<float>(std::min<double>(hi, max_))};
      }
    }
  }
  return out;
}

ActivationQuant RangeObserver::params() const {
  const auto [lo, hi] = range();
  return activation_quant_for_range(lo, hi);
}

// ---- Dense ---------------------------------------------------------------------------

struct QuantizedDense::Plan {
  dnnl::inner_product_forward prim;
  std::string impl;
  memory src, weights, bias, dst;  // src: u8 [n, in] in `src_buf`; dst: the caller's pointer or `dst_buf`
  std::optional<Buffer> src_buf, weights_buf, dst_buf;
  memory user_dst;
  std::optional<dnnl::reorder> dst_reorder;
  std::unordered_map<int, memory> args;
};

QuantizedDense::QuantizedDense(QuantizedWeights weights, const Tensor& bias, ActivationQuant input, bool relu)
    : weights_(std::move(weights)), input_(input), relu_(relu) {
  DEFT_CHECK(weights_.layout == WeightLayout::DenseInOut,
             "quantized Dense: weights are not in the Dense [in, out] layout");
  weights_.validate("quantized Dense");
  input_.validate("quantized Dense");
  bias_ = bias_values(bias, out_features(), "quantized Dense");
  // Asymmetric input folded into the bias, exactly: sum_k (q_k - zp) w_kc = sum_k q_k w_kc - zp * sum_k w_kc.
  folded_bias_ = scaled_bias(bias_, output_scales(weights_, input_));
  const int64_t in = in_features(), out = out_features();
  for (int64_t c = 0; c < out; ++c) {
    int64_t sum = 0;
    for (int64_t k = 0; k < in; ++k) sum += weights_.values[k * out + c];
    folded_bias_[c] -= static_cast<float>(input_.zero_point * sum);
  }
}

QuantizedDense::~QuantizedDense() = default;
QuantizedDense::QuantizedDense(QuantizedDense&&) noexcept = default;
QuantizedDense& QuantizedDense::operator=(QuantizedDense&&) noexcept = default;

QuantizedDense::Plan& QuantizedDense::plan(int64_t n) {
  detail::sync_thread_count();
  const std::pair<int64_t, int> key{n, omp_get_max_threads()};
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  Dnnl& d = dnnl_ctx();
  const int64_t in = in_features(), out = out_features();
  auto p = std::make_unique<Plan>();
  try {
    const memory::desc src_md({n, in}, DT::u8, Tag::nc), dst_md({n, out}, DT::f32, Tag::nc),
        bias_md({out}, DT::f32, Tag::x), wei_any({out, in}, DT::s8, Tag::any);
    const dnnl::inner_product_forward::desc desc(dnnl::prop_kind::forward_inference, src_md, wei_any, bias_md,
                                                 dst_md);
    // The zero point is in the bias already, so oneDNN sees a plain u8 x s8 product.
    const dnnl::inner_product_forward::primitive_desc pd(
        desc, int8_attr(output_scales(weights_, input_), 0, relu_), d.engine);
    p->prim = dnnl::inner_product_forward(pd);
    p->impl = pd.impl_info_str();
    p->src_buf.emplace(pd.src_desc().get_size());
    p->src = memory(pd.src_desc(), d.engine, p->src_buf->get());
    // Our [in, out] int8 kernel is oneDNN's weight {out, in} in the "io" layout.
    memory user_w(memory::desc({out, in}, DT::s8, Tag::io), d.engine, mut(weights_.values.data()));
    p->weights_buf.emplace(pd.weights_desc().get_size());
    p->weights = memory(pd.weights_desc(), d.engine, p->weights_buf->get());
    dnnl::reorder(user_w, p->weights).execute(d.stream, user_w, p->weights);
    p->bias = memory(bias_md, d.engine, folded_bias_.data());
    p->user_dst = memory(dst_md, d.engine, DNNL_MEMORY_NONE);
    if (pd.dst_desc() == dst_md) {
      p->dst = p->user_dst;
    } else {
      p->dst_buf.emplace(pd.dst_desc().get_size());
      p->dst = memory(pd.dst_desc(), d.engine, p->dst_buf->get());
      p->dst_reorder = dnnl::reorder(p->dst, p->user_dst);
    }
    d.stream.wait();
  } catch (const dnnl::error& e) {
    fail<Error>("quantized Dense: oneDNN could not create an int8 inner product for [{},{}] x [{},{}]: {}", n,
                in, in, out, e.what());
  }
  p->args = {{DNNL_ARG_SRC, p->src},
             {DNNL_ARG_WEIGHTS, p->weights},
             {DNNL_ARG_BIAS, p->bias},
             {DNNL_ARG_DST, p->dst}};
  return *plans_.emplace(key, std::move(p)).first->second;
}

void QuantizedDense::forward(const float* x, int64_t n, float* y) {
  if (n <= 0) return;
  Plan& p = plan(n);
  Dnnl& d = dnnl_ctx();
  quantize_activations(x, n * in_features(), input_, static_cast<uint8_t*>(p.src_buf->get()));
  p.user_dst.set_data_handle(y);
  p.prim.execute(d.stream, p.args);
  if (p.dst_reorder) p.dst_reorder->execute(d.stream, p.dst, p.user_dst);
  d.stream.wait();
}

Tensor QuantizedDense::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dtype() == DType::Float32 && x.dim() == 2 && x.size(1) == in_features(),
                   "quantized Dense: input {} ({}) does not match {} input features", shape_str(x.shape()),
                   dtype_name(x.dtype()), in_features());
  const Tensor c = x.contiguous_copy();
  Tensor y = Tensor::empty({x.size(0), out_features()});
  forward(c.data<float>(), x.size(0), y.data<float>());
  return y;
}

std::string QuantizedDense::implementation(int64_t n) { return plan(n).impl; }

// ---- Conv2d ------------------------------------------------------------------------------

struct QuantizedConv2d::Plan {
  dnnl::convolution_forward prim;
  std::string impl;
  bool src_nhwc = false;  // quantise straight into oneDNN's NHWC input; else NCHW u8 + reorder
  memory src, weights, bias, dst, user_dst, nchw_src;
  std::optional<Buffer> src_buf, nchw_buf, weights_buf, dst_buf;
  std::optional<dnnl::reorder> src_reorder, dst_reorder;
  std::unordered_map<int, memory> args;
};

QuantizedConv2d::QuantizedConv2d(QuantizedWeights weights, const Tensor& bias, ActivationQuant input,
                                 Conv2dParams params, bool relu)
    : weights_(std::move(weights)), input_(input), params_(params), relu_(relu) {
  DEFT_CHECK(weights_.layout == WeightLayout::ConvOIHW,
             "quantized Conv2d: weights are not in the [O, C, kh, kw] layout");
  weights_.validate("quantized Conv2d");
  input_.validate("quantized Conv2d");
  const auto& p = params_;
  DEFT_CHECK(p.groups >= 1 && weights_.shape[0] % p.groups == 0,
             "quantized Conv2d: {} output channels do not divide into {} groups", weights_.shape[0],
             p.groups);
  for (int64_t s : p.stride) DEFT_CHECK(s >= 1, "quantized Conv2d: stride {} must be positive", s);
  for (int64_t s : p.dilation) DEFT_CHECK(s >= 1, "quantized Conv2d: dilation {} must be positive", s);
  for (int64_t s : p.padding) DEFT_CHECK(s >= 0, "quantized Conv2d: padding {} must be non-negative", s);
  bias_ = bias_values(bias, weights_.shape[0], "quantized Conv2d");
  // The zero point goes to oneDNN, which also gets the padded border right (a padded
  // input is 0.0, i.e. q = zp); folding it into the bias would not.
  folded_bias_ = scaled_bias(bias_, output_scales(weights_, input_));
}

QuantizedConv2d::~QuantizedConv2d() = default;
QuantizedConv2d::QuantizedConv2d(QuantizedConv2d&&) noexcept = default;
QuantizedConv2d& QuantizedConv2d::operator=(QuantizedConv2d&&) noexcept = default;

Shape QuantizedConv2d::output_shape(const Shape& x) const {
  const Shape& w = weights_.shape;
  const auto& p = params_;
  DEFT_CHECK_SHAPE(x.size() == 4 && x[1] == w[1] * p.groups,
                   "quantized Conv2d: input {} does not match weight {} with {} groups (expected [N,{},H,W])",
                   shape_str(x), shape_str(w), p.groups, w[1] * p.groups);
  const int64_t Ho = (x[2] + p.padding[0] + p.padding[1] - p.dilation[0] * (w[2] - 1) - 1) / p.stride[0] + 1;
  const int64_t Wo = (x[3] + p.padding[2] + p.padding[3] - p.dilation[1] * (w[3] - 1) - 1) / p.stride[1] + 1;
  DEFT_CHECK_SHAPE(Ho > 0 && Wo > 0,
                   "quantized Conv2d: input {} is smaller than the kernel {} (after padding)", shape_str(x),
                   shape_str(w));
  return {x[0], w[0], Ho, Wo};
}

QuantizedConv2d::Plan& QuantizedConv2d::plan(const Shape& x) {
  detail::sync_thread_count();
  std::vector<int64_t> key(x);
  key.push_back(omp_get_max_threads());
  auto it = plans_.find(key);
  if (it != plans_.end()) return *it->second;
  const Shape y = output_shape(x);
  Dnnl& d = dnnl_ctx();
  const Shape& w = weights_.shape;
  const auto& pr = params_;
  const int64_t g = pr.groups, O = w[0];
  auto p = std::make_unique<Plan>();
  try {
    const memory::dims src_dims(x.begin(), x.end()), dst_dims(y.begin(), y.end());
    const memory::dims wei_dims =
        g > 1 ? memory::dims{g, O / g, w[1], w[2], w[3]} : memory::dims{O, w[1], w[2], w[3]};
    const Tag wei_tag = g > 1 ? Tag::goihw : Tag::oihw;
    const memory::desc bias_md({O}, DT::f32, Tag::x), user_dst_md(dst_dims, DT::f32, Tag::nchw);
    const dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        memory::desc(src_dims, DT::u8, Tag::any), memory::desc(wei_dims, DT::s8, Tag::any), bias_md,
        memory::desc(dst_dims, DT::f32, Tag::any), {pr.stride[0], pr.stride[1]},
        {pr.dilation[0] - 1, pr.dilation[1] - 1}, {pr.padding[0], pr.padding[2]},
        {pr.padding[1], pr.padding[3]});
    const dnnl::convolution_forward::primitive_desc pd(
        desc, int8_attr(output_scales(weights_, input_), input_.zero_point, relu_), d.engine);
    p->prim = dnnl::convolution_forward(pd);
    p->impl = pd.impl_info_str();

    p->src_buf.emplace(pd.src_desc().get_size());
    p->src = memory(pd.src_desc(), d.engine, p->src_buf->get());
    p->src_nhwc = pd.src_desc() == memory::desc(src_dims, DT::u8, Tag::nhwc);
    if (!p->src_nhwc) {
      const memory::desc nchw_md(src_dims, DT::u8, Tag::nchw);
      p->nchw_buf.emplace(nchw_md.get_size());
      p->nchw_src = memory(nchw_md, d.engine, p->nchw_buf->get());
      if (!(pd.src_desc() == nchw_md))
        p->src_reorder = dnnl::reorder(p->nchw_src, p->src);
      else
        p->src = p->nchw_src;
    }

    memory user_w(memory::desc(wei_dims, DT::s8, wei_tag), d.engine, mut(weights_.values.data()));
    p->weights_buf.emplace(pd.weights_desc().get_size());
    p->weights = memory(pd.weights_desc(), d.engine, p->weights_buf->get());
    dnnl::reorder(user_w, p->weights).execute(d.stream, user_w, p->weights);
    p->bias = memory(bias_md, d.engine, folded_bias_.data());

    p->user_dst = memory(user_dst_md, d.engine, DNNL_MEMORY_NONE);
    if (pd.dst_desc() == user_dst_md) {
      p->dst = p->user_dst;
    } else {
      p->dst_buf.emplace(pd.dst_desc().get_size());
      p->dst = memory(pd.dst_desc(), d.engine, p->dst_buf->get());
      p->dst_reorder = dnnl::reorder(p->dst, p->user_dst);
    }
    d.stream.wait();
  } catch (const dnnl::error& e) {
    fail<Error>(
        "quantized Conv2d: oneDNN could not create an int8 convolution for input {} and weight {}: {}",
        shape_str(x), shape_str(w), e.what());
  }
  p->args = {{DNNL_ARG_SRC, p->src},
             {DNNL_ARG_WEIGHTS, p->weights},
             {DNNL_ARG_BIAS, p->bias},
             {DNNL_ARG_DST, p->dst}};
  return *plans_.emplace(std::move(key), std::move(p)).first->second;
}

void QuantizedConv2d::forward(const float* x, const Shape& x_shape, float* y) {
  const Shape ys = output_shape(x_shape);
  if (shape_numel(ys) == 0) return;
  Plan& p = plan(x_shape);
  Dnnl& d = dnnl_ctx();
  const int64_t N = x_shape[0], C = x_shape[1], HW = x_shape[2] * x_shape[3];
  if (p.src_nhwc) {
    // NCHW float -> NHWC u8 in one pass, one image per task.
    uint8_t* out = static_cast<uint8_t*>(p.src_buf->get());
    const float inv = 1.0f / input_.scale;
    const int32_t zp = input_.zero_point;
    parallel_for(0, N, 1, [=](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        if (C == 1) {
          quantize_span(x + n * HW, HW, inv, zp, out + n * HW);
        } else {
          quantize_image_nhwc(x + n * C * HW, C, HW, inv, zp, out + n * C * HW);
        }
      }
    });
  } else {
    quantize_activations(x, N * C * HW, input_, static_cast<uint8_t*>(p.nchw_buf->get()));
    if (p.src_reorder) p.src_reorder->execute(d.stream, p.nchw_src, p.src);
  }
  p.user_dst.set_data_handle(y);
  p.prim.execute(d.stream, p.args);
  if (p.dst_reorder) p.dst_reorder->execute(d.stream, p.dst, p.user_dst);
  d.stream.wait();
}

Tensor QuantizedConv2d::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dtype() == DType::Float32, "quantized Conv2d: expected a Float32 input, got {}",
                   dtype_name(x.dtype()));
  Tensor y = Tensor::empty(output_shape(x.shape()));
  const Tensor c = x.contiguous_copy();
  forward(c.data<float>(), x.shape(), y.data<float>());
  return y;
}

std::string QuantizedConv2d::implementation(const Shape& x_shape) { return plan(x_shape).impl; }

// ---- model files -----------------------------------------------------------------------

void append_quantized_weights(const std::string& prefix, const QuantizedWeights& w,
                              std::vector<std::pair<std::string, Tensor>>& tensors,
                              std::map<std::string, std::string>& stored_dtypes) {
  w.validate(prefix);
  const std::string wname = prefix + ".weight_int8";
  tensors.emplace_back(wname, Tensor::from_buffer(w.values.data(), w.shape, DType::UInt8));
  stored_dtypes[wname] = "I8";
  tensors.emplace_back(prefix + ".weight_scale", Tensor::from_vector(w.scales));
}

QuantizedWeights read_quantized_weights(const SafetensorsFile& f, const std::string& prefix,
                                        WeightLayout layout) {
  const std::string wname = prefix + ".weight_int8", sname = prefix + ".weight_scale";
  const Tensor& wt = f.at(wname);
  const Tensor& st = f.at(sname);
  QuantizedWeights q;
  q.layout = layout;
  q.shape = wt.shape();
  const int64_t n = wt.numel();
  q.values.resize(n);
  if (wt.dtype() == DType::Int64) {  // stored I8 (or any integer type) loads as Int64
    const int64_t* p = wt.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      DEFT_CHECK(p[i] >= -127 && p[i] <= 127, "{}: tensor '{}' value {} at element {} is outside [-127, 127]",
                 f.source, wname, p[i], i);
      q.values[i] = static_cast<int8_t>(p[i]);
    }
  } else {
    DEFT_CHECK(wt.dtype() == DType::UInt8, "{}: tensor '{}' must be I8, got {}", f.source, wname,
               dtype_name(wt.dtype()));
    std::memcpy(q.values.data(), wt.data<uint8_t>(), static_cast<size_t>(n));
  }
  DEFT_CHECK(st.dtype() == DType::Float32 && st.dim() == 1, "{}: tensor '{}' must be F32 [O], got {} {}",
             f.source, sname, dtype_name(st.dtype()), shape_str(st.shape()));
  q.scales = st.to_vector<float>();
  q.validate(f.source + ": layer '" + prefix + "'");
  return q;
}

nlohmann::json layer_quant_json(const QuantizedWeights& w, const ActivationQuant& input,
                                const ObserverOptions& calibration) {
  nlohmann::json in = {{"dtype", "uint8"},
                       {"scale", input.scale},
                       {"zero_point", input.zero_point},
                       {"method", calibration_method_name(calibration.method)}};
  if (calibration.method == CalibrationMethod::Percentile) in["percentile"] = calibration.percentile;
  return {{"weight",
           {{"dtype", "int8"},
            {"scheme", "symmetric_per_channel"},
            {"axis", w.layout == WeightLayout::DenseInOut ? 1 : 0}}},
          {"input", std::move(in)}};
}

ActivationQuant input_quant_from_json(const nlohmann::json& j, const std::string& what) {
  DEFT_CHECK(j.is_object() && j.contains("input") && j["input"].is_object(),
             "{}: quantisation entry has no \"input\" object", what);
  const nlohmann::json& in = j["input"];
  DEFT_CHECK(in.value("dtype", "") == "uint8", "{}: input dtype must be \"uint8\"", what);
  DEFT_CHECK(in.contains("scale") && in["scale"].is_number() && in.contains("zero_point") &&
                 in["zero_point"].is_number_integer(),
             "{}: input needs a numeric \"scale\" and an integer \"zero_point\"", what);
  ActivationQuant q;
  q.scale = in["scale"].get<float>();
  const int64_t zp = in["zero_point"].get<int64_t>();
  DEFT_CHECK(zp >= 0 && zp <= 255, "{}: input zero point {} is outside [0, 255]", what, zp);
  q.zero_point = static_cast<int32_t>(zp);
  q.validate(what);
  return q;
}

}  // namespace deft::deploy
