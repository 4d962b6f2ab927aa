// Int8 post-training quantisation: weight quantisation round trips, the calibration
// observers on data with known quantiles, the oneDNN int8 Dense/Conv2d against a
// scalar int32 implementation of the same arithmetic (tight) and against the float
// layer (the quantisation error bound), and the model-file helpers.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../tensor/test_util.h"
#include "deft/deploy/infer_plan.h"
#include "deft/deploy/quant.h"
#include "deft/deploy/quant_ops.h"
#include "deft/tensor/conv.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/safetensors.h"

namespace {

using deft::Conv2dParams;
using deft::Shape;
using deft::Tensor;
using namespace deft::deploy;
using tt::expect_error;
using tt::expect_input_error;

Tensor rand_t(const Shape& s, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return tt::rand_tensor(s, seed, lo, hi);
}

// ---- weights ---------------------------------------------------------------------------

TEST(QuantWeights, DensePerChannelRoundTrip) {
  // Columns of very different magnitude: per-channel scales keep each one's precision.
  const int64_t in = 50, out = 7;
  std::vector<float> w = tt::random_floats(in * out, 1);
  for (int64_t k = 0; k < in; ++k)
    for (int64_t c = 0; c < out; ++c) w[k * out + c] *= std::pow(10.0f, static_cast<float>(c) - 3.0f);
  for (int64_t k = 0; k < in; ++k) w[k * out + 6] = 0.0f;  // an all-zero channel
  const QuantizedWeights q = quantize_weights(Tensor::from_vector(w, {in, out}), WeightLayout::DenseInOut);
  ASSERT_EQ(q.scales.size(), 7u);
  EXPECT_EQ(q.channels(), 7);
  EXPECT_EQ(q.scales[6], 1.0f);
  const std::vector<float> back = dequantize_weights(q).to_vector<float>();
  for (int64_t c = 0; c < out; ++c) {
    float maxabs = 0;
    int maxq = 0;
    for (int64_t k = 0; k < in; ++k) {
      maxabs = std::max(maxabs, std::fabs(w[k * out + c]));
      maxq = std::max(maxq, std::abs(int{q.values[k * out + c]}));
    }
    if (c < 6) {
      EXPECT_FLOAT_EQ(q.scales[c], maxabs / 127.0f) << c;
      EXPECT_EQ(maxq, 127) << c;  // the largest weight uses the full range
    }
    for (int64_t k = 0; k < in; ++k)
      EXPECT_LE(std::fabs(back[k * out + c] - w[k * out + c]), q.scales[c] * 0.5f * (1 + 1e-5f))
          << k << "," << c;
  }
}

TEST(QuantWeights, ConvChannelIsFirstIndex) {
  const Shape s{4, 3, 3, 3};
  std::vector<float> w = tt::random_floats(4 * 27, 2);
  for (int i = 0; i < 27; ++i) w[27 + i] *= 100.0f;  // channel 1 is 100x larger
  const QuantizedWeights q = quantize_weights(Tensor::from_vector(w, s), WeightLayout::ConvOIHW);
  ASSERT_EQ(q.scales.size(), 4u);
  EXPECT_GT(q.scales[1], 50.0f * q.scales[0]);
  const std::vector<float> back = dequantize_weights(q).to_vector<float>();
  for (int i = 0; i < 4 * 27; ++i)
    EXPECT_LE(std::fabs(back[i] - w[i]), q.scales[i / 27] * 0.5f * (1 + 1e-5f));
}

TEST(QuantWeights, Int8PaysOffExceptForShortConvReductions) {
  EXPECT_TRUE(int8_pays_off({784, 128}, WeightLayout::DenseInOut));
  EXPECT_FALSE(int8_pays_off({32, 1, 3, 3}, WeightLayout::ConvOIHW));  // first layer, grey images
  EXPECT_FALSE(int8_pays_off({32, 3, 3, 3}, WeightLayout::ConvOIHW));  // first layer, RGB
  EXPECT_FALSE(int8_pays_off({64, 1, 3, 3}, WeightLayout::ConvOIHW));  // depthwise
  EXPECT_TRUE(int8_pays_off({64, 32, 3, 3}, WeightLayout::ConvOIHW));
  EXPECT_TRUE(int8_pays_off({64, 32, 1, 1}, WeightLayout::ConvOIHW));
}

TEST(QuantWeights, RejectsBadInput) {
  expect_input_error([] { quantize_weights(Tensor::zeros({3, 3}), WeightLayout::ConvOIHW); }, {"rank-4"});
  Tensor w = Tensor::zeros({2, 2});
  w.data<float>()[1] = NAN;
  expect_input_error([&] { quantize_weights(w, WeightLayout::DenseInOut); }, {"non-finite"});
}

// ---- activations ---------------------------------------------------------------------

TEST(QuantActivations, ParamsForRange) {
  ActivationQuant a = activation_quant_for_range(0.0f, 2.55f);
  EXPECT_FLOAT_EQ(a.scale, 0.01f);
  EXPECT_EQ(a.zero_point, 0);
  a = activation_quant_for_range(-1.0f, 1.0f);
  EXPECT_FLOAT_EQ(a.scale, 2.0f / 255.0f);
  EXPECT_TRUE(a.zero_point == 127 || a.zero_point == 128) << a.zero_point;  // 127.5, give or take a float ulp
  a = activation_quant_for_range(-1.0f, 3.0f);
  EXPECT_EQ(a.zero_point, 64);                 // round(63.75)
  a = activation_quant_for_range(0.5f, 2.0f);  // widened to include 0: padding stays exact
  EXPECT_FLOAT_EQ(a.scale, 2.0f / 255.0f);
  EXPECT_EQ(a.zero_point, 0);
  a = activation_quant_for_range(-3.0f, -1.0f);
  EXPECT_EQ(a.zero_point, 255);
  a = activation_quant_for_range(0.0f, 0.0f);
  EXPECT_EQ(a.scale, 1.0f);
  expect_input_error([] { activation_quant_for_range(1.0f, 0.0f); }, {"not a finite interval"});
}

TEST(QuantActivations, QuantizeRoundsClampsAndMapsZeroExactly) {
  const ActivationQuant a{0.5f, 10};
  const std::vector<float> x{0.0f, 0.25f, 0.75f, -5.0f, -6.0f, 1000.0f, 122.5f, NAN, 1.2f};
  std::vector<uint8_t> q(x.size());
  quantize_activations(x.data(), static_cast<int64_t>(x.size()), a, q.data());
  const std::vector<uint8_t> want{10, 10 /* 10.5 -> 10 */, 12 /* 11.5 -> 12 */, 0, 0, 255, 255, 0, 12};
  EXPECT_EQ(q, want);
  // Many values, the vectorised loop against the scalar function.
  const std::vector<float> big = tt::random_floats(100003, 3, -80.0f, 80.0f);
  std::vector<uint8_t> qb(big.size());
  quantize_activations(big.data(), static_cast<int64_t>(big.size()), a, qb.data());
  for (size_t i = 0; i < big.size(); ++i) {
    const float want_f = std::clamp(std::nearbyint(big[i] / 0.5f) + 10.0f, 0.0f, 255.0f);
    ASSERT_EQ(qb[i], static_cast<uint8_t>(want_f)) << big[i];
  }
}

TEST(QuantObserver, MinMaxIsTheExactRange) {
  RangeObserver obs({.method = CalibrationMethod::MinMax});
  obs.observe(Tensor::from_vector(std::vector<float>{-1.0f, 0.5f, 2.0f}));
  obs.observe(Tensor::from_vector(std::vector<float>{3.0f, NAN, 0.0f}));
  EXPECT_EQ(obs.count(), 5);
  EXPECT_EQ(obs.range(), (std::pair<float, float>{-1.0f, 3.0f}));
  const ActivationQuant a = obs.params();
  EXPECT_FLOAT_EQ(a.scale, 4.0f / 255.0f);
  EXPECT_EQ(a.zero_point, 64);  // round(1 / (4/255)) = round(63.75)
  expect_input_error([] { RangeObserver().params(); }, {"no calibration data"});
}

TEST(QuantObserver, PercentileClipsOutliers) {
  // 0..99999 once each, then a few huge outliers: the 99.99th percentile is ~99990,
  // whatever the order of the batches (the range grows twice).
  std::vector<float> v(100000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i);
  std::mt19937 rng(4);
  std::shuffle(v.begin(), v.end(), rng);
  RangeObserver obs({.method = CalibrationMethod::Percentile, .percentile = 99.99});
  obs.observe(v.data(), 30000);
  obs.observe(v.data() + 30000, 70000);
  const std::vector<float> outliers{1e6f, 2e6f, -5e5f};
  obs.observe(outliers.data(), 3);
  EXPECT_EQ(obs.min(), -5e5f);
  EXPECT_EQ(obs.max(), 2e6f);
  const auto [lo, hi] = obs.range();
  const double bin = 2.5e6 / 2048;  // histogram resolution after the last widening
  EXPECT_NEAR(hi, 99990.0, 2 * bin);
  EXPECT_NEAR(lo, 10.0, 2 * bin);
  EXPECT_LE(obs.params().zero_point, 6);  // 2 bins below zero at most
  EXPECT_NEAR(obs.params().scale, (hi - std::min(lo, 0.0f)) / 255.0, 1e-3);
}

TEST(QuantObserver, PercentileOfReluOutputsStartsAtZero) {
  std::vector<float> v = tt::random_floats(50000, 5, -1.0f, 1.0f);
  for (float& x : v) x = std::max(x, 0.0f);
  RangeObserver obs({.method = CalibrationMethod::Percentile, .percentile = 99.0});
  obs.observe(v.data(), static_cast<int64_t>(v.size()));
  const auto [lo, hi] = obs.range();
  EXPECT_NEAR(lo, 0.0f, 1.0 / 2048);
  EXPECT_EQ(obs.params().zero_point, 0);
  EXPECT_NEAR(hi, 0.98, 0.01);  // 1% of all values above: 2% of the positive half
}

// The mean squared error of quantising `v` with `a`, measured.
double quant_mse(const std::vector<float>& v, const ActivationQuant& a) {
  double e = 0;
  for (float x : v) {
    const double back = a.scale * (quantize_activation(x, 1.0f / a.scale, a.zero_point) - a.zero_point);
    e += (back - x) * (back - x);
  }
  return e / static_cast<double>(v.size());
}

TEST(QuantObserver, MseClipsLongTailsAndBeatsMinMaxAndPercentiles) {
  std::mt19937 rng(6);
  // Laplace data: for 8 bits the best clip is ~9.9 scale (Banner et al., 2019), inside
  // the ~12 scale the largest of 200,000 samples reaches.
  std::exponential_distribution<float> expo(1.0f);
  std::vector<float> g(200000);
  for (size_t i = 0; i < g.size(); ++i) g[i] = (i % 2 ? 1.0f : -1.0f) * expo(rng);
  RangeObserver mse({.method = CalibrationMethod::Mse}), minmax({.method = CalibrationMethod::MinMax});
  mse.observe(g.data(), 100000);
  mse.observe(g.data() + 100000, 100000);
  minmax.observe(g.data(), static_cast<int64_t>(g.size()));
  const auto [lo, hi] = mse.range();
  EXPECT_LT(hi, minmax.max() * 0.95f);
  EXPECT_GT(lo, minmax.min() * 0.95f);
  EXPECT_GT(hi, 6.0f);
  const double e_mse = quant_mse(g, mse.params()), e_minmax = quant_mse(g, minmax.params());
  EXPECT_LT(e_mse, 0.95 * e_minmax);
  for (double pct : {99.0, 99.9, 99.99}) {
    RangeObserver p({.method = CalibrationMethod::Percentile, .percentile = pct});
    p.observe(g.data(), static_cast<int64_t>(g.size()));
    EXPECT_LT(e_mse, 1.05 * quant_mse(g, p.params())) << pct;
  }
  // Uniform data has no tail worth clipping.
  const std::vector<float> u = tt::random_floats(100000, 7, 0.0f, 1.0f);
  RangeObserver mu({.method = CalibrationMethod::Mse});
  mu.observe(u.data(), static_cast<int64_t>(u.size()));
  EXPECT_GT(mu.range().second, 0.97f);
  EXPECT_EQ(parse_calibration_method("mse"), CalibrationMethod::Mse);
  expect_input_error([] { parse_calibration_method("kl"); }, {"minmax, percentile, mse"});
}

// ---- Dense -------------------------------------------------------------------------------

// The quantised arithmetic in scalar code: int32 accumulation of (q_x - zp) * q_w, then
// y = s_x * s_c * acc + bias (ReLU after). Returns y and, per output, the magnitude the
// float rounding inside oneDNN scales with.
struct Reference {
  std::vector<double> y, magnitude;
};

Reference dense_reference(const std::vector<float>& x, int64_t n, const QuantizedWeights& w,
                          const std::vector<float>& bias, const ActivationQuant& a, bool relu) {
  const int64_t in = w.shape[0], out = w.shape[1];
  Reference r;
  r.y.resize(n * out);
  r.magnitude.resize(n * out);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < out; ++c) {
      int32_t acc = 0, mag = 0;
      for (int64_t k = 0; k < in; ++k) {
        const int32_t q = quantize_activation(x[i * in + k], 1.0f / a.scale, a.zero_point);
        acc += (q - a.zero_point) * w.values[k * out + c];
        mag += std::abs(q * w.values[k * out + c]) + std::abs(a.zero_point * w.values[k * out + c]);
      }
      const double s = double{a.scale} * w.scales[c];
      double y = s * acc + (bias.empty() ? 0.0 : bias[c]);
      if (relu) y = std::max(y, 0.0);
      r.y[i * out + c] = y;
      r.magnitude[i * out + c] = s * mag + (bias.empty() ? 0.0 : std::fabs(bias[c]));
    }
  return r;
}

