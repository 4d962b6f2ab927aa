// Convolution, pooling, BatchNorm2d, Dropout2d and the Add / Concat containers as
// layers: shapes for every option, weight layout, the registry, state and modes.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../tensor/test_util.h"
#include "deft/autograd/ops.h"
#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"

namespace deft::nn {
namespace {

using tt::expect_error;
using tt::expect_input_error;

// Builds `m` for per-example `input`, checks the built output shape against `want`
// and that forward on a batch of 2 gives [2] + that shape.
void expect_shape(Module& m, const Shape& input, const Shape& want) {
  Generator gen(0);
  EXPECT_EQ(m.build(input, gen), want) << m.type() << " " << module_spec(m).dump();
  Shape batch{2};
  batch.insert(batch.end(), input.begin(), input.end());
  Shape out{2};
  out.insert(out.end(), want.begin(), want.end());
  EXPECT_EQ(m.forward(Tensor::rand(batch, gen)).shape(), out) << m.type() << " " << module_spec(m).dump();
}

TEST(Conv2dLayer, OutputShapesForPaddingStrideDilationAndGroups) {
  struct Case {
    Conv2d conv;
    Shape want;
  };
  const Shape in{3, 10, 12};
  std::vector<Case> cases;
  cases.push_back({Conv2d(4, 3), {4, 8, 10}});
  cases.push_back({Conv2d(4, 3, {.padding = "same"}), {4, 10, 12}});
  cases.push_back({Conv2d(4, 3, {.stride = 2, .padding = "same"}), {4, 5, 6}});
  cases.push_back({Conv2d(4, 3, {.stride = 3, .padding = "same"}), {4, 4, 4}});  // ceil(10/3), ceil(12/3)
  cases.push_back({Conv2d(4, 4, {.stride = 2, .padding = "same"}), {4, 5, 6}});  // even kernel
  cases.push_back({Conv2d(4, 3, {.stride = 2}), {4, 4, 5}});
  cases.push_back({Conv2d(4, 3, {.padding = {1, 2}}), {4, 10, 14}});
  cases.push_back({Conv2d(4, 3, {.padding = {0, 1, 2, 3}}), {4, 9, 15}});
  cases.push_back({Conv2d(4, 3, {.padding = 1}), {4, 10, 12}});
  cases.push_back({Conv2d(4, 3, {.dilation = 2}), {4, 6, 8}});
  cases.push_back({Conv2d(4, 3, {.padding = "same", .dilation = 2}), {4, 10, 12}});
  cases.push_back({Conv2d(6, 3, {.padding = 1, .groups = 3}), {6, 10, 12}});
  cases.push_back({Conv2d(5, {1, 3}, {.stride = {2, 1}}), {5, 5, 10}});
  cases.push_back({Conv2d(2, 1, {.use_bias = false, .activation = "relu"}), {2, 10, 12}});
  for (Case& c : cases) expect_shape(c.conv, in, c.want);
}

TEST(Conv2dLayer, StoresItsKernelOihwAndCountsParametersLikePyTorch) {
  Generator gen(0);
  Conv2d conv(8, 3, {.groups = 2});
  conv.build({4, 9, 9}, gen);
  EXPECT_EQ(conv.kernel().shape(), (Shape{8, 2, 3, 3}));
  EXPECT_EQ(conv.bias().shape(), (Shape{8}));
  EXPECT_EQ(conv.num_parameters(), 8 * 2 * 9 + 8);
  const NamedTensors p = conv.named_parameters();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].first, "kernel");
  EXPECT_EQ(p[1].first, "bias");
  Conv2d no_bias(8, 3, {.use_bias = false});
  no_bias.build({4, 9, 9}, gen);
  EXPECT_EQ(no_bias.num_parameters(), 8 * 4 * 9);
  // Glorot-uniform with fan_in = 2*9, fan_out = 8*9 (Keras's and PyTorch's fans).
  const double limit = std::sqrt(6.0 / (18.0 + 72.0));
  for (float v : conv.kernel().to_vector<float>()) EXPECT_LE(std::abs(v), limit);
  for (float v : conv.bias().to_vector<float>()) EXPECT_EQ(v, 0.f);
}

