// Building a Plan from a module spec: the layer types of nn/registry.cpp, read with
// the same config keys and the same shape rules (nn/layers.cpp, nn/conv.cpp), but
// turned into ops instead of Modules.
#include "deft/deploy/infer_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>

#include "deft/tensor/config_reader.h"
#include "deft/tensor/error.h"

namespace deft::deploy::infer {

using json = nlohmann::json;

namespace {

struct Size2 {
  int64_t h = 1, w = 1;
};

Size2 size2(const json* v, const std::string& owner, const char* key, Size2 fallback) {
  if (!v) return fallback;
  if (v->is_number_integer()) return {v->get<int64_t>(), v->get<int64_t>()};
  if (v->is_array() && (v->size() == 1 || v->size() == 2) &&
      std::all_of(v->begin(), v->end(), [](const json& x) { return x.is_number_integer(); })) {
    const auto s = v->get<std::vector<int64_t>>();
    return s.size() == 1 ? Size2{s[0], s[0]} : Size2{s[0], s[1]};
  }
  fail("{}: field '{}': expected an int or [h, w], got {}", owner, key, v->dump());
}

// nn::Padding: "valid", "same" (TensorFlow's), one int, [h, w] or [top, bottom, left, right].
struct Padding {
  bool same = false;
  std::array<int64_t, 4> pads{0, 0, 0, 0};

  static Padding parse(const json* v, const std::string& owner) {
    Padding p;
    if (!v) return p;
    auto is_int = [](const json& x) { return x.is_number_integer() && x.get<int64_t>() >= 0; };
    if (v->is_string() && (*v == "valid" || *v == "same")) {
      p.same = *v == "same";
      return p;
    }
    if (is_int(*v)) {
      p.pads.fill(v->get<int64_t>());
      return p;
    }
    if (v->is_array() && (v->size() == 1 || v->size() == 2 || v->size() == 4) &&
        std::all_of(v->begin(), v->end(), is_int)) {
      const auto s = v->get<std::vector<int64_t>>();
      if (s.size() == 1)
        p.pads.fill(s[0]);
      else if (s.size() == 2)
        p.pads = {s[0], s[0], s[1], s[1]};
      else
        p.pads = {s[0], s[1], s[2], s[3]};
      return p;
    }
    fail("{}: padding must be \"valid\", \"same\", an int >= 0, [h, w] or [top, bottom, left, right], got {}",
         owner, v->dump());
  }

  // autograd/ops_conv.cpp same_padding: output ceil(in / stride), the odd pixel after.
  static std::array<int64_t, 2> same_pad(int64_t in, int64_t k, int64_t s, int64_t d) {
    const int64_t out = (in + s - 1) / s;
    const int64_t total = std::max<int64_t>(0, (out - 1) * s + d * (k - 1) + 1 - in);
    return {total / 2, total - total / 2};
  }
  std::array<int64_t, 4> resolve(int64_t h, int64_t w, Size2 k, Size2 s, Size2 d = {}) const {
    if (!same) return pads;
    const auto ph = same_pad(h, k.h, s.h, d.h), pw = same_pad(w, k.w, s.w, d.w);
    return {ph[0], ph[1], pw[0], pw[1]};
  }
};

int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t before, int64_t after,
                         bool ceil_mode) {
  const int64_t span = in + before + after - kernel;
  if (span < 0) return 0;
  int64_t out = (ceil_mode ? (span + stride - 1) / stride : span / stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + before) --out;
  return out;
}

}  // namespace

// Walks a module spec, emitting steps into a Plan. A value is an id (its buffer is
// decided later) with a per-example shape; views (Flatten, Reshape) keep the id.
class PlanBuilder {
 public:
  PlanBuilder(Plan& plan, const std::map<std::string, Tensor>& weights, std::string source)
      : plan_(plan), weights_(weights), source_(std::move(source)) {}

  struct Val {
    int id;
    Shape shape;
  };

  Val input(const Shape& shape) { return {new_value(shape), shape}; }

