// Layer and loss ops: one fused kernel each, forward and backward side by side.
//
// Kernels work on raw pointers over contiguous data (inputs are made contiguous
// first). Sums that cross rows (bias and scale gradients, loss totals) run in a
// fixed order or over fixed row blocks added in order, so results do not depend
// on the number of threads.
#include "deft/autograd/ops_nn.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/vecmath.h"

namespace deft {

namespace k = kernel;

namespace {

// Elements per block of parallel work: below this a kernel stays on one thread
// (waking a second costs several microseconds, more than the work).
constexpr int64_t kGrain = 1 << 16;

int64_t rows_per_block(int64_t width) { return std::max<int64_t>(1, kGrain / std::max<int64_t>(width, 1)); }

// sum of f(j) for j in [0, n) over 16 interleaved partial sums: GCC vectorises it (a
// plain float sum is one serial chain of dependent adds), and the order is fixed.
template <class F>
float lane_sum(int64_t n, const F& f) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += f(j + l);
  float tail = 0.0f;
  for (; j < n; ++j) tail += f(j);
  for (int l = 0; l < kLanes; ++l) tail += acc[l];
  return tail;
}

Tensor float_input(const Tensor& t, const char* op, const char* what) {
  DEFT_CHECK(t.defined(), "{}: {} is undefined", op, what);
  DEFT_CHECK(t.dtype() == DType::Float32, "{}: {} must be float32, got {}", op, what, dtype_name(t.dtype()));
  return k::contiguous(t);
}

// An optional per-feature parameter (weight/bias) of `n` elements.
Tensor optional_vector(const Tensor& t, int64_t n, const char* op, const char* what, const Shape& x_shape) {
  if (!t.defined()) return t;
  const Tensor c = float_input(t, op, what);
  DEFT_CHECK_SHAPE(t.dim() == 1 && t.size(0) == n,
                   "{}: {} of shape {} does not match input {} (expected [{}])", op, what,
                   shape_str(t.shape()), shape_str(x_shape), n);
  return c;
}

// Runs f(r0, r1, acc) on fixed blocks of `block` rows (in parallel when there are
// several), each into its own zeroed accumulator of `width` floats, then adds the
// accumulators into out in block order.
template <class F>
void reduce_row_blocks(int64_t rows, int64_t block, int64_t width, float* out, const F& f) {
  std::fill(out, out + width, 0.0f);
  const int64_t nb = (rows + block - 1) / block;
  if (nb <= 1) {
    if (rows > 0) f(int64_t{0}, rows, out);
    return;
  }
  std::vector<float> part(static_cast<size_t>(nb * width), 0.0f);
  parallel_for(0, nb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b * block, std::min(rows, (b + 1) * block), part.data() + b * width);
  });
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t j = 0; j < width; ++j) out[j] += part[b * width + j];
}

}  // namespace

// ---- dropout ----------------------------------------------------------------------------------
static const OpDef& kDropout = define_op("dropout");
Tensor dropout(const Tensor& x, float p, Generator& gen) {
  DEFT_CHECK(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got {}", p);
  if (p == 0.0f) return x;
  const Tensor xc = float_input(x, "dropout", "input");
  const int64_t n = xc.numel();
  const int64_t blocks = (n + 3) / 4;
  const uint64_t base = gen.reserve(static_cast<uint64_t>(blocks));
  const uint64_t key = gen.seed();
  // One byte per element: backward reuses the mask instead of redrawing it.
  Tensor mask = Tensor::empty(xc.shape(), DType::UInt8);
  Tensor out = Tensor::empty(xc.shape());
  const float scale = 1.0f / (1.0f - p);
  const float* px = xc.data<float>();
  uint8_t* pm = mask.data<uint8_t>();
  float* po = out.data<float>();
  parallel_for(0, blocks, kGrain / 4, [&](int64_t b0, int64_t b1) {
    // Random words for this range in chunks (vectorised Philox), then a branch-free select.
    constexpr int64_t kChunk = 256;
    uint32_t words[4 * kChunk];
    const float inv_scale_p = p;
    for (int64_t c0 = b0; c0 < b1; c0 += kChunk) {
      const int64_t c1 = std::min(b1, c0 + kChunk);
      philox4x32_fill(base + static_cast<uint64_t>(c0), key, c1 - c0, words);
      const int64_t i0 = c0 * 4, i1 = std::min(n, c1 * 4);
      // Branch-free (the mask is random: a branch would mispredict) so it vectorises.
      const uint32_t* __restrict w = words - i0;
      uint8_t* __restrict m = pm;
      float* __restrict o = po;
      for (int64_t i = i0; i < i1; ++i) {
        const uint8_t keep = unit_float(w[i]) >= inv_scale_p;
        m[i] = keep;
        o[i] = px[i] * (static_cast<float>(keep) * scale);
      }
    }
  });
  if (!needs_grad({x})) return out;
  return record(kDropout, {x}, out, [mask, scale](const Tensor& g, NeedsGrad) {
    const Tensor gc = k::contiguous(g);
    Tensor gx = Tensor::empty(gc.shape());
    const float* pg = gc.data<float>();
    const uint8_t* m = mask.data<uint8_t>();
    float* o = gx.data<float>();
    parallel_for(0, gc.numel(), kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) o[i] = pg[i] * (static_cast<float>(m[i]) * scale);  // branch-free
    });
    return Grads{gx};
  });
}

