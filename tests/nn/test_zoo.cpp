// The model zoo: each family's architecture and parameter count (checked against the
// same networks written in PyTorch), its knobs, spec round-trips, the config keys that
// select it, and a small CNN that learns.
#include <gtest/gtest.h>

#include <map>

#include "../data/data_test_util.h"
#include "../tensor/test_util.h"
#include "deft/autograd/ops.h"
#include "deft/nn/conv.h"
#include "deft/nn/zoo.h"
#include "deft/optim/adam.h"
#include "deft/tensor/error.h"
#include "deft/train/model.h"
#include "deft/train/run.h"

namespace deft::nn {
namespace {

using tt::expect_input_error;

std::shared_ptr<Sequential> built(const std::string& family, const Shape& input, int64_t outputs,
                                  const ModelKnobs& knobs = {}) {
  auto net = make_model(family, input, outputs, knobs);
  Generator gen(0);
  net->build(input, gen);
  return net;
}

std::vector<std::string> layer_types(const Sequential& net) {
  std::vector<std::string> out;
  for (const auto& l : net.layers()) out.push_back(l->type());
  return out;
}

TEST(Zoo, SimpleCnnIsTheBenchmarkCnnAtWidthOne) {
  const auto net = built("simple_cnn", {1, 28, 28}, 10);
  EXPECT_EQ(layer_types(*net), (std::vector<std::string>{"Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d",
                                                         "Flatten", "Dense", "Dropout", "Dense"}));
  // PyTorch's counts for ../shared/bench/anchors/torch_cnn.py.
  EXPECT_EQ((*net)[0].num_parameters(), 320);
  EXPECT_EQ((*net)[2].num_parameters(), 18496);
  EXPECT_EQ((*net)[5].num_parameters(), 401536);
  EXPECT_EQ((*net)[7].num_parameters(), 1290);
  EXPECT_EQ(net->num_parameters(), 421642);
  EXPECT_EQ((*net)[0].output_shape(), (Shape{32, 28, 28}));
  EXPECT_EQ((*net)[4].output_shape(), (Shape{3136}));
  EXPECT_EQ(module_spec((*net)[6])["config"]["rate"], 0.25);
  // Width scales every count, to at least 1; depth adds blocks.
  const auto half = built("simple_cnn", {1, 28, 28}, 10, {.width = 0.5, .depth = 3});
  EXPECT_EQ((*half)[0].output_shape(), (Shape{16, 28, 28}));
  EXPECT_EQ((*half)[4].output_shape(), (Shape{64, 7, 7}));
  EXPECT_EQ((*half)[7].output_shape(), (Shape{64}));
  const auto tiny = built("simple_cnn", {1, 28, 28}, 10, {.width = 0.001, .dropout = 0.0});
  EXPECT_EQ((*tiny)[0].output_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(tiny->size(), 7u);  // dropout 0: no Dropout layer
}

TEST(Zoo, ResnetSmallHasThePaperArchitectureAndParameterCounts) {
  // He et al. 2016 CIFAR ResNets with projection shortcuts (option B) where the shape
  // changes; counts from the same networks in PyTorch.
  EXPECT_EQ(built("resnet_small", {3, 32, 32}, 10, {.depth = 20})->num_parameters(), 272474);
  EXPECT_EQ(built("resnet_small", {3, 32, 32}, 10, {.depth = 14})->num_parameters(), 175258);
  const auto r8 = built("resnet_small", {1, 28, 28}, 10, {.depth = 8});
  EXPECT_EQ(r8->num_parameters(), 77754);
  EXPECT_EQ(built("resnet_small", {1, 28, 28}, 10, {.width = 0.5, .depth = 8})->num_parameters(), 19810);
  EXPECT_EQ(layer_types(*r8), (std::vector<std::string>{"Conv2d", "BatchNorm2d", "ReLU", "Add", "Add", "Add",
                                                        "GlobalAvgPool2d", "Dense"}));
  EXPECT_EQ((*r8)[3].output_shape(), (Shape{16, 28, 28}));
  EXPECT_EQ((*r8)[4].output_shape(), (Shape{32, 14, 14}));
  EXPECT_EQ((*r8)[5].output_shape(), (Shape{64, 7, 7}));
  const auto* first = dynamic_cast<const Add*>(&(*r8)[3]);
  const auto* down = dynamic_cast<const Add*>(&(*r8)[4]);
  ASSERT_TRUE(first && down);
  EXPECT_EQ(first->branches()[1]->type(), "Identity");
  EXPECT_EQ(module_spec(*down->branches()[1])["config"]["layers"][0]["config"]["kernel_size"], 1);
  EXPECT_EQ(module_spec(*down)["config"]["activation"], "relu");
  // Odd sizes work too (7 -> 4 -> 2), and the default depth is 20.
  const auto odd = built("resnet_small", {1, 13, 13}, 3);
  EXPECT_EQ(odd->size(), 3u + 9u + 2u);
  EXPECT_EQ((*odd)[11].output_shape(), (Shape{64, 4, 4}));
  expect_input_error(
      [] {
        make_model("resnet_small", {1, 28, 28}, 10, {.depth = 9});
      },
      {"depth", "[8,14,20]", "9"});
}

TEST(Zoo, Lenet5AndVggSmallParameterCounts) {
  const auto lenet = built("lenet5", {1, 28, 28}, 10);
  EXPECT_EQ(lenet->num_parameters(), 61706);  // LeCun et al. 1998's 60K, as PyTorch counts it
  EXPECT_EQ((*lenet)[4].output_shape(), (Shape{400}));
  EXPECT_EQ(built("lenet5", {3, 32, 32}, 10)->num_parameters(), 83126);
  const auto vgg = built("vgg_small", {1, 28, 28}, 10);
  EXPECT_EQ(vgg->num_parameters(), 435882);
  EXPECT_EQ(built("vgg_small", {3, 32, 32}, 10)->num_parameters(), 551146);
  EXPECT_EQ(built("vgg_small", {1, 28, 28}, 10, {.width = 0.5, .depth = 2})->num_parameters(), 117594);
  expect_input_error([] { make_model("vgg_small", {1, 28, 28}, 10, {.depth = 6}); }, {"depth", "[1, 5]"});
  expect_input_error([] { make_model("vgg_small", {1, 12, 12}, 10, {.depth = 4}); }, {"at least 16x16"});
}

TEST(Zoo, MlpAndLinearAreTheTrainingApiNetworks) {
  const auto mlp = built("mlp", {1, 28, 28}, 10);
  EXPECT_EQ(layer_types(*mlp), (std::vector<std::string>{"Flatten", "Dense", "Dropout", "Dense"}));
  EXPECT_EQ(mlp->num_parameters(), 101770);  // the Keras Fashion-MNIST example
  const auto wide =
      built("mlp", {8}, 3, {.width = 2, .dropout = 0.0, .hidden = {16, 8}, .activation = "tanh"});
  EXPECT_EQ(layer_types(*wide), (std::vector<std::string>{"Flatten", "Dense", "Dense", "Dense"}));
  EXPECT_EQ((*wide)[1].output_shape(), (Shape{32}));
  EXPECT_EQ(module_spec((*wide)[2])["config"]["activation"], "tanh");
  EXPECT_EQ(built("linear", {5}, 2)->num_parameters(), 12);
  expect_input_error([] { make_model("mlp", {8}, 3, {.depth = 2}); }, {"mlp has no depth"});
}

TEST(Zoo, ImageFamiliesRejectNonImageInputsAndUnknownNamesListTheValidOnes) {
  for (const ModelFamily& f : model_families()) {
    if (!f.needs_images) continue;
    expect_input_error([&] { make_model(f.name, {12}, 2); }, {f.name, "needs images", "[12]"});
  }
  expect_input_error(
      [] {
        make_model("resnet", {1, 28, 28}, 10);
      },
      {"unknown model 'resnet'", "mlp", "linear", "lenet5", "simple_cnn", "vgg_small", "resnet_small"});
  expect_input_error([] { make_model("mlp", {8}, 3, {.width = 0}); }, {"width"});
  expect_input_error([] { make_model("simple_cnn", {1, 28, 28}, 3, {.dropout = 1.0}); }, {"dropout"});
}

TEST(Zoo, FamiliesListTheirKnobsWithDefaultsThatResolve) {
  EXPECT_EQ(model_family_names(),
            (std::vector<std::string>{"linear", "mlp", "lenet5", "simple_cnn", "vgg_small", "resnet_small"}));
  for (const ModelFamily& f : model_families()) {
    const ModelKnobs k = resolve_knobs(f.name, {});
    for (const KnobSpec& knob : f.knobs) {
      EXPECT_FALSE(knob.help.empty()) << f.name << "." << knob.name;
      if (knob.name == "depth") {
        EXPECT_EQ(*k.depth, knob.default_value.get<int64_t>()) << f.name;
      }
      if (knob.name == "dropout") {
        EXPECT_EQ(*k.dropout, knob.default_value.get<double>()) << f.name;
      }
      if (knob.kind == "choice") {
        EXPECT_TRUE(knob.choices.is_array()) << f.name << "." << knob.name;
      } else {
        EXPECT_LT(knob.low, knob.high) << f.name << "." << knob.name;
      }
    }
  }
  EXPECT_EQ(*resolve_knobs("resnet_small", {}).depth, 20);
  EXPECT_EQ(*resolve_knobs("simple_cnn", {}).dropout, 0.25);
  EXPECT_FALSE(resolve_knobs("linear", {}).depth.has_value());
}

// Every family, saved as a spec and rebuilt, computes the same outputs from the same state.
TEST(Zoo, EveryFamilyRoundTripsThroughItsSpec) {
  for (const std::string& name : model_family_names()) {
    const Shape in{2, 16, 16};
    const auto net =
        built(name, in, 3, {.width = 0.25, .depth = name == "resnet_small" ? 8 : std::optional<int64_t>{}});
    const nlohmann::json spec = module_spec(*net);
    const auto again = make_module(spec);
    EXPECT_EQ(module_spec(*again), spec) << name;
    Generator gen(9);
    again->build(in, gen);
    std::map<std::string, Tensor> state;
    for (auto& [n, t] : net->state()) state[n] = t.clone();
    again->load_state(state, name);
    net->eval();
    again->eval();
    const Tensor x = Tensor::randn({2, 2, 16, 16}, gen);
    EXPECT_TRUE(tt::bitwise_equal(net->forward(x), again->forward(x))) << name;
  }
}

// Two classes of 8x8 images: a bright horizontal bar or a vertical one, anywhere.
void bars(int64_t n, uint64_t seed, Tensor& x, Tensor& y) {
  Generator gen(seed);
  x = Tensor::zeros({n, 1, 8, 8}, DType::UInt8);
  y = Tensor::empty({n}, DType::Int64);
  const std::vector<float> pos = Tensor::rand({n}, gen).to_vector<float>();
  auto* px = x.data<uint8_t>();
  auto* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    py[i] = i % 2;
    const auto p = static_cast<int64_t>(pos[static_cast<size_t>(i)] * 8) % 8;
    for (int64_t k = 0; k < 8; ++k) px[i * 64 + (py[i] ? k * 8 + p : p * 8 + k)] = 255;
  }
}

TEST(Zoo, ASmallCnnLearnsBarsAndSavesAndLoads) {
  Tensor x, y, tx, ty;
  bars(256, 1, x, y);
  bars(128, 2, tx, ty);
  train::Model m(make_model("resnet_small", {1, 8, 8}, 2, {.width = 0.25, .depth = 8}));
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-2}),
            make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
  const train::History h = m.fit(x, y, {.epochs = 4, .batch_size = 32, .verbose = 0});
  EXPECT_LT(h.get("loss").back(), h.get("loss").front());
  EXPECT_GT(m.evaluate(tx, ty).at("accuracy"), 0.9);
  test_util::TempDir dir;
  m.save(dir.file("bars.deft"));
  train::Model again = train::Model::load(dir.file("bars.deft"));
  EXPECT_TRUE(tt::bitwise_equal(m.predict(tx), again.predict(tx)));
}

}  // namespace
}  // namespace deft::nn

