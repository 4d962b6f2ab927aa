// The inference runtime's ops. Formulas follow the training code's kernels (nn/,
// autograd/, tensor/) so a Predictor reproduces Model::predict_proba to float
// rounding; the loops are their own, writing into the plan's buffers.
#include "deft/deploy/infer_ops.h"

#include <dnnl.h>
#include <fmt/format.h>
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <limits>
#include <optional>

#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/vecmath.h"

namespace deft::deploy::infer {

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752f;

// Elements per parallel task for cheap element-wise loops.
constexpr int64_t kElementGrain = 1 << 15;

int64_t planes_per_task(int64_t plane) {
  return std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(plane, 1));
}

template <class F>
void for_each_element(float* x, int64_t count, F f) {
  parallel_for(0, count, kElementGrain, [=](int64_t b, int64_t e) {
    float* __restrict p = x;
    for (int64_t i = b; i < e; ++i) p[i] = f(p[i]);
  });
}

// Runs a small op on one thread: waking the pool costs more than the work (on this
// VM 5-10 us, and with 2 threads a batch-1 MLP took 390 us instead of 7). oneDNN
// primitives are created and run under the same count (they size their scratch for
// the threads at creation). Below 2^22 multiply-adds (~40 us on one core).
class SerialIfSmall {
 public:
  explicit SerialIfSmall(double macs) : threads_(omp_in_parallel() ? 1 : num_threads()) {
    serial_ = threads_ > 1 && macs < double(1 << 22);
    if (serial_) omp_set_num_threads(1);
  }
  ~SerialIfSmall() {
    if (serial_) omp_set_num_threads(threads_);
  }
  SerialIfSmall(const SerialIfSmall&) = delete;
  SerialIfSmall& operator=(const SerialIfSmall&) = delete;

 private:
  int threads_;
  bool serial_ = false;
};

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

Tensor contiguous_float(const Tensor& t, const char* what) {
  DEFT_INTERNAL_CHECK(t.defined() && t.dtype() == DType::Float32, "{}: expects float32 weights", what);
  return t.is_contiguous() ? t.clone() : t.contiguous_copy();  // owned: folding edits it
}

}  // namespace

// ---- activations -------------------------------------------------------------------------------

bool Activation::parse(const std::string& name, double p, Activation* out) {
  Activation a;
  a.param = static_cast<float>(p);
  if (name.empty() || name == "linear")
    a.kind = Kind::None;
  else if (name == "relu")
    a.kind = Kind::Relu;
  else if (name == "leaky_relu")
    a.kind = Kind::LeakyRelu;
  else if (name == "elu")
    a.kind = Kind::Elu;
  else if (name == "gelu")
    a.kind = Kind::Gelu;
  else if (name == "silu" || name == "swish")
    a.kind = Kind::Silu;
  else if (name == "sigmoid")
    a.kind = Kind::Sigmoid;
  else if (name == "tanh")
    a.kind = Kind::Tanh;
  else
    return false;
  *out = a;
  return true;
}

std::string Activation::name() const {
  switch (kind) {
    case Kind::None:
      return "identity";
    case Kind::Relu:
      return "relu";
    case Kind::LeakyRelu:
      return "leaky_relu";
    case Kind::Elu:
      return "elu";
    case Kind::Gelu:
      return "gelu";
    case Kind::Silu:
      return "silu";
    case Kind::Sigmoid:
      return "sigmoid";
    case Kind::Tanh:
      return "tanh";
  }
  return "?";
}

