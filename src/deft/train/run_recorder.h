// RunRecorder: the callback that writes a training's metric series to the run store.
//
//   auto runs = track::open_run_store("sqlite:///deft.db");
//   const int64_t id = runs->create_run({.command = "train", .config = cfg});
//   options.callbacks.push_back(std::make_shared<RunRecorder>(*runs, id));
//   model.fit(train, options);
//   runs->finish_run(id, track::RunStatus::Finished, {{"test_accuracy", acc}});
//
// Every key of an epoch's logs ("loss", "accuracy", "val_loss", "lr", "epoch_s", ...)
// becomes a point at step = the epoch (1-based; "epoch" itself, the step, is left out);
// every `batch_every` batches the batch's loss becomes a "batch/loss" point at step =
// the global batch number (1-based, counted across epochs). Points are buffered and
// written in one log_metrics call (one transaction) per epoch, and at the end of
// training, so a run of thousands of steps costs one transaction per epoch.
#pragma once
#include <cstdint>
#include <vector>

#include "deft/track/run_store.h"
#include "deft/train/callbacks.h"

namespace deft::train {

struct RunRecorderOptions {
  int64_t batch_every = 10;  // 0: no per-batch points
};

class RunRecorder : public Callback {
 public:
  using Options = RunRecorderOptions;
  RunRecorder(track::RunStore& store, int64_t run_id, Options options = {});
  std::string name() const override { return "run_recorder"; }
  void on_train_begin(Model& m) override;
  void on_epoch_begin(Model& m, int64_t epoch) override;
  void on_batch_end(Model& m, int64_t batch, const Logs& logs) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
  void on_train_end(Model& m, const Logs& logs) override;

  // Writes the buffered points now (e.g. the batches of an epoch cut short by an error).
  void flush();
  int64_t run_id() const { return run_id_; }

 private:
  track::RunStore& store_;
  int64_t run_id_;
  Options opt_;
  int64_t batches_per_epoch_ = 0, epoch_ = 0;
  std::vector<track::MetricPoint> pending_;
};

}  // namespace deft::train
