#include "deft/nn/module.h"

#include <set>

#include <fmt/format.h>

#include "deft/autograd/graph.h"
#include "deft/tensor/error.h"

namespace deft::nn {

Shape Module::build(const Shape& input, Generator& gen) {
  if (built_) {
    DEFT_CHECK_SHAPE(input == input_shape_, "{}: built for input {} but given {}", type(), shape_str(input_shape_),
                     shape_str(input));
    return output_shape_;
  }
  Shape out = build_impl(input, gen);
  input_shape_ = input;
  output_shape_ = std::move(out);
  built_ = true;
  return output_shape_;
}

Tensor Module::operator()(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.defined() && x.dim() >= 1, "{}: input needs a batch axis", type());
  if (!built_) {
    Shape per_example(x.shape().begin() + 1, x.shape().end());
    build(per_example, default_generator());
  }
  return forward(x);
}

void Module::collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const {
  // slots() is non-const only because it hands out pointers to members.
  for (const Slot& s : const_cast<Module*>(this)->slots()) {
    if (!s.tensor->defined() || (s.buffer ? !buffers : !params)) continue;
    out.emplace_back(prefix + s.name, *s.tensor);
  }
  for (const auto& [name, child] : children()) child->collect(prefix + name + ".", params, buffers, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, true, out);
  return out;
}

NamedTensors Module::state() const {
  NamedTensors out = named_parameters();
  for (auto& nt : named_buffers()) out.push_back(std::move(nt));
  return out;
}

void Module::load_state(const std::map<std::string, Tensor>& tensors, const std::string& source) {
  std::set<std::string> used;
  NoGradGuard no_grad;
  for (auto& [name, t] : state()) {
    auto it = tensors.find(name);
    DEFT_CHECK(it != tensors.end(), "{}: tensor '{}' is missing", source, name);
    DEFT_CHECK_SHAPE(it->second.shape() == t.shape() && it->second.dtype() == t.dtype(),
                     "{}: tensor '{}' is {} {} but the model needs {} {}", source, name,
                     dtype_name(it->second.dtype()), shape_str(it->second.shape()), dtype_name(t.dtype()),
                     shape_str(t.shape()));
    Tensor dst = t.detach();
    dst.copy_from(it->second);
    used.insert(name);
  }
  for (auto& [name, t] : tensors)
    DEFT_CHECK(used.count(name), "{}: tensor '{}' does not belong to this model", source, name);
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children()) child->train(on);
}

// ---- Sequential --------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<Layer> layers) {
  for (const Layer& l : layers) layers_.push_back(l.get());
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> layers) : layers_(std::move(layers)) {
  for (auto& l : layers_) DEFT_CHECK(l != nullptr, "Sequential: null layer");
}

Sequential& Sequential::add(Layer layer) {
  DEFT_CHECK(!built(), "Sequential: cannot add a layer after the model was built");
  layers_.push_back(layer.get());
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h);
  return h;
}

Shape Sequential::build_impl(const Shape& input, Generator& gen) {
  Shape s = input;
  for (size_t i = 0; i < layers_.size(); ++i) {
    try {
      s = layers_[i]->build(s, gen);
    } catch (const ShapeError& e) {
      fail<ShapeError>("layer {} ({}): {}", i, layers_[i]->type(), e.what());
    }
  }
  return s;
}

std::vector<std::pair<std::string, Module*>> Sequential::children() const {
  std::vector<std::pair<std::string, Module*>> out;
  for (size_t i = 0; i < layers_.size(); ++i) out.emplace_back(std::to_string(i), layers_[i].get());
  return out;
}

nlohmann::json Sequential::config() const {
  nlohmann::json layers = nlohmann::json::array();
  for (auto& l : layers_) layers.push_back(module_spec(*l));
  return {{"layers", layers}};
}

namespace {
std::string with_commas(int64_t n) {
  std::string s = std::to_string(n), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}
std::string per_example(const Shape& s) {
  std::string out = "(None";
  for (int64_t d : s) out += fmt::format(", {}", d);
  return out + ")";
}
}  // namespace

std::string Sequential::summary() const {
  DEFT_CHECK(built(), "summary: the model is not built yet (call build(input_shape) or fit first)");
  struct Row { std::string layer, shape, params; };
  std::vector<Row> rows;
  int64_t trainable = 0, other = 0;
  // Containers (a Sequential inside a residual Add, say) list their children below
  // them, indented and named by path ("3.0.1"); only top-level rows add to the totals.
  auto add_rows = [&rows](const auto& self, const Module& m, const std::string& path,
                          size_t depth) -> void {
    rows.push_back({fmt::format("{}{} ({})", std::string(2 * depth, ' '), path, m.type()),
                    per_example(m.output_shape()), with_commas(m.num_parameters())});
    for (const auto& [name, child] : m.children())
      self(self, *child, fmt::format("{}.{}", path, name), depth + 1);
  };
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Module& l = *layers_[i];
    const int64_t n = l.num_parameters();
    for (auto& [name, t] : l.named_buffers()) other += t.dtype() == DType::Float32 ? t.numel() : 0;
    trainable += n;
    add_rows(add_rows, l, std::to_string(i), 0);
  }
  size_t w0 = 14, w1 = 14;
  for (auto& r : rows) {
    w0 = std::max(w0, r.layer.size() + 2);
    w1 = std::max(w1, r.shape.size() + 2);
  }
  const size_t width = w0 + w1 + 12;
  std::string out = fmt::format("Model: Sequential, input {}\n{}\n", per_example(input_shape()), std::string(width, '='));
  out += fmt::format("{:<{}}{:<{}}{:>12}\n{}\n", "Layer (type)", w0, "Output Shape", w1, "Param #",
                     std::string(width, '='));
  for (auto& r : rows) out += fmt::format("{:<{}}{:<{}}{:>12}\n", r.layer, w0, r.shape, w1, r.params);
  out += std::string(width, '=') + "\n";
  out += fmt::format("Total params: {}\nTrainable params: {}\nNon-trainable params: {}\n", with_commas(trainable + other),
                     with_commas(trainable), with_commas(other));
  return out;
}

nlohmann::json module_spec(const Module& m) { return {{"type", m.type()}, {"config", m.config()}}; }

}  // namespace deft::nn
