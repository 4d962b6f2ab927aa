// The layer ops of deft/autograd/ops_nn.h (dropout, layer_norm, batch_norm,
// embedding, linear) against naive references computed here in double, plus
// their error messages and determinism across thread counts. Gradients are
// checked by finite differences in tests/autograd/test_gradcheck.cpp; here the
// backward passes are compared with the composed ops they replace.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../tensor/test_util.h"
#include "deft/autograd/ops.h"
#include "deft/autograd/ops_nn.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/random.h"

namespace deft {
namespace {

// Comparisons are all_close(got, want, tol, tol): within tol * (1 + |want|).
using tt::all_close;
using tt::error_message;
using tt::ThreadCountGuard;

// These tests draw their data from [-2, 2] unless they say otherwise.
Tensor rand_tensor(const Shape& s, uint32_t seed, float lo = -2.0f, float hi = 2.0f) {
  return tt::rand_tensor(s, seed, lo, hi);
}

// ---- dropout ------------------------------------------------------------------------------------
TEST(Dropout, ZeroRateReturnsInputAndBadRatesThrow) {
  Tensor x = Tensor::ones({3, 4});
  Generator gen(1);
  EXPECT_TRUE(dropout(x, 0.0f, gen).same(x));
  EXPECT_EQ(gen.offset(), 0u);
  for (float p : {1.0f, -0.1f, 1.5f, std::nanf("")}) {
    const std::string msg = error_message<InputError>([&] { dropout(x, p, gen); });
    EXPECT_NE(msg.find("dropout"), std::string::npos) << msg;
  }
}

TEST(Dropout, KeepsAboutOneMinusPAndScalesKeptValues) {
  const float p = 0.3f;
  Tensor x = rand_tensor({100, 200}, 5, 0.5f, 1.5f);
  Generator gen(42);
  const Tensor y = dropout(x, p, gen);
  EXPECT_EQ(gen.offset(), 20000u / 4);  // one Philox block per 4 elements
  const auto xv = x.to_vector<float>(), yv = y.to_vector<float>();
  int64_t kept = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0f) continue;
    ++kept;
    ASSERT_NEAR(yv[i], xv[i] / (1.0f - p), 1e-6f);
  }
  EXPECT_NEAR(static_cast<double>(kept) / 20000.0, 1.0 - p, 0.015);
  // The next call draws a fresh mask.
  const auto y2 = dropout(x, p, gen).to_vector<float>();
  EXPECT_NE(y2, yv);
}

TEST(Dropout, SameSeedSameMaskOnAnyThreadCount) {
  Tensor x = Tensor::ones({300, 1000});
  std::vector<float> a, b;
  {
    ThreadCountGuard t(1);
    Generator gen(9);
    a = dropout(x, 0.5f, gen).to_vector<float>();
  }
  {
    ThreadCountGuard t(2);
    Generator gen(9);
    b = dropout(x, 0.5f, gen).to_vector<float>();
  }
  EXPECT_EQ(a, b);
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  Tensor x = rand_tensor({7, 9}, 3).set_requires_grad();
  Generator gen(5);
  const Tensor y = dropout(x, 0.4f, gen);
  const Tensor g = rand_tensor({7, 9}, 4);
  y.backward(g);
  const auto yv = y.to_vector<float>(), xv = x.to_vector<float>(), gv = g.to_vector<float>();
  const auto gx = x.grad().to_vector<float>();
  for (size_t i = 0; i < yv.size(); ++i) {
    const bool kept = yv[i] != 0.0f;
    EXPECT_FLOAT_EQ(gx[i], kept ? gv[i] / 0.6f : 0.0f) << i;
  }
}

// ---- layer norm ---------------------------------------------------------------------------------
std::vector<double> layer_norm_ref(const std::vector<float>& x, int64_t D, const std::vector<float>& w,
                                   const std::vector<float>& b, double eps) {
  std::vector<double> out(x.size());
  for (size_t r = 0; r < x.size() / D; ++r) {
    double mean = 0, var = 0;
    for (int64_t j = 0; j < D; ++j) mean += x[r * D + j];
    mean /= D;
    for (int64_t j = 0; j < D; ++j) var += (x[r * D + j] - mean) * (x[r * D + j] - mean);
    var /= D;
    for (int64_t j = 0; j < D; ++j) {
      double y = (x[r * D + j] - mean) / std::sqrt(var + eps);
      if (!w.empty()) y *= w[j];
      if (!b.empty()) y += b[j];
      out[r * D + j] = y;
    }
  }
  return out;
}