namespace deft::train {
namespace {

using tt::expect_input_error;

TEST(ZooConfig, ModelWidthAndDepthKeysSelectAFamily) {
  const TrainConfig c =
      TrainConfig::from_json({{"data", "x"}, {"model", "resnet_small"}, {"width", 0.5}, {"depth", 8}});
  EXPECT_EQ(c.raw["depth"], 8);
  EXPECT_EQ(c.raw["dropout"], 0.0);  // resolved to the family's default, so the config says what ran
  const auto net = build_network(c, {1, 28, 28}, 10);
  net->build({1, 28, 28}, default_generator());
  EXPECT_EQ(net->num_parameters(), 19810);
  const TrainConfig cnn = TrainConfig::from_json({{"data", "x"}, {"model", "simple_cnn"}});
  EXPECT_EQ(cnn.raw["depth"], 2);
  EXPECT_EQ(cnn.raw["dropout"], 0.25);
  const TrainConfig mlp = TrainConfig::from_json({{"data", "x"}});
  EXPECT_EQ(mlp.raw["dropout"], 0.2);
  EXPECT_TRUE(mlp.raw["depth"].is_null());
  // A config saved before the zoo (dropout always written) still reads.
  EXPECT_NO_THROW(TrainConfig::from_json({{"data", "x"}, {"model", "linear"}, {"dropout", 0.2}}));
}

TEST(ZooConfig, UnknownModelsBadDepthsAndTablesForImageFamiliesAreInputErrors) {
  expect_input_error(
      [] {
        TrainConfig::from_json({{"data", "x"}, {"model", "resnet50"}});
      },
      {"config: unknown model \"resnet50\"", "simple_cnn", "resnet_small"});
  expect_input_error(
      [] {
        TrainConfig::from_json({{"data", "x"}, {"model", "resnet_small"}, {"depth", 10}});
      },
      {"config: model resnet_small: depth", "[8,14,20]"});
  expect_input_error(
      [] {
        TrainConfig::from_json({{"data", "x"}, {"model", "mlp"}, {"depth", 3}});
      },
      {"config: model mlp has no depth"});
  expect_input_error([] { TrainConfig::from_json({{"data", "x"}, {"width", -1}}); }, {"'width'"});
  const TrainConfig c = TrainConfig::from_json({{"data", "table.csv"}, {"model", "vgg_small"}});
  expect_input_error([&] { build_network(c, {12}, 3); }, {"config: model vgg_small needs images", "[12]"});
}

}  // namespace
}  // namespace deft::train
