#include "deft/train/tensorboard_logger.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include "deft/tensor/error.h"
#include "deft/track/raster.h"
#include "deft/train/model.h"

namespace deft::train {

using json = nlohmann::json;

namespace {

// Keras's names: "epoch_loss", "epoch_accuracy", "epoch_learning_rate".
std::string epoch_tag(const std::string& key) { return key == "lr" ? "epoch_learning_rate" : "epoch_" + key; }

bool is_val(const std::string& key) { return key.rfind("val_", 0) == 0; }

// Keys that measure the model (worth a column in the hparams table), not the run.
bool is_metric(const std::string& key) {
  const std::string k = is_val(key) ? key.substr(4) : key;
  return k != "epoch" && k != "lr" && k != "epoch_s" && k != "samples_per_s" && k != "size" &&
         k != "batch_loss" && k.find("_class_") == std::string::npos;
}

void flatten(const json& j, const std::string& prefix, track::HParams& out) {
  if (j.is_object()) {
    for (auto& [k, v] : j.items()) flatten(v, prefix.empty() ? k : prefix + "." + k, out);
  } else if (j.is_boolean()) {
    out.emplace(prefix, j.get<bool>());
  } else if (j.is_number()) {
    out.emplace(prefix, j.get<double>());
  } else if (j.is_string()) {
    out.emplace(prefix, j.get<std::string>());
  } else if (j.is_array()) {
    out.emplace(prefix, j.dump());
  }
}

}  // namespace

track::HParams hparams_from_config(const json& config) {
  track::HParams out;
  if (!config.is_object()) return out;
  static const char* const kSkip[] = {"out", "checkpoint", "resume",     "metrics_out",
                                      "log", "verbose",    "tensorboard"};
  for (auto& [k, v] : config.items()) {
    if (std::find(std::begin(kSkip), std::end(kSkip), k) != std::end(kSkip)) continue;
    flatten(v, k, out);
  }
  return out;
}

TensorBoardLogger::TensorBoardLogger(std::string dir, Options options)
    : dir_(std::move(dir)), opt_(std::move(options)) {
  DEFT_CHECK(!dir_.empty(), "TensorBoardLogger: empty folder name");
  DEFT_CHECK(opt_.batch_every >= 0 && opt_.histogram_every >= 0 && opt_.max_images >= 0,
             "TensorBoardLogger: batch_every, histogram_every and max_images must be >= 0");
  if (opt_.hparams.empty()) opt_.hparams = hparams_from_config(opt_.config);
}

TensorBoardLogger::~TensorBoardLogger() {
  if (!session_open_ || !root_) return;
  try {  // training ended by an exception: the session did not finish
    root_->add_session_end(track::SessionStatus::Failure);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deft: warning: %s\n", e.what());
  }
}

void TensorBoardLogger::on_train_begin(Model& m) {
  namespace fs = std::filesystem;
  root_ = std::make_unique<track::TensorBoardWriter>(dir_, opt_.flush_seconds);
  train_ =
      std::make_unique<track::TensorBoardWriter>((fs::path(dir_) / "train").string(), opt_.flush_seconds);
  val_.reset();  // made when a validation value first appears
  epoch_ = m.epochs_trained();
  batches_ = m.fit_batches_per_epoch();
  experiment_written_ = false;

  root_->add_session_start(opt_.hparams, opt_.group_name);
  session_open_ = true;
  if (!opt_.config.is_null()) root_->add_text("config", "```json\n" + opt_.config.dump(2) + "\n```", 0);
  try {
    root_->add_text("model", "```\n" + m.summary() + "\n```", 0);
  } catch (const Error&) {
    // a network without a summary table: nothing to show
  }
  flush_all();
}

void TensorBoardLogger::on_epoch_begin(Model&, int64_t epoch) { epoch_ = epoch; }

void TensorBoardLogger::on_batch_end(Model&, int64_t batch, const Logs& logs) {
  if (opt_.batch_every <= 0 || (batch + 1) % opt_.batch_every != 0 || !train_) return;
  auto it = logs.find("batch_loss");
  if (it != logs.end()) train_->add_scalar("batch_loss", it->second, epoch_ * batches_ + batch);
}

void TensorBoardLogger::on_epoch_end(Model& m, int64_t epoch, const Logs& logs) {
  if (!root_) return;
  for (const auto& [k, v] : logs) {
    if (k == "epoch") continue;
    if (is_val(k)) {
      if (!val_)
        val_ = std::make_unique<track::TensorBoardWriter>(
            (std::filesystem::path(dir_) / "validation").string(), opt_.flush_seconds);
      val_->add_scalar(epoch_tag(k.substr(4)), v, epoch);
    } else {
      train_->add_scalar(epoch_tag(k), v, epoch);
    }
  }
  if (opt_.histogram_every > 0 && (epoch + 1) % opt_.histogram_every == 0) {
    for (const auto& named : m.net().named_parameters()) {
      const std::string& name = named.first;  // not a structured binding: clang 14 cannot capture those
      const Tensor& p = named.second;
      auto histogram = [&](const Tensor& t, const char* suffix) {
        if (!t.defined() || t.dtype() != DType::Float32) return;
        const Tensor c = t.contiguous_copy();
        train_->add_histogram(name + suffix, {c.data<float>(), static_cast<size_t>(c.numel())}, epoch);
      };
      histogram(p, "/histogram");
      histogram(p.grad(), "/gradient");
    }
  }
  if (opt_.write_experiment && !experiment_written_) write_experiment(logs);
  flush_all();
}

void TensorBoardLogger::write_experiment(const Logs& logs) {
  std::vector<track::HParamInfo> hparams;
  for (const auto& [name, value] : opt_.hparams) {
    track::HParamInfo info{.name = name};
    if (std::holds_alternative<double>(value.value))
      info.type = track::HParamType::Float64;
    else if (std::holds_alternative<bool>(value.value))
      info.type = track::HParamType::Bool;
    else
      info.type = track::HParamType::String;
    hparams.push_back(std::move(info));
  }
  std::vector<track::MetricInfo> metrics;
  for (const bool val : {false, true})  // training metrics first, then validation
    for (const auto& [k, v] : logs) {
      if (is_val(k) != val || !is_metric(k)) continue;
      metrics.push_back(
          {.tag = epoch_tag(val ? k.substr(4) : k),
           .group = val ? "validation" : "train",
           .dataset_type = val ? track::DatasetType::Validation : track::DatasetType::Training});
    }
  root_->add_hparams_config(hparams, metrics);
  experiment_written_ = true;
}

void TensorBoardLogger::write_validation_images(Model& m, int64_t step) {
  const data::Dataset& v = *opt_.validation;
  if (!v.is_image() || v.features.dtype() != DType::UInt8 || v.task != data::Task::Classification ||
      !v.labels.defined() || v.labels.dtype() != DType::Int64 || v.size() == 0)
    return;
  const int64_t channels = v.features.size(1);
  if (channels != 1 && channels != 3) return;
  const Tensor proba = m.predict_proba(v.features);
  const int64_t n = v.size();
  std::vector<int64_t> predicted(static_cast<size_t>(n));
  const std::vector<float> p = proba.to_vector<float>();
  const int64_t width = proba.dim() == 2 ? proba.size(1) : 1;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = p.data() + i * width;
    predicted[static_cast<size_t>(i)] =
        width == 1 ? (row[0] > 0.5f ? 1 : 0) : std::max_element(row, row + width) - row;
  }
  const std::vector<int64_t> truth = v.labels.to_vector<int64_t>();