TEST(LayerNorm, MatchesReference) {
  const Tensor x = rand_tensor({4, 3, 7}, 1, -3.0f, 5.0f);
  const Tensor w = rand_tensor({7}, 2), b = rand_tensor({7}, 3);
  EXPECT_TRUE(all_close(
      layer_norm(x, w, b).to_vector<float>(),
      layer_norm_ref(x.to_vector<float>(), 7, w.to_vector<float>(), b.to_vector<float>(), 1e-5), 1e-5, 1e-5))
      << "affine";
  EXPECT_TRUE(all_close(layer_norm(x, Tensor(), Tensor(), 0.1f).to_vector<float>(),
                        layer_norm_ref(x.to_vector<float>(), 7, {}, {}, 0.1), 1e-5, 1e-5))
      << "plain";
  // Large offset: the two-pass variance does not cancel.
  const Tensor shifted = rand_tensor({2, 64}, 4, 1000.0f, 1001.0f);
  EXPECT_TRUE(all_close(layer_norm(shifted, Tensor(), Tensor()).to_vector<float>(),
                        layer_norm_ref(shifted.to_vector<float>(), 64, {}, {}, 1e-5), 2e-3, 2e-3))
      << "offset";
}

TEST(LayerNorm, BackwardMatchesComposedOps) {
  Tensor x1 = rand_tensor({5, 6}, 7).set_requires_grad();
  Tensor w1 = rand_tensor({6}, 8).set_requires_grad(), b1 = rand_tensor({6}, 9).set_requires_grad();
  Tensor x2 = x1.detach().clone().set_requires_grad();
  Tensor w2 = w1.detach().clone().set_requires_grad(), b2 = b1.detach().clone().set_requires_grad();
  const Tensor g = rand_tensor({5, 6}, 10);
  layer_norm(x1, w1, b1).backward(g);
  const Tensor mean_ = mean(x2, {-1}, true);
  const Tensor centered = x2 - mean_;
  const Tensor var = mean(square(centered), {-1}, true);
  (centered / sqrt(var + 1e-5f) * w2 + b2).backward(g);
  for (auto [a, b] : {std::pair{x1, x2}, std::pair{w1, w2}, std::pair{b1, b2}}) {
    const auto ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-4f) << i;
  }
}

TEST(LayerNorm, ShapeErrorsNameTheOp) {
  const std::string msg = error_message<ShapeError>([] {
    layer_norm(Tensor::ones({2, 5}), Tensor::ones({4}), Tensor());
  });
  EXPECT_NE(msg.find("layer_norm"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2,5]"), std::string::npos) << msg;
}

// ---- batch norm ---------------------------------------------------------------------------------
struct BnRef {
  std::vector<double> y, mean, var_biased;
};
BnRef batch_norm_ref(const std::vector<float>& x, int64_t N, int64_t C, int64_t S,
                     const std::vector<float>& w, const std::vector<float>& b, double eps) {
  BnRef r{std::vector<double>(x.size()), std::vector<double>(C), std::vector<double>(C)};
  const double M = static_cast<double>(N * S);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) r.mean[c] += x[(n * C + c) * S + s] / M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) r.var_biased[c] += std::pow(x[(n * C + c) * S + s] - r.mean[c], 2) / M;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t s = 0; s < S; ++s) {
        const int64_t i = (n * C + c) * S + s;
        r.y[i] = (x[i] - r.mean[c]) / std::sqrt(r.var_biased[c] + eps) * w[c] + b[c];
      }
  }
  return r;
}

TEST(BatchNorm, TrainingNormalisesWithBatchStatsAndUpdatesRunningStats) {
  for (const Shape& shape : {Shape{16, 5}, Shape{4, 3, 6, 5}, Shape{3, 4, 7}}) {
    const int64_t N = shape[0], C = shape[1], S = shape_numel(shape) / (N * C);
    const Tensor x = rand_tensor(shape, 11, -1.0f, 3.0f);
    const Tensor w = rand_tensor({C}, 12), b = rand_tensor({C}, 13);
    Tensor rm = Tensor::full({C}, 0.5), rv = Tensor::full({C}, 2.0);
    const Tensor y = batch_norm(x, w, b, rm, rv, true, 0.2f, 1e-5f);
    const BnRef ref =
        batch_norm_ref(x.to_vector<float>(), N, C, S, w.to_vector<float>(), b.to_vector<float>(), 1e-5);
    EXPECT_TRUE(all_close(y.to_vector<float>(), ref.y, 1e-5, 1e-5)) << "y " << shape_str(shape);
    std::vector<double> rm_ref(C), rv_ref(C);
    const double M = static_cast<double>(N * S);
    for (int64_t c = 0; c < C; ++c) {
      rm_ref[c] = 0.8 * 0.5 + 0.2 * ref.mean[c];
      rv_ref[c] = 0.8 * 2.0 + 0.2 * ref.var_biased[c] * M / (M - 1);  // unbiased for the running update
    }
    EXPECT_TRUE(all_close(rm.to_vector<float>(), rm_ref, 1e-6, 1e-6)) << "running_mean";
    EXPECT_TRUE(all_close(rv.to_vector<float>(), rv_ref, 1e-6, 1e-6)) << "running_var";
    EXPECT_FALSE(rm.requires_grad());
  }
}

