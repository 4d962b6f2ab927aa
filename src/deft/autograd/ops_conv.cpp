// Convolution, pooling and channel dropout ops: forward and backward side by side.
// Convolutions call the cached oneDNN primitives of tensor/conv.cpp; pooling runs
// on its own loops, one (n, c) plane per task, so results do not depend on the
// thread count.
#include "deft/autograd/ops_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"

namespace deft {

namespace k = kernel;

namespace {

Tensor nchw_input(const Tensor& x, const char* op) {
  DEFT_CHECK(x.defined(), "{}: input is undefined", op);
  DEFT_CHECK(x.dtype() == DType::Float32, "{}: expects float32 input, got {}", op, dtype_name(x.dtype()));
  DEFT_CHECK_SHAPE(x.dim() == 4, "{}: expects input [N, C, H, W], got {}", op, shape_str(x.shape()));
  return k::contiguous(x);
}

std::string params_str(const Conv2dParams& p) {
  return fmt::format("stride ({}, {}), padding (top {}, bottom {}, left {}, right {}), dilation ({}, {}), groups {}",
                     p.stride[0], p.stride[1], p.padding[0], p.padding[1], p.padding[2], p.padding[3],
                     p.dilation[0], p.dilation[1], p.groups);
}

// Planes per parallel task: about 64K elements of work each.
int64_t planes_per_task(int64_t plane_size) { return std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(plane_size, 1)); }

}  // namespace

int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_total, int64_t dilation) {
  return (in + pad_total - dilation * (kernel - 1) - 1) / stride + 1;
}

std::array<int64_t, 2> same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>(0, (out - 1) * stride + dilation * (kernel - 1) + 1 - in);
  return {total / 2, total - total / 2};
}

// ---- conv2d ----------------------------------------------------------------------------------

static const OpDef& kConv2d = define_op("conv2d");
static const OpDef& kConv2dRelu = define_op("conv2d_relu");

