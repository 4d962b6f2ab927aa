#include "deft/nn/layers.h"

#include <algorithm>

#include "deft/autograd/ops.h"
#include "deft/autograd/ops_nn.h"
#include "deft/tensor/error.h"

namespace deft::nn {

namespace {
const std::vector<std::string>& activation_names() {
  static const std::vector<std::string> names{"",     "linear", "relu",  "leaky_relu", "elu",
                                              "gelu", "silu",   "swish", "sigmoid",    "tanh", "softmax"};
  return names;
}
Tensor activate_with(const std::string& name, double param, const Tensor& x) {
  if (name.empty() || name == "linear") return x;
  if (name == "relu") return relu(x);
  if (name == "leaky_relu") return leaky_relu(x, static_cast<float>(param));
  if (name == "elu") return elu(x, static_cast<float>(param));
  if (name == "gelu") return gelu(x);
  if (name == "silu" || name == "swish") return silu(x);
  if (name == "sigmoid") return sigmoid(x);
  if (name == "tanh") return tanh(x);
  if (name == "softmax") return softmax(x, static_cast<int64_t>(param));
  std::string valid;
  for (const auto& n : activation_names())
    if (!n.empty()) valid += (valid.empty() ? "" : ", ") + n;
  fail("unknown activation '{}' (valid: {})", name, valid);
}
double default_param(const std::string& name) {
  if (name == "leaky_relu") return 0.01;
  if (name == "elu") return 1.0;
  if (name == "softmax") return -1.0;
  return 0.0;
}
}  // namespace

bool is_activation_name(const std::string& name) {
  for (const auto& n : activation_names())
    if (n == name) return true;
  return false;
}

Tensor activate(const std::string& name, const Tensor& x) { return activate_with(name, default_param(name), x); }

// ---- Dense ----------------------------------------------------------------------------

Dense::Dense(int64_t units, std::string activation, DenseOptions options)
    : units_(units), activation_(std::move(activation)), opt_(std::move(options)) {
  DEFT_CHECK(units_ > 0, "Dense: units must be positive, got {}", units_);
  DEFT_CHECK(is_activation_name(activation_), "Dense: unknown activation '{}'", activation_);
  check_initialiser(opt_.kernel_init);
  check_initialiser(opt_.bias_init);
}

Shape Dense::build_impl(const Shape& input, Generator& gen) {
  DEFT_CHECK_SHAPE(!input.empty(), "{}: needs inputs with a feature axis, got per-example shape {}", type(),
                   shape_str(input));
  const int64_t in = input.back();
  kernel_ = parameter(initialise(opt_.kernel_init, {in, units_}, in, units_, gen));
  if (opt_.use_bias) bias_ = parameter(initialise(opt_.bias_init, {units_}, in, units_, gen));
  Shape out = input;
  out.back() = units_;
  return out;
}

Tensor Dense::forward(const Tensor& x) {
  const int64_t in = kernel_.size(0);
  DEFT_CHECK_SHAPE(x.dim() >= 2 && x.shape().back() == in, "{}: expects inputs [N,...,{}], got {}", type(), in,
                   shape_str(x.shape()));
  Tensor y;
  if (x.dim() == 2) {
    y = linear(x, kernel_, bias_);
  } else {
    Shape out = x.shape();
    out.back() = units_;
    y = reshape(linear(reshape(x, {-1, in}), kernel_, bias_), out);
  }
  return activate(activation_, y);
}

nlohmann::json Dense::config() const {
  return {{"units", units_},
          {"activation", activation_},
          {"use_bias", opt_.use_bias},
          {"kernel_init", opt_.kernel_init},
          {"bias_init", opt_.bias_init}};
}

Linear::Linear(int64_t in_features, int64_t out_features, DenseOptions options)
    : Dense(out_features, "", std::move(options)), in_features_(in_features) {
  DEFT_CHECK(in_features > 0, "Linear: in_features must be positive, got {}", in_features);
}

Shape Linear::build_impl(const Shape& input, Generator& gen) {
  DEFT_CHECK_SHAPE(!input.empty() && input.back() == in_features_, "Linear({}, {}): input shape {} does not end in {}",
                   in_features_, units(), shape_str(input), in_features_);
  return Dense::build_impl(input, gen);
}

nlohmann::json Linear::config() const {
  nlohmann::json j = Dense::config();
  j.erase("activation");
  j.erase("units");
  j["in_features"] = in_features_;
  j["out_features"] = units();
  return j;
}

// ---- Dropout --------------------------------------------------------------------------

Dropout::Dropout(double rate) : Dropout(rate, "Dropout") {}

Dropout::Dropout(double rate, const char* layer) : rate_(rate) {
  DEFT_CHECK(rate >= 0 && rate < 1, "{}: rate must be in [0, 1), got {}", layer, rate);
}

Tensor Dropout::drop(const Tensor& x, float p, Generator& gen) const { return dropout(x, p, gen); }

Shape Dropout::build_impl(const Shape& input, Generator& gen) {
  const auto seed = static_cast<int64_t>(gen.next_u64() >> 1);
  rng_ = Tensor::from_vector(std::vector<int64_t>{seed, 0});
  return input;
}

Tensor Dropout::forward(const Tensor& x) {
  if (!training() || rate_ == 0) return x;
  auto* state = rng_.data<int64_t>();
  Generator g(static_cast<uint64_t>(state[0]));
  g.set_state(static_cast<uint64_t>(state[0]), static_cast<uint64_t>(state[1]));
  Tensor y = drop(x, static_cast<float>(rate_), g);
  state[1] = static_cast<int64_t>(g.offset());
  return y;
}

// ---- Flatten / Reshape ----------------------------------------------------------------

Shape Flatten::build_impl(const Shape& input, Generator&) { return {shape_numel(input)}; }

Tensor Flatten::forward(const Tensor& x) { return flatten(x, 1); }

Reshape::Reshape(Shape shape) : shape_(std::move(shape)) {
  int unknown = 0;
  for (int64_t d : shape_) {
    DEFT_CHECK(d > 0 || d == -1, "Reshape: dimensions must be positive or -1, got {}", shape_str(shape_));
    unknown += d == -1;
  }
  DEFT_CHECK(unknown <= 1, "Reshape: at most one -1 in {}", shape_str(shape_));
}

Shape Reshape::build_impl(const Shape& input, Generator&) {
  const int64_t n = shape_numel(input);
  int64_t known = 1;
  for (int64_t d : shape_) known *= d == -1 ? 1 : d;
  resolved_ = shape_;
  for (int64_t& d : resolved_)
    if (d == -1) d = known > 0 && n % known == 0 ? n / known : -1;
  DEFT_CHECK_SHAPE(shape_numel(resolved_) == n && n >= 0, "Reshape: cannot reshape {} to {}", shape_str(input),
                   shape_str(shape_));
  return resolved_;
}

Tensor Reshape::forward(const Tensor& x) {
  Shape s{x.size(0)};
  s.insert(s.end(), resolved_.begin(), resolved_.end());
  return reshape(x, s);
}

// ---- Activation -----------------------------------------------------------------------

Activation::Activation(std::string name, double param) : name_(std::move(name)), param_(param) {
  DEFT_CHECK(is_activation_name(name_), "Activation: unknown activation '{}'", name_);
  if (param_ == 0) param_ = default_param(name_);
}

Tensor Activation::forward(const Tensor& x) { return activate_with(name_, param_, x); }

std::string Activation::type() const {
  if (name_ == "relu") return "ReLU";
  if (name_ == "leaky_relu") return "LeakyReLU";
  if (name_ == "elu") return "ELU";
  if (name_ == "gelu") return "GELU";
  if (name_ == "silu" || name_ == "swish") return "SiLU";
  if (name_ == "sigmoid") return "Sigmoid";
  if (name_ == "tanh") return "Tanh";
  if (name_ == "softmax") return "Softmax";
  return "Activation";
}

nlohmann::json Activation::config() const {
  nlohmann::json j{{"activation", name_}};
  if (name_ == "leaky_relu") j["slope"] = param_;
  if (name_ == "elu") j["alpha"] = param_;
  if (name_ == "softmax") j["axis"] = static_cast<int64_t>(param_);
  return j;
}

// ---- normalisation ----------------------------------------------------------------------

namespace {
nlohmann::json norm_config(const NormOptions& o) {
  return {{"momentum", o.momentum}, {"eps", o.eps}, {"affine", o.affine}};
}
}  // namespace

nlohmann::json BatchNorm::config() const { return norm_config(opt_); }
nlohmann::json LayerNorm::config() const { return norm_config(opt_); }

std::vector<Module::Slot> BatchNorm::slots() {
  return {{"gamma", &gamma_, false},
          {"beta", &beta_, false},
          {"running_mean", &running_mean_, true},
          {"running_var", &running_var_, true}};
}

Shape BatchNorm::build_impl(const Shape& input, Generator&) {
  DEFT_CHECK_SHAPE(std::find(ranks_.begin(), ranks_.end(), input.size()) != ranks_.end(),
                   "{}: expects per-example shape {}, got {}", type(), expects_, shape_str(input));
  const int64_t c = input[0];
  if (opt_.affine) {
    gamma_ = parameter(Tensor::ones({c}));
    beta_ = parameter(Tensor::zeros({c}));
  }
  running_mean_ = Tensor::zeros({c});
  running_var_ = Tensor::ones({c});
  return input;
}

Tensor BatchNorm::forward(const Tensor& x) {
  DEFT_CHECK_SHAPE(x.dim() >= 1 && std::find(ranks_.begin(), ranks_.end(), static_cast<size_t>(x.dim() - 1)) != ranks_.end() &&
                       x.size(1) == running_mean_.size(0),
                   "{}: expects inputs [N] + per-example {} with C = {}, got {}", type(), expects_,
                   running_mean_.size(0), shape_str(x.shape()));
  return batch_norm(x, gamma_, beta_, running_mean_, running_var_, training(), static_cast<float>(opt_.momentum),
                    static_cast<float>(opt_.eps));
}

std::vector<Module::Slot> LayerNorm::slots() { return {{"gamma", &gamma_, false}, {"beta", &beta_, false}}; }

Shape LayerNorm::build_impl(const Shape& input, Generator&) {
  DEFT_CHECK_SHAPE(!input.empty(), "LayerNorm: needs a feature axis, got per-example shape {}", shape_str(input));
  if (opt_.affine) {
    gamma_ = parameter(Tensor::ones({input.back()}));
    beta_ = parameter(Tensor::zeros({input.back()}));
  }
  return input;
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, gamma_, beta_, static_cast<float>(opt_.eps)); }

// ---- Embedding --------------------------------------------------------------------------

Embedding::Embedding(int64_t vocabulary, int64_t dim, std::string init)
    : vocabulary_(vocabulary), dim_(dim), init_(std::move(init)) {
  DEFT_CHECK(vocabulary > 0 && dim > 0, "Embedding: vocabulary and dim must be positive, got {} and {}", vocabulary,
             dim);
  check_initialiser(init_);
}

Shape Embedding::build_impl(const Shape& input, Generator& gen) {
  table_ = parameter(initialise(init_, {vocabulary_, dim_}, vocabulary_, dim_, gen));
  Shape out = input;
  out.push_back(dim_);
  return out;
}

Tensor Embedding::forward(const Tensor& x) { return embedding(table_, x.dtype() == DType::Int64 ? x : x.to(DType::Int64)); }

nlohmann::json Embedding::config() const {
  return {{"vocabulary", vocabulary_}, {"dim", dim_}, {"init", init_}};
}

}  // namespace deft::nn
