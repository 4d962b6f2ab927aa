// The `deft` command: parses flags and calls the library; no logic of its own.
#include <CLI/CLI.hpp>
#include <pthread.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <numeric>
#include <optional>
#include <vector>

#include "deft/cli/commands.h"
#include "deft/data/inspect.h"
#include "deft/deploy/infer.h"
#include "deft/data/registry.h"
#include "deft/nn/zoo.h"
#include "deft/track/dashboard.h"
#include "deft/train/run.h"
#include "deft/tune/auto.h"
#include "deft/tune/report_builder.h"
#include "deft/tune/study_report.h"
#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/parallel.h"
#include "deft/track/run_report.h"
#include "deft/version.h"

namespace {

struct DataInspectArgs {
  std::string path;
  std::string target;
  std::string resize;
  bool json = false;
};

int run_data_inspect(const DataInspectArgs& a) {
  const nlohmann::json r = deft::data::inspect_data(a.path, {.target = a.target, .resize = a.resize});
  if (a.json) std::cout << r.dump(2) << "\n";
  else std::cout << deft::data::format_inspection(r);
  return 0;
}

// ---- train ----------------------------------------------------------------------------

struct TrainArgs {
  std::string config;
  nlohmann::json flags = nlohmann::json::object();  // flags given on the command line override the file
  std::string storage = "sqlite:///deft.db";
  std::string run_name;
  bool no_track = false;
  std::string tensorboard = "runs";
  bool no_tensorboard = false;
};

int run_train(const TrainArgs& a) {
  nlohmann::json cfg = a.config.empty() ? nlohmann::json::object() : deft::train::load_config_file(a.config);
  for (auto it = a.flags.begin(); it != a.flags.end(); ++it) cfg[it.key()] = it.value();
  const auto c = deft::train::TrainConfig::from_json(cfg);
  const auto r = deft::train::run_training(c, {.storage = a.no_track ? "" : a.storage,
                                                          .run_name = a.run_name,
                                                          .tensorboard = a.no_tensorboard ? "" : a.tensorboard});
  const nlohmann::json& m = r.metrics;
  if (c.raw["verbose"].get<int64_t>() > 0) {
    std::printf("%s", r.model.summary().c_str());
    if (!m["test"].is_null()) {
      std::printf("test: accuracy %.4f - loss %.4f - precision_macro %.4f - recall_macro %.4f - f1_macro %.4f\n",
                  m["test"].value("accuracy", 0.0), m["test"].value("loss", 0.0), m["test"].value("precision_macro", 0.0),
                  m["test"].value("recall_macro", 0.0), m["test"].value("f1_macro", 0.0));
      if (r.test.confusion && r.model.class_names().size() <= 2)
        std::printf("%s", deft::train::format_classification_report(*r.test.confusion, r.model.class_names()).c_str());
    }
    std::printf("train: %.0f samples/s (median epoch), wall %.1f s, peak RSS %.0f MiB\n",
                m["train_samples_per_s"].get<double>(), m["wall_s"].get<double>(), m["peak_rss_mib"].get<double>());
    if (m.contains("model_file")) std::printf("saved %s\n", m["model_file"].get<std::string>().c_str());
    if (r.run_id >= 0) std::printf("run %s recorded in %s\n", r.run_name.c_str(), m["run"]["storage"].get<std::string>().c_str());
  }
  return 0;
}

// ---- eval / predict -------------------------------------------------------------------

struct EvalArgs {
  std::string model, data, split = "test", metrics_out, target;
  bool json = false;
  int64_t batch_size = 1000;
  int64_t repeat = 1;  // timed passes; eval_samples_per_s is from the median one
};

int run_eval(const EvalArgs& a) {
  // A float model is evaluated by the training library (its own loss); an int8 one,
  // which only the inference runtime runs, from its probabilities.
  const deft::train::SavedModelInputs saved = deft::train::saved_model_inputs(a.model);
  std::optional<deft::train::Model> model;
  std::unique_ptr<deft::deploy::Predictor> predictor;
  if (saved.quantized) predictor = deft::deploy::Predictor::load(a.model, {.max_batch = a.batch_size});
  else model.emplace(deft::train::Model::load(a.model));
  const auto d = deft::train::eval_split(saved, a.data, a.split, a.target);
  // Every pass is the whole evaluation (forward, loss, probabilities, metrics); the
  // data is loaded before. The first pass also creates the kernels for the batch shape.
  deft::train::Evaluation ev;
  std::vector<double> pass_s;
  for (int64_t k = 0; k < a.repeat; ++k) {
    if (model) {
      ev = model->evaluate_full(d, {.batch_size = a.batch_size});
    } else {
      ev = deft::train::evaluate_predictions([&](const deft::Tensor& x) { return predictor->predict(x); }, d,
                                             predictor->info().num_outputs, a.batch_size);
    }
    pass_s.push_back(ev.seconds);
  }
  std::vector<double> sorted = pass_s;
  std::sort(sorted.begin(), sorted.end());
  const size_t h = sorted.size() / 2;
  const double median_s = sorted.size() % 2 ? sorted[h] : 0.5 * (sorted[h - 1] + sorted[h]);
  nlohmann::json m;
  m["command"] = "eval";
  m["dataset"] = a.data;
  m["model"] = a.model;
  m["split"] = a.split;
  m["epochs"] = model ? nlohmann::json(model->epochs_trained()) : nlohmann::json(nullptr);
  m["quantized"] = saved.quantized;
  m["test"] = deft::train::evaluation_json(ev, saved.class_names);
  m["wall_s"] = std::accumulate(pass_s.begin(), pass_s.end(), 0.0);
  m["eval_s"] = pass_s;
  m["eval_samples_per_s"] = median_s > 0 ? static_cast<double>(ev.examples) / median_s : 0.0;
  m["peak_rss_mib"] = deft::train::peak_rss_mib();
  m["config"] = {{"model", a.model}, {"data", a.data}, {"split", a.split}, {"batch_size", a.batch_size},
                 {"repeat", a.repeat}};
  if (!a.metrics_out.empty()) deft::train::write_json_atomically(a.metrics_out, m);
  if (a.json) {
    std::cout << m.dump(2) << "\n";
    return 0;
  }
  std::printf("%s: %lld examples of %s (%s)\n", a.model.c_str(), static_cast<long long>(ev.examples), a.data.c_str(),
              a.split.c_str());
  std::printf("%s\n", deft::train::format_logs(ev.logs).c_str());
  if (ev.confusion) std::printf("\n%s", deft::train::format_classification_report(*ev.confusion, saved.class_names).c_str());
  return 0;
}

// A CSV field, quoted when it holds a comma, quote or line break (RFC 4180).
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char ch : v) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return out + "\"";
}

