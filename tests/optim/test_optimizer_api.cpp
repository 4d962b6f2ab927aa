// The Optimizer contract: attach (Keras and PyTorch styles), skipping parameters
// without gradients, the factory and its errors, clone, bit-identical resume from
// saved state, load_state's errors, and results independent of the thread count.
#include <gtest/gtest.h>

#include "deft/autograd/ops.h"
#include "deft/optim/optim.h"
#include "deft/tensor/kernels.h"
#include "optim_test_util.h"

namespace deft::optim_test {
namespace {

using nlohmann::json;
using namespace deft::optim;  // NOLINT: the API under test

// Configs that use every state buffer each optimizer has.
const std::vector<std::pair<std::string, json>>& stateful_configs() {
  static const std::vector<std::pair<std::string, json>> configs{
      {"sgd", {{"lr", 0.05}, {"momentum", 0.9}, {"weight_decay", 1e-3}}},
      {"sgd", {{"lr", 0.05}, {"momentum", 0.9}, {"nesterov", true}}},
      {"adam", {{"lr", 0.01}, {"amsgrad", true}, {"weight_decay", 1e-3}}},
      {"adamw", {{"lr", 0.01}}},
      {"rmsprop", {{"lr", 0.01}, {"momentum", 0.9}, {"centered", true}}},
      {"adagrad", {{"lr", 0.1}, {"lr_decay", 0.01}, {"initial_accumulator_value", 0.1}}},
  };
  return configs;
}

// A small model's parameters: a weight, a bias, and one that never gets a gradient.
NamedTensors make_params() {
  return {{"0.kernel", param(random_floats(12, 11), {4, 3})},
          {"0.bias", param(random_floats(3, 12), {3})},
          {"frozen", param(random_floats(2, 13), {2})}};
}

NamedTensors clone_params(const NamedTensors& params) {
  NamedTensors out;
  for (const auto& [name, p] : params) out.emplace_back(name, p.clone().set_requires_grad());
  return out;
}

// Step `k`'s gradient depends on the parameter (as a real one would) and on k.
void set_step_grads(const NamedTensors& params, int k) {
  for (size_t i = 0; i + 1 < params.size(); ++i) {  // the last one stays without a gradient
    const Tensor& p = params[i].second;
    std::vector<float> g =
        random_floats(static_cast<size_t>(p.numel()), 1000 + 7 * k + static_cast<uint32_t>(i));
    const std::vector<float> v = p.to_vector<float>();
    for (size_t j = 0; j < g.size(); ++j) g[j] += 0.5f * v[j];
    set_grad(p, g);
  }
}

void run_steps(Optimizer& opt, const NamedTensors& params, int from, int to) {
  for (int k = from; k < to; ++k) {
    opt.set_lr(0.01 * (1.0 + 0.1 * k));  // as a schedule would
    set_step_grads(params, k);
    opt.step();
    opt.zero_grad();
  }
}

TEST(OptimState, ResumeFromSavedStateIsBitIdentical) {
  for (const auto& [name, config] : stateful_configs()) {
    SCOPED_TRACE(name + " " + config.dump());
    // Uninterrupted: 8 steps.
    NamedTensors straight = make_params();
    NamedTensors interrupted = clone_params(straight);
    std::unique_ptr<Optimizer> a = make_optimizer(name, config);
    a->attach(straight);
    run_steps(*a, straight, 0, 8);

    // Interrupted after 3 steps: save through JSON text and tensor copies, as a checkpoint would.
    std::unique_ptr<Optimizer> b = make_optimizer(name, config);
    b->attach(interrupted);
    run_steps(*b, interrupted, 0, 3);
    const std::string saved_json = b->state_json().dump();
    const std::string saved_config = b->config().dump();
    std::map<std::string, Tensor> saved_tensors;
    for (const auto& [key, t] : b->state_tensors()) saved_tensors[key] = t.clone();
    saved_tensors["0.kernel"] = interrupted[0].second.clone();  // model weights may share the map
    const NamedTensors resumed_params = clone_params(interrupted);
    b.reset();

    std::unique_ptr<Optimizer> c = make_optimizer(name, json::parse(saved_config));
    c->attach(resumed_params);
    c->load_state(json::parse(saved_json), saved_tensors);
    EXPECT_EQ(c->steps(), 3);
    run_steps(*c, resumed_params, 3, 8);
    for (size_t i = 0; i < straight.size(); ++i) {
      EXPECT_TRUE(bitwise_equal(straight[i].second, resumed_params[i].second)) << straight[i].first;
    }
    EXPECT_EQ(a->state_json(), c->state_json());
  }
}

TEST(OptimState, StateNamesFollowTypeBufferAndParameter) {
  NamedTensors params = make_params();
  Adam opt(params, {.amsgrad = true});
  EXPECT_TRUE(opt.state_tensors().empty());  // allocated lazily, at the first step
  set_step_grads(params, 0);
  opt.step();
  std::vector<std::string> names;
  for (const auto& [key, t] : opt.state_tensors()) {
    names.push_back(key);
    EXPECT_EQ(t.shape(), key.ends_with("bias") ? Shape({3}) : Shape({4, 3}));
  }
  // "frozen" never had a gradient: no state.
  EXPECT_EQ(names, (std::vector<std::string>{"adam.m/0.kernel", "adam.v/0.kernel", "adam.vmax/0.kernel",
                                             "adam.m/0.bias", "adam.v/0.bias", "adam.vmax/0.bias"}));
  const json s = opt.state_json();
  EXPECT_EQ(s["type"], "adam");
  EXPECT_EQ(s["param_steps"], (json{{"0.kernel", 1}, {"0.bias", 1}}));
}

TEST(OptimState, LoadStateErrorsNameWhatIsWrong) {
  NamedTensors params = make_params();
  Adam saved(params, {.amsgrad = false});
  set_step_grads(params, 0);
  saved.step();
  const json state = saved.state_json();
  std::map<std::string, Tensor> tensors;
  for (const auto& [key, t] : saved.state_tensors()) tensors[key] = t;

  Adam fresh(clone_params(params), {});
  std::map<std::string, Tensor> missing = tensors;
  missing.erase("adam.v/0.bias");
  expect_input_error([&] { fresh.load_state(state, missing); }, {"missing", "adam.v/0.bias"});

  std::map<std::string, Tensor> misshaped = tensors;
  misshaped["adam.m/0.kernel"] = Tensor::zeros({3, 4});
  expect_input_error([&] { fresh.load_state(state, misshaped); }, {"adam.m/0.kernel", "[3,4]", "[4,3]"});

  Adam amsgrad(clone_params(params), {.amsgrad = true});
  expect_input_error([&] { amsgrad.load_state(state, tensors); }, {"missing", "adam.vmax/0.kernel"});
  std::map<std::string, Tensor> extra = tensors;
  extra["adam.vmax/0.kernel"] = Tensor::zeros({4, 3});
  expect_input_error([&] { fresh.load_state(state, extra); }, {"unexpected", "adam.vmax/0.kernel"});

  AdamW other(clone_params(params));
  expect_input_error([&] { other.load_state(state, tensors); }, {"adamw", "adam"});

  json renamed = state;
  renamed["param_steps"]["1.kernel"] = 1;
  expect_input_error([&] { fresh.load_state(renamed, tensors); }, {"1.kernel", "not attached"});

  json no_steps = state;
  no_steps.erase("param_steps");
  expect_input_error([&] { fresh.load_state(no_steps, tensors); }, {"param_steps"});

  Adam unattached;
  expect_input_error([&] { unattached.load_state(state, tensors); }, {"attach"});

  // A failed load leaves the optimizer untouched: still no state.
  EXPECT_TRUE(fresh.state_tensors().empty());
  EXPECT_EQ(fresh.steps(), 0);
}

TEST(OptimAttach, KerasAndPyTorchStylesGiveTheSameUpdates) {
  NamedTensors a = make_params(), b = clone_params(a);
  Adam keras({.lr = 1e-2});  // configured before the model has parameters
  EXPECT_FALSE(keras.attached());
  keras.attach(a);
  Adam torch_style(b, {.lr = 1e-2});
  EXPECT_TRUE(torch_style.attached());
  for (int k = 0; k < 3; ++k) {
    set_step_grads(a, k);
    set_step_grads(b, k);
    keras.step();
    torch_style.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(bitwise_equal(a[i].second, b[i].second));
}

TEST(OptimAttach, UnnamedParametersAreNumbered) {
  std::vector<Tensor> params{param({1, 2}, {2}), param({3}, {1})};
  SGD opt(params, {.momentum = 0.9});
  EXPECT_EQ(opt.params()[0].first, "0");
  EXPECT_EQ(opt.params()[1].first, "1");
  EXPECT_TRUE(opt.params()[0].second.same(params[0]));
}

TEST(OptimAttach, UpdatesTheModelsOwnTensorsAndSkipsMissingGradients) {
  NamedTensors params = make_params();
  const Tensor frozen_before = params[2].second.clone();
  const Tensor kernel_before = params[0].second.clone();
  Tensor model_view = params[0].second;  // the model holds the same handle
  SGD opt(params, {.lr = 0.1});
  set_step_grads(params, 0);
  opt.step();
  EXPECT_FALSE(bitwise_equal(model_view, kernel_before));
  EXPECT_TRUE(bitwise_equal(params[2].second, frozen_before));
  EXPECT_FALSE(params[0].second.grad_fn_name());  // still a leaf: no graph recorded
  opt.zero_grad();
  for (const auto& [name, p] : params) EXPECT_FALSE(p.grad().defined()) << name;
}

TEST(OptimAttach, RejectsBadParameters) {
  Tensor p = param({1, 2, 3, 4}, {2, 2});
  expect_input_error([&] { SGD(NamedTensors{{"w", p}, {"w", param({1}, {1})}}); }, {"'w'", "twice"});
  expect_input_error([&] { SGD(NamedTensors{{"w", p}, {"v", p}}); }, {"'v'", "shares"});
  expect_input_error([&] { SGD(NamedTensors{{"i", Tensor::zeros({2}, DType::Int64)}}); }, {"'i'", "int64"});
  expect_input_error(
      [&] {
        SGD(NamedTensors{{"t", kernel::transpose(p, 0, 1)}});
      },
      {"'t'", "not contiguous"});
  expect_input_error([&] { SGD(NamedTensors{{"", p}}); }, {"empty name"});
  SGD unattached;
  expect_input_error([&] { unattached.step(); }, {"sgd", "attach"});
  SGD opt(NamedTensors{{"w", p}});
  p.impl()->autograd->grad = Tensor::zeros({4});
  expect_input_error([&] { opt.step(); }, {"'w'", "[4]", "[2,2]"});
  expect_input_error([&] { opt.set_lr(-1); }, {"lr", "-1"});
}

TEST(OptimFactory, BuildsEveryOptimizerAndRoundTripsItsConfig) {
  for (const std::string& name : optimizer_names()) {
    std::unique_ptr<Optimizer> opt = make_optimizer(name, {{"lr", 0.123}});
    EXPECT_EQ(opt->type(), name);
    EXPECT_EQ(opt->lr(), 0.123);
    EXPECT_EQ(opt->config()["lr"], 0.123);
    std::unique_ptr<Optimizer> again = make_optimizer(name, opt->config());
    EXPECT_EQ(again->config(), opt->config()) << name;
  }
  EXPECT_EQ(make_optimizer("Adam")->type(), "adam");  // Keras spells it with a capital
  EXPECT_EQ(make_optimizer("adamw")->config()["weight_decay"], 0.01);
  EXPECT_EQ(make_optimizer("adam", {{"beta1", 0.5}})->config()["betas"], (json{0.5, 0.999}));
}

TEST(OptimFactory, ErrorsListTheValidChoices) {
  expect_input_error([] { make_optimizer("lbfgs"); }, {"'lbfgs'", "sgd, adam, adamw, rmsprop, adagrad"});
  expect_input_error(
      [] {
        make_optimizer("adam", {{"learning_rate", 0.1}});
      },
      {"adam", "'learning_rate'", "lr", "betas", "eps", "weight_decay", "amsgrad"});
  expect_input_error([] { make_optimizer("sgd", {{"lr", "fast"}}); }, {"sgd", "'lr'", "number", "fast"});
  expect_input_error([] { make_optimizer("sgd", {{"nesterov", true}}); }, {"nesterov", "momentum"});
  expect_input_error([] { make_optimizer("adam", {{"betas", {0.9, 1.0}}}); }, {"betas[1]", "[0, 1)", "1"});
  expect_input_error([] { make_optimizer("adam", {{"betas", {0.9}}}); }, {"'betas'", "2 numbers"});
  expect_input_error(
      [] {
        make_optimizer("adam", {{"betas", {0.9, 0.99}}, {"beta1", 0.8}});
      },
      {"betas", "beta1"});
  expect_input_error([] { make_optimizer("rmsprop", {{"alpha", 1.5}}); }, {"rmsprop", "alpha", "1.5"});
  expect_input_error([] { make_optimizer("adagrad", {{"lr", -0.1}}); }, {"adagrad", "lr", "-0.1"});
  expect_input_error([] { make_optimizer("rmsprop", {{"centered", 1}}); }, {"'centered'", "true or false"});
  expect_input_error([] { make_optimizer("sgd", json::array({1, 2})); }, {"sgd", "object"});
  expect_input_error([] { SGD({.weight_decay = -1.0}); }, {"weight_decay", "-1"});
}

TEST(OptimFactory, CloneCopiesTheConfigurationNotTheState) {
  NamedTensors params = make_params();
  RMSprop opt(params, {.lr = 0.02, .momentum = 0.5, .centered = true});
  set_step_grads(params, 0);
  opt.step();
  opt.set_lr(0.03);
  std::unique_ptr<Optimizer> copy = opt.clone();
  EXPECT_EQ(copy->type(), "rmsprop");
  EXPECT_EQ(copy->config(), opt.config());
  EXPECT_EQ(copy->lr(), 0.03);
  EXPECT_FALSE(copy->attached());
  EXPECT_EQ(copy->steps(), 0);
}

// A parameter above the parallel threshold is split over the pool; the result
// must be the same bits on one thread and on several.
TEST(OptimParallel, LargeParametersGiveTheSameBitsOnAnyThreadCount) {
  const int64_t n = (int64_t{1} << 17) + 37;
  const std::vector<float> init = random_floats(static_cast<size_t>(n), 21);
  for (const auto& [name, config] : stateful_configs()) {
    std::vector<Tensor> results;
    for (int threads : {1, 2, 3}) {
      ThreadCountGuard scope(threads);
      Tensor p = param(init, {n});
      std::unique_ptr<Optimizer> opt = make_optimizer(name, config);
      opt->attach({p});
      for (int k = 0; k < 3; ++k) {
        set_grad(p, random_floats(static_cast<size_t>(n), 30 + k));
        opt->step();
      }
      results.push_back(p);
    }
    EXPECT_TRUE(bitwise_equal(results[0], results[1])) << name;
    EXPECT_TRUE(bitwise_equal(results[0], results[2])) << name;
    // And the same as a small parameter updated by the serial path: its first elements.
    Tensor small = param(std::vector<float>(init.begin(), init.begin() + 1000), {1000});
    std::unique_ptr<Optimizer> opt = make_optimizer(name, config);
    opt->attach({small});
    for (int k = 0; k < 3; ++k) {
      std::vector<float> g = random_floats(static_cast<size_t>(n), 30 + k);
      g.resize(1000);
      set_grad(small, g);
      opt->step();
    }
    EXPECT_TRUE(bitwise_equal(small, kernel::slice(results[0], 0, 0, 1000).clone())) << name;
  }
}

}  // namespace
}  // namespace deft::optim_test
