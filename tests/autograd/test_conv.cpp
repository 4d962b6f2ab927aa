// Convolution and pooling values: conv2d against a direct double-precision
// reference for every option; pooling against values PyTorch 1.13 printed for the
// same inputs (F.avg_pool2d / F.adaptive_avg_pool2d, recorded in the comments).
#include <gtest/gtest.h>

#include <cmath>

#include "deft/autograd/ops.h"
#include "deft/autograd/ops_conv.h"
#include "deft/tensor/error.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"
#include "../tensor/test_util.h"

namespace deft {
namespace {

// Direct convolution, one output at a time, in double.
std::vector<double> reference_conv(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), Cg = w.size(1), kh = w.size(2), kw = w.size(3), G = p.groups, Og = O / G;
  const int64_t Ho = conv_output_size(H, kh, p.stride[0], p.padding[0] + p.padding[1], p.dilation[0]);
  const int64_t Wo = conv_output_size(W, kw, p.stride[1], p.padding[2] + p.padding[3], p.dilation[1]);
  const float* px = x.data<float>();
  const float* pw = w.data<float>();
  std::vector<double> out;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double s = b.defined() ? b.data<float>()[o] : 0.0;
          const int64_t g = o / Og;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t u = 0; u < kh; ++u)
              for (int64_t v = 0; v < kw; ++v) {
                const int64_t h = i * p.stride[0] - p.padding[0] + u * p.dilation[0];
                const int64_t ww = j * p.stride[1] - p.padding[2] + v * p.dilation[1];
                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                s += static_cast<double>(px[((n * C + g * Cg + c) * H + h) * W + ww]) *
                     pw[((o * Cg + c) * kh + u) * kw + v];
              }
          out.push_back(s);
        }
  (void)N;
  return out;
}

struct ConvCase {
  Shape x, w;
  bool bias;
  Conv2dParams p;
};

TEST(Conv2d, MatchesDirectReferenceForEveryOption) {
  const std::vector<ConvCase> cases{
      {{2, 3, 7, 6}, {5, 3, 3, 3}, true, {}},
      {{2, 1, 28, 28}, {8, 1, 3, 3}, true, {.padding = {1, 1, 1, 1}}},
      {{3, 16, 14, 14}, {32, 16, 3, 3}, true, {.padding = {1, 1, 1, 1}}},
      {{2, 4, 9, 8}, {6, 4, 3, 2}, false, {.stride = {2, 3}, .padding = {0, 1, 2, 0}}},
      {{1, 4, 10, 10}, {4, 2, 3, 3}, true, {.padding = {2, 2, 2, 2}, .dilation = {2, 2}, .groups = 2}},
      {{2, 6, 8, 8}, {6, 1, 3, 3}, false, {.stride = {2, 2}, .padding = {1, 1, 1, 1}, .groups = 6}},
      {{2, 8, 5, 5}, {16, 8, 1, 1}, true, {.stride = {2, 2}}},
  };
  Generator gen(5);
  for (const auto& c : cases) {
    const Tensor x = Tensor::randn(c.x, gen), w = Tensor::randn(c.w, gen);
    const Tensor b = c.bias ? Tensor::randn({c.w[0]}, gen) : Tensor();
    const Tensor y = conv2d(x, w, b, c.p);
    const auto ref = reference_conv(x, w, b, c.p);
    ASSERT_EQ(static_cast<size_t>(y.numel()), ref.size()) << shape_str(c.x) << " * " << shape_str(c.w);
    const float* py = y.data<float>();
    double worst = 0;
    for (size_t i = 0; i < ref.size(); ++i) worst = std::max(worst, std::abs(py[i] - ref[i]));
    EXPECT_LT(worst, 1e-3) << shape_str(c.x) << " * " << shape_str(c.w);
  }
}

