// The Model facade: fit / evaluate / predict, save / load, resume, callbacks.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "../data/data_test_util.h"
#include "deft/autograd/ops.h"
#include "deft/nn/layers.h"
#include "deft/optim/adam.h"
#include "deft/optim/sgd.h"
#include "deft/tensor/error.h"
#include "deft/train/model.h"

namespace deft::train {
namespace {

using deft::test_util::TempDir;

// Three Gaussian blobs in 8 dimensions, well separated: a table dataset.
data::Dataset blobs(int64_t n, uint64_t seed, int64_t classes = 3) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 8}, gen);
  Tensor y = Tensor::empty({n}, DType::Int64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    py[i] = i % classes;
    px[i * 8 + py[i]] += 3.f;
  }
  data::Dataset d;
  d.name = "blobs";
  d.features = x;
  d.labels = y;
  for (int64_t c = 0; c < classes; ++c) d.class_names.push_back(fmt::format("c{}", c));
  return d;
}

Model mlp_model(double lr = 1e-2) {
  Model m(nn::Sequential{nn::Dense(16, "relu"), nn::Dropout(0.1), nn::Dense(3)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = lr}),
            nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
  return m;
}

std::vector<float> weights(const Model& m) {
  std::vector<float> out;
  for (auto& [n, t] : m.net().state())
    if (t.dtype() == DType::Float32)
      for (float v : t.to_vector<float>()) out.push_back(v);
  return out;
}

TEST(Model, FitLearnsBlobsAndEvaluateReportsClassificationMetrics) {
  const data::Dataset train = blobs(600, 1), test = blobs(300, 2);
  Model m = mlp_model();
  const History h = m.fit(train, {.epochs = 5, .batch_size = 32, .validation_data = &test, .verbose = 0});
  ASSERT_EQ(h.epochs.size(), 5u);
  const auto loss = h.get("loss");
  EXPECT_LT(loss.back(), loss.front());
  EXPECT_GT(h.epochs.back().at("val_accuracy"), 0.95);
  const Evaluation ev = m.evaluate_full(test);
  EXPECT_GT(ev.logs.at("accuracy"), 0.95);
  ASSERT_TRUE(ev.confusion.has_value());
  EXPECT_EQ(ev.confusion->total(), 300);
  EXPECT_NEAR(ev.logs.at("accuracy"), ev.confusion->accuracy(), 1e-12);
  EXPECT_TRUE(ev.logs.count("f1_macro"));
  // predict_proba: rows are distributions whose argmax agrees with the accuracy.
  const Tensor p = m.predict_proba(test.features, 7);
  EXPECT_EQ(p.shape(), (Shape{300, 3}));
  const auto sums = sum(p, {1}).to_vector<float>();
  for (float s : sums) EXPECT_NEAR(s, 1.f, 1e-5f);
  const auto pred = argmax(p, 1).to_vector<int64_t>();
  const auto y = test.labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < y.size(); ++i) correct += pred[i] == y[i];
  EXPECT_NEAR(static_cast<double>(correct) / 300.0, ev.logs.at("accuracy"), 1e-12);
}

TEST(Model, SameSeedSameWeightsBitForBitAndAnotherSeedDiffers) {
  const data::Dataset train = blobs(200, 1);
  Model a = mlp_model(), b = mlp_model(), c = mlp_model();
  a.fit(train, {.epochs = 2, .batch_size = 16, .seed = 5, .verbose = 0});
  b.fit(train, {.epochs = 2, .batch_size = 16, .seed = 5, .verbose = 0});
  c.fit(train, {.epochs = 2, .batch_size = 16, .seed = 6, .verbose = 0});
  EXPECT_EQ(weights(a), weights(b));
  EXPECT_NE(weights(a), weights(c));
}

TEST(Model, SaveLoadGivesIdenticalPredictionsAndMetadata) {
  TempDir dir;
  const data::Dataset train = blobs(300, 1), test = blobs(100, 2);
  Model m = mlp_model();
  m.fit(train, {.epochs = 2, .batch_size = 32, .verbose = 0});
  const std::string path = dir.file("m.deft");
  m.save(path);
  Model back = Model::load(path);
  EXPECT_EQ(back.class_names(), m.class_names());
  EXPECT_EQ(back.epochs_trained(), 2);
  EXPECT_EQ(back.history().epochs.size(), 2u);
  EXPECT_EQ(back.predict(test.features).to_vector<float>(), m.predict(test.features).to_vector<float>());
  EXPECT_EQ(back.optimizer()->type(), "adam");
  EXPECT_EQ(back.optimizer()->steps(), m.optimizer()->steps());
}