namespace {

Tensor conv2d_impl(const Tensor& x_in, const Tensor& w_in, const Tensor& b_in, const Conv2dParams& p, bool relu) {
  const Tensor x = nchw_input(x_in, "conv2d");
  DEFT_CHECK(w_in.defined() && w_in.dtype() == DType::Float32, "conv2d: weight must be a defined float32 tensor");
  const Tensor w = k::contiguous(w_in);
  DEFT_CHECK_SHAPE(w.dim() == 4, "conv2d: weight must be [O, C/groups, kh, kw], got {}", shape_str(w.shape()));
  DEFT_CHECK(p.groups >= 1 && p.stride[0] >= 1 && p.stride[1] >= 1 && p.dilation[0] >= 1 && p.dilation[1] >= 1,
             "conv2d: stride, dilation and groups must be positive ({})", params_str(p));
  for (int64_t pad : p.padding) DEFT_CHECK(pad >= 0, "conv2d: padding must be non-negative ({})", params_str(p));
  const int64_t C = x.size(1), O = w.size(0);
  DEFT_CHECK_SHAPE(C % p.groups == 0 && O % p.groups == 0 && w.size(1) * p.groups == C,
                   "conv2d: input {} does not match weight {} with {} group(s) (weight must be [O, C/groups, kh, kw], "
                   "O and C divisible by groups)",
                   shape_str(x.shape()), shape_str(w.shape()), p.groups);
  const int64_t Ho = conv_output_size(x.size(2), w.size(2), p.stride[0], p.padding[0] + p.padding[1], p.dilation[0]);
  const int64_t Wo = conv_output_size(x.size(3), w.size(3), p.stride[1], p.padding[2] + p.padding[3], p.dilation[1]);
  DEFT_CHECK_SHAPE(Ho >= 1 && Wo >= 1, "conv2d: kernel {}x{} does not fit input {} ({})", w.size(2), w.size(3),
                   shape_str(x.shape()), params_str(p));
  Tensor b;
  if (b_in.defined()) {
    DEFT_CHECK(b_in.dtype() == DType::Float32, "conv2d: bias must be float32");
    DEFT_CHECK_SHAPE(b_in.dim() == 1 && b_in.size(0) == O, "conv2d: bias {} does not match weight {} (expected [{}])",
                     shape_str(b_in.shape()), shape_str(w.shape()), O);
    b = k::contiguous(b_in);
  }
  const bool grad = needs_grad({x_in, w_in, b_in});
  Tensor y = k::conv2d_forward(x, w, b, p, grad, relu);
  if (!grad) return y;
  return record(relu ? kConv2dRelu : kConv2d, {x_in, w_in, b_in}, y,
                [xd = x.detach(), wd = w.detach(), yd = relu ? y.detach() : Tensor(), p,
                 has_bias = b.defined()](const Tensor& g_in, NeedsGrad need) {
                  Tensor g = k::contiguous(g_in);
                  if (yd.defined()) {  // the ReLU's gradient: pass where the output is positive
                    Tensor masked = Tensor::empty(g.shape());
                    const float* __restrict pg = g.data<float>();
                    const float* __restrict py = yd.data<float>();
                    float* __restrict pm = masked.data<float>();
                    // Pointers by value and a select: the loop vectorises (no reloads, no branch).
                    parallel_for(0, g.numel(), 1 << 16, [=](int64_t i0, int64_t i1) {
                      for (int64_t i = i0; i < i1; ++i) pm[i] = py[i] > 0.0f ? pg[i] : 0.0f;
                    });
                    g = masked;
                  }
                  Tensor gx, gw, gb;
                  if (need[0]) gx = k::conv2d_backward_data(g, wd, xd.shape(), p);
                  if (need[1] || (has_bias && need[2]))
                    k::conv2d_backward_weights(xd, g, wd.shape(), p, &gw, has_bias ? &gb : nullptr);
                  if (!need[1]) gw = Tensor();
                  return Grads{gx, gw, gb};
                });
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  return conv2d_impl(x, w, b, p, false);
}

Tensor conv2d_relu(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  return conv2d_impl(x, w, b, p, true);
}

// ---- pooling -----------------------------------------------------------------------------------

namespace {

struct PoolGeometry {
  int64_t N, C, H, W, Ho, Wo;
};

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad_before, int64_t pad_after,
                         bool ceil_mode) {
  const int64_t span = in + pad_before + pad_after - kernel;
  if (span < 0) return 0;  // the window does not fit
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  // PyTorch's rule: the last window must start inside the input or the leading padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_before) --out;
  return out;
}

PoolGeometry pool_geometry(const Tensor& x, const Pool2dParams& p, const char* op) {
  DEFT_CHECK(p.kernel[0] >= 1 && p.kernel[1] >= 1 && p.stride[0] >= 1 && p.stride[1] >= 1,
             "{}: kernel and stride must be positive, got kernel ({}, {}), stride ({}, {})", op, p.kernel[0],
             p.kernel[1], p.stride[0], p.stride[1]);
  for (int i = 0; i < 4; ++i)
    DEFT_CHECK(p.padding[i] >= 0 && p.padding[i] <= p.kernel[i / 2] / 2,
               "{}: padding must be between 0 and half the kernel, got padding ({}, {}, {}, {}) for kernel ({}, {})",
               op, p.padding[0], p.padding[1], p.padding[2], p.padding[3], p.kernel[0], p.kernel[1]);
  PoolGeometry g{x.size(0), x.size(1), x.size(2), x.size(3), 0, 0};
  g.Ho = pool_output_size(g.H, p.kernel[0], p.stride[0], p.padding[0], p.padding[1], p.ceil_mode);
  g.Wo = pool_output_size(g.W, p.kernel[1], p.stride[1], p.padding[2], p.padding[3], p.ceil_mode);
  DEFT_CHECK_SHAPE(g.Ho >= 1 && g.Wo >= 1, "{}: kernel ({}, {}) does not fit input {}", op, p.kernel[0], p.kernel[1],
                   shape_str(x.shape()));
  return g;
}

}  // namespace

