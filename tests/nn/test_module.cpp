// Modules, Sequential, layers, initialisers and the layer registry.
#include <gtest/gtest.h>

#include <cmath>

#include "../tensor/test_util.h"
#include "deft/autograd/ops.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"

namespace deft::nn {
namespace {

Sequential seed_mlp() { return Sequential{Flatten(), Dense(128, "relu"), Dropout(0.2), Dense(10)}; }

TEST(Module, SequentialBuildsShapesAndCountsParameters) {
  Sequential net = seed_mlp();
  Generator gen(0);
  EXPECT_EQ(net.build({1, 28, 28}, gen), (Shape{10}));
  EXPECT_EQ(net[0].output_shape(), (Shape{784}));
  EXPECT_EQ(net[1].output_shape(), (Shape{128}));
  // 784*128 + 128 + 128*10 + 10, the figure Keras prints for this model.
  EXPECT_EQ(net.num_parameters(), 101770);
  const NamedTensors p = net.named_parameters();
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].first, "1.kernel");
  EXPECT_EQ(p[0].second.shape(), (Shape{784, 128}));
  EXPECT_EQ(p[3].first, "3.bias");
  for (auto& [name, t] : p) EXPECT_TRUE(t.requires_grad()) << name;
  // The dropout generator position is a buffer, not a parameter.
  const NamedTensors b = net.named_buffers();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].first, "2.rng");
}

TEST(Module, SummaryListsLayersShapesAndTotals) {
  Sequential net = seed_mlp();
  Generator gen(0);
  net.build({1, 28, 28}, gen);
  const std::string s = net.summary();
  EXPECT_NE(s.find("1 (Dense)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 784)"), std::string::npos) << s;
  EXPECT_NE(s.find("100,480"), std::string::npos) << s;  // 784*128 + 128
  EXPECT_NE(s.find("Total params: 101,770"), std::string::npos) << s;
}

TEST(Module, ForwardGivesBatchOfOutputsAndGradientsReachEveryParameter) {
  Sequential net = seed_mlp();
  Generator gen(1);
  net.build({1, 28, 28}, gen);
  Tensor x = Tensor::rand({5, 1, 28, 28}, gen);
  Tensor y = net(x);
  EXPECT_EQ(y.shape(), (Shape{5, 10}));
  sum(square(y)).backward();
  for (auto& [name, t] : net.named_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << name;
    EXPECT_GT(sum(abs(t.grad())).item(), 0.f) << name;
  }
}

TEST(Module, BuildingWithAnotherShapeOrWrongLinearWidthIsAShapeError) {
  Sequential net = seed_mlp();
  Generator gen(0);
  net.build({1, 28, 28}, gen);
  EXPECT_THROW(net.build({3, 28, 28}, gen), ShapeError);
  Sequential bad{Flatten(), Linear(100, 10)};
  try {
    bad.build({784}, gen);
    FAIL() << "expected a ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("Linear(100, 10)"), std::string::npos) << e.what();
  }
  Tensor wrong = Tensor::zeros({2, 100});
  EXPECT_THROW(net[3].forward(wrong), ShapeError);
}

TEST(Module, EvalModeTurnsDropoutOffAndTrainModeDropsAboutTheRate) {
  Dropout d(0.25);
  Generator gen(3);
  d.build({10000}, gen);
  Tensor x = Tensor::ones({4, 10000});
  d.eval();
  EXPECT_TRUE(d.forward(x).same(x));
  d.train();
  const std::vector<float> y = d.forward(x).to_vector<float>();
  int64_t zeros = 0;
  for (float v : y) {
    if (v == 0) ++zeros;
    else EXPECT_FLOAT_EQ(v, 1.f / 0.75f);
  }
  EXPECT_NEAR(static_cast<double>(zeros) / static_cast<double>(y.size()), 0.25, 0.01);
  // The generator moved on: the next mask differs.
  EXPECT_NE(d.forward(x).to_vector<float>(), y);
}

TEST(Module, LoadStateCopiesValuesAndRejectsWrongShapesAndNames) {
  Sequential a = seed_mlp(), b = seed_mlp();
  Generator g1(1), g2(2);
  a.build({784}, g1);
  b.build({784}, g2);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : a.state()) state[n] = t;
  b.load_state(state, "a");
  for (auto& [n, t] : b.state()) EXPECT_EQ(t.to_vector<float>(), state[n].to_vector<float>()) << n;
  state["1.kernel"] = Tensor::zeros({3, 3});
  try {
    b.load_state(state, "file.deft");
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("file.deft: tensor '1.kernel' is float32 [3,3]"), std::string::npos)
        << e.what();
  }
  state.erase("1.kernel");
  EXPECT_THROW(b.load_state(state, "f"), InputError);
}

TEST(Module, SpecRoundTripRebuildsTheSameArchitecture) {
  Sequential net{Flatten(), Dense(64, "gelu", {.use_bias = false, .kernel_init = "he_normal"}), LayerNorm(),
                 BatchNorm1d({.momentum = 0.2}), LeakyReLU(0.1), Dropout(0.5), Dense(3), Softmax()};
  const nlohmann::json spec = module_spec(net);
  const auto again = make_module(spec);
  EXPECT_EQ(module_spec(*again), spec);
  Generator g1(0), g2(0);
  net.build({2, 4}, g1);
  again->build({2, 4}, g2);
  EXPECT_EQ(again->num_parameters(), net.num_parameters());
  EXPECT_EQ(net.num_parameters(), 8 * 64 + 2 * 64 + 2 * 64 + 64 * 3 + 3);
}

