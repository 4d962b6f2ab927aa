#include "deft/train/model.h"

#include <chrono>
#include <cmath>
#include <ctime>

#include <fmt/format.h>

#include "deft/autograd/graph.h"
#include "deft/autograd/ops.h"
#include "deft/data/augment.h"
#include "deft/data/loader.h"
#include "deft/data/split.h"
#include "deft/optim/clip.h"
#include "deft/tensor/error.h"
#include "deft/tensor/safetensors.h"
#include "deft/version.h"

namespace deft::train {

using json = nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kModelPrefix = "model/";
constexpr const char* kOptimizerPrefix = "optimizer/";

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// JSON has no NaN/inf: store them as strings so histories survive a round trip.
json number_to_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;
}
double number_from_json(const json& j) {
  if (j.is_number()) return j.get<double>();
  const std::string s = j.is_string() ? j.get<std::string>() : "";
  if (s == "inf") return INFINITY;
  if (s == "-inf") return -INFINITY;
  return NAN;
}

// "0".."max(labels)": class names for int64 labels that came without any.
std::vector<std::string> numbered_class_names(const Tensor& labels, const std::string& source) {
  DEFT_CHECK(labels.defined() && labels.dtype() == DType::Int64,
             "fit: '{}' needs int64 class labels for classification", source);
  int64_t top = 0;
  for (int64_t v : labels.contiguous_copy().to_vector<int64_t>()) {
    DEFT_CHECK(v >= 0, "fit: '{}' has label {}; class labels are 0..C-1", source, v);
    top = std::max(top, v);
  }
  std::vector<std::string> names;
  for (int64_t c = 0; c <= top; ++c) names.push_back(std::to_string(c));
  return names;
}

}  // namespace

// ---- History ------------------------------------------------------------------------

std::vector<double> History::get(const std::string& key) const {
  std::vector<double> out;
  for (const Logs& l : epochs) {
    auto it = l.find(key);
    out.push_back(it == l.end() ? NAN : it->second);
  }
  return out;
}

json History::to_json() const {
  json arr = json::array();
  for (const Logs& l : epochs) {
    json o = json::object();
    for (auto& [k, v] : l) o[k] = number_to_json(v);
    arr.push_back(o);
  }
  return arr;
}

History History::from_json(const json& j) {
  History h;
  DEFT_CHECK(j.is_array(), "history: expected an array");
  for (const json& o : j) {
    Logs l;
    for (auto it = o.begin(); it != o.end(); ++it) l[it.key()] = number_from_json(it.value());
    h.epochs.push_back(std::move(l));
  }
  return h;
}

// ---- Model --------------------------------------------------------------------------

Model::Model(std::shared_ptr<nn::Module> net) : net_(std::move(net)) {
  DEFT_CHECK(net_ != nullptr, "Model: null network");
}

Model::Model(nn::Sequential&& net) : net_(std::make_shared<nn::Sequential>(std::move(net))) {}

void Model::compile(std::shared_ptr<optim::Optimizer> optimizer, std::shared_ptr<nn::Loss> loss,
                    std::vector<std::string> metrics) {
  DEFT_CHECK(net_ != nullptr, "compile: the model has no network");
  DEFT_CHECK(optimizer != nullptr, "compile: no optimizer given");
  DEFT_CHECK(loss != nullptr, "compile: no loss given");
  for (const auto& m : metrics) make_metric(m, 2);  // InputError now for an unknown name, not mid-fit
  optimizer_ = std::move(optimizer);
  loss_ = std::move(loss);
  metric_names_ = std::move(metrics);
  if (net_->built() && !optimizer_->attached()) optimizer_->attach(net_->named_parameters());
}

void Model::build(const Shape& raw_input, uint64_t seed) {
  DEFT_CHECK(net_ != nullptr, "build: the model has no network");
  raw_input_ = raw_input;
  seed_ = seed;
  Shape prepared = raw_input;
  if (pre_) {
    Shape one{1};
    one.insert(one.end(), raw_input.begin(), raw_input.end());
    Tensor probe = pre_->transform_features(Tensor::zeros(one, raw_input.size() == 3 ? DType::UInt8 : DType::Float32));
    prepared.assign(probe.shape().begin() + 1, probe.shape().end());
  }
  Generator gen(seed);
  net_->build(prepared, gen);
  if (optimizer_ && !optimizer_->attached()) optimizer_->attach(net_->named_parameters());
}