// The layer wires kernel layout, groups, padding, bias and activation as a naive
// loop over the definition does.
TEST(Conv2dLayer, ForwardMatchesANaiveConvolution) {
  const int64_t n = 2, c = 4, h = 5, w = 6, o = 6, groups = 2, k = 3;
  Conv2d conv(o, k, {.padding = "same", .groups = groups, .activation = "relu", .bias_init = "uniform_0.5"});
  Generator gen(3);
  conv.build({c, h, w}, gen);
  const Tensor x = tt::rand_tensor({n, c, h, w}, 1);
  const std::vector<float> xv = x.to_vector<float>(), wv = conv.kernel().to_vector<float>(),
                           bv = conv.bias().to_vector<float>();
  std::vector<double> want;
  const int64_t cg = c / groups, og = o / groups;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t oc = 0; oc < o; ++oc)
      for (int64_t i = 0; i < h; ++i)
        for (int64_t j = 0; j < w; ++j) {
          double acc = bv[oc];
          const int64_t g = oc / og;
          for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t di = 0; di < k; ++di)
              for (int64_t dj = 0; dj < k; ++dj) {
                const int64_t y = i + di - 1, xx = j + dj - 1;
                if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
                acc += static_cast<double>(wv[((oc * cg + ci) * k + di) * k + dj]) *
                       xv[((b * c + g * cg + ci) * h + y) * w + xx];
              }
          want.push_back(std::max(acc, 0.0));
        }
  EXPECT_TRUE(tt::all_close(conv.forward(x).to_vector<float>(), want, 1e-5, 1e-4));
}

TEST(Conv2dLayer, ShapeErrorsNameTheLayerAndShapes) {
  Generator gen(0);
  expect_error<ShapeError>(
      [&] {
        Conv2d(6, 3, {.groups = 3}).build({4, 8, 8}, gen);
      },
      {"Conv2d", "[4,8,8]", "groups"});
  expect_error<ShapeError>([&] { Conv2d(4, 5).build({1, 3, 3}, gen); }, {"Conv2d", "larger", "[1,3,3]"});
  expect_error<ShapeError>([&] { Conv2d(4, 3).build({784}, gen); }, {"Conv2d", "[C,H,W]", "[784]"});
  // Inside a Sequential the message says which layer.
  Sequential net{Conv2d(4, 3), MaxPool2d(2), Conv2d(4, 5)};
  expect_error<ShapeError>([&] { net.build({1, 8, 8}, gen); }, {"layer 2 (Conv2d)", "[4,3,3]"});
  expect_input_error([] { Conv2d(4, 3, {.groups = 3}); }, {"groups", "filters"});
  expect_input_error([] { Conv2d(4, 0); }, {"kernel_size"});
  expect_input_error([] { Conv2d(4, 3, {.padding = "full"}); }, {"full"});
  expect_input_error([] { Conv2d(4, 3, {.activation = "relux"}); }, {"relux"});
  Conv2d built(4, 3);
  built.build({2, 8, 8}, gen);
  expect_error<ShapeError>([&] { built.forward(Tensor::zeros({1, 3, 8, 8})); }, {"Conv2d", "[1,3,8,8]"});
}

TEST(PoolLayers, OutputShapesForStridePaddingAndCeilMode) {
  const Shape in{3, 7, 8};
  MaxPool2d p1(2);
  expect_shape(p1, in, {3, 3, 4});
  MaxPool2d p2(2, {.ceil_mode = true});
  expect_shape(p2, in, {3, 4, 4});
  MaxPool2d p3(2, {.stride = 1});
  expect_shape(p3, in, {3, 6, 7});
  MaxPool2d p4(3, {.stride = 2, .padding = 1});
  expect_shape(p4, in, {3, 4, 4});
  MaxPool2d p5(2, {.padding = "same"});
  expect_shape(p5, in, {3, 4, 4});
  AvgPool2d a1(3, {.stride = 1, .padding = 1});
  expect_shape(a1, in, {3, 7, 8});
  AvgPool2d a2({2, 4});
  expect_shape(a2, in, {3, 3, 2});
  AvgPool2d a3(3, {.stride = 2, .padding = 1, .ceil_mode = true, .count_include_pad = false});
  expect_shape(a3, in, {3, 4, 5});
  AdaptiveAvgPool2d ad({2, 3});
  expect_shape(ad, in, {3, 2, 3});
  GlobalAvgPool2d g;
  expect_shape(g, in, {3});
  Generator gen(0);
  expect_error<ShapeError>([&] { MaxPool2d(4).build({1, 3, 3}, gen); }, {"MaxPool2d", "[1,3,3]"});
  expect_input_error([] { MaxPool2d(2, {.padding = 2}); }, {"half the kernel"});
}