  Val emit(const json& spec, const std::string& prefix, Val in) {
    DEFT_CHECK(spec.is_object() && spec.contains("type") && spec["type"].is_string(),
               "{}: layer spec must be an object with a string 'type', got {}", source_, spec.dump());
    const std::string type = spec["type"].get<std::string>();
    const json config = spec.value("config", json::object());
    const std::string owner =
        fmt::format("{}: layer {} ({})", source_, prefix.empty() ? "<top>" : prefix, type);
    ConfigReader r(owner, config);
    try {
      return emit_layer(type, r, prefix, std::move(in), owner);
    } catch (const ShapeError& e) {
      const std::string msg = e.what();
      if (msg.rfind(source_, 0) == 0) throw;
      fail<ShapeError>("{}: {}", owner, msg);
    }
  }

  void finish(const Val& out) {
    plan_.output_value_ = out.id;
    plan_.output_shape_ = out.shape;
    for (auto& [name, t] : weights_)
      DEFT_CHECK(used_.count(name) || name.ends_with(".rng") || name == "rng",
                 "{}: tensor 'model/{}' does not belong to the architecture", source_, name);
  }

 private:
  int new_value(const Shape& shape) {
    plan_.value_numel_.push_back(shape_numel(shape));
    consumers_.push_back(0);
    producer_.push_back(-1);
    return static_cast<int>(plan_.value_numel_.size()) - 1;
  }

  Val add_step(std::unique_ptr<Op> op, const std::vector<int>& inputs) {
    Plan::Step s;
    Shape out_shape = op->output_shape;
    s.op = std::move(op);
    s.inputs = inputs;
    s.in_ptrs.resize(inputs.size());
    for (int v : inputs) ++consumers_[v];
    s.output = new_value(out_shape);
    producer_[s.output] = static_cast<int>(plan_.steps_.size());
    plan_.steps_.push_back(std::move(s));
    return {plan_.steps_.back().output, out_shape};
  }

  // The step that produced v, when v can still be changed in place of that step: it is
  // the last step so far and nothing has read v yet.
  Plan::Step* open_producer(const Val& v) {
    const int p = producer_[v.id];
    if (p < 0 || p + 1 != static_cast<int>(plan_.steps_.size()) || consumers_[v.id] != 0) return nullptr;
    return &plan_.steps_[p];
  }

  Val activate(Val v, const Activation& act) {
    if (act.none()) return v;
    if (Plan::Step* s = open_producer(v); s && !s->has_activation && s->op->fuse_activation(act)) {
      s->has_activation = true;
      return v;
    }
    auto op = std::make_unique<ActivationOp>(v.shape, act);
    return add_step(std::move(op), {v.id});
  }

  // Softmax along `axis` of the batch tensor (-1: last), as nn's activation takes it.
  Val softmax(Val v, int64_t axis, const std::string& owner) {
    const auto rank = static_cast<int64_t>(v.shape.size()) + 1;
    const int64_t a = axis < 0 ? axis + rank : axis;
    DEFT_CHECK(a >= 1 && a < rank, "{}: softmax over axis {} of inputs {} is not supported for inference",
               owner, axis, shape_str(v.shape));
    return add_step(std::make_unique<SoftmaxOp>(v.shape, a - 1), {v.id});
  }

  // An activation by name (nn::activate's names), softmax included.
  // A parameter of 0 means the activation's default (nn::Activation's rule; Dense, Conv2d
  // and Add name theirs without one).
  Val activate_named(Val v, const std::string& name, double param, const std::string& owner) {
    if (param == 0) param = name == "leaky_relu" ? 0.01 : name == "elu" ? 1.0 : 0.0;
    if (name == "softmax") return softmax(std::move(v), param == 0 ? -1 : static_cast<int64_t>(param), owner);
    Activation act;
    DEFT_CHECK(Activation::parse(name, param, &act), "{}: unknown activation '{}'", owner, name);
    return activate(std::move(v), act);
  }