void Model::check_labels(const data::Dataset& d, const char* what) const {
  DEFT_CHECK(d.features.defined() && d.size() > 0, "{}: '{}' has no examples", what, d.name);
  DEFT_CHECK(d.labels.defined(), "{}: '{}' has no labels", what, d.name);
  Shape per(d.features.shape().begin() + 1, d.features.shape().end());
  DEFT_CHECK_SHAPE(raw_input_.empty() || per == raw_input_, "{}: '{}' has examples of shape {} but the model takes {}",
                   what, d.name, shape_str(per), shape_str(raw_input_));
  if (task_ == data::Task::Classification) {
    DEFT_CHECK(d.labels.dtype() == DType::Int64, "{}: '{}' has {} labels; classification needs class indices", what,
               d.name, dtype_name(d.labels.dtype()));
    const int64_t c = static_cast<int64_t>(class_names_.size());
    const auto* y = d.labels.contiguous_copy().data<int64_t>();
    for (int64_t i = 0; i < d.size(); ++i)
      DEFT_CHECK(y[i] >= 0 && y[i] < c, "{}: '{}' example {} has label {} but the model knows {} classes", what,
                 d.name, i, y[i], c);
  }
}

void Model::prepare_for(const data::Dataset& train, const FitOptions& options) {
  if (!pre_) {
    pre_.emplace(options.preprocess, train.schema ? *train.schema : data::TableSchema{});
    pre_->fit(train);
    task_ = train.task;
    class_names_ = train.class_names;
    if (task_ == data::Task::Classification && class_names_.empty())
      class_names_ = numbered_class_names(train.labels, train.name);
  }
  if (!net_->built()) {
    Shape raw(train.features.shape().begin() + 1, train.features.shape().end());
    build(raw, options.seed);
  }
  // The network's output must fit the loss and the classes.
  const Shape& out = net_->output_shape();
  const int64_t width = out.empty() ? 1 : out.back();
  if (task_ == data::Task::Classification) {
    const auto c = static_cast<int64_t>(class_names_.size());
    if (loss_->is_binary()) {
      DEFT_CHECK(c <= 2, "fit: loss '{}' is binary but '{}' has {} classes", loss_->name(), train.name, c);
      DEFT_CHECK_SHAPE(width == 1, "fit: loss '{}' needs one output per example, the model gives {}", loss_->name(),
                       shape_str(out));
    } else if (loss_->output_kind() != nn::OutputKind::Values) {
      DEFT_CHECK_SHAPE(width == c, "fit: the model outputs {} values per example but '{}' has {} classes",
                       shape_str(out), train.name, c);
    }
  }
}

Tensor Model::prepare(const Tensor& raw) const {
  if (pre_) return pre_->transform_features(raw);
  return raw.dtype() == DType::Float32 ? raw : raw.to(DType::Float32);
}

Tensor Model::forward_raw(const Tensor& raw_batch) { return net_->forward(prepare(raw_batch)); }

std::vector<std::unique_ptr<Metric>> Model::make_metrics() const {
  std::vector<std::unique_ptr<Metric>> out;
  const auto c = std::max<int64_t>(2, static_cast<int64_t>(class_names_.size()));
  for (const auto& name : metric_names_) out.push_back(make_metric(name, c));
  return out;
}

Tensor Model::batch_weights(const Tensor& labels, const std::map<int64_t, double>& class_weight) const {
  if (class_weight.empty()) return {};
  const Tensor y = labels.contiguous_copy();
  Tensor w = Tensor::empty({y.numel()});
  auto* wp = w.data<float>();
  const auto* yp = y.data<int64_t>();
  for (int64_t i = 0; i < y.numel(); ++i) {
    auto it = class_weight.find(yp[i]);
    wp[i] = it == class_weight.end() ? 1.f : static_cast<float>(it->second);
  }
  return w;
}

