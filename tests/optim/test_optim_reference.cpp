// Each optimizer against a double-precision reference written from the
// algorithm boxes in PyTorch's documentation (torch.optim.*), for three steps on
// small tensors; plus a few values worked out by hand, and minimising a quadratic.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "deft/autograd/ops.h"
#include "deft/optim/optim.h"
#include "optim_test_util.h"

namespace deft::optim_test {
namespace {

using nlohmann::json;
using namespace deft::optim;  // NOLINT: the API under test
using Vec = std::vector<double>;

// Per-parameter reference state: the step count t and up to three buffers.
struct RefState {
  int t = 0;
  Vec a, b, c;
};

using RefStep = std::function<void(const json& cfg, double lr, Vec& theta, Vec g, RefState& s)>;

double num(const json& cfg, const char* key, double fallback) {
  return cfg.contains(key) ? cfg[key].get<double>() : fallback;
}
bool flag(const json& cfg, const char* key) { return cfg.contains(key) && cfg[key].get<bool>(); }

void init(RefState& s, size_t n, double value = 0.0) {
  if (s.t == 0) s.a = s.b = s.c = Vec(n, value);
  ++s.t;
}

// torch.optim.SGD:
//   if λ≠0: g ← g + λθ
//   if μ≠0: b ← g (t = 1) or μb + (1−τ)g;  g ← g + μb (nesterov) or g ← b
//   θ ← θ − γg
void ref_sgd(const json& cfg, double lr, Vec& theta, Vec g, RefState& s) {
  const double wd = num(cfg, "weight_decay", 0), mu = num(cfg, "momentum", 0), tau = num(cfg, "dampening", 0);
  init(s, theta.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    g[i] += wd * theta[i];
    if (mu != 0) {
      s.a[i] = s.t > 1 ? mu * s.a[i] + (1 - tau) * g[i] : g[i];
      g[i] = flag(cfg, "nesterov") ? g[i] + mu * s.a[i] : s.a[i];
    }
    theta[i] -= lr * g[i];
  }
}

// torch.optim.Adam / AdamW:
//   AdamW: θ ← θ − γλθ;   Adam: if λ≠0: g ← g + λθ
//   m ← β1 m + (1−β1) g;   v ← β2 v + (1−β2) g²;   m̂ = m / (1−β1^t)
//   amsgrad: vmax ← max(vmax, v), v̂ = vmax / (1−β2^t);   else v̂ = v / (1−β2^t)
//   θ ← θ − γ m̂ / (√v̂ + ε)
void ref_adam(const json& cfg, double lr, Vec& theta, Vec g, RefState& s, bool decoupled) {
  const double b1 = cfg["betas"][0], b2 = cfg["betas"][1], eps = num(cfg, "eps", 1e-8);
  const double wd = num(cfg, "weight_decay", decoupled ? 0.01 : 0.0);
  init(s, theta.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    if (decoupled) {
      theta[i] -= lr * wd * theta[i];
    } else {
      g[i] += wd * theta[i];
    }
    s.a[i] = b1 * s.a[i] + (1 - b1) * g[i];
    s.b[i] = b2 * s.b[i] + (1 - b2) * g[i] * g[i];
    const double m_hat = s.a[i] / (1 - std::pow(b1, s.t));
    double v_hat = s.b[i] / (1 - std::pow(b2, s.t));
    if (flag(cfg, "amsgrad")) {
      s.c[i] = std::max(s.c[i], s.b[i]);
      v_hat = s.c[i] / (1 - std::pow(b2, s.t));
    }
    theta[i] -= lr * m_hat / (std::sqrt(v_hat) + eps);
  }
}

// torch.optim.RMSprop:
//   if λ≠0: g ← g + λθ;   v ← αv + (1−α)g²;   ṽ = v
//   centered: g_ave ← α g_ave + (1−α)g;  ṽ = ṽ − g_ave²
//   μ>0: b ← μb + g/(√ṽ + ε);  θ ← θ − γb;   else θ ← θ − γ g/(√ṽ + ε)
void ref_rmsprop(const json& cfg, double lr, Vec& theta, Vec g, RefState& s) {
  const double alpha = num(cfg, "alpha", 0.99), eps = num(cfg, "eps", 1e-8), wd = num(cfg, "weight_decay", 0);
  const double mu = num(cfg, "momentum", 0);
  init(s, theta.size());
  for (size_t i = 0; i < theta.size(); ++i) {
    g[i] += wd * theta[i];
    s.a[i] = alpha * s.a[i] + (1 - alpha) * g[i] * g[i];
    double v = s.a[i];
    if (flag(cfg, "centered")) {
      s.c[i] = alpha * s.c[i] + (1 - alpha) * g[i];
      v -= s.c[i] * s.c[i];
    }
    if (mu > 0) {
      s.b[i] = mu * s.b[i] + g[i] / (std::sqrt(v) + eps);
      theta[i] -= lr * s.b[i];
    } else {
      theta[i] -= lr * g[i] / (std::sqrt(v) + eps);
    }
  }
}

// torch.optim.Adagrad:
//   γ̃ = γ / (1 + (t−1)η);   if λ≠0: g ← g + λθ;   sum ← sum + g²;   θ ← θ − γ̃ g / (√sum + ε)
void ref_adagrad(const json& cfg, double lr, Vec& theta, Vec g, RefState& s) {
  const double eta = num(cfg, "lr_decay", 0), wd = num(cfg, "weight_decay", 0), eps = num(cfg, "eps", 1e-10);
  if (s.t == 0) s.a = Vec(theta.size(), num(cfg, "initial_accumulator_value", 0));
  ++s.t;
  const double clr = lr / (1 + (s.t - 1) * eta);
  for (size_t i = 0; i < theta.size(); ++i) {
    g[i] += wd * theta[i];
    s.a[i] += g[i] * g[i];
    theta[i] -= clr * g[i] / (std::sqrt(s.a[i]) + eps);
  }
}

RefStep reference_for(const std::string& name) {
  if (name == "sgd") return ref_sgd;
  if (name == "adam")
    return [](const json& c, double lr, Vec& t, Vec g, RefState& s) { ref_adam(c, lr, t, g, s, false); };
  if (name == "adamw")
    return [](const json& c, double lr, Vec& t, Vec g, RefState& s) { ref_adam(c, lr, t, g, s, true); };
  if (name == "rmsprop") return ref_rmsprop;
  return ref_adagrad;
}

struct Case {
  std::string name;
  json config;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name << " " << c.config.dump(); }

class OptimReference : public ::testing::TestWithParam<Case> {};

// Three steps on two parameters. The gradients change scale between steps (so
// amsgrad's max and the moments' history matter), the second parameter gets no
// gradient at the second step (it must be skipped, and its own step count used
// for bias correction), and the lr is halved before the third step.
TEST_P(OptimReference, ThreeStepsMatchPyTorchFormulas) {
  const Case& c = GetParam();
  const std::vector<Shape> shapes{{3, 4}, {5}};
  std::vector<Tensor> params;
  std::vector<Vec> ref_theta;
  std::vector<RefState> ref_state(shapes.size());
  for (size_t k = 0; k < shapes.size(); ++k) {
    const std::vector<float> init_values = random_floats(static_cast<size_t>(shape_numel(shapes[k])), 1 + k);
    params.push_back(param(init_values, shapes[k]));
    ref_theta.emplace_back(init_values.begin(), init_values.end());
  }
  std::unique_ptr<Optimizer> opt = make_optimizer(c.name, c.config);
  opt->attach(params);
  const RefStep ref = reference_for(c.name);
  const json cfg = opt->config();  // every hyperparameter, defaults included
  const double scales[3] = {1.0, 0.1, 0.6};
  for (int step = 0; step < 3; ++step) {
    if (step == 2) opt->set_lr(opt->lr() * 0.5);
    for (size_t k = 0; k < params.size(); ++k) {
      if (step == 1 && k == 1) {
        params[k].zero_grad();
        continue;
      }
      std::vector<float> g = random_floats(ref_theta[k].size(), 100 + 10 * step + k);
      for (float& x : g) x *= static_cast<float>(scales[step]);
      set_grad(params[k], g);
      ref(cfg, opt->lr(), ref_theta[k], Vec(g.begin(), g.end()), ref_state[k]);
    }
    opt->step();
    for (size_t k = 0; k < params.size(); ++k) {
      const std::vector<float> got = params[k].to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i) {
        EXPECT_NEAR(got[i], ref_theta[k][i], 2e-6 + 2e-6 * std::abs(ref_theta[k][i]))
            << c.name << " step " << step << " param " << k << " element " << i;
      }
    }
  }
  EXPECT_EQ(opt->steps(), 3);
}

INSTANTIATE_TEST_SUITE_P(
    Optim, OptimReference,
    ::testing::Values(
        Case{"sgd", {{"lr", 0.1}, {"weight_decay", 0.1}}},
        Case{"sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"dampening", 0.1}, {"weight_decay", 0.05}}},
        Case{"sgd", {{"lr", 0.1}, {"momentum", 0.8}, {"nesterov", true}}}, Case{"adam", {{"lr", 0.1}}},
        Case{"adam", {{"lr", 0.1}, {"betas", {0.8, 0.9}}, {"eps", 1e-3}, {"weight_decay", 0.1}}},
        Case{"adam", {{"lr", 0.1}, {"amsgrad", true}, {"weight_decay", 0.05}}}, Case{"adamw", {{"lr", 0.1}}},
        Case{"adamw", {{"lr", 0.1}, {"weight_decay", 0.2}, {"amsgrad", true}, {"beta2", 0.9}}},
        Case{"rmsprop", {{"lr", 0.01}}},
        Case{"rmsprop", {{"lr", 0.01}, {"alpha", 0.9}, {"momentum", 0.9}, {"weight_decay", 0.1}}},
        Case{"rmsprop", {{"lr", 0.01}, {"centered", true}, {"eps", 1e-4}}},
        Case{"rmsprop", {{"lr", 0.01}, {"alpha", 0.8}, {"centered", true}, {"momentum", 0.5}}},
        Case{"adagrad", {{"lr", 0.1}}},
        Case{"adagrad",
             {{"lr", 0.1},
              {"lr_decay", 0.1},
              {"weight_decay", 0.1},
              {"initial_accumulator_value", 0.1},
              {"eps", 1e-6}}}),
    [](const ::testing::TestParamInfo<Case>& tp) { return tp.param.name + std::to_string(tp.index); });

// ---- values worked out by hand -------------------------------------------------------------

TEST(OptimSGD, HandComputedStepsWithMomentumAndWeightDecay) {
  // θ = 1, g = 0.5, γ = 0.1, λ = 0.1, μ = 0.9:
  // step 1: g' = 0.5 + 0.1 = 0.6, b = 0.6, θ = 1 - 0.06 = 0.94
  // step 2: g' = 0.5 + 0.094 = 0.594, b = 0.54 + 0.594 = 1.134, θ = 0.94 - 0.1134 = 0.8266
  Tensor p = param({1.0f}, {1});
  SGD opt(std::vector<Tensor>{p}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
  set_grad(p, {0.5f});
  opt.step();
  EXPECT_NEAR(p.item<float>(), 0.94f, 1e-6);
  set_grad(p, {0.5f});
  opt.step();
  EXPECT_NEAR(p.item<float>(), 0.8266f, 1e-6);
}

TEST(OptimAdam, FirstStepMovesEveryWeightByLr) {
  // At t = 1, m̂ = g and v̂ = g², so θ moves by γ·g/(|g| + ε) ≈ γ·sign(g) whatever |g| is.
  Tensor p = param({1.0f, 1.0f, 1.0f}, {3});
  Adam opt(std::vector<Tensor>{p}, {.lr = 0.01});
  set_grad(p, {1000.0f, -0.001f, 3.0f});
  opt.step();
  const std::vector<float> got = p.to_vector<float>();
  EXPECT_NEAR(got[0], 0.99f, 1e-6);
  EXPECT_NEAR(got[1], 1.01f, 1e-5);  // ε = 1e-8 against |g| = 1e-3: 1e-5 relative
  EXPECT_NEAR(got[2], 0.99f, 1e-6);
}

TEST(OptimAdamW, DecaysWeightsWithoutGradientHistory) {
  // A zero gradient leaves m = v = 0: Adam with L2 would still move θ through g = λθ,
  // AdamW only by the decoupled decay θ ← θ(1 − γλ).
  Tensor p = param({2.0f}, {1});
  AdamW opt(std::vector<Tensor>{p}, {.lr = 0.1, .weight_decay = 0.5});
  EXPECT_EQ(opt.options().weight_decay, 0.5);
  EXPECT_EQ(AdamW().options().weight_decay, 0.01);  // PyTorch's default
  set_grad(p, {0.0f});
  opt.step();
  EXPECT_NEAR(p.item<float>(), 2.0f * (1 - 0.1 * 0.5), 1e-6);
}

TEST(OptimAdagrad, HandComputedFirstStep) {
  // sum = 0.1 + 0.25 = 0.35; θ = 1 - 0.1 * 0.5 / √0.35
  Tensor p = param({1.0f}, {1});
  Adagrad opt(std::vector<Tensor>{p}, {.lr = 0.1, .initial_accumulator_value = 0.1});
  set_grad(p, {0.5f});
  opt.step();
  EXPECT_NEAR(p.item<float>(), 1.0 - 0.05 / std::sqrt(0.35), 1e-6);
}

// ---- minimising a quadratic -------------------------------------------------------------------

// f(θ) = ½ Σ a_i (θ_i − c_i)², minimum at c, through autograd as a training loop would run it.
double distance_after(Optimizer& opt, int steps) {
  const int n = 16;
  const std::vector<float> a = random_floats(n, 7, 0.5f, 2.0f), c = random_floats(n, 8, -2.0f, 2.0f);
  Tensor theta = param(std::vector<float>(n, 0.0f), {n});
  Tensor ta = Tensor::from_vector(a), tc = Tensor::from_vector(c);
  opt.attach({{"theta", theta}});
  for (int s = 0; s < steps; ++s) {
    Tensor loss = sum(ta * square(theta - tc)) * 0.5f;
    loss.backward();
    opt.step();
    opt.zero_grad();
    EXPECT_FALSE(theta.grad().defined());
  }
  double d = 0;
  const std::vector<float> t = theta.to_vector<float>();
  for (int i = 0; i < n; ++i) d = std::max(d, std::abs(static_cast<double>(t[i]) - c[i]));
  return d;  // started at max |c_i| ≈ 2
}

TEST(OptimQuadratic, EveryOptimizerFindsTheMinimum) {
  const std::vector<std::pair<std::string, json>> cases{
      {"sgd", {{"lr", 0.3}}},
      {"sgd", {{"lr", 0.1}, {"momentum", 0.9}, {"nesterov", true}}},
      {"adam", {{"lr", 0.05}}},
      {"adam", {{"lr", 0.05}, {"amsgrad", true}}},
      {"adamw", {{"lr", 0.05}, {"weight_decay", 0.0}}},
      {"rmsprop", {{"lr", 0.01}}},
      {"rmsprop", {{"lr", 0.01}, {"centered", true}, {"momentum", 0.5}}},
      {"adagrad", {{"lr", 0.5}}},
  };
  for (const auto& [name, config] : cases) {
    std::unique_ptr<Optimizer> opt = make_optimizer(name, config);
    EXPECT_LT(distance_after(*opt, 400), 1e-2) << name << " " << config.dump();
  }
}

TEST(OptimQuadratic, WeightDecayPullsTheMinimumTowardsZero) {
  // With L2 λ the minimum of ½a(θ−c)² + ½λθ² is θ* = ac/(a+λ): check SGD lands there.
  Tensor theta = param({0.0f}, {1});
  SGD opt(std::vector<Tensor>{theta}, {.lr = 0.2, .weight_decay = 1.0});
  for (int s = 0; s < 200; ++s) {
    Tensor loss = square(theta - 3.0f);  // a = 2, c = 3
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  EXPECT_NEAR(theta.item<float>(), 2.0 * 3.0 / (2.0 + 1.0), 1e-4);
}

}  // namespace
}  // namespace deft::optim_test