struct DenseCase {
  int64_t n, in, out;
  float xlo, xhi;
  bool bias, relu;
};

void PrintTo(const DenseCase& c, std::ostream* os) {
  *os << "[" << c.n << "," << c.in << "]x[" << c.in << "," << c.out << "] x in [" << c.xlo << "," << c.xhi
      << "]" << (c.bias ? " bias" : "") << (c.relu ? " relu" : "");
}

class QuantDenseTest : public ::testing::TestWithParam<DenseCase> {};

TEST_P(QuantDenseTest, MatchesInt32ReferenceAndFloatWithinBound) {
  const DenseCase p = GetParam();
  const Tensor x = rand_t({p.n, p.in}, 10, p.xlo, p.xhi);
  const Tensor w = rand_t({p.in, p.out}, 11, -0.3f, 0.3f);
  const Tensor b = p.bias ? rand_t({p.out}, 12) : Tensor();
  RangeObserver obs({.method = CalibrationMethod::MinMax});
  obs.observe(x);
  const ActivationQuant a = obs.params();
  if (p.xlo < 0) {
    EXPECT_GT(a.zero_point, 0);
  }
  const QuantizedWeights qw = quantize_weights(w, WeightLayout::DenseInOut);
  QuantizedDense op(qw, b, a, p.relu);
  const std::vector<float> got = op.forward(x).to_vector<float>();
  const std::vector<float> xv = x.to_vector<float>();
  const std::vector<float> bv = p.bias ? b.to_vector<float>() : std::vector<float>{};

  // 1. The same quantised arithmetic, to float rounding.
  const Reference ref = dense_reference(xv, p.n, qw, bv, a, p.relu);
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], ref.y[i], 1e-5 * ref.magnitude[i] + 1e-6) << i << " impl " << op.implementation(p.n);

  // 2. The float layer, within the bound quantisation allows: per product,
  //    |x w - x' w'| <= |x| s_c/2 + (s_x/2) (|w| + s_c/2) (no clipping: min/max calibration).
  Tensor yf = deft::kernel::matmul(x, w);
  std::vector<float> want = yf.to_vector<float>();
  const std::vector<float> wv = w.to_vector<float>();
  double err2 = 0, ref2 = 0;
  for (int64_t i = 0; i < p.n; ++i)
    for (int64_t c = 0; c < p.out; ++c) {
      double y = want[i * p.out + c] + (p.bias ? bv[c] : 0.0f), bound = 1e-4;
      if (p.relu) y = std::max(y, 0.0);
      for (int64_t k = 0; k < p.in; ++k)
        bound += std::fabs(xv[i * p.in + k]) * qw.scales[c] / 2 +
                 a.scale / 2 * (std::fabs(wv[k * p.out + c]) + qw.scales[c] / 2);
      ASSERT_NEAR(got[i * p.out + c], y, bound) << i << "," << c;
      err2 += (got[i * p.out + c] - y) * (got[i * p.out + c] - y);
      ref2 += y * y;
    }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.02) << "relative RMS error";
}