  // A model tensor, checked against the shape the architecture implies.
  const Tensor& tensor(const std::string& name, const Shape& want, bool parameter = true) {
    auto it = weights_.find(name);
    DEFT_CHECK(it != weights_.end(), "{}: tensor 'model/{}' is missing", source_, name);
    DEFT_CHECK_SHAPE(it->second.dtype() == DType::Float32 && it->second.shape() == want,
                     "{}: tensor 'model/{}' is {} {} but the architecture needs float32 {}", source_, name,
                     dtype_name(it->second.dtype()), shape_str(it->second.shape()), shape_str(want));
    used_.insert(name);
    if (parameter) plan_.parameters_ += it->second.numel();
    return it->second;
  }
  std::vector<float> floats(const std::string& name, int64_t n, bool parameter = true) {
    return tensor(name, {n}, parameter).contiguous_copy().to_vector<float>();
  }

  static void check_image(const Val& v, const std::string& owner) {
    DEFT_CHECK_SHAPE(v.shape.size() == 3, "{}: expects per-example images [C,H,W], got {}", owner,
                     shape_str(v.shape));
  }

  Val batch_norm(ConfigReader& r, const std::string& prefix, Val in, const std::string& owner, bool two_d) {
    r.number("momentum", 0.1);
    const double eps = r.number("eps", 1e-5);
    const bool affine = r.boolean("affine", true);
    r.finish();
    if (two_d) check_image(in, owner);
    DEFT_CHECK_SHAPE(!in.shape.empty() && (two_d || in.shape.size() <= 2), "{}: unexpected input {}", owner,
                     shape_str(in.shape));
    const int64_t c = in.shape[0];
    std::vector<float> gamma(c, 1.0f), beta(c, 0.0f);
    if (affine) {
      gamma = floats(prefix + "gamma", c);
      beta = floats(prefix + "beta", c);
    }
    const std::vector<float> mean = floats(prefix + "running_mean", c, false);
    const std::vector<float> var = floats(prefix + "running_var", c, false);
    // autograd/ops_nn.cpp batch_norm in eval mode: y = x * scale + shift.
    std::vector<float> scale(c), shift(c);
    for (int64_t i = 0; i < c; ++i) {
      const float rstd = 1.0f / std::sqrt(var[i] + static_cast<float>(eps));
      scale[i] = rstd * gamma[i];
      shift[i] = beta[i] - mean[i] * scale[i];
    }
    if (Plan::Step* s = open_producer(in);
        s && !s->has_activation && s->op->fold_channel_affine(scale, shift))
      return in;
    return add_step(std::make_unique<AffineOp>(in.shape, std::move(scale), std::move(shift)), {in.id});
  }

  Val pool(ConfigReader& r, Val in, const std::string& owner, bool average) {
    const json* kernel = r.raw("kernel_size");
    const json* stride = r.raw("stride");
    const json* padding = r.raw("padding");
    const bool ceil_mode = r.boolean("ceil_mode", false);
    const bool include_pad = average ? r.boolean("count_include_pad", true) : true;
    r.finish();
    DEFT_CHECK(kernel != nullptr, "{}: config needs field 'kernel_size'", owner);
    check_image(in, owner);
    const Size2 k = size2(kernel, owner, "kernel_size", {});
    Size2 s = size2(stride, owner, "stride", {0, 0});
    if (s.h == 0 && s.w == 0) s = k;
    DEFT_CHECK(k.h > 0 && k.w > 0 && s.h > 0 && s.w > 0, "{}: kernel and stride must be positive", owner);
    PoolGeometry g;
    g.kind = average ? PoolGeometry::Kind::Avg : PoolGeometry::Kind::Max;
    g.C = in.shape[0];
    g.H = in.shape[1];
    g.W = in.shape[2];
    g.kernel = {k.h, k.w};
    g.stride = {s.h, s.w};
    g.padding = Padding::parse(padding, owner).resolve(g.H, g.W, k, s);
    g.count_include_pad = include_pad;
    g.Ho = pool_output_size(g.H, k.h, s.h, g.padding[0], g.padding[1], ceil_mode);
    g.Wo = pool_output_size(g.W, k.w, s.w, g.padding[2], g.padding[3], ceil_mode);
    DEFT_CHECK_SHAPE(g.Ho >= 1 && g.Wo >= 1, "{}: kernel {}x{} does not fit input {}", owner, k.h, k.w,
                     shape_str(in.shape));
    return add_step(std::make_unique<PoolOp>(g), {in.id});
  }

