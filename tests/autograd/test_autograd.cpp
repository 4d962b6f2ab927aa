// Autograd engine behaviour: accumulation, no-grad, shared subgraphs, errors.
#include <gtest/gtest.h>

#include <cmath>

#include "deft/autograd/ops.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"

namespace deft {
namespace {

TEST(Autograd, GradientsAccumulateUntilZeroed) {
  Tensor w = Tensor::from_vector<float>({1, 2, 3}).set_requires_grad();
  sum(w * w).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
  sum(w * w).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{4, 8, 12}));
  w.zero_grad();
  EXPECT_FALSE(w.grad().defined());
  sum(w).backward();
  EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = Tensor::from_vector<float>({0.5f, -1.0f}).set_requires_grad();
  Tensor a = x * 3.0f;
  Tensor y = sum(a * a + a);  // d/dx = (2a + 1) * 3
  y.backward();
  const auto g = x.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(g[0], (2 * 1.5f + 1) * 3);
  EXPECT_FLOAT_EQ(g[1], (2 * -3.0f + 1) * 3);
}

TEST(Autograd, SameTensorTwiceAsInput) {
  Tensor x = Tensor::from_vector<float>({2.0f}).set_requires_grad();
  sum(add(x, x)).backward();
  EXPECT_FLOAT_EQ(x.grad().item(), 2.0f);
}

TEST(Autograd, LeafGradientsDoNotAlias) {
  // add's backward hands the same gradient to both inputs; each leaf must own a copy.
  Tensor a = Tensor::ones({3}).set_requires_grad();
  Tensor b = Tensor::ones({3}).set_requires_grad();
  sum(a + b).backward();
  a.grad().fill(5.0);
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Autograd, NoGradRecordsNothing) {
  Tensor w = Tensor::ones({2, 2}).set_requires_grad();
  {
    NoGradGuard ng;
    Tensor y = matmul(w, w);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn_name(), nullptr);
  }
  Tensor y = matmul(w, w);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_STREQ(y.grad_fn_name(), "matmul");
}

TEST(Autograd, InputsWithoutGradGetNone) {
  Tensor x = Tensor::ones({4, 3});
  Tensor w = Tensor::ones({3, 2}).set_requires_grad();
  sum(matmul(x, w)).backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_EQ(w.grad().to_vector<float>(), std::vector<float>(6, 4.0f));
}

TEST(Autograd, BroadcastGradientHasInputShape) {
  Tensor x = Tensor::ones({5, 3});
  Tensor b = Tensor::zeros({3}).set_requires_grad();
  sum(x + b).backward();
  EXPECT_EQ(b.grad().shape(), (Shape{3}));
  EXPECT_EQ(b.grad().to_vector<float>(), (std::vector<float>{5, 5, 5}));
}

TEST(Autograd, ViewsPropagateToBase) {
  Tensor x = Tensor::arange(0, 6).set_requires_grad();
  Tensor v = transpose(reshape(x, {2, 3}), 0, 1);  // [3,2], non-contiguous
  sum(slice(v, 0, 1, 3) * 2.0f).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 2, 2, 0, 2, 2}));
}

TEST(Autograd, Errors) {
  Tensor x = Tensor::ones({2, 2});
  EXPECT_THROW(x.backward(), InputError);  // does not require grad
  Tensor w = Tensor::ones({2, 2}).set_requires_grad();
  EXPECT_THROW((w * 2.0f).backward(), ShapeError);  // not a scalar
  EXPECT_THROW(Tensor::ones({2}, DType::Int64).set_requires_grad(), InputError);
  try {
    matmul(Tensor::ones({64, 784}).set_requires_grad(), Tensor::ones({128, 10}));
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "matmul: shapes [64,784] and [128,10] do not match");
  }
}

TEST(Autograd, SeededInitIsIndependentOfThreads) {
  // Same seed, different thread counts: the same parameters and the same gradients, bit for bit.
  auto run = [](int threads) {
    set_num_threads(threads);
    Generator gen(11);
    Tensor x = Tensor::randn({512, 64}, gen);
    Tensor w = Tensor::randn({64, 32}, gen).set_requires_grad();
    sum(tanh(matmul(x, w))).backward();
    return w.grad().to_vector<float>();
  };
  const auto a = run(1), b = run(1), c = run(2);
  set_num_threads(0);
  EXPECT_EQ(a, b);
  // GEMM blocking may differ with the team size; reductions and RNG may not.
  ASSERT_EQ(a.size(), c.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-3f * (1.0f + std::fabs(a[i])));
}

}  // namespace
}  // namespace deft