static const OpDef& kMaxPool2d = define_op("max_pool2d");

Tensor max_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  const Tensor x = nchw_input(x_in, "max_pool2d");
  const PoolGeometry g = pool_geometry(x, p, "max_pool2d");
  const bool grad = needs_grad({x_in});
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const int64_t HW = g.H * g.W, out_plane = g.Ho * g.Wo;
  DEFT_CHECK_SHAPE(HW < (int64_t{1} << 31), "max_pool2d: input plane {}x{} is too large", g.H, g.W);
  // Argmax per output (index within its input plane), kept for backward.
  auto arg = grad ? std::make_shared<std::vector<int32_t>>(static_cast<size_t>(g.N * g.C * out_plane)) : nullptr;
  const float* px = x.data<float>();
  float* py = y.data<float>();
  int32_t* pa = arg ? arg->data() : nullptr;
  // Non-overlapping 2x2 windows (the usual case) take a loop without bounds checks,
  // and backward writes every input element once instead of zeroing and scattering.
  const bool tiled2x2 = p.kernel == std::array<int64_t, 2>{2, 2} && p.stride == std::array<int64_t, 2>{2, 2} &&
                        p.padding == std::array<int64_t, 4>{0, 0, 0, 0} && g.H >= 2 * g.Ho && g.W >= 2 * g.Wo;
  parallel_for(0, g.N * g.C, planes_per_task(HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* xp = px + c * HW;
      float* yp = py + c * out_plane;
      int32_t* ap = pa ? pa + c * out_plane : nullptr;
      if (tiled2x2) {
        const int32_t W32 = static_cast<int32_t>(g.W);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          const float* __restrict r0 = xp + 2 * oh * g.W;
          const float* __restrict r1 = r0 + g.W;
          float* __restrict yr = yp + oh * g.Wo;
          const int32_t row = static_cast<int32_t>(2 * oh * g.W);
          // PyTorch's rule: the first maximum in window order wins ties; NaN propagates.
          // Branch-free selects, so the loop vectorises.
          auto window = [&](int64_t ow, float& m, int32_t& k) {
            const float v0 = r0[2 * ow], v1 = r0[2 * ow + 1], v2 = r1[2 * ow], v3 = r1[2 * ow + 1];
            m = v0;
            k = 0;
            bool t = (v1 > m) | (v1 != v1);
            m = t ? v1 : m;
            k = t ? 1 : k;
            t = (v2 > m) | (v2 != v2);
            m = t ? v2 : m;
            k = t ? W32 : k;
            t = (v3 > m) | (v3 != v3);
            m = t ? v3 : m;
            k = t ? W32 + 1 : k;
          };
          int64_t ow = 0;
#ifdef __AVX512F__
          // 16 windows at a time: even/odd columns of both rows, compared in window order.
          const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
          const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
          const __m512i lane2 = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
          for (; ow < g.Wo; ow += 16) {
            // The last group (or a plane narrower than 16 windows) uses masked loads and stores.
            const int64_t n = std::min<int64_t>(16, g.Wo - ow);
            const __mmask16 lo = static_cast<__mmask16>(n >= 8 ? 0xFFFF : (1u << (2 * n)) - 1);
            const __mmask16 hi = static_cast<__mmask16>(n == 16 ? 0xFFFF : n > 8 ? (1u << (2 * n - 16)) - 1 : 0);
            const __mmask16 out = static_cast<__mmask16>(n == 16 ? 0xFFFF : (1u << n) - 1);
            const __m512 a0 = _mm512_maskz_loadu_ps(lo, r0 + 2 * ow), a1 = _mm512_maskz_loadu_ps(hi, r0 + 2 * ow + 16);
            const __m512 b0 = _mm512_maskz_loadu_ps(lo, r1 + 2 * ow), b1 = _mm512_maskz_loadu_ps(hi, r1 + 2 * ow + 16);
            const __m512 v[4] = {_mm512_permutex2var_ps(a0, even, a1), _mm512_permutex2var_ps(a0, odd, a1),
                                 _mm512_permutex2var_ps(b0, even, b1), _mm512_permutex2var_ps(b0, odd, b1)};
            const int32_t offs[4] = {0, 1, W32, W32 + 1};
            __m512 m = v[0];
            __m512i k = _mm512_setzero_si512();
            for (int t = 1; t < 4; ++t) {
              const __mmask16 take = _mm512_cmp_ps_mask(v[t], m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v[t], v[t], _CMP_UNORD_Q);
              m = _mm512_mask_blend_ps(take, m, v[t]);
              k = _mm512_mask_blend_epi32(take, k, _mm512_set1_epi32(offs[t]));
            }
            _mm512_mask_storeu_ps(yr + ow, out, m);
            if (ap) {
              const __m512i idx = _mm512_add_epi32(_mm512_add_epi32(k, lane2),
                                                   _mm512_set1_epi32(row + static_cast<int32_t>(2 * ow)));
              _mm512_mask_storeu_epi32(ap + oh * g.Wo + ow, out, idx);
            }
          }
#endif
          for (; ow < g.Wo; ++ow) {
            float m;
            int32_t k;
            window(ow, m, k);
            yr[ow] = m;
            if (ap) ap[oh * g.Wo + ow] = row + static_cast<int32_t>(2 * ow) + k;
          }
        }
        continue;
      }
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        const int64_t h0 = oh * p.stride[0] - p.padding[0];
        const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(h0 + p.kernel[0], g.H);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          const int64_t w0 = ow * p.stride[1] - p.padding[2];
          const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(w0 + p.kernel[1], g.W);
          float best = -std::numeric_limits<float>::infinity();
          int64_t bi = hs * g.W + ws;
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w) {
              const float v = xp[h * g.W + w];
              if (v > best || std::isnan(v)) {
                best = v;
                bi = h * g.W + w;
              }
            }
          yp[oh * g.Wo + ow] = best;
          if (ap) ap[oh * g.Wo + ow] = static_cast<int32_t>(bi);
        }
      }
    }
  });
  if (!grad) return y;
  return record(kMaxPool2d, {x_in}, y, [arg, xs = x.shape(), g, tiled2x2](const Tensor& go, NeedsGrad) {
    const Tensor gc = k::contiguous(go);
    Tensor gx = tiled2x2 ? Tensor::empty(xs) : Tensor::zeros(xs);
    const float* pg = gc.data<float>();
    const int32_t* parg = arg->data();
    float* pgx = gx.data<float>();
    const int64_t in_sz = g.H * g.W, out_sz = g.Ho * g.Wo;
    parallel_for(0, g.N * g.C, planes_per_task(in_sz), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        float* xp = pgx + c * in_sz;
        const float* gp = pg + c * out_sz;
        const int32_t* ap = parg + c * out_sz;
        if (!tiled2x2) {
          for (int64_t i = 0; i < out_sz; ++i) xp[ap[i]] += gp[i];
          continue;
        }
        for (int64_t h = 2 * g.Ho; h < g.H; ++h) std::fill(xp + h * g.W, xp + (h + 1) * g.W, 0.0f);
        for (int64_t oh = 0; oh < g.Ho; ++oh) {
          float* r0 = xp + 2 * oh * g.W;
          float* r1 = r0 + g.W;
          for (int64_t w = 2 * g.Wo; w < g.W; ++w) r0[w] = r1[w] = 0.0f;
          for (int64_t ow = 0; ow < g.Wo; ++ow) r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = 0.0f;
          for (int64_t ow = 0; ow < g.Wo; ++ow) xp[ap[oh * g.Wo + ow]] = gp[oh * g.Wo + ow];
        }
      }
    });
    return Grads{gx};
  });
}