INSTANTIATE_TEST_SUITE_P(Shapes, QuantDenseTest,
                         ::testing::Values(DenseCase{32, 784, 128, 0.0f, 1.0f, true, true},
                                           DenseCase{17, 128, 10, -1.0f, 3.0f, true, false},
                                           DenseCase{1, 5, 3, -2.0f, -0.5f, false, false},
                                           DenseCase{64, 33, 65, -1.0f, 1.0f, true, true}));

TEST(QuantDense, BatchSizesAndThreadCountsGiveTheSameRows) {
  const Tensor x = rand_t({40, 64}, 20, -1.0f, 2.0f), w = rand_t({64, 24}, 21), b = rand_t({24}, 22);
  RangeObserver obs;
  obs.observe(x);
  QuantizedDense op(quantize_weights(w, WeightLayout::DenseInOut), b, obs.params(), true);
  const std::vector<float> all = op.forward(x).to_vector<float>();
  std::vector<float> part(7 * 24);
  op.forward(x.data<float>() + 10 * 64, 7, part.data());
  for (int i = 0; i < 7 * 24; ++i) EXPECT_NEAR(part[i], all[10 * 24 + i], 1e-5f);
  tt::ThreadCountGuard one(1);
  EXPECT_EQ(op.forward(x).to_vector<float>(), all);
  op.forward(x.data<float>(), 0, nullptr);  // an empty batch is a no-op
}

