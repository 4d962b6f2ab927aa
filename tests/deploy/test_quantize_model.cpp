// int8 model files (deploy/quantize_model.h): a fitted CNN, MLP and BatchNorm network
// quantised from raw calibration images, reloaded by the Predictor, stay close to the
// float model on held-out images; the file is smaller (no optimizer state), identical
// when made twice, refused by train::Model::load, and a corrupt int8 tensor is an
// InputError naming it.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "../data/data_test_util.h"
#include "../tensor/test_util.h"
#include "deft/deploy/infer.h"
#include "deft/deploy/quantize_model.h"
#include "deft/nn/zoo.h"
#include "deft/optim/optimizer.h"
#include "deft/tensor/error.h"
#include "deft/train/model.h"

namespace deft::deploy {
namespace {

using deft::test_util::TempDir;
using tt::expect_input_error;
using json = nlohmann::json;

// Images whose class is the brightest quadrant (plus noise): a task a small network
// learns confidently in a few steps, so float and int8 answers can be compared.
std::pair<Tensor, Tensor> quadrant_images(int64_t n, int64_t side, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::uniform({n, 1, side, side}, 0.f, 90.f, gen).to(DType::UInt8);
  Tensor y = Tensor::empty({n}, DType::Int64);
  uint8_t* px = x.data<uint8_t>();
  const int64_t half = side / 2;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = static_cast<int64_t>(gen.next_u32() % 4);
    y.data<int64_t>()[i] = k;
    for (int64_t r = 0; r < half; ++r)
      for (int64_t c = 0; c < half; ++c)
        px[i * side * side + (r + (k / 2) * half) * side + c + (k % 2) * half] += 150;
  }
  return {x, y};
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

struct QuantCase {
  std::string family;
  nn::ModelKnobs knobs;
  int64_t min_quantized;  // Dense/Conv ops expected in int8
};

class QuantizeModelFamilies : public ::testing::TestWithParam<QuantCase> {};

TEST_P(QuantizeModelFamilies, Int8StaysCloseToFloat) {
  const QuantCase& c = GetParam();
  constexpr int64_t side = 12;
  auto [x, y] = quadrant_images(256, side, 1);
  train::Model m(nn::make_model(c.family, {1, side, side}, 4, c.knobs));
  m.compile(optim::make_optimizer("adam", {{"lr", 3e-3}}), nn::make_loss("sparse_categorical_crossentropy"));
  m.fit(x, y, {.epochs = 3, .batch_size = 32, .seed = 1, .verbose = 0});
  TempDir dir;
  const std::string fp = dir.file("f.deft"), qp = dir.file("q.deft");
  m.save(fp);

  const QuantizeModelReport r = quantize_model(fp, qp, x, {});
  EXPECT_EQ(r.calibration_examples, 256);
  EXPECT_GE(r.quantized_ops(), c.min_quantized);
  for (const auto& op : r.ops) EXPECT_EQ(op.reason.empty(), op.info.quantized) << op.info.description;
  EXPECT_EQ(r.float_file_bytes, static_cast<int64_t>(std::filesystem::file_size(fp)));
  EXPECT_EQ(r.int8_file_bytes, static_cast<int64_t>(std::filesystem::file_size(qp)));
  EXPECT_LT(r.int8_file_bytes, r.float_file_bytes) << "the Adam state is dropped";

  auto fl = Predictor::load(fp);
  auto q8 = Predictor::load(qp);
  EXPECT_FALSE(fl->info().quantized);
  EXPECT_TRUE(q8->info().quantized);
  EXPECT_NE(q8->describe().find("int8"), std::string::npos) << q8->describe();
  EXPECT_EQ(q8->info().input_shape, fl->info().input_shape);
  EXPECT_EQ(q8->info().num_outputs, fl->info().num_outputs);

  auto [xt, yt] = quadrant_images(400, side, 2);  // held out
  const auto pf = fl->predict(xt).to_vector<float>(), pq = q8->predict(xt).to_vector<float>();
  int64_t agree = 0, right_f = 0, right_q = 0;
  float max_diff = 0;
  for (int64_t i = 0; i < 400; ++i) {
    const auto row = [&](const std::vector<float>& p) {
      return std::max_element(p.begin() + i * 4, p.begin() + i * 4 + 4) - (p.begin() + i * 4);
    };
    agree += row(pf) == row(pq);
    right_f += row(pf) == yt.data<int64_t>()[i];
    right_q += row(pq) == yt.data<int64_t>()[i];
    for (int64_t k = 0; k < 4; ++k) max_diff = std::max(max_diff, std::fabs(pf[i * 4 + k] - pq[i * 4 + k]));
  }
  EXPECT_GE(right_f, 300) << "the float model should have learnt the task";
  EXPECT_GE(agree, 380) << c.family << ": argmax agreement " << agree << "/400";
  EXPECT_LT(max_diff, 0.05f) << c.family;
  EXPECT_GE(right_q, right_f - 8) << c.family;

  // Raw float32 pixels give the same int8 answers as uint8 ones.
  const auto pq32 = q8->predict(xt.to(DType::Float32)).to_vector<float>();
  for (size_t i = 0; i < pq.size(); ++i) ASSERT_NEAR(pq32[i], pq[i], 1e-5f);

  // The training side refuses it, naming the file and where it runs.
  expect_input_error([&] { train::Model::load(qp); }, {qp, "int8-quantised", "deft predict"});

  // Deterministic: the same inputs give the same bytes.
  const std::string qp2 = dir.file("q2.deft");
  quantize_model(fp, qp2, x, {});
  EXPECT_TRUE(read_bytes(qp) == read_bytes(qp2));
}

INSTANTIATE_TEST_SUITE_P(Zoo, QuantizeModelFamilies,
                         ::testing::Values(QuantCase{"simple_cnn", {.width = 0.25, .depth = 2}, 2},
                                           QuantCase{"mlp", {.hidden = {64, 32}}, 3},
                                           QuantCase{"vgg_small", {.width = 0.25, .depth = 1}, 2}),
                         [](const auto& param_info) { return param_info.param.family; });

class QuantizeModelFile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("deft-quant");
    auto [x, y] = quadrant_images(64, 8, 3);
    x_ = new Tensor(x);
    train::Model m(nn::make_model("simple_cnn", {1, 8, 8}, 4, {.width = 0.25, .depth = 1}));
    m.compile(optim::make_optimizer("adam", {{"lr", 3e-3}}),
              nn::make_loss("sparse_categorical_crossentropy"));
    m.fit(x, y, {.epochs = 1, .batch_size = 16, .verbose = 0});
    m.save(float_path());
    quantize_model(float_path(), int8_path(), x, {.calibration = {.method = CalibrationMethod::MinMax}});
  }
  static void TearDownTestSuite() {
    delete x_;
    delete dir_;
  }
  static std::string float_path() { return dir_->file("f.deft"); }
  static std::string int8_path() { return dir_->file("q.deft"); }
  static inline TempDir* dir_ = nullptr;
  static inline Tensor* x_ = nullptr;
};