struct PredictArgs {
  std::string model, input, output, format = "jsonl", split;
  int64_t batch_size = 1000;
};

int run_predict(const PredictArgs& a) {
  // The inference runtime (what deft serve and libdeft-infer run): float or int8 models.
  const deft::train::SavedModelInputs model = deft::train::saved_model_inputs(a.model);
  auto predictor = deft::deploy::Predictor::load(a.model, {.max_batch = std::min<int64_t>(a.batch_size, 1024)});
  deft::data::LoadOptions lo;
  lo.target = model.provenance.value("config", nlohmann::json::object()).value("target", "");
  deft::data::DatasetSplits splits;
  std::vector<std::string> files;  // image inputs: the file of each example
  if (auto table = deft::train::read_table_for(model, a.input)) {
    splits.train = std::move(*table);
  } else if (auto images = deft::train::read_images_for(model, a.input)) {
    splits.train = std::move(images->data);
    files = std::move(images->files);
  } else {
    splits = deft::data::load_dataset(a.input, lo);
  }
  const deft::data::Dataset* d = &splits.train;
  std::string split = a.split.empty() ? (deft::data::is_dataset_name(a.input) && splits.test ? "test" : "train") : a.split;
  if (split == "test") {
    DEFT_CHECK(splits.test.has_value(), "{}: has no test split", a.input);
    d = &*splits.test;
  } else {
    DEFT_CHECK(split == "train", "--split must be train or test, got '{}'", split);
  }
  const deft::Tensor p = predictor->predict(d->features).contiguous_copy();
  const auto& names = predictor->info().class_names;
  const bool classification = predictor->info().classification;
  const int64_t n = p.size(0), width = p.numel() / std::max<int64_t>(n, 1);
  const auto* pp = p.data<float>();
  std::string out;
  if (a.format == "csv") {
    out += files.empty() ? "index" : "index,file";
    out += classification ? ",class,label" : ",prediction";
    if (classification)
      for (const auto& nm : names) out += "," + csv_field("p_" + nm);
    out += "\n";
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* row = pp + i * width;
    int64_t cls = 0;
    std::vector<float> probs(row, row + width);
    if (classification && width == 1) probs = {1.f - row[0], row[0]};
    for (size_t k = 1; k < probs.size(); ++k)
      if (probs[k] > probs[static_cast<size_t>(cls)]) cls = static_cast<int64_t>(k);
    const std::string label = cls < static_cast<int64_t>(names.size()) ? names[static_cast<size_t>(cls)] : "";
    if (a.format == "csv") {
      out += std::to_string(i);
      if (!files.empty()) out += "," + csv_field(files[static_cast<size_t>(i)]);
      out += classification ? fmt::format(",{},{}", cls, csv_field(label)) : fmt::format(",{}", row[0]);
      if (classification)
        for (float v : probs) out += fmt::format(",{:.6g}", v);
      out += "\n";
    } else {
      nlohmann::json j{{"index", i}};
      if (!files.empty()) j["file"] = files[static_cast<size_t>(i)];
      if (classification) {
        j["class"] = cls;
        j["label"] = label;
        nlohmann::json pj = nlohmann::json::array();
        for (float v : probs) pj.push_back(std::stod(fmt::format("{:.6g}", v)));  // float precision, not double noise
        j["probabilities"] = pj;
      } else {
        j["prediction"] = width == 1 ? nlohmann::json(row[0]) : nlohmann::json(probs);
      }
      out += j.dump() + "\n";
    }
  }
  if (a.output.empty()) std::fwrite(out.data(), 1, out.size(), stdout);
  else deft::write_file_atomically(a.output, out);
  return 0;
}