TEST(QuantDense, RejectsMismatchedParameters) {
  const QuantizedWeights qw = quantize_weights(rand_t({8, 4}, 30), WeightLayout::DenseInOut);
  const ActivationQuant a{0.1f, 3};
  QuantizedWeights bad = qw;
  bad.scales.pop_back();
  expect_input_error([&] { QuantizedDense(bad, Tensor(), a); }, {"3 weight scales for 4 output channels"});
  bad = qw;
  bad.values.pop_back();
  expect_input_error([&] { QuantizedDense(bad, Tensor(), a); }, {"31 int8 values"});
  bad = qw;
  bad.scales[2] = 0.0f;
  expect_input_error([&] { QuantizedDense(bad, Tensor(), a); }, {"channel 2"});
  bad = qw;
  bad.values[0] = -128;
  expect_input_error([&] { QuantizedDense(bad, Tensor(), a); }, {"-128"});
  expect_input_error([&] { QuantizedDense(qw, Tensor::zeros({5}), a); }, {"bias [5]"});
  expect_input_error([&] { QuantizedDense(qw, Tensor(), ActivationQuant{0.1f, 256}); }, {"zero point 256"});
  expect_input_error([&] { QuantizedDense(qw, Tensor(), ActivationQuant{-1.0f, 0}); }, {"input scale"});
  const QuantizedWeights conv = quantize_weights(rand_t({4, 2, 1, 1}, 31), WeightLayout::ConvOIHW);
  expect_input_error([&] { QuantizedDense(conv, Tensor(), a); }, {"[in, out] layout"});
  QuantizedDense op(qw, Tensor(), a);
  expect_input_error([&] { op.forward(Tensor::zeros({2, 9})); }, {"8 input features"});
}

