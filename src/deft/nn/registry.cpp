// make_module: the layer types a model file or config can name, and how each is
// rebuilt from its config. A new layer type adds one entry here. Configs are read
// with ConfigReader, so a key no layer of that type reads ("unit" for "units") is
// an InputError rather than a silently ignored setting.
#include <functional>
#include <map>

#include "deft/nn/conv.h"
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

// The fields a layer of one type reads that the typed readers do not cover (sizes
// given as an int or [h, w], paddings given as a word or numbers): kept as JSON until
// finish() has vetted the keys, then converted with errors naming the layer and field.
struct SizeFields {
  std::string owner;  // "layer Conv2d"
  Size2 size(const json* v, const char* key, Size2 fallback) const {
    return v ? size2_from_json(*v, fmt::format("{}: field '{}'", owner, key)) : fallback;
  }
  Size2 required_size(const json* v, const char* key) const {
    DEFT_CHECK(v != nullptr, "{}: config needs field '{}'", owner, key);
    return size(v, key, 1);
  }
  Padding padding(const json* v) const { return v ? Padding::from_json(*v, owner) : Padding(); }
};

std::vector<std::shared_ptr<Module>> branch_modules(const json* specs, const char* type) {
  DEFT_CHECK(specs && specs->is_array(), "layer {}: config needs a 'branches' array of layer specs", type);
  std::vector<std::shared_ptr<Module>> out;
  for (const json& b : *specs) out.push_back(make_module(b));
  return out;
}

std::shared_ptr<Module> make_pool(ConfigReader& r, const char* type, bool average) {
  SizeFields f{fmt::format("layer {}", type)};
  const json* kernel = r.raw("kernel_size");
  const json* stride = r.raw("stride");
  const json* padding = r.raw("padding");
  Pool2dOptions o;
  o.ceil_mode = r.boolean("ceil_mode", false);
  if (average) o.count_include_pad = r.boolean("count_include_pad", true);
  r.finish();
  const Size2 k = f.required_size(kernel, "kernel_size");
  o.stride = f.size(stride, "stride", 0);
  o.padding = f.padding(padding);
  if (average) return std::make_shared<AvgPool2d>(k, o);
  return std::make_shared<MaxPool2d>(k, o);
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
      {"Conv2d",
       [](ConfigReader& r) {
         SizeFields f{"layer Conv2d"};
         const int64_t filters = r.integer("filters");
         const json* kernel = r.raw("kernel_size");
         const json* stride = r.raw("stride");
         const json* padding = r.raw("padding");
         const json* dilation = r.raw("dilation");
         Conv2dOptions o;
         o.groups = r.integer("groups", 1);
         o.use_bias = r.boolean("use_bias", true);
         o.activation = r.string("activation", "");
         o.kernel_init = r.string("kernel_init", "glorot_uniform");
         o.bias_init = r.string("bias_init", "zeros");
         r.finish();
         const Size2 k = f.required_size(kernel, "kernel_size");
         o.stride = f.size(stride, "stride", 1);
         o.padding = f.padding(padding);
         o.dilation = f.size(dilation, "dilation", 1);
         return std::make_shared<Conv2d>(filters, k, o);
       }},
      {"MaxPool2d", [](ConfigReader& r) { return make_pool(r, "MaxPool2d", false); }},
      {"AvgPool2d", [](ConfigReader& r) { return make_pool(r, "AvgPool2d", true); }},
      {"AdaptiveAvgPool2d",
       [](ConfigReader& r) {
         SizeFields f{"layer AdaptiveAvgPool2d"};
         const json* size = r.raw("output_size");
         r.finish();
         return std::make_shared<AdaptiveAvgPool2d>(f.required_size(size, "output_size"));
       }},
      {"GlobalAvgPool2d", [](ConfigReader& r) { return finish_and_make<GlobalAvgPool2d>(r); }},
      {"BatchNorm2d", [](ConfigReader& r) { return finish_and_make<BatchNorm2d>(r, norm_options(r)); }},
      {"Dropout2d", [](ConfigReader& r) { return finish_and_make<Dropout2d>(r, r.number("rate")); }},
      {"Identity", [](ConfigReader& r) { return finish_and_make<Identity>(r); }},
      {"Add",
       [](ConfigReader& r) {
         const json* specs = r.raw("branches");
         const std::string activation = r.string("activation", "");
         r.finish();
         return std::make_shared<Add>(branch_modules(specs, "Add"), activation);
       }},
      {"Concat",
       [](ConfigReader& r) {
         const json* specs = r.raw("branches");
         r.finish();
         return std::make_shared<Concat>(branch_modules(specs, "Concat"));
       }},
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
