// Model: the Keras-style facade — compile, fit, evaluate, predict, save, load.
//
//   auto data = data::load_dataset("fashion-mnist");
//   train::Model model(nn::Sequential{nn::Flatten(), nn::Dense(128, "relu"), nn::Dropout(0.2), nn::Dense(10)});
//   model.compile(optim::make_optimizer("adam", {{"lr", 1e-3}}),
//                 nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
//   train::History h = model.fit(data.train, {.epochs = 10, .batch_size = 64, .validation_data = &*data.test});
//   train::Logs test = model.evaluate(*data.test);        // loss, accuracy, precision/recall/F1 ...
//   Tensor p = model.predict_proba(data.test->features);  // [N, 10] probabilities
//   model.save("fashion.deft");
//   train::Model again = train::Model::load("fashion.deft");
//
// Inputs are raw features exactly as the data files hold them (uint8 pixels 0–255,
// N×C×H×W, or float table columns). fit() learns the preprocessing from the
// training split (pixel scaling and per-channel normalisation, or the table
// cleaning/scaling/encoding of data/preprocess.h) and the model applies it to
// every input it sees afterwards, so a saved model takes raw data.
//
// Reproducible: the weights come from Generator(seed), the shuffle of epoch e and
// each batch's augmentation from (seed, e, batch), dropout from per-layer
// generators whose position is saved. Same seed, thread count and data give the
// same weights bit for bit; a run resumed from a checkpoint (fit options
// `resume_from`, or load() then fit with the same options) ends with exactly the
// weights of an uninterrupted run.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/data/dataset.h"
#include "deft/data/preprocess.h"
#include "deft/nn/loss.h"
#include "deft/nn/module.h"
#include "deft/optim/optimizer.h"
#include "deft/train/callbacks.h"
#include "deft/train/metrics.h"

namespace deft::train {

struct History {
  std::vector<Logs> epochs;  // one entry per epoch trained: "epoch", "loss", "val_loss", "lr", "epoch_s", ...
  std::vector<double> get(const std::string& key) const;  // that key across epochs (NaN where absent)
  nlohmann::json to_json() const;
  static History from_json(const nlohmann::json& j);
};

struct FitOptions {
  int64_t epochs = 1;
  int64_t batch_size = 32;
  const data::Dataset* validation_data = nullptr;  // or:
  double validation_split = 0;                      // stratified hold-out of train (seeded)
  Callbacks callbacks;
  std::map<int64_t, double> class_weight;  // label -> weight of its examples in the loss
  bool shuffle = true;
  uint64_t seed = 0;
  std::string augment;            // data/augment.h spec, images only: "crop:4,flip:0.5"
  // Loader threads preparing batches ahead of training; -1: one when augmenting, else
  // none (without augmentation a batch costs microseconds to build, and on 2 cores a
  // worker thread cost 15-20% at batch 256: 335K vs 270-282K samples/s, 2 threads).
  int workers = -1;
  double clip_grad_norm = 0;      // 0 = off
  double clip_grad_value = 0;     // 0 = off
  int verbose = 1;                // 0 silent; 1 progress bar / one line per epoch
  std::string resume_from;        // a checkpoint written by ModelCheckpoint or save()
  data::PreprocessOptions preprocess;  // how fit() learns the preprocessing (first fit only)
};

struct EvalOptions {
  int64_t batch_size = 1000;
};

// What evaluate() measured, beyond the flat logs.
struct Evaluation {
  Logs logs;                                 // "loss", compiled metrics, precision/recall/F1 ...
  std::optional<ConfusionMatrix> confusion;  // classification only
  int64_t examples = 0;
  double seconds = 0;
};

class Model {
 public:
  Model() = default;
  explicit Model(std::shared_ptr<nn::Module> net);
  Model(nn::Sequential&& net);  // NOLINT: Model m(nn::Sequential{...}) reads naturally
  Model(Model&&) = default;
  Model& operator=(Model&&) = default;

  void compile(std::shared_ptr<optim::Optimizer> optimizer, std::shared_ptr<nn::Loss> loss,
               std::vector<std::string> metrics = {});
  void compile(std::unique_ptr<optim::Optimizer> optimizer, std::shared_ptr<nn::Loss> loss,
               std::vector<std::string> metrics = {}) {
    compile(std::shared_ptr<optim::Optimizer>(std::move(optimizer)), std::move(loss), std::move(metrics));
  }
  bool compiled() const { return optimizer_ && loss_; }