// ---- layer norm ------------------------------------------------------------------------------
namespace {
Grads layer_norm_backward(const Tensor& g, NeedsGrad need, const Tensor& xd, const Tensor& w,
                          const Tensor& stats, int64_t D, int64_t R) {
  const Tensor gc = k::contiguous(g);
  Tensor gx = need[0] ? Tensor::empty(xd.shape()) : Tensor();
  const float* px = xd.data<float>();
  const float* pg = gc.data<float>();
  const std::vector<float> ones(w.defined() ? 0 : static_cast<size_t>(D), 1.0f);
  const float* pw = w.defined() ? w.data<float>() : ones.data();
  const float* ps = stats.data<float>();
  float* pgx = gx.defined() ? gx.data<float>() : nullptr;
  const bool param_grads = need[1] || need[2];
  // acc: [0, D) sum of g * xhat (weight grad), [D, 2D) sum of g (bias grad).
  std::vector<float> sums(static_cast<size_t>(2 * D));
  reduce_row_blocks(R, rows_per_block(D), 2 * D, sums.data(), [&](int64_t r0, int64_t r1, float* acc) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * D;
      const float* gr = pg + r * D;
      const float mean = ps[2 * r], rstd = ps[2 * r + 1];
      if (param_grads)
        for (int64_t j = 0; j < D; ++j) {
          acc[j] += gr[j] * (xr[j] - mean) * rstd;
          acc[D + j] += gr[j];
        }
      if (!pgx) continue;
      // gx = rstd * (gh - mean(gh) - xhat * mean(gh * xhat)), gh = g * weight
      const float sg = lane_sum(D, [&](int64_t j) { return gr[j] * pw[j]; }) / static_cast<float>(D);
      const float sgx = lane_sum(D, [&](int64_t j) { return gr[j] * pw[j] * (xr[j] - mean); }) * rstd /
                        static_cast<float>(D);
      float* o = pgx + r * D;
      for (int64_t j = 0; j < D; ++j) o[j] = rstd * (gr[j] * pw[j] - sg - (xr[j] - mean) * rstd * sgx);
    }
  });
  Tensor gw, gb;
  if (need[1]) gw = Tensor::from_vector(std::vector<float>(sums.begin(), sums.begin() + D));
  if (need[2]) gb = Tensor::from_vector(std::vector<float>(sums.begin() + D, sums.end()));
  return Grads{gx, gw, gb};
}

}  // namespace

static const OpDef& kLayerNorm = define_op("layer_norm");
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  const char* op = "layer_norm";
  const Tensor xc = float_input(x, op, "input");
  DEFT_CHECK_SHAPE(xc.dim() >= 1, "layer_norm: input must have at least one axis, got {}",
                   shape_str(x.shape()));
  const int64_t D = xc.size(-1);
  const int64_t R = D == 0 ? 0 : xc.numel() / D;
  const Tensor w = optional_vector(weight, D, op, "weight", x.shape());
  const Tensor b = optional_vector(bias, D, op, "bias", x.shape());
  Tensor out = Tensor::empty(xc.shape());
  Tensor stats = Tensor::empty({R, 2});  // per row: mean, 1/sqrt(var + eps)
  const float* px = xc.data<float>();
  // Missing weight/bias act as ones/zeros, so the output loop has no branches.
  const std::vector<float> ones(w.defined() ? 0 : static_cast<size_t>(D), 1.0f);
  const std::vector<float> zeros(b.defined() ? 0 : static_cast<size_t>(D), 0.0f);
  const float* pw = w.defined() ? w.data<float>() : ones.data();
  const float* pb = b.defined() ? b.data<float>() : zeros.data();
  float* po = out.data<float>();
  float* ps = stats.data<float>();
  parallel_for(0, R, rows_per_block(D), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = px + r * D;
      float* yr = po + r * D;
      const float mean = lane_sum(D, [xr](int64_t j) { return xr[j]; }) / static_cast<float>(D);
      // Two passes: no cancellation when |mean| >> std.
      const float v = lane_sum(D, [xr, mean](int64_t j) { return (xr[j] - mean) * (xr[j] - mean); });
      const float rstd = 1.0f / std::sqrt(v / static_cast<float>(D) + eps);
      ps[2 * r] = mean;
      ps[2 * r + 1] = rstd;
      for (int64_t j = 0; j < D; ++j) yr[j] = (xr[j] - mean) * rstd * pw[j] + pb[j];
    }
  });
  if (!needs_grad({x, weight, bias})) return out;
  return record(
      kLayerNorm, {x, weight, bias}, out,
      [xd = xc.detach(), w = w.defined() ? w.detach() : w, stats, D, R](const Tensor& g, NeedsGrad need) {
        return layer_norm_backward(g, need, xd, w, stats, D, R);
      });
}

// ---- batch norm ------------------------------------------------------------------------------
namespace {

// x viewed as [N, C, S]; the statistics of channel c cover N*S elements.
struct ChannelLayout {
  int64_t N, C, S;
};

// Per-channel sums over [N, C, S] data of f(index) accumulated in double; a channel's
// result depends only on its own elements, so channel-parallel work is deterministic.
template <class F>
void channel_sums(const ChannelLayout& L, double* out, const F& f) {
  const int64_t M = L.N * L.S;
  parallel_for(0, L.C, std::max<int64_t>(1, kGrain / std::max<int64_t>(M, 1)), [&](int64_t c0, int64_t c1) {
    if (L.S == 1) {  // [N, C]: walk rows, vectorised across the channel range
      std::fill(out + c0, out + c1, 0.0);
      for (int64_t n = 0; n < L.N; ++n)
        for (int64_t c = c0; c < c1; ++c) out[c] += f(n * L.C + c, c);
      return;
    }
    for (int64_t c = c0; c < c1; ++c) {
      double total = 0.0;
      for (int64_t n = 0; n < L.N; ++n) {
        const int64_t base = (n * L.C + c) * L.S;
        total += lane_sum(L.S, [&](int64_t j) { return f(base + j, c); });
      }
      out[c] = total;
    }
  });
}

// Calls f(i, c) for every element i of [N, C, S] data (c: its channel), in parallel over
// rows of [N, C] data or over (n, c) planes of [N, C, S] data, so inner loops are contiguous.
template <class F>
void channel_apply(const ChannelLayout& L, const F& f) {
  if (L.S == 1) {
    parallel_for(0, L.N, rows_per_block(L.C), [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t c = 0; c < L.C; ++c) f(n * L.C + c, c);
    });
    return;
  }
  parallel_for(0, L.N * L.C, rows_per_block(L.S), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % L.C;
      for (int64_t j = p * L.S; j < (p + 1) * L.S; ++j) f(j, c);
    }
  });
}