// ---- auto, study ------------------------------------------------------------------------

struct AutoArgs {
  deft::tune::AutoOptions o;
  std::string budget = "10m";
};

int run_auto_cmd(AutoArgs a) {
  a.o.time_budget_s = deft::tune::parse_duration(a.budget);
  deft::tune::run_auto(a.o);
  return 0;
}

struct StudyArgs {
  std::string storage = "sqlite:///deft.db";
  std::string name;
  std::string format = "table";
  std::string output;
};

int run_study_cmd(const std::string& what, const StudyArgs& a) {
  auto store = deft::track::open_study_store(a.storage);
  std::string out;
  if (what == "list") out = deft::tune::format_study_list(*store);
  else if (what == "show") out = deft::tune::format_study(*store, a.name, a.format);
  else if (what == "best") out = deft::tune::format_best(*store, a.name, a.format);
  else out = deft::tune::format_study(*store, a.name, a.format == "table" ? "csv" : a.format);
  if (a.output.empty()) std::fwrite(out.data(), 1, out.size(), stdout);
  else deft::write_file_atomically(a.output, out);
  return 0;
}

int run_report_cmd(const std::string& name, const deft::tune::ReportWriteOptions& o) {
  for (const auto& f : deft::tune::write_report(name, o)) std::printf("wrote %s\n", f.c_str());
  return 0;
}

// Serves until SIGINT/SIGTERM, taken by sigwait here rather than by a handler: the
// server's threads, started after the mask is set, inherit it.
int run_dashboard_cmd(const deft::track::DashboardOptions& o) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  deft::track::Dashboard d(o);
  d.start();
  std::printf("deft dashboard: %s at %s (Ctrl-C to stop)\n", o.storage.c_str(), d.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  d.stop();
  return 0;
}

// ---- runs ------------------------------------------------------------------------------

struct RunsArgs {
  std::string storage = "sqlite:///deft.db";
  deft::track::RunFilter filter;
  std::vector<std::string> runs;
  std::string format = "table";
};