TEST(PoolLayers, ValuesOfMaxAverageAndGlobalPooling) {
  // One 4x4 plane holding 0..15 and a second holding its negation.
  std::vector<float> v(32);
  for (int i = 0; i < 16; ++i) v[i] = static_cast<float>(i), v[16 + i] = -static_cast<float>(i);
  const Tensor x = Tensor::from_vector(v, {1, 2, 4, 4});
  Generator gen(0);
  MaxPool2d mp(2);
  mp.build({2, 4, 4}, gen);
  EXPECT_EQ(mp.forward(x).to_vector<float>(), (std::vector<float>{5, 7, 13, 15, 0, -2, -8, -10}));
  AvgPool2d ap(2);
  ap.build({2, 4, 4}, gen);
  EXPECT_EQ(ap.forward(x).to_vector<float>(),
            (std::vector<float>{2.5, 4.5, 10.5, 12.5, -2.5, -4.5, -10.5, -12.5}));
  GlobalAvgPool2d gap;
  gap.build({2, 4, 4}, gen);
  const Tensor y = gap.forward(x);
  EXPECT_EQ(y.shape(), (Shape{1, 2}));  // [N,C], as Keras's GlobalAveragePooling2D
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{7.5, -7.5}));
  AdaptiveAvgPool2d ad(1);
  ad.build({2, 4, 4}, gen);
  EXPECT_EQ(ad.forward(x).to_vector<float>(), (std::vector<float>{7.5, -7.5}));
}

TEST(BatchNorm2dLayer, NormalisesChannelsWhileTrainingAndUsesRunningStatsInEval) {
  Generator gen(5);
  BatchNorm2d bn({.momentum = 0.5});
  bn.build({3, 4, 5}, gen);
  EXPECT_EQ(bn.num_parameters(), 6);
  const NamedTensors b = bn.named_buffers();
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].first, "running_mean");
  const Tensor x = Tensor::randn({8, 3, 4, 5}, gen) * 3.f + 2.f;
  const Tensor y = bn.forward(x);
  for (float m : mean(y, {0, 2, 3}).to_vector<float>()) EXPECT_NEAR(m, 0.f, 1e-4f);
  for (float s : mean(square(y), {0, 2, 3}).to_vector<float>()) EXPECT_NEAR(s, 1.f, 1e-3f);
  // The running mean moved halfway (momentum 0.5) to the batch mean.
  const std::vector<float> batch_mean = mean(x, {0, 2, 3}).to_vector<float>();
  const std::vector<float> running = b[0].second.to_vector<float>();
  for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(running[c], 0.5f * batch_mean[c], 1e-4f);
  // Eval: (x - running_mean) / sqrt(running_var + eps), whatever the batch.
  std::map<std::string, Tensor> state;
  state["gamma"] = Tensor::ones({3});
  state["beta"] = Tensor::zeros({3});
  state["running_mean"] = Tensor::from_vector(std::vector<float>{1, 2, 3});
  state["running_var"] = Tensor::from_vector(std::vector<float>{4, 9, 16});
  bn.load_state(state, "test");
  bn.eval();
  const Tensor one = Tensor::ones({1, 3, 4, 5});
  const std::vector<float> out = bn.forward(one).to_vector<float>();
  for (int64_t c = 0; c < 3; ++c)
    EXPECT_NEAR(out[static_cast<size_t>(c * 20)],
                (1.0 - (c + 1)) / std::sqrt(static_cast<double>((c + 2) * (c + 2)) + 1e-5), 1e-5);
}

TEST(Dropout2dLayer, ZeroesWholeChannelsWhileTrainingAndIsTheIdentityInEval) {
  Generator gen(7);
  Dropout2d d(0.5);
  d.build({64, 3, 3}, gen);
  ASSERT_EQ(d.named_buffers().size(), 1u);
  EXPECT_EQ(d.named_buffers()[0].first, "rng");
  const Tensor x = Tensor::ones({4, 64, 3, 3});
  const std::vector<float> y = d.forward(x).to_vector<float>();
  int64_t dropped = 0;
  for (size_t ch = 0; ch < 4 * 64; ++ch) {
    const float first = y[ch * 9];
    EXPECT_TRUE(first == 0.f || first == 2.f) << first;
    for (size_t i = 1; i < 9; ++i) EXPECT_EQ(y[ch * 9 + i], first) << "channel " << ch;
    dropped += first == 0.f;
  }
  EXPECT_GT(dropped, 64);
  EXPECT_LT(dropped, 192);
  EXPECT_NE(d.forward(x).to_vector<float>(), y);  // the generator moved on
  d.eval();
  EXPECT_TRUE(d.forward(x).same(x));
  expect_input_error([] { Dropout2d(1.0); }, {"Dropout2d"});
}