Tensor running_stat(const Tensor& t, int64_t C, const char* what, const Shape& x_shape) {
  if (!t.defined()) return t;
  DEFT_CHECK(t.dtype() == DType::Float32 && t.is_contiguous(),
             "batch_norm: {} must be a contiguous float32 tensor (it is updated in place)", what);
  DEFT_CHECK_SHAPE(t.numel() == C, "batch_norm: {} of shape {} does not match input {} ({} channels)", what,
                   shape_str(t.shape()), shape_str(x_shape), C);
  return t;
}

Grads batch_norm_backward(const Tensor& g, NeedsGrad need, const Tensor& xd, const Tensor& w,
                          const Tensor& stats, const ChannelLayout& L, bool batch_stats) {
  const Tensor gc = k::contiguous(g);
  const int64_t C = L.C;
  const double M = static_cast<double>(L.N * L.S);
  const float* px = xd.data<float>();
  const float* pg = gc.data<float>();
  const float* mean = stats.data<float>();
  const float* rstd = mean + C;
  const float* pw = w.defined() ? w.data<float>() : nullptr;
  // Per channel: sum of g, and of g * (x - mean).
  std::vector<double> sg(static_cast<size_t>(C)), sgx(static_cast<size_t>(C));
  if (need[1] || need[2] || (need[0] && batch_stats)) {
    channel_sums(L, sg.data(), [pg](int64_t i, int64_t) { return pg[i]; });
    channel_sums(L, sgx.data(), [pg, px, mean](int64_t i, int64_t c) { return pg[i] * (px[i] - mean[c]); });
  }
  Tensor gx, gw, gb;
  if (need[0]) {
    // Batch statistics: gx = A g - B x + K with A = w rstd, B = A rstd^2 sum(g (x-mean)) / M,
    // K = B mean - A sum(g) / M. Running statistics: gx = A g.
    std::vector<float> A(static_cast<size_t>(C)), B(static_cast<size_t>(C), 0.0f),
        K(static_cast<size_t>(C), 0.0f);
    for (int64_t c = 0; c < C; ++c) {
      A[c] = rstd[c] * (pw ? pw[c] : 1.0f);
      if (!batch_stats) continue;
      B[c] = static_cast<float>(A[c] * static_cast<double>(rstd[c]) * rstd[c] * sgx[c] / M);
      K[c] = static_cast<float>(B[c] * static_cast<double>(mean[c]) - A[c] * sg[c] / M);
    }
    gx = Tensor::empty(xd.shape());
    float* o = gx.data<float>();
    const float *pa = A.data(), *pbb = B.data(), *pk = K.data();
    channel_apply(L, [&](int64_t i, int64_t c) { o[i] = pa[c] * pg[i] - pbb[c] * px[i] + pk[c]; });
  }
  if (need[1]) {
    std::vector<float> v(static_cast<size_t>(C));
    for (int64_t c = 0; c < C; ++c) v[c] = static_cast<float>(sgx[c] * rstd[c]);
    gw = Tensor::from_vector(v);
  }
  if (need[2]) gb = Tensor::from_vector(std::vector<float>(sg.begin(), sg.end()));
  return Grads{gx, gw, gb};
}

}  // namespace

static const OpDef& kBatchNorm = define_op("batch_norm");
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                  Tensor& running_var, bool training, float momentum, float eps) {
  const char* op = "batch_norm";
  const Tensor xc = float_input(x, op, "input");
  DEFT_CHECK_SHAPE(xc.dim() >= 2, "batch_norm: input must be [N, C] or [N, C, ...], got {}",
                   shape_str(x.shape()));
  ChannelLayout L{xc.size(0), xc.size(1), 1};
  for (int64_t d = 2; d < xc.dim(); ++d) L.S *= xc.size(d);
  const int64_t C = L.C, M = L.N * L.S;
  const Tensor w = optional_vector(weight, C, op, "weight", x.shape());
  const Tensor b = optional_vector(bias, C, op, "bias", x.shape());
  DEFT_CHECK(running_mean.defined() == running_var.defined(),
             "batch_norm: running_mean and running_var must both be given or both be undefined");
  running_stat(running_mean, C, "running_mean", x.shape());
  running_stat(running_var, C, "running_var", x.shape());
  const bool batch_stats = training || !running_mean.defined();
  DEFT_CHECK(!training || M > 1, "batch_norm: training needs more than one value per channel, got input {}",
             shape_str(x.shape()));

  const float* px = xc.data<float>();
  Tensor stats = Tensor::empty({2, C});  // mean, 1/sqrt(var + eps) used to normalise
  float* mean = stats.data<float>();
  float* rstd = mean + C;
  if (batch_stats) {
    std::vector<double> acc(static_cast<size_t>(C));
    channel_sums(L, acc.data(), [px](int64_t i, int64_t) { return px[i]; });
    for (int64_t c = 0; c < C; ++c) mean[c] = static_cast<float>(acc[c] / static_cast<double>(M));
    channel_sums(L, acc.data(),
                 [px, mean](int64_t i, int64_t c) { return (px[i] - mean[c]) * (px[i] - mean[c]); });
    for (int64_t c = 0; c < C; ++c) {
      const double var = M > 0 ? acc[c] / static_cast<double>(M) : 0.0;
      rstd[c] = static_cast<float>(1.0 / std::sqrt(var + eps));
      if (training && running_mean.defined()) {
        float* rm = running_mean.data<float>();
        float* rv = running_var.data<float>();
        rm[c] = (1.0f - momentum) * rm[c] + momentum * mean[c];
        rv[c] = (1.0f - momentum) * rv[c] +
                momentum * static_cast<float>(acc[c] / static_cast<double>(M - 1));  // unbiased
      }
    }
  } else {
    const float* rm = running_mean.data<float>();
    const float* rv = running_var.data<float>();
    for (int64_t c = 0; c < C; ++c) {
      mean[c] = rm[c];
      rstd[c] = 1.0f / std::sqrt(rv[c] + eps);
    }
  }
  // y = x * scale + shift per channel: one pass over the data.
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  const float* pw = w.defined() ? w.data<float>() : nullptr;
  const float* pb = b.defined() ? b.data<float>() : nullptr;
  for (int64_t c = 0; c < C; ++c) {
    scale[c] = rstd[c] * (pw ? pw[c] : 1.0f);
    shift[c] = (pb ? pb[c] : 0.0f) - mean[c] * scale[c];
  }
  Tensor out = Tensor::empty(xc.shape());
  float* po = out.data<float>();
  const float* ps = scale.data();
  const float* pf = shift.data();
  channel_apply(L, [&](int64_t i, int64_t c) { po[i] = px[i] * ps[c] + pf[c]; });

  if (!needs_grad({x, weight, bias})) return out;
  return record(kBatchNorm, {x, weight, bias}, out,
                [xd = xc.detach(), w = w.defined() ? w.detach() : w, stats, L, batch_stats](const Tensor& g,
                                                                                            NeedsGrad need) {
                  return batch_norm_backward(g, need, xd, w, stats, L, batch_stats);
                });
}

