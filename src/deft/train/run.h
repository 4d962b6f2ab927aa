// One training run from a configuration: what `deft train` does, and what the
// tuner (deft auto) runs per trial.
//
//   json cfg = load_config_file("mlp.yaml");        // YAML or JSON
//   cfg["epochs"] = 3;                               // flags override the file
//   TrainConfig c = TrainConfig::from_json(cfg);     // InputError names a bad key or value
//   RunResult r = run_training(c);                   // data -> model -> fit -> evaluate -> save
//   write_json_atomically("m.json", r.metrics);
//   run_training(c, {.storage = "sqlite:///deft.db"});  // and record it as a run (track/run_store.h)
//
// Keys (all optional but `data`; defaults reproduce the Keras Fashion-MNIST example):
//   data: fashion-mnist | PATH      target: COLUMN (CSV)     positive_classes: [Sandal, 7, ...]
//   model: mlp | linear | lenet5 | simple_cnn | vgg_small | resnet_small   (nn/zoo.h)
//   width: 1.0 (channel/unit multiplier)   depth: family default (simple_cnn 2, vgg_small 3,
//   resnet_small 20 of 8/14/20)   dropout: family default (mlp 0.2, simple_cnn 0.25, ...)
//   hidden: [128]  activation: relu   (mlp; activation also lenet5 and simple_cnn)
//   layers: [{type: Dense, units: 64, activation: relu}, ...]   (instead of model)
//   epochs: 10  batch_size: 64  seed: 0  threads: 0 (all)  workers: -1 (auto)
//   optimizer: adam | {name: adamw, lr: 0.001, weight_decay: 0.01}   lr: / weight_decay: shortcuts
//   loss: sparse_categorical_crossentropy | {name: ..., label_smoothing: 0.1}   (default by task)
//   metrics: [accuracy]   schedule: {name: cosine, warmup_epochs: 1}   clip_grad_norm: 0
//   validation_split: 0.1   augment: "crop:2,flip:0.5"   class_weight: {0: 1.0, 1: 5.0} | balanced
//   early_stopping: {monitor: val_loss, patience: 3, restore_best_weights: true}
//   out: model.deft  checkpoint: ckpt.deft  resume: ckpt.deft  metrics_out: m.json  log: log.csv
//   verbose: 1
// positive_classes turns a classification into the binary task "is it one of these?"
// (names or indices), trained with binary cross-entropy on one output.
#pragma once
#include <functional>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/data/dataset.h"
#include "deft/train/model.h"