void apply_activation(const Activation& act, float* x, int64_t count) {
  const float a = act.param;
  switch (act.kind) {
    case Activation::Kind::None:
      return;
    case Activation::Kind::Relu:
      return for_each_element(x, count, [](float v) { return v > 0.0f ? v : 0.0f; });
    case Activation::Kind::LeakyRelu:
      return for_each_element(x, count, [a](float v) { return v > 0.0f ? v : v * a; });
    case Activation::Kind::Elu:
      return for_each_element(x, count, [a](float v) { return v > 0.0f ? v : a * (vm::exp(v) - 1.0f); });
    case Activation::Kind::Gelu:
      return for_each_element(x, count, [](float v) { return 0.5f * v * (1.0f + std::erf(v * kInvSqrt2)); });
    case Activation::Kind::Silu:
      return for_each_element(x, count, [](float v) { return v * vm::sigmoid(v); });
    case Activation::Kind::Sigmoid:
      return for_each_element(x, count, [](float v) { return vm::sigmoid(v); });
    case Activation::Kind::Tanh:
      return for_each_element(x, count, [](float v) { return vm::tanh(v); });
  }
}

// ---- linear ----------------------------------------------------------------------------------------

LinearOp::LinearOp(const Shape& input, Tensor kernel, Tensor bias) {
  DEFT_INTERNAL_CHECK(kernel.dim() == 2 && !input.empty() && input.back() == kernel.size(0),
                      "linear: kernel {} does not fit input {}", shape_str(kernel.shape()), shape_str(input));
  in_ = kernel.size(0);
  out_ = kernel.size(1);
  rows_per_example_ = in_ == 0 ? 0 : shape_numel(input) / in_;
  kernel_ = contiguous_float(kernel, "linear");
  bias_ = bias.defined() ? contiguous_float(bias, "linear") : Tensor::zeros({out_});
  input_shapes = {input};
  output_shape = input;
  output_shape.back() = out_;
}

std::string LinearOp::describe() const {
  return fmt::format("linear {}->{}{}", in_, out_, act_.none() ? "" : " + " + act_.name());
}

bool LinearOp::fuse_activation(const Activation& act) {
  act_ = act;
  cache_.clear();
  return true;
}

bool LinearOp::fold_channel_affine(const std::vector<float>& scale, const std::vector<float>& shift) {
  // BatchNorm's channel is axis 0 of the per-example shape: the units only when the
  // output is [units].
  if (output_shape.size() != 1 || static_cast<int64_t>(scale.size()) != out_) return false;
  float* w = kernel_.data<float>();
  float* b = bias_.data<float>();
  for (int64_t i = 0; i < in_; ++i)
    for (int64_t j = 0; j < out_; ++j) w[i * out_ + j] *= scale[j];
  for (int64_t j = 0; j < out_; ++j) b[j] = b[j] * scale[j] + shift[j];
  cache_.clear();
  return true;
}

struct LinearOp::Primitive {
  dnnl::stream stream{cpu_engine()};
  dnnl::matmul prim;
  dnnl::memory src, weights, bias, dst;
  bool activation_after = false;
};

LinearOp::~LinearOp() = default;

LinearOp::Primitive& LinearOp::primitive(int64_t rows) {
  auto it = cache_.find(rows);
  if (it != cache_.end()) return *it->second;
  if (cache_.size() >= 8) cache_.clear();  // a caller cycling through batch sizes: keep memory bounded
  using dnnl::memory;
  using Tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  const dnnl::engine& e = cpu_engine();
  auto p = std::make_unique<Primitive>();
  const memory::desc src({rows, in_}, f32, Tag::ab), dst({rows, out_}, f32, Tag::ab),
      bias({1, out_}, f32, Tag::ab), user_w({in_, out_}, f32, Tag::ab);
  dnnl::primitive_attr attr;
  if (act_.kind == Activation::Kind::Relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  } else {
    p->activation_after = !act_.none();
  }
  dnnl::matmul::primitive_desc pd;
  try {
    pd = dnnl::matmul::primitive_desc(
        dnnl::matmul::desc(src, memory::desc({in_, out_}, f32, Tag::any), bias, dst), attr, e);
  } catch (const dnnl::error& err) {
    fail<Error>("linear: oneDNN has no matmul for {}: {}", describe(), err.what());
  }
  p->prim = dnnl::matmul(pd);
  p->src = memory(src, e, DNNL_MEMORY_NONE);
  p->dst = memory(dst, e, DNNL_MEMORY_NONE);
  p->bias = memory(bias, e, bias_.data<float>());
  memory w(user_w, e, kernel_.data<float>());
  if (pd.weights_desc() == user_w) {
    p->weights = w;
  } else {
    p->weights = memory(pd.weights_desc(), e);
    dnnl::reorder(w, p->weights).execute(p->stream, w, p->weights);
    p->stream.wait();
  }
  return *cache_.emplace(rows, std::move(p)).first->second;
}

void LinearOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const int64_t rows = n * rows_per_example_;
  if (rows == 0) return;
  const SerialIfSmall serial(static_cast<double>(rows) * static_cast<double>(in_) *
                             static_cast<double>(out_));
  Primitive& p = primitive(rows);
  p.src.set_data_handle(const_cast<float*>(inputs[0]));
  p.dst.set_data_handle(y);
  p.prim.execute(
      p.stream,
      {{DNNL_ARG_SRC, p.src}, {DNNL_ARG_WEIGHTS, p.weights}, {DNNL_ARG_BIAS, p.bias}, {DNNL_ARG_DST, p.dst}});
  p.stream.wait();
  if (p.activation_after) apply_activation(act_, y, rows * out_);
}

// ---- convolution --------------------------------------------------------------------------------

struct ConvOp::Primitive {
  dnnl::stream stream{cpu_engine()};
  dnnl::convolution_forward prim;
  dnnl::memory src_user, src_inner, dst_user, dst_inner, weights, bias;
  std::optional<dnnl::reorder> src_reorder, dst_reorder;
  bool activation_after = false;  // act_ runs in a pass of ours after the primitive
  std::string impl;
};

ConvOp::ConvOp(const ConvGeometry& g, Tensor kernel, Tensor bias) : g_(g) {
  DEFT_INTERNAL_CHECK(kernel.dim() == 4 && kernel.size(0) == g.O && kernel.size(1) * g.groups == g.C,
                      "conv2d: kernel {} does not fit {} input channels", shape_str(kernel.shape()), g.C);
  kernel_ = contiguous_float(kernel, "conv2d");
  bias_ = bias.defined() ? contiguous_float(bias, "conv2d") : Tensor::zeros({g.O});
  input_shapes = {{g.C, g.H, g.W}};
  output_shape = {g.O, g.Ho, g.Wo};
}

ConvOp::~ConvOp() = default;

std::string ConvOp::describe() const {
  return fmt::format("conv2d {}->{} {}x{}/{}{}{}", g_.C, g_.O, g_.kh, g_.kw, g_.stride[0],
                     g_.groups > 1 ? fmt::format(" groups {}", g_.groups) : "",
                     act_.none() ? "" : " + " + act_.name());
}

bool ConvOp::fuse_activation(const Activation& act) {
  act_ = act;
  cache_.clear();
  return true;
}

bool ConvOp::fold_channel_affine(const std::vector<float>& scale, const std::vector<float>& shift) {
  if (static_cast<int64_t>(scale.size()) != g_.O) return false;
  const int64_t per = kernel_.numel() / g_.O;
  float* w = kernel_.data<float>();
  float* b = bias_.data<float>();
  for (int64_t o = 0; o < g_.O; ++o) {
    for (int64_t i = 0; i < per; ++i) w[o * per + i] *= scale[o];
    b[o] = b[o] * scale[o] + shift[o];
  }
  cache_.clear();
  return true;
}