// ---- embedding -------------------------------------------------------------------------------
static const OpDef& kEmbedding = define_op("embedding");
Tensor embedding(const Tensor& weight, const Tensor& indices) {
  const Tensor w = float_input(weight, "embedding", "weight");
  DEFT_CHECK_SHAPE(w.dim() == 2, "embedding: weight must be [rows, dim], got {}", shape_str(weight.shape()));
  DEFT_CHECK(indices.defined() && indices.dtype() != DType::Float32,
             "embedding: indices must be integers (int64), got {}",
             indices.defined() ? dtype_name(indices.dtype()) : "undefined");
  const Tensor idx =
      indices.dtype() == DType::Int64 ? k::contiguous(indices) : k::convert(indices, DType::Int64);
  const int64_t V = w.size(0), D = w.size(1), n = idx.numel();
  const int64_t* pi = idx.data<int64_t>();
  for (int64_t i = 0; i < n; ++i)
    DEFT_CHECK(pi[i] >= 0 && pi[i] < V,
               "embedding: index {} (at position {}) is out of range for weight {} ({} rows)", pi[i], i,
               shape_str(weight.shape()), V);
  Shape out_shape = idx.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape);
  const float* pw = w.data<float>();
  float* po = out.data<float>();
  parallel_for(0, n, rows_per_block(D), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i)
      std::memcpy(po + i * D, pw + pi[i] * D, static_cast<size_t>(D) * sizeof(float));
  });
  if (!needs_grad({weight})) return out;
  return record(kEmbedding, {weight}, out, [idx, V, D](const Tensor& g, NeedsGrad) {
    // index_add: rows repeat, so threads split the columns (never the same element) and
    // every element sums its rows in index order.
    const Tensor gc = k::contiguous(g);
    Tensor gw = Tensor::zeros({V, D});
    const int64_t rows = idx.numel();
    const int64_t* index = idx.data<int64_t>();
    const float* pg = gc.data<float>();
    float* o = gw.data<float>();
    parallel_for(0, D, std::max<int64_t>(16, kGrain / std::max<int64_t>(rows, 1)),
                 [&](int64_t d0, int64_t d1) {
                   for (int64_t i = 0; i < rows; ++i) {
                     float* dst = o + index[i] * D;
                     const float* src = pg + i * D;
                     for (int64_t d = d0; d < d1; ++d) dst[d] += src[d];
                   }
                 });
    return Grads{gw};
  });
}

// ---- linear ----------------------------------------------------------------------------------
static const OpDef& kLinear = define_op("linear");
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  DEFT_CHECK(x.defined() && w.defined(), "linear: input and weight must be defined");
  DEFT_CHECK(x.dtype() == DType::Float32 && w.dtype() == DType::Float32,
             "linear: expects float32 input and weight, got {} and {}", dtype_name(x.dtype()),
             dtype_name(w.dtype()));
  DEFT_CHECK_SHAPE(w.dim() == 2 && x.dim() >= 1 && x.size(-1) == w.size(0),
                   "linear: input {} does not match weight {} (weight is [in, out])", shape_str(x.shape()),
                   shape_str(w.shape()));
  const int64_t I = w.size(0), O = w.size(1);
  const Tensor bc = optional_vector(b, O, "linear", "bias", x.shape());
  Tensor out = k::matmul(x, w);  // fresh and contiguous: the bias is added in place
  if (bc.defined()) {
    const float* pb = bc.data<float>();
    float* po = out.data<float>();
    parallel_for(0, out.numel() / std::max<int64_t>(O, 1), rows_per_block(O), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t j = 0; j < O; ++j) po[r * O + j] += pb[j];
    });
  }
  if (!needs_grad({x, w, b})) return out;
  return record(kLinear, {x, w, b}, out,
                [xd = x.detach(), wd = w.detach(), I, O](const Tensor& g, NeedsGrad need) {
                  const Tensor g2 = k::reshape(g, {-1, O});
                  Tensor gx, gw, gb;
                  if (need[0]) gx = k::reshape(k::matmul(g2, k::transpose(wd, 0, 1)), xd.shape());
                  if (need[1]) gw = k::matmul(k::transpose(k::reshape(xd, {-1, I}), 0, 1), g2);
                  if (need[2]) {
                    const Tensor gc = k::contiguous(g2);
                    const float* pg = gc.data<float>();
                    gb = Tensor::empty({O});
                    reduce_row_blocks(gc.size(0), rows_per_block(O), O, gb.data<float>(),
                                      [&](int64_t r0, int64_t r1, float* acc) {
                                        for (int64_t r = r0; r < r1; ++r)
                                          for (int64_t j = 0; j < O; ++j) acc[j] += pg[r * O + j];
                                      });
                  }
                  return Grads{gx, gw, gb};
                });
}