  Val conv(ConfigReader& r, const std::string& prefix, Val in, const std::string& owner) {
    const int64_t filters = r.integer("filters");
    const json* kernel = r.raw("kernel_size");
    const json* stride = r.raw("stride");
    const json* padding = r.raw("padding");
    const json* dilation = r.raw("dilation");
    const int64_t groups = r.integer("groups", 1);
    const bool use_bias = r.boolean("use_bias", true);
    const std::string activation = r.string("activation", "");
    r.string("kernel_init", "");
    r.string("bias_init", "");
    r.finish();
    DEFT_CHECK(kernel != nullptr, "{}: config needs field 'kernel_size'", owner);
    check_image(in, owner);
    ConvGeometry g;
    const Size2 k = size2(kernel, owner, "kernel_size", {}), s = size2(stride, owner, "stride", {}),
                d = size2(dilation, owner, "dilation", {});
    DEFT_CHECK(
        filters > 0 && groups > 0 && filters % groups == 0 && k.h > 0 && k.w > 0 && s.h > 0 && s.w > 0 &&
            d.h > 0 && d.w > 0,
        "{}: filters, kernel, stride, dilation and groups must be positive (filters divisible by groups)",
        owner);
    g.C = in.shape[0];
    g.H = in.shape[1];
    g.W = in.shape[2];
    g.O = filters;
    g.kh = k.h;
    g.kw = k.w;
    g.stride = {s.h, s.w};
    g.dilation = {d.h, d.w};
    g.groups = groups;
    g.padding = Padding::parse(padding, owner).resolve(g.H, g.W, k, s, d);
    DEFT_CHECK_SHAPE(g.C % groups == 0, "{}: input channels ({}) do not divide by groups ({})", owner, g.C,
                     groups);
    g.Ho = (g.H + g.padding[0] + g.padding[1] - d.h * (k.h - 1) - 1) / s.h + 1;
    g.Wo = (g.W + g.padding[2] + g.padding[3] - d.w * (k.w - 1) - 1) / s.w + 1;
    DEFT_CHECK_SHAPE(g.Ho >= 1 && g.Wo >= 1, "{}: kernel {}x{} does not fit input {}", owner, k.h, k.w,
                     shape_str(in.shape));
    const Tensor& w = tensor(prefix + "kernel", {filters, g.C / groups, k.h, k.w});
    const Tensor b = use_bias ? tensor(prefix + "bias", {filters}) : Tensor();
    Val out = add_step(std::make_unique<ConvOp>(g, w, b), {in.id});
    return activate_named(std::move(out), activation, 0, owner);
  }

  Val dense(const Val& in, const std::string& prefix, int64_t units, bool use_bias,
            const std::string& owner) {
    DEFT_CHECK_SHAPE(!in.shape.empty(), "{}: needs inputs with a feature axis, got {}", owner,
                     shape_str(in.shape));
    const Tensor& w = tensor(prefix + "kernel", {in.shape.back(), units});
    const Tensor b = use_bias ? tensor(prefix + "bias", {units}) : Tensor();
    return add_step(std::make_unique<LinearOp>(in.shape, w, b), {in.id});
  }

  std::vector<Val> branches(ConfigReader& r, const std::string& prefix, const Val& in,
                            const std::string& owner) {
    const json* specs = r.raw("branches");
    DEFT_CHECK(specs && specs->is_array() && specs->size() >= 2,
               "{}: config needs a 'branches' array of layer specs", owner);
    // Every branch reads `in`: none may fold or fuse into the op that produced it.
    ++consumers_[in.id];
    std::vector<Val> outs;
    for (size_t i = 0; i < specs->size(); ++i)
      outs.push_back(emit((*specs)[i], fmt::format("{}{}.", prefix, i), in));
    return outs;
  }