TEST(BatchNorm, EvalUsesRunningStats) {
  const Tensor x = rand_tensor({3, 2, 4}, 21);
  Tensor rm = Tensor::from_vector<float>({0.5f, -1.0f}), rv = Tensor::from_vector<float>({4.0f, 0.25f});
  const Tensor w = Tensor::from_vector<float>({2.0f, 1.0f}), b = Tensor::from_vector<float>({0.0f, 1.0f});
  const Tensor y = batch_norm(x, w, b, rm, rv, false, 0.1f, 0.0f);
  const auto xv = x.to_vector<float>();
  std::vector<double> ref(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / 4) % 2;
    ref[i] = c == 0 ? (xv[i] - 0.5) / 2.0 * 2.0 : (xv[i] + 1.0) / 0.5 + 1.0;
  }
  EXPECT_TRUE(all_close(y.to_vector<float>(), ref, 1e-6, 1e-6)) << "eval";
  EXPECT_EQ(rm.to_vector<float>(), (std::vector<float>{0.5f, -1.0f}));  // untouched
  EXPECT_EQ(rv.to_vector<float>(), (std::vector<float>{4.0f, 0.25f}));
}

TEST(BatchNorm, BackwardMatchesComposedOps) {
  Tensor x1 = rand_tensor({4, 3, 5}, 31).set_requires_grad();
  Tensor w1 = rand_tensor({3}, 32).set_requires_grad(), b1 = rand_tensor({3}, 33).set_requires_grad();
  Tensor x2 = x1.detach().clone().set_requires_grad();
  Tensor w2 = w1.detach().clone().set_requires_grad(), b2 = b1.detach().clone().set_requires_grad();
  const Tensor g = rand_tensor({4, 3, 5}, 34);
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  batch_norm(x1, w1, b1, rm, rv, true).backward(g);
  const Tensor m = mean(x2, {0, 2}, true);
  const Tensor centered = x2 - m;
  const Tensor var = mean(square(centered), {0, 2}, true);
  (centered / sqrt(var + 1e-5f) * reshape(w2, {3, 1}) + reshape(b2, {3, 1})).backward(g);
  for (auto [a, b] : {std::pair{x1, x2}, std::pair{w1, w2}, std::pair{b1, b2}}) {
    const auto ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-4f) << i;
  }
}

TEST(BatchNorm, SameResultOnAnyThreadCount) {
  const Tensor x = rand_tensor({8, 64, 16, 16}, 41);
  std::vector<float> y1, y2, g1, g2;
  for (int threads : {1, 2}) {
    ThreadCountGuard t(threads);
    Tensor xl = x.clone().set_requires_grad();
    Tensor rm = Tensor::zeros({64}), rv = Tensor::ones({64});
    const Tensor y = batch_norm(xl, Tensor(), Tensor(), rm, rv, true);
    sum(y * y).backward();
    (threads == 1 ? y1 : y2) = y.to_vector<float>();
    (threads == 1 ? g1 : g2) = xl.grad().to_vector<float>();
  }
  EXPECT_EQ(y1, y2);
  EXPECT_EQ(g1, g2);
}