ConvOp::Primitive& ConvOp::primitive(int64_t n) {
  auto it = cache_.find(n);
  if (it != cache_.end()) return *it->second;
  if (cache_.size() >= 8) cache_.clear();  // a caller cycling through batch sizes: keep memory bounded
  using dnnl::memory;
  using Tag = memory::format_tag;
  const auto f32 = memory::data_type::f32;
  const dnnl::engine& e = cpu_engine();
  const memory::dims src{n, g_.C, g_.H, g_.W}, dst{n, g_.O, g_.Ho, g_.Wo}, bias{g_.O};
  const memory::dims wei = g_.groups > 1
                               ? memory::dims{g_.groups, g_.O / g_.groups, g_.C / g_.groups, g_.kh, g_.kw}
                               : memory::dims{g_.O, g_.C, g_.kh, g_.kw};
  const Tag wei_tag = g_.groups > 1 ? Tag::goihw : Tag::oihw;
  // Few input channels (an image network's first layer): NCHW throughout, where oneDNN
  // picks its GEMM convolution (tensor/conv.cpp measured it 2.4x faster than blocked
  // plus reorders); its post-ops are slow, so the activation runs afterwards.
  const bool plain = g_.C <= 4;
  auto desc = [&](const memory::dims& d, Tag t) { return memory::desc(d, f32, plain ? t : Tag::any); };
  auto p = std::make_unique<Primitive>();
  dnnl::primitive_attr attr;
  if (!plain && act_.kind == Activation::Kind::Relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  } else {
    p->activation_after = !act_.none();
  }
  const dnnl::convolution_forward::desc d(
      dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, desc(src, Tag::nchw),
      desc(wei, wei_tag), memory::desc(bias, f32, Tag::x), desc(dst, Tag::nchw), {g_.stride[0], g_.stride[1]},
      {g_.dilation[0] - 1, g_.dilation[1] - 1}, {g_.padding[0], g_.padding[2]},
      {g_.padding[1], g_.padding[3]});
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = dnnl::convolution_forward::primitive_desc(d, attr, e);
  } catch (const dnnl::error& err) {
    fail<Error>("conv2d: oneDNN has no convolution for {}: {}", describe(), err.what());
  }
  p->prim = dnnl::convolution_forward(pd);
  p->impl = pd.impl_info_str();
  const memory::desc src_plain(src, f32, Tag::nchw), dst_plain(dst, f32, Tag::nchw);
  p->src_user = memory(src_plain, e, DNNL_MEMORY_NONE);
  p->dst_user = memory(dst_plain, e, DNNL_MEMORY_NONE);
  if (pd.src_desc() == src_plain) {
    p->src_inner = p->src_user;
  } else {
    p->src_inner = memory(pd.src_desc(), e);  // allocated once, reused by every call
    p->src_reorder = dnnl::reorder(p->src_user, p->src_inner);
  }
  if (pd.dst_desc() == dst_plain) {
    p->dst_inner = p->dst_user;
  } else {
    p->dst_inner = memory(pd.dst_desc(), e);
    p->dst_reorder = dnnl::reorder(p->dst_inner, p->dst_user);
  }
  // The weights are reordered once, here, into the layout the primitive wants.
  memory user_w(memory::desc(wei, f32, wei_tag), e, kernel_.data<float>());
  if (pd.weights_desc() == user_w.get_desc()) {
    p->weights = user_w;
  } else {
    p->weights = memory(pd.weights_desc(), e);
    dnnl::reorder(user_w, p->weights).execute(p->stream, user_w, p->weights);
  }
  p->bias = memory(memory::desc(bias, f32, Tag::x), e, bias_.data<float>());
  p->stream.wait();
  return *cache_.emplace(n, std::move(p)).first->second;
}

void ConvOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  if (n == 0) return;
  const SerialIfSmall serial(static_cast<double>(n) *
                             static_cast<double>(g_.O * (g_.C / g_.groups) * g_.kh * g_.kw) *
                             static_cast<double>(g_.Ho * g_.Wo));
  Primitive& p = primitive(n);
  p.src_user.set_data_handle(const_cast<float*>(inputs[0]));
  p.dst_user.set_data_handle(y);
  if (p.src_reorder) p.src_reorder->execute(p.stream, p.src_user, p.src_inner);
  p.prim.execute(p.stream, {{DNNL_ARG_SRC, p.src_inner},
                            {DNNL_ARG_WEIGHTS, p.weights},
                            {DNNL_ARG_BIAS, p.bias},
                            {DNNL_ARG_DST, p.dst_inner}});
  if (p.dst_reorder) p.dst_reorder->execute(p.stream, p.dst_inner, p.dst_user);
  p.stream.wait();
  if (p.activation_after) apply_activation(act_, y, n * g_.O * g_.Ho * g_.Wo);
}

// ---- pooling ---------------------------------------------------------------------------------------

PoolOp::PoolOp(const PoolGeometry& g) : g_(g) {
  input_shapes = {{g.C, g.H, g.W}};
  output_shape = g.kind == PoolGeometry::Kind::GlobalAvg ? Shape{g.C} : Shape{g.C, g.Ho, g.Wo};
}

std::string PoolOp::kind() const {
  switch (g_.kind) {
    case PoolGeometry::Kind::Max:
      return "max_pool2d";
    case PoolGeometry::Kind::Avg:
      return "avg_pool2d";
    case PoolGeometry::Kind::AdaptiveAvg:
      return "adaptive_avg_pool2d";
    case PoolGeometry::Kind::GlobalAvg:
      return "global_avg_pool2d";
  }
  return "pool";
}

void PoolOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const PoolGeometry g = g_;
  const float* x = inputs[0];
  const int64_t HW = g.H * g.W;
  const int64_t planes = n * g.C;
  if (g.kind == PoolGeometry::Kind::GlobalAvg) {
    parallel_for(0, planes, planes_per_task(HW), [=](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const float* __restrict p = x + c * HW;
        float s = 0.0f;
        for (int64_t i = 0; i < HW; ++i) s += p[i];
        y[c] = s / static_cast<float>(HW);
      }
    });
    return;
  }
  const int64_t out_plane = g.Ho * g.Wo;
  if (g.kind == PoolGeometry::Kind::AdaptiveAvg) {
    // PyTorch's bins: [floor(i*H/Ho), ceil((i+1)*H/Ho)).
    auto bins = [](int64_t in, int64_t k) {
      std::vector<std::array<int64_t, 2>> b(static_cast<size_t>(k));
      for (int64_t i = 0; i < k; ++i) b[i] = {i * in / k, ((i + 1) * in + k - 1) / k};
      return b;
    };
    const auto hb = bins(g.H, g.Ho), wb = bins(g.W, g.Wo);
    parallel_for(0, planes, planes_per_task(HW), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t i = 0; i < g.Ho; ++i)
          for (int64_t j = 0; j < g.Wo; ++j) {
            float s = 0.0f;
            for (int64_t h = hb[i][0]; h < hb[i][1]; ++h)
              for (int64_t w = wb[j][0]; w < wb[j][1]; ++w) s += x[c * HW + h * g.W + w];
            y[c * out_plane + i * g.Wo + j] =
                s / static_cast<float>((hb[i][1] - hb[i][0]) * (wb[j][1] - wb[j][0]));
          }
    });
    return;
  }
  if (g.kind == PoolGeometry::Kind::Max) {
    const bool tiled2x2 = g.kernel == std::array<int64_t, 2>{2, 2} &&
                          g.stride == std::array<int64_t, 2>{2, 2} &&
                          g.padding == std::array<int64_t, 4>{0, 0, 0, 0};
    parallel_for(0, planes, planes_per_task(HW), [=](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const float* xp = x + c * HW;
        float* yp = y + c * out_plane;
        if (tiled2x2) {
          for (int64_t oh = 0; oh < g.Ho; ++oh) {
            const float* __restrict r0 = xp + 2 * oh * g.W;
            const float* __restrict r1 = r0 + g.W;
            float* __restrict yr = yp + oh * g.Wo;
            // The maximum, NaN propagating (as max_pool2d).
            int64_t ow = 0;
#ifdef __AVX512F__
            // 16 windows at a time: the two rows' maximum, then even against odd columns.
            const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
            auto max_nan = [](__m512 a, __m512 b) {  // b where b > a or b is NaN
              const __mmask16 take =
                  _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
              return _mm512_mask_blend_ps(take, a, b);
            };
            for (; ow < g.Wo; ow += 16) {
              // The last group (or a row narrower than 16 windows) loads and stores under masks.
              const int64_t k = std::min<int64_t>(16, g.Wo - ow);
              const auto m_lo = static_cast<__mmask16>(k >= 8 ? 0xFFFF : (1u << (2 * k)) - 1);
              const auto m_hi = static_cast<__mmask16>(k == 16 ? 0xFFFF
                                                       : k > 8 ? (1u << (2 * k - 16)) - 1
                                                               : 0);
              const auto m_out = static_cast<__mmask16>(k == 16 ? 0xFFFF : (1u << k) - 1);
              const float* a = r0 + 2 * ow;
              const float* b = r1 + 2 * ow;
              const __m512 lo = max_nan(_mm512_maskz_loadu_ps(m_lo, a), _mm512_maskz_loadu_ps(m_lo, b));
              const __m512 hi =
                  max_nan(_mm512_maskz_loadu_ps(m_hi, a + 16), _mm512_maskz_loadu_ps(m_hi, b + 16));
              _mm512_mask_storeu_ps(
                  yr + ow, m_out,
                  max_nan(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi)));
            }
#endif
            for (; ow < g.Wo; ++ow) {
              const float v0 = r0[2 * ow], v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
              const float a = (v2 > v0) | (v2 != v2) ? v2 : v0;
              const float b = (v3 > v1) | (v3 != v3) ? v3 : v1;
              yr[ow] = (b > a) | (b != b) ? b : a;
            }
          }
          continue;
        }
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const int64_t h0 = oh * g.stride[0] - g.padding[0];
          const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + g.kernel[0], g.H);
          for (int64_t ow = 0; ow < g.Wo; ++ow) {
            const int64_t w0 = ow * g.stride[1] - g.padding[2];
            const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + g.kernel[1], g.W);
            float best = -std::numeric_limits<float>::infinity();
            for (int64_t h = hs; h < he; ++h)
              for (int64_t w = ws; w < we; ++w) {
                const float v = xp[h * g.W + w];
                if (v > best || std::isnan(v)) best = v;
              }
            yp[oh * g.Wo + ow] = best;
          }
        }
      }
    });
    return;
  }
  // Average pooling, with the divisor rules of avg_pool2d (count_include_pad, ceil_mode).
  parallel_for(0, planes, planes_per_task(HW), [=](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* xp = x + c * HW;
      float* yp = y + c * out_plane;
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t h0 = oh * g.stride[0] - g.padding[0];
        const int64_t hend = std::min(h0 + g.kernel[0], g.H + g.padding[1]);
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(hend, g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t w0 = ow * g.stride[1] - g.padding[2];
          const int64_t wend = std::min(w0 + g.kernel[1], g.W + g.padding[3]);
          const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(wend, g.W);
          const int64_t count = g.count_include_pad ? (hend - h0) * (wend - w0) : (he - hs) * (we - ws);
          float s = 0.0f;
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w) s += xp[h * g.W + w];
          yp[oh * g.Wo + ow] = s / static_cast<float>(std::max<int64_t>(count, 1));
        }
      }
    }
  });
}

// ---- normalisation ----------------------------------------------------------------------------------

AffineOp::AffineOp(const Shape& shape, std::vector<float> scale, std::vector<float> shift)
    : scale_(std::move(scale)), shift_(std::move(shift)) {
  DEFT_INTERNAL_CHECK(!shape.empty() && shape[0] == static_cast<int64_t>(scale_.size()),
                      "affine: {} scales for shape {}", scale_.size(), shape_str(shape));
  channels_ = shape[0];
  inner_ = channels_ == 0 ? 0 : shape_numel(shape) / channels_;
  input_shapes = {shape};
  output_shape = shape;
}