  Val emit_layer(const std::string& type, ConfigReader& r, const std::string& prefix, Val in,
                 const std::string& owner) {
    if (type == "Sequential") {
      const json* layers = r.raw("layers");
      DEFT_CHECK(layers && layers->is_array(), "{}: config needs a 'layers' array", owner);
      r.finish();
      for (size_t i = 0; i < layers->size(); ++i)
        in = emit((*layers)[i], fmt::format("{}{}.", prefix, i), in);
      return in;
    }
    ++plan_.layers_;
    if (type == "Dense" || type == "Linear") {
      int64_t units;
      std::string activation;
      if (type == "Dense") {
        units = r.integer("units");
        activation = r.string("activation", "");
      } else {
        const int64_t in_features = r.integer("in_features");
        units = r.integer("out_features");
        DEFT_CHECK_SHAPE(in.shape.empty() || in.shape.back() == in_features || in_features == 0,
                         "{}: input shape {} does not end in {}", owner, shape_str(in.shape), in_features);
      }
      const bool use_bias = r.boolean("use_bias", true);
      r.string("kernel_init", "");
      r.string("bias_init", "");
      r.finish();
      DEFT_CHECK(units > 0, "{}: units must be positive, got {}", owner, units);
      return activate_named(dense(in, prefix, units, use_bias, owner), activation, 0, owner);
    }
    if (type == "Dropout" || type == "Dropout2d") {
      r.number("rate");
      r.finish();
      used_.insert(prefix + "rng");
      return in;
    }
    if (type == "Identity") {
      r.finish();
      return in;
    }
    if (type == "Flatten") {
      r.finish();
      return {in.id, {shape_numel(in.shape)}};
    }
    if (type == "Reshape") {
      Shape target = r.integers("shape");
      r.finish();
      const int64_t n = shape_numel(in.shape);
      int64_t known = 1;
      for (int64_t d : target) known *= d == -1 ? 1 : d;
      for (int64_t& d : target)
        if (d == -1) d = known > 0 && n % known == 0 ? n / known : -1;
      DEFT_CHECK_SHAPE(shape_numel(target) == n &&
                           std::all_of(target.begin(), target.end(), [](int64_t d) { return d > 0; }),
                       "{}: cannot reshape {} to {}", owner, shape_str(in.shape), shape_str(target));
      return {in.id, target};
    }
    if (type == "BatchNorm1d") return batch_norm(r, prefix, std::move(in), owner, false);
    if (type == "BatchNorm2d") return batch_norm(r, prefix, std::move(in), owner, true);
    if (type == "LayerNorm") {
      r.number("momentum", 0.1);
      const double eps = r.number("eps", 1e-5);
      const bool affine = r.boolean("affine", true);
      r.finish();
      DEFT_CHECK_SHAPE(!in.shape.empty(), "{}: needs a feature axis", owner);
      std::vector<float> gamma, beta;
      if (affine) {
        gamma = floats(prefix + "gamma", in.shape.back());
        beta = floats(prefix + "beta", in.shape.back());
      }
      return add_step(
          std::make_unique<LayerNormOp>(in.shape, std::move(gamma), std::move(beta), static_cast<float>(eps)),
          {in.id});
    }
    if (type == "Conv2d") return conv(r, prefix, std::move(in), owner);
    if (type == "MaxPool2d") return pool(r, std::move(in), owner, false);
    if (type == "AvgPool2d") return pool(r, std::move(in), owner, true);
    if (type == "AdaptiveAvgPool2d") {
      const json* size = r.raw("output_size");
      r.finish();
      DEFT_CHECK(size != nullptr, "{}: config needs field 'output_size'", owner);
      check_image(in, owner);
      const Size2 s = size2(size, owner, "output_size", {});
      DEFT_CHECK(s.h > 0 && s.w > 0, "{}: output_size must be positive", owner);
      PoolGeometry g;
      g.kind = PoolGeometry::Kind::AdaptiveAvg;
      g.C = in.shape[0];
      g.H = in.shape[1];
      g.W = in.shape[2];
      g.Ho = s.h;
      g.Wo = s.w;
      DEFT_CHECK_SHAPE(g.H >= 1 && g.W >= 1, "{}: input {} has an empty plane", owner, shape_str(in.shape));
      return add_step(std::make_unique<PoolOp>(g), {in.id});
    }
    if (type == "GlobalAvgPool2d") {
      r.finish();
      check_image(in, owner);
      PoolGeometry g;
      g.kind = PoolGeometry::Kind::GlobalAvg;
      g.C = in.shape[0];
      g.H = in.shape[1];
      g.W = in.shape[2];
      g.Ho = g.Wo = 1;
      return add_step(std::make_unique<PoolOp>(g), {in.id});
    }
    if (type == "Add") {
      const std::string activation = r.string("activation", "");
      std::vector<Val> outs = branches(r, prefix, in, owner);
      r.finish();
      std::vector<Shape> shapes;
      std::vector<int> ids;
      for (const Val& v : outs) {
        DEFT_CHECK_SHAPE(v.shape == outs[0].shape,
                         "{}: the branches' outputs must have one shape, got {} and {}", owner,
                         shape_str(outs[0].shape), shape_str(v.shape));
        shapes.push_back(v.shape);
        ids.push_back(v.id);
      }
      Val sum = add_step(std::make_unique<AddOp>(shapes, Activation{}), ids);
      return activate_named(std::move(sum), activation, 0, owner);
    }
    if (type == "Concat") {
      std::vector<Val> outs = branches(r, prefix, in, owner);
      r.finish();
      std::vector<Shape> shapes;
      std::vector<int> ids;
      for (const Val& v : outs) {
        DEFT_CHECK_SHAPE(!v.shape.empty() && v.shape.size() == outs[0].shape.size() &&
                             std::equal(v.shape.begin() + 1, v.shape.end(), outs[0].shape.begin() + 1),
                         "{}: the branches' outputs must match on every axis but the channels, got {} and {}",
                         owner, shape_str(outs[0].shape), shape_str(v.shape));
        shapes.push_back(v.shape);
        ids.push_back(v.id);
      }
      return add_step(std::make_unique<ConcatOp>(shapes), ids);
    }
    if (type == "Embedding") {
      const int64_t vocabulary = r.integer("vocabulary"), dim = r.integer("dim");
      r.string("init", "");
      r.finish();
      const Tensor& table = tensor(prefix + "embeddings", {vocabulary, dim});
      return add_step(std::make_unique<EmbeddingOp>(in.shape, table), {in.id});
    }
    // Activation layers: "Activation" with a name, or ReLU, Softmax, ... by type.
    static const std::map<std::string, std::string> by_type{
        {"ReLU", "relu"}, {"LeakyReLU", "leaky_relu"}, {"ELU", "elu"},   {"GELU", "gelu"},
        {"SiLU", "silu"}, {"Sigmoid", "sigmoid"},      {"Tanh", "tanh"}, {"Softmax", "softmax"}};
    const auto it = by_type.find(type);
    if (type == "Activation" || it != by_type.end()) {
      std::string name = r.string("activation", "");
      if (name.empty() && it != by_type.end()) name = it->second;
      double param = 0;
      if (name == "leaky_relu") param = r.number("slope", 0.01);
      if (name == "elu") param = r.number("alpha", 1.0);
      if (name == "softmax") param = static_cast<double>(r.integer("axis", -1));
      r.finish();
      return activate_named(std::move(in), name, param, owner);
    }
    fail(
        "{}: unknown layer type '{}' (the inference runtime knows Sequential, Dense, Linear, Dropout, "
        "Dropout2d, "
        "Flatten, Reshape, BatchNorm1d, BatchNorm2d, LayerNorm, Conv2d, MaxPool2d, AvgPool2d, "
        "AdaptiveAvgPool2d, "
        "GlobalAvgPool2d, Identity, Add, Concat, Embedding and the activations)",
        owner, type);
  }

