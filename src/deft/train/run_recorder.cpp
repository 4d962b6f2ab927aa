#include "deft/train/run_recorder.h"

#include "deft/track/study_store.h"
#include "deft/train/model.h"

namespace deft::train {

RunRecorder::RunRecorder(track::RunStore& store, int64_t run_id, Options options)
    : store_(store), run_id_(run_id), opt_(options) {}

void RunRecorder::on_train_begin(Model& m) { batches_per_epoch_ = m.fit_batches_per_epoch(); }

void RunRecorder::on_epoch_begin(Model&, int64_t epoch) { epoch_ = epoch; }

void RunRecorder::on_batch_end(Model&, int64_t batch, const Logs& logs) {
  if (opt_.batch_every <= 0) return;
  const int64_t step = epoch_ * batches_per_epoch_ + batch + 1;
  if (step % opt_.batch_every != 0) return;
  const auto it = logs.find("batch_loss");
  if (it != logs.end()) pending_.push_back({"batch/loss", step, it->second, track::unix_now()});
}

void RunRecorder::on_epoch_end(Model&, int64_t epoch, const Logs& logs) {
  const double now = track::unix_now();
  for (const auto& [key, value] : logs)
    if (key != "epoch") pending_.push_back({key, epoch + 1, value, now});
  flush();
}

void RunRecorder::on_train_end(Model&, const Logs&) { flush(); }

void RunRecorder::flush() {
  if (pending_.empty()) return;
  std::vector<track::MetricPoint> batch;
  batch.swap(pending_);
  store_.log_metrics(run_id_, batch);
}

}  // namespace deft::train