// ---- Conv2d ------------------------------------------------------------------------------

Reference conv_reference(const std::vector<float>& x, const Shape& xs, const QuantizedWeights& w,
                         const std::vector<float>& bias, const ActivationQuant& a, const Conv2dParams& p,
                         bool relu, const Shape& ys) {
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ys[1], Ho = ys[2], Wo = ys[3];
  const int64_t Cg = w.shape[1], kh = w.shape[2], kw = w.shape[3], Og = O / p.groups;
  Reference r;
  r.y.resize(N * O * Ho * Wo);
  r.magnitude.resize(r.y.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < Ho; ++oh)
        for (int64_t ow = 0; ow < Wo; ++ow) {
          int32_t acc = 0, mag = 0;
          const int64_t g = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t i = 0; i < kh; ++i)
              for (int64_t j = 0; j < kw; ++j) {
                const int64_t h = oh * p.stride[0] - p.padding[0] + i * p.dilation[0];
                const int64_t ww = ow * p.stride[1] - p.padding[2] + j * p.dilation[1];
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;  // padding: 0.0, q = zp
                const int32_t q = quantize_activation(x[((n * C + g * Cg + c) * H + h) * W + ww],
                                                      1.0f / a.scale, a.zero_point);
                const auto wq =
                    static_cast<int32_t>(w.values[((o * Cg + c) * kh + i) * kw + j]);  // signed: int8
                acc += (q - a.zero_point) * wq;
                mag += std::abs(q * wq) + std::abs(a.zero_point * wq);
              }
          const double s = double{a.scale} * w.scales[o];
          double y = s * acc + (bias.empty() ? 0.0 : bias[o]);
          if (relu) y = std::max(y, 0.0);
          const int64_t idx = ((n * O + o) * Ho + oh) * Wo + ow;
          r.y[idx] = y;
          r.magnitude[idx] = s * mag + (bias.empty() ? 0.0 : std::fabs(bias[o]));
        }
  return r;
}

struct ConvCase {
  Shape x, w;
  Conv2dParams p;
  float xlo, xhi;
  bool bias, relu;
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << deft::shape_str(c.x) << " * " << deft::shape_str(c.w) << " stride " << c.p.stride[0] << ","
      << c.p.stride[1] << " pad " << c.p.padding[0] << "," << c.p.padding[1] << "," << c.p.padding[2] << ","
      << c.p.padding[3] << " dilation " << c.p.dilation[0] << "," << c.p.dilation[1] << " groups "
      << c.p.groups << " x in [" << c.xlo << "," << c.xhi << "]" << (c.bias ? " bias" : "")
      << (c.relu ? " relu" : "");
}

class QuantConvTest : public ::testing::TestWithParam<ConvCase> {};

TEST_P(QuantConvTest, MatchesInt32ReferenceAndFloatWithinBound) {
  const ConvCase c = GetParam();
  const Tensor x = rand_t(c.x, 40, c.xlo, c.xhi);
  const Tensor w = rand_t(c.w, 41, -0.5f, 0.5f);
  const Tensor b = c.bias ? rand_t({c.w[0]}, 42) : Tensor();
  RangeObserver obs({.method = CalibrationMethod::MinMax});
  obs.observe(x);
  const ActivationQuant a = obs.params();
  const QuantizedWeights qw = quantize_weights(w, WeightLayout::ConvOIHW);
  QuantizedConv2d op(qw, b, a, c.p, c.relu);
  const Tensor y = op.forward(x);
  const Tensor yf = deft::kernel::conv2d_forward(x, w, b, c.p, false, c.relu);
  ASSERT_EQ(y.shape(), yf.shape());
  const std::vector<float> got = y.to_vector<float>(), want = yf.to_vector<float>();
  const Reference ref =
      conv_reference(x.to_vector<float>(), c.x, qw, c.bias ? b.to_vector<float>() : std::vector<float>{}, a,
                     c.p, c.relu, y.shape());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], ref.y[i], 1e-5 * ref.magnitude[i] + 1e-6) << i << " impl " << op.implementation(c.x);
  // Float: per product |x| s_o/2 + (s_x/2)(|w| + s_o/2); bounded over the whole window
  // with the largest |x| and |w| (a looser but simple bound).
  const int64_t window = c.w[1] * c.w[2] * c.w[3], per_o = y.numel() / (c.x[0] * c.w[0]);
  const float xmax = std::max(std::fabs(c.xlo), std::fabs(c.xhi));
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const int64_t o = (static_cast<int64_t>(i) / per_o) % c.w[0];
    const double bound = window * (xmax * qw.scales[o] / 2 + a.scale / 2 * (0.5 + qw.scales[o] / 2)) + 1e-4;
    ASSERT_NEAR(got[i], want[i], bound) << i;
    err2 += (got[i] - want[i]) * (got[i] - want[i]);
    ref2 += double{want[i]} * want[i];
  }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.02) << "relative RMS error, impl " << op.implementation(c.x);
}