  Plan& plan_;
  const std::map<std::string, Tensor>& weights_;
  std::string source_;
  std::vector<int> consumers_, producer_;
  std::set<std::string> used_;
};

Plan Plan::build(const json& architecture, const Shape& input, const std::map<std::string, Tensor>& weights,
                 const std::string& source) {
  Plan plan;
  plan.input_shape_ = input;
  PlanBuilder b(plan, weights, source);
  const PlanBuilder::Val in = b.input(input);
  const PlanBuilder::Val out = b.emit(architecture, "", in);
  b.finish(out);
  return plan;
}

void Plan::allocate(int64_t max_batch) {
  DEFT_CHECK(max_batch >= 1, "inference: max_batch must be at least 1, got {}", max_batch);
  const int values = static_cast<int>(value_numel_.size());
  // The last step reading each value; the output lives to the end.
  std::vector<int> last_use(values, -1);
  for (size_t s = 0; s < steps_.size(); ++s)
    for (int v : steps_[s].inputs) last_use[v] = static_cast<int>(s);
  last_use[output_value_] = std::numeric_limits<int>::max();

  std::vector<int64_t> need;  // per buffer: the largest value it holds, elements per example
  std::vector<int> free_list;
  value_buffer_.assign(values, -1);
  auto take = [&](int v, const std::vector<int>& busy) {
    // The free buffer that is already big enough and smallest, else the largest one.
    int best = -1;
    for (int b : free_list) {
      if (std::find(busy.begin(), busy.end(), b) != busy.end()) continue;
      const bool fits = need[b] >= value_numel_[v];
      if (best < 0) {
        best = b;
        continue;
      }
      const bool best_fits = need[best] >= value_numel_[v];
      if ((fits && (!best_fits || need[b] < need[best])) || (!fits && !best_fits && need[b] > need[best]))
        best = b;
    }
    if (best < 0) {
      best = static_cast<int>(need.size());
      need.push_back(0);
    } else {
      free_list.erase(std::find(free_list.begin(), free_list.end(), best));
    }
    need[best] = std::max(need[best], value_numel_[v]);
    value_buffer_[v] = best;
  };
  take(0, {});
  for (size_t s = 0; s < steps_.size(); ++s) {
    Step& st = steps_[s];
    const int in0 = st.inputs.empty() ? -1 : st.inputs[0];
    if (st.op->in_place() && in0 >= 0 && last_use[in0] == static_cast<int>(s) &&
        std::count(st.inputs.begin(), st.inputs.end(), in0) == 1) {
      value_buffer_[st.output] = value_buffer_[in0];
    } else {
      std::vector<int> busy;
      for (int v : st.inputs) busy.push_back(value_buffer_[v]);
      take(st.output, busy);
    }
    for (int v : st.inputs) {
      const int b = value_buffer_[v];
      if (last_use[v] == static_cast<int>(s) && b != value_buffer_[st.output] &&
          std::find(free_list.begin(), free_list.end(), b) == free_list.end())
        free_list.push_back(b);
    }
  }
  buffers_.clear();
  for (int64_t n : need) buffers_.push_back(Tensor::empty({std::max<int64_t>(1, n * max_batch)}));
  ++allocations_;
  max_batch_ = max_batch;
}

