// TensorBoardLogger: a callback that writes a training run as TensorBoard event
// files, in the layout Keras's TensorBoard callback uses, so `tensorboard --logdir runs/`
// shows deft runs as it shows Keras ones.
//
//   // deft train / deft auto (one call; `dir` e.g. "runs/<study>/<run>"):
//   fit_options.callbacks.push_back(train::make_tensorboard_logger(dir, {
//       .config = c.raw,                      // text "config" at step 0; hparams taken from it
//       .validation = splits.validation}));   // optional: images for the prediction grid
// (fields in declaration order; see TensorBoardOptions)
//
// Layout under `dir` (steps: epochs count from 0, batches from 0 across epochs):
//   dir/train/        epoch_loss, epoch_accuracy, epoch_<key> for every training key of the
//                     epoch logs ("lr" as epoch_learning_rate; epoch_s, samples_per_s too);
//                     batch_loss (that batch's loss) every `batch_every` batches;
//                     <param>/histogram and <param>/gradient (the last batch's gradient)
//                     for every parameter every `histogram_every` epochs ("1.kernel/histogram")
//   dir/validation/   epoch_<key> for every "val_<key>" of the epoch logs
//   dir/              text "config" (the configuration as a JSON code block) and "model"
//                     (the summary table) at step 0; the hparams session: session_start_info
//                     at train begin, session_end_info at train end (success, or failure
//                     when the last loss is not finite or training never reached its end);
//                     the experiment (hparam_infos from the hparams, metric_infos
//                     (group "train" | "validation", tag "epoch_<key>") for the loss and
//                     metrics of the first epoch's logs), written at the end of the first
//                     epoch; at train end, with validation images, "validation/predictions"
//                     (up to 64 images, predicted and true label, green right / red wrong)
//                     and "validation/confusion_matrix" over the whole validation set.
// TensorBoard's hparams table shows each metric's last value, i.e. the final epoch's.
// Runs side by side in one --logdir whose hparams differ (deft auto's trials) should set
// write_experiment = false: TensorBoard uses the first experiment it finds for the whole
// logdir, and without one it builds the table from every run's session_start_info.
//
// Event files are flushed at every epoch end and every 2 s. A write that fails (disk
// full, folder not writable) is an InputError naming the file.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "deft/data/dataset.h"
#include "deft/track/tensorboard.h"
#include "deft/train/callbacks.h"

namespace deft::train {

struct TensorBoardOptions {
  nlohmann::json config;   // the run's resolved configuration (may be null)
  track::HParams hparams;  // the session's hyperparameters; empty: hparams_from_config(config)
  std::string group_name;  // hparams session group; "" = the session alone
  std::optional<data::Dataset> validation;  // uint8 images [N,C,H,W] with int64 labels; else no images
  std::vector<std::string> class_names;     // default: the model's, else the validation data's
  int64_t batch_every = 50;                 // batch_loss every N batches; 0 = never
  int64_t histogram_every = 1;              // parameter/gradient histograms every N epochs; 0 = never
  int64_t max_images = 64;                  // images in the prediction grid
  bool write_experiment = true;             // see above
  double flush_seconds = 2;
};

class TensorBoardLogger : public Callback {
 public:
  using Options = TensorBoardOptions;
  explicit TensorBoardLogger(std::string dir, Options options = {});
  ~TensorBoardLogger() override;  // a session begun and not ended is ended as a failure
  std::string name() const override { return "tensorboard"; }
  void on_train_begin(Model& m) override;
  void on_epoch_begin(Model& m, int64_t epoch) override;
  void on_batch_end(Model& m, int64_t batch, const Logs& logs) override;
  void on_epoch_end(Model& m, int64_t epoch, const Logs& logs) override;
  void on_train_end(Model& m, const Logs& logs) override;
  const std::string& dir() const { return dir_; }

 private:
  void write_experiment(const Logs& logs);
  void write_validation_images(Model& m, int64_t step);
  void flush_all();

  std::string dir_;
  Options opt_;
  std::unique_ptr<track::TensorBoardWriter> root_, train_, val_;
  int64_t epoch_ = 0, batches_ = 0;
  bool session_open_ = false, experiment_written_ = false;
};

std::shared_ptr<Callback> make_tensorboard_logger(const std::string& dir, TensorBoardOptions options = {});

// Hyperparameters from a configuration: numbers, strings and bools as they are, nested
// objects flattened ("optimizer.lr"), arrays as their JSON text; nulls and the keys that
// name output files or verbosity (out, checkpoint, resume, metrics_out, log, verbose,
// tensorboard) left out.
track::HParams hparams_from_config(const nlohmann::json& config);

}  // namespace deft::train