data::Dataset Model::as_dataset(const Tensor& x, const Tensor& y) const {
  DEFT_CHECK_SHAPE(x.defined() && y.defined() && x.dim() >= 1 && y.dim() >= 1 && x.size(0) == y.size(0),
                   "fit: features {} and labels {} need the same number of examples",
                   x.defined() ? shape_str(x.shape()) : "(none)", y.defined() ? shape_str(y.shape()) : "(none)");
  data::Dataset d;
  d.name = "tensors";
  d.features = x;
  d.labels = y;
  if (y.dtype() == DType::Int64) {
    d.task = data::Task::Classification;
    d.class_names = class_names_.empty() ? numbered_class_names(y, d.name) : class_names_;
  } else {
    DEFT_CHECK(y.dtype() == DType::Float32, "fit: labels must be int64 classes or float32 targets, got {}",
               dtype_name(y.dtype()));
    d.task = data::Task::Regression;
  }
  return d;
}

History Model::fit(const data::Dataset& train_in, const FitOptions& o) {
  DEFT_CHECK(compiled(), "fit: compile the model first (optimizer and loss)");
  DEFT_CHECK(o.epochs >= 1, "fit: epochs must be at least 1, got {}", o.epochs);
  DEFT_CHECK(o.batch_size >= 1, "fit: batch_size must be at least 1, got {}", o.batch_size);
  DEFT_CHECK(o.validation_split >= 0 && o.validation_split < 1, "fit: validation_split must be in [0, 1), got {}",
             o.validation_split);
  DEFT_CHECK(!(o.validation_data && o.validation_split > 0), "fit: give validation_data or validation_split, not both");
  DEFT_CHECK(train_in.labels.defined(), "fit: '{}' has no labels", train_in.name);
  if (!o.resume_from.empty()) restore(o.resume_from);

  data::Dataset train = train_in;
  std::optional<data::Dataset> val;
  if (o.validation_data) {
    val = *o.validation_data;
  } else if (o.validation_split > 0) {
    auto [tr, va] = data::train_test_split(train, o.validation_split, o.seed, train.task == data::Task::Classification);
    train = std::move(tr);
    val = std::move(va);
  }
  prepare_for(train, o);
  if (!pre_->is_image()) train = pre_->filter_rows(train);
  check_labels(train, "fit");
  if (val) check_labels(*val, "fit: validation");
  DEFT_CHECK(o.augment.empty() || o.augment == "none" || pre_->is_image(),
             "fit: augmentation '{}' applies to images, but '{}' is a table", o.augment, train.name);

  std::shared_ptr<const data::Augmentation> aug;
  if (pre_->is_image() && !o.augment.empty()) aug = data::parse_augmentation(o.augment);
  data::BatchTransform to_float = aug ? data::make_image_transform(aug) : data::BatchTransform{};
  const data::Preprocessor pre = *pre_;
  data::DataLoader loader(train, {.batch_size = o.batch_size,
                                  .shuffle = o.shuffle,
                                  .drop_last = false,
                                  .seed = o.seed,
                                  .workers = o.workers >= 0 ? o.workers : (aug ? 1 : 0),
                                  .transform = [to_float, pre](data::Batch& b, Generator& gen) {
                                    if (to_float) to_float(b, gen);
                                    b.x = pre.transform_features(b.x);
                                  }});

  Callbacks cbs = o.callbacks;
  if (o.verbose > 0) {
    bool has_bar = false;
    for (auto& c : cbs) has_bar |= c->name() == "progress";
    if (!has_bar) cbs.push_back(std::make_shared<ProgressBar>());
  }
  if (fit_state_.contains("callbacks")) {
    const json& saved = fit_state_["callbacks"];
    for (size_t i = 0; i < cbs.size() && i < saved.size(); ++i)
      if (saved[i].value("name", "") == cbs[i]->name() && !saved[i]["state"].is_null())
        cbs[i]->load_state(saved[i]["state"]);
  }
  callbacks_ = &cbs;
  fit_batches_ = loader.batches_per_epoch();
  fit_epochs_ = o.epochs;
  stop_training = false;
  struct Reset {
    Model* m;
    ~Reset() { m->callbacks_ = nullptr; }
  } reset{this};

  const std::vector<Tensor> params = net_->parameters();
  auto metrics = make_metrics();
  for (auto& c : cbs) c->on_train_begin(*this);
  Logs last;
  for (int64_t e = epoch_; e < o.epochs && !stop_training; ++e) {
    net_->train();
    loader.start_epoch(e);
    for (auto& c : cbs) c->on_epoch_begin(*this, e);
    for (auto& m : metrics) m->reset();
    double loss_sum = 0;
    int64_t seen = 0;
    const double t0 = now_s();
    while (auto b = loader.next()) {
      for (auto& c : cbs) c->on_batch_begin(*this, b->number);
      const int64_t n = b->x.size(0);
      Tensor out = net_->forward(b->x);
      Tensor loss = (*loss_)(out, b->y, batch_weights(b->y, o.class_weight));
      optimizer_->zero_grad();
      loss.backward();
      if (o.clip_grad_value > 0) optim::clip_grad_value(params, o.clip_grad_value);
      if (o.clip_grad_norm > 0) optim::clip_grad_norm(params, o.clip_grad_norm);
      optimizer_->step();
      const double lv = loss.item<float>();
      loss_sum += lv * static_cast<double>(n);
      seen += n;
      if (!metrics.empty()) {
        NoGradGuard no_grad;
        const Tensor p = nn::output_to_probabilities(out.detach(), *loss_);
        for (auto& m : metrics) m->update(p, b->y);
      }
      Logs bl{{"loss", loss_sum / static_cast<double>(seen)}, {"batch_loss", lv}, {"size", static_cast<double>(n)}};
      if (b->number % 16 == 15 || b->number + 1 == fit_batches_)
        for (auto& m : metrics)
          for (auto& [k, v] : m->result()) bl[k] = v;
      for (auto& c : cbs) c->on_batch_end(*this, b->number, bl);
      if (stop_training) break;
    }
    const double dt = now_s() - t0;
    Logs logs{{"epoch", static_cast<double>(e + 1)},
              {"loss", seen ? loss_sum / static_cast<double>(seen) : NAN},
              {"lr", optimizer_->lr()},
              {"epoch_s", dt},
              {"samples_per_s", dt > 0 ? static_cast<double>(seen) / dt : 0.0}};
    for (auto& m : metrics)
      for (auto& [k, v] : m->result()) logs[k] = v;
    if (val) {
      // 256 a batch, as the test pass (run.cpp): a CNN's activations at 1000 set the peak memory
      const Evaluation ev = evaluate_full(*val, {.batch_size = std::max<int64_t>(o.batch_size, 256)});
      for (auto& [k, v] : ev.logs) logs["val_" + k] = v;
    }
    epoch_ = e + 1;
    history_.epochs.push_back(logs);
    for (auto& c : cbs) c->on_epoch_end(*this, e, logs);
    last = logs;
  }
  for (auto& c : cbs) c->on_train_end(*this, last);
  return history_;
}

