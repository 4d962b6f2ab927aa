// make_module: the layer types a model file or config can name, and how each is
// rebuilt from its config. A new layer type adds one entry here.
#include <functional>
#include <map>

#include "deft/nn/layers.h"
#include "deft/tensor/error.h"

namespace deft::nn {

namespace {

using json = nlohmann::json;

// Reads config fields with errors that name the layer and field.
class Fields {
 public:
  Fields(const std::string& type, const json& config) : type_(type), config_(config) {
    DEFT_CHECK(config_.is_object(), "layer {}: config must be an object, got {}", type_, config_.dump());
  }
  template <class T>
  T get(const char* key, T fallback) const {
    if (!config_.contains(key)) return fallback;
    try {
      return config_.at(key).get<T>();
    } catch (const json::exception&) {
      fail("layer {}: field '{}' has the wrong type: {}", type_, key, config_.at(key).dump());
    }
  }
  template <class T>
  T need(const char* key) const {
    DEFT_CHECK(config_.contains(key), "layer {}: config needs field '{}'", type_, key);
    return get<T>(key, T{});
  }

 private:
  const std::string& type_;
  const json& config_;
};

DenseOptions dense_options(const Fields& f) {
  return {.use_bias = f.get("use_bias", true),
          .kernel_init = f.get<std::string>("kernel_init", "glorot_uniform"),
          .bias_init = f.get<std::string>("bias_init", "zeros")};
}
NormOptions norm_options(const Fields& f) {
  return {.momentum = f.get("momentum", 0.1), .eps = f.get("eps", 1e-5), .affine = f.get("affine", true)};
}

using Factory = std::function<std::shared_ptr<Module>(const Fields&, const json&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table{
      {"Sequential",
       [](const Fields&, const json& config) {
         DEFT_CHECK(config.contains("layers") && config["layers"].is_array(),
                    "layer Sequential: config needs a 'layers' array");
         std::vector<std::shared_ptr<Module>> layers;
         for (const json& l : config["layers"]) layers.push_back(make_module(l));
         return std::make_shared<Sequential>(std::move(layers));
       }},
      {"Dense",
       [](const Fields& f, const json&) {
         return std::make_shared<Dense>(f.need<int64_t>("units"), f.get<std::string>("activation", ""),
                                        dense_options(f));
       }},
      {"Linear",
       [](const Fields& f, const json&) {
         return std::make_shared<Linear>(f.need<int64_t>("in_features"), f.need<int64_t>("out_features"),
                                         dense_options(f));
       }},
      {"Dropout", [](const Fields& f, const json&) { return std::make_shared<Dropout>(f.need<double>("rate")); }},
      {"Flatten", [](const Fields&, const json&) { return std::make_shared<Flatten>(); }},
      {"Reshape", [](const Fields& f, const json&) { return std::make_shared<Reshape>(f.need<Shape>("shape")); }},
      {"BatchNorm1d", [](const Fields& f, const json&) { return std::make_shared<BatchNorm1d>(norm_options(f)); }},
      {"LayerNorm", [](const Fields& f, const json&) { return std::make_shared<LayerNorm>(norm_options(f)); }},
      {"Embedding",
       [](const Fields& f, const json&) {
         return std::make_shared<Embedding>(f.need<int64_t>("vocabulary"), f.need<int64_t>("dim"),
                                            f.get<std::string>("init", "uniform_0.05"));
       }},
  };
  return table;
}

std::shared_ptr<Module> make_activation(const std::string& type, const Fields& f) {
  std::string name = f.get<std::string>("activation", "");
  if (name.empty()) {
    static const std::map<std::string, std::string> by_type{
        {"ReLU", "relu"}, {"LeakyReLU", "leaky_relu"}, {"ELU", "elu"},   {"GELU", "gelu"},
        {"SiLU", "silu"}, {"Sigmoid", "sigmoid"},      {"Tanh", "tanh"}, {"Softmax", "softmax"}};
    auto it = by_type.find(type);
    if (it == by_type.end()) return nullptr;
    name = it->second;
  }
  double param = 0;
  if (name == "leaky_relu") param = f.get("slope", 0.01);
  if (name == "elu") param = f.get("alpha", 1.0);
  if (name == "softmax") param = static_cast<double>(f.get<int64_t>("axis", -1));
  return std::make_shared<Activation>(name, param);
}

}  // namespace

std::vector<std::string> module_types() {
  std::vector<std::string> out;
  for (auto& [name, f] : factories()) out.push_back(name);
  for (const char* a : {"Activation", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softmax"})
    out.emplace_back(a);
  return out;
}

std::shared_ptr<Module> make_module(const json& spec) {
  DEFT_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(),
             "layer spec must be an object with a string 'type', got {}", spec.dump());
  const std::string type = spec["type"].get<std::string>();
  const json config = spec.value("config", json::object());
  const Fields fields(type, config);
  auto it = factories().find(type);
  if (it != factories().end()) return it->second(fields, config);
  if (auto act = make_activation(type, fields)) return act;
  std::string valid;
  for (const auto& n : module_types()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown layer type '{}' (valid: {})", type, valid);
}

}  // namespace deft::nn
