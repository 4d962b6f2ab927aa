// The inference runtime (deploy/infer.h): every model family and a table model with
// preprocessing, saved by train::Model and run by a Predictor, must match
// Model::predict_proba on the same raw input; batching, buffer reuse, threads and
// bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "../data/data_test_util.h"
#include "../tensor/test_util.h"
#include "deft/data/csv.h"
#include "deft/deploy/infer.h"
#include "deft/deploy/infer_plan.h"
#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/nn/zoo.h"
#include "deft/optim/optimizer.h"
#include "deft/tensor/error.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/safetensors.h"
#include "deft/train/model.h"

namespace deft::deploy {
namespace {

using deft::test_util::TempDir;
using tt::expect_input_error;
using json = nlohmann::json;

constexpr float kTolerance = 1e-5f;

// Random pixels with labels that depend on them a little (so training moves weights).
std::pair<Tensor, Tensor> images(int64_t n, const Shape& chw, int64_t classes, uint64_t seed) {
  Generator gen(seed);
  Shape s{n};
  s.insert(s.end(), chw.begin(), chw.end());
  Tensor x = Tensor::uniform(s, 0.f, 256.f, gen).to(DType::UInt8);
  Tensor y = Tensor::empty({n}, DType::Int64);
  const uint8_t* px = x.data<uint8_t>();
  const int64_t per = shape_numel(chw);
  for (int64_t i = 0; i < n; ++i) y.data<int64_t>()[i] = px[i * per] % classes;
  return {x, y};
}

void compile(train::Model& m, const std::string& loss = "sparse_categorical_crossentropy",
             json loss_config = {}) {
  m.compile(optim::make_optimizer("adam", {{"lr", 1e-2}}),
            nn::make_loss(loss, loss_config.is_null() ? json::object() : loss_config));
}

// A family fitted for a few steps (BatchNorm running statistics move away from 0/1).
train::Model fitted_family(const std::string& family, const Shape& chw, int64_t classes, const Tensor& x,
                           const Tensor& y, nn::ModelKnobs knobs = {}) {
  train::Model m(nn::make_model(family, chw, classes, knobs));
  compile(m);
  m.fit(x, y, {.epochs = 2, .batch_size = 16, .seed = 1, .verbose = 0});
  return m;
}

float max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(shape_str(a.shape()), shape_str(b.shape()));
  if (a.shape() != b.shape()) return INFINITY;
  const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
  float m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(va[i] - vb[i]));
  return m;
}

bool any_batch_norm_moved(const train::Model& m) {
  for (auto& [name, t] : m.net().state())
    if (name.ends_with("running_mean"))
      for (float v : t.to_vector<float>())
        if (v != 0.0f) return true;
  return false;
}

// Saves `m`, loads it with a Predictor and compares with predict_proba on `x`.
void expect_matches(train::Model& m, const Tensor& x, const std::string& what, InferOptions options = {}) {
  TempDir dir;
  const std::string path = dir.file("m.deft");
  m.save(path);
  auto p = Predictor::load(path, options);
  const Tensor want = m.predict_proba(x);
  const Tensor got = p->predict(x);
  EXPECT_LE(max_abs_diff(got, want), kTolerance) << what << "\n" << p->describe();
  EXPECT_EQ(p->info().num_outputs, want.size(1)) << what;
  EXPECT_EQ(p->info().input_shape, Shape(x.shape().begin() + 1, x.shape().end())) << what;
  if (x.dtype() == DType::UInt8) {  // the same pixels as float32
    EXPECT_LE(max_abs_diff(p->predict(x.to(DType::Float32)), want), kTolerance) << what << " (float32 input)";
  }
}

struct FamilyCase {
  std::string family;
  Shape chw;
  nn::ModelKnobs knobs;
};

class InferFamilies : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(InferFamilies, PredictorMatchesPredictProba) {
  const FamilyCase& c = GetParam();
  auto [x, y] = images(48, c.chw, 4, 7);
  train::Model m = fitted_family(c.family, c.chw, 4, x, y, c.knobs);
  if (c.family == "vgg_small" || c.family == "resnet_small") {
    ASSERT_TRUE(any_batch_norm_moved(m)) << "BatchNorm statistics should be non-trivial";
  }
  expect_matches(m, x, c.family);
}

