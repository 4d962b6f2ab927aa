#include "deft/train/run.h"

#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "deft/data/csv.h"
#include "deft/data/image.h"
#include "deft/data/registry.h"
#include "deft/data/split.h"
#include "deft/nn/layers.h"
#include "deft/nn/zoo.h"
#include "deft/optim/schedule.h"
#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/kernels.h"
#include "deft/tensor/safetensors.h"
#include "deft/track/run_store.h"
#include "deft/train/run_recorder.h"
#include "deft/train/tensorboard_logger.h"

namespace deft::train {

using json = nlohmann::json;

// ---- config files ---------------------------------------------------------------------

namespace {

json scalar_to_json(const YAML::Node& n) {
  const std::string s = n.Scalar();
  if (n.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true" || s == "True") return true;
  if (s == "false" || s == "False") return false;
  try {
    size_t used = 0;
    const long long v = std::stoll(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return s;
}

json node_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    case YAML::NodeType::Sequence: {
      json a = json::array();
      for (const auto& item : n) a.push_back(node_to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      json o = json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = node_to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  DEFT_CHECK(in.good(), "{}: cannot open the file", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

json yaml_to_json(const std::string& text, const std::string& source) {
  try {
    return node_to_json(YAML::Load(text));
  } catch (const YAML::Exception& e) {
    fail("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg);
  }
}

json load_config_file(const std::string& path) {
  const std::string text = read_text(path);
  json j;
  const bool is_json = path.size() >= 5 && path.substr(path.size() - 5) == ".json";
  if (is_json) {
    try {
      j = json::parse(text);
    } catch (const json::parse_error& e) {
      fail("{}: invalid JSON at byte {}: {}", path, e.byte, e.what());
    }
  } else {
    j = yaml_to_json(text, path);
  }
  DEFT_CHECK(j.is_object(), "{}: the configuration must be a mapping of keys to values", path);
  return j;
}

// ---- TrainConfig ------------------------------------------------------------------------

namespace {

const json& defaults() {
  static const json d = {
      {"data", nullptr},          {"target", ""},          {"positive_classes", nullptr},
      {"model", "mlp"},           {"hidden", {128}},       {"activation", "relu"},
      {"dropout", nullptr},       {"layers", nullptr},     {"epochs", 10},
      {"width", 1.0},             {"depth", nullptr},
      {"batch_size", 64},         {"seed", 0},             {"threads", 0},
      {"workers", -1},             {"optimizer", "adam"},   {"lr", nullptr},
      {"weight_decay", nullptr},  {"loss", nullptr},       {"label_smoothing", 0.0},
      {"metrics", {"accuracy"}},  {"schedule", nullptr},   {"clip_grad_norm", 0.0},
      {"clip_grad_value", 0.0},   {"validation_split", 0.0}, {"augment", ""},
      {"class_weight", nullptr},  {"early_stopping", nullptr}, {"out", ""},
      {"checkpoint", ""},         {"resume", ""},          {"metrics_out", ""},
      {"log", ""},                {"verbose", 1},          {"test_split", 0.2},
  };
  return d;
}

// The zoo knobs of a config, checked against its model family (InputError names the key).
nn::ModelKnobs model_knobs(const TrainConfig& c) {
  const json& r = c.raw;
  nn::ModelKnobs k;
  k.width = r["width"].get<double>();
  if (!r["depth"].is_null()) k.depth = r["depth"].get<int64_t>();
  if (!r["dropout"].is_null()) k.dropout = r["dropout"].get<double>();
  k.hidden = r["hidden"].get<std::vector<int64_t>>();
  k.activation = r["activation"].get<std::string>();
  try {
    return nn::resolve_knobs(r["model"].get<std::string>(), k);
  } catch (const InputError& e) {
    fail("config: {}", e.what());
  }
}

// {name: X, k: v} or "X" -> (name, rest)
std::pair<std::string, json> named(const json& v, const char* key) {
  if (v.is_string()) return {v.get<std::string>(), json::object()};
  DEFT_CHECK(v.is_object() && v.contains("name") && v["name"].is_string(),
             "config: '{}' must be a name or a mapping with a 'name', got {}", key, v.dump());
  json rest = v;
  rest.erase("name");
  return {v["name"].get<std::string>(), rest};
}

}  // namespace

TrainConfig TrainConfig::from_json(const json& j) {
  DEFT_CHECK(j.is_object(), "config: expected a mapping, got {}", j.dump());
  TrainConfig c;
  c.raw = defaults();
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!c.raw.contains(it.key())) {
      std::string valid;
      for (auto d = defaults().begin(); d != defaults().end(); ++d) valid += (valid.empty() ? "" : ", ") + d.key();
      fail("config: unknown key '{}' (valid: {})", it.key(), valid);
    }
    c.raw[it.key()] = it.value();
  }
  DEFT_CHECK(c.raw["data"].is_string() && !c.raw["data"].get<std::string>().empty(),
             "config: 'data' is required (a dataset name such as fashion-mnist, or a path)");
  auto integer = [&](const char* k, int64_t lo) {
    DEFT_CHECK(c.raw[k].is_number_integer() && c.raw[k].get<int64_t>() >= lo, "config: '{}' must be an integer >= {}, got {}",
               k, lo, c.raw[k].dump());
  };
  auto number = [&](const char* k, double lo, double hi) {
    DEFT_CHECK(c.raw[k].is_number() && c.raw[k].get<double>() >= lo && c.raw[k].get<double>() <= hi,
               "config: '{}' must be a number in [{}, {}], got {}", k, lo, hi, c.raw[k].dump());
  };
  integer("epochs", 1);
  integer("batch_size", 1);
  integer("seed", 0);
  integer("threads", 0);
  integer("workers", -1);
  integer("verbose", 0);
  if (!c.raw["dropout"].is_null()) number("dropout", 0, 0.99);
  number("validation_split", 0, 0.9);
  number("test_split", 0, 0.9);
  number("clip_grad_norm", 0, 1e30);
  number("clip_grad_value", 0, 1e30);
  number("label_smoothing", 0, 1);
  if (!c.raw["lr"].is_null()) number("lr", 0, 1e6);
  if (!c.raw["weight_decay"].is_null()) number("weight_decay", 0, 1e6);
  const std::string model = c.raw["model"].is_string() ? c.raw["model"].get<std::string>() : "";
  DEFT_CHECK(nn::is_model_family(model) || !c.raw["layers"].is_null(),
             "config: unknown model {} (valid: {}; or give 'layers')", c.raw["model"].dump(),
             fmt::join(nn::model_family_names(), ", "));
  number("width", 1e-3, 64);
  DEFT_CHECK(c.raw["depth"].is_null() || c.raw["depth"].is_number_integer(),
             "config: 'depth' must be an integer, got {}", c.raw["depth"].dump());
  DEFT_CHECK(c.raw["hidden"].is_array(), "config: 'hidden' must be a list of layer widths, got {}",
             c.raw["hidden"].dump());
  for (const json& h : c.raw["hidden"])
    DEFT_CHECK(h.is_number_integer() && h.get<int64_t>() > 0, "config: 'hidden' widths must be positive integers, got {}",
               h.dump());
  DEFT_CHECK(nn::is_activation_name(c.raw["activation"].get<std::string>()), "config: unknown activation {}",
             c.raw["activation"].dump());
  DEFT_CHECK(c.raw["metrics"].is_array(), "config: 'metrics' must be a list, got {}", c.raw["metrics"].dump());
  if (c.raw["layers"].is_null()) {
    // The family's defaults for depth and dropout, recorded so the config says what ran.
    const nn::ModelKnobs k = model_knobs(c);
    c.raw["depth"] = k.depth ? json(*k.depth) : json(nullptr);
    c.raw["dropout"] = k.dropout ? json(*k.dropout) : json(nullptr);
  }
  // Resolve the optimizer now so a bad name or field fails before the data loads.
  auto [opt_name, opt_cfg] = named(c.raw["optimizer"], "optimizer");
  if (!c.raw["lr"].is_null()) opt_cfg["lr"] = c.raw["lr"];
  if (!c.raw["weight_decay"].is_null()) opt_cfg["weight_decay"] = c.raw["weight_decay"];
  optim::make_optimizer(opt_name, opt_cfg);
  c.raw["optimizer"] = opt_cfg;
  c.raw["optimizer"]["name"] = opt_name;
  if (!c.raw["schedule"].is_null()) {
    auto [s_name, s_cfg] = named(c.raw["schedule"], "schedule");
    optim::make_schedule(s_name, s_cfg);
  }
  return c;
}

// ---- data and network -----------------------------------------------------------------

namespace {

// Relabels a classification split as "positive" (1) vs "other" (0).
void make_binary(data::Dataset& d, const std::set<int64_t>& positive, const std::string& positive_name) {
  Tensor y = d.labels.contiguous_copy();
  auto* p = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = positive.count(p[i]) ? 1 : 0;
  d.labels = y;
  d.class_names = {"other", positive_name};
}

}  // namespace

data::DatasetSplits load_training_data(const TrainConfig& c) {
  data::LoadOptions lo;
  lo.target = c.raw["target"].get<std::string>();
  data::DatasetSplits s = data::load_dataset(c.raw["data"].get<std::string>(), lo);
  s = data::ensure_splits(std::move(s), {.test = c.raw["test_split"].get<double>(),
                                         .validation = 0.0,
                                         .seed = c.raw["seed"].get<uint64_t>(),
                                         .stratify = s.train.task == data::Task::Classification});
  const json& pos = c.raw["positive_classes"];
  if (!pos.is_null()) {
    DEFT_CHECK(s.train.task == data::Task::Classification, "config: positive_classes needs a classification dataset");
    DEFT_CHECK(pos.is_array() && !pos.empty(), "config: positive_classes must be a non-empty list, got {}", pos.dump());
    std::set<int64_t> positive;
    std::string names;
    for (const json& p : pos) {
      int64_t idx = -1;
      if (p.is_number_integer()) {
        idx = p.get<int64_t>();
      } else if (p.is_string()) {
        const std::string name = p.get<std::string>();
        for (size_t k = 0; k < s.train.class_names.size(); ++k)
          if (s.train.class_names[k] == name) idx = static_cast<int64_t>(k);
        // An index given as text (--positive-classes 5 7 9), when no class has that name.
        if (idx < 0 && !name.empty() && name.find_first_not_of("0123456789") == std::string::npos && name.size() < 10)
          idx = std::stoll(name);
      }
      DEFT_CHECK(idx >= 0 && idx < s.train.num_classes(), "config: positive class {} is not a class of '{}' (classes: {})",
                 p.dump(), s.train.name, fmt::format("{}", fmt::join(s.train.class_names, ", ")));
      positive.insert(idx);
      names += (names.empty() ? "" : "|") + s.train.class_names[static_cast<size_t>(idx)];
    }
    make_binary(s.train, positive, names);
    if (s.validation) make_binary(*s.validation, positive, names);
    if (s.test) make_binary(*s.test, positive, names);
  }
  return s;
}

std::shared_ptr<nn::Module> build_network(const TrainConfig& c, const Shape& input_shape,
                                          int64_t num_outputs) {
  if (!c.raw["layers"].is_null()) {
    const json& layers = c.raw["layers"];
    DEFT_CHECK(layers.is_array() && !layers.empty(), "config: 'layers' must be a non-empty list");
    std::vector<std::shared_ptr<nn::Module>> mods;
    for (const json& l : layers) {
      DEFT_CHECK(l.is_object() && l.contains("type"), "config: each layer needs a 'type', got {}", l.dump());
      json cfg = l;
      cfg.erase("type");
      mods.push_back(nn::make_module({{"type", l["type"]}, {"config", cfg}}));
    }
    return std::make_shared<nn::Sequential>(std::move(mods));
  }
  try {
    return nn::make_model(c.raw["model"].get<std::string>(), input_shape, num_outputs, model_knobs(c));
  } catch (const ShapeError& e) {
    fail<ShapeError>("config: {}", e.what());
  } catch (const InputError& e) {
    fail("config: {}", e.what());
  }
}

// ---- the run -------------------------------------------------------------------------------

SavedModelInputs::SavedModelInputs(const Model& model)
    : raw_input(model.raw_input_shape()), provenance(model.provenance()), class_names(model.class_names()) {
  if (model.preprocessor()) pre = *model.preprocessor();
}

SavedModelInputs saved_model_inputs(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  auto it = file.metadata.find("deft");
  DEFT_CHECK(it != file.metadata.end(), "{}: not a deft model (no 'deft' entry in the safetensors metadata)", path);
  SavedModelInputs out;
  out.path = path;
  try {
    const json j = json::parse(it->second);
    out.raw_input = j.at("input_shape").get<Shape>();
    if (!j.at("preprocessing").is_null()) out.pre = data::Preprocessor::from_json(j["preprocessing"]);
    out.provenance = j.value("provenance", json::object());
    out.class_names = j.value("class_names", std::vector<std::string>{});
    out.quantized = j.contains("quantization") && !j["quantization"].is_null();
  } catch (const json::exception& e) {
    fail("{}: malformed model metadata: {}", path, e.what());
  }
  return out;
}

std::optional<data::Dataset> read_table_for(const SavedModelInputs& model, const std::string& path) {
  const data::Preprocessor* pre = model.pre ? &*model.pre : nullptr;
  std::string ext = path.size() >= 4 ? path.substr(path.size() - 4) : "";
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (!pre || pre->is_image() || pre->schema().empty() || (ext != ".csv" && ext != ".tsv")) return std::nullopt;
  const data::TableSchema& schema = pre->schema();
  data::Dataset d = data::csv_to_features(data::read_csv(path, schema.csv_options()), schema);
  d.name = d.source = path;
  return d;
}

std::optional<ImageInputs> read_images_for(const SavedModelInputs& model, const std::string& path) {
  const Shape& in = model.raw_input;
  const data::Preprocessor* pre = model.pre ? &*model.pre : nullptr;
  if (!pre || !pre->is_image() || in.size() != 3) return std::nullopt;
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<std::string> files;
  if (fs::is_regular_file(path, ec) && data::has_image_extension(path)) {
    files.push_back(path);
  } else if (fs::is_directory(path, ec)) {
    for (auto it = fs::recursive_directory_iterator(path, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec))
      if (it->is_regular_file() && data::has_image_extension(it->path().string())) files.push_back(it->path().string());
    std::sort(files.begin(), files.end());
  }
  if (files.empty()) return std::nullopt;
  ImageInputs out;
  out.data = data::load_image_files(
      files, {.channels = in[0], .resize = data::ImageSize{.height = in[1], .width = in[2]}});
  out.data.name = out.data.source = path;
  out.files = std::move(files);
  return out;
}

data::Dataset eval_split(const SavedModelInputs& model, const std::string& data, const std::string& split,
                         const std::string& target) {
  json cfg = model.provenance.value("config", json::object());
  // Another table than the one trained on: all of it, coded as the training table was.
  if (cfg.value("data", "") != data)
    if (auto table = read_table_for(model, data)) {
      DEFT_CHECK(table->labels.defined(), "{}: has no '{}' column to evaluate against", data,
                 model.pre->schema().target);
      return *table;
    }
  cfg["data"] = data;
  if (!target.empty()) cfg["target"] = target;
  for (const char* drop : {"resume", "checkpoint", "out", "metrics_out", "log"}) cfg.erase(drop);
  auto splits = load_training_data(TrainConfig::from_json(cfg));
  if (split == "train") return std::move(splits.train);
  DEFT_CHECK(split == "validation" || split == "test", "--split must be train, validation or test, got '{}'", split);
  auto& chosen = split == "validation" ? splits.validation : splits.test;
  DEFT_CHECK(chosen.has_value(), "{}: has no {} split", data, split);
  return std::move(*chosen);
}

Evaluation evaluate_predictions(const std::function<Tensor(const Tensor&)>& predict, const data::Dataset& d,
                                int64_t num_classes, int64_t batch_size) {
  DEFT_CHECK(d.labels.defined(), "{}: has no labels to evaluate against", d.name);
  DEFT_CHECK(batch_size >= 1, "evaluate: batch_size must be at least 1");
  const auto t0 = std::chrono::steady_clock::now();
  const bool classification = d.task == data::Task::Classification;
  std::optional<ConfusionMatrix> cm;
  if (classification) cm.emplace(std::max<int64_t>(2, num_classes));
  double loss_sum = 0, abs_sum = 0;
  const int64_t n = d.size();
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t j = std::min(n, i + batch_size);
    const Tensor x = kernel::slice(d.features, 0, i, j).contiguous_copy();
    const Tensor y = kernel::slice(d.labels, 0, i, j).contiguous_copy();
    const Tensor p = predict(x).contiguous_copy();
    const int64_t width = p.numel() / std::max<int64_t>(1, j - i);
    const float* pp = p.data<float>();
    for (int64_t r = 0; r < j - i; ++r) {
      if (classification) {
        const int64_t c = y.data<int64_t>()[r];
        DEFT_CHECK(c >= 0 && c < width, "{}: label {} of example {} is not one of the model's {} classes", d.name, c,
                   i + r, width);
        loss_sum -= std::log(std::max(static_cast<double>(pp[r * width + c]), 1e-12));
      } else {
        const double e = static_cast<double>(pp[r * width]) - static_cast<double>(y.data<float>()[r]);
        loss_sum += e * e;
        abs_sum += std::abs(e);
      }
    }
    if (cm) cm->update(p, y);
  }
  Evaluation ev;
  ev.examples = n;
  ev.logs["loss"] = n ? loss_sum / static_cast<double>(n) : 0.0;
  if (!classification) ev.logs["mae"] = n ? abs_sum / static_cast<double>(n) : 0.0;
  if (cm) add_confusion_logs(*cm, ev.logs);
  ev.confusion = std::move(cm);
  ev.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return ev;
}

double peak_rss_mib() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;
}

void write_json_atomically(const std::string& path, const json& j) { write_file_atomically(path, j.dump(2) + "\n"); }

json evaluation_json(const Evaluation& ev, const std::vector<std::string>& class_names) {
  json out = json::object();
  for (auto& [k, v] : ev.logs) {
    if (k.find("_class_") != std::string::npos) continue;
    out[k] = std::isfinite(v) ? json(v) : json(nullptr);
  }
  out["examples"] = ev.examples;
  if (ev.confusion) {
    json cj = confusion_json(*ev.confusion, class_names);
    out["per_class"] = std::move(cj["per_class"]);
    out["confusion_matrix"] = std::move(cj["matrix"]);
  }
  return out;
}

PreparedFit prepare_fit(const TrainConfig& c, const data::Dataset& train, const data::Dataset* validation) {
  const json& r = c.raw;
  // Loss and output width from the task.
  std::shared_ptr<nn::Loss> loss;
  int64_t outputs = 1;
  if (!r["loss"].is_null()) {
    auto [name, cfg] = named(r["loss"], "loss");
    loss = nn::make_loss(name, cfg);
  } else if (train.task == data::Task::Regression) {
    loss = nn::make_loss("mse");
  } else if (train.num_classes() == 2) {
    loss = nn::make_loss("binary_crossentropy", {{"from_logits", true}});
  } else {
    json cfg{{"from_logits", true}};
    if (r["label_smoothing"].get<double>() > 0) cfg["label_smoothing"] = r["label_smoothing"];
    loss = nn::make_loss("sparse_categorical_crossentropy", cfg);
  }
  if (train.task == data::Task::Classification && !loss->is_binary() &&
      loss->output_kind() != nn::OutputKind::Values)
    outputs = train.num_classes();

  std::vector<std::string> metrics = r["metrics"].get<std::vector<std::string>>();
  if (train.task == data::Task::Regression && metrics == std::vector<std::string>{"accuracy"})
    metrics = {"mse", "mae", "r2"};

  json opt_cfg = r["optimizer"];
  const std::string opt_name = opt_cfg["name"].get<std::string>();
  opt_cfg.erase("name");
  const Shape example_shape(train.features.shape().begin() + 1, train.features.shape().end());
  Model model(build_network(c, example_shape, outputs));
  model.compile(optim::make_optimizer(opt_name, opt_cfg), loss, metrics);

  FitOptions fo;
  fo.epochs = r["epochs"].get<int64_t>();
  fo.batch_size = r["batch_size"].get<int64_t>();
  fo.seed = r["seed"].get<uint64_t>();
  fo.workers = static_cast<int>(r["workers"].get<int64_t>());
  fo.verbose = static_cast<int>(r["verbose"].get<int64_t>());
  fo.augment = r["augment"].get<std::string>();
  fo.clip_grad_norm = r["clip_grad_norm"].get<double>();
  fo.clip_grad_value = r["clip_grad_value"].get<double>();
  fo.validation_split = validation ? 0.0 : r["validation_split"].get<double>();
  fo.validation_data = validation;
  fo.resume_from = r["resume"].get<std::string>();
  if (!r["schedule"].is_null()) {
    auto [name, cfg] = named(r["schedule"], "schedule");
    fo.callbacks.push_back(std::make_shared<LearningRateScheduler>(optim::make_schedule(name, cfg),
                                                                   fo.validation_split > 0 || fo.validation_data
                                                                       ? "val_loss"
                                                                       : "loss"));
  }
  if (!r["early_stopping"].is_null()) {
    const json& es = r["early_stopping"];
    DEFT_CHECK(es.is_object(), "config: early_stopping must be a mapping, got {}", es.dump());
    fo.callbacks.push_back(std::make_shared<EarlyStopping>(
        EarlyStopping::Options{.monitor = es.value("monitor", "val_loss"),
                               .mode = Mode::Auto,
                               .patience = es.value("patience", int64_t{3}),
                               .min_delta = es.value("min_delta", 0.0),
                               .restore_best_weights = es.value("restore_best_weights", true)}));
  }
  if (!r["checkpoint"].get<std::string>().empty())
    fo.callbacks.push_back(std::make_shared<ModelCheckpoint>(r["checkpoint"].get<std::string>()));
  const std::string log = r["log"].get<std::string>();
  if (!log.empty()) {
    if (log.size() > 6 && log.substr(log.size() - 6) == ".jsonl")
      fo.callbacks.push_back(std::make_shared<JsonLinesLogger>(log));
    else
      fo.callbacks.push_back(std::make_shared<CsvLogger>(log));
  }
  const json& cw = r["class_weight"];
  if (!cw.is_null()) {
    if (cw.is_string() && cw.get<std::string>() == "balanced") {
      // sklearn's "balanced": n / (classes * count of the class)
      const Tensor y = train.labels.contiguous_copy();
      std::map<int64_t, int64_t> counts;
      for (int64_t v : y.to_vector<int64_t>()) ++counts[v];
      for (auto& [k, n] : counts)
        fo.class_weight[k] = static_cast<double>(y.numel()) / (static_cast<double>(counts.size()) * static_cast<double>(n));
    } else {
      DEFT_CHECK(cw.is_object(), "config: class_weight must be 'balanced' or a mapping class -> weight");
      for (auto it = cw.begin(); it != cw.end(); ++it) {
        DEFT_CHECK(it.value().is_number() && it.value().get<double>() >= 0, "config: class_weight {}: weight must be >= 0",
                   it.key());
        fo.class_weight[std::stoll(it.key())] = it.value().get<double>();
      }
    }
  }

  return PreparedFit{std::move(model), std::move(fo)};
}

json run_params(const TrainConfig& c) {
  const json& r = c.raw;
  json p = json::object();
  p["model"] = r["layers"].is_null() ? r["model"] : json("custom");
  json opt = r["optimizer"];
  const std::string opt_name = opt["name"].get<std::string>();
  p["optimizer"] = opt_name;
  opt.erase("name");
  p["lr"] = optim::make_optimizer(opt_name, opt)->lr();
  for (auto it = opt.begin(); it != opt.end(); ++it)
    if (it.key() != "lr") p[it.key()] = it.value();  // weight_decay, momentum, ...
  for (const char* k : {"data", "target", "batch_size", "epochs", "seed", "width", "depth", "dropout", "hidden",
                        "activation", "layers", "label_smoothing", "validation_split", "augment", "schedule",
                        "clip_grad_norm", "clip_grad_value", "early_stopping", "class_weight", "positive_classes"}) {
    const json& v = r[k];
    const bool unset = v.is_null() || (v.is_string() && v.get<std::string>().empty()) ||
                       (v.is_number() && v.get<double>() == 0 &&
                        (std::string(k) == "label_smoothing" || std::string(k).rfind("clip_", 0) == 0 ||
                         std::string(k) == "validation_split"));
    if (!unset) p[k] = v;
  }
  if (!r["layers"].is_null()) p.erase("hidden");
  return p;
}

namespace {

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  const auto a = std::filesystem::absolute(path, ec);
  return ec ? path : a.lexically_normal().string();
}

// The final numbers of a run as the run store's summary: the last epoch's logs
// (loss, accuracy, val_*, lr, ...), the test metrics as test_*, and the totals.
json run_summary(const RunResult& res) {
  json s = json::object();
  const auto number = [](const json& v) { return v.is_number() && std::isfinite(v.get<double>()); };
  if (!res.history.epochs.empty())
    for (const auto& [k, v] : res.history.epochs.back())
      if (k != "epoch" && k.find("_class_") == std::string::npos && std::isfinite(v)) s[k] = v;
  const json& m = res.metrics;
  if (m["test"].is_object())
    for (auto it = m["test"].begin(); it != m["test"].end(); ++it)
      if (number(it.value())) s["test_" + it.key()] = it.value();
  for (const char* k : {"epochs", "wall_s", "train_samples_per_s", "peak_rss_mib", "parameters"})
    if (m.contains(k) && number(m[k])) s[k] = m[k];
  return s;
}

RunResult train_and_evaluate(const TrainConfig& c, std::chrono::steady_clock::time_point t0,
                             const std::shared_ptr<RunRecorder>& recorder, const json& run_info,
                             const std::string& tensorboard_dir);

}  // namespace

RunResult run_training(const TrainConfig& c, const RunTracking& tracking) {
  const auto t0 = std::chrono::steady_clock::now();
  const json& r = c.raw;
  if (r["threads"].get<int64_t>() > 0) set_num_threads(static_cast<int>(r["threads"].get<int64_t>()));
  // TensorBoard event files go to <root>/<run name>, or <root>/train-<unix time> for an
  // untracked run.
  const auto tb_dir = [&](const std::string& run_name) {
    return tracking.tensorboard.empty() ? std::string() : (std::filesystem::path(tracking.tensorboard) / track::log_dir_name(run_name)).string();
  };
  if (tracking.storage.empty())
    return train_and_evaluate(c, t0, nullptr, nullptr,
                              tb_dir(fmt::format("train-{}", static_cast<int64_t>(std::time(nullptr)))));

  std::unique_ptr<track::RunStore> runs = track::open_run_store(tracking.storage);
  track::RunRecord rec;
  rec.name = tracking.run_name;
  rec.command = "train";
  rec.config = r;
  rec.params = run_params(c);
  rec.system = track::system_info();
  for (const char* k : {"checkpoint", "log", "resume"})
    if (!r[k].get<std::string>().empty()) rec.artifacts[k] = absolute_path(r[k].get<std::string>());
  const int64_t id = runs->create_run(rec);
  const std::string name = runs->run(id).name;
  track::RunSignalGuard guard(*runs);
  guard.watch(id);
  auto recorder = std::make_shared<RunRecorder>(*runs, id);
  try {
    const std::string tensorboard = tb_dir(name);
    if (!tensorboard.empty()) runs->set_artifact(id, "tensorboard", absolute_path(tensorboard));
    RunResult res =
        train_and_evaluate(c, t0, recorder, {{"id", id}, {"name", name}, {"storage", runs->url()}}, tensorboard);
    res.run_id = id;
    res.run_name = name;
    if (!r["out"].get<std::string>().empty()) runs->set_artifact(id, "model", absolute_path(r["out"].get<std::string>()));
    if (!r["metrics_out"].get<std::string>().empty())
      runs->set_artifact(id, "metrics", absolute_path(r["metrics_out"].get<std::string>()));
    runs->finish_run(id, track::RunStatus::Finished, run_summary(res));
    guard.unwatch(id);
    return res;
  } catch (const std::exception& e) {
    guard.unwatch(id);
    try {  // what the epoch cut short logged, and the reason; the training's error is the one reported
      recorder->flush();
    } catch (const std::exception&) {
    }
    try {
      runs->finish_run(id, track::RunStatus::Failed, {{"error", e.what()}});
    } catch (const std::exception&) {
    }
    throw;
  }
}

namespace {

RunResult train_and_evaluate(const TrainConfig& c, std::chrono::steady_clock::time_point t0,
                             const std::shared_ptr<RunRecorder>& recorder, const json& run_info,
                             const std::string& tensorboard_dir) {
  const json& r = c.raw;
  data::DatasetSplits splits = load_training_data(c);
  const data::Dataset& train = splits.train;

  PreparedFit prep = prepare_fit(c, train, splits.validation ? &*splits.validation : nullptr);
  Model& model = prep.model;
  FitOptions& fo = prep.options;
  if (recorder) fo.callbacks.push_back(recorder);
  if (!tensorboard_dir.empty()) {
    TensorBoardOptions tb{.config = r, .hparams = hparams_from_config(run_params(c))};
    // The prediction grid and confusion matrix: the data's validation split, or the same
    // hold-out fit() takes for validation_split (its seeded, stratified split).
    if (splits.validation) {
      tb.validation = *splits.validation;
    } else if (fo.validation_split > 0 && train.is_image()) {
      tb.validation = data::train_test_split(train, fo.validation_split, fo.seed,
                                             train.task == data::Task::Classification).second;
    }
    fo.callbacks.push_back(make_tensorboard_logger(tensorboard_dir, std::move(tb)));
  }
  model.provenance()["dataset"] = r["data"];
  model.provenance()["config"] = r;
  RunResult res;
  res.history = model.fit(train, fo);
  const double peak_rss_fit = peak_rss_mib();  // before the test pass, whose batch may be larger
  std::vector<double> epoch_s;
  for (const Logs& l : res.history.epochs) epoch_s.push_back(l.at("epoch_s"));
  // The test pass at 256 examples a batch (or the training batch, when larger): a
  // CNN's activations at 1000 (100 MB for one 1000x32x28x28 layer) would set the peak
  // memory of the whole run, and were not faster (bench/README.md).
  if (splits.test)
    res.test = model.evaluate_full(*splits.test, {.batch_size = std::max<int64_t>(256, fo.batch_size)});
  const bool has_val = fo.validation_data != nullptr || fo.validation_split > 0;

  std::vector<double> sorted = epoch_s;
  std::sort(sorted.begin(), sorted.end());
  const double median = sorted.empty() ? 0 : sorted.size() % 2 ? sorted[sorted.size() / 2]
                                                                : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
  const double n_train = static_cast<double>(train.size()) * (1.0 - fo.validation_split);
  json m;
  m["command"] = "train";
  m["dataset"] = r["data"];
  m["model"] = r["layers"].is_null() ? r["model"] : json("custom");
  m["epochs"] = model.epochs_trained();
  m["test"] = splits.test ? evaluation_json(res.test, model.class_names()) : json(nullptr);
  if (has_val && !res.history.epochs.empty()) {
    json v = json::object();
    for (auto& [k, x] : res.history.epochs.back())
      if (k.rfind("val_", 0) == 0 && k.find("_class_") == std::string::npos) v[k.substr(4)] = x;
    m["val"] = v;
  } else {
    m["val"] = nullptr;
  }
  m["train_samples_per_s"] = median > 0 ? n_train / median : 0.0;
  m["epoch_train_s"] = epoch_s;
  m["history"] = res.history.to_json();
  m["parameters"] = model.net().num_parameters();
  m["threads"] = num_threads();
  m["wall_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  m["peak_rss_mib"] = peak_rss_mib();
  m["peak_rss_fit_mib"] = peak_rss_fit;
  m["config"] = r;
  if (!run_info.is_null()) m["run"] = run_info;
  if (!r["out"].get<std::string>().empty()) {
    model.provenance()["wall_s"] = m["wall_s"];
    model.save(r["out"].get<std::string>());
    m["model_file"] = r["out"];
  }
  if (!r["metrics_out"].get<std::string>().empty()) write_json_atomically(r["metrics_out"].get<std::string>(), m);
  res.metrics = std::move(m);
  res.model = std::move(model);
  return res;
}

}  // namespace

}  // namespace deft::train