// Every key a layer writes in its config is one the registry reads back, so a saved
// model of any layer type loads now that unknown keys are rejected.
TEST(Module, EveryLayerTypeRebuildsFromItsSpec) {
  Sequential net{Linear(4, 6, {.use_bias = false}), Reshape({2, 3}), Flatten(), Dense(5, "tanh"), ReLU(),
                 LeakyReLU(0.2), ELU(0.5), GELU(), SiLU(), Sigmoid(), Tanh(), Softmax(1),
                 Activation("swish"), Dropout(0.1), BatchNorm1d({.eps = 1e-3}), LayerNorm({.affine = false}),
                 Embedding(10, 3, "uniform_0.05")};
  const nlohmann::json spec = module_spec(net);
  EXPECT_EQ(module_spec(*make_module(spec)), spec);
}

// A call that builds the module `spec` describes, for expect_input_error.
auto building(nlohmann::json spec) {
  return [spec] { make_module(spec); };
}

TEST(Module, UnknownLayerTypeOrFieldIsAnInputErrorNamingIt) {
  using tt::expect_input_error;
  expect_input_error(building({{"type", "Dense2"}, {"config", nlohmann::json::object()}}),
                     {"unknown layer type 'Dense2'"});
  expect_input_error(building({{"type", "Dense"}, {"config", {{"units", "ten"}}}}), {"field 'units'"});
  EXPECT_THROW(Dense(10, "relux"), InputError);
  EXPECT_THROW(Dropout(1.0), InputError);
}

// A misspelt key must not build a layer with the default silently.
TEST(Module, UnknownLayerConfigKeyIsAnInputErrorNamingIt) {
  using tt::expect_input_error;
  // The typo is named (with the valid keys) before the required field it left out.
  expect_input_error(building({{"type", "Dense"}, {"config", {{"unit", 10}}}}),
                     {"layer Dense: unknown config key 'unit'", "units"});
  expect_input_error(building({{"type", "Dense"}, {"config", {{"units", 10}, {"activaton", "relu"}}}}),
                     {"'activaton'"});
  expect_input_error(building({{"type", "ReLU"}, {"config", {{"slope", 0.1}}}}), {"'slope'"});  // LeakyReLU's
  const nlohmann::json dropout = {{"type", "Dropout"}, {"config", {{"rate", 0.5}, {"seed", 1}}}};
  const nlohmann::json sequential = {{"type", "Sequential"},
                                     {"config", {{"layers", nlohmann::json::array({dropout})}}}};
  expect_input_error(building(sequential), {"layer Dropout: unknown config key 'seed'"});
  expect_input_error(building({{"type", "Embedding"}, {"config", {{"vocabulary", 10}}}}),
                     {"layer Embedding: config needs field 'dim'"});
  // The keys a LeakyReLU writes are ones it reads.
  EXPECT_NO_THROW(
      make_module({{"type", "LeakyReLU"}, {"config", {{"activation", "leaky_relu"}, {"slope", 0.2}}}}));
}

TEST(Init, GlorotAndHeHaveTheirVariances) {
  Generator gen(7);
  const Tensor g = initialise("glorot_uniform", {400, 600}, 400, 600, gen);
  const double limit = std::sqrt(6.0 / 1000.0);
  const auto gv = g.to_vector<float>();
  double s2 = 0;
  for (float v : gv) {
    EXPECT_LE(std::abs(v), limit);
    s2 += static_cast<double>(v) * v;
  }
  EXPECT_NEAR(s2 / static_cast<double>(gv.size()), limit * limit / 3.0, 0.02 * limit * limit / 3.0);
  const Tensor h = initialise("he_normal", {500, 500}, 500, 500, gen);
  double hs = 0;
  for (float v : h.to_vector<float>()) hs += static_cast<double>(v) * v;
  EXPECT_NEAR(hs / 250000.0, 2.0 / 500.0, 0.02 * 2.0 / 500.0);
  EXPECT_EQ(initialise("zeros", {3}, 1, 1, gen).to_vector<float>(), std::vector<float>(3, 0.f));
  EXPECT_THROW(initialise("glorot", {3}, 1, 1, gen), InputError);
}

TEST(Layers, ReshapeEmbeddingAndNormsProduceTheirShapes) {
  Generator gen(0);
  Reshape r({-1, 4});
  EXPECT_EQ(r.build({2, 6}, gen), (Shape{3, 4}));
  EXPECT_EQ(r.forward(Tensor::zeros({5, 2, 6})).shape(), (Shape{5, 3, 4}));
  Reshape bad({5, -1});
  EXPECT_THROW(bad.build({2, 6}, gen), ShapeError);
  Embedding e(10, 3);
  EXPECT_EQ(e.build({7}, gen), (Shape{7, 3}));
  EXPECT_EQ(e.forward(Tensor::zeros({2, 7}, DType::Int64)).shape(), (Shape{2, 7, 3}));
  LayerNorm ln;
  ln.build({6}, gen);
  const Tensor y = ln.forward(Tensor::rand({4, 6}, gen));
  for (float m : mean(y, {1}).to_vector<float>()) EXPECT_NEAR(m, 0.f, 1e-5f);
}

}  // namespace
}  // namespace deft::nn