Evaluation Model::evaluate_full(const data::Dataset& d, const EvalOptions& options) {
  DEFT_CHECK(compiled(), "evaluate: compile the model first (or load a saved one)");
  DEFT_CHECK(net_->built(), "evaluate: the model has not been trained or built");
  DEFT_CHECK(options.batch_size >= 1, "evaluate: batch_size must be at least 1");
  check_labels(d, "evaluate");
  const double t0 = now_s();
  NoGradGuard no_grad;
  const bool was_training = net_->training();
  net_->eval();
  auto metrics = make_metrics();
  std::optional<ConfusionMatrix> cm;
  if (task_ == data::Task::Classification)
    cm.emplace(std::max<int64_t>(2, static_cast<int64_t>(class_names_.size())));
  double loss_sum = 0;
  const int64_t n = d.size();
  for (int64_t i = 0; i < n; i += options.batch_size) {
    const int64_t j = std::min(n, i + options.batch_size);
    const Tensor x = slice(d.features, 0, i, j).contiguous_copy();
    const Tensor y = slice(d.labels, 0, i, j).contiguous_copy();
    const Tensor out = forward_raw(x);
    loss_sum += static_cast<double>((*loss_)(out, y).item<float>()) * static_cast<double>(j - i);
    const Tensor p = nn::output_to_probabilities(out, *loss_);
    for (auto& m : metrics) m->update(p, y);
    if (cm) cm->update(p, y);
  }
  net_->train(was_training);
  Evaluation ev;
  ev.examples = n;
  ev.logs["loss"] = loss_sum / static_cast<double>(n);
  for (auto& m : metrics)
    for (auto& [k, v] : m->result()) ev.logs[k] = v;
  if (cm) add_confusion_logs(*cm, ev.logs);
  ev.confusion = std::move(cm);
  ev.seconds = now_s() - t0;
  return ev;
}