INSTANTIATE_TEST_SUITE_P(
    Zoo, InferFamilies,
    ::testing::Values(FamilyCase{"linear", {1, 8, 8}, {}}, FamilyCase{"mlp", {1, 8, 8}, {}},
                      FamilyCase{"lenet5", {1, 16, 16}, {}}, FamilyCase{"simple_cnn", {3, 12, 12}, {}},
                      FamilyCase{"vgg_small", {3, 16, 16}, {.width = 0.5, .depth = 2}},
                      FamilyCase{"resnet_small", {3, 16, 16}, {.width = 0.5, .depth = 8}}),
    [](const auto& param_info) { return param_info.param.family; });

// Every other layer type and option the runtime interprets, in one network.
TEST(Infer, EveryLayerTypeMatches) {
  using namespace nn;
  auto [x, y] = images(40, {3, 12, 12}, 3, 3);
  train::Model m(Sequential{
      Conv2d(8, 3, {.padding = "same", .dilation = 2}),
      BatchNorm2d(),
      ELU(0.5),
      Conv2d(8, {3, 2}, {.stride = 2, .padding = Padding(1, 0, 1, 1), .groups = 8, .activation = "silu"}),
      Dropout2d(0.2),
      AvgPool2d(3, {.stride = 1, .padding = 1, .count_include_pad = false}),
      MaxPool2d(3, {.stride = 2, .ceil_mode = true}),
      Concat{Identity(), Sequential{Conv2d(4, 1, {.use_bias = false}), BatchNorm2d(), GELU()}},
      Add({Sequential{Conv2d(12, 1), Tanh()}, Identity()}, "leaky_relu"),
      AdaptiveAvgPool2d({2, 3}),
      Flatten(),
      Dense(24, "gelu"),
      LayerNorm(),
      Dense(12, "", {.use_bias = false}),
      Reshape({3, -1}),
      BatchNorm1d(),
      Flatten(),
      Linear(12, 10),
      LeakyReLU(0.2),
      Softmax(),
      Dense(8, "sigmoid"),
      Activation("elu", 0.7),
      Dropout(0.3),
      Dense(3),
  });
  compile(m);
  m.fit(x, y, {.epochs = 2, .batch_size = 8, .seed = 2, .verbose = 0});
  expect_matches(m, x, "every layer", {.max_batch = 16});
}

TEST(Infer, EmbeddingModelWithoutPreprocessing) {
  train::Model m(nn::Sequential{nn::Embedding(10, 4), nn::Flatten(), nn::Dense(5, "relu"), nn::Dense(3)});
  compile(m);
  m.build({4}, 3);  // random weights, no preprocessing: raw float token ids
  Tensor ids = Tensor::from_vector<float>({0, 1, 2, 3, 9, 8, 7, 6, 5, 5, 5, 5}, {3, 4});
  expect_matches(m, ids, "embedding");
  TempDir dir;
  m.save(dir.file("e.deft"));
  auto p = Predictor::load(dir.file("e.deft"));
  EXPECT_THROW(p->predict(Tensor::from_vector<float>({0, 1, 2, 10}, {1, 4})), InputError);
}

// A table: numeric columns with missing values, a categorical one (with a missing and
// an unseen code), standard scaling and one-hot encoding.
data::Dataset table(int64_t n, uint64_t seed, int64_t classes) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 4}, gen);
  Tensor y = Tensor::empty({n}, DType::Int64);
  float* px = x.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    px[i * 4 + 1] = static_cast<float>(i % 3);  // category code
    if (i % 7 == 3) px[i * 4 + 0] = NAN;
    if (i % 11 == 5) px[i * 4 + 1] = NAN;
    if (i % 13 == 4) px[i * 4 + 2] = INFINITY;
    px[i * 4 + 3] = 5.0f;  // constant: dropped
    y.data<int64_t>()[i] = (i + (px[i * 4 + 2] > 0)) % classes;
  }
  auto schema = std::make_shared<data::TableSchema>();
  schema->features = {{"a", data::ColumnType::Numeric, {}},
                      {"colour", data::ColumnType::Categorical, {"red", "green", "blue", "grey"}},
                      {"b", data::ColumnType::Numeric, {}},
                      {"const", data::ColumnType::Numeric, {}}};
  data::Dataset d;
  d.name = "table";
  d.features = x;
  d.labels = y;
  d.schema = schema;
  for (int64_t c = 0; c < classes; ++c) d.class_names.push_back(fmt::format("k{}", c));
  return d;
}