// ---- loss helpers ------------------------------------------------------------------------------
namespace {

// Per-sample weights: float [N] (or [N,1]); undefined stays undefined.
Tensor sample_weight_input(const Tensor& w, int64_t N, const char* op, const Shape& pred_shape) {
  if (!w.defined()) return w;
  const Tensor c = float_input(w, op, "sample_weights");
  DEFT_CHECK_SHAPE(w.numel() == N && (w.dim() == 1 || (w.dim() == 2 && w.size(1) == 1)),
                   "{}: sample_weights {} do not match output {} (expected [{}])", op, shape_str(w.shape()),
                   shape_str(pred_shape), N);
  return c;
}

// The scalar (Mean/Sum) or per-sample (None) gradient coming into a loss.
struct LossGrad {
  Tensor per_sample;  // contiguous, Reduction::None
  const float* p = nullptr;
  float scalar = 0.0f;
  LossGrad(const Tensor& g, Reduction r, float scale) {
    if (r == Reduction::None) {
      per_sample = k::contiguous(g);
      p = per_sample.data<float>();
    } else {
      scalar = g.item<float>() * scale;
    }
  }
  float operator[](int64_t i) const { return p ? p[i] : scalar; }
};

// Total / divisor, with 0 when nothing carries weight.
float safe_ratio(double total, double divisor) {
  return divisor == 0.0 ? 0.0f : static_cast<float>(total / divisor);
}

}  // namespace

// ---- cross-entropy on integer labels ----------------------------------------------------------
namespace {
Grads cross_entropy_backward(const Tensor& g, const Tensor& zd, const Tensor& y, const Tensor& sw,
                             const Tensor& lse, const std::vector<float>& cw, Reduction red, float scale,
                             float on, float off, float wsum, bool has_ignore, int64_t ignore) {
  const LossGrad gin(g, red, scale);
  const int64_t N = zd.size(0), C = zd.size(1);
  Tensor gz = Tensor::empty(zd.shape());
  const float* pz = zd.data<float>();
  const int64_t* py = y.data<int64_t>();
  const float* pl = lse.data<float>();
  const float* ps = sw.defined() ? sw.data<float>() : nullptr;
  const float* pcw = cw.empty() ? nullptr : cw.data();
  float* o = gz.data<float>();
  parallel_for(0, N, rows_per_block(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* zr = pz + i * C;
      float* gr = o + i * C;
      if (has_ignore && py[i] == ignore) {
        std::fill(gr, gr + C, 0.0f);
        continue;
      }
      // d loss_i / d z_c = on w_y (p_c - [c = y]) + off (W p_c - w_c), times g and weights.
      const float gi = gin[i] * (ps ? ps[i] : 1.0f);
      const float a = gi * on * (pcw ? pcw[py[i]] : 1.0f);
      const float pcoef = a + gi * off * wsum;
      const float l = pl[i];
      for (int64_t c = 0; c < C; ++c) gr[c] = pcoef * vm::exp(zr[c] - l);
      if (off != 0.0f)
        for (int64_t c = 0; c < C; ++c) gr[c] -= gi * off * (pcw ? pcw[c] : 1.0f);
      gr[py[i]] -= a;
    }
  });
  return Grads{gz};
}

}  // namespace

static const OpDef& kCrossEntropy = define_op("cross_entropy");
Tensor cross_entropy_logits(const Tensor& logits, const Tensor& labels, const CrossEntropyOptions& opt,
                            const Tensor& sample_weights) {
  const char* op = "cross_entropy";
  const Tensor z = float_input(logits, op, "logits");
  DEFT_CHECK_SHAPE(z.dim() == 2, "cross_entropy: logits must be [N, C], got {}", shape_str(logits.shape()));
  const int64_t N = z.size(0), C = z.size(1);
  DEFT_CHECK(labels.defined() && labels.dtype() != DType::Float32,
             "cross_entropy: labels must be integer class indices (int64), got {}; "
             "use categorical cross-entropy for probability targets",
             labels.defined() ? dtype_name(labels.dtype()) : "undefined");
  DEFT_CHECK_SHAPE(labels.numel() == N && (labels.dim() == 1 || (labels.dim() == 2 && labels.size(1) == 1)),
                   "cross_entropy: logits {} and labels {} do not match (labels must be [N])",
                   shape_str(logits.shape()), shape_str(labels.shape()));
  DEFT_CHECK(opt.label_smoothing >= 0.0f && opt.label_smoothing <= 1.0f,
             "cross_entropy: label_smoothing must be in [0, 1], got {}", opt.label_smoothing);
  DEFT_CHECK_SHAPE(opt.class_weights.empty() || static_cast<int64_t>(opt.class_weights.size()) == C,
                   "cross_entropy: {} class weights for logits {} ({} classes)", opt.class_weights.size(),
                   shape_str(logits.shape()), C);
  const Tensor y = labels.dtype() == DType::Int64 ? k::contiguous(labels) : k::convert(labels, DType::Int64);
  const Tensor sw = sample_weight_input(sample_weights, N, op, logits.shape());
  const int64_t* py = y.data<int64_t>();
  const bool has_ignore = opt.ignore_index.has_value();
  const int64_t ignore = opt.ignore_index.value_or(0);
  for (int64_t i = 0; i < N; ++i)
    DEFT_CHECK((has_ignore && py[i] == ignore) || (py[i] >= 0 && py[i] < C),
               "cross_entropy: label {} (sample {}) is out of range for {} classes", py[i], i, C);

  const float* cw = opt.class_weights.empty() ? nullptr : opt.class_weights.data();
  double wsum = 0.0;  // sum of the class weights (C without them)
  for (int64_t c = 0; c < C; ++c) wsum += cw ? cw[c] : 1.0f;
  const float on = 1.0f - opt.label_smoothing;
  const float off = C > 0 ? opt.label_smoothing / static_cast<float>(C) : 0.0f;
  const float* pz = z.data<float>();
  const float* ps = sw.defined() ? sw.data<float>() : nullptr;
  Tensor lse = Tensor::empty({N});  // saved: backward rebuilds softmax from it
  Tensor per_sample = Tensor::empty({N});
  float* pl = lse.data<float>();
  float* pr = per_sample.data<float>();
  parallel_for(0, N, rows_per_block(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* zr = pz + i * C;
      if (has_ignore && py[i] == ignore) {
        pl[i] = 0.0f;
        pr[i] = 0.0f;
        continue;
      }
      const float l = vm::logsumexp(zr, C);
      pl[i] = l;
      float loss = on * (cw ? cw[py[i]] : 1.0f) * (l - zr[py[i]]);
      if (off != 0.0f) {
        float smooth = 0.0f;
        for (int64_t c = 0; c < C; ++c) smooth += (cw ? cw[c] : 1.0f) * (l - zr[c]);
        loss += off * smooth;
      }
      pr[i] = (ps ? ps[i] : 1.0f) * loss;
    }
  });
  double total = 0.0, divisor = 0.0;
  for (int64_t i = 0; i < N; ++i) {
    if (has_ignore && py[i] == ignore) continue;
    total += pr[i];
    divisor += static_cast<double>(ps ? ps[i] : 1.0f) * (cw ? cw[py[i]] : 1.0f);
  }
  Tensor out = opt.reduction == Reduction::None
                   ? per_sample
                   : Tensor::full({}, opt.reduction == Reduction::Sum ? total : safe_ratio(total, divisor));
  if (!needs_grad({logits})) return out;
  const float scale = opt.reduction == Reduction::Mean ? safe_ratio(1.0, divisor) : 1.0f;
  return record(kCrossEntropy, {logits}, out,
                [zd = z.detach(), y, sw, lse, cw = opt.class_weights, red = opt.reduction, scale, on, off,
                 wsum = static_cast<float>(wsum), has_ignore, ignore](const Tensor& g, NeedsGrad) {
                  return cross_entropy_backward(g, zd, y, sw, lse, cw, red, scale, on, off, wsum, has_ignore,
                                                ignore);
                });
}

