#include "deft/train/callbacks.h"

#include <unistd.h>

#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "deft/autograd/graph.h"
#include "deft/tensor/error.h"
#include "deft/train/model.h"

namespace deft::train {

using json = nlohmann::json;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double monitored(const Logs& logs, const std::string& key, const char* who) {
  auto it = logs.find(key);
  if (it != logs.end()) return it->second;
  std::string have;
  for (auto& [k, v] : logs) have += (have.empty() ? "" : ", ") + k;
  fail("{}: monitored value '{}' is not in the logs (have: {}); use validation data for 'val_' values", who, key,
       have);
}

bool improved(double value, double best, bool max, double min_delta) {
  if (std::isnan(value)) return false;
  return max ? value > best + min_delta : value < best - min_delta;
}

json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or(const json& j, double fallback) { return j.is_number() ? j.get<double>() : fallback; }

}  // namespace

bool mode_is_max(Mode mode, const std::string& monitor) {
  if (mode != Mode::Auto) return mode == Mode::Max;
  for (const char* k : {"acc", "precision", "recall", "f1", "auc", "r2"})
    if (monitor.find(k) != std::string::npos) return true;
  return false;
}

std::string format_logs(const Logs& logs) {
  // Training values first, then validation; per-class and bookkeeping keys are left to the log files.
  std::string train, val;
  for (auto& [k, v] : logs) {
    if (k == "epoch" || k == "size" || k == "batch_loss" || k == "samples_per_s" || k == "epoch_s" ||
        k.find("_class_") != std::string::npos)
      continue;
    std::string item = k == "lr" ? fmt::format("{} {:.3g}", k, v) : fmt::format("{} {:.4f}", k, v);
    std::string& dst = k.rfind("val_", 0) == 0 ? val : train;
    dst += (dst.empty() ? "" : " - ") + item;
  }
  if (!val.empty()) train += (train.empty() ? "" : " - ") + val;
  return train;
}

// ---- EarlyStopping ------------------------------------------------------------------

EarlyStopping::EarlyStopping(Options options)
    : opt_(std::move(options)), max_(mode_is_max(opt_.mode, opt_.monitor)), best_(max_ ? -INFINITY : INFINITY) {
  DEFT_CHECK(opt_.patience >= 0, "EarlyStopping: patience must be >= 0, got {}", opt_.patience);
  DEFT_CHECK(opt_.min_delta >= 0, "EarlyStopping: min_delta must be >= 0, got {}", opt_.min_delta);
}

void EarlyStopping::on_train_begin(Model& m) {
  if (opt_.restore_best_weights && best_epoch_ >= 0 && best_weights_.empty()) {
    // Resumed: the best weights were not kept in the checkpoint; start from the current ones.
    for (auto& [name, t] : m.net().state()) best_weights_.emplace_back(name, t.clone());
  }
}

void EarlyStopping::on_epoch_end(Model& m, int64_t epoch, const Logs& logs) {
  const double v = monitored(logs, opt_.monitor, "EarlyStopping");
  if (improved(v, best_, max_, opt_.min_delta)) {
    best_ = v;
    best_epoch_ = epoch;
    wait_ = 0;
    if (opt_.restore_best_weights) {
      best_weights_.clear();
      for (auto& [name, t] : m.net().state()) best_weights_.emplace_back(name, t.clone());
    }
    return;
  }
  if (++wait_ >= std::max<int64_t>(opt_.patience, 1)) {  // Keras: patience epochs without improvement
    stopped_epoch_ = epoch;
    m.stop_training = true;
  }
}

void EarlyStopping::on_train_end(Model& m, const Logs&) {
  if (!opt_.restore_best_weights || best_weights_.empty() || stopped_epoch_ < 0) return;
  std::map<std::string, Tensor> best(best_weights_.begin(), best_weights_.end());
  m.net().load_state(best, "EarlyStopping best weights");
}

json EarlyStopping::state() const {
  return {{"best", number(best_)}, {"wait", wait_}, {"best_epoch", best_epoch_}, {"stopped_epoch", stopped_epoch_}};
}