TEST(Conv2d, FusedReluEqualsReluOfConv) {
  Generator gen(6);
  for (int64_t C : {1, 16}) {  // plain-layout and blocked forward
    const Tensor x = Tensor::randn({4, C, 9, 9}, gen), w = Tensor::randn({8, C, 3, 3}, gen);
    const Tensor b = Tensor::randn({8}, gen);
    const Conv2dParams p{.padding = {1, 1, 1, 1}};
    const Tensor fused = conv2d_relu(x, w, b, p), separate = relu(conv2d(x, w, b, p));
    const auto f = std::vector<float>(fused.data<float>(), fused.data<float>() + fused.numel());
    EXPECT_TRUE(tt::all_close(f, std::vector<double>(separate.data<float>(), separate.data<float>() + separate.numel()),
                              1e-5, 1e-5));
  }
}

TEST(Conv2d, SamePaddingKeepsTheSizeOverStride) {
  // TensorFlow's rule: output ceil(in / stride), the odd pixel of padding after.
  EXPECT_EQ(same_padding(28, 3, 1), (std::array<int64_t, 2>{1, 1}));
  EXPECT_EQ(same_padding(28, 4, 1), (std::array<int64_t, 2>{1, 2}));
  EXPECT_EQ(same_padding(28, 3, 2), (std::array<int64_t, 2>{0, 1}));
  EXPECT_EQ(same_padding(7, 5, 1, 2), (std::array<int64_t, 2>{4, 4}));
  for (int64_t in : {5, 7, 28, 32})
    for (int64_t k : {1, 2, 3, 5})
      for (int64_t s : {1, 2, 3}) {
        const auto pad = same_padding(in, k, s);
        EXPECT_EQ(conv_output_size(in, k, s, pad[0] + pad[1]), (in + s - 1) / s) << in << " " << k << " " << s;
      }
}

TEST(Conv2d, ResultDoesNotDependOnTheThreadCount) {
  Generator gen(2);
  Tensor x = Tensor::randn({8, 16, 14, 14}, gen).set_requires_grad(true);
  Tensor w = Tensor::randn({32, 16, 3, 3}, gen).set_requires_grad(true);
  auto run = [&](int threads) {
    set_num_threads(threads);
    x.zero_grad();
    w.zero_grad();
    Tensor y = conv2d(x, w, Tensor(), {.padding = {1, 1, 1, 1}});
    sum(y * y).backward();
    return std::vector<Tensor>{y, x.grad(), w.grad()};
  };
  const auto one = run(1), two = run(2);
  set_num_threads(0);
  for (size_t i = 0; i < one.size(); ++i) {
    const Tensor a = kernel::contiguous(one[i]), b = kernel::contiguous(two[i]);
    EXPECT_TRUE(tt::all_close(std::vector<float>(a.data<float>(), a.data<float>() + a.numel()),
                          std::vector<double>(b.data<float>(), b.data<float>() + b.numel()), 1e-3, 1e-4))
        << "output " << i;
  }
}

TEST(Conv2d, ShapeErrorsNameTheShapes) {
  Generator gen(1);
  const Tensor x = Tensor::randn({2, 3, 5, 5}, gen);
  try {
    conv2d(x, Tensor::randn({4, 2, 3, 3}, gen), Tensor());
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("[2,3,5,5]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4,2,3,3]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(conv2d(x, Tensor::randn({4, 3, 7, 7}, gen), Tensor()), ShapeError);          // kernel > input
  EXPECT_THROW(conv2d(x, Tensor::randn({4, 1, 3, 3}, gen), Tensor(), {.groups = 2}), ShapeError);  // 3 % 2
  EXPECT_THROW(conv2d(Tensor::randn({3, 5, 5}, gen), Tensor::randn({4, 3, 3, 3}, gen), Tensor()), ShapeError);
  EXPECT_THROW(conv2d(x, Tensor::randn({4, 3, 3, 3}, gen), Tensor::randn({3}, gen)), ShapeError);
}

std::vector<float> values(const Tensor& t) {
  const Tensor c = kernel::contiguous(t);
  return std::vector<float>(c.data<float>(), c.data<float>() + c.numel());
}

void expect_values(const Tensor& t, const std::vector<float>& expected) {
  const auto v = values(t);
  ASSERT_EQ(v.size(), expected.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], expected[i], 1e-5) << "element " << i;
}

TEST(Pool2d, AverageMatchesPyTorch) {
  const Tensor x = kernel::reshape(Tensor::arange(0, 25), {1, 1, 5, 5});
  // F.avg_pool2d(x, 3, 2, 1)
  expect_values(avg_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}}),
                {1.3333333f, 3.0f, 2.6666667f, 7.0f, 12.0f, 9.0f, 8.0f, 13.0f, 9.333333f});
  // F.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
  expect_values(avg_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}, .ceil_mode = true,
                               .count_include_pad = false}),
                {3.0f, 4.5f, 6.0f, 10.5f, 12.0f, 13.5f, 18.0f, 19.5f, 21.0f});
  // F.avg_pool2d(arange(36).reshape(1,1,6,6), 3, 2, 1, ceil_mode=True): the last window hangs over the padding
  expect_values(avg_pool2d(kernel::reshape(Tensor::arange(0, 36), {1, 1, 6, 6}),
                           {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}, .ceil_mode = true}),
                {1.5555556f, 3.3333333f, 4.6666665f, 2.6666667f, 8.333333f, 14.0f, 16.0f, 8.5f, 16.333334f, 26.0f,
                 28.0f, 14.5f, 10.166667f, 16.0f, 17.0f, 8.75f});
  // F.adaptive_avg_pool2d(arange(35).reshape(1,1,5,7), (3, 2))
  expect_values(adaptive_avg_pool2d(kernel::reshape(Tensor::arange(0, 35), {1, 1, 5, 7}), {3, 2}),
                {5.0f, 8.0f, 15.5f, 18.5f, 26.0f, 29.0f});
}

