#include "deft/tune/auto.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "deft/data/split.h"
#include "deft/nn/zoo.h"
#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/parallel.h"
#include "deft/track/run_store.h"
#include "deft/train/callbacks.h"
#include "deft/train/run.h"
#include "deft/train/run_recorder.h"
#include "deft/train/tensorboard_logger.h"
#include "deft/tune/report_builder.h"
#include "deft/tune/study.h"

namespace deft::tune {

using json = nlohmann::json;
using track::unix_now;

namespace {

constexpr int64_t kMaxFinalEpochs = 30;

struct SpaceDim {
  std::string name;
  Distribution dist;
  json when = json::object();
};

// Reports each epoch's validation value to the trial, prunes, and stops at the deadline.
class TrialCallback : public train::Callback {
 public:
  TrialCallback(Trial& trial, std::string key, bool maximize, int64_t* epochs_budget, int64_t max_epochs)
      : trial_(trial), key_(std::move(key)), maximize_(maximize), epochs_budget_(epochs_budget), max_epochs_(max_epochs) {}
  std::string name() const override { return "TrialCallback"; }
  void on_batch_end(train::Model& m, int64_t, const train::Logs&) override {
    if (trial_.should_stop()) {
      m.stop_training = true;
      stopped = true;
    }
  }
  void on_epoch_end(train::Model& m, int64_t epoch, const train::Logs& logs) override {
    auto it = logs.find(key_);
    const double v = it == logs.end() ? NAN : it->second;
    if (std::isfinite(v) && (!best || (maximize_ ? v > *best : v < *best))) best = v;
    last = v;
    epochs_done = epoch + 1;
    epoch_s.push_back(logs.at("epoch_s"));
    if (stopped) return;  // a partial epoch: not a value at this resource
    trial_.report(v, epoch + 1);
    if (epochs_budget_ && --*epochs_budget_ <= 0) {
      m.stop_training = true;
      stopped = true;
      return;
    }
    // the last epoch ends the trial as complete: nothing is saved by pruning it
    if (epoch + 1 < max_epochs_ && trial_.should_prune()) {
      m.stop_training = true;
      pruned = true;
    }
  }
  std::optional<double> best;
  double last = NAN;
  int64_t epochs_done = 0;
  std::vector<double> epoch_s;
  bool pruned = false;
  bool stopped = false;

 private:
  Trial& trial_;
  std::string key_;
  bool maximize_;
  int64_t* epochs_budget_;
  int64_t max_epochs_;
};

// The callbacks that record a trial's or the final training's run: every tracking
// callback of deft auto is added here. With `tensorboard` set, the run's event files go
// there, its hparams session grouped under the study (no per-trial experiment: the
// hparams tab builds one table from every trial's session_start_info); with `validation`
// (the trials' held-out images), a grid of its predictions and its confusion matrix.
train::Callbacks tracking_callbacks(track::RunStore& runs, int64_t run_id, const std::string& tensorboard,
                                    const json& config, const json& params, const std::string& study,
                                    const data::Dataset* validation = nullptr) {
  train::Callbacks cbs = {std::make_shared<train::RunRecorder>(runs, run_id)};
  if (!tensorboard.empty()) {
    runs.set_artifact(run_id, "tensorboard", std::filesystem::absolute(tensorboard).lexically_normal().string());
    cbs.push_back(train::make_tensorboard_logger(tensorboard, {.config = config,
                                                               .hparams = train::hparams_from_config(params),
                                                               .group_name = study,
                                                               .validation = validation ? std::optional(*validation)
                                                                                        : std::nullopt,
                                                               .write_experiment = false}));
  }
  return cbs;
}

// The run store's summary of deft auto's final model: its test_* and val_* metrics,
// the epochs, the wall time, the best trial and the trial counts.
json final_summary(const json& m, const std::string& final_mode, int64_t best_trial) {
  json s = {{"final", final_mode}, {"best_trial", best_trial}};
  for (const char* split : {"test", "val"})
    if (m[split].is_object())
      for (auto it = m[split].begin(); it != m[split].end(); ++it)
        if (it.value().is_number()) s[std::string(split) + "_" + it.key()] = it.value();
  for (const char* k : {"epochs", "wall_s", "train_samples_per_s", "peak_rss_mib"})
    if (m.contains(k) && m[k].is_number()) s[k] = m[k];
  for (auto it = m["trials"].begin(); it != m["trials"].end(); ++it) s["trials_" + it.key()] = it.value();
  return s;
}

// The final training's learning rate: a linear warmup over the first 3% of the time, then
// cosine annealing to 0 over the time the training has, which is the final phase's
// budget or, when that is more than max_epochs need, the time they take (re-estimated
// after every epoch). Stops at the deadline. Time-based, so the schedule ends annealed
// however fast the machine turns out to be.
class TimeCosine : public train::Callback {
 public:
  TimeCosine(double budget_s, int64_t max_epochs) : budget_s_(budget_s), max_epochs_(max_epochs) {}
  std::string name() const override { return "TimeCosine"; }
  void on_train_begin(train::Model& m) override {
    base_lr_ = m.optimizer()->lr();
    t0_ = unix_now();
    duration_ = budget_s_;
  }
  void on_batch_begin(train::Model& m, int64_t) override {
    const double f = std::clamp((unix_now() - t0_) / duration_, 0.0, 1.0);
    const double warm = 0.03;
    const double lr = f < warm ? base_lr_ * (0.1 + 0.9 * f / warm)
                               : base_lr_ * 0.5 * (1 + std::cos(M_PI * (f - warm) / (1 - warm)));
    m.optimizer()->set_lr(lr);
  }
  void on_batch_end(train::Model& m, int64_t, const train::Logs&) override {
    if (unix_now() - t0_ >= budget_s_) {
      m.stop_training = true;
      hit_deadline = true;
    }
  }
  void on_epoch_end(train::Model&, int64_t epoch, const train::Logs&) override {
    const double per_epoch = (unix_now() - t0_) / static_cast<double>(epoch + 1);
    duration_ = std::min(budget_s_, per_epoch * static_cast<double>(max_epochs_));
  }
  bool hit_deadline = false;

