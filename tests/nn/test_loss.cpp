// Losses (deft/nn/loss.h) against formulas written out here in double, PyTorch's
// conventions (label smoothing, class-weighted means, the -100 log clamp) and
// Keras's (probability clipping, names, configs). Finite-difference gradient checks
// of the same kernels are in tests/autograd/test_gradcheck.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../tensor/test_util.h"
#include "deft/autograd/ops.h"
#include "deft/nn/loss.h"

namespace deft::nn {
namespace {

// Comparisons are all_close(got, want, tol, tol): within tol * (1 + |want|).
using tt::all_close;
using tt::error_message;

// These tests draw their data from [-3, 3] unless they say otherwise.
Tensor rand_tensor(const Shape& s, uint32_t seed, float lo = -3.0f, float hi = 3.0f) {
  return tt::rand_tensor(s, seed, lo, hi);
}

Tensor labels(std::vector<int64_t> v) { return Tensor::from_vector(v); }

double sigmoid_d(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// Log-softmax of one row in double, written directly from the definition.
std::vector<double> log_softmax_d(const float* z, int64_t C) {
  double m = z[0];
  for (int64_t c = 1; c < C; ++c) m = std::max<double>(m, z[c]);
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(z[c] - m);
  std::vector<double> out(C);
  for (int64_t c = 0; c < C; ++c) out[c] = z[c] - m - std::log(s);
  return out;
}

// ---- binary cross-entropy -------------------------------------------------------------------------
TEST(BinaryCrossEntropyWithLogits, GradientIsSigmoidMinusTargetOverN) {
  const int64_t N = 9;
  const std::vector<int64_t> y = {1, 0, 0, 1, 1, 0, 1, 0, 1};
  for (const Shape& shape : {Shape{N}, Shape{N, 1}}) {
    Tensor z = rand_tensor(shape, 1).set_requires_grad();
    const Tensor loss = binary_cross_entropy_with_logits(z, Tensor::from_vector(y), Reduction::Mean);
    loss.backward();
    const auto zv = z.to_vector<float>();
    std::vector<double> want(N);
    double value = 0.0;
    for (int64_t i = 0; i < N; ++i) {
      const double p = sigmoid_d(zv[i]);
      want[i] = (p - static_cast<double>(y[i])) / N;  // the seed formula: (y_hat - y) / N
      value += -(y[i] * std::log(p) + (1 - y[i]) * std::log(1 - p)) / N;
    }
    EXPECT_TRUE(all_close(z.grad().to_vector<float>(), want, 1e-5, 1e-5)) << "grad";
    EXPECT_NEAR(loss.item(), value, 1e-5);
    EXPECT_EQ(z.grad().shape(), shape);
  }
}

TEST(BinaryCrossEntropyWithLogits, StableForLargeLogits) {
  const Tensor z = Tensor::from_vector<float>({100.0f, -100.0f, 0.0f, 30.0f});
  const Tensor y = Tensor::from_vector<float>({0.0f, 1.0f, 1.0f, 1.0f});
  const auto l = binary_cross_entropy_with_logits(z, y, Reduction::None).to_vector<float>();
  EXPECT_NEAR(l[0], 100.0, 1e-4);
  EXPECT_NEAR(l[1], 100.0, 1e-4);
  EXPECT_NEAR(l[2], std::log(2.0), 1e-6);
  EXPECT_NEAR(l[3], std::log1p(std::exp(-30.0)), 1e-12);
}

TEST(BinaryCrossEntropyWithLogits, PosWeightAndSampleWeights) {
  const Tensor z = rand_tensor({6, 1}, 2);
  const std::vector<float> t = {1, 0, 0.3f, 1, 0, 0.8f};
  const std::vector<float> w = {1, 2, 0.5f, 0, 3, 1};
  const float pw = 3.0f;
  const auto zv = z.to_vector<float>();
  double num = 0, den = 0;
  std::vector<double> per(6);
  for (int i = 0; i < 6; ++i) {
    const double p = sigmoid_d(zv[i]);
    per[i] = -(pw * t[i] * std::log(p) + (1 - t[i]) * std::log(1 - p));  // PyTorch's pos_weight
    num += w[i] * per[i];
    den += w[i];
  }
  const Tensor tw = Tensor::from_vector(w);
  EXPECT_NEAR(binary_cross_entropy_with_logits(z, Tensor::from_vector(t), Reduction::Mean, tw, pw).item(),
              num / den, 1e-5);
  EXPECT_NEAR(binary_cross_entropy_with_logits(z, Tensor::from_vector(t), Reduction::Sum, tw, pw).item(), num,
              1e-4);
  std::vector<double> weighted(6);
  for (int i = 0; i < 6; ++i) weighted[i] = w[i] * per[i];
  EXPECT_TRUE(all_close(
      binary_cross_entropy_with_logits(z, Tensor::from_vector(t), Reduction::None, tw, pw).to_vector<float>(),
      weighted, 1e-5, 1e-5))
      << "none";
}

TEST(BinaryCrossEntropy, MatchesFormulaAndClampsLogAtMinus100) {
  const Tensor p = Tensor::from_vector<float>({0.0f, 1.0f, 0.5f, 0.9f, 0.2f});
  const Tensor y = Tensor::from_vector<int64_t>({1, 0, 1, 1, 0}, {5, 1});
  const auto l = binary_cross_entropy(p, y, Reduction::None).to_vector<float>();
  const std::vector<double> want = {100.0, 100.0, std::log(2.0), -std::log(0.9), -std::log(0.8)};
  EXPECT_TRUE(all_close(l, want, 1e-5, 1e-5)) << "bce";
  double mean = 0;
  for (double v : want) mean += v / 5;
  EXPECT_NEAR(binary_cross_entropy(p, y).item(), mean, 1e-4);
}

TEST(BinaryCrossEntropy, GradientMatchesFormula) {
  Tensor p = rand_tensor({7}, 3, 0.05f, 0.95f).set_requires_grad();
  const std::vector<float> t = {1, 0, 1, 1, 0, 0.25f, 1};
  binary_cross_entropy(p, Tensor::from_vector(t)).backward();
  const auto pv = p.to_vector<float>();
  std::vector<double> want(7);
  for (int i = 0; i < 7; ++i) want[i] = (-t[i] / pv[i] + (1 - t[i]) / (1 - pv[i])) / 7;
  EXPECT_TRUE(all_close(p.grad().to_vector<float>(), want, 1e-4, 1e-4)) << "grad";
}

TEST(BinaryCrossEntropy, BadInputsAreInputErrors) {
  std::string msg = error_message<InputError>([] {
    binary_cross_entropy(Tensor::from_vector<float>({0.5f, 1.5f}), labels({0, 1}));
  });
  EXPECT_NE(msg.find("1.5"), std::string::npos) << msg;
  msg = error_message<InputError>([] {
    binary_cross_entropy_with_logits(Tensor::zeros({3}), labels({0, 2, 1}));
  });
  EXPECT_NE(msg.find("[0, 1]"), std::string::npos) << msg;
  msg = error_message<ShapeError>([] {
    binary_cross_entropy_with_logits(Tensor::zeros({4, 1}), labels({0, 1}));
  });
  EXPECT_NE(msg.find("[4,1]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2]"), std::string::npos) << msg;
}

// ---- sparse categorical cross-entropy ----------------------------------------------------------------
// PyTorch's CrossEntropyLoss written out: (1-s) w_y nll + s/C sum_c w_c (-logp_c), the
// mean divided by sum of w_{y_i} (times the sample weights), ignored labels skipped.
double sparse_ce_ref(const Tensor& logits, const std::vector<int64_t>& y, float s,
                     const std::vector<float>& cw, const std::vector<float>& sw, int64_t ignore,
                     Reduction red, std::vector<double>* per = nullptr) {
  const int64_t N = logits.size(0), C = logits.size(1);
  const auto z = logits.to_vector<float>();
  double total = 0, den = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (y[i] == ignore) {
      if (per) per->push_back(0.0);
      continue;
    }
    const auto lp = log_softmax_d(z.data() + i * C, C);
    auto w = [&](int64_t c) { return cw.empty() ? 1.0 : static_cast<double>(cw[c]); };
    double smooth = 0;
    for (int64_t c = 0; c < C; ++c) smooth += -w(c) * lp[c];
    const double si = sw.empty() ? 1.0 : sw[i];
    const double l = si * ((1 - s) * -w(y[i]) * lp[y[i]] + s / C * smooth);
    if (per) per->push_back(l);
    total += l;
    den += si * w(y[i]);
  }
  return red == Reduction::Sum ? total : total / den;
}

TEST(SparseCategoricalCrossEntropy, KnownValues) {
  // Uniform logits: log C whatever the smoothing.
  EXPECT_NEAR(
      sparse_categorical_cross_entropy(Tensor::zeros({3, 10}), labels({1, 5, 9}), {.label_smoothing = 0.3f})
          .item(),
      std::log(10.0), 1e-6);
  // logits [1,2,3], label 0, smoothing 0.1: 0.9 * 2.40761 + 0.1 * mean(2.40761, 1.40761, 0.40761).
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double want = 0.9 * (lse - 1) + 0.1 * ((lse - 1) + (lse - 2) + (lse - 3)) / 3;
  EXPECT_NEAR(sparse_categorical_cross_entropy(Tensor::from_vector<float>({1, 2, 3}, {1, 3}), labels({0}),
                                               {.label_smoothing = 0.1f})
                  .item(),
              want, 1e-5);
  EXPECT_NEAR(want, 2.3076060, 1e-6);
}

TEST(SparseCategoricalCrossEntropy, MatchesPyTorchFormulaWithSmoothingWeightsAndIgnore) {
  const Tensor z = rand_tensor({6, 4}, 11);
  const std::vector<int64_t> y = {3, 0, -100, 2, 1, 3};
  const std::vector<float> cw = {0.5f, 2.0f, 1.0f, 3.0f};
  const std::vector<float> sw = {1.0f, 0.5f, 2.0f, 1.5f, 0.0f, 1.0f};
  for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
    CrossEntropyOptions o{
        .label_smoothing = 0.15f, .class_weights = cw, .reduction = red, .ignore_index = -100};
    EXPECT_NEAR(sparse_categorical_cross_entropy(z, labels(y), o, Tensor::from_vector(sw)).item(),
                sparse_ce_ref(z, y, 0.15f, cw, sw, -100, red), 1e-5);
  }
  // Class-weighted mean divides by the sum of the samples' class weights, not N.
  const std::vector<int64_t> y2 = {3, 0, 1, 2, 1, 3};
  const double weighted = sparse_ce_ref(z, y2, 0.0f, cw, {}, -1, Reduction::Mean);
  EXPECT_NEAR(sparse_categorical_cross_entropy(z, labels(y2), {.class_weights = cw}).item(), weighted, 1e-5);
  const double sum = sparse_ce_ref(z, y2, 0.0f, cw, {}, -1, Reduction::Sum);
  EXPECT_GT(std::fabs(weighted - sum / 6), 1e-3);  // the two conventions differ on this data
  // None: one loss per sample, ignored ones 0.
  std::vector<double> per;
  sparse_ce_ref(z, y, 0.15f, cw, sw, -100, Reduction::None, &per);
  const Tensor none = sparse_categorical_cross_entropy(
      z, labels(y),
      {.label_smoothing = 0.15f, .class_weights = cw, .reduction = Reduction::None, .ignore_index = -100},
      Tensor::from_vector(sw));
  EXPECT_EQ(none.shape(), (Shape{6}));
  EXPECT_TRUE(all_close(none.to_vector<float>(), per, 1e-5, 1e-5)) << "none";
}

TEST(SparseCategoricalCrossEntropy, GradientIsSoftmaxMinusOneHotOverN) {
  const int64_t N = 5, C = 3;
  Tensor z = rand_tensor({N, C}, 12).set_requires_grad();
  const std::vector<int64_t> y = {0, 2, 1, 1, 0};
  sparse_categorical_cross_entropy(z, labels(y)).backward();
  const auto zv = z.to_vector<float>();
  std::vector<double> want;
  for (int64_t i = 0; i < N; ++i) {
    const auto lp = log_softmax_d(zv.data() + i * C, C);
    for (int64_t c = 0; c < C; ++c) want.push_back((std::exp(lp[c]) - (c == y[i] ? 1.0 : 0.0)) / N);
  }
  EXPECT_TRUE(all_close(z.grad().to_vector<float>(), want, 1e-5, 1e-5)) << "grad";
}

TEST(SparseCategoricalCrossEntropy, SampleWeightedMeanAndZeroWeights) {
  const Tensor z = rand_tensor({4, 3}, 13);
  const std::vector<int64_t> y = {0, 1, 2, 1};
  const std::vector<float> w = {2.0f, 0.0f, 1.0f, 1.0f};
  std::vector<double> per;
  sparse_ce_ref(z, y, 0, {}, {}, -1, Reduction::None, &per);
  const double want = (2 * per[0] + per[2] + per[3]) / 4.0;
  EXPECT_NEAR(sparse_categorical_cross_entropy(z, labels(y), {}, Tensor::from_vector(w)).item(), want, 1e-5);
  // All weights zero: 0, not NaN.
  Tensor zl = z.clone().set_requires_grad();
  const Tensor l = sparse_categorical_cross_entropy(zl, labels(y), {}, Tensor::zeros({4}));
  EXPECT_EQ(l.item(), 0.0f);
  l.backward();
  for (float g : zl.grad().to_vector<float>()) EXPECT_EQ(g, 0.0f);
}

TEST(SparseCategoricalCrossEntropy, BadLabelsAreInputErrors) {
  std::string msg = error_message<InputError>([] {
    sparse_categorical_cross_entropy(Tensor::zeros({3, 10}), labels({1, 10, 2}));
  });
  EXPECT_NE(msg.find("label 10"), std::string::npos) << msg;
  EXPECT_NE(msg.find("10 classes"), std::string::npos) << msg;
  msg = error_message<InputError>([] {
    sparse_categorical_cross_entropy(Tensor::zeros({2, 4}), labels({-1, 0}));
  });
  EXPECT_NE(msg.find("label -1"), std::string::npos) << msg;
  msg = error_message<InputError>([] {
    sparse_categorical_cross_entropy(Tensor::zeros({2, 4}), Tensor::zeros({2}));
  });
  EXPECT_NE(msg.find("int64"), std::string::npos) << msg;
  msg = error_message<ShapeError>([] {
    sparse_categorical_cross_entropy(Tensor::zeros({3, 4}), labels({0, 1}));
  });
  EXPECT_NE(msg.find("[3,4]"), std::string::npos) << msg;
  msg = error_message<ShapeError>([] {
    sparse_categorical_cross_entropy(Tensor::zeros({2, 4}), labels({0, 1}), {.class_weights = {1, 2}});
  });
  EXPECT_NE(msg.find("class weights"), std::string::npos) << msg;
}

TEST(SparseCategoricalCrossEntropy, LabelsAsColumnAreAccepted) {
  const Tensor z = rand_tensor({3, 4}, 14);
  EXPECT_FLOAT_EQ(sparse_categorical_cross_entropy(z, Tensor::from_vector<int64_t>({1, 3, 0}, {3, 1})).item(),
                  sparse_categorical_cross_entropy(z, labels({1, 3, 0})).item());
}

// ---- categorical cross-entropy --------------------------------------------------------------------
TEST(CategoricalCrossEntropy, FromLogitsAndFromProbabilities) {
  const int64_t N = 4, C = 5;
  const Tensor z = rand_tensor({N, C}, 21);
  std::vector<float> t = tt::random_floats(N * C, 22, 0.0f, 1.0f);
  for (int64_t i = 0; i < N; ++i) {
    float s = 0;
    for (int64_t c = 0; c < C; ++c) s += t[i * C + c];
    for (int64_t c = 0; c < C; ++c) t[i * C + c] /= s;
  }
  const Tensor target = Tensor::from_vector(t, {N, C});
  const auto zv = z.to_vector<float>();
  const float smooth = 0.2f;
  double logits_ref = 0, probs_ref = 0;
  for (int64_t i = 0; i < N; ++i) {
    const auto lp = log_softmax_d(zv.data() + i * C, C);
    for (int64_t c = 0; c < C; ++c) {
      const double ts = t[i * C + c] * (1 - smooth) + smooth / C;
      logits_ref += -ts * lp[c] / N;
      // Keras on probabilities: -sum t log(clip(p, 1e-7, 1 - 1e-7)).
      probs_ref += -t[i * C + c] * std::log(std::clamp(std::exp(lp[c]), 1e-7, 1 - 1e-7)) / N;
    }
  }
  EXPECT_NEAR(categorical_cross_entropy(z, target, true, {.label_smoothing = smooth}).item(), logits_ref,
              1e-5);
  EXPECT_NEAR(categorical_cross_entropy(softmax(z, -1), target, false).item(), probs_ref, 1e-5);
  // One-hot targets give the sparse loss.
  const Tensor onehot =
      Tensor::from_vector<float>({0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0}, {N, C});
  EXPECT_NEAR(categorical_cross_entropy(z, onehot).item(),
              sparse_categorical_cross_entropy(z, labels({1, 4, 0, 2})).item(), 1e-6);
}

TEST(CategoricalCrossEntropy, GradientIsSoftmaxMinusTarget) {
  Tensor z = rand_tensor({3, 4}, 23).set_requires_grad();
  const std::vector<float> t = {0.1f, 0.2f, 0.3f, 0.4f, 1, 0, 0, 0, 0.25f, 0.25f, 0.25f, 0.25f};
  categorical_cross_entropy(z, Tensor::from_vector(t, {3, 4})).backward();
  const auto zv = z.to_vector<float>();
  std::vector<double> want;
  for (int i = 0; i < 3; ++i) {
    const auto lp = log_softmax_d(zv.data() + i * 4, 4);
    for (int c = 0; c < 4; ++c) want.push_back((std::exp(lp[c]) - t[i * 4 + c]) / 3);
  }
  EXPECT_TRUE(all_close(z.grad().to_vector<float>(), want, 1e-5, 1e-5)) << "grad";
}

// ---- regression ---------------------------------------------------------------------------------
TEST(RegressionLosses, MatchFormulas) {
  const Tensor pred = rand_tensor({6, 1}, 31);
  const Tensor target = rand_tensor({6}, 32);
  const auto p = pred.to_vector<float>(), t = target.to_vector<float>();
  double se = 0, ae = 0, hub = 0;
  const double delta = 1.0;
  for (int i = 0; i < 6; ++i) {
    const double d = p[i] - t[i];
    se += d * d / 6;
    ae += std::fabs(d) / 6;
    hub += (std::fabs(d) < delta ? 0.5 * d * d : delta * (std::fabs(d) - 0.5 * delta)) / 6;
  }
  EXPECT_NEAR(mse(pred, target).item(), se, 1e-5);
  EXPECT_NEAR(mae(pred, target).item(), ae, 1e-5);
  EXPECT_NEAR(huber(pred, target).item(), hub, 1e-5);
  EXPECT_NEAR(
      huber(pred, target, 0.5f, Reduction::Sum).item(),
      [&] {
        double s = 0;
        for (int i = 0; i < 6; ++i) {
          const double d = std::fabs(p[i] - t[i]);
          s += d < 0.5 ? 0.5 * d * d : 0.5 * (d - 0.25);
        }
        return s;
      }(),
      1e-5);
  EXPECT_EQ(mse(pred, target, Reduction::None).shape(), (Shape{6, 1}));
}

TEST(RegressionLosses, SampleWeightsAndGradient) {
  Tensor pred = rand_tensor({3, 2}, 33).set_requires_grad();
  const Tensor target = rand_tensor({3, 2}, 34);
  const std::vector<float> w = {1.0f, 3.0f, 0.5f};
  const Tensor l = mse(pred, target, Reduction::Mean, Tensor::from_vector(w));
  const auto p = pred.to_vector<float>(), t = target.to_vector<float>();
  double num = 0;
  std::vector<double> grad(6);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) {
      const double d = p[i * 2 + j] - t[i * 2 + j];
      num += w[i] * d * d;
      grad[i * 2 + j] = 2 * w[i] * d / (4.5 * 2);
    }
  EXPECT_NEAR(l.item(), num / (4.5 * 2), 1e-5);
  l.backward();
  EXPECT_TRUE(all_close(pred.grad().to_vector<float>(), grad, 1e-5, 1e-5)) << "grad";
}