TEST(Infer, TableModelWithPreprocessingMatches) {
  data::Dataset d = table(90, 4, 3);
  train::Model m(nn::make_model("mlp", {4}, 3, {.hidden = {16, 8}}));
  compile(m);
  m.fit(d, {.epochs = 2, .batch_size = 16, .verbose = 0});
  Tensor x = d.features.clone();
  x.data<float>()[1] = 3.0f;   // "grey": in the schema, never seen in training
  x.data<float>()[5] = 17.0f;  // a code outside the schema
  expect_matches(m, x, "table");
  TempDir dir;
  m.save(dir.file("t.deft"));
  auto p = Predictor::load(dir.file("t.deft"));
  EXPECT_FALSE(p->info().image);
  EXPECT_EQ(p->info().feature_names, (std::vector<std::string>{"a", "colour", "b", "const"}));
  EXPECT_EQ(p->info().class_names, (std::vector<std::string>{"k0", "k1", "k2"}));
  EXPECT_THROW(p->predict(x.to(DType::UInt8)), InputError);  // uint8 is for pixels
}

TEST(Infer, BinaryClassifierGivesTwoColumns) {
  data::Dataset d = table(80, 5, 2);
  train::Model m(nn::Sequential{nn::Dense(16, "relu"), nn::BatchNorm1d(), nn::Dense(1)});
  compile(m, "binary_crossentropy");
  m.fit(d, {.epochs = 2, .batch_size = 16, .verbose = 0});
  TempDir dir;
  m.save(dir.file("b.deft"));
  auto p = Predictor::load(dir.file("b.deft"));
  EXPECT_EQ(p->info().num_outputs, 2);
  const Tensor got = p->predict(d.features);
  const auto want = m.predict_proba(d.features).to_vector<float>();  // [N, 1]: p(class 1)
  const auto g = got.to_vector<float>();
  ASSERT_EQ(g.size(), 2 * want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(g[2 * i + 1], want[i], kTolerance);
    EXPECT_NEAR(g[2 * i], 1.0f - want[i], kTolerance);
  }
}

TEST(Infer, RegressionGivesValues) {
  data::Dataset d = table(60, 6, 2);
  d.task = data::Task::Regression;
  d.labels = d.labels.to(DType::Float32);
  d.class_names.clear();
  train::Model r(nn::Sequential{nn::Dense(8, "tanh"), nn::Dense(1)});
  compile(r, "mse");
  r.fit(d, {.epochs = 1, .batch_size = 16, .verbose = 0});
  expect_matches(r, d.features, "regression");
  TempDir dir;
  r.save(dir.file("r.deft"));
  auto p = Predictor::load(dir.file("r.deft"));
  EXPECT_FALSE(p->info().classification);
  EXPECT_EQ(p->info().num_outputs, 1);
}

class InferRuntime : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("deft-infer");
    auto [x, y] = images(40, {1, 8, 8}, 3, 11);
    x_ = new Tensor(x);
    train::Model m(nn::make_model("simple_cnn", {1, 8, 8}, 3, {.width = 0.25, .depth = 1}));
    compile(m);
    m.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
    m.save(path());
  }
  static void TearDownTestSuite() {
    delete x_;
    delete dir_;
  }
  static std::string path() { return dir_->file("cnn.deft"); }
  static inline TempDir* dir_ = nullptr;
  static inline Tensor* x_ = nullptr;
};

TEST_F(InferRuntime, BatchSplitsGiveTheSameResults) {
  auto whole = Predictor::load(path(), {.max_batch = 256});
  auto small = Predictor::load(path(), {.max_batch = 7});
  const Tensor a = whole->predict(*x_);
  const Tensor b = small->predict(*x_);
  EXPECT_LE(max_abs_diff(a, b), 1e-6f);
  EXPECT_GE(small->stats().batches_run, 6);  // 40 examples in batches of 7
  const Tensor none = whole->predict(kernel::slice(*x_, 0, 0, 0));
  EXPECT_EQ(none.shape(), (Shape{0, 3}));
  const Tensor one = small->predict(kernel::slice(*x_, 0, 5, 6).contiguous_copy());
  EXPECT_LE(max_abs_diff(one, kernel::slice(a, 0, 5, 6).contiguous_copy()), 1e-6f);
  // The pointer form, into the caller's buffer.
  const Tensor xf = x_->to(DType::Float32);
  std::vector<float> out(static_cast<size_t>(40 * 3));
  small->predict(xf.data<float>(), 40, out.data());
  EXPECT_LE(max_abs_diff(Tensor::from_vector(out, {40, 3}), a), 1e-5f);
}

TEST_F(InferRuntime, BuffersAreReusedAcrossCalls) {
  auto p = Predictor::load(path(), {.max_batch = 16});
  const RuntimeStats before = p->stats();
  EXPECT_EQ(before.buffer_allocations, 1);
  EXPECT_GT(before.buffer_bytes, 0);
  const Tensor a = p->predict(*x_);
  const Tensor b = p->predict(*x_);
  const RuntimeStats after = p->stats();
  EXPECT_EQ(after.buffer_allocations, 1);
  EXPECT_EQ(after.input_buffer, before.input_buffer);
  EXPECT_EQ(after.buffer_bytes, before.buffer_bytes);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());  // bit for bit
}