 private:
  double budget_s_;
  int64_t max_epochs_;
  double base_lr_ = 0, t0_ = 0, duration_ = 1;
};

std::string fmt_duration(double s) {
  if (s < 0) s = 0;
  const auto t = static_cast<int64_t>(std::lround(s));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

std::string short_params(const json& p) {
  std::string out;
  for (auto it = p.begin(); it != p.end(); ++it) {
    if (!out.empty()) out += " ";
    std::string v = it.value().is_string() ? it.value().get<std::string>()
                    : it.value().is_number_float() ? fmt::format("{:.3g}", it.value().get<double>())
                                                   : it.value().dump();
    out += it.key() + "=" + v;
  }
  return out;
}

bool metric_maximized(const std::string& metric) { return metric != "loss" && metric != "mse" && metric != "mae"; }

// The training config of a trial's parameters (families and knobs as deft train reads them).
json config_from_params(const json& base, const json& p) {
  json c = base;
  c["model"] = p.at("model");
  for (const char* k : {"lr", "batch_size", "optimizer", "weight_decay", "width", "depth", "dropout", "activation"})
    if (p.contains(k)) c[k] = p[k];
  if (p.contains("hidden_units")) {
    const int64_t layers = p.value("hidden_layers", int64_t{1});
    c["hidden"] = std::vector<int64_t>(static_cast<size_t>(layers), p["hidden_units"].get<int64_t>());
  }
  if (p.contains("augment")) c["augment"] = p["augment"].get<std::string>() == "none" ? "" : p["augment"];
  if (p.contains("label_smoothing")) c["label_smoothing"] = p["label_smoothing"];
  return c;
}

// The search space, define-by-run: conditional on the family.
json suggest_params(Trial& t, const std::vector<std::string>& families, bool images) {
  const std::string fam = t.suggest_categorical("model", families);
  t.suggest_float("lr", 1e-4, 1e-2, true);
  t.suggest_categorical("batch_size", std::vector<json>{64, 128, 256});
  const std::string opt = t.suggest_categorical("optimizer", std::vector<std::string>{"adam", "adamw"});
  if (opt == "adamw") t.suggest_float("weight_decay", 1e-5, 1e-1, true);
  if (fam == "mlp") {
    t.suggest_int("hidden_units", 64, 1024, true);
    t.suggest_int("hidden_layers", 1, 3);
    t.suggest_float("dropout", 0.0, 0.5);
  } else if (fam != "linear") {
    t.suggest_float("width", 0.5, 1.5);
    t.suggest_float("dropout", 0.0, 0.5);
    if (fam == "simple_cnn") t.suggest_int("depth", 1, 3);
    if (fam == "vgg_small") t.suggest_int("depth", 2, 3);
    if (fam == "resnet_small") t.suggest_categorical("depth", std::vector<json>{8, 14, 20});
  }
  if (images && fam != "linear") t.suggest_categorical("augment", std::vector<std::string>{"none", "crop:2,flip:0.5"});
  if (fam != "linear") t.suggest_float("label_smoothing", 0.0, 0.1);
  return t.params();
}

const std::vector<std::string>& space_keys() {
  static const std::vector<std::string> k = {"model", "lr", "batch_size", "optimizer", "weight_decay", "width", "depth",
                                             "dropout", "activation", "hidden_units", "hidden_layers", "augment",
                                             "label_smoothing"};
  return k;
}

// The search space of a YAML (or JSON) file, in file order:
//   model: [simple_cnn, mlp]                         # a list: one of these
//   lr: {low: 1.0e-4, high: 1.0e-2, log: true}       # a float range (step: for a grid)
//   hidden_units: {low: 64, high: 512, log: true, type: int}   # ints: type int, or integer bounds
//   depth: {low: 1, high: 3, when: {model: simple_cnn}}        # only when earlier values match
//   optimizer: adam                                  # a single value: fixed
// Keys are the training-config keys space_keys() lists; what the file leaves out takes the
// family's default. InputError names the file and the key.
std::vector<SpaceDim> read_space_file(const std::string& path) {
  const json j = train::load_config_file(path);
  std::vector<SpaceDim> dims;
  // load_config_file gives an ordered view only through YAML iteration order; nlohmann's
  // object is sorted, so "model" first, then the rest: conditions may only refer to model
  // or to keys sorted before them.
  std::vector<std::string> order;
  if (j.contains("model")) order.push_back("model");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (it.key() != "model") order.push_back(it.key());
  for (const std::string& key : order) {
    const json& v = j[key];
    DEFT_CHECK(std::find(space_keys().begin(), space_keys().end(), key) != space_keys().end(),
               "{}: unknown search-space key '{}' (valid: {})", path, key, fmt::join(space_keys(), ", "));
    SpaceDim d;
    d.name = key;
    try {
      if (v.is_array()) {
        d.dist = Distribution::categorical(v.get<std::vector<json>>());
      } else if (v.is_object()) {
        json r = v;
        if (r.contains("when")) {
          d.when = r["when"];
          DEFT_CHECK(d.when.is_object(), "'when' must map earlier keys to a value or a list of values");
          r.erase("when");
        }
        if (r.contains("choices")) {
          d.dist = Distribution::categorical(r["choices"].get<std::vector<json>>());
        } else {
          DEFT_CHECK(r.contains("low") && r.contains("high"), "a range needs 'low' and 'high', got {}", v.dump());
          const bool is_int = r.value("type", std::string(r["low"].is_number_integer() && r["high"].is_number_integer()
                                                              ? "int" : "float")) == "int";
          d.dist = is_int ? Distribution::int_range(r["low"].get<int64_t>(), r["high"].get<int64_t>(),
                                                    r.value("log", false), r.value("step", int64_t{1}))
                          : Distribution::float_range(r["low"].get<double>(), r["high"].get<double>(),
                                                      r.value("log", false), r.value("step", 0.0));
        }
      } else {
        d.dist = Distribution::categorical({v});
      }
    } catch (const InputError& e) {
      fail("{}: search-space key '{}': {}", path, key, e.what());
    } catch (const json::exception& e) {
      fail("{}: search-space key '{}': {}", path, key, e.what());
    }
    for (auto it = d.when.begin(); it != d.when.end(); ++it)
      DEFT_CHECK(std::any_of(dims.begin(), dims.end(), [&](const SpaceDim& x) { return x.name == it.key(); }),
                 "{}: search-space key '{}': its condition names '{}', which is not an earlier key", path, key, it.key());
    dims.push_back(std::move(d));
  }
  return dims;
}

json suggest_from_space(Trial& t, const std::vector<SpaceDim>& dims, const std::vector<std::string>& families) {
  bool has_model = false;
  for (const SpaceDim& d : dims) {
    has_model |= d.name == "model";
    bool active = true;
    const json chosen = t.params();
    for (auto it = d.when.begin(); it != d.when.end(); ++it) {
      const json& want = it.value();
      const bool match = chosen.contains(it.key()) &&
                         (want.is_array() ? std::find(want.begin(), want.end(), chosen[it.key()]) != want.end()
                                          : chosen[it.key()] == want);
      active = active && match;
    }
    if (active) t.suggest(d.name, d.dist);
  }
  if (!has_model) t.suggest_categorical("model", families);
  return t.params();
}

// Seconds per training example of a family at default knobs, from a few timed steps.
double time_family(const json& base, const std::string& fam, const data::Dataset& train, int threads) {
  ThreadCountScope scope(threads);
  json c = base;
  c["model"] = fam;
  c["batch_size"] = 128;
  c["verbose"] = 0;
  const int64_t n = std::min<int64_t>(train.size(), 128 * 4);
  std::vector<int64_t> idx(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) idx[static_cast<size_t>(i)] = i;
  const data::Dataset small = train.subset(idx);
  train::PreparedFit p = train::prepare_fit(train::TrainConfig::from_json(c), small, nullptr);
  p.options.epochs = 1;
  p.options.verbose = 0;
  p.options.workers = 0;
  p.model.fit(small, p.options);  // warm-up: builds the net, primitives, caches
  p.options.epochs = 2;
  const double t0 = unix_now();
  p.model.fit(small, p.options);
  return (unix_now() - t0) / static_cast<double>(n);
}

}  // namespace

std::string leaderboard_table(const std::vector<track::TrialRecord>& trials, const std::vector<track::Direction>& dirs,
                              size_t max_rows) {
  std::vector<const track::TrialRecord*> rows;
  for (const auto& t : trials)
    if (t.state == TrialState::Complete || t.state == TrialState::Pruned) rows.push_back(&t);
  const bool mx = !dirs.empty() && dirs[0] == Direction::Maximize;
  auto key = [&](const track::TrialRecord* t) {
    // complete before pruned, then by value; pruned by their last step too
    const double v = t->values.empty() || !std::isfinite(t->values[0]) ? (mx ? -1e300 : 1e300) : t->values[0];
    return std::make_tuple(t->state == TrialState::Complete ? 0 : 1, t->state == TrialState::Complete ? 0 : -t->last_step().value_or(0),
                           mx ? -v : v);
  };
  std::stable_sort(rows.begin(), rows.end(), [&](auto* a, auto* b) { return key(a) < key(b); });
  std::string out = fmt::format("{:>5}  {:<8}  {:>8}  {:>6}  {:>8}  {}\n", "trial", "state", "value", "epochs", "time", "params");
  size_t shown = 0;
  for (const auto* t : rows) {
    if (shown++ >= max_rows) break;
    const std::string v = t->values.empty() ? "-" : fmt::format("{:.4f}", t->values[0]);
    out += fmt::format("{:>5}  {:<8}  {:>8}  {:>6}  {:>8}  {}\n", t->number, track::to_string(t->state), v,
                       t->last_step().value_or(0), fmt_duration(t->end_time > 0 ? t->end_time - t->start_time : 0),
                       short_params(t->param_json()));
  }
  if (rows.size() > max_rows) out += fmt::format("  ... {} more\n", rows.size() - max_rows);
  return out;
}

AutoResult run_auto(const AutoOptions& o) {
  const double t_start = unix_now();
  DEFT_CHECK(o.time_budget_s > 0, "auto: --time-budget must be positive");
  DEFT_CHECK(o.workers >= 1, "auto: --workers must be >= 1, got {}", o.workers);
  DEFT_CHECK(o.search_fraction > 0 && o.search_fraction < 1, "auto: search_fraction must be in (0, 1)");
  const double deadline = t_start + o.time_budget_s;
  const int total_threads = o.threads > 0 ? o.threads : num_threads();
  if (o.threads > 0) set_num_threads(o.threads);
  auto say = [&](const std::string& s) {
    if (o.verbose > 0) {
      std::fputs(s.c_str(), stdout);
      std::fflush(stdout);
    }
  };

  // 1. data
  json base = {{"data", o.data}, {"seed", o.seed}, {"verbose", o.verbose >= 2 ? 1 : 0}, {"workers", -1}};
  if (!o.target.empty()) base["target"] = o.target;
  const train::TrainConfig data_cfg = train::TrainConfig::from_json(base);
  data::DatasetSplits splits = train::load_training_data(data_cfg);
  const data::Dataset& full_train = splits.train;
  const bool images = full_train.is_image();
  const bool classify = full_train.task == data::Task::Classification;
  std::string metric = o.metric;
  if (!classify && metric == "accuracy") metric = "loss";
  const bool maximize = metric_maximized(metric);
  // validation for the search: the data's own, else 10% of train (stratified)
  data::Dataset search_pool, val;
  if (splits.validation) {
    search_pool = full_train;
    val = *splits.validation;
  } else {
    auto parts = data::split_indices(full_train.size(), {0.9, 0.1}, o.seed ^ 0x5eedULL,
                                     classify ? full_train.labels : Tensor());
    search_pool = full_train.subset(parts[0]);
    val = full_train.subset(parts[1]);
  }
  DEFT_CHECK(full_train.size() >= 20, "auto: {} has only {} training examples; deft auto needs at least 20", o.data,
             full_train.size());

  // 2. families and their cost
  const std::vector<SpaceDim> space = o.space_file.empty() ? std::vector<SpaceDim>{} : read_space_file(o.space_file);
  std::vector<std::string> candidates = o.models;
  const bool user_families = !o.models.empty() || std::any_of(space.begin(), space.end(), [](const SpaceDim& d) {
    return d.name == "model";
  });
  for (const SpaceDim& d : space)
    if (d.name == "model" && candidates.empty())
      for (const json& c : d.dist.choices) {
        DEFT_CHECK(c.is_string() && nn::is_model_family(c.get<std::string>()), "{}: model {} is not a model family (valid: {})",
                   o.space_file, c.dump(), fmt::join(nn::model_family_names(), ", "));
        candidates.push_back(c.get<std::string>());
      }
  if (candidates.empty())
    candidates = images ? std::vector<std::string>{"simple_cnn", "lenet5", "vgg_small", "resnet_small", "mlp"}
                        : std::vector<std::string>{"mlp", "linear"};
  const double final_share = o.time_budget_s * (1.0 - o.search_fraction);  // at most this for finalising
  const int per_worker = std::max(1, total_threads / o.workers);
  std::map<std::string, double> cost;  // seconds per example, at default knobs, at the trial's threads
  std::vector<std::string> families;
  const int64_t min_final_epochs = 5;
  for (const auto& fam : candidates) {
    const double s = time_family(base, fam, search_pool, per_worker);
    cost[fam] = s;
    // the final training runs with all threads: ~1.8x faster on 2 than 1 (measured conv nets)
    const double final_epoch_s = s * static_cast<double>(full_train.size()) * (per_worker < total_threads ? 0.55 : 1.0);
    if (final_epoch_s * min_final_epochs <= final_share || user_families) families.push_back(fam);
    say(fmt::format("deft auto: {:<13} {:.3f} ms/example -> {} s/epoch on all of train{}\n", fam, s * 1e3,
                    static_cast<int64_t>(final_epoch_s),
                    final_epoch_s * min_final_epochs <= final_share || user_families ? "" : "  (too slow for this budget: skipped)"));
  }
  // The final phase needs at most kMaxFinalEpochs epochs of the costliest family chosen
  // (plus the test pass); whatever the data does not need of its share goes to the search.
  double final_need = 0;
  for (const auto& fam : families)
    final_need = std::max(final_need, cost[fam] * static_cast<double>(full_train.size()) *
                                          (per_worker < total_threads ? 0.55 : 1.0) * kMaxFinalEpochs * 1.15);
  const double final_s = std::min(final_share, final_need + 2.0 + 0.02 * o.time_budget_s);
  const double search_s = std::max(0.0, o.time_budget_s - final_s - (unix_now() - t_start));
  if (families.empty()) {  // nothing fits: the cheapest one
    auto it = std::min_element(cost.begin(), cost.end(), [](auto& a, auto& b) { return a.second < b.second; });
    families.push_back(it->first);
  }
  // Trial subset: an epoch of the median family should take ~1/40 of the search budget,
  // and an unpruned trial of the costliest family at most a third of it (the first
  // trials run to the top rung: nothing has been seen to prune them against).
  std::vector<double> costs;
  for (auto& f : families) costs.push_back(cost[f]);
  std::sort(costs.begin(), costs.end());
  const double med = costs[costs.size() / 2];
  const double per_worker_s = search_s * static_cast<double>(o.workers);
  int64_t n_search = o.search_examples > 0
                         ? o.search_examples
                         : static_cast<int64_t>(std::min(per_worker_s / 40.0 / med,
                                                         per_worker_s / 3.0 / static_cast<double>(o.max_trial_epochs) / costs.back()));
  n_search = std::clamp<int64_t>(n_search, std::min<int64_t>(search_pool.size(), 2000), search_pool.size());
  data::Dataset search_train = search_pool;
  if (n_search < search_pool.size()) {
    auto parts = data::split_indices(search_pool.size(),
                                     {static_cast<double>(n_search) / static_cast<double>(search_pool.size())},
                                     o.seed ^ 0xabcULL, classify ? search_pool.labels : Tensor());
    search_train = search_pool.subset(parts[0]);
  }
  say(fmt::format("deft auto: {} | families {} | trials on {} of {} training examples, validation {} | "
                  "search {} then final {} | {} worker(s) x {} thread(s)\n",
                  data::describe_splits(splits), fmt::join(families, ", "), search_train.size(), full_train.size(),
                  val.size(), fmt_duration(search_s), fmt_duration(final_s), o.workers, per_worker));

  // 3. search
  const std::string url = o.storage.empty() ? "sqlite:///deft.db" : o.storage;
  std::shared_ptr<track::StudyStore> store = track::open_study_store(url);
  std::unique_ptr<track::RunStore> runs = track::open_run_store(url);  // every trial and the final training
  track::RunSignalGuard signal_guard(*runs);
  std::string study_name = o.study;
  if (study_name.empty()) {
    std::string stem = std::filesystem::path(o.data).filename().string();
    if (stem.empty()) stem = "data";
    study_name = fmt::format("auto-{}-{}", stem, static_cast<int64_t>(t_start));
  }
  if (auto existing = store->find_study(study_name); existing && existing->n_trials > 0 && !o.resume)
    fail("auto: study '{}' already has {} trials in {}; pass --resume to continue it, or choose another --study",
         study_name, existing->n_trials, url);
  json sampler_opts = {{"seed", o.seed}};
  if (o.sampler == "tpe") {
    sampler_opts["constant_liar"] = o.workers > 1;
    sampler_opts["multivariate"] = true;
    sampler_opts["n_startup_trials"] = 8;
  }
  json pruner_opts = json::object();
  if (o.pruner == "asha") pruner_opts = {{"min_resource", 1}, {"reduction_factor", 3}};
  if (o.pruner == "hyperband") pruner_opts = {{"min_resource", 1}, {"max_resource", o.max_trial_epochs}, {"reduction_factor", 3}};
  Study study(store, study_name, {maximize ? Direction::Maximize : Direction::Minimize}, make_sampler(o.sampler, sampler_opts),
              make_pruner(o.pruner, pruner_opts));
  store->set_study_user_attr(study.id(), "data", o.data);
  store->set_study_user_attr(study.id(), "metric", "val_" + metric);
  store->set_study_user_attr(study.id(), "families", families);
  store->set_study_user_attr(study.id(), "dataset", o.data);
  if (!o.target.empty()) store->set_study_user_attr(study.id(), "target", o.target);

  std::mutex best_mu;
  double best_value = maximize ? -INFINITY : INFINITY;
  const std::filesystem::path out_path(o.out.empty() ? "best.deft" : o.out);
  const std::string best_trial_model = out_path.string() + ".best-trial.deft";
  {
    std::error_code ec;
    std::filesystem::remove(best_trial_model, ec);  // a previous run's, not this search's
  }
  int64_t epochs_left = o.max_total_epochs > 0 ? o.max_total_epochs : 0;
  std::mutex epochs_mu;
  const double search_deadline = unix_now() + search_s;

  // Each trial is a run (command "trial"): finished, finished with summary.pruned when
  // the pruner stopped it, killed when a budget or the deadline cut it short, failed
  // when it threw.
  // TensorBoard: <root>/<study>/trial-<n>/ and <root>/<study>/final/.
  const auto tb_dir = [&](const std::string& run) {
    return o.tensorboard.empty() ? std::string() : (std::filesystem::path(o.tensorboard) / track::log_dir_name(study_name) / run).string();
  };
  auto objective = [&](Trial& t) -> std::vector<double> {
    const json p = space.empty() ? suggest_params(t, families, images) : suggest_from_space(t, space, families);
    json c = config_from_params(base, p);
    c["epochs"] = o.max_trial_epochs;
    c["seed"] = o.seed + static_cast<uint64_t>(t.number());
    track::RunRecord run;
    run.name = fmt::format("{}-trial-{}", study_name, t.number());
    run.command = "trial";
    run.study = study_name;
    run.trial_number = t.number();
    run.config = c;
    run.params = p;
    run.system = track::system_info();
    const int64_t run_id = track::create_run_unique(*runs, run);
    signal_guard.watch(run_id);
    track::RunStatus end_status = track::RunStatus::Killed;
    json end_summary = json::object();
    try {
      const train::TrainConfig tc = train::TrainConfig::from_json(c);
      runs->set_config(run_id, tc.raw);
      train::PreparedFit pf = train::prepare_fit(tc, search_train, &val);
      int64_t budget_epochs = 0;
      if (o.max_total_epochs > 0) {
        std::lock_guard<std::mutex> lk(epochs_mu);
        budget_epochs = std::min<int64_t>(o.max_trial_epochs, epochs_left);
        if (budget_epochs <= 0) {
          study.stop();
          end_summary = {{"stopped", "epoch budget"}, {"epochs", 0}};
          throw TrialPruned();
        }
        epochs_left -= budget_epochs;  // reserved; unused epochs are returned below
      }
      auto cb = std::make_shared<TrialCallback>(t, "val_" + metric, maximize, budget_epochs > 0 ? &budget_epochs : nullptr,
                                                o.max_trial_epochs);
      pf.options.callbacks.push_back(cb);
      for (auto& tracking : tracking_callbacks(*runs, run_id, tb_dir(fmt::format("trial-{}", t.number())), c, p, study_name, &val))
        pf.options.callbacks.push_back(tracking);
      pf.options.verbose = o.verbose >= 2 ? 1 : 0;
      pf.model.fit(search_train, pf.options);
      if (o.max_total_epochs > 0) {
        std::lock_guard<std::mutex> lk(epochs_mu);
        epochs_left += budget_epochs;
      }
      t.set_user_attr("epochs", cb->epochs_done);
      t.set_user_attr("epoch_s", cb->epoch_s);
      t.set_user_attr("parameters", pf.model.net().num_parameters());
      t.set_user_attr("train_examples", search_train.size());
      const std::string stopped =
          cb->stopped ? (budget_epochs > 0 || o.max_total_epochs == 0 ? "time budget" : "epoch budget") : "";
      if (cb->stopped) t.set_user_attr("stopped", stopped);
      end_summary = {{"epochs", cb->epochs_done}, {"parameters", pf.model.net().num_parameters()},
                     {"train_examples", search_train.size()}};
      if (std::isfinite(cb->last)) end_summary["val_" + metric] = cb->last;
      if (cb->best) end_summary["best_val_" + metric] = *cb->best;
      if (cb->pruned || cb->stopped) {
        if (cb->stopped || t.should_stop()) {
          end_summary["stopped"] = cb->stopped ? stopped : "deadline";
        } else {
          end_status = track::RunStatus::Finished;
          end_summary["pruned"] = true;
        }
        throw TrialPruned();
      }
      const double value = cb->last;
      {
        std::lock_guard<std::mutex> lk(best_mu);
        if (std::isfinite(value) && (maximize ? value > best_value : value < best_value)) {
          best_value = value;
          pf.model.provenance()["trial"] = t.number();
          pf.model.provenance()["study"] = study_name;
          pf.model.save(best_trial_model);
        }
      }
      end_summary["value"] = value;
      if (std::isnan(value)) {
        end_summary["error"] = "the objective returned NaN";
        runs->finish_run(run_id, track::RunStatus::Failed, end_summary);
      } else {
        runs->finish_run(run_id, track::RunStatus::Finished, end_summary);
      }
      signal_guard.unwatch(run_id);
      return {value};
    } catch (const TrialPruned&) {
      signal_guard.unwatch(run_id);
      try {
        runs->finish_run(run_id, end_status, end_summary);
      } catch (const std::exception&) {  // the trial's end is the study's; the run store only records it
      }
      throw;
    } catch (const std::exception& e) {
      signal_guard.unwatch(run_id);
      end_summary["error"] = e.what();
      try {
        runs->finish_run(run_id, track::RunStatus::Failed, end_summary);
      } catch (const std::exception&) {
      }
      throw;
    }
  };

  OptimizeOptions oo;
  oo.n_trials = o.max_trials;
  oo.timeout_s = std::max(1.0, search_deadline - unix_now());
  oo.workers = o.workers;
  oo.threads = total_threads;
  oo.converge_patience = 30;  // 30 finished trials without a better value: converged
  int64_t n_done = 0, n_pruned = 0, n_failed = 0;
  oo.on_trial_end = [&](const Study&, const TrialRecord& r) {
    if (r.state == TrialState::Complete) ++n_done;
    if (r.state == TrialState::Pruned) ++n_pruned;
    if (r.state == TrialState::Fail) ++n_failed;
    const std::string v = r.values.empty() ? "-" : fmt::format("{:.4f}", r.values[0]);
    say(fmt::format("[{:>6}] trial {:>3} {:<8} val_{} {} after {} epoch(s) | done {} pruned {} failed {} | best {:.4f} | "
                    "{} left | {}\n",
                    fmt_duration(unix_now() - t_start), r.number, track::to_string(r.state), metric, v,
                    r.last_step().value_or(0), n_done, n_pruned, n_failed, best_value, fmt_duration(deadline - unix_now()),
                    short_params(r.param_json())));
    if (r.state == TrialState::Fail && r.user_attrs.contains("fail_reason"))
      say(fmt::format("         failed: {}\n", r.user_attrs["fail_reason"].dump()));
  };
  study.optimize(objective, oo);

  // 4. finalise
  const std::vector<TrialRecord> all = study.trials();
  // The best complete trial; when the budget let none complete, the pruned (or stopped)
  // trial that got furthest, best value first; when none reported anything, the first
  // trial's configuration.
  TrialRecord best;
  bool have_best = false;
  for (const auto& t : all)
    if (t.state == TrialState::Complete && !t.values.empty() && std::isfinite(t.values[0]) &&
        (!have_best || better(t.values[0], best.values[0], study.directions()[0]))) {
      best = t;
      have_best = true;
    }
  if (!have_best)
    for (const auto& t : all) {
      if (t.state != TrialState::Pruned || t.values.empty() || !std::isfinite(t.values[0])) continue;
      const int64_t step = t.last_step().value_or(0), best_step = have_best ? best.last_step().value_or(0) : -1;
      if (!have_best || step > best_step || (step == best_step && better(t.values[0], best.values[0], study.directions()[0]))) {
        best = t;
        have_best = true;
      }
    }
  if (!have_best)
    for (const auto& t : all)
      if (!t.params.empty() && t.params.count("model")) {
        best = t;
        best.values = {NAN};
        have_best = true;
        break;
      }
  DEFT_CHECK(have_best, "auto: study '{}' has no trial to build a model from: the budget of {} ended before the "
             "first trial started; give a longer --time-budget", study_name, fmt_duration(o.time_budget_s));
  if (best.values.empty()) best.values = {NAN};
  if (best.state != TrialState::Complete)
    say(fmt::format("deft auto: no trial completed within the search budget; finalising trial {} ({}, {} epochs)\n",
                    best.number, track::to_string(best.state), best.last_step().value_or(0)));
  const json best_params = best.param_json();
  json fc = config_from_params(base, best_params);
  const double trial_epoch_s = [&] {
    std::vector<double> es;
    if (best.user_attrs.contains("epoch_s"))
      for (auto& x : best.user_attrs["epoch_s"]) es.push_back(x.get<double>());
    if (es.empty()) return cost[best_params["model"].get<std::string>()] * static_cast<double>(search_train.size());
    std::sort(es.begin(), es.end());
    return es[es.size() / 2];
  }();
  const double scale = static_cast<double>(full_train.size()) / static_cast<double>(search_train.size()) *
                       (per_worker < total_threads ? 0.55 : 1.0);
  const double final_epoch_s = trial_epoch_s * scale + 0.02 * trial_epoch_s;
  const double final_left = deadline - unix_now() - std::min(10.0, 0.03 * o.time_budget_s);  // test pass, writing
  const int64_t fit_epochs = static_cast<int64_t>(std::floor(final_left / final_epoch_s));
  const int64_t best_epochs = best.last_step().value_or(o.max_trial_epochs);
  std::string final_mode;
  train::Model final_model;
  train::History final_history;
  json final_cfg = fc;
  // Retrain when the time left lets the final training see at least as many examples as
  // the best trial did (all of train for fewer epochs beats a subset for more), and at
  // least 2 epochs for the cosine to anneal over.
  const bool can_retrain = fit_epochs >= 2 && static_cast<double>(fit_epochs) * static_cast<double>(full_train.size()) >=
                                                  static_cast<double>(best_epochs) * static_cast<double>(search_train.size());
  // The final training (or the best trial's model kept) is a run too: command "auto",
  // named after the study; failed with the error when finalising throws.
  track::RunRecord final_run;
  final_run.name = study_name + "-final";
  final_run.command = "auto";
  final_run.study = study_name;
  final_run.config = final_cfg;
  final_run.params = best_params;
  final_run.system = track::system_info();
  const int64_t final_run_id = track::create_run_unique(*runs, final_run);
  signal_guard.watch(final_run_id);
  try {
    if (can_retrain || !std::filesystem::exists(best_trial_model)) {
      final_cfg["epochs"] = kMaxFinalEpochs;
      final_cfg["schedule"] = nullptr;  // TimeCosine below: a cosine over the final phase's time
      say(fmt::format("deft auto: best trial {} (val_{} {:.4f}); retraining it on all {} training examples for {} "
                      "(about {} epochs, cosine learning rate over the time)\n",
                      best.number, metric, best.values[0], full_train.size(), fmt_duration(final_left),
                      std::min(fit_epochs, kMaxFinalEpochs)));
      train::PreparedFit pf = train::prepare_fit(train::TrainConfig::from_json(final_cfg), full_train, nullptr);
      auto tc = std::make_shared<TimeCosine>(std::max(1.0, final_left), kMaxFinalEpochs);
      pf.options.callbacks.push_back(tc);
      for (auto& tracking : tracking_callbacks(*runs, final_run_id, tb_dir("final"), final_cfg, best_params, study_name))
        pf.options.callbacks.push_back(tracking);
      pf.options.verbose = o.verbose >= 2 ? 1 : 0;
      runs->set_config(final_run_id, final_cfg);
      final_history = pf.model.fit(full_train, pf.options);
      final_model = std::move(pf.model);
      final_mode = fmt::format("retrained on train + validation for {} epochs", final_model.epochs_trained());
      if (tc->hit_deadline) final_mode += " (the last one cut at the deadline)";
    } else {
      final_mode = "the best trial's model (no time left to retrain)";
      final_model = train::Model::load(best_trial_model);
    }
    std::error_code ec;
    std::filesystem::remove(best_trial_model, ec);

    // evaluation, files
    train::Evaluation test_ev;
    if (splits.test) test_ev = final_model.evaluate_full(*splits.test, {.batch_size = 256});
    const train::Evaluation val_ev = final_model.evaluate_full(val, {.batch_size = 256});
    final_model.provenance()["study"] = study_name;
    final_model.provenance()["storage"] = url;
    final_model.provenance()["best_trial"] = best.number;
    final_model.provenance()["config"] = final_cfg;
    final_model.provenance()["final"] = final_mode;
    final_model.save(out_path.string());
    store->set_study_user_attr(study.id(), "model_path", std::filesystem::absolute(out_path).lexically_normal().string());

    int64_t complete = 0, pruned = 0, failed = 0;
    json board = json::array();
    for (const auto& t : all) {
      complete += t.state == TrialState::Complete;
      pruned += t.state == TrialState::Pruned;
      failed += t.state == TrialState::Fail;
    }
    AutoResult res;
    res.leaderboard = leaderboard_table(all, study.directions());
    json m;
    m["command"] = "auto";
    m["dataset"] = o.data;
    m["model"] = best_params["model"];
    m["epochs"] = final_model.epochs_trained();
    m["test"] = splits.test ? train::evaluation_json(test_ev, final_model.class_names()) : json(nullptr);
    m["val"] = train::evaluation_json(val_ev, final_model.class_names());
    m["trials"] = {{"complete", complete}, {"pruned", pruned}, {"failed", failed}, {"total", static_cast<int64_t>(all.size())}};
    m["best"] = {{"number", best.number}, {"params", best_params},
                 {"value", std::isfinite(best.values[0]) ? json(best.values[0]) : json(nullptr)},
                 {"state", track::to_string(best.state)}, {"metric", "val_" + metric}};
    m["final"] = final_mode;
    m["study"] = study_name;
    m["storage"] = url;
    m["families"] = families;
    m["search_train_examples"] = search_train.size();
    m["time_budget_s"] = o.time_budget_s;
    m["search_s"] = search_s;
    m["workers"] = o.workers;
    m["threads"] = total_threads;
    m["train_samples_per_s"] = 0.0;
    if (!final_history.epochs.empty()) {
      std::vector<double> sps;
      for (auto& l : final_history.epochs) sps.push_back(l.at("samples_per_s"));
      std::sort(sps.begin(), sps.end());
      m["train_samples_per_s"] = sps[sps.size() / 2];
    }
    for (const auto& t : all)
      if (t.state == TrialState::Complete || t.state == TrialState::Pruned) board.push_back(trial_json(t));
    m["leaderboard"] = board;
    m["wall_s"] = unix_now() - t_start;
    m["peak_rss_mib"] = train::peak_rss_mib();
    m["config"] = final_cfg;
    m["model_file"] = out_path.string();
    m["run"] = {{"id", final_run_id}, {"name", runs->run(final_run_id).name}};
    if (!o.metrics_out.empty()) train::write_json_atomically(o.metrics_out, m);
    res.metrics = m;
    runs->set_artifact(final_run_id, "model", std::filesystem::absolute(out_path).lexically_normal().string());
    if (!o.metrics_out.empty())
      runs->set_artifact(final_run_id, "metrics",
                         std::filesystem::absolute(o.metrics_out).lexically_normal().string());
    runs->finish_run(final_run_id, track::RunStatus::Finished, final_summary(m, final_mode, best.number));
    signal_guard.unwatch(final_run_id);
    say(fmt::format("\nLeaderboard (study '{}' in {}):\n{}", study_name, url, res.leaderboard));
    if (splits.test)
      say(fmt::format("deft auto: {} | test accuracy {:.4f} | {} complete, {} pruned, {} failed | {} | model {}\n", final_mode,
                      test_ev.logs.count("accuracy") ? test_ev.logs.at("accuracy") : NAN, complete, pruned, failed,
                      fmt_duration(unix_now() - t_start), out_path.string()));
    // report.html next to the model; a failure to write it is a warning, not a failed run
    const std::string report = (out_path.parent_path() / "report.html").string();
    const std::string report_error = write_auto_report(*store, runs.get(), study_name, final_model, splits.test ? *splits.test : val,
                                                       splits.test ? test_ev : val_ev, splits.test ? "test" : "validation", report);
    if (report_error.empty()) say(fmt::format("deft auto: report {}\n", report));
    else std::fprintf(stderr, "deft: warning: could not write the report %s: %s\n", report.c_str(), report_error.c_str());
    return res;
  } catch (const std::exception& e) {
    signal_guard.unwatch(final_run_id);
    try {
      runs->finish_run(final_run_id, track::RunStatus::Failed, {{"error", e.what()}});
    } catch (const std::exception&) {
    }
    throw;
  }
}

}  // namespace deft::tune