Conv2dParams conv_params(std::array<int64_t, 2> stride, std::array<int64_t, 4> pad,
                         std::array<int64_t, 2> dil, int64_t groups) {
  Conv2dParams p;
  p.stride = stride;
  p.padding = pad;
  p.dilation = dil;
  p.groups = groups;
  return p;
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, QuantConvTest,
    ::testing::Values(
        // simple_cnn's first layer: one channel, raw-ish non-negative pixels, same padding
        ConvCase{{4, 1, 28, 28},
                 {32, 1, 3, 3},
                 conv_params({1, 1}, {1, 1, 1, 1}, {1, 1}, 1),
                 0.0f,
                 1.0f,
                 true,
                 true},
        // normalised input (zero point inside the range) with padding: the border must stay 0.0
        ConvCase{{2, 32, 14, 14},
                 {64, 32, 3, 3},
                 conv_params({1, 1}, {1, 1, 1, 1}, {1, 1}, 1),
                 -1.0f,
                 2.0f,
                 true,
                 true},
        ConvCase{{3, 6, 11, 9},
                 {8, 6, 3, 2},
                 conv_params({2, 1}, {1, 0, 2, 1}, {2, 1}, 1),
                 -0.7f,
                 1.3f,
                 true,
                 false},
        ConvCase{{2, 8, 10, 10},
                 {12, 4, 3, 3},
                 conv_params({1, 2}, {1, 1, 1, 1}, {1, 1}, 2),
                 -1.0f,
                 1.0f,
                 false,
                 true},
        // depthwise
        ConvCase{{2, 16, 9, 9},
                 {16, 1, 3, 3},
                 conv_params({1, 1}, {1, 1, 1, 1}, {1, 1}, 16),
                 -2.0f,
                 1.0f,
                 true,
                 false}));

TEST(QuantConv, BuiltOnOneThreadRunOnAnother) {
  // deft serve loads the model on its main thread and predicts on its batcher thread.
  const Tensor x = rand_t({2, 8, 6, 6}, 55, -1.0f, 1.0f);
  RangeObserver obs;
  obs.observe(x);
  QuantizedConv2d op(quantize_weights(rand_t({4, 8, 3, 3}, 56), WeightLayout::ConvOIHW), rand_t({4}, 57),
                     obs.params(), conv_params({1, 1}, {1, 1, 1, 1}, {1, 1}, 1), true);
  const std::vector<float> here = op.forward(x).to_vector<float>();
  std::vector<float> there;
  std::thread([&] { there = op.forward(x).to_vector<float>(); }).join();
  EXPECT_EQ(here, there);
}

TEST(QuantConv, RejectsBadShapes) {
  const QuantizedWeights qw = quantize_weights(rand_t({4, 3, 3, 3}, 50), WeightLayout::ConvOIHW);
  QuantizedConv2d op(qw, Tensor(), {0.1f, 0}, {});
  expect_error<deft::ShapeError>([&] { op.forward(Tensor::zeros({1, 2, 8, 8})); }, {"[1,2,8,8]"});
  expect_error<deft::ShapeError>(
      [&] {
        op.forward(Tensor::zeros({1, 3, 2, 2}));
      },
      {"smaller than the kernel"});
  QuantizedWeights bad = qw;
  bad.scales.push_back(1.0f);
  expect_input_error(
      [&] {
        QuantizedConv2d(bad, Tensor(), {0.1f, 0}, {});
      },
      {"5 weight scales for 4 output channels"});
  expect_input_error(
      [&] {
        QuantizedConv2d(qw, Tensor(), {0.1f, 0}, conv_params({1, 1}, {0, 0, 0, 0}, {1, 1}, 3));
      },
      {"3 groups"});
}

// ---- model files --------------------------------------------------------------------------