// ---- cross-entropy on probability targets -------------------------------------------------------
namespace {
Grads soft_cross_entropy_backward(const Tensor& g, NeedsGrad need, const Tensor& zd, const Tensor& t,
                                  const Tensor& sw, const Tensor& lse, const std::vector<float>& cw,
                                  Reduction red, float scale, float on, float off) {
  const LossGrad gin(g, red, scale);
  const int64_t N = zd.size(0), C = zd.size(1);
  const float* pz = zd.data<float>();
  const float* pt = t.data<float>();
  const float* pl = lse.data<float>();
  const float* ps = sw.defined() ? sw.data<float>() : nullptr;
  const float* pcw = cw.empty() ? nullptr : cw.data();
  Tensor gz = need[0] ? Tensor::empty(zd.shape()) : Tensor();
  Tensor gt = need[1] ? Tensor::empty(zd.shape()) : Tensor();
  float* oz = gz.defined() ? gz.data<float>() : nullptr;
  float* ot = gt.defined() ? gt.data<float>() : nullptr;
  parallel_for(0, N, rows_per_block(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* zr = pz + i * C;
      const float* tr = pt + i * C;
      const float gi = gin[i] * (ps ? ps[i] : 1.0f);
      const float l = pl[i];
      if (oz) {  // d/dz_c = T p_c - w_c t'_c, T = sum_c w_c t'_c
        float T = 0.0f;
        for (int64_t c = 0; c < C; ++c) T += (pcw ? pcw[c] : 1.0f) * (on * tr[c] + off);
        float* gr = oz + i * C;
        for (int64_t c = 0; c < C; ++c)
          gr[c] = gi * (T * vm::exp(zr[c] - l) - (pcw ? pcw[c] : 1.0f) * (on * tr[c] + off));
      }
      if (ot) {  // d/dt_c = on w_c (lse - z_c)
        float* gr = ot + i * C;
        for (int64_t c = 0; c < C; ++c) gr[c] = gi * on * (pcw ? pcw[c] : 1.0f) * (l - zr[c]);
      }
    }
  });
  return Grads{gz, gt};
}

}  // namespace