float* Plan::input() {
  DEFT_INTERNAL_CHECK(max_batch_ > 0, "inference: the plan has no buffers (allocate first)");
  return buffers_[value_buffer_[0]].data<float>();
}

const float* Plan::run(int64_t n, std::vector<double>* op_seconds) {
  DEFT_INTERNAL_CHECK(n >= 0 && n <= max_batch_, "inference: batch of {} exceeds the plan's {}", n,
                      max_batch_);
  if (op_seconds) op_seconds->resize(steps_.size(), 0.0);
  for (size_t k = 0; k < steps_.size(); ++k) {
    Step& s = steps_[k];
    for (size_t i = 0; i < s.inputs.size(); ++i)
      s.in_ptrs[i] = buffers_[value_buffer_[s.inputs[i]]].data<float>();
    if (observer_) observer_(k, s.in_ptrs, n);
    const auto t0 = op_seconds ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
    s.op->run(s.in_ptrs, buffers_[value_buffer_[s.output]].data<float>(), n);
    if (op_seconds)
      (*op_seconds)[k] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return buffers_[value_buffer_[output_value_]].data<float>();
}

int64_t Plan::buffer_bytes() const {
  int64_t total = 0;
  for (const Tensor& b : buffers_) total += b.numel() * static_cast<int64_t>(sizeof(float));
  return total;
}

void Plan::replace(size_t i, std::unique_ptr<Op> op) {
  Step& s = steps_.at(i);
  DEFT_CHECK(op && op->input_shapes == s.op->input_shapes && op->output_shape == s.op->output_shape,
             "inference: the replacement for op {} ({}) has other shapes", i, s.op->describe());
  s.op = std::move(op);
}

std::string Plan::describe() const {
  std::string out;
  for (const Step& s : steps_) out += s.op->describe() + "\n";
  return out;
}

}  // namespace deft::deploy::infer