TEST(RegressionLosses, MismatchedShapesAreShapeErrors) {
  const std::string msg = error_message<ShapeError>([] { mse(Tensor::zeros({4, 2}), Tensor::zeros({4})); });
  EXPECT_NE(msg.find("[4,2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[4]"), std::string::npos) << msg;
  error_message<ShapeError>(
      [] { mae(Tensor::zeros({3}), Tensor::zeros({3}), Reduction::Mean, Tensor::ones({2})); });
}

// ---- Loss objects -----------------------------------------------------------------------------------
TEST(LossObjects, MakeLossByKerasNames) {
  struct Want {
    const char* name;
    const char* canonical;
    OutputKind kind;
    bool binary;
  };
  for (const Want& w :
       {Want{"sparse_categorical_crossentropy", "sparse_categorical_crossentropy", OutputKind::Logits, false},
        Want{"categorical_crossentropy", "categorical_crossentropy", OutputKind::Logits, false},
        Want{"binary_crossentropy", "binary_crossentropy", OutputKind::Logits, true},
        Want{"mse", "mean_squared_error", OutputKind::Values, false},
        Want{"mean_squared_error", "mean_squared_error", OutputKind::Values, false},
        Want{"mae", "mean_absolute_error", OutputKind::Values, false},
        Want{"huber", "huber", OutputKind::Values, false},
        Want{"Huber", "huber", OutputKind::Values, false}}) {
    const auto loss = make_loss(w.name);
    EXPECT_EQ(loss->name(), w.canonical) << w.name;
    EXPECT_EQ(loss->output_kind(), w.kind) << w.name;
    EXPECT_EQ(loss->is_binary(), w.binary) << w.name;
  }
  EXPECT_EQ(make_loss("binary_crossentropy", {{"from_logits", false}})->output_kind(),
            OutputKind::Probabilities);
}