TEST(QuantFile, WeightsRoundTripAsI8) {
  const QuantizedWeights qw = quantize_weights(rand_t({16, 3, 3, 3}, 60), WeightLayout::ConvOIHW);
  std::vector<std::pair<std::string, Tensor>> tensors{{"conv1.bias", rand_t({16}, 61)}};
  std::map<std::string, std::string> stored;
  append_quantized_weights("conv1", qw, tensors, stored);
  const std::string bytes = deft::encode_safetensors(tensors, {{"arch", "{}"}}, stored);
  EXPECT_NE(bytes.find("\"conv1.weight_int8\":{\"dtype\":\"I8\",\"shape\":[16,3,3,3]"), std::string::npos);
  const deft::SafetensorsFile f = deft::read_safetensors_bytes(bytes, "m.deft");
  const QuantizedWeights back = read_quantized_weights(f, "conv1", WeightLayout::ConvOIHW);
  EXPECT_EQ(back.values, qw.values);
  EXPECT_EQ(back.scales, qw.scales);
  EXPECT_EQ(back.shape, qw.shape);
}

TEST(QuantFile, CorruptWeightsAreInputErrors) {
  const QuantizedWeights qw = quantize_weights(rand_t({5, 4}, 62), WeightLayout::DenseInOut);
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> stored;
  append_quantized_weights("fc", qw, tensors, stored);
  // Three scales for four channels.
  tensors[1].second = Tensor::from_vector(std::vector<float>{1, 1, 1});
  deft::SafetensorsFile f =
      deft::read_safetensors_bytes(deft::encode_safetensors(tensors, {}, stored), "bad.deft");
  expect_input_error([&] { read_quantized_weights(f, "fc", WeightLayout::DenseInOut); },
                     {"bad.deft", "'fc'", "3 weight scales for 4 output channels"});
  // A value outside int8 (stored as I64).
  tensors[1].second = Tensor::from_vector(qw.scales);
  tensors[0].second = Tensor::full({5, 4}, 200.0, deft::DType::Int64);
  f = deft::read_safetensors_bytes(deft::encode_safetensors(tensors), "bad.deft");
  expect_input_error([&] { read_quantized_weights(f, "fc", WeightLayout::DenseInOut); },
                     {"fc.weight_int8", "200"});
  expect_input_error([&] { read_quantized_weights(f, "fc2", WeightLayout::DenseInOut); },
                     {"fc2.weight_int8"});
  // write_safetensors renames only UInt8 tensors, and only to one-byte dtypes.
  expect_input_error(
      [&] {
        deft::encode_safetensors(tensors, {}, {{"fc.weight_scale", "I8"}});
      },
      {"fc.weight_scale"});
  expect_input_error([&] { deft::encode_safetensors(tensors, {}, {{"nope", "I8"}}); }, {"'nope'"});
}

TEST(QuantFile, LayerJsonRoundTrip) {
  const QuantizedWeights qw = quantize_weights(rand_t({5, 4}, 63), WeightLayout::DenseInOut);
  const ActivationQuant a{0.0123f, 17};
  const nlohmann::json j =
      layer_quant_json(qw, a, {.method = CalibrationMethod::Percentile, .percentile = 99.9});
  EXPECT_EQ(j["weight"]["scheme"], "symmetric_per_channel");
  EXPECT_EQ(j["weight"]["axis"], 1);
  EXPECT_EQ(j["input"]["method"], "percentile");
  EXPECT_EQ(j["input"]["percentile"], 99.9);
  const ActivationQuant back = input_quant_from_json(nlohmann::json::parse(j.dump()), "fc");
  EXPECT_EQ(back.scale, a.scale);
  EXPECT_EQ(back.zero_point, a.zero_point);
  nlohmann::json bad = j;
  bad["input"]["zero_point"] = 300;
  expect_input_error([&] { input_quant_from_json(bad, "layer fc"); }, {"layer fc", "300"});
  bad = j;
  bad["input"].erase("scale");
  expect_input_error([&] { input_quant_from_json(bad, "layer fc"); }, {"scale"});
  expect_input_error([&] { input_quant_from_json(nlohmann::json::object(), "layer fc"); }, {"\"input\""});
}

// ---- the plan pass -------------------------------------------------------------------------