  std::vector<std::string> names = !opt_.class_names.empty()  ? opt_.class_names
                                   : !m.class_names().empty() ? m.class_names()
                                                              : v.class_names;
  int64_t k = std::max<int64_t>(static_cast<int64_t>(names.size()), width == 1 ? 2 : width);
  for (size_t i = 0; i < truth.size(); ++i) k = std::max({k, truth[i] + 1, predicted[i] + 1});

  const int64_t shown = std::min(n, opt_.max_images);
  if (shown > 0) {
    std::vector<int64_t> first(static_cast<size_t>(shown));
    std::iota(first.begin(), first.end(), int64_t{0});
    const track::Image grid = track::render_prediction_grid(
        v.subset(first).features, std::span(predicted).first(static_cast<size_t>(shown)),
        std::span(truth).first(static_cast<size_t>(shown)), names);
    root_->add_image("validation/predictions", grid.pixels, grid.height, grid.width, grid.channels, step);
  }
  std::vector<int64_t> counts(static_cast<size_t>(k * k), 0);
  for (size_t i = 0; i < truth.size(); ++i)
    if (truth[i] >= 0) ++counts[static_cast<size_t>(truth[i] * k + predicted[i])];
  const track::Image cm = track::render_confusion_matrix(counts, k, names);
  root_->add_image("validation/confusion_matrix", cm.pixels, cm.height, cm.width, cm.channels, step);
}

void TensorBoardLogger::on_train_end(Model& m, const Logs& logs) {
  if (!root_) return;
  const int64_t step = std::max<int64_t>(m.epochs_trained() - 1, 0);
  if (opt_.validation) write_validation_images(m, step);
  auto loss = logs.find("loss");
  const bool failed = loss != logs.end() && !std::isfinite(loss->second);
  root_->add_session_end(failed ? track::SessionStatus::Failure : track::SessionStatus::Success);
  session_open_ = false;
  flush_all();
  root_.reset(), train_.reset(), val_.reset();  // closes the files
}

void TensorBoardLogger::flush_all() {
  for (auto* w : {root_.get(), train_.get(), val_.get()})
    if (w) w->flush();
}

std::shared_ptr<Callback> make_tensorboard_logger(const std::string& dir, TensorBoardOptions options) {
  return std::make_shared<TensorBoardLogger>(dir, std::move(options));
}

}  // namespace deft::train
