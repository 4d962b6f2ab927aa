// RunRecorder: a fit's epoch logs and batch losses, in the run store as fit returned them.
#include <gtest/gtest.h>

#include <cmath>

#include <fmt/format.h>

#include "../data/data_test_util.h"
#include "deft/nn/layers.h"
#include "deft/optim/adam.h"
#include "deft/track/run_store.h"
#include "deft/train/model.h"
#include "deft/train/run_recorder.h"

namespace deft::train {
namespace {

using deft::test_util::TempDir;

data::Dataset blobs(int64_t n, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::randn({n, 4}, gen);
  Tensor y = Tensor::empty({n}, DType::Int64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    py[i] = i % 3;
    px[i * 4 + py[i]] += 3.f;
  }
  data::Dataset d;
  d.name = "blobs";
  d.features = x;
  d.labels = y;
  d.class_names = {"a", "b", "c"};
  return d;
}

// Counts log_metrics calls (transactions) on the way to a real store.
class CountingStore : public track::RunStore {
 public:
  explicit CountingStore(track::RunStore& s) : s_(s) {}
  std::string url() const override { return s_.url(); }
  int64_t create_run(const track::RunRecord& r) override { return s_.create_run(r); }
  void set_params(int64_t id, const nlohmann::json& p) override { s_.set_params(id, p); }
  void set_config(int64_t id, const nlohmann::json& c) override { s_.set_config(id, c); }
  void set_system(int64_t id, const nlohmann::json& j) override { s_.set_system(id, j); }
  void set_artifact(int64_t id, const std::string& n, const std::string& p) override { s_.set_artifact(id, n, p); }
  void log_metrics(int64_t id, const std::vector<track::MetricPoint>& pts) override {
    ++calls;
    s_.log_metrics(id, pts);
  }
  void finish_run(int64_t id, track::RunStatus st, const nlohmann::json& j) override { s_.finish_run(id, st, j); }
  std::optional<track::RunRecord> find_run(const std::string& n) override { return s_.find_run(n); }
  track::RunRecord run(int64_t id) override { return s_.run(id); }
  std::vector<track::RunRecord> list_runs(const track::RunFilter& f) override { return s_.list_runs(f); }
  std::vector<std::string> metric_keys(int64_t id) override { return s_.metric_keys(id); }
  std::vector<track::MetricPoint> metrics(int64_t id, const std::string& k) override { return s_.metrics(id, k); }
  void delete_run(int64_t id) override { s_.delete_run(id); }
  std::vector<int64_t> reap_dead_runs() override { return s_.reap_dead_runs(); }
  int calls = 0;

 private:
  track::RunStore& s_;
};

TEST(RunRecorder, StoresEveryEpochKeyAsFitReturnedItAndBatchLossesOncePerEpoch) {
  TempDir dir("deft-recorder");
  auto real = track::open_run_store("sqlite:///" + dir.file("runs.db"));
  CountingStore store(*real);
  const int64_t id = store.create_run({.name = "fit", .command = "test"});

  const data::Dataset train = blobs(300, 1), val = blobs(90, 2);
  Model m(nn::Sequential{nn::Dense(8, "relu"), nn::Dense(3)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-2}),
            nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
  auto recorder = std::make_shared<RunRecorder>(store, id, RunRecorder::Options{.batch_every = 3});
  const History h = m.fit(train, {.epochs = 3, .batch_size = 32, .validation_data = &val, .callbacks = {recorder},
                                  .verbose = 0});
  ASSERT_EQ(h.epochs.size(), 3u);
  EXPECT_EQ(store.calls, 3);  // one transaction per epoch (the end of training had nothing left)

  // every key of the epoch logs but "epoch" (the step itself), 3 points each, the values fit returned
  std::vector<std::string> want;
  for (const auto& [k, v] : h.epochs[0])
    if (k != "epoch") want.push_back(k);
  want.push_back("batch/loss");
  std::sort(want.begin(), want.end());
  EXPECT_EQ(store.metric_keys(id), want);
  for (const auto& [key, v0] : h.epochs[0]) {
    if (key == "epoch") continue;
    const auto series = store.metrics(id, key);
    ASSERT_EQ(series.size(), 3u) << key;
    for (size_t e = 0; e < 3; ++e) {
      EXPECT_EQ(series[e].step, static_cast<int64_t>(e) + 1) << key;
      const double fit_value = h.epochs[e].at(key);
      if (std::isnan(fit_value)) EXPECT_TRUE(std::isnan(series[e].value)) << key;
      else EXPECT_EQ(series[e].value, fit_value) << key;  // bit for bit
    }
  }
  for (const char* k : {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "epoch_s"})
    EXPECT_EQ(store.metrics(id, k).size(), 3u) << k;

  // batch losses: every 3rd global batch (10 batches an epoch: steps 3, 6, ..., 30)
  const auto batches = store.metrics(id, "batch/loss");
  ASSERT_EQ(batches.size(), 10u);
  for (size_t i = 0; i < batches.size(); ++i) {
    EXPECT_EQ(batches[i].step, 3 * static_cast<int64_t>(i + 1));
    EXPECT_TRUE(std::isfinite(batches[i].value) && batches[i].value > 0);
  }
}

TEST(RunRecorder, BatchEveryZeroRecordsEpochsOnly) {
  TempDir dir("deft-recorder");
  auto store = track::open_run_store("sqlite:///" + dir.file("runs.db"));
  const int64_t id = store->create_run({});
  Model m(nn::Sequential{nn::Dense(3)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-2}),
            nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}));
  m.fit(blobs(64, 3), {.epochs = 2, .batch_size = 16,
                       .callbacks = {std::make_shared<RunRecorder>(*store, id, RunRecorder::Options{.batch_every = 0})},
                       .verbose = 0});
  EXPECT_TRUE(store->metrics(id, "batch/loss").empty());
  EXPECT_EQ(store->metrics(id, "loss").size(), 2u);
}

}  // namespace
}  // namespace deft::train