TEST(Model, LoadRejectsCorruptAndForeignFilesNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("bad.deft");
  { std::ofstream f(path); f << "not a model at all"; }
  try {
    Model::load(path);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  // A valid model file whose metadata was truncated.
  Model m = mlp_model();
  m.fit(blobs(60, 1), {.epochs = 1, .verbose = 0});
  const std::string good = dir.file("good.deft");
  m.save(good);
  std::ifstream in(good, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  { std::ofstream f(path, std::ios::binary); f << bytes.substr(0, bytes.size() / 2); }
  EXPECT_THROW(Model::load(path), InputError);
  EXPECT_THROW(Model::load(dir.file("missing.deft")), InputError);
}

TEST(Model, ResumingFromACheckpointEndsWithTheUninterruptedWeights) {
  TempDir dir;
  const data::Dataset train = blobs(300, 1);
  const std::string ckpt = dir.file("ckpt.deft");
  Model full = mlp_model();
  full.fit(train, {.epochs = 4, .batch_size = 32, .seed = 3, .verbose = 0});

  Model first = mlp_model();
  first.fit(train, {.epochs = 2, .batch_size = 32, .callbacks = {std::make_shared<ModelCheckpoint>(ckpt)},
                    .seed = 3, .verbose = 0});
  Model second = mlp_model();  // a fresh process would start like this
  const History h = second.fit(train, {.epochs = 4, .batch_size = 32, .seed = 3, .verbose = 0, .resume_from = ckpt});
  EXPECT_EQ(h.epochs.size(), 4u);
  EXPECT_EQ(second.epochs_trained(), 4);
  EXPECT_EQ(weights(second), weights(full));
  EXPECT_EQ(h.get("loss"), full.history().get("loss"));
}

TEST(Model, EarlyStoppingStopsAfterPatienceAndRestoresTheBestWeights) {
  const data::Dataset train = blobs(200, 1);
  Model m = mlp_model();
  // "loss" in max mode never improves after the first epoch: stop after 1 + patience epochs.
  auto es = std::make_shared<EarlyStopping>(
      EarlyStoppingOptions{.monitor = "loss", .mode = Mode::Max, .patience = 2, .restore_best_weights = true});
  std::vector<float> after_first;
  struct Grab : Callback {
    std::vector<float>* out;
    std::string name() const override { return "grab"; }
    void on_epoch_end(Model& model, int64_t epoch, const Logs&) override {
      if (epoch == 0) *out = weights(model);
    }
  };
  auto grab = std::make_shared<Grab>();
  grab->out = &after_first;
  const History h = m.fit(train, {.epochs = 20, .batch_size = 32, .callbacks = {grab, es}, .verbose = 0});
  EXPECT_EQ(h.epochs.size(), 3u);
  EXPECT_EQ(es->best_epoch(), 0);
  EXPECT_EQ(weights(m), after_first);
}

TEST(Model, TerminateOnNaNStopsADivergingRun) {
  const data::Dataset train = blobs(200, 1);
  data::Dataset reg = train;
  reg.task = data::Task::Regression;
  reg.class_names.clear();
  reg.labels = train.labels.to(DType::Float32);
  Model r(nn::Sequential{nn::Dense(1)});
  r.compile(std::make_shared<optim::SGD>(optim::SGDOptions{.lr = 1e30}), nn::make_loss("mse"));
  const History h = r.fit(reg, {.epochs = 5, .batch_size = 8,
                                .callbacks = {std::make_shared<TerminateOnNaN>()}, .verbose = 0});
  EXPECT_EQ(h.epochs.size(), 1u);
  EXPECT_FALSE(std::isfinite(h.epochs[0].at("loss")));
}

TEST(Model, ValidationSplitAddsValLogsAndCsvLoggerWritesOneRowPerEpoch) {
  TempDir dir;
  const std::string csv = dir.file("log.csv");
  Model m = mlp_model();
  m.fit(blobs(300, 1), {.epochs = 3, .batch_size = 32, .validation_split = 0.2,
                        .callbacks = {std::make_shared<CsvLogger>(csv)}, .verbose = 0});
  EXPECT_TRUE(m.history().epochs[0].count("val_loss"));
  EXPECT_TRUE(m.history().epochs[0].count("val_accuracy"));
  std::ifstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_NE(header.find("val_loss"), std::string::npos) << header;
  int rows = 0;
  while (std::getline(in, line)) ++rows;
  EXPECT_EQ(rows, 3);
}

TEST(Model, BinaryCrossEntropyOnOneOutputReportsPrecisionRecallF1) {
  data::Dataset d = blobs(400, 1, 2);
  Model m(nn::Sequential{nn::Dense(8, "relu"), nn::Dense(1)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-2}),
            nn::make_loss("binary_crossentropy", {{"from_logits", true}}), {"accuracy", "precision", "auc"});
  m.fit(d, {.epochs = 5, .batch_size = 32, .verbose = 0});
  const Logs l = m.evaluate(blobs(200, 2, 2));
  EXPECT_GT(l.at("accuracy"), 0.95);
  EXPECT_GT(l.at("auc"), 0.98);
  EXPECT_TRUE(l.count("precision_macro") && l.count("recall_macro") && l.count("f1_macro"));
  EXPECT_EQ(m.predict_proba(d.features).shape(), (Shape{400, 1}));
}

TEST(Model, ClassWeightChangesTheTrainingAndMismatchesAreClearErrors) {
  const data::Dataset train = blobs(200, 1);
  Model a = mlp_model(), b = mlp_model();
  a.fit(train, {.epochs = 1, .verbose = 0});
  b.fit(train, {.epochs = 1, .class_weight = {{0, 5.0}}, .verbose = 0});
  EXPECT_NE(weights(a), weights(b));
  // A network whose output width does not match the classes.
  Model wrong(nn::Sequential{nn::Dense(4)});
  wrong.compile(std::make_shared<optim::Adam>(), nn::make_loss("sparse_categorical_crossentropy"));
  try {
    wrong.fit(train, {.verbose = 0});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("has 3 classes"), std::string::npos) << e.what();
  }
  Model uncompiled(nn::Sequential{nn::Dense(3)});
  EXPECT_THROW(uncompiled.fit(train), InputError);
  data::Dataset bad = blobs(10, 1);
  bad.labels.data<int64_t>()[3] = 7;
  Model m = mlp_model();
  m.fit(train, {.epochs = 1, .verbose = 0});
  try {
    m.evaluate(bad);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("example 3 has label 7"), std::string::npos) << e.what();
  }
}

