// Modules: layers with named parameters and buffers, train/eval mode, and
// Sequential, the Keras-style stack of layers.
//
//   nn::Sequential net{nn::Flatten(), nn::Dense(128, "relu"), nn::Dropout(0.2), nn::Dense(10)};
//   Generator gen(0);
//   net.build({1, 28, 28}, gen);         // per-example input shape; creates the weights
//   std::cout << net.summary();          // layer, output shape, parameters (like Keras)
//   Tensor logits = net(x);              // x [N,1,28,28] float32
//   net.eval();                          // dropout off, batch norm uses running stats
//
// Layers size their weights lazily: Dense(128) learns its input width in build(),
// from the shape the layer before it produces, as in Keras. Shapes passed to
// build() and printed by summary() are per example (no batch axis).
//
// Parameters are named by their path: "1.kernel", "1.bias" for the second layer of
// a Sequential. state() lists parameters and buffers (running statistics, the
// dropout generator's position) under those names; load_state() restores them, so
// a model file or checkpoint continues exactly where it stopped.
//
// Writing a layer: derive from Module, hold the tensors as members, list them in
// slots(), create them in build(), and give type()/config() so the layer can be
// saved and rebuilt (nn/registry.cpp maps the type name back to a constructor).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/tensor/random.h"
#include "deft/tensor/tensor.h"

namespace deft::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Creates the parameters for per-example input shape `input` (drawing initial
  // values from `gen`) and returns the per-example output shape. Building again
  // with the same shape keeps the weights; a different shape is a ShapeError.
  Shape build(const Shape& input, Generator& gen);
  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

  // x has a leading batch axis. Builds on first use when not built yet.
  Tensor operator()(const Tensor& x);
  virtual Tensor forward(const Tensor& x) = 0;

  virtual std::string type() const = 0;                              // "Dense"
  virtual nlohmann::json config() const { return nlohmann::json::object(); }  // constructor arguments

  NamedTensors named_parameters() const;
  std::vector<Tensor> parameters() const;
  NamedTensors named_buffers() const;
  NamedTensors state() const;  // parameters, then buffers
  // Copies every tensor of state() from `tensors` (shapes must match; `source`
  // names the file for errors). Missing or extra names are InputErrors.
  void load_state(const std::map<std::string, Tensor>& tensors, const std::string& source);
  int64_t num_parameters() const;

  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // Child modules in order, with their names ("0", "1", ... in a Sequential).
  virtual std::vector<std::pair<std::string, Module*>> children() const { return {}; }

 protected:
  struct Slot {
    const char* name;
    Tensor* tensor;
    bool buffer;  // saved and loaded, but not trained
  };
  // This module's own tensors (not its children's); may be undefined before build.
  virtual std::vector<Slot> slots() { return {}; }
  virtual Shape build_impl(const Shape& input, Generator& gen) = 0;
  // Marks a freshly made tensor as a trainable parameter.
  static Tensor parameter(Tensor t) { return t.set_requires_grad(true); }

 private:
  void collect(const std::string& prefix, bool params, bool buffers, NamedTensors& out) const;
  bool built_ = false;
  bool training_ = true;
  Shape input_shape_, output_shape_;
};

// A layer handle: lets Sequential{nn::Dense(128), ...} take layers by value.
class Layer {
 public:
  template <class M>
    requires std::is_base_of_v<Module, std::decay_t<M>> && (!std::is_lvalue_reference_v<M>)
  Layer(M&& m) : ptr_(std::make_shared<std::decay_t<M>>(std::move(m))) {}  // NOLINT: implicit on purpose
  template <class M>
    requires std::is_base_of_v<Module, M>
  Layer(std::shared_ptr<M> m) : ptr_(std::move(m)) {}  // NOLINT
  const std::shared_ptr<Module>& get() const { return ptr_; }

 private:
  std::shared_ptr<Module> ptr_;
};

class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<Layer> layers);
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  Sequential& add(Layer layer);

  Tensor forward(const Tensor& x) override;
  std::string type() const override { return "Sequential"; }
  nlohmann::json config() const override;  // {"layers": [{"type":..., "config":...}, ...]}
  std::vector<std::pair<std::string, Module*>> children() const override;

  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) const { return *layers_.at(i); }
  const std::vector<std::shared_ptr<Module>>& layers() const { return layers_; }

  // Keras-style table: layer (type), output shape (per example), parameter count.
  std::string summary() const;

 protected:
  Shape build_impl(const Shape& input, Generator& gen) override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// {"type": "Dense", "config": {...}} for one module (recursive for Sequential).
nlohmann::json module_spec(const Module& m);
// Rebuilds a module (unbuilt) from module_spec(); InputError on an unknown type or
// a bad config field.
std::shared_ptr<Module> make_module(const nlohmann::json& spec);
// Every layer type make_module knows.
std::vector<std::string> module_types();

}  // namespace deft::nn
