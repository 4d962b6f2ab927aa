// Writes TensorBoard event files with known contents for tests/track/tb_reader.py,
// the independent reader that checks them (ctest `tensorboard_reader`).
//
//   tb_write_sample OUT
//     OUT/sample/           one TensorBoardWriter: scalars, a histogram, images, text, hparams
//     OUT/sample.json       what was written there
//     OUT/fit/              a 3-epoch fit of a small MLP with TensorBoardLogger
//     OUT/fit.json          its history, parameter names, hparams and class names
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deft/nn/layers.h"
#include "deft/optim/adam.h"
#include "deft/tensor/error.h"
#include "deft/tensor/random.h"
#include "deft/track/tensorboard.h"
#include "deft/train/model.h"
#include "deft/train/tensorboard_logger.h"

using namespace deft;
using json = nlohmann::json;

namespace {

json write_sample(const std::string& dir) {
  json want;
  track::TensorBoardWriter w(dir);
  want["file"] = w.path();

  const std::vector<double> values = {0.5, 0.25, 1.0 / 3, 1e-7, -2.5, 3.0e38, 123456.789};
  const std::vector<int64_t> steps = {0, 1, 2, 3, 10, 100, 1000000000000};
  for (size_t i = 0; i < values.size(); ++i) {
    w.add_scalar("loss", values[i], steps[i], 1.7e9 + static_cast<double>(i));
    want["scalars"]["loss"].push_back({{"step", steps[i]}, {"value", values[i]}, {"wall_time", 1.7e9 + i}});
  }

  Generator gen(7);
  std::vector<float> hist = Tensor::randn({1000}, gen).to_vector<float>();
  hist.push_back(NAN);
  hist.push_back(INFINITY);
  w.add_histogram("weights", hist, 5);
  json finite = json::array();
  for (float v : hist)
    if (std::isfinite(v)) finite.push_back(v);
  want["histogram"] = {{"tag", "weights"}, {"step", 5}, {"values", finite}};

  auto image = [&](const std::string& tag, int64_t h, int64_t wd, int64_t c) {
    std::vector<uint8_t> px(static_cast<size_t>(h * wd * c));
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < wd; ++x)
        for (int64_t k = 0; k < c; ++k)
          px[static_cast<size_t>((y * wd + x) * c + k)] =
              static_cast<uint8_t>((y * 40 + x * 7 + k * 50 + 3) % 256);
    w.add_image(tag, px, h, wd, c, 7);
    want["images"].push_back({{"tag", tag}, {"height", h}, {"width", wd}, {"channels", c}, {"pixels", px}});
  };
  image("img/rgb", 5, 7, 3);
  image("img/gray", 3, 4, 1);
  image("img/rgba", 2, 2, 4);

  const std::string text = "# Notes\nh\xc3\xa9llo `code` \xe2\x9c\x93\n\n```json\n{\"a\": 1}\n```";
  w.add_text("notes/readme", text, 0);
  want["text"] = {{"tag", "notes/readme"}, {"value", text}};

  std::vector<track::HParamInfo> infos = {
      {.name = "lr",
       .type = track::HParamType::Float64,
       .has_interval = true,
       .min_value = 1e-4,
       .max_value = 0.1},
      {.name = "optimizer", .type = track::HParamType::String, .domain_discrete = {"adam", "sgd"}},
      {.name = "bn", .type = track::HParamType::Bool},
      {.name = "batch", .type = track::HParamType::Float64, .display_name = "batch size"}};
  std::vector<track::MetricInfo> metrics = {
      {.tag = "epoch_accuracy", .group = "validation", .dataset_type = track::DatasetType::Validation},
      {.tag = "epoch_loss", .group = "train", .dataset_type = track::DatasetType::Training}};
  w.add_hparams_config(infos, metrics, 1.6e9);
  want["experiment"] = {{"time_created", 1.6e9},
                        {"hparams",
                         {{{"name", "lr"}, {"type", 3}, {"interval", {1e-4, 0.1}}},
                          {{"name", "optimizer"}, {"type", 1}, {"discrete", {"adam", "sgd"}}},
                          {{"name", "bn"}, {"type", 2}},
                          {{"name", "batch"}, {"type", 3}, {"display_name", "batch size"}}}},
                        {"metrics",
                         {{{"group", "validation"}, {"tag", "epoch_accuracy"}, {"dataset_type", 2}},
                          {{"group", "train"}, {"tag", "epoch_loss"}, {"dataset_type", 1}}}}};