namespace {

// Calls f(oh, ow, hs, he, ws, we, divisor) for every output cell of average pooling.
template <class F>
void for_avg_windows(const PoolGeometry& g, const Pool2dParams& p, const F& f) {
  for (int64_t oh = 0; oh < g.Ho; ++oh) {
    const int64_t h0 = oh * p.stride[0] - p.padding[0];
    const int64_t hend = std::min(h0 + p.kernel[0], g.H + p.padding[1]);
    const int64_t hs = std::max<int64_t>(h0, 0), he = std::min(hend, g.H);
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      const int64_t w0 = ow * p.stride[1] - p.padding[2];
      const int64_t wend = std::min(w0 + p.kernel[1], g.W + p.padding[3]);
      const int64_t ws = std::max<int64_t>(w0, 0), we = std::min(wend, g.W);
      const int64_t count = p.count_include_pad ? (hend - h0) * (wend - w0) : (he - hs) * (we - ws);
      f(oh, ow, hs, he, ws, we, static_cast<float>(std::max<int64_t>(count, 1)));
    }
  }
}

}  // namespace

static const OpDef& kAvgPool2d = define_op("avg_pool2d");

Tensor avg_pool2d(const Tensor& x_in, const Pool2dParams& p) {
  const Tensor x = nchw_input(x_in, "avg_pool2d");
  const PoolGeometry g = pool_geometry(x, p, "avg_pool2d");
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  const int64_t HW = g.H * g.W, out_plane = g.Ho * g.Wo;
  parallel_for(0, g.N * g.C, planes_per_task(HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float* xp = px + c * HW;
      float* yp = py + c * out_plane;
      for_avg_windows(g, p, [&](int64_t oh, int64_t ow, int64_t hs, int64_t he, int64_t ws, int64_t we, float div) {
        float s = 0.0f;
        for (int64_t h = hs; h < he; ++h)
          for (int64_t w = ws; w < we; ++w) s += xp[h * g.W + w];
        yp[oh * g.Wo + ow] = s / div;
      });
    }
  });
  if (!needs_grad({x_in})) return y;
  return record(kAvgPool2d, {x_in}, y, [xs = x.shape(), g, p](const Tensor& go, NeedsGrad) {
    const Tensor gc = k::contiguous(go);
    Tensor gx = Tensor::zeros(xs);
    const float* pg = gc.data<float>();
    float* pxg = gx.data<float>();
    const int64_t in_sz = g.H * g.W, out_sz = g.Ho * g.Wo;
    parallel_for(0, g.N * g.C, planes_per_task(in_sz), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        float* xp = pxg + c * in_sz;
        const float* gp = pg + c * out_sz;
        for_avg_windows(g, p, [&](int64_t oh, int64_t ow, int64_t hs, int64_t he, int64_t ws, int64_t we, float div) {
          const float v = gp[oh * g.Wo + ow] / div;
          for (int64_t h = hs; h < he; ++h)
            for (int64_t w = ws; w < we; ++w) xp[h * g.W + w] += v;
        });
      }
    });
    return Grads{gx};
  });
}