TEST_F(InferRuntime, ThreadCountsAgree) {
  auto one = Predictor::load(path(), {.threads = 1});
  auto two = Predictor::load(path(), {.threads = 2});
  EXPECT_EQ(one->stats().threads, 1);
  EXPECT_EQ(two->stats().threads, 2);
  EXPECT_LE(max_abs_diff(one->predict(*x_), two->predict(*x_)), 1e-5f);
}

TEST_F(InferRuntime, BadInputIsAnInputErrorNamingTheShapeOrFile) {
  auto p = Predictor::load(path());
  expect_input_error([&] { p->predict(Tensor::zeros({2, 1, 8, 9})); }, {"[2,1,8,9]", "[1,8,8]", path()});
  expect_input_error([&] { p->predict(Tensor::zeros({64})); }, {"[64]"});
  expect_input_error([&] { p->predict(Tensor::zeros({2, 1, 8, 8}, DType::Int64)); }, {"int64", path()});
  expect_input_error([&] { p->predict(Tensor()); }, {path()});

  const std::string missing = dir_->file("nope.deft");
  expect_input_error([&] { Predictor::load(missing); }, {missing});
  const std::string corrupt = dir_->file("corrupt.deft");
  {
    std::ifstream in(path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    bytes.resize(bytes.size() / 2);  // truncated
    std::ofstream(corrupt, std::ios::binary) << bytes;
  }
  expect_input_error([&] { Predictor::load(corrupt); }, {corrupt});
  const std::string garbage = dir_->file("garbage.deft");
  std::ofstream(garbage, std::ios::binary) << "this is not a model file at all";
  expect_input_error([&] { Predictor::load(garbage); }, {garbage});
  // A safetensors file that is not a deft model.
  const std::string plain = dir_->file("plain.safetensors");
  write_safetensors(plain, {{"w", Tensor::zeros({2})}});
  expect_input_error([&] { Predictor::load(plain); }, {plain, "not a deft model"});
}

// Rewrites the model's metadata with `edit` applied, into `out`.
void edit_model(const std::string& in, const std::string& out, const std::function<void(json&)>& edit,
                const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit_tensors = {}) {
  SafetensorsFile f = read_safetensors(in);
  json meta = json::parse(f.metadata.at("deft"));
  edit(meta);
  if (edit_tensors) edit_tensors(f.tensors);
  write_safetensors(out, f.tensors, {{"deft", meta.dump()}});
}

TEST_F(InferRuntime, ArchitectureProblemsNameTheLayerOrTensor) {
  const std::string unknown = dir_->file("unknown.deft");
  edit_model(path(), unknown,
             [](json& m) { m["architecture"]["config"]["layers"][0]["type"] = "Frobnicate"; });
  expect_input_error([&] { Predictor::load(unknown); }, {unknown, "Frobnicate"});

  const std::string missing = dir_->file("missing.deft");
  edit_model(
      path(), missing, [](json&) {}, [](auto& tensors) { tensors.erase(tensors.begin()); });
  expect_input_error([&] { Predictor::load(missing); }, {missing, "missing"});

  const std::string reshaped = dir_->file("reshaped.deft");
  edit_model(
      path(), reshaped, [](json&) {},
      [](auto& tensors) {
        for (auto& [name, t] : tensors)
          if (name.ends_with("kernel")) {
            t = Tensor::zeros({t.numel()});
            break;
          }
      });
  expect_input_error([&] { Predictor::load(reshaped); }, {reshaped, "kernel"});
}

TEST_F(InferRuntime, InfoDescribesTheModel) {
  auto p = Predictor::load(path());
  const ModelInfo& info = p->info();
  EXPECT_EQ(info.path, path());
  EXPECT_TRUE(info.image);
  EXPECT_TRUE(info.classification);
  EXPECT_EQ(info.num_outputs, 3);
  EXPECT_EQ(info.class_names.size(), 3u);
  EXPECT_GT(info.parameters, 0);
  EXPECT_FALSE(info.architecture.empty());
  EXPECT_NE(p->describe().find("conv2d"), std::string::npos) << p->describe();
  EXPECT_NE(p->describe().find("+ relu"), std::string::npos) << "activation fused: " << p->describe();
}

// A plain float Dense, as another implementation (an int8 one, say) would stand in
// for LinearOp: built from the LinearOp's (folded) weights.
class NaiveLinear : public infer::Op {
 public:
  explicit NaiveLinear(const infer::LinearOp& op) : w_(op.kernel()), b_(op.bias()), act_(op.activation()) {
    input_shapes = op.input_shapes;
    output_shape = op.output_shape;
  }
  std::string kind() const override { return "naive_linear"; }
  void run(std::span<const float* const> inputs, float* y, int64_t n) override {
    const int64_t in = w_.size(0), out = w_.size(1);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < out; ++j) {
        float s = b_.data<float>()[j];
        for (int64_t i = 0; i < in; ++i) s += inputs[0][r * in + i] * w_.data<float>()[i * out + j];
        y[r * out + j] = s;
      }
    infer::apply_activation(act_, y, n * out);
    ++runs;
  }
  int runs = 0;

 private:
  Tensor w_, b_;
  infer::Activation act_;
};