  w.add_session_start({{"lr", 0.001}, {"optimizer", "adam"}, {"bn", true}, {"batch", 64}}, "g1",
                      1700000000.25);
  want["session_start"] = {{"hparams", {{"lr", 0.001}, {"optimizer", "adam"}, {"bn", true}, {"batch", 64.0}}},
                           {"group_name", "g1"},
                           {"start_time", 1700000000.25}};
  w.add_session_end(track::SessionStatus::Success, 1700000100.5);
  want["session_end"] = {{"status", 1}, {"end_time", 1700000100.5}};
  w.flush();
  return want;
}

// Three classes of 8x8 gray images, each bright in its own band of rows.
data::Dataset bands(int64_t n, uint64_t seed) {
  Generator gen(seed);
  const std::vector<float> noise = Tensor::uniform({n * 64}, 0.f, 60.f, gen).to_vector<float>();
  Tensor x = Tensor::empty({n, 1, 8, 8}, DType::UInt8);
  Tensor y = Tensor::empty({n}, DType::Int64);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = i % 3;
    y.data<int64_t>()[i] = c;
    for (int64_t p = 0; p < 64; ++p) {
      const bool band = p / 8 >= c * 3 && p / 8 < c * 3 + 2;
      x.data<uint8_t>()[i * 64 + p] =
          static_cast<uint8_t>(noise[static_cast<size_t>(i * 64 + p)] + (band ? 180 : 0));
    }
  }
  data::Dataset d;
  d.name = "bands";
  d.features = x;
  d.labels = y;
  d.class_names = {"top", "Middle", "bottom"};
  return d;
}

json write_fit(const std::string& dir) {
  const data::Dataset train = bands(96, 1), val = bands(48, 2);
  train::Model m(nn::Sequential{nn::Flatten(), nn::Dense(16, "relu"), nn::Dense(3)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-2}),
            nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
  const json config = {
      {"model", "mlp"},        {"lr", 0.01},    {"optimizer", {{"name", "adam"}}}, {"epochs", 3},
      {"out", "ignored.deft"}, {"hidden", {16}}};
  auto logger = train::make_tensorboard_logger(dir, {.config = config, .validation = val, .batch_every = 2});
  const train::History h = m.fit(
      train, {.epochs = 3, .batch_size = 16, .validation_data = &val, .callbacks = {logger}, .verbose = 0});
  json want;
  want["epochs"] = json::array();
  for (const auto& logs : h.epochs) {
    json e = json::object();
    for (const auto& [k, v] : logs) e[k] = std::isfinite(v) ? json(v) : json(nullptr);
    want["epochs"].push_back(e);
  }
  for (const auto& [name, t] : m.net().named_parameters()) want["params"].push_back(name);
  want["hparams"] = {
      {"model", "mlp"}, {"lr", 0.01}, {"optimizer.name", "adam"}, {"epochs", 3.0}, {"hidden", "[16]"}};
  want["config"] = config;
  want["class_names"] = val.class_names;
  want["batches_per_epoch"] = 6;
  want["batch_every"] = 2;
  want["validation_size"] = val.size();
  return want;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: tb_write_sample OUT\n");
    return 2;
  }
  const std::string out = argv[1];
  try {
    std::ofstream(out + "/sample.json") << write_sample(out + "/sample").dump(1);
    std::ofstream(out + "/fit.json") << write_fit(out + "/fit").dump(1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tb_write_sample: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