TEST(Pool2d, MaxShapesAndValuesMatchPyTorch) {
  Generator gen(4);
  const Tensor x = Tensor::randn({1, 2, 6, 5}, gen);
  // torch: max_pool2d(x, 3, 2, 1, ceil_mode=True) -> [1, 2, 4, 3]; (x, 2, 2, ceil_mode=True) -> [1, 2, 3, 3]
  EXPECT_EQ(max_pool2d(x, {.kernel = {3, 3}, .stride = {2, 2}, .padding = {1, 1, 1, 1}, .ceil_mode = true}).shape(),
            (Shape{1, 2, 4, 3}));
  EXPECT_EQ(max_pool2d(x, {.ceil_mode = true}).shape(), (Shape{1, 2, 3, 3}));
  // 2x2 windows: each output is the max of its four inputs (the fast path) and agrees
  // with the general path (a 2x2 kernel with stride 2 written as a padded-free 3-arg call).
  const Tensor y = max_pool2d(x);
  const float* px = x.data<float>();
  const auto v = values(y);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) {
        float m = -INFINITY;
        for (int64_t u = 0; u < 2; ++u)
          for (int64_t w = 0; w < 2; ++w) m = std::max(m, px[c * 30 + (2 * i + u) * 5 + 2 * j + w]);
        EXPECT_EQ(v[(c * 3 + i) * 2 + j], m);
      }
  // NaN propagates, as in PyTorch.
  Tensor n = Tensor::zeros({1, 1, 2, 2});
  n.data<float>()[2] = NAN;
  EXPECT_TRUE(std::isnan(max_pool2d(n).data<float>()[0]));
  EXPECT_THROW(max_pool2d(x, {.kernel = {2, 2}, .stride = {2, 2}, .padding = {2, 2, 2, 2}}), InputError);
  EXPECT_THROW(max_pool2d(Tensor::randn({1, 1, 1, 1}, gen)), ShapeError);
}

TEST(Dropout2d, ZeroesWholeChannelsAndScalesTheRest) {
  Generator gen(9);
  const Tensor x = Tensor::ones({4, 50, 3, 3});
  const auto v = values(dropout2d(x, 0.4f, gen));
  int64_t dropped = 0;
  for (int64_t c = 0; c < 200; ++c) {
    const float first = v[c * 9];
    EXPECT_TRUE(first == 0.0f || std::abs(first - 1.0f / 0.6f) < 1e-6);
    for (int64_t i = 1; i < 9; ++i) EXPECT_EQ(v[c * 9 + i], first);
    dropped += first == 0.0f;
  }
  EXPECT_GT(dropped, 50);  // about 80 of 200 expected
  EXPECT_LT(dropped, 110);
}

}  // namespace
}  // namespace deft