TEST(InferPlan, AnOpCanBeSwappedAndItsInputsObserved) {
  auto [x, y] = images(24, {1, 6, 6}, 3, 5);
  train::Model m(nn::Sequential{nn::Flatten(), nn::Dense(10), nn::BatchNorm1d(), nn::ReLU(), nn::Dense(3)});
  compile(m);
  m.fit(x, y, {.epochs = 1, .batch_size = 8, .verbose = 0});
  TempDir dir;
  m.save(dir.file("p.deft"));
  const SafetensorsFile f = read_safetensors(dir.file("p.deft"));
  const json meta = json::parse(f.metadata.at("deft"));
  std::map<std::string, Tensor> weights;
  for (auto& [name, t] : f.tensors)
    if (name.rfind("model/", 0) == 0) weights[name.substr(6)] = t;
  infer::Plan plan = infer::Plan::build(meta["architecture"], {1, 6, 6}, weights, "p.deft");
  ASSERT_EQ(plan.size(), 2u) << plan.describe();  // BatchNorm folded, ReLU fused
  EXPECT_EQ(plan.describe(), "linear 36->10 + relu\nlinear 10->3\n");
  plan.allocate(8);
  Tensor xin = Tensor::randn({8, 36}, default_generator());
  std::copy_n(xin.data<float>(), 8 * 36, plan.input());
  const float* first = plan.run(8);
  const std::vector<float> before(first, first + 8 * 3);

  auto naive = std::make_unique<NaiveLinear>(dynamic_cast<const infer::LinearOp&>(plan.op(0)));
  NaiveLinear* naive_ptr = naive.get();
  plan.replace(0, std::move(naive));
  plan.allocate(8);
  std::copy_n(xin.data<float>(), 8 * 36, plan.input());
  std::vector<size_t> observed;
  plan.set_observer([&](size_t op, std::span<const float* const> inputs, int64_t n) {
    observed.push_back(op);
    EXPECT_EQ(n, 8);
    EXPECT_EQ(inputs.size(), 1u);
  });
  const float* after = plan.run(8);
  EXPECT_EQ(naive_ptr->runs, 1);
  EXPECT_EQ(observed, (std::vector<size_t>{0, 1}));
  for (size_t i = 0; i < before.size(); ++i) EXPECT_NEAR(after[i], before[i], 1e-4f) << i;
  // A replacement must keep the shapes.
  EXPECT_THROW(plan.replace(1, std::make_unique<infer::ActivationOp>(Shape{3}, infer::Activation{})),
               InputError);
}

// The model the C API test (c_api_test.c) loads: written where DEFT_INFER_C_MODEL says.
TEST(InferCApiFixture, WriteModel) {
  const char* out = std::getenv("DEFT_INFER_C_MODEL");
  if (!out) GTEST_SKIP() << "DEFT_INFER_C_MODEL not set (the c_api test sets it)";
  auto [x, y] = images(32, {1, 8, 8}, 3, 21);
  train::Model m(nn::make_model("mlp", {1, 8, 8}, 3, {.hidden = {16}}));
  compile(m);
  m.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
  m.save(out);
  // The expected outputs for the pixels the C test feeds (p[i] = (i * 37) % 256).
  Tensor px = Tensor::empty({2, 1, 8, 8});
  for (int64_t i = 0; i < px.numel(); ++i) px.data<float>()[i] = static_cast<float>((i * 37) % 256);
  const auto probs = m.predict_proba(px).to_vector<float>();
  std::ofstream f(std::string(out) + ".expected");
  for (float v : probs) f << fmt::format("{:.9g}\n", v);
}

}  // namespace
}  // namespace deft::deploy
