// Callbacks: code that runs at the edges of training, as in Keras.
//
//   model.fit(train, {.epochs = 50, .validation_split = 0.1, .callbacks = {
//       std::make_shared<EarlyStopping>(EarlyStopping::Options{.monitor = "val_loss", .patience = 3,
//                                                               .restore_best_weights = true}),
//       std::make_shared<ModelCheckpoint>("best.deft", ModelCheckpoint::Options{.save_best_only = true}),
//       std::make_shared<LearningRateScheduler>(optim::make_schedule("cosine", {{"warmup", 2}})),
//       std::make_shared<CsvLogger>("log.csv")}});
//
// Logs are flat maps: "loss", "accuracy", ... for training, "val_loss", "val_accuracy",
// ... for validation, plus "lr" and "epoch_s". A callback stops training by setting
// model.stop_training. Callbacks that carry state across epochs (EarlyStopping's best
// value and wait count, a schedule's plateau counter) save it in checkpoints through
// state()/load_state(), so a resumed run decides exactly as an uninterrupted one.
#pragma once
#include <cstdio>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/optim/schedule.h"
#include "deft/tensor/tensor.h"

namespace deft::train {

class Model;
using Logs = std::map<std::string, double>;

class Callback {
 public:
  virtual ~Callback() = default;
  virtual std::string name() const = 0;
  virtual void on_train_begin(Model&) {}
  virtual void on_epoch_begin(Model&, int64_t /*epoch*/) {}
  virtual void on_batch_begin(Model&, int64_t /*batch*/) {}
  virtual void on_batch_end(Model&, int64_t /*batch*/, const Logs&) {}
  virtual void on_epoch_end(Model&, int64_t /*epoch*/, const Logs&) {}
  virtual void on_train_end(Model&, const Logs&) {}
  virtual nlohmann::json state() const { return nullptr; }
  virtual void load_state(const nlohmann::json&) {}
};
using Callbacks = std::vector<std::shared_ptr<Callback>>;

enum class Mode { Auto, Min, Max };  // Auto: max for accuracy-like names, min otherwise
bool mode_is_max(Mode mode, const std::string& monitor);

struct EarlyStoppingOptions {
  std::string monitor = "val_loss";
  Mode mode = Mode::Auto;
  int64_t patience = 0;
  double min_delta = 0;
  bool restore_best_weights = false;
};

class EarlyStopping : public Callback {
 public:
  using Options = EarlyStoppingOptions;
  explicit EarlyStopping(Options options);
  std::string name() const override { return "early_stopping"; }
  void on_train_begin(Model& m) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
  void on_train_end(Model& m, const Logs& logs) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& j) override;
  int64_t stopped_epoch() const { return stopped_epoch_; }
  int64_t best_epoch() const { return best_epoch_; }
  double best() const { return best_; }

 private:
  Options opt_;
  bool max_;
  double best_;
  int64_t wait_ = 0, best_epoch_ = -1, stopped_epoch_ = -1;
  std::vector<std::pair<std::string, Tensor>> best_weights_;  // copies, when restore_best_weights
};

// Saves the model (weights, optimizer state, training position) after each epoch, or
// only when the monitored value improved. Atomic: a crash mid-write keeps the last file.
struct CheckpointOptions {
  std::string monitor = "val_loss";
  Mode mode = Mode::Auto;
  bool save_best_only = false;
};

class ModelCheckpoint : public Callback {
 public:
  using Options = CheckpointOptions;
  explicit ModelCheckpoint(std::string path, Options options = {});
  std::string name() const override { return "model_checkpoint"; }
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
  nlohmann::json state() const override { return {{"best", best_}}; }
  void load_state(const nlohmann::json& j) override;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  Options opt_;
  bool max_;
  double best_;
};

// Drives the optimizer's learning rate from a schedule (per batch or per epoch, as
// the schedule says); reduce-on-plateau schedules read opt "monitor" from the logs.
class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(std::shared_ptr<optim::LRSchedule> schedule, std::string monitor = "val_loss");
  std::string name() const override { return "lr_scheduler"; }
  void on_train_begin(Model& m) override;
  void on_batch_begin(Model& m, int64_t batch) override;
  void on_epoch_begin(Model& m, int64_t epoch) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
  nlohmann::json state() const override;
  void load_state(const nlohmann::json& j) override;
  const optim::LRSchedule& schedule() const { return *schedule_; }

 private:
  std::shared_ptr<optim::LRSchedule> schedule_;
  std::string monitor_;
  double base_lr_ = 0;
  int64_t epoch_ = 0;
  nlohmann::json pending_;  // schedule state from a checkpoint, applied at train begin
};

class TerminateOnNaN : public Callback {
 public:
  std::string name() const override { return "terminate_on_nan"; }
  void on_batch_end(Model& m, int64_t batch, const Logs& logs) override;
};

// What the epoch loggers share: their file, opened when training begins (appended
// to when `append` or when resuming, so a resumed run continues its log) and
// closed when it ends.
class FileLogger : public Callback {
 public:
  void on_train_begin(Model& m) override;
  void on_train_end(Model& m, const Logs& logs) override;

 protected:
  // `kind` names the logger in error messages ("CsvLogger").
  FileLogger(const char* kind, std::string path, bool append);
  void write_line(const std::string& line);  // and flush
  std::ofstream out_;

 private:
  const char* kind_;
  std::string path_;
  bool append_;
};

// One row (CSV) or one JSON object per line per epoch; appends when resuming.
class CsvLogger : public FileLogger {
 public:
  explicit CsvLogger(std::string path, bool append = false);
  std::string name() const override { return "csv_logger"; }
  void on_train_begin(Model& m) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;

 private:
  std::vector<std::string> columns_;
};

class JsonLinesLogger : public FileLogger {
 public:
  explicit JsonLinesLogger(std::string path, bool append = false);
  std::string name() const override { return "jsonl_logger"; }
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
};

// On a terminal: a live bar per epoch with ETA and running metrics, redrawn at most
// ~10 times a second. Otherwise (a file, a pipe, CI logs): one line per epoch.
class ProgressBar : public Callback {
 public:
  explicit ProgressBar(std::FILE* out = stdout, int force_tty = -1);  // force_tty: -1 detect, 0 no, 1 yes
  std::string name() const override { return "progress"; }
  void on_train_begin(Model& m) override;
  void on_epoch_begin(Model& m, int64_t epoch) override;
  void on_batch_end(Model& m, int64_t batch, const Logs& logs) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;

 private:
  std::FILE* out_;
  bool tty_;
  int64_t epochs_ = 0, batches_ = 0;
  double epoch_start_ = 0, last_draw_ = 0;
};

// "loss 0.3412 - accuracy 0.8791 - val_loss ..." in a stable order.
std::string format_logs(const Logs& logs);

}  // namespace deft::train