TEST_F(QuantizeModelFile, LayoutAndMetadata) {
  const SafetensorsFile f = read_safetensors(int8_path());
  const json meta = json::parse(f.metadata.at("deft"));
  EXPECT_TRUE(meta.at("optimizer").is_null());
  const json& q = meta.at("quantization");
  EXPECT_EQ(q.at("scheme"), kQuantizationScheme);
  EXPECT_EQ(q.at("calibration").at("method"), "minmax");
  EXPECT_EQ(q.at("calibration").at("examples"), 64);
  ASSERT_FALSE(q.at("ops").empty());
  for (const json& op : q.at("ops")) {
    const std::string w = op.at("tensors").at("weight"), s = op.at("tensors").at("scale");
    ASSERT_TRUE(f.contains(w)) << w;
    EXPECT_EQ(f.stored_dtypes[std::distance(f.tensors.begin(),
                                            std::find_if(f.tensors.begin(), f.tensors.end(),
                                                         [&](const auto& t) { return t.first == w; }))],
              "I8");
    EXPECT_EQ(f.at(s).numel(), op.at("weight_shape")[op.at("kind") == "linear" ? 1 : 0].get<int64_t>());
    EXPECT_TRUE(f.contains(op.at("tensors").at("bias").get<std::string>()));
    EXPECT_GT(op.at("input").at("scale").get<double>(), 0.0);
  }
  for (const auto& [name, t] : f.tensors) EXPECT_NE(name.rfind("optimizer/", 0), 0u) << name;
}

// Rewrites the int8 file's tensors with `edit` applied, into `out`, keeping the metadata.
void edit_tensors(const std::string& in, const std::string& out,
                  const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
  SafetensorsFile f = read_safetensors(in);
  edit(f.tensors);
  write_safetensors(out, f.tensors, f.metadata);
}

TEST_F(QuantizeModelFile, CorruptInt8TensorsNameTheTensor) {
  const json meta = json::parse(read_safetensors(int8_path()).metadata.at("deft"));
  const json& op = meta.at("quantization").at("ops").at(0);
  const std::string scale = op.at("tensors").at("scale"), weight = op.at("tensors").at("weight");

  const std::string bad_scale = dir_->file("bad_scale.deft");
  edit_tensors(int8_path(), bad_scale, [&](auto& ts) {
    for (auto& [name, t] : ts)
      if (name == scale) t = Tensor::ones({t.numel() + 1});
  });
  expect_input_error([&] { Predictor::load(bad_scale); }, {bad_scale, scale});

  const std::string zero_scale = dir_->file("zero_scale.deft");
  edit_tensors(int8_path(), zero_scale, [&](auto& ts) {
    for (auto& [name, t] : ts)
      if (name == scale) t = Tensor::zeros(t.shape());
  });
  expect_input_error([&] { Predictor::load(zero_scale); }, {zero_scale, "scale"});

  const std::string missing = dir_->file("missing.deft");
  edit_tensors(int8_path(), missing,
               [&](auto& ts) { std::erase_if(ts, [&](const auto& t) { return t.first == weight; }); });
  expect_input_error([&] { Predictor::load(missing); }, {missing, weight});

  const std::string bad_zp = dir_->file("bad_zp.deft");
  {
    SafetensorsFile f = read_safetensors(int8_path());
    json m = json::parse(f.metadata.at("deft"));
    m["quantization"]["ops"][0]["input"]["zero_point"] = 300;
    write_safetensors(bad_zp, f.tensors, {{"deft", m.dump()}});
  }
  expect_input_error([&] { Predictor::load(bad_zp); }, {bad_zp, "zero point"});
}

TEST_F(QuantizeModelFile, CalibrationDataOfTheWrongShapeNamesBothShapes) {
  expect_input_error(
      [&] {
        quantize_model(float_path(), dir_->file("x.deft"), Tensor::zeros({4, 1, 9, 9}), {});
      },
      {"[1,9,9]", "[1,8,8]", float_path()});
  expect_input_error(
      [&] {
        quantize_model(float_path(), dir_->file("x.deft"), Tensor::zeros({0, 1, 8, 8}), {});
      },
      {float_path()});
  // An int8 file is not quantised again.
  expect_input_error([&] { quantize_model(int8_path(), dir_->file("x.deft"), *x_, {}); },
                     {int8_path(), "already"});
  EXPECT_FALSE(std::filesystem::exists(dir_->file("x.deft")));
}

}  // namespace
}  // namespace deft::deploy