// A small simple_cnn: Conv 8 3x3 same + ReLU -> MaxPool 2 -> Flatten -> Dense 16 + ReLU -> Dense 4,
// built as the inference plan builds a saved model (architecture JSON + weights).
infer::Plan small_cnn_plan() {
  const nlohmann::json conv = {{"type", "Conv2d"},
                               {"config",
                                {{"activation", "relu"},
                                 {"dilation", 1},
                                 {"filters", 8},
                                 {"groups", 1},
                                 {"kernel_size", 3},
                                 {"padding", "same"},
                                 {"stride", 1},
                                 {"use_bias", true}}}};
  const nlohmann::json pool = {
      {"type", "MaxPool2d"},
      {"config", {{"ceil_mode", false}, {"kernel_size", 2}, {"padding", "valid"}, {"stride", 2}}}};
  auto dense = [](int units, const char* act) {
    return nlohmann::json{{"type", "Dense"},
                          {"config", {{"activation", act}, {"units", units}, {"use_bias", true}}}};
  };
  const nlohmann::json arch = {{"type", "Sequential"},
                               {"config",
                                {{"layers",
                                  {conv,
                                   pool,
                                   {{"type", "Flatten"}, {"config", nlohmann::json::object()}},
                                   dense(16, "relu"),
                                   dense(4, "")}}}}};
  std::map<std::string, Tensor> w{
      {"0.kernel", rand_t({8, 1, 3, 3}, 70, -0.5f, 0.5f)},    {"0.bias", rand_t({8}, 71, -0.1f, 0.1f)},
      {"3.kernel", rand_t({8 * 4 * 4, 16}, 72, -0.2f, 0.2f)}, {"3.bias", rand_t({16}, 73, -0.1f, 0.1f)},
      {"4.kernel", rand_t({16, 4}, 74, -0.5f, 0.5f)},         {"4.bias", rand_t({4}, 75, -0.1f, 0.1f)}};
  return infer::Plan::build(arch, {1, 8, 8}, w, "small.deft");
}

TEST(QuantPlan, CalibratesAndSwapsLinearOpsAndKeepsTheFirstConvFloat) {
  infer::Plan plan = small_cnn_plan();
  plan.allocate(16);
  const Tensor x = rand_t({16, 1, 8, 8}, 76, -1.0f, 2.0f);
  std::copy_n(x.data<float>(), x.numel(), plan.input());
  const float* out = plan.run(16);
  const std::vector<float> want(out, out + 16 * 4);

  const std::vector<QuantizedOpInfo> infos = quantize_plan(
      plan, rand_t({40, 1, 8, 8}, 77, -1.0f, 2.0f), {.calibration = {.method = CalibrationMethod::MinMax}});
  ASSERT_EQ(infos.size(), 3u) << plan.describe();
  EXPECT_EQ(infos[0].kind, "conv2d");
  EXPECT_FALSE(infos[0].quantized);  // 1 input channel: stays float
  EXPECT_GT(infos[0].input.zero_point, 0);
  EXPECT_EQ(infos[1].kind, "linear");
  EXPECT_TRUE(infos[1].quantized);
  EXPECT_EQ(infos[1].input.zero_point, 0);  // after max-pooled ReLU outputs
  EXPECT_TRUE(infos[2].quantized);
  EXPECT_NE(plan.describe().find("linear int8 128->16 + relu"), std::string::npos) << plan.describe();

  std::copy_n(x.data<float>(), x.numel(), plan.input());
  out = plan.run(16);
  double err2 = 0, ref2 = 0;
  for (int i = 0; i < 16 * 4; ++i) {
    err2 += (out[i] - want[i]) * (out[i] - want[i]);
    ref2 += want[i] * want[i];
  }
  EXPECT_LT(std::sqrt(err2 / ref2), 0.03);
  EXPECT_GT(err2, 0.0);  // int8 really ran
  expect_input_error([&] { quantize_plan(plan, Tensor::zeros({4, 1, 8, 7})); }, {"[4,1,8,7]", "[1,8,8]"});
}

TEST(QuantPlan, QuantizedConvOpMatchesTheFloatConvOp) {
  infer::ConvGeometry g;
  g.C = 16;
  g.H = g.W = 9;
  g.O = 12;
  g.kh = g.kw = 3;
  g.stride = {2, 2};
  g.padding = {1, 1, 1, 1};
  g.Ho = g.Wo = 5;
  const Tensor w = rand_t({12, 16, 3, 3}, 80, -0.3f, 0.3f), b = rand_t({12}, 81);
  infer::ConvOp fop(g, w, b);
  infer::Activation act;
  ASSERT_TRUE(infer::Activation::parse("tanh", 0.0, &act));
  ASSERT_TRUE(fop.fuse_activation(act));
  const Tensor x = rand_t({3, 16, 9, 9}, 82, 0.0f, 1.0f);
  RangeObserver obs;
  obs.observe(x);
  QuantizedConvOp qop(fop, obs.params());
  EXPECT_EQ(qop.output_shape, fop.output_shape);
  std::vector<float> yf(3 * 12 * 25), yq(yf.size());
  const float* in = x.data<float>();
  fop.run({&in, 1}, yf.data(), 3);
  qop.run({&in, 1}, yq.data(), 3);
  for (size_t i = 0; i < yf.size(); ++i) EXPECT_NEAR(yq[i], yf[i], 0.05) << i;  // tanh applied after int8
  EXPECT_EQ(qop.describe(), "conv2d int8 16->12 3x3/2 + tanh");
}

}  // namespace