Tensor Model::predict(const Tensor& features, int64_t batch_size) {
  DEFT_CHECK(net_ && net_->built(), "predict: the model has not been trained or built");
  DEFT_CHECK(batch_size >= 1, "predict: batch_size must be at least 1");
  DEFT_CHECK_SHAPE(features.defined() && features.dim() >= 1, "predict: features need a batch axis");
  Shape per(features.shape().begin() + 1, features.shape().end());
  DEFT_CHECK_SHAPE(per == raw_input_, "predict: examples of shape {} but the model takes {}", shape_str(per),
                   shape_str(raw_input_));
  NoGradGuard no_grad;
  const bool was_training = net_->training();
  net_->eval();
  std::vector<Tensor> parts;
  const int64_t n = features.size(0);
  for (int64_t i = 0; i < n; i += batch_size)
    parts.push_back(forward_raw(slice(features, 0, i, std::min(n, i + batch_size)).contiguous_copy()));
  net_->train(was_training);
  if (parts.empty()) {
    Shape s{0};
    s.insert(s.end(), net_->output_shape().begin(), net_->output_shape().end());
    return Tensor::zeros(s);
  }
  return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

Tensor Model::predict_proba(const Tensor& features, int64_t batch_size) {
  DEFT_CHECK(loss_ != nullptr, "predict_proba: the model has no loss to say how to read its outputs");
  NoGradGuard no_grad;
  return nn::output_to_probabilities(predict(features, batch_size), *loss_);
}

std::string Model::summary() const {
  DEFT_CHECK(net_ && net_->built(), "summary: the model is not built yet");
  std::string out;
  if (const auto* seq = dynamic_cast<const nn::Sequential*>(net_.get())) {
    out = seq->summary();
  } else {
    out = fmt::format("Model: {} ({} parameters)\n", net_->type(), net_->num_parameters());
  }
  if (pre_ && pre_->is_image())
    out += fmt::format("Input: raw pixels {} (scaled and normalised inside the model)\n", shape_str(raw_input_));
  else if (pre_)
    out += fmt::format("Input: {} table columns -> {} features after preprocessing\n", pre_->num_inputs(),
                       pre_->num_outputs());
  return out;
}

// ---- save / load --------------------------------------------------------------------

json Model::metadata() const {
  json j;
  j["format"] = "deft-model";
  j["format_version"] = kFormatVersion;
  j["architecture"] = nn::module_spec(*net_);
  j["input_shape"] = raw_input_;
  j["network_input_shape"] = net_->input_shape();
  j["output_shape"] = net_->output_shape();
  j["preprocessing"] = pre_ ? pre_->to_json() : json(nullptr);
  j["task"] = task_ == data::Task::Classification ? "classification" : "regression";
  j["class_names"] = class_names_;
  j["loss"] = loss_ ? json{{"name", loss_->name()}, {"config", loss_->config()}} : json(nullptr);
  j["metrics"] = metric_names_;
  j["optimizer"] = optimizer_ ? json{{"type", optimizer_->type()},
                                     {"config", optimizer_->config()},
                                     {"state", optimizer_->attached() ? optimizer_->state_json() : json(nullptr)}}
                              : json(nullptr);
  json training{{"epochs_trained", epoch_}, {"seed", seed_}, {"history", history_.to_json()}};
  if (callbacks_) {
    json cbs = json::array();
    for (auto& c : *callbacks_) cbs.push_back({{"name", c->name()}, {"state", c->state()}});
    training["fit_state"] = {{"callbacks", cbs}};
  } else if (!fit_state_.is_null()) {
    training["fit_state"] = fit_state_;
  }
  j["training"] = training;
  json prov = provenance_;
  prov["deft_version"] = DEFT_VERSION;
  prov["saved_at"] = utc_now();
  j["provenance"] = prov;
  return j;
}

void Model::save(const std::string& path) const {
  DEFT_CHECK(net_ && net_->built(), "save: the model is not built yet");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (auto& [name, t] : net_->state()) tensors.emplace_back(kModelPrefix + name, t);
  if (optimizer_ && optimizer_->attached())
    for (auto& [name, t] : optimizer_->state_tensors()) tensors.emplace_back(kOptimizerPrefix + name, t);
  write_safetensors(path, tensors, {{"deft", metadata().dump()}});
}

Model Model::load(const std::string& path) {
  const SafetensorsFile file = read_safetensors(path);
  auto it = file.metadata.find("deft");
  DEFT_CHECK(it != file.metadata.end(), "{}: not a deft model (no 'deft' entry in the safetensors metadata)", path);
  json j;
  try {
    j = json::parse(it->second);
  } catch (const json::exception& e) {
    fail("{}: the model metadata is not valid JSON: {}", path, e.what());
  }
  Model m;
  try {
    DEFT_CHECK(j.value("format", "") == "deft-model", "not a deft model file");
    // Its int8 ops live in quant.* tensors only the runtime reads: never train or
    // evaluate it as the float model it was made from.
    DEFT_CHECK(!j.contains("quantization"),
               "an int8-quantised model (deft export --quantize) runs on the inference runtime: use deft "
               "predict, deft serve or deft eval");
    DEFT_CHECK(j.value("format_version", 0) == kFormatVersion, "format version {} (this deft reads {})",
               j.value("format_version", 0), kFormatVersion);
    m.net_ = nn::make_module(j.at("architecture"));
    m.raw_input_ = j.at("input_shape").get<Shape>();
    if (!j.at("preprocessing").is_null()) m.pre_ = data::Preprocessor::from_json(j["preprocessing"]);
    m.task_ = j.at("task").get<std::string>() == "regression" ? data::Task::Regression : data::Task::Classification;
    m.class_names_ = j.at("class_names").get<std::vector<std::string>>();
    m.metric_names_ = j.value("metrics", std::vector<std::string>{});
    if (!j.at("loss").is_null()) m.loss_ = nn::make_loss(j["loss"].at("name"), j["loss"].value("config", json::object()));
    Generator gen(0);
    m.net_->build(j.at("network_input_shape").get<Shape>(), gen);
    std::map<std::string, Tensor> model_tensors, opt_tensors;
    for (auto& [name, t] : file.tensors) {
      if (name.rfind(kModelPrefix, 0) == 0) model_tensors[name.substr(6)] = t;
      else if (name.rfind(kOptimizerPrefix, 0) == 0) opt_tensors[name.substr(10)] = t;
      else fail("unexpected tensor '{}'", name);
    }
    m.net_->load_state(model_tensors, path);
    if (!j.at("optimizer").is_null()) {
      m.optimizer_ = optim::make_optimizer(j["optimizer"].at("type"), j["optimizer"].at("config"));
      m.optimizer_->attach(m.net_->named_parameters());
      if (!j["optimizer"].at("state").is_null()) m.optimizer_->load_state(j["optimizer"]["state"], opt_tensors);
    }
    const json& tr = j.at("training");
    m.epoch_ = tr.at("epochs_trained").get<int64_t>();
    m.seed_ = tr.value("seed", uint64_t{0});
    m.history_ = History::from_json(tr.at("history"));
    m.fit_state_ = tr.value("fit_state", json(nullptr));
    m.provenance_ = j.value("provenance", json::object());
  } catch (const json::exception& e) {
    fail("{}: malformed model metadata: {}", path, e.what());
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    fail("{}: {}", path, msg);
  }
  return m;
}

void Model::restore(const std::string& path) {
  Model saved = load(path);
  if (net_) {
    const json mine = nn::module_spec(*net_), theirs = nn::module_spec(*saved.net_);
    DEFT_CHECK(mine == theirs, "{}: the checkpoint's architecture differs from this model's", path);
  }
  auto metrics = metric_names_;
  *this = std::move(saved);
  if (metric_names_.empty()) metric_names_ = std::move(metrics);
}

}  // namespace deft::train