bool AffineOp::fuse_activation(const Activation& act) {
  act_ = act;
  return true;
}

void AffineOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const float* x = inputs[0];
  const int64_t C = channels_, S = inner_;
  const float* sc = scale_.data();
  const float* sh = shift_.data();
  const Activation act = act_;
  parallel_for(0, n * C, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(S, 1)),
               [=](int64_t p0, int64_t p1) {
                 for (int64_t p = p0; p < p1; ++p) {
                   const int64_t c = p % C;
                   const float a = sc[c], b = sh[c];
                   const float* __restrict xi = x + p * S;
                   float* __restrict yo = y + p * S;
                   for (int64_t i = 0; i < S; ++i) yo[i] = xi[i] * a + b;
                 }
                 apply_activation(act, y + p0 * S, (p1 - p0) * S);
               });
}

LayerNormOp::LayerNormOp(const Shape& shape, std::vector<float> gamma, std::vector<float> beta, float eps)
    : gamma_(std::move(gamma)), beta_(std::move(beta)), eps_(eps) {
  DEFT_INTERNAL_CHECK(!shape.empty(), "layer_norm: needs a feature axis");
  const auto d = static_cast<size_t>(shape.back());
  if (gamma_.empty()) gamma_.assign(d, 1.0f);
  if (beta_.empty()) beta_.assign(d, 0.0f);
  input_shapes = {shape};
  output_shape = shape;
}

bool LayerNormOp::fuse_activation(const Activation& act) {
  act_ = act;
  return true;
}

void LayerNormOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const float* x = inputs[0];
  const int64_t D = output_shape.back();
  const int64_t rows = D == 0 ? 0 : n * shape_numel(output_shape) / D;
  const float* w = gamma_.data();
  const float* b = beta_.data();
  const float eps = eps_;
  const Activation act = act_;
  parallel_for(0, rows, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(D, 1)),
               [=](int64_t r0, int64_t r1) {
                 for (int64_t r = r0; r < r1; ++r) {
                   const float* xr = x + r * D;
                   float* yr = y + r * D;
                   float s = 0.0f;
                   for (int64_t j = 0; j < D; ++j) s += xr[j];
                   const float mean = s / static_cast<float>(D);
                   float v = 0.0f;
                   for (int64_t j = 0; j < D; ++j) v += (xr[j] - mean) * (xr[j] - mean);
                   const float rstd = 1.0f / std::sqrt(v / static_cast<float>(D) + eps);
                   for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * rstd * w[j] + b[j];
                 }
                 apply_activation(act, y + r0 * D, (r1 - r0) * D);
               });
}

// ---- element-wise and joins -------------------------------------------------------------------------

ActivationOp::ActivationOp(const Shape& shape, Activation act) : act_(act) {
  input_shapes = {shape};
  output_shape = shape;
}

void ActivationOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const int64_t count = n * shape_numel(output_shape);
  if (inputs[0] != y) std::memcpy(y, inputs[0], static_cast<size_t>(count) * sizeof(float));
  apply_activation(act_, y, count);
}

SoftmaxOp::SoftmaxOp(const Shape& shape, int64_t axis) {
  DEFT_INTERNAL_CHECK(axis >= 0 && axis < static_cast<int64_t>(shape.size()), "softmax: axis {} of shape {}",
                      axis, shape_str(shape));
  outer_ = 1;
  inner_ = 1;
  for (int64_t i = 0; i < axis; ++i) outer_ *= shape[i];
  len_ = shape[axis];
  for (size_t i = axis + 1; i < shape.size(); ++i) inner_ *= shape[i];
  input_shapes = {shape};
  output_shape = shape;
}

void SoftmaxOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const float* x = inputs[0];
  const int64_t L = len_, I = inner_;
  // One (example, outer, inner) line at a time; lines along the last axis are contiguous.
  parallel_for(0, n * outer_ * I, std::max<int64_t>(1, 8192 / std::max<int64_t>(L, 1)),
               [=](int64_t l0, int64_t l1) {
                 for (int64_t l = l0; l < l1; ++l) {
                   const int64_t base = (l / I) * L * I + l % I;
                   float m = -INFINITY;
                   for (int64_t i = 0; i < L; ++i) m = x[base + i * I] > m ? x[base + i * I] : m;
                   if (!std::isfinite(m)) m = 0.0f;
                   float s = 0.0f;
                   for (int64_t i = 0; i < L; ++i) {
                     const float e = vm::exp(x[base + i * I] - m);
                     y[base + i * I] = e;
                     s += e;
                   }
                   const float inv = 1.0f / s;
                   for (int64_t i = 0; i < L; ++i) y[base + i * I] *= inv;
                 }
               });
}

AddOp::AddOp(const std::vector<Shape>& inputs, Activation act) : act_(act) {
  input_shapes = inputs;
  output_shape = inputs.at(0);
}

bool AddOp::fuse_activation(const Activation& act) {
  act_ = act;
  return true;
}

void AddOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const int64_t count = n * shape_numel(output_shape);
  const Activation act = act_;
  parallel_for(0, count, kElementGrain, [&](int64_t b, int64_t e) {
    float* __restrict o = y;
    const float* __restrict a0 = inputs[0];
    const float* __restrict a1 = inputs[1];
    for (int64_t i = b; i < e; ++i) o[i] = a0[i] + a1[i];
    for (size_t k = 2; k < inputs.size(); ++k) {
      const float* __restrict ak = inputs[k];
      for (int64_t i = b; i < e; ++i) o[i] += ak[i];
    }
    apply_activation(act, y + b, e - b);
  });
}

ConcatOp::ConcatOp(const std::vector<Shape>& inputs) {
  input_shapes = inputs;
  output_shape = inputs.at(0);
  for (size_t i = 1; i < inputs.size(); ++i) output_shape[0] += inputs[i][0];
}

void ConcatOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const int64_t out = shape_numel(output_shape);
  std::vector<int64_t> sizes;
  for (const Shape& s : input_shapes) sizes.push_back(shape_numel(s));
  parallel_for(
      0, n, std::max<int64_t>(1, kElementGrain / std::max<int64_t>(out, 1)), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float* dst = y + i * out;
          for (size_t k = 0; k < sizes.size(); ++k) {
            std::memcpy(dst, inputs[k] + i * sizes[k], static_cast<size_t>(sizes[k]) * sizeof(float));
            dst += sizes[k];
          }
        }
      });
}

EmbeddingOp::EmbeddingOp(const Shape& input, Tensor table) : table_(contiguous_float(table, "embedding")) {
  input_shapes = {input};
  output_shape = input;
  output_shape.push_back(table_.size(1));
}

void EmbeddingOp::run(std::span<const float* const> inputs, float* y, int64_t n) {
  const int64_t ids = n * shape_numel(input_shapes[0]);
  const int64_t V = table_.size(0), D = table_.size(1);
  const float* x = inputs[0];
  const float* t = table_.data<float>();
  for (int64_t i = 0; i < ids; ++i) {
    const float v = x[i];
    DEFT_CHECK(v >= 0 && v < static_cast<float>(V) && v == std::floor(v),
               "embedding: token id {} (example {}) is not in the vocabulary [0, {})", v,
               i / std::max<int64_t>(1, shape_numel(input_shapes[0])), V);
    std::memcpy(y + i * D, t + static_cast<int64_t>(v) * D, static_cast<size_t>(D) * sizeof(float));
  }
}

}  // namespace deft::deploy::infer