TEST(Containers, AddSumsBranchesAndConcatJoinsChannels) {
  Generator gen(0);
  Add twice{Identity(), Identity()};
  twice.build({2, 3, 3}, gen);
  const Tensor x = Tensor::randn({2, 2, 3, 3}, gen);
  EXPECT_TRUE(
      tt::all_close(twice.forward(x).to_vector<float>(), tt::to_double((x * 2.f).to_vector<float>()), 0, 0));
  Add relu_sum({Identity(), Identity()}, "relu");
  relu_sum.build({2, 3, 3}, gen);
  for (float v : relu_sum.forward(x).to_vector<float>()) EXPECT_GE(v, 0.f);

  Concat cat_net{Conv2d(5, 3, {.padding = "same"}), Identity(), MaxPool2d(3, {.stride = 1, .padding = 1})};
  expect_shape(cat_net, {2, 6, 7}, {9, 6, 7});
  Add block{Sequential{Conv2d(4, 3, {.stride = 2, .padding = 1}), BatchNorm2d()},
            Conv2d(4, 1, {.stride = 2})};
  expect_shape(block, {3, 9, 9}, {4, 5, 5});
}

TEST(Containers, BranchShapesThatDoNotFitAreShapeErrorsNamingEachBranch) {
  Generator gen(0);
  Add add{Sequential{Conv2d(4, 3)}, Identity()};
  expect_error<ShapeError>(
      [&] {
        add.build({3, 8, 8}, gen);
      },
      {"Add", "branch 0 (Sequential) [4,6,6]", "branch 1 (Identity) [3,8,8]"});
  Concat cat_bad{Conv2d(4, 3), Identity()};
  expect_error<ShapeError>(
      [&] {
        cat_bad.build({3, 8, 8}, gen);
      },
      {"Concat", "branch 0 (Conv2d) [4,6,6]", "branch 1 (Identity) [3,8,8]"});
  Add inner_bad{Sequential{Conv2d(4, 3), Conv2d(4, 9)}, Identity()};
  expect_error<ShapeError>(
      [&] {
        inner_bad.build({3, 8, 8}, gen);
      },
      {"Add: branch 0 (Sequential)", "layer 1 (Conv2d)"});
  expect_input_error([] { Add{Identity()}; }, {"at least two branches"});
}

// A small residual network: Conv, then a block whose branches nest a Sequential.
Sequential residual_net() {
  return Sequential{
      Conv2d(4, 3, {.padding = 1, .activation = "relu"}),
      BatchNorm2d(),
      Add({Sequential{Conv2d(4, 3, {.padding = 1, .use_bias = false}), BatchNorm2d(), ReLU(), Dropout2d(0.2)},
           Identity()},
          "relu"),
      Concat{Identity(), AvgPool2d(3, {.stride = 1, .padding = 1})},
      MaxPool2d(2),
      AdaptiveAvgPool2d({2, 2}),
      GlobalAvgPool2d(),
      Dense(3)};
}

TEST(Containers, ParametersAreNamedByPathAndModesReachNestedLayers) {
  Sequential net = residual_net();
  Generator gen(0);
  EXPECT_EQ(net.build({2, 8, 8}, gen), (Shape{3}));
  std::vector<std::string> names;
  for (auto& [n, t] : net.state()) names.push_back(n);
  const std::vector<std::string> want{
      "0.kernel",          "0.bias",   "1.gamma", "1.beta",         "2.0.0.kernel",  "2.0.1.gamma",
      "2.0.1.beta",        "7.kernel", "7.bias",  "1.running_mean", "1.running_var", "2.0.1.running_mean",
      "2.0.1.running_var", "2.0.3.rng"};
  EXPECT_EQ(names, want);
  net.eval();
  auto* add = dynamic_cast<Add*>(&net[2]);
  ASSERT_NE(add, nullptr);
  EXPECT_FALSE(add->branches()[0]->training());
  EXPECT_FALSE((*dynamic_cast<Sequential*>(add->branches()[0].get()))[1].training());
  net.train();
  EXPECT_TRUE((*dynamic_cast<Sequential*>(add->branches()[0].get()))[3].training());
  // Gradients reach every parameter through both containers.
  const Tensor y = net(Tensor::randn({4, 2, 8, 8}, gen));
  sum(square(y)).backward();
  for (auto& [n, t] : net.named_parameters()) {
    ASSERT_TRUE(t.grad().defined()) << n;
    EXPECT_GT(sum(abs(t.grad())).item(), 0.f) << n;
  }
}