namespace deft::train {

// Reads a YAML (.yaml/.yml) or JSON file into JSON; InputError names the file and line.
nlohmann::json load_config_file(const std::string& path);
// YAML text to JSON (scalars become numbers/bools where they parse as such).
nlohmann::json yaml_to_json(const std::string& text, const std::string& source);

struct TrainConfig {
  nlohmann::json raw;  // the resolved configuration, every key with its value
  static TrainConfig from_json(const nlohmann::json& j);
  template <class T>
  T get(const char* key) const { return raw.at(key).get<T>(); }
};

struct RunResult {
  Model model;
  History history;
  Evaluation test;
  std::optional<Evaluation> val;
  nlohmann::json metrics;  // the --metrics-out object of DESIGN.md
  int64_t run_id = -1;     // the recorded run (-1: not recorded)
  std::string run_name;
};

// Where run_training records the run: the run store's URL ("" = not recorded) and the
// run's name ("" = run-<id>; a name already taken is an InputError before training).
// The run holds the resolved config, the params, system_info(), the artifacts (model,
// checkpoint, log, metrics file), every epoch's logs (RunRecorder) and the final
// summary (test_* metrics, wall_s, ...); it ends finished, or failed with
// summary.error when training throws, or killed on SIGINT/SIGTERM (RunSignalGuard).
struct RunTracking {
  std::string storage;      // the run store's URL; "" = the run is not recorded
  std::string run_name;     // "" = run-<id>
  std::string tensorboard;  // root of the TensorBoard event files (<root>/<run name>/); "" = none
};

// Loads and splits the data as the config says (positive_classes applied).
data::DatasetSplits load_training_data(const TrainConfig& c);
// Builds the network the config describes for per-example inputs `input_shape` (the
// data's, e.g. [1,28,28]; the image families need [C,H,W]) and `num_outputs` outputs.
std::shared_ptr<nn::Module> build_network(const TrainConfig& c, const Shape& input_shape,
                                          int64_t num_outputs);
RunResult run_training(const TrainConfig& c, const RunTracking& tracking = {});
// The hyperparameters of a config as a run records them: model, optimizer, lr, batch
// size, epochs, and the knobs the config sets.
nlohmann::json run_params(const TrainConfig& c);

// The model and fit options run_training builds from a config, for data already loaded
// (the tuner's trials): compiled model, FitOptions with the config's callbacks (schedule,
// early stopping, checkpoint, log). `validation` may be null (then validation_split holds).
struct PreparedFit {
  Model model;
  FitOptions options;
};
PreparedFit prepare_fit(const TrainConfig& c, const data::Dataset& train, const data::Dataset* validation);

// What reading data for a saved model needs, from its file's metadata alone (a float
// or an int8-quantised .deft, which Model::load refuses): the raw per-example input
// shape, the fitted preprocessing (its table schema), the provenance (the training
// config), the class names and whether it is quantised.
struct SavedModelInputs {
  std::string path;
  Shape raw_input;
  std::optional<data::Preprocessor> pre;
  nlohmann::json provenance = nlohmann::json::object();
  std::vector<std::string> class_names;
  bool quantized = false;
  SavedModelInputs() = default;
  explicit SavedModelInputs(const Model& model);
};
// InputError naming `path` when it is not a deft model.
SavedModelInputs saved_model_inputs(const std::string& path);

// A .csv/.tsv file read and coded with the schema of the table `model` was trained
// on (same columns by name, same category codes), labelled when it has the target
// column. Empty when `path` is not a table or the model was not trained on one.
std::optional<data::Dataset> read_table_for(const SavedModelInputs& model, const std::string& path);
inline std::optional<data::Dataset> read_table_for(const Model& model, const std::string& path) {
  return read_table_for(SavedModelInputs(model), path);
}
// The examples `deft eval` scores: `data` split the way training split it (same seed,
// same binary relabelling) when the model remembers its training config; another
// table than the one trained on is read whole with the model's schema.
data::Dataset eval_split(const SavedModelInputs& model, const std::string& data, const std::string& split,
                         const std::string& target);
// Classification (or regression) metrics of a predictor that returns probabilities
// (or predictions) for raw features: what `deft eval` reports for an int8 model. The
// loss is the mean negative log-probability of the true class (regression: the MSE).
Evaluation evaluate_predictions(const std::function<Tensor(const Tensor&)>& predict, const data::Dataset& d,
                                int64_t num_classes, int64_t batch_size = 1000);

// The peak resident set size of this process, MiB.
// Image files for a model trained on images: `path` is one PNG/JPEG file, or a folder
// of them (flat, or class sub-folders, searched recursively; sorted by path). Every
// image is converted to the model's channels and resized to its input size.
// Empty when the model does not take images or `path` holds no image files.
struct ImageInputs {
  data::Dataset data;
  std::vector<std::string> files;  // one per example, in order
};
std::optional<ImageInputs> read_images_for(const SavedModelInputs& model, const std::string& path);
inline std::optional<ImageInputs> read_images_for(const Model& model, const std::string& path) {
  return read_images_for(SavedModelInputs(model), path);
}

double peak_rss_mib();
// Writes `j` (pretty-printed) atomically.
void write_json_atomically(const std::string& path, const nlohmann::json& j);
// Classification metrics as the metrics JSON holds them.
nlohmann::json evaluation_json(const Evaluation& ev, const std::vector<std::string>& class_names);

}  // namespace deft::train