TEST(LossObjects, UnknownNamesAndOptionsAreInputErrors) {
  std::string msg = error_message<InputError>([] { make_loss("cross_entropy_loss"); });
  EXPECT_NE(msg.find("cross_entropy_loss"), std::string::npos) << msg;
  EXPECT_NE(msg.find("sparse_categorical_crossentropy"), std::string::npos) << msg;
  EXPECT_NE(msg.find("huber"), std::string::npos) << msg;
  msg = error_message<InputError>([] { make_loss("huber", {{"delt", 2.0}}); });
  EXPECT_NE(msg.find("'delt'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("delta"), std::string::npos) << msg;
  msg = error_message<InputError>([] { make_loss("mse", {{"reduction", "average"}}); });
  EXPECT_NE(msg.find("average"), std::string::npos) << msg;
  msg = error_message<InputError>([] { make_loss("binary_crossentropy", {{"from_logits", "yes"}}); });
  EXPECT_NE(msg.find("from_logits"), std::string::npos) << msg;
  error_message<InputError>([] { make_loss("huber", {{"delta", -1.0}}); });
}

TEST(LossObjects, ConfigRoundTripsAndObjectsMatchFunctions) {
  const auto sparse =
      make_loss("sparse_categorical_crossentropy",
                {{"label_smoothing", 0.1}, {"reduction", "sum"}, {"name", "keras_name_ignored"}});
  const auto again = make_loss(sparse->name(), sparse->config());
  EXPECT_EQ(again->config(), sparse->config());
  EXPECT_EQ(sparse->config()["reduction"], "sum");
  const Tensor z = rand_tensor({4, 3}, 41);
  const Tensor y = labels({0, 2, 1, 1});
  EXPECT_FLOAT_EQ(
      (*sparse)(z, y).item(),
      sparse_categorical_cross_entropy(z, y, {.label_smoothing = 0.1f, .reduction = Reduction::Sum}).item());
  for (const char* name : {"categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber"}) {
    const auto l = make_loss(name);
    EXPECT_EQ(make_loss(l->name(), l->config())->config(), l->config()) << name;
  }
  const auto h = make_loss("huber", {{"delta", 0.5}});
  const Tensor p = rand_tensor({5}, 42), t = rand_tensor({5}, 43);
  EXPECT_FLOAT_EQ((*h)(p, t).item(), huber(p, t, 0.5f).item());
}

TEST(LossObjects, ProbabilityOutputsGiveTheSameLossAsLogits) {
  const Tensor z = rand_tensor({6, 4}, 51, -2.0f, 2.0f);
  const Tensor y = labels({0, 3, 2, 1, 1, 0});
  const SparseCategoricalCrossentropy from_logits;
  const SparseCategoricalCrossentropy from_probs({.from_logits = false});
  EXPECT_NEAR(from_probs(softmax(z, -1), y).item(), from_logits(z, y).item(), 1e-5);
  // Gradients flow through the probability path too.
  Tensor zl = z.clone().set_requires_grad();
  from_probs(softmax(zl, -1), y).backward();
  Tensor zr = z.clone().set_requires_grad();
  from_logits(zr, y).backward();
  const auto a = zl.grad().to_vector<float>(), b = zr.grad().to_vector<float>();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-5) << i;

  const Tensor zb = rand_tensor({5, 1}, 52);
  const Tensor yb = labels({1, 0, 0, 1, 1});
  EXPECT_NEAR(BinaryCrossentropy({.from_logits = false})(sigmoid(zb), yb).item(),
              BinaryCrossentropy()(zb, yb).item(), 1e-5);
}

TEST(LossObjects, BinaryLabelSmoothing) {
  const Tensor z = rand_tensor({4}, 61);
  const std::vector<int64_t> y = {1, 0, 1, 0};
  const float s = 0.2f;
  std::vector<float> smoothed;
  for (int64_t v : y) smoothed.push_back(static_cast<float>(v) * (1 - s) + 0.5f * s);
  EXPECT_NEAR(BinaryCrossentropy({.label_smoothing = s})(z, labels(y)).item(),
              binary_cross_entropy_with_logits(z, Tensor::from_vector(smoothed)).item(), 1e-6);
}

TEST(LossObjects, OutputToProbabilities) {
  const Tensor z = rand_tensor({3, 4}, 71);
  const auto p = output_to_probabilities(z, *make_loss("sparse_categorical_crossentropy")).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    float s = 0;
    for (int c = 0; c < 4; ++c) s += p[i * 4 + c];
    EXPECT_NEAR(s, 1.0f, 1e-6);
  }
  const Tensor zb = Tensor::from_vector<float>({0.0f, 2.0f});
  const auto pb = output_to_probabilities(zb, *make_loss("binary_crossentropy")).to_vector<float>();
  EXPECT_NEAR(pb[0], 0.5, 1e-6);
  EXPECT_NEAR(pb[1], sigmoid_d(2.0), 1e-6);
  EXPECT_TRUE(output_to_probabilities(z, *make_loss("mse")).same(z));
  EXPECT_TRUE(
      output_to_probabilities(z, *make_loss("categorical_crossentropy", {{"from_logits", false}})).same(z));
}

}  // namespace
}  // namespace deft::nn