TEST(Containers, SummaryIndentsTheLayersInsideContainers) {
  Sequential net = residual_net();
  Generator gen(0);
  net.build({2, 8, 8}, gen);
  const std::string s = net.summary();
  EXPECT_NE(s.find("2 (Add)"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  2.0 (Sequential)"), std::string::npos) << s;
  EXPECT_NE(s.find("\n    2.0.0 (Conv2d)"), std::string::npos) << s;
  EXPECT_NE(s.find("\n  2.1 (Identity)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 4, 8, 8)"), std::string::npos) << s;
  EXPECT_NE(s.find("(None, 8, 8, 8)"), std::string::npos) << s;  // the Concat
  // Totals count each parameter once.
  EXPECT_NE(s.find(fmt::format("Trainable params: {}", net.num_parameters())), std::string::npos) << s;
}

// make_module(module_spec(m)) rebuilds the same network, and with m's state it
// computes the same outputs, dropout masks included.
TEST(Containers, EveryNewLayerTypeRoundTripsThroughItsSpecAndState) {
  Sequential net = residual_net();
  net.add(Reshape({3, 1, 1}));
  net.add(Dropout2d(0.5));
  net.add(Conv2d(6, {1, 1},
                 {.stride = {1, 1},
                  .padding = {0, 0, 0, 0},
                  .dilation = {2, 1},
                  .groups = 3,
                  .kernel_init = "he_normal",
                  .bias_init = "ones"}));
  net.add(Flatten());
  const nlohmann::json spec = module_spec(net);
  const auto again = make_module(spec);
  EXPECT_EQ(module_spec(*again), spec) << spec.dump(1);
  Generator g1(1), g2(2);
  net.build({2, 8, 8}, g1);
  again->build({2, 8, 8}, g2);
  std::map<std::string, Tensor> state;
  for (auto& [n, t] : net.state()) state[n] = t.clone();
  again->load_state(state, "net");
  const Tensor x = Tensor::randn({3, 2, 8, 8}, g1);
  for (bool training : {true, false}) {
    net.train(training);
    again->train(training);
    EXPECT_TRUE(tt::bitwise_equal(net.forward(x), again->forward(x))) << "training " << training;
  }
  // The config of each type, with every field spelt out, is what the registry reads.
  for (const char* type : {"Conv2d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "GlobalAvgPool2d",
                           "BatchNorm2d", "Dropout2d", "Identity", "Add", "Concat"}) {
    bool listed = false;
    for (const auto& t : module_types()) listed = listed || t == type;
    EXPECT_TRUE(listed) << type;
  }
}

TEST(Containers, RegistryRejectsBadConvAndPoolConfigsNamingTheField) {
  auto building = [](const nlohmann::json& spec) { return [spec] { make_module(spec); }; };
  expect_input_error(building({{"type", "Conv2d"}, {"config", {{"filters", 4}, {"kernel", 3}}}}),
                     {"layer Conv2d: unknown config key 'kernel'"});
  expect_input_error(building({{"type", "Conv2d"}, {"config", {{"filters", 4}}}}),
                     {"layer Conv2d: config needs field 'kernel_size'"});
  expect_input_error(building({{"type", "Conv2d"}, {"config", {{"filters", 4}, {"kernel_size", {1, 2, 3}}}}}),
                     {"layer Conv2d: field 'kernel_size'", "[1,2,3]"});
  expect_input_error(
      building({{"type", "Conv2d"}, {"config", {{"filters", 4}, {"kernel_size", 3}, {"padding", "full"}}}}),
      {"layer Conv2d", "padding", "full"});
  expect_input_error(
      building({{"type", "MaxPool2d"}, {"config", {{"kernel_size", 2}, {"count_include_pad", true}}}}),
      {"layer MaxPool2d: unknown config key 'count_include_pad'"});
  expect_input_error(building({{"type", "Add"}, {"config", {{"activation", "relu"}}}}),
                     {"layer Add", "branches"});
  expect_input_error(
      building({{"type", "Concat"},
                {"config", {{"branches", nlohmann::json::array({nlohmann::json{{"type", "Conv"}}})}}}}),
      {"unknown layer type 'Conv'"});
  // Sizes and paddings in every accepted spelling.
  for (const nlohmann::json& pad :
       {nlohmann::json("same"), nlohmann::json("valid"), nlohmann::json(1), nlohmann::json::array({1}),
        nlohmann::json::array({1, 2}), nlohmann::json::array({0, 1, 2, 3})})
    EXPECT_NO_THROW(make_module(
        {{"type", "Conv2d"},
         {"config", {{"filters", 2}, {"kernel_size", nlohmann::json::array({3})}, {"padding", pad}}}}))
        << pad.dump();
}

}  // namespace
}  // namespace deft::nn