static const OpDef& kAdaptiveAvgPool2d = define_op("adaptive_avg_pool2d");

Tensor adaptive_avg_pool2d(const Tensor& x_in, std::array<int64_t, 2> out) {
  const Tensor x = nchw_input(x_in, "adaptive_avg_pool2d");
  DEFT_CHECK(out[0] >= 1 && out[1] >= 1, "adaptive_avg_pool2d: output size must be positive, got ({}, {})", out[0],
             out[1]);
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Ho = out[0], Wo = out[1];
  DEFT_CHECK_SHAPE(H >= 1 && W >= 1, "adaptive_avg_pool2d: input {} has an empty plane", shape_str(x.shape()));
  // Bin boundaries, PyTorch's: [floor(i*H/Ho), ceil((i+1)*H/Ho)).
  auto bins = [](int64_t in, int64_t n) {
    std::vector<std::array<int64_t, 2>> b(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) b[i] = {i * in / n, ((i + 1) * in + n - 1) / n};
    return b;
  };
  const auto hb = bins(H, Ho), wb = bins(W, Wo);
  Tensor y = Tensor::empty({N, C, Ho, Wo});
  const float* px = x.data<float>();
  float* py = y.data<float>();
  parallel_for(0, N * C, planes_per_task(H * W), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          float s = 0.0f;
          for (int64_t h = hb[i][0]; h < hb[i][1]; ++h)
            for (int64_t w = wb[j][0]; w < wb[j][1]; ++w) s += px[c * H * W + h * W + w];
          py[(c * Ho + i) * Wo + j] = s / static_cast<float>((hb[i][1] - hb[i][0]) * (wb[j][1] - wb[j][0]));
        }
  });
  if (!needs_grad({x_in})) return y;
  return record(kAdaptiveAvgPool2d, {x_in}, y, [xs = x.shape(), hb, wb](const Tensor& go, NeedsGrad) {
    const Tensor gc = k::contiguous(go);
    const int64_t NC = xs[0] * xs[1], h_in = xs[2], w_in = xs[3];
    const int64_t h_out = static_cast<int64_t>(hb.size()), w_out = static_cast<int64_t>(wb.size());
    Tensor gx = Tensor::zeros(xs);
    const float* pg = gc.data<float>();
    float* pxg = gx.data<float>();
    parallel_for(0, NC, planes_per_task(h_in * w_in), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t i = 0; i < h_out; ++i)
          for (int64_t j = 0; j < w_out; ++j) {
            const float v = pg[(c * h_out + i) * w_out + j] /
                            static_cast<float>((hb[i][1] - hb[i][0]) * (wb[j][1] - wb[j][0]));
            for (int64_t h = hb[i][0]; h < hb[i][1]; ++h)
              for (int64_t w = wb[j][0]; w < wb[j][1]; ++w) pxg[c * h_in * w_in + h * w_in + w] += v;
          }
    });
    return Grads{gx};
  });
}