void EarlyStopping::load_state(const json& j) {
  best_ = number_or(j.value("best", json(nullptr)), max_ ? -INFINITY : INFINITY);
  wait_ = j.value("wait", int64_t{0});
  best_epoch_ = j.value("best_epoch", int64_t{-1});
  stopped_epoch_ = j.value("stopped_epoch", int64_t{-1});
}

// ---- ModelCheckpoint ----------------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(std::string path, Options options)
    : path_(std::move(path)), opt_(std::move(options)), max_(mode_is_max(opt_.mode, opt_.monitor)),
      best_(max_ ? -INFINITY : INFINITY) {
  DEFT_CHECK(!path_.empty(), "ModelCheckpoint: empty path");
}

void ModelCheckpoint::on_epoch_end(Model& m, int64_t, const Logs& logs) {
  if (opt_.save_best_only) {
    const double v = monitored(logs, opt_.monitor, "ModelCheckpoint");
    if (!improved(v, best_, max_, 0)) return;
    best_ = v;
  }
  m.save(path_);
}

void ModelCheckpoint::load_state(const json& j) {
  best_ = number_or(j.value("best", json(nullptr)), max_ ? -INFINITY : INFINITY);
}

// ---- TerminateOnNaN -----------------------------------------------------------------

void TerminateOnNaN::on_batch_end(Model& m, int64_t batch, const Logs& logs) {
  auto it = logs.find("batch_loss");
  if (it != logs.end() && !std::isfinite(it->second)) {
    std::fprintf(stderr, "deft: batch %lld: loss is %s, stopping training\n", static_cast<long long>(batch),
                 std::isnan(it->second) ? "NaN" : "infinite");
    m.stop_training = true;
  }
}

// ---- loggers --------------------------------------------------------------------------

FileLogger::FileLogger(const char* kind, std::string path, bool append)
    : kind_(kind), path_(std::move(path)), append_(append) {}

void FileLogger::on_train_begin(Model& m) {
  const bool resume = append_ || m.epochs_trained() > 0;
  out_.open(path_, resume ? std::ios::app : std::ios::trunc);
  DEFT_CHECK(out_.good(), "{}: cannot write '{}'", kind_, path_);
}

void FileLogger::on_train_end(Model&, const Logs&) { out_.close(); }

void FileLogger::write_line(const std::string& line) {
  out_ << line << '\n';
  out_.flush();  // a crashed or killed run keeps the epochs it finished
}

CsvLogger::CsvLogger(std::string path, bool append) : FileLogger("CsvLogger", std::move(path), append) {}

void CsvLogger::on_train_begin(Model& m) {
  FileLogger::on_train_begin(m);
  columns_.clear();  // taken from the first epoch's logs; the header goes only into an empty file
}

void CsvLogger::on_epoch_end(Model&, int64_t, const Logs& logs) {
  if (columns_.empty()) {
    for (auto& [k, v] : logs) columns_.push_back(k);
    const bool empty_file = out_.tellp() == 0;
    if (empty_file) {
      std::string header;
      for (auto& c : columns_) header += (header.empty() ? "" : ",") + c;
      write_line(header);
    }
  }
  std::string row;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto it = logs.find(columns_[i]);
    if (i) row += ',';
    if (it != logs.end()) row += fmt::format("{}", it->second);
  }
  write_line(row);
}

JsonLinesLogger::JsonLinesLogger(std::string path, bool append)
    : FileLogger("JsonLinesLogger", std::move(path), append) {}

void JsonLinesLogger::on_epoch_end(Model&, int64_t, const Logs& logs) {
  json j = json::object();
  for (auto& [k, v] : logs) j[k] = number(v);
  write_line(j.dump());
}

// ---- ProgressBar --------------------------------------------------------------------

ProgressBar::ProgressBar(std::FILE* out, int force_tty)
    : out_(out), tty_(force_tty < 0 ? isatty(fileno(out)) != 0 : force_tty == 1) {}

