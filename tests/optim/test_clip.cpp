// Gradient clipping against a double-precision reference (PyTorch's
// clip_grad_norm_: scale by max_norm / (norm + 1e-6) when below 1).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "deft/optim/clip.h"
#include "deft/tensor/kernels.h"
#include "optim_test_util.h"

namespace deft::optim_test {
namespace {

double reference_norm(const std::vector<std::vector<float>>& grads) {
  double s = 0;
  for (const auto& g : grads)
    for (float x : g) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST(ClipGradNorm, ReturnsTheNormAndScalesToMaxNorm) {
  const std::vector<std::vector<float>> grads{random_floats(300, 1), random_floats(7, 2, -5, 5)};
  std::vector<Tensor> params{param(random_floats(300, 3), {30, 10}), param(random_floats(7, 4), {7}),
                             param({1.0f}, {1})};  // no gradient: skipped
  set_grad(params[0], grads[0]);
  set_grad(params[1], grads[1]);
  const double expected = reference_norm(grads);
  const double max_norm = 1.5;
  ASSERT_GT(expected, 2 * max_norm);

  const double norm = optim::clip_grad_norm(params, max_norm);
  EXPECT_NEAR(norm, expected, 1e-12 * expected);
  const double coef = max_norm / (expected + 1e-6);
  for (size_t k = 0; k < grads.size(); ++k) {
    const std::vector<float> got = params[k].grad().to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], grads[k][i] * coef, 1e-6);
  }
  EXPECT_FALSE(params[2].grad().defined());
  // Now within a larger limit: the norm is returned and nothing changes.
  const Tensor before = params[0].grad().clone();
  EXPECT_NEAR(optim::clip_grad_norm(params, 2 * max_norm), max_norm, 1e-5);
  EXPECT_TRUE(bitwise_equal(params[0].grad(), before));
}

TEST(ClipGradNorm, LargeGradientsGiveTheSameNormOnAnyThreadCount) {
  const size_t n = (size_t{1} << 18) + 5;  // several 64K blocks
  const std::vector<float> g = random_floats(n, 9);
  const double expected = reference_norm({g});
  std::vector<double> norms;
  for (int threads : {1, 2}) {
    ThreadCountGuard scope(threads);
    Tensor p = param(std::vector<float>(n, 0.0f), {static_cast<int64_t>(n)});
    set_grad(p, g);
    norms.push_back(optim::clip_grad_norm({p}, 1e9));
  }
  EXPECT_EQ(norms[0], norms[1]);
  EXPECT_NEAR(norms[0], expected, 1e-12 * expected);
}

TEST(ClipGradNorm, NonFiniteNormLeavesGradientsAlone) {
  Tensor p = param({0, 0, 0}, {3});
  set_grad(p, {1.0f, std::numeric_limits<float>::infinity(), 2.0f});
  EXPECT_TRUE(std::isinf(optim::clip_grad_norm({p}, 1.0)));
  EXPECT_EQ(p.grad().to_vector<float>()[0], 1.0f);
}

TEST(ClipGradNorm, StridedGradientIsScaledInPlace) {
  Tensor p = param({0, 0, 0, 0, 0, 0}, {2, 3});
  // A gradient that is a transposed view of a [3,2] buffer (as a user could set).
  Tensor buffer = Tensor::from_vector<float>({3, 0, 0, 4, 0, 0}, {3, 2});
  p.impl()->autograd->grad = kernel::transpose(buffer, 0, 1);
  EXPECT_NEAR(optim::clip_grad_norm({p}, 1.0), 5.0, 1e-12);
  const std::vector<float> got = p.grad().to_vector<float>();
  EXPECT_NEAR(got[0], 3.0 / (5.0 + 1e-6), 1e-6);
  EXPECT_NEAR(got[4], 4.0 / (5.0 + 1e-6), 1e-6);
}

TEST(ClipGradValue, ClampsEveryElement) {
  Tensor p = param({0, 0, 0, 0}, {4});
  Tensor q = param({0}, {1});
  set_grad(p, {-3.0f, 0.25f, 0.5f, 7.0f});
  optim::clip_grad_value({p, q}, 0.5);
  EXPECT_EQ(p.grad().to_vector<float>(), (std::vector<float>{-0.5f, 0.25f, 0.5f, 0.5f}));
  EXPECT_FALSE(q.grad().defined());
}

TEST(ClipErrors, RejectBadLimits) {
  Tensor p = param({0}, {1});
  expect_input_error([&] { optim::clip_grad_norm({p}, -1.0); }, {"max_norm", "-1"});
  expect_input_error([&] { optim::clip_grad_norm({p}, std::nan("")); }, {"max_norm"});
  expect_input_error([&] { optim::clip_grad_value({p}, -0.5); }, {"clip", "-0.5"});
}

}  // namespace
}  // namespace deft::optim_test