// ---- dropout2d ---------------------------------------------------------------------------------

static const OpDef& kDropout2d = define_op("dropout2d");

Tensor dropout2d(const Tensor& x_in, float p, Generator& gen) {
  DEFT_CHECK(p >= 0.0f && p < 1.0f, "dropout2d: p must be in [0, 1), got {}", p);
  if (p == 0.0f) return x_in;
  DEFT_CHECK(x_in.defined() && x_in.dtype() == DType::Float32, "dropout2d: expects a float32 input");
  DEFT_CHECK_SHAPE(x_in.dim() >= 2, "dropout2d: expects input [N, C, ...], got {}", shape_str(x_in.shape()));
  const Tensor x = k::contiguous(x_in);
  const int64_t planes = x.size(0) * x.size(1), plane = planes > 0 ? x.numel() / planes : 0;
  const int64_t blocks = (planes + 3) / 4;
  const uint64_t base = gen.reserve(static_cast<uint64_t>(blocks));
  std::vector<uint32_t> words(static_cast<size_t>(4 * blocks));
  if (blocks > 0) philox4x32_fill(base, gen.seed(), blocks, words.data());
  const float scale = 1.0f / (1.0f - p);
  auto factors = std::make_shared<std::vector<float>>(static_cast<size_t>(planes));
  for (int64_t i = 0; i < planes; ++i) (*factors)[i] = unit_float(words[i]) >= p ? scale : 0.0f;
  auto apply = [planes, plane](const Tensor& in, const std::vector<float>& f) {
    Tensor out = Tensor::empty(in.shape());
    const float* pi = in.data<float>();
    float* po = out.data<float>();
    parallel_for(0, planes, planes_per_task(plane), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t i = 0; i < plane; ++i) po[c * plane + i] = pi[c * plane + i] * f[c];
    });
    return out;
  };
  Tensor y = apply(x, *factors);
  if (!needs_grad({x_in})) return y;
  return record(kDropout2d, {x_in}, y, [factors, apply](const Tensor& g, NeedsGrad) {
    return Grads{apply(k::contiguous(g), *factors)};
  });
}

}  // namespace deft