TEST(BatchNorm, ErrorsNameTheProblem) {
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  std::string msg = error_message<InputError>([&] {
    batch_norm(Tensor::ones({1, 3}), Tensor(), Tensor(), rm, rv, true);
  });
  EXPECT_NE(msg.find("more than one value per channel"), std::string::npos) << msg;
  msg = error_message<ShapeError>([&] {
    batch_norm(Tensor::ones({4, 5}), Tensor(), Tensor(), rm, rv, true);
  });
  EXPECT_NE(msg.find("running_mean"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4,5]"), std::string::npos) << msg;
  msg = error_message<ShapeError>([&] { batch_norm(Tensor::ones({4}), Tensor(), Tensor(), rm, rv, true); });
  EXPECT_NE(msg.find("batch_norm"), std::string::npos) << msg;
}

// ---- embedding ----------------------------------------------------------------------------------
TEST(Embedding, GathersRowsAndAddsGradientsOfRepeatedIndices) {
  Tensor w = rand_tensor({5, 3}, 51).set_requires_grad();
  const Tensor idx = Tensor::from_vector<int64_t>({4, 0, 4, 2, 4, 1}, {2, 3});
  const Tensor y = embedding(w, idx);
  ASSERT_EQ(y.shape(), (Shape{2, 3, 3}));
  const auto wv = w.to_vector<float>(), yv = y.to_vector<float>();
  const std::vector<int64_t> iv = idx.to_vector<int64_t>();
  for (size_t k = 0; k < iv.size(); ++k)
    for (int d = 0; d < 3; ++d) EXPECT_EQ(yv[k * 3 + d], wv[iv[k] * 3 + d]);
  const Tensor g = rand_tensor({2, 3, 3}, 52);
  y.backward(g);
  const auto gv = g.to_vector<float>(), gw = w.grad().to_vector<float>();
  std::vector<double> ref(15, 0.0);
  for (size_t k = 0; k < iv.size(); ++k)
    for (int d = 0; d < 3; ++d) ref[iv[k] * 3 + d] += gv[k * 3 + d];
  for (size_t i = 0; i < ref.size(); ++i) EXPECT_NEAR(gw[i], ref[i], 1e-6) << i;
  EXPECT_EQ(gw[3 * 3], 0.0f);  // row 3 was never looked up
}

TEST(Embedding, OutOfRangeIndexIsAnInputErrorNamingIt) {
  const Tensor w = Tensor::ones({10, 4});
  std::string msg = error_message<InputError>([&] {
    embedding(w, Tensor::from_vector<int64_t>({1, 12, 3}));
  });
  EXPECT_NE(msg.find("embedding"), std::string::npos) << msg;
  EXPECT_NE(msg.find("12"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 rows"), std::string::npos) << msg;
  msg = error_message<InputError>([&] { embedding(w, Tensor::from_vector<int64_t>({-1})); });
  EXPECT_NE(msg.find("-1"), std::string::npos) << msg;
  error_message<InputError>([&] { embedding(w, Tensor::ones({2})); });  // float indices
}

// ---- linear -------------------------------------------------------------------------------------
TEST(Linear, MatchesReferenceAndComposedBackward) {
  const int64_t N = 6, I = 5, O = 4;
  Tensor x1 = rand_tensor({N, I}, 61).set_requires_grad();
  Tensor w1 = rand_tensor({I, O}, 62).set_requires_grad(), b1 = rand_tensor({O}, 63).set_requires_grad();
  const Tensor y = linear(x1, w1, b1);
  const auto xv = x1.to_vector<float>(), wv = w1.to_vector<float>(), bv = b1.to_vector<float>();
  std::vector<double> ref(N * O);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = bv[o];
      for (int64_t i = 0; i < I; ++i) s += static_cast<double>(xv[n * I + i]) * wv[i * O + o];
      ref[n * O + o] = s;
    }
  EXPECT_TRUE(all_close(y.to_vector<float>(), ref, 1e-5, 1e-5)) << "forward";
  const Tensor g = rand_tensor({N, O}, 64);
  y.backward(g);
  Tensor x2 = x1.detach().clone().set_requires_grad();
  Tensor w2 = w1.detach().clone().set_requires_grad(), b2 = b1.detach().clone().set_requires_grad();
  (matmul(x2, w2) + b2).backward(g);
  for (auto [a, b] : {std::pair{x1, x2}, std::pair{w1, w2}, std::pair{b1, b2}}) {
    const auto ga = a.grad().to_vector<float>(), gb = b.grad().to_vector<float>();
    for (size_t i = 0; i < ga.size(); ++i) EXPECT_NEAR(ga[i], gb[i], 1e-5f) << i;
  }
}

TEST(Linear, BiasGradientIsTheSameOnAnyThreadCount) {
  // Enough rows for several fixed row blocks.
  const Tensor x = rand_tensor({4096, 32}, 71);
  const Tensor w = rand_tensor({32, 64}, 72);
  std::vector<float> gb1, gb2;
  for (int threads : {1, 2}) {
    ThreadCountGuard t(threads);
    Tensor b = Tensor::zeros({64}).set_requires_grad();
    sum(square(linear(x, w, b))).backward();
    (threads == 1 ? gb1 : gb2) = b.grad().to_vector<float>();
  }
  EXPECT_EQ(gb1, gb2);
}

TEST(Linear, ShapeErrorNamesBothShapes) {
  const std::string msg = error_message<ShapeError>([] {
    linear(Tensor::ones({64, 783}), Tensor::ones({784, 128}), Tensor());
  });
  EXPECT_NE(msg.find("linear"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[64,783]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[784,128]"), std::string::npos) << msg;
  const std::string bias_msg = error_message<ShapeError>([] {
    linear(Tensor::ones({2, 3}), Tensor::ones({3, 4}), Tensor::ones({3}));
  });
  EXPECT_NE(bias_msg.find("bias"), std::string::npos) << bias_msg;
}

TEST(Linear, NoGraphWithoutGrad) {
  const Tensor y = linear(Tensor::ones({2, 3}), Tensor::ones({3, 4}), Tensor::ones({4}));
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.to_vector<float>(), std::vector<float>(8, 4.0f));
}

}  // namespace
}  // namespace deft