static const OpDef& kSoftCrossEntropy = define_op("soft_cross_entropy");
Tensor soft_cross_entropy_logits(const Tensor& logits, const Tensor& target_probs,
                                 const CrossEntropyOptions& opt, const Tensor& sample_weights) {
  const char* op = "soft_cross_entropy";
  const Tensor z = float_input(logits, op, "logits");
  DEFT_CHECK_SHAPE(z.dim() == 2, "soft_cross_entropy: logits must be [N, C], got {}",
                   shape_str(logits.shape()));
  const int64_t N = z.size(0), C = z.size(1);
  DEFT_CHECK(target_probs.defined(), "soft_cross_entropy: targets are undefined");
  DEFT_CHECK_SHAPE(target_probs.shape() == z.shape(),
                   "soft_cross_entropy: logits {} and targets {} do not match (targets must be [N, C] "
                   "probabilities; use sparse categorical cross-entropy for class indices)",
                   shape_str(logits.shape()), shape_str(target_probs.shape()));
  DEFT_CHECK(!opt.ignore_index.has_value(), "soft_cross_entropy: ignore_index needs integer labels");
  DEFT_CHECK(opt.label_smoothing >= 0.0f && opt.label_smoothing <= 1.0f,
             "soft_cross_entropy: label_smoothing must be in [0, 1], got {}", opt.label_smoothing);
  DEFT_CHECK_SHAPE(opt.class_weights.empty() || static_cast<int64_t>(opt.class_weights.size()) == C,
                   "soft_cross_entropy: {} class weights for logits {} ({} classes)",
                   opt.class_weights.size(), shape_str(logits.shape()), C);
  const Tensor t = target_probs.dtype() == DType::Float32 ? k::contiguous(target_probs)
                                                          : k::convert(target_probs, DType::Float32);
  const Tensor sw = sample_weight_input(sample_weights, N, op, logits.shape());
  const float* cw = opt.class_weights.empty() ? nullptr : opt.class_weights.data();
  const float on = 1.0f - opt.label_smoothing;
  const float off = C > 0 ? opt.label_smoothing / static_cast<float>(C) : 0.0f;
  const float* pz = z.data<float>();
  const float* pt = t.data<float>();
  const float* ps = sw.defined() ? sw.data<float>() : nullptr;
  Tensor lse = Tensor::empty({N});
  Tensor per_sample = Tensor::empty({N});
  float* pl = lse.data<float>();
  float* pr = per_sample.data<float>();
  parallel_for(0, N, rows_per_block(C), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float* zr = pz + i * C;
      const float* tr = pt + i * C;
      const float l = vm::logsumexp(zr, C);
      pl[i] = l;
      float loss = 0.0f;
      for (int64_t c = 0; c < C; ++c) loss += (cw ? cw[c] : 1.0f) * (on * tr[c] + off) * (l - zr[c]);
      pr[i] = (ps ? ps[i] : 1.0f) * loss;
    }
  });
  double total = 0.0, divisor = 0.0;
  for (int64_t i = 0; i < N; ++i) {
    total += pr[i];
    divisor += ps ? ps[i] : 1.0f;
  }
  Tensor out = opt.reduction == Reduction::None
                   ? per_sample
                   : Tensor::full({}, opt.reduction == Reduction::Sum ? total : safe_ratio(total, divisor));
  if (!needs_grad({logits, target_probs})) return out;
  const float scale = opt.reduction == Reduction::Mean ? safe_ratio(1.0, divisor) : 1.0f;
  return record(kSoftCrossEntropy, {logits, target_probs}, out,
                [zd = z.detach(), t, sw, lse, cw = opt.class_weights, red = opt.reduction, scale, on, off](
                    const Tensor& g, NeedsGrad need) {
                  return soft_cross_entropy_backward(g, need, zd, t, sw, lse, cw, red, scale, on, off);
                });
}

// ---- elementwise losses --------------------------------------------------------------------------
namespace {

// Drops trailing size-1 axes, so [N] and [N,1] compare equal.
Shape without_trailing_ones(Shape s) {
  while (!s.empty() && s.back() == 1) s.pop_back();
  return s;
}

struct PointwiseInputs {
  Tensor pred, target, weights;
  int64_t rows = 1, inner = 1;
};

PointwiseInputs pointwise_inputs(const char* op, const Tensor& pred, const Tensor& target,
                                 const Tensor& weights, bool binary_targets) {
  PointwiseInputs in;
  in.pred = float_input(pred, op, "output");
  DEFT_CHECK(target.defined(), "{}: target is undefined", op);
  DEFT_CHECK_SHAPE(target.shape() == pred.shape() ||
                       (target.numel() == pred.numel() &&
                        without_trailing_ones(target.shape()) == without_trailing_ones(pred.shape())),
                   "{}: output {} and target {} do not match", op, shape_str(pred.shape()),
                   shape_str(target.shape()));
  in.target = k::reshape(
      target.dtype() == DType::Float32 ? k::contiguous(target) : k::convert(target, DType::Float32),
      pred.shape());
  in.target = k::contiguous(in.target);
  if (binary_targets) {
    const float* t = in.target.data<float>();
    for (int64_t i = 0; i < in.target.numel(); ++i)
      DEFT_CHECK(t[i] >= 0.0f && t[i] <= 1.0f,
                 "{}: targets must be in [0, 1] (0/1 labels), got {} at index {}", op, t[i], i);
  }
  in.rows = pred.dim() == 0 ? 1 : pred.size(0);
  in.inner = in.rows == 0 ? 0 : pred.numel() / in.rows;
  in.weights = sample_weight_input(weights, in.rows, op, pred.shape());
  return in;
}

// d loss / d pred (or d target) of an elementwise loss, times the incoming gradient.
template <class F>
Tensor pointwise_grad(const LossGrad& gin, const Tensor& p, const Tensor& t, const Tensor& w, int64_t rows,
                      int64_t inner, const F& f, bool wrt_pred) {
  Tensor out = Tensor::empty(p.shape());
  const float* pp = p.data<float>();
  const float* pt = t.data<float>();
  const float* pw = w.defined() ? w.data<float>() : nullptr;
  float* o = out.data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    const float wr = pw ? pw[r] : 1.0f;
    for (int64_t j = r * inner; j < (r + 1) * inner; ++j)
      o[j] = gin[j] * wr * (wrt_pred ? f.dp(pp[j], pt[j]) : f.dt(pp[j], pt[j]));
  }
  return out;
}