int run_runs_cmd(const std::string& what, const RunsArgs& a) {
  auto store = deft::track::open_run_store(a.storage);
  store->reap_dead_runs();  // runs whose process died show as killed, not running
  std::string out;
  if (what == "list") out = deft::track::format_run_list(*store, a.filter, a.format);
  else if (what == "show") out = deft::track::format_run(*store, a.runs.at(0), a.format);
  else out = deft::track::format_run_comparison(*store, a.runs, a.format);
  std::fwrite(out.data(), 1, out.size(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"deft: automated model training, from data to a deployable model"};
  app.set_version_flag("--version", std::string("deft ") + DEFT_VERSION);
  int threads = 0;
  app.add_option("--threads", threads, "Threads for one run (default: DEFT_NUM_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  app.require_subcommand(0, 1);
  app.footer("Run 'deft COMMAND --help' for the flags of a command.");

  CLI::App* data = app.add_subcommand("data", "Look at data: deft data inspect PATH");
  data->require_subcommand(1);
  DataInspectArgs inspect;
  CLI::App* inspect_cmd = data->add_subcommand(
      "inspect", "Report rows, columns, types, missing values and class balance of a dataset");
  inspect_cmd->add_option("path", inspect.path, "A registered name (fashion-mnist, mnist) or a file/folder")
      ->required();
  inspect_cmd->add_option("--target", inspect.target, "CSV: the label column");
  inspect_cmd->add_option("--resize", inspect.resize, "Image folders: resize every image to HxW");
  inspect_cmd->add_flag("--json", inspect.json, "Print the report as JSON");

  // ---- train
  CLI::App* train_cmd = app.add_subcommand("train", "Train one model (Keras-style), evaluate it on the test split, save it");
  TrainArgs train;
  train_cmd->add_option("--config", train.config, "YAML or JSON file with the run's settings (flags override it)");
  // Every flag maps onto the config key of the same name (dashes become underscores).
  auto flag = [&](const std::string& name, const std::string& help, auto type_tag) {
    using T = decltype(type_tag);
    std::string key = name.substr(2);
    for (char& ch : key)
      if (ch == '-') ch = '_';
    return train_cmd->add_option_function<T>(name, [&train, key](const T& v) { train.flags[key] = v; }, help);
  };
  flag("--data", "Dataset name (fashion-mnist) or a path (CSV, NPY, IDX, image folder)", std::string{});
  flag("--target", "CSV: the label column", std::string{});
  std::string families;
  for (const auto& f : deft::nn::model_families())
    families += fmt::format("\n  {:<13} {}", f.name, f.description);
  flag("--model", "Model family (default mlp):" + families, std::string{});
  flag("--width", "Multiplies every channel and unit count of the model (default 1)", double{});
  flag("--depth",
       "simple_cnn / vgg_small: conv blocks (default 2 / 3); resnet_small: layers, 8, 14 or 20 (default 20)",
       int64_t{});
  flag("--hidden", "Hidden layer widths of the mlp (default 128)", std::vector<int64_t>{});
  flag("--activation", "Hidden activation of mlp, lenet5, simple_cnn (default relu)", std::string{});
  flag("--dropout", "Dropout rate (default per model: mlp 0.2 after each hidden layer, simple_cnn 0.25, "
       "vgg_small 0.3, others 0)", double{});
  flag("--epochs", "Epochs (default 10)", int64_t{});
  flag("--batch-size", "Batch size (default 64)", int64_t{});
  flag("--optimizer", "sgd, adam (default), adamw, rmsprop, adagrad", std::string{});
  flag("--lr", "Learning rate (default: the optimizer's, adam 1e-3)", double{});
  flag("--weight-decay", "L2 (decoupled for adamw)", double{});
  flag("--loss", "Loss name (default by task)", std::string{});
  flag("--label-smoothing", "Label smoothing for the cross-entropy", double{});
  flag("--metrics", "Metrics to track (default accuracy)", std::vector<std::string>{});
  flag("--seed", "Seed: same seed, threads and data give the same model bit for bit", int64_t{});
  flag("--threads", "Threads for this run (default: all cores)", int64_t{});
  flag("--workers", "Loader threads preparing batches (default: 1 with --augment, else 0)", int64_t{});
  flag("--validation-split", "Hold out this fraction of train for validation", double{});
  flag("--test-split", "Held-out test fraction when the data has no test split (default 0.2)", double{});
  flag("--augment", "Image augmentation, e.g. crop:2,flip:0.5", std::string{});
  flag("--clip-grad-norm", "Clip gradients to this global norm", double{});
  flag("--positive-classes", "Train the binary task 'is it one of these classes?' (names or indices)",
       std::vector<std::string>{});
  flag("--schedule", "LR schedule: step, exponential, cosine, one_cycle, reduce_on_plateau (options: config file)",
       std::string{});
  train_cmd->add_option_function<int64_t>(
      "--early-stopping",
      [&train](const int64_t& patience) {
        train.flags["early_stopping"] = {{"monitor", "val_loss"}, {"patience", patience}, {"restore_best_weights", true}};
      },
      "Stop after this many epochs without a lower val_loss and keep the best weights (needs --validation-split)");
  flag("--out", "Write the model here (.deft)", std::string{});
  flag("--checkpoint", "Save a checkpoint here after every epoch", std::string{});
  flag("--resume", "Continue from this checkpoint", std::string{});
  flag("--metrics-out", "Write the run's metrics JSON here", std::string{});
  flag("--log", "Per-epoch log file (.csv or .jsonl)", std::string{});
  flag("--verbose", "0 = quiet, 1 = progress (default)", int64_t{});
  train_cmd->add_option("--storage", train.storage,
                        "Record the run in this store: sqlite:///path.db (default sqlite:///deft.db) or postgresql://...");
  train_cmd->add_option("--run-name", train.run_name, "The run's name in the store (unique; default run-<id>)");
  train_cmd->add_flag("--no-track", train.no_track, "Do not record the run");
  train_cmd->add_option("--tensorboard", train.tensorboard,
                        "Write TensorBoard event files under DIR/<run name>/ (default runs)");
  train_cmd->add_flag("--no-tensorboard", train.no_tensorboard, "Do not write TensorBoard event files");

  // ---- eval
  CLI::App* eval_cmd = app.add_subcommand("eval", "Evaluate a saved model: accuracy, per-class precision/recall/F1, confusion matrix");
  EvalArgs ev;
  eval_cmd->add_option("--model", ev.model, "Model file (.deft)")->required();
  eval_cmd->add_option("--data", ev.data, "Dataset name or path")->required();
  eval_cmd->add_option("--split", ev.split, "train, validation or test (default test)");
  eval_cmd->add_option("--target", ev.target, "CSV: the label column");
  eval_cmd->add_option("--batch-size", ev.batch_size, "Examples per batch")->check(CLI::PositiveNumber);
  eval_cmd->add_option("--repeat", ev.repeat, "Evaluate this many times; eval_samples_per_s is from the median pass")
      ->check(CLI::PositiveNumber);
  eval_cmd->add_option("--metrics-out", ev.metrics_out, "Write the metrics JSON here");
  eval_cmd->add_flag("--json", ev.json, "Print the metrics as JSON");

  // ---- predict
  CLI::App* predict_cmd = app.add_subcommand("predict", "Predict with a saved model: class and probabilities per example");
  PredictArgs pr;
  predict_cmd->add_option("--model", pr.model, "Model file (.deft)")->required();
  predict_cmd->add_option("--input", pr.input, "Data: IDX, NPY, CSV, image file or folder, or a dataset name")->required();
  predict_cmd->add_option("--output", pr.output, "Write here instead of standard output");
  predict_cmd->add_option("--format", pr.format, "jsonl (default) or csv")->check(CLI::IsMember({"jsonl", "csv"}));
  predict_cmd->add_option("--split", pr.split, "For a named dataset: train or test (default test)");
  predict_cmd->add_option("--batch-size", pr.batch_size, "Examples per batch")->check(CLI::PositiveNumber);

  // ---- auto
  CLI::App* auto_cmd = app.add_subcommand(
      "auto", "Search model families and hyperparameters within a time budget (TPE + ASHA), then train, evaluate and save the best");
  AutoArgs au;
  auto_cmd->add_option("--data", au.o.data, "Dataset name (fashion-mnist) or a path (CSV, NPY, IDX, image folder)")->required();
  auto_cmd->add_option("--target", au.o.target, "CSV: the label column");
  auto_cmd->add_option("--time-budget", au.budget, "Wall-clock budget, hard: 90s, 10m, 1h (default 10m)");
  auto_cmd->add_option("--metric", au.o.metric, "Validation metric to optimise: accuracy (default), f1_macro, loss, ...");
  auto_cmd->add_option("--workers", au.o.workers, "Trials side by side in this process; the cores are split between them")
      ->check(CLI::PositiveNumber);
  auto_cmd->add_option("--storage", au.o.storage, "Study store: sqlite:///path.db (default sqlite:///deft.db) or postgresql://user@host:port/db");
  auto_cmd->add_option("--tensorboard", au.o.tensorboard,
                       "Write TensorBoard event files under DIR/<study>/<trial-N|final>/ (default runs)");
  auto_cmd->add_flag_callback("--no-tensorboard", [&] { au.o.tensorboard.clear(); },
                              "Do not write TensorBoard event files");
  auto_cmd->add_option("--study", au.o.study, "Study name (default auto-<data>-<unix time>)");
  auto_cmd->add_flag("--resume", au.o.resume, "Continue the study named by --study (its trials inform the search)");
  auto_cmd->add_option("--out", au.o.out, "Write the best model here (default best.deft)");
  auto_cmd->add_option("--metrics-out", au.o.metrics_out, "Write the summary JSON here (test metrics, trials, best params, leaderboard)");
  auto_cmd->add_option("--max-trials", au.o.max_trials, "Stop the search after this many trials")->check(CLI::NonNegativeNumber);
  auto_cmd->add_option("--max-trial-epochs", au.o.max_trial_epochs, "Epochs of an unpruned trial (ASHA's top rung, default 9)")
      ->check(CLI::PositiveNumber);
  auto_cmd->add_option("--max-total-epochs", au.o.max_total_epochs, "Epochs over all trials of the search (default: no limit)")
      ->check(CLI::NonNegativeNumber);
  auto_cmd->add_option("--search-fraction", au.o.search_fraction, "Share of the budget spent searching (default 0.5)");
  auto_cmd->add_option("--models", au.o.models, "Restrict the model families searched");
  auto_cmd->add_option("--space", au.o.space_file,
                       "YAML/JSON search space replacing the built-in one, e.g. lr: {low: 1.0e-4, high: 1.0e-2, log: true}; "
                       "model: [simple_cnn, mlp]; depth: {low: 1, high: 3, when: {model: simple_cnn}}");
  auto_cmd->add_option("--sampler", au.o.sampler, "tpe (default), random, sobol")
      ->check(CLI::IsMember({"tpe", "random", "sobol", "qmc"}));
  auto_cmd->add_option("--pruner", au.o.pruner, "asha (default), hyperband, median, none")
      ->check(CLI::IsMember({"asha", "successive_halving", "hyperband", "median", "percentile", "none"}));
  auto_cmd->add_option("--search-examples", au.o.search_examples, "Training examples per trial (default: from the budget)");
  auto_cmd->add_option("--threads", au.o.threads, "Cores for the whole run, split between workers (default: all)")
      ->check(CLI::NonNegativeNumber);
  auto_cmd->add_option("--seed", au.o.seed, "Seed of the search and of every trial");
  auto_cmd->add_option("--verbose", au.o.verbose, "0 quiet, 1 a line per trial (default), 2 also training progress");

  // ---- study
  CLI::App* study_cmd = app.add_subcommand("study", "Read studies from storage: list, show, best, export");
  study_cmd->require_subcommand(1);
  StudyArgs st;
  std::string study_what;
  for (const auto& [sub, help] : std::vector<std::pair<std::string, std::string>>{
           {"list", "Every study in the store with trial counts and best value"},
           {"show", "One study: its attributes and every trial, best first (--format table|json|csv)"},
           {"best", "The best trial's value and parameters (the Pareto front for several objectives)"},
           {"export", "Every trial of a study as CSV (default) or JSON"}}) {
    CLI::App* c = study_cmd->add_subcommand(sub, help);
    c->add_option("--storage", st.storage, "sqlite:///path.db (default sqlite:///deft.db) or postgresql://...");
    if (sub != "list") {
      c->add_option("study", st.name, "Study name")->required();
      c->add_option("--format", st.format, sub == "best" ? "table or json" : "table, json or csv")
          ->check(CLI::IsMember({"table", "json", "csv"}));
      c->add_option("--output", st.output, "Write here instead of standard output");
    }
    c->callback([&study_what, sub] { study_what = sub; });
  }

  // ---- report
  CLI::App* report_cmd = app.add_subcommand(
      "report", "Write a study's (or a run's) HTML report: plots, importance, evaluation; self-contained, no scripts");
  std::string report_name;
  deft::tune::ReportWriteOptions rep;
  report_cmd->add_option("name", report_name, "Study name, or a run's name or id")->required();
  report_cmd->add_option("--storage", rep.storage, "sqlite:///path.db (default sqlite:///deft.db) or postgresql://...");
  report_cmd->add_option("--out", rep.out, "The HTML file (default report.html)");
  report_cmd->add_option("--svg-dir", rep.svg_dir, "Also write every plot here as a standalone .svg");
  report_cmd->add_flag("--png", rep.png, "Also write every plot as .png (needs --svg-dir)");
  report_cmd->add_option("--model", rep.report.model_path, "Model to evaluate (default: the one the study or run recorded)");
  report_cmd->add_option("--data", rep.report.data, "Data to evaluate on (default: the model's own test split)");
  bool report_no_eval = false;
  report_cmd->add_flag("--no-eval", report_no_eval, "Do not load and evaluate the model");

  // ---- dashboard
  CLI::App* dashboard_cmd = app.add_subcommand("dashboard", "Serve a read-only web view of the studies and runs in a store");
  deft::track::DashboardOptions dash;
  dashboard_cmd->add_option("--storage", dash.storage, "sqlite:///path.db (default sqlite:///deft.db) or postgresql://...");
  dashboard_cmd->add_option("--host", dash.host, "Address to listen on (default 127.0.0.1: this machine only)");
  dashboard_cmd->add_option("--port", dash.port, "Port (default 8080; 0 picks a free one)")->check(CLI::Range(0, 65535));
  dashboard_cmd->add_option("--refresh", dash.refresh_s, "Seconds between looks at the store for changes (default 2)")
      ->check(CLI::PositiveNumber);

  // ---- runs
  CLI::App* runs_cmd = app.add_subcommand("runs", "Read recorded runs (deft train, deft auto's trials): list, show, compare");
  runs_cmd->require_subcommand(1);
  RunsArgs ru;
  std::string runs_what;
  for (const auto& [sub, help] : std::vector<std::pair<std::string, std::string>>{
           {"list", "Runs, newest first: id, name, command, study#trial, status, start, duration, key final metrics"},
           {"show", "One run (name or id): params, summary, artifacts, config, system, metrics per epoch"},
           {"compare", "Runs side by side: params that differ, final metrics, validation metrics per epoch"}}) {
    CLI::App* c = runs_cmd->add_subcommand(sub, help);
    c->add_option("--storage", ru.storage, "sqlite:///path.db (default sqlite:///deft.db) or postgresql://...");
    c->add_option("--format", ru.format, "table (default) or json")->check(CLI::IsMember({"table", "json"}));
    if (sub == "list") {
      c->add_option("--study", ru.filter.study, "Only this study's runs (its trials and final training)");
      c->add_option("--command", ru.filter.command, "Only runs of this command (train, trial, auto)");
      c->add_option("--status", ru.filter.status, "Only runs with this status")
          ->check(CLI::IsMember({"running", "finished", "failed", "killed"}));
      c->add_option("--limit", ru.filter.limit, "At most this many runs (default: all)")->check(CLI::NonNegativeNumber);
    } else if (sub == "show") {
      c->add_option("run", ru.runs, "Run name or id")->required()->expected(1);
    } else {
      c->add_option("runs", ru.runs, "Two or more run names or ids")->required()->expected(2, -1);
    }
    c->callback([&runs_what, sub] { runs_what = sub; });
  }

  // ---- export, serve (their own files)
  const deft::cli::Command export_c = deft::cli::add_export_command(app);
  const deft::cli::Command serve_c = deft::cli::add_serve_command(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "deft: error: %s\n", e.what());
    return 2;
  }
  try {
    if (threads > 0) deft::set_num_threads(threads);
    if (inspect_cmd->parsed()) return run_data_inspect(inspect);
    if (train_cmd->parsed()) return run_train(train);
    if (eval_cmd->parsed()) return run_eval(ev);
    if (predict_cmd->parsed()) return run_predict(pr);
    if (auto_cmd->parsed()) {
      if (threads > 0 && au.o.threads == 0) au.o.threads = threads;
      return run_auto_cmd(au);
    }
    if (study_cmd->parsed()) return run_study_cmd(study_what, st);
    if (report_cmd->parsed()) {
      rep.report.evaluate = !report_no_eval;
      return run_report_cmd(report_name, rep);
    }
    if (runs_cmd->parsed()) return run_runs_cmd(runs_what, ru);
    if (dashboard_cmd->parsed()) return run_dashboard_cmd(dash);
    if (export_c.app->parsed()) return export_c.run();
    if (serve_c.app->parsed()) return serve_c.run();
    std::printf("%s", app.help().c_str());
    return 0;
  } catch (const deft::InputError& e) {
    std::fprintf(stderr, "deft: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "deft: internal error: %s\n", e.what());
    return 1;
  }
}
