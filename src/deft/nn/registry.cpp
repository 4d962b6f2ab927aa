// make_module: the layer types a model file or config can name, and how each is
// rebuilt from its config. A new layer type adds one entry here. Configs are read
// with ConfigReader, so a key no layer of that type reads ("unit" for "units") is
// an InputError rather than a silently ignored setting.
#include <functional>
#include <map>

#include "deft/nn/layers.h"
#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"

namespace deft::nn {

namespace {

using json = nlohmann::json;

// Builds M from arguments that read the config. The arguments are all evaluated,
// so every field has been read, before finish() rejects unknown keys and missing
// fields and before M's constructor sees any value.
template <class M, class... Args>
std::shared_ptr<Module> finish_and_make(const ConfigReader& r, Args&&... args) {
  r.finish();
  return std::make_shared<M>(std::forward<Args>(args)...);
}

DenseOptions dense_options(ConfigReader& r) {
  return {.use_bias = r.boolean("use_bias", true),
          .kernel_init = r.string("kernel_init", "glorot_uniform"),
          .bias_init = r.string("bias_init", "zeros")};
}
NormOptions norm_options(ConfigReader& r) {
  return {.momentum = r.number("momentum", 0.1),
          .eps = r.number("eps", 1e-5),
          .affine = r.boolean("affine", true)};
}

using Factory = std::function<std::shared_ptr<Module>(ConfigReader&)>;

const std::map<std::string, Factory>& factories() {
  static const std::map<std::string, Factory> table{
      {"Sequential",
       [](ConfigReader& r) {
         const json* specs = r.raw("layers");
         DEFT_CHECK(specs && specs->is_array(), "layer Sequential: config needs a 'layers' array");
         r.finish();
         std::vector<std::shared_ptr<Module>> layers;
         for (const json& l : *specs) layers.push_back(make_module(l));
         return std::make_shared<Sequential>(std::move(layers));
       }},
      {"Dense",
       [](ConfigReader& r) {
         return finish_and_make<Dense>(r, r.integer("units"), r.string("activation", ""), dense_options(r));
       }},
      {"Linear",
       [](ConfigReader& r) {
         return finish_and_make<Linear>(r, r.integer("in_features"), r.integer("out_features"),
                                        dense_options(r));
       }},
      {"Dropout", [](ConfigReader& r) { return finish_and_make<Dropout>(r, r.number("rate")); }},
      {"Flatten", [](ConfigReader& r) { return finish_and_make<Flatten>(r); }},
      {"Reshape", [](ConfigReader& r) { return finish_and_make<Reshape>(r, r.integers("shape")); }},
      {"BatchNorm1d", [](ConfigReader& r) { return finish_and_make<BatchNorm1d>(r, norm_options(r)); }},
      {"LayerNorm", [](ConfigReader& r) { return finish_and_make<LayerNorm>(r, norm_options(r)); }},
      {"Embedding",
       [](ConfigReader& r) {
         return finish_and_make<Embedding>(r, r.integer("vocabulary"), r.integer("dim"),
                                           r.string("init", "uniform_0.05"));
       }},
  };
  return table;
}

// nullptr when `type` is not an activation layer.
std::shared_ptr<Module> make_activation(const std::string& type, ConfigReader& r) {
  std::string name = r.string("activation", "");
  if (name.empty()) {
    static const std::map<std::string, std::string> by_type{
        {"ReLU", "relu"}, {"LeakyReLU", "leaky_relu"}, {"ELU", "elu"},   {"GELU", "gelu"},
        {"SiLU", "silu"}, {"Sigmoid", "sigmoid"},      {"Tanh", "tanh"}, {"Softmax", "softmax"}};
    auto it = by_type.find(type);
    if (it == by_type.end()) return nullptr;
    name = it->second;
  }
  double param = 0;
  if (name == "leaky_relu") param = r.number("slope", 0.01);
  if (name == "elu") param = r.number("alpha", 1.0);
  if (name == "softmax") param = static_cast<double>(r.integer("axis", -1));
  return finish_and_make<Activation>(r, name, param);
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
  DEFT_CHECK(config.is_object(), "layer {}: config must be an object, got {}", type, config.dump());
  ConfigReader reader("layer " + type, config);
  auto it = factories().find(type);
  if (it != factories().end()) return it->second(reader);
  if (auto act = make_activation(type, reader)) return act;
  std::string valid;
  for (const auto& n : module_types()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown layer type '{}' (valid: {})", type, valid);
}

}  // namespace deft::nn