// One elementwise loss: F has value(p, t), dp(p, t), dt(p, t).
template <class F>
Tensor pointwise_loss(const OpDef& def, const Tensor& pred, const Tensor& target, Reduction red,
                      const Tensor& weights, const F& f, bool binary_targets = false) {
  const PointwiseInputs in = pointwise_inputs(def.name, pred, target, weights, binary_targets);
  const float* pp = in.pred.data<float>();
  const float* pt = in.target.data<float>();
  const float* pw = in.weights.defined() ? in.weights.data<float>() : nullptr;
  const int64_t rows = in.rows, inner = in.inner;
  Tensor out;
  double divisor = 1.0;
  if (red == Reduction::None) {
    out = Tensor::empty(in.pred.shape());
    float* o = out.data<float>();
    for (int64_t r = 0; r < rows; ++r) {
      const float w = pw ? pw[r] : 1.0f;
      for (int64_t j = r * inner; j < (r + 1) * inner; ++j) o[j] = w * f.value(pp[j], pt[j]);
    }
  } else {
    double total = 0.0, wsum = 0.0;
    for (int64_t r = 0; r < rows; ++r) {
      float s = 0.0f;
      for (int64_t j = r * inner; j < (r + 1) * inner; ++j) s += f.value(pp[j], pt[j]);
      total += static_cast<double>(pw ? pw[r] : 1.0f) * s;
      wsum += pw ? pw[r] : 1.0f;
    }
    divisor = red == Reduction::Mean ? wsum * static_cast<double>(inner) : 1.0;
    out = Tensor::full({}, safe_ratio(total, divisor));
  }
  if (!needs_grad({pred, target})) return out;
  const float scale = safe_ratio(1.0, divisor);
  return record(def, {pred, target}, out,
                [p = in.pred.detach(), t = in.target.detach(), w = in.weights, red, scale, f, rows, inner,
                 target_shape = target.shape()](const Tensor& g, NeedsGrad need) {
                  const LossGrad gin(g, red, scale);
                  return Grads{
                      need[0] ? pointwise_grad(gin, p, t, w, rows, inner, f, true) : Tensor(),
                      need[1] ? k::reshape(pointwise_grad(gin, p, t, w, rows, inner, f, false), target_shape)
                              : Tensor()};
                });
}

struct SquaredError {
  float value(float p, float t) const { return (p - t) * (p - t); }
  float dp(float p, float t) const { return 2.0f * (p - t); }
  float dt(float p, float t) const { return -2.0f * (p - t); }
};

struct AbsoluteError {
  static float sign(float d) { return d > 0.0f ? 1.0f : (d < 0.0f ? -1.0f : 0.0f); }
  float value(float p, float t) const { return std::fabs(p - t); }
  float dp(float p, float t) const { return sign(p - t); }
  float dt(float p, float t) const { return -sign(p - t); }
};

struct HuberError {
  float delta;
  float value(float p, float t) const {
    const float d = std::fabs(p - t);
    return d < delta ? 0.5f * d * d : delta * (d - 0.5f * delta);
  }
  float dp(float p, float t) const {
    const float d = p - t;
    return d >= delta ? delta : (d <= -delta ? -delta : d);
  }
  float dt(float p, float t) const { return -dp(p, t); }
};

struct BinaryCrossEntropy {
  // PyTorch clamps each log at -100 so p = 0 or 1 gives a finite loss.
  static float log_p(float p) { return std::max(std::log(p), -100.0f); }
  static float log_1mp(float p) { return std::max(std::log1p(-p), -100.0f); }
  float value(float p, float t) const { return -(t * log_p(p) + (1.0f - t) * log_1mp(p)); }
  float dp(float p, float t) const { return (p - t) / std::max((1.0f - p) * p, 1e-12f); }
  float dt(float p, float) const { return log_1mp(p) - log_p(p); }
};

struct BinaryCrossEntropyWithLogits {
  float pos_weight;
  // softplus(-z) = log(1 + exp(-z)) without overflow.
  static float softplus_neg(float z) { return std::log1p(vm::exp(-std::fabs(z))) + std::max(-z, 0.0f); }
  float value(float z, float t) const {
    return (1.0f - t) * z + (1.0f + (pos_weight - 1.0f) * t) * softplus_neg(z);
  }
  float dp(float z, float t) const {
    const float sig_neg = 1.0f / (1.0f + vm::exp(z));  // sigmoid(-z)
    return (1.0f - t) - (1.0f + (pos_weight - 1.0f) * t) * sig_neg;
  }
  float dt(float z, float) const { return -z + (pos_weight - 1.0f) * softplus_neg(z); }
};

}  // namespace

static const OpDef& kMseLoss = define_op("mse_loss");
Tensor mse_loss(const Tensor& pred, const Tensor& target, Reduction reduction, const Tensor& sample_weights) {
  return pointwise_loss(kMseLoss, pred, target, reduction, sample_weights, SquaredError{});
}

static const OpDef& kL1Loss = define_op("l1_loss");
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction, const Tensor& sample_weights) {
  return pointwise_loss(kL1Loss, pred, target, reduction, sample_weights, AbsoluteError{});
}

static const OpDef& kHuberLoss = define_op("huber_loss");
Tensor huber_loss(const Tensor& pred, const Tensor& target, float delta, Reduction reduction,
                  const Tensor& sample_weights) {
  DEFT_CHECK(delta > 0.0f, "huber_loss: delta must be positive, got {}", delta);
  return pointwise_loss(kHuberLoss, pred, target, reduction, sample_weights, HuberError{delta});
}

static const OpDef& kBceLoss = define_op("binary_cross_entropy");
Tensor binary_cross_entropy_loss(const Tensor& probs, const Tensor& target, Reduction reduction,
                                 const Tensor& sample_weights) {
  if (probs.defined() && probs.dtype() == DType::Float32) {
    const Tensor p = k::contiguous(probs);
    const float* pp = p.data<float>();
    for (int64_t i = 0; i < p.numel(); ++i)
      DEFT_CHECK(pp[i] >= 0.0f && pp[i] <= 1.0f,
                 "binary_cross_entropy: probabilities must be in [0, 1], got {} at index {} "
                 "(for logits use the with-logits form)",
                 pp[i], i);
  }
  return pointwise_loss(kBceLoss, probs, target, reduction, sample_weights, BinaryCrossEntropy{}, true);
}

static const OpDef& kBceLogitsLoss = define_op("binary_cross_entropy_with_logits");
Tensor binary_cross_entropy_with_logits_loss(const Tensor& logits, const Tensor& target, Reduction reduction,
                                             const Tensor& sample_weights, float pos_weight) {
  return pointwise_loss(kBceLogitsLoss, logits, target, reduction, sample_weights,
                        BinaryCrossEntropyWithLogits{pos_weight}, true);
}

}  // namespace deft