TEST(Model, CheckpointBestOnlySavesOnlyImprovements) {
  TempDir dir;
  const std::string best = dir.file("best.deft"), every = dir.file("every.deft");
  Model m = mlp_model();
  // Training loss falls every epoch: in max mode only the first epoch is an improvement.
  m.fit(blobs(200, 1), {.epochs = 3, .callbacks = {std::make_shared<ModelCheckpoint>(
                                                       best, CheckpointOptions{.monitor = "loss", .mode = Mode::Max,
                                                                               .save_best_only = true}),
                                                   std::make_shared<ModelCheckpoint>(every)},
                        .verbose = 0});
  EXPECT_EQ(Model::load(best).epochs_trained(), 1);
  EXPECT_EQ(Model::load(every).epochs_trained(), 3);
  const auto files = std::distance(std::filesystem::directory_iterator(dir.path()), {});
  EXPECT_EQ(files, 2);  // no temporary files left behind
}

TEST(Model, FitAndEvaluateTakeTensorsLikeKeras) {
  const data::Dataset train = blobs(300, 1), test = blobs(150, 2);
  Model m = mlp_model();
  m.fit(train.features, train.labels, {.epochs = 4, .batch_size = 32, .verbose = 0});
  EXPECT_EQ(m.class_names(), (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_GT(m.evaluate(test.features, test.labels).at("accuracy"), 0.95);
  // Regression from float targets: MSE falls.
  Model r(nn::Sequential{nn::Dense(1)});
  r.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 0.05}), nn::make_loss("mse"), {"r2"});
  const Tensor target = sum(train.features, {1});
  const History h = r.fit(train.features, target, {.epochs = 20, .batch_size = 32, .verbose = 0});
  EXPECT_LT(h.get("loss").back(), 0.1 * h.get("loss").front());
  EXPECT_GT(r.evaluate(train.features, target).at("r2"), 0.95);
  EXPECT_THROW(m.fit(train.features, slice(train.labels, 0, 0, 10)), ShapeError);
}

TEST(Model, ProgressBarDrawsALiveBarOnATerminalAndOneLinePerEpochOtherwise) {
  for (int tty : {0, 1}) {
    std::FILE* f = std::tmpfile();
    ASSERT_NE(f, nullptr);
    Model m = mlp_model();
    m.fit(blobs(200, 1), {.epochs = 2, .batch_size = 10, .callbacks = {std::make_shared<ProgressBar>(f, tty)}});
    std::rewind(f);
    std::string out;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
    std::fclose(f);
    EXPECT_NE(out.find("Epoch 1/2 - "), std::string::npos) << out;
    EXPECT_NE(out.find("Epoch 2/2 - "), std::string::npos) << out;
    EXPECT_NE(out.find("accuracy"), std::string::npos) << out;
    EXPECT_EQ(out.find("ETA") != std::string::npos, tty == 1) << out;
    EXPECT_EQ(out.find('\r') != std::string::npos, tty == 1) << out;
  }
}

}  // namespace
}  // namespace deft::train