void ProgressBar::on_train_begin(Model& m) {
  epochs_ = m.fit_epochs();
  batches_ = m.fit_batches_per_epoch();
}

void ProgressBar::on_epoch_begin(Model&, int64_t) {
  epoch_start_ = now_s();
  last_draw_ = 0;
}

void ProgressBar::on_batch_end(Model&, int64_t batch, const Logs& logs) {
  if (!tty_) return;
  const double t = now_s();
  const bool last = batch + 1 >= batches_;
  if (!last && t - last_draw_ < 0.1) return;
  last_draw_ = t;
  const double done = static_cast<double>(batch + 1) / static_cast<double>(std::max<int64_t>(batches_, 1));
  const int width = 30;
  const int filled = static_cast<int>(done * width);
  std::string bar(static_cast<size_t>(filled), '=');
  if (filled < width) bar += '>' + std::string(static_cast<size_t>(width - filled - 1), '.');
  const double eta = done > 0 ? (t - epoch_start_) * (1 - done) / done : 0;
  Logs shown;
  for (auto& [k, v] : logs)
    if (k != "batch_loss" && k != "size") shown[k] = v;
  std::fprintf(out_, "\r%lld/%lld [%s] ETA %.0fs - %s\033[K", static_cast<long long>(batch + 1),
               static_cast<long long>(batches_), bar.c_str(), eta, format_logs(shown).c_str());
  std::fflush(out_);
}

void ProgressBar::on_epoch_end(Model&, int64_t epoch, const Logs& logs) {
  const double dt = now_s() - epoch_start_;
  if (tty_) std::fputs("\r\033[K", out_);
  std::fprintf(out_, "Epoch %lld/%lld - %.1fs - %s\n", static_cast<long long>(epoch + 1),
               static_cast<long long>(epochs_), dt, format_logs(logs).c_str());
  std::fflush(out_);
}

}  // namespace deft::train

// ---- LearningRateScheduler ------------------------------------------------------------

namespace deft::train {

LearningRateScheduler::LearningRateScheduler(std::shared_ptr<optim::LRSchedule> schedule, std::string monitor)
    : schedule_(std::move(schedule)), monitor_(std::move(monitor)) {
  DEFT_CHECK(schedule_ != nullptr, "LearningRateScheduler: no schedule");
}

void LearningRateScheduler::on_train_begin(Model& m) {
  DEFT_CHECK(m.optimizer() != nullptr, "LearningRateScheduler: the model has no optimizer");
  // The base lr is the optimizer's configured one, also when resuming (its lr then
  // holds the schedule's last value, which must not become the new base).
  if (pending_.is_null()) base_lr_ = m.optimizer()->config().value("lr", m.optimizer()->lr());
  schedule_->begin(base_lr_, m.fit_batches_per_epoch(), m.fit_epochs());
  if (!pending_.is_null()) schedule_->load_state(pending_);
  pending_ = nullptr;
}

void LearningRateScheduler::on_epoch_begin(Model& m, int64_t epoch) {
  epoch_ = epoch;
  if (!schedule_->per_batch()) m.optimizer()->set_lr(schedule_->lr(epoch, m.optimizer()->steps()));
}

void LearningRateScheduler::on_batch_begin(Model& m, int64_t) {
  if (schedule_->per_batch()) m.optimizer()->set_lr(schedule_->lr(epoch_, m.optimizer()->steps()));
}

void LearningRateScheduler::on_epoch_end(Model&, int64_t, const Logs& logs) {
  if (schedule_->needs_metric()) schedule_->observe(monitored(logs, monitor_, "LearningRateScheduler"));
}

nlohmann::json LearningRateScheduler::state() const {
  return {{"base_lr", base_lr_}, {"schedule", schedule_->begun() ? schedule_->state_json() : nlohmann::json(nullptr)}};
}

void LearningRateScheduler::load_state(const nlohmann::json& j) {
  base_lr_ = j.value("base_lr", 0.0);
  pending_ = j.value("schedule", nlohmann::json(nullptr));
}

}  // namespace deft::train