  History fit(const data::Dataset& train, const FitOptions& options = {});
  // Keras's fit(x, y): int64 labels make a classification over classes 0..max(y),
  // float32 labels a regression.
  History fit(const Tensor& x, const Tensor& y, const FitOptions& options = {}) {
    return fit(as_dataset(x, y), options);
  }
  Logs evaluate(const Tensor& x, const Tensor& y, const EvalOptions& options = {}) {
    return evaluate(as_dataset(x, y), options);
  }
  Logs evaluate(const data::Dataset& data, const EvalOptions& options = {}) { return evaluate_full(data, options).logs; }
  Evaluation evaluate_full(const data::Dataset& data, const EvalOptions& options = {});
  // Raw model outputs (logits for a from_logits loss) and probabilities, for raw
  // features [N, ...] as the data holds them; batched, no graph recorded.
  Tensor predict(const Tensor& features, int64_t batch_size = 1000);
  Tensor predict_proba(const Tensor& features, int64_t batch_size = 1000);

  // Builds the network for raw per-example input shape `raw_input` (fitting no
  // preprocessing). fit() does this itself from the training data.
  void build(const Shape& raw_input, uint64_t seed = 0);
  std::string summary() const;

  // The whole model, atomically, in the .deft (safetensors) layout: weights,
  // architecture, preprocessing, class names, loss, optimizer state and the
  // training position (epoch, history, callback states) for resuming.
  void save(const std::string& path) const;
  static Model load(const std::string& path);

  nn::Module& net() { return *net_; }
  const nn::Module& net() const { return *net_; }
  optim::Optimizer* optimizer() const { return optimizer_.get(); }
  const nn::Loss* loss() const { return loss_.get(); }
  const data::Preprocessor* preprocessor() const { return pre_ ? &*pre_ : nullptr; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  data::Task task() const { return task_; }
  int64_t epochs_trained() const { return epoch_; }
  const History& history() const { return history_; }
  const Shape& raw_input_shape() const { return raw_input_; }
  // Free-form facts saved with the model (dataset, command, wall time...).
  nlohmann::json& provenance() { return provenance_; }
  const nlohmann::json& provenance() const { return provenance_; }

  // Features and labels as a Dataset (what the tensor overloads of fit/evaluate use).
  data::Dataset as_dataset(const Tensor& x, const Tensor& y) const;

  // Set by callbacks (EarlyStopping, TerminateOnNaN) to end fit() after this batch/epoch.
  bool stop_training = false;
  // Batches per epoch and epochs of the current fit (for progress displays).
  int64_t fit_batches_per_epoch() const { return fit_batches_; }
  int64_t fit_epochs() const { return fit_epochs_; }

 private:
  void prepare_for(const data::Dataset& train, const FitOptions& options);
  Tensor forward_raw(const Tensor& raw_batch);  // preprocessing + network
  Tensor prepare(const Tensor& raw_batch) const;
  std::vector<std::unique_ptr<Metric>> make_metrics() const;
  Tensor batch_weights(const Tensor& labels, const std::map<int64_t, double>& class_weight) const;
  nlohmann::json metadata() const;
  void restore(const std::string& path);  // this model becomes the checkpoint's (resume)
  void check_labels(const data::Dataset& d, const char* what) const;

  std::shared_ptr<nn::Module> net_;
  std::shared_ptr<optim::Optimizer> optimizer_;
  std::shared_ptr<nn::Loss> loss_;
  std::vector<std::string> metric_names_;
  std::optional<data::Preprocessor> pre_;
  Shape raw_input_;
  std::vector<std::string> class_names_;
  data::Task task_ = data::Task::Classification;
  uint64_t seed_ = 0;
  int64_t epoch_ = 0;  // epochs trained so far
  History history_;
  nlohmann::json fit_state_;   // callback states and fit options from the last checkpoint
  nlohmann::json provenance_ = nlohmann::json::object();
  int64_t fit_batches_ = 0, fit_epochs_ = 0;
  const Callbacks* callbacks_ = nullptr;  // during fit(): checkpoints record their states
};

}  // namespace deft::train
