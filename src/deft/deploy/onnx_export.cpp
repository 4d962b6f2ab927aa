#include "deft/deploy/onnx_export.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cctype>
#include <cmath>
#include <limits>
#include <numbers>
#include <set>
#include <span>
#include <variant>

#include "deft/nn/conv.h"
#include "deft/nn/layers.h"
#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/tensor/protobuf.h"
#include "deft/version.h"

namespace deft::deploy {

namespace {

using json = nlohmann::json;

// ---- the ONNX messages ----------------------------------------------------------------------
//
// Field numbers from onnx/onnx.proto (IR version 8, what onnx 1.12 writes for opsets <= 17).

constexpr int64_t kIrVersion = 8;

enum : int {
  kModelIrVersion = 1,
  kModelProducerName = 2,
  kModelProducerVersion = 3,
  kModelDocString = 6,
  kModelGraph = 7,
  kModelOpsetImport = 8,
  kModelMetadataProps = 14,
  kOpsetDomain = 1,
  kOpsetVersion = 2,
  kEntryKey = 1,
  kEntryValue = 2,
  kGraphNode = 1,
  kGraphName = 2,
  kGraphInitializer = 5,
  kGraphDocString = 10,
  kGraphInput = 11,
  kGraphOutput = 12,
  kNodeInput = 1,
  kNodeOutput = 2,
  kNodeName = 3,
  kNodeOpType = 4,
  kNodeAttribute = 5,
  kAttrName = 1,
  kAttrF = 2,
  kAttrI = 3,
  kAttrS = 4,
  kAttrFloats = 7,
  kAttrInts = 8,
  kAttrType = 20,
  kTensorDims = 1,
  kTensorDataType = 2,
  kTensorName = 8,
  kTensorRawData = 9,
  kValueInfoName = 1,
  kValueInfoType = 2,
  kValueInfoDocString = 3,
  kTypeTensorType = 1,
  kTensorTypeElemType = 1,
  kTensorTypeShape = 2,
  kShapeDim = 1,
  kDimValue = 1,
  kDimParam = 2,
};
// AttributeProto.AttributeType and TensorProto.DataType values.
enum : int {
  kAttrTypeFloat = 1,
  kAttrTypeInt = 2,
  kAttrTypeString = 3,
  kAttrTypeFloats = 6,
  kAttrTypeInts = 7
};
enum : int { kElemFloat = 1, kElemInt64 = 7 };

struct Attr {
  std::string name;
  std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>> value;
};

ProtoWriter attribute(const Attr& a) {
  ProtoWriter w;
  w.bytes(kAttrName, a.name);
  if (const auto* i = std::get_if<int64_t>(&a.value)) {
    w.sint(kAttrI, *i).varint(kAttrType, kAttrTypeInt);
  } else if (const auto* f = std::get_if<float>(&a.value)) {
    w.float_(kAttrF, *f).varint(kAttrType, kAttrTypeFloat);
  } else if (const auto* s = std::get_if<std::string>(&a.value)) {
    w.bytes(kAttrS, *s).varint(kAttrType, kAttrTypeString);
  } else if (const auto* is = std::get_if<std::vector<int64_t>>(&a.value)) {
    w.packed_varints(kAttrInts, *is).varint(kAttrType, kAttrTypeInts);
  } else {
    w.packed_floats(kAttrFloats, std::get<std::vector<float>>(a.value)).varint(kAttrType, kAttrTypeFloats);
  }
  return w;
}

// A float32 tensor value's type: dims, with dim_param "N" for a -1 (the batch).
ProtoWriter value_info(const std::string& name, const Shape& dims, const std::string& doc) {
  ProtoWriter shape;
  for (int64_t d : dims) {
    ProtoWriter dim;
    if (d < 0)
      dim.bytes(kDimParam, "N");
    else
      dim.sint(kDimValue, d);
    shape.message(kShapeDim, dim);
  }
  ProtoWriter tensor_type;
  tensor_type.varint(kTensorTypeElemType, kElemFloat).message(kTensorTypeShape, shape);
  ProtoWriter type;
  type.message(kTypeTensorType, tensor_type);
  ProtoWriter w;
  w.bytes(kValueInfoName, name).message(kValueInfoType, type);
  if (!doc.empty()) w.bytes(kValueInfoDocString, doc);
  return w;
}

// ---- GraphBuilder: nodes and initializers, with unique value names ---------------------------

class GraphBuilder {
 public:
  explicit GraphBuilder(int64_t opset) : opset_(opset) {}
  int64_t opset() const { return opset_; }

  // Adds a node with one output and returns the output's name (made from `hint`, or
  // `output` itself when given).
  std::string op(const std::string& type, const std::vector<std::string>& inputs, const std::string& hint,
                 const std::vector<Attr>& attrs = {}, std::string output = "") {
    if (output.empty()) output = fresh(hint + "_" + lower(type));
    ProtoWriter n;
    for (const auto& in : inputs) n.bytes(kNodeInput, in);
    n.bytes(kNodeOutput, output).bytes(kNodeName, fresh("node_" + type)).bytes(kNodeOpType, type);
    for (const auto& a : attrs) n.message(kNodeAttribute, attribute(a));
    graph_.message(kGraphNode, n);
    return output;
  }

  std::string floats(const std::string& hint, std::span<const float> values, const Shape& dims) {
    DEFT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(dims),
               "onnx export: {} values for shape {}", values.size(), shape_str(dims));
    return initializer(hint, kElemFloat, values.data(), values.size() * sizeof(float), dims);
  }
  std::string floats(const std::string& hint, const std::vector<double>& values, const Shape& dims) {
    std::vector<float> f(values.begin(), values.end());
    return floats(hint, std::span<const float>(f), dims);
  }
  std::string int64s(const std::string& hint, const std::vector<int64_t>& values, const Shape& dims) {
    DEFT_CHECK(static_cast<int64_t>(values.size()) == shape_numel(dims),
               "onnx export: {} values for shape {}", values.size(), shape_str(dims));
    return initializer(hint, kElemInt64, values.data(), values.size() * sizeof(int64_t), dims);
  }
  std::string scalar(float v) { return floats("const", std::span<const float>(&v, 1), {}); }
  // A float32 tensor of the model (a weight), under `hint`.
  std::string tensor(const std::string& hint, const Tensor& t) {
    DEFT_CHECK(t.defined() && t.dtype() == DType::Float32, "onnx export: {} is not a float32 tensor", hint);
    const Tensor c = t.contiguous_copy();
    return floats(hint, std::span<const float>(c.data<float>(), static_cast<size_t>(c.numel())), c.shape());
  }

  const ProtoWriter& graph() const { return graph_; }

 private:
  static std::string lower(std::string s) {
    for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }
  // Names: letters, digits and '_' (a layer path "3.0.1" becomes "l3_0_1"), made unique
  // with a numeric suffix.
  std::string fresh(const std::string& hint) {
    std::string base;
    for (char ch : hint) base.push_back(std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
    std::string name = base;
    for (int64_t k = 1; !taken_.insert(name).second; ++k) name = base + "_" + std::to_string(k);
    return name;
  }
  std::string initializer(const std::string& hint, int elem, const void* data, size_t nbytes,
                          const Shape& dims) {
    const std::string name = fresh(hint);
    ProtoWriter t;
    for (int64_t d : dims) t.sint(kTensorDims, d);
    // raw_data is little-endian, as deft's tensors are in memory on the machines it targets.
    t.varint(kTensorDataType, static_cast<uint64_t>(elem))
        .bytes(kTensorName, name)
        .bytes(kTensorRawData, std::string_view(static_cast<const char*>(data), nbytes));
    graph_.message(kGraphInitializer, t);
    return name;
  }

  int64_t opset_;
  ProtoWriter graph_;
  std::set<std::string> taken_{"input", "probabilities", "predictions"};  // the graph's own names
};

// ---- the network --------------------------------------------------------------------------

std::string describe(const std::string& path, const nn::Module& m) {
  return path.empty() ? fmt::format("the network ({})", m.type())
                      : fmt::format("layer {} ({})", path, m.type());
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// One of a leaf module's own tensors by slot name ("kernel"); undefined when absent.
Tensor own_tensor(const nn::Module& m, const std::string& name) {
  for (auto& [n, t] : m.state())
    if (n == name) return t;
  return {};
}

// y = x * scale + shift per channel: what an inference-mode BatchNorm computes.
struct ChannelAffine {
  std::vector<double> scale, shift;
};

ChannelAffine batchnorm_affine(const nn::Module& bn) {
  const Tensor mean = own_tensor(bn, "running_mean").contiguous_copy();
  const Tensor var = own_tensor(bn, "running_var").contiguous_copy();
  const Tensor gamma = own_tensor(bn, "gamma"), beta = own_tensor(bn, "beta");
  const double eps = bn.config().value("eps", 1e-5);
  const auto c = static_cast<size_t>(mean.numel());
  ChannelAffine a{std::vector<double>(c), std::vector<double>(c)};
  const Tensor g = gamma.defined() ? gamma.contiguous_copy() : Tensor();
  const Tensor b = beta.defined() ? beta.contiguous_copy() : Tensor();
  for (size_t i = 0; i < c; ++i) {
    const double gi = g.defined() ? g.data<float>()[i] : 1.0;
    const double bi = b.defined() ? b.data<float>()[i] : 0.0;
    a.scale[i] = gi / std::sqrt(static_cast<double>(var.data<float>()[i]) + eps);
    a.shift[i] = bi - static_cast<double>(mean.data<float>()[i]) * a.scale[i];
  }
  return a;
}

bool is_batchnorm(const nn::Module& m) { return m.type() == "BatchNorm1d" || m.type() == "BatchNorm2d"; }

class NetworkExporter {
 public:
  NetworkExporter(GraphBuilder& g, const OnnxOptions& o) : g_(g), opt_(o) {}

  // Emits `m` applied to the value `x`; returns the output value.
  std::string emit(const nn::Module& m, const std::string& path, const std::string& x) {
    const std::string type = m.type();
    const std::string hint = path.empty() ? "net" : "l" + path;
    if (type == "Sequential") return sequential(m, path, x);
    if (type == "Dense" || type == "Linear") return dense(m, path, x, nullptr);
    if (type == "Conv2d") return conv(m, path, x, nullptr);
    if (type == "Dropout" || type == "Dropout2d" || type == "Identity") return x;  // inference: pass-through
    if (type == "Flatten") return g_.op("Flatten", {x}, hint, {{"axis", int64_t{1}}});
    if (type == "Reshape") {
      Shape target{-1};
      target.insert(target.end(), m.output_shape().begin(), m.output_shape().end());
      return g_.op("Reshape", {x, g_.int64s(hint + "_shape", target, {static_cast<int64_t>(target.size())})},
                   hint);
    }
    if (is_batchnorm(m)) return batchnorm(m, hint, x);
    if (type == "LayerNorm") return layernorm(m, hint, x);
    if (type == "MaxPool2d" || type == "AvgPool2d") return pool(m, path, x);
    if (type == "AdaptiveAvgPool2d") return adaptive_pool(m, path, x);
    if (type == "GlobalAvgPool2d")
      return g_.op("Flatten", {g_.op("GlobalAveragePool", {x}, hint)}, hint, {{"axis", int64_t{1}}});
    if (type == "Add" || type == "Concat") return branches(m, path, x);
    if (type == "Embedding") {
      const std::string ids = g_.op("Cast", {x}, hint, {{"to", int64_t{kElemInt64}}});
      return g_.op("Gather", {g_.tensor(hint + "_embeddings", own_tensor(m, "embeddings")), ids}, hint,
                   {{"axis", int64_t{0}}});
    }
    if (dynamic_cast<const nn::Activation*>(&m) != nullptr) {
      const json c = m.config();
      const std::string name = c.value("activation", "");
      double param = 0;
      if (name == "leaky_relu") param = c.value("slope", 0.01);
      if (name == "elu") param = c.value("alpha", 1.0);
      if (name == "softmax") param = static_cast<double>(c.value("axis", int64_t{-1}));
      return activation(name, param, hint, x);
    }
    fail("onnx export: {} has no ONNX equivalent in deft's exporter", describe(path, m));
  }

  // A named activation with deft's defaults (nn::activate).
  std::string activation(const std::string& name, double param, const std::string& hint,
                         const std::string& x) {
    if (name.empty() || name == "linear") return x;
    if (name == "relu") return g_.op("Relu", {x}, hint);
    if (name == "leaky_relu") return g_.op("LeakyRelu", {x}, hint, {{"alpha", static_cast<float>(param)}});
    if (name == "elu") return g_.op("Elu", {x}, hint, {{"alpha", static_cast<float>(param)}});
    if (name == "sigmoid") return g_.op("Sigmoid", {x}, hint);
    if (name == "tanh") return g_.op("Tanh", {x}, hint);
    if (name == "softmax") return g_.op("Softmax", {x}, hint, {{"axis", static_cast<int64_t>(param)}});
    if (name == "silu" || name == "swish") return g_.op("Mul", {x, g_.op("Sigmoid", {x}, hint)}, hint);
    if (name == "gelu") {
      // deft's exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))) (ONNX's Gelu op needs opset 20).
      const std::string e = g_.op(
          "Erf", {g_.op("Mul", {x, g_.scalar(static_cast<float>(1.0 / std::numbers::sqrt2))}, hint)}, hint);
      const std::string half_x = g_.op("Mul", {x, g_.scalar(0.5f)}, hint);
      return g_.op("Mul", {half_x, g_.op("Add", {e, g_.scalar(1.0f)}, hint)}, hint);
    }
    fail("onnx export: unknown activation '{}'", name);
  }

 private:
  std::string sequential(const nn::Module& m, const std::string& path, std::string x) {
    const auto children = m.children();
    for (size_t i = 0; i < children.size(); ++i) {
      const nn::Module& c = *children[i].second;
      const std::string p = child_path(path, children[i].first);
      const nn::Module* next = i + 1 < children.size() ? children[i + 1].second : nullptr;
      if (opt_.fold_batchnorm && next && is_batchnorm(*next) && can_fold(c)) {
        const ChannelAffine bn = batchnorm_affine(*next);
        x = c.type() == "Conv2d" ? conv(c, p, x, &bn) : dense(c, p, x, &bn);
        ++i;  // the BatchNorm is inside the weights now
        continue;
      }
      x = emit(c, p, x);
    }
    return x;
  }

  // A BatchNorm right after `m` folds into m's weights when m is a Conv2d, or a Dense
  // on per-example vectors (BatchNorm1d's channel is then Dense's output unit), with
  // no activation in between.
  static bool can_fold(const nn::Module& m) {
    const std::string act = m.config().value("activation", "");
    if (!act.empty() && act != "linear") return false;
    if (m.type() == "Conv2d") return true;
    return (m.type() == "Dense" || m.type() == "Linear") && m.input_shape().size() == 1;
  }

  std::string dense(const nn::Module& m, const std::string& path, const std::string& x,
                    const ChannelAffine* bn) {
    const auto& d = dynamic_cast<const nn::Dense&>(m);
    const std::string hint = "l" + path;
    const Tensor k = d.kernel().contiguous_copy();
    const int64_t in = k.size(0), out = k.size(1);
    std::vector<float> kernel(k.data<float>(), k.data<float>() + k.numel());
    std::vector<double> bias(static_cast<size_t>(out), 0.0);
    if (d.bias().defined()) {
      const Tensor b = d.bias().contiguous_copy();
      for (int64_t o = 0; o < out; ++o) bias[static_cast<size_t>(o)] = b.data<float>()[o];
    }
    if (bn) {  // kernel [in, out]: scale column o
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o)
          kernel[static_cast<size_t>(i * out + o)] = static_cast<float>(
              kernel[static_cast<size_t>(i * out + o)] * bn->scale[static_cast<size_t>(o)]);
      for (int64_t o = 0; o < out; ++o)
        bias[static_cast<size_t>(o)] = bias[static_cast<size_t>(o)] * bn->scale[static_cast<size_t>(o)] +
                                       bn->shift[static_cast<size_t>(o)];
    }
    const std::string b = g_.floats(hint + "_bias", bias, {out});
    std::string y;
    if (m.input_shape().size() == 1) {
      // Gemm with the kernel stored transposed, [out, in] and transB = 1, as PyTorch
      // exports Linear: OpenCV 4.6's importer mishandles Gemm with transB = 0.
      std::vector<float> kt(kernel.size());
      for (int64_t i = 0; i < in; ++i)
        for (int64_t o = 0; o < out; ++o)
          kt[static_cast<size_t>(o * in + i)] = kernel[static_cast<size_t>(i * out + o)];
      const std::string w = g_.floats(hint + "_kernel", std::span<const float>(kt), {out, in});
      y = g_.op("Gemm", {x, w, b}, hint, {{"transB", int64_t{1}}});
    } else {  // [N, ..., in]: MatMul broadcasts over the leading axes
      const std::string w = g_.floats(hint + "_kernel", std::span<const float>(kernel), {in, out});
      y = g_.op("Add", {g_.op("MatMul", {x, w}, hint), b}, hint);
    }
    return activation(d.activation(), default_param(d.activation()), hint, y);
  }

  std::string conv(const nn::Module& m, const std::string& path, const std::string& x,
                   const ChannelAffine* bn) {
    const auto& c = dynamic_cast<const nn::Conv2d&>(m);
    const json cfg = m.config();
    const std::string owner = describe(path, m);
    const std::string hint = "l" + path;
    const nn::Size2 kernel = nn::size2_from_json(cfg.at("kernel_size"), owner);
    const nn::Size2 stride = nn::size2_from_json(cfg.at("stride"), owner);
    const nn::Size2 dilation = nn::size2_from_json(cfg.at("dilation"), owner);
    const nn::Padding padding = nn::Padding::from_json(cfg.at("padding"), owner);
    const Shape& in = m.input_shape();  // [C,H,W]
    const auto [top, bottom, left, right] = padding.resolve(in[1], in[2], kernel, stride, dilation);

    const Tensor k = c.kernel().contiguous_copy();  // OIHW, as ONNX's Conv takes it
    const int64_t filters = k.size(0), per_filter = k.numel() / filters;
    std::vector<float> w(k.data<float>(), k.data<float>() + k.numel());
    std::vector<double> bias(static_cast<size_t>(filters), 0.0);
    if (c.bias().defined()) {
      const Tensor b = c.bias().contiguous_copy();
      for (int64_t o = 0; o < filters; ++o) bias[static_cast<size_t>(o)] = b.data<float>()[o];
    }
    if (bn) {
      for (int64_t o = 0; o < filters; ++o) {
        const double s = bn->scale[static_cast<size_t>(o)];
        for (int64_t j = 0; j < per_filter; ++j) {
          float& v = w[static_cast<size_t>(o * per_filter + j)];
          v = static_cast<float>(v * s);
        }
        bias[static_cast<size_t>(o)] = bias[static_cast<size_t>(o)] * s + bn->shift[static_cast<size_t>(o)];
      }
    }
    std::vector<std::string> inputs{x, g_.floats(hint + "_kernel", std::span<const float>(w), k.shape())};
    if (c.bias().defined() || bn) inputs.push_back(g_.floats(hint + "_bias", bias, {filters}));
    const std::string y = g_.op("Conv", inputs, hint,
                                {{"kernel_shape", std::vector<int64_t>{kernel.h, kernel.w}},
                                 {"strides", std::vector<int64_t>{stride.h, stride.w}},
                                 {"dilations", std::vector<int64_t>{dilation.h, dilation.w}},
                                 {"pads", std::vector<int64_t>{top, left, bottom, right}},
                                 {"group", cfg.value("groups", int64_t{1})}});
    const std::string act = cfg.value("activation", "");
    return activation(act, default_param(act), hint, y);
  }

  static double default_param(const std::string& activation) {
    if (activation == "leaky_relu") return 0.01;
    if (activation == "elu") return 1.0;
    if (activation == "softmax") return -1.0;
    return 0.0;
  }

  std::string batchnorm(const nn::Module& m, const std::string& hint, const std::string& x) {
    const Tensor mean = own_tensor(m, "running_mean");
    const int64_t c = mean.numel();
    Tensor gamma = own_tensor(m, "gamma"), beta = own_tensor(m, "beta");
    if (!gamma.defined()) gamma = Tensor::ones({c});
    if (!beta.defined()) beta = Tensor::zeros({c});
    return g_.op("BatchNormalization",
                 {x, g_.tensor(hint + "_gamma", gamma), g_.tensor(hint + "_beta", beta),
                  g_.tensor(hint + "_mean", mean), g_.tensor(hint + "_var", own_tensor(m, "running_var"))},
                 hint, {{"epsilon", static_cast<float>(m.config().value("eps", 1e-5))}});
  }

  // Over the last axis, as nn::LayerNorm.
  std::string layernorm(const nn::Module& m, const std::string& hint, const std::string& x) {
    const int64_t d = m.input_shape().back();
    const auto eps = static_cast<float>(m.config().value("eps", 1e-5));
    Tensor gamma = own_tensor(m, "gamma"), beta = own_tensor(m, "beta");
    if (g_.opset() >= 17) {
      if (!gamma.defined()) gamma = Tensor::ones({d});
      std::vector<std::string> in{x, g_.tensor(hint + "_gamma", gamma)};
      if (beta.defined()) in.push_back(g_.tensor(hint + "_beta", beta));
      return g_.op("LayerNormalization", in, hint, {{"axis", int64_t{-1}}, {"epsilon", eps}});
    }
    const std::vector<Attr> last{{"axes", std::vector<int64_t>{-1}}, {"keepdims", int64_t{1}}};
    const std::string centred = g_.op("Sub", {x, g_.op("ReduceMean", {x}, hint, last)}, hint);
    const std::string var = g_.op("ReduceMean", {g_.op("Mul", {centred, centred}, hint)}, hint, last);
    const std::string sd = g_.op("Sqrt", {g_.op("Add", {var, g_.scalar(eps)}, hint)}, hint);
    std::string y = g_.op("Div", {centred, sd}, hint);
    if (gamma.defined()) y = g_.op("Mul", {y, g_.tensor(hint + "_gamma", gamma)}, hint);
    if (beta.defined()) y = g_.op("Add", {y, g_.tensor(hint + "_beta", beta)}, hint);
    return y;
  }

  std::string pool(const nn::Module& m, const std::string& path, const std::string& x) {
    const json cfg = m.config();
    const std::string owner = describe(path, m);
    const bool average = m.type() == "AvgPool2d";
    const nn::Size2 kernel = nn::size2_from_json(cfg.at("kernel_size"), owner);
    const nn::Size2 stride = nn::size2_from_json(cfg.at("stride"), owner);
    const nn::Padding padding = nn::Padding::from_json(cfg.at("padding"), owner);
    const bool count_pad = cfg.value("count_include_pad", true);
    const Shape& in = m.input_shape();
    const Shape& out = m.output_shape();
    auto [top, bottom, left, right] = padding.resolve(in[1], in[2], kernel, stride);
    // ceil_mode as explicit trailing padding: the extra windows deft produces (PyTorch's
    // rule) are exactly those ONNX's floor mode gives with this much more padding after.
    // The last window starts inside the input or the leading padding, so the trailing
    // padding stays below the kernel size (onnxruntime rejects pads as large as the kernel).
    // Max pooling ignores padding and so does average pooling without count_include_pad;
    // with it, the padded divisor would differ, so that case is refused.
    auto extra = [](int64_t n, int64_t k, int64_t s, int64_t before, int64_t after, int64_t want) {
      return std::max<int64_t>(0, (want - 1) * s + k - (n + before + after));
    };
    const int64_t extra_h = extra(in[1], kernel.h, stride.h, top, bottom, out[1]);
    const int64_t extra_w = extra(in[2], kernel.w, stride.w, left, right, out[2]);
    DEFT_CHECK(!(average && count_pad && (extra_h > 0 || extra_w > 0)),
               "onnx export: {}: ceil_mode windows that run past the padding, with count_include_pad, "
               "have no exact ONNX equivalent (use count_include_pad false or ceil_mode false)",
               owner);
    bottom += extra_h;
    right += extra_w;
    std::vector<Attr> attrs{{"kernel_shape", std::vector<int64_t>{kernel.h, kernel.w}},
                            {"strides", std::vector<int64_t>{stride.h, stride.w}},
                            {"pads", std::vector<int64_t>{top, left, bottom, right}}};
    if (average) attrs.push_back({"count_include_pad", int64_t{count_pad ? 1 : 0}});
    return g_.op(average ? "AveragePool" : "MaxPool", {x}, "l" + path, attrs);
  }

  std::string adaptive_pool(const nn::Module& m, const std::string& path, const std::string& x) {
    const Shape& in = m.input_shape();
    const Shape& out = m.output_shape();
    const std::string hint = "l" + path;
    if (out[1] == 1 && out[2] == 1) return g_.op("GlobalAveragePool", {x}, hint);
    DEFT_CHECK(in[1] % out[1] == 0 && in[2] % out[2] == 0,
               "onnx export: {}: output {}x{} does not divide the input {}x{} evenly (adaptive windows of "
               "different sizes have no ONNX equivalent); use an input size divisible by the output size",
               describe(path, m), out[1], out[2], in[1], in[2]);
    const int64_t kh = in[1] / out[1], kw = in[2] / out[2];
    return g_.op("AveragePool", {x}, hint,
                 {{"kernel_shape", std::vector<int64_t>{kh, kw}}, {"strides", std::vector<int64_t>{kh, kw}}});
  }

  std::string branches(const nn::Module& m, const std::string& path, const std::string& x) {
    std::vector<std::string> outs;
    for (const auto& [name, child] : m.children()) outs.push_back(emit(*child, child_path(path, name), x));
    const std::string hint = "l" + path;
    if (m.type() == "Concat") return g_.op("Concat", outs, hint, {{"axis", int64_t{1}}});
    std::string sum = outs.at(0);
    for (size_t i = 1; i < outs.size(); ++i) sum = g_.op("Add", {sum, outs[i]}, hint);
    const std::string act = m.config().value("activation", "");
    return activation(act, default_param(act), hint, sum);
  }

  GraphBuilder& g_;
  const OnnxOptions& opt_;
};

// ---- preprocessing --------------------------------------------------------------------------

// Images: x * a + b per channel, a = pixel_scale / std, b = -mean / std (in float, as
// Preprocessor::transform_features computes it).
std::string image_preprocessing(GraphBuilder& g, const data::Preprocessor& pre, const std::string& x) {
  const auto& im = pre.image();
  const auto c = static_cast<int64_t>(im.mean.size());
  std::vector<float> a, b;
  bool identity = true;
  for (size_t i = 0; i < im.mean.size(); ++i) {
    a.push_back(static_cast<float>(im.pixel_scale / im.std[i]));
    b.push_back(static_cast<float>(-im.mean[i] / im.std[i]));
    identity = identity && a.back() == 1.0f && b.back() == 0.0f;
  }
  if (identity) return x;
  const std::string scaled =
      g.op("Mul", {x, g.floats("pixel_scale", std::span<const float>(a), {c, 1, 1})}, "pre");
  return g.op("Add", {scaled, g.floats("pixel_shift", std::span<const float>(b), {c, 1, 1})}, "pre");
}

// A missing table value: NaN or +-inf, as the preprocessor reads it.
std::string missing_mask(GraphBuilder& g, const std::string& v) {
  return g.op("Or", {g.op("IsNaN", {v}, "pre"), g.op("IsInf", {v}, "pre")}, "pre");
}

// Consecutive numeric columns `cols` (raw indices): impute, clip, scale.
// `all`: the run is every raw column, in order (no Gather needed).
std::string numeric_block(GraphBuilder& g, const std::vector<const data::Preprocessor::Column*>& cols,
                          const std::vector<int64_t>& raw_index, bool all, const std::string& x) {
  const auto k = static_cast<int64_t>(cols.size());
  const std::string v =
      all ? x : g.op("Gather", {x, g.int64s("pre_cols", raw_index, {k})}, "pre", {{"axis", int64_t{1}}});
  std::vector<double> fill, lo, hi, shift, scale;
  bool any_clip = false;
  for (const auto* c : cols) {
    fill.push_back(c->fill);
    lo.push_back(c->clip ? c->clip_lo : std::numeric_limits<float>::lowest());
    hi.push_back(c->clip ? c->clip_hi : std::numeric_limits<float>::max());
    shift.push_back(c->shift);
    scale.push_back(c->scale);
    any_clip = any_clip || c->clip;
  }
  std::string y = g.op("Where", {missing_mask(g, v), g.floats("pre_fill", fill, {k}), v}, "pre");
  if (any_clip) {
    y = g.op("Max", {y, g.floats("pre_clip_lo", lo, {k})}, "pre");
    y = g.op("Min", {y, g.floats("pre_clip_hi", hi, {k})}, "pre");
  }
  y = g.op("Sub", {y, g.floats("pre_shift", shift, {k})}, "pre");
  return g.op("Div", {y, g.floats("pre_scale", scale, {k})}, "pre");
}

// One categorical column: its code -> a row of a lookup table [M+2, width] (M schema
// codes, then the unknown slot's row for anything else, then the missing value's row),
// so one Gather gives the one-hot slots (or the ordinal slot index).
std::string categorical_column(GraphBuilder& g, const data::Preprocessor::Column& c, int64_t raw_index,
                               bool onehot, const std::string& x) {
  const auto m = static_cast<int64_t>(c.slot_of_code.size());
  const auto unknown = static_cast<int64_t>(c.kept.size());
  const int64_t width = onehot ? unknown + 1 : 1;
  std::vector<int64_t> slots = c.slot_of_code;
  slots.push_back(unknown);
  slots.push_back(c.fill_slot);
  std::vector<float> table(static_cast<size_t>((m + 2) * width), 0.0f);
  for (int64_t r = 0; r < m + 2; ++r) {
    const int64_t s = slots[static_cast<size_t>(r)];
    if (onehot)
      table[static_cast<size_t>(r * width + s)] = 1.0f;
    else
      table[static_cast<size_t>(r)] = static_cast<float>(s);
  }
  const std::string v =
      g.op("Gather", {x, g.int64s("pre_col", {raw_index}, {})}, "pre", {{"axis", int64_t{1}}});
  // A schema code: 0 <= v < M and whole (NaN and +-inf fail these too).
  const std::string in_range = g.op("And",
                                    {g.op("GreaterOrEqual", {v, g.scalar(0.0f)}, "pre"),
                                     g.op("Less", {v, g.scalar(static_cast<float>(m))}, "pre")},
                                    "pre");
  const std::string whole = g.op("Equal", {v, g.op("Floor", {v}, "pre")}, "pre");
  std::string row =
      g.op("Where", {g.op("And", {in_range, whole}, "pre"), v, g.scalar(static_cast<float>(m))}, "pre");
  row = g.op("Where", {missing_mask(g, v), g.scalar(static_cast<float>(m + 1)), row}, "pre");
  const std::string idx = g.op("Cast", {row}, "pre", {{"to", int64_t{kElemInt64}}});
  const std::string t = g.floats("pre_" + c.name + "_table", std::span<const float>(table), {m + 2, width});
  return g.op("Gather", {t, idx}, "pre", {{"axis", int64_t{0}}});
}

std::string table_preprocessing(GraphBuilder& g, const data::Preprocessor& pre, const std::string& x) {
  const bool onehot = pre.options().encoding == data::Encoding::OneHot;
  std::vector<std::string> parts;
  std::vector<const data::Preprocessor::Column*> run;
  std::vector<int64_t> run_index;
  auto flush = [&] {
    if (run.empty()) return;
    parts.push_back(numeric_block(g, run, run_index, run.size() == pre.columns().size(), x));
    run.clear();
    run_index.clear();
  };
  const auto& cols = pre.columns();
  for (size_t j = 0; j < cols.size(); ++j) {
    const auto& c = cols[j];
    if (c.dropped) continue;
    if (!c.categorical) {
      run.push_back(&c);
      run_index.push_back(static_cast<int64_t>(j));
      continue;
    }
    flush();
    parts.push_back(categorical_column(g, c, static_cast<int64_t>(j), onehot, x));
  }
  flush();
  DEFT_CHECK(!parts.empty(), "onnx export: the preprocessing keeps no column");
  if (parts.size() == 1) return parts[0];
  return g.op("Concat", parts, "pre", {{"axis", int64_t{1}}});
}

std::string describe_input(const OnnxSource& s) {
  const data::Preprocessor* pre = s.preprocessor;
  if (pre && !pre->is_image()) {
    std::string names;
    for (const auto& c : pre->columns()) names += (names.empty() ? "" : ", ") + c.name;
    return fmt::format(
        "float32 [N,{}]: the raw table columns ({}) as the data holds them; NaN (or +-inf) for a missing "
        "value, a categorical column's integer code from the schema",
        shape_numel(s.raw_input), names);
  }
  if (s.raw_input.size() == 3)
    return fmt::format(
        "float32 [N,{},{},{}]: raw pixels 0-255 (C,H,W); scaling and normalisation happen inside",
        s.raw_input[0], s.raw_input[1], s.raw_input[2]);
  return fmt::format("float32 [N,{}]: raw features", fmt::join(s.raw_input, ","));
}

}  // namespace

void set_onnx_output(OnnxSource& source, const nn::Loss* loss) {
  source.binary = loss && loss->is_binary();
  source.output = OnnxOutput::Logits;
  if (!loss) return;
  if (loss->output_kind() == nn::OutputKind::Probabilities) source.output = OnnxOutput::Probabilities;
  if (loss->output_kind() == nn::OutputKind::Values) source.output = OnnxOutput::Values;
}

std::string export_onnx(const OnnxSource& source, const OnnxOptions& options) {
  DEFT_CHECK(options.opset >= 13 && options.opset <= 17, "onnx export: opset must be 13 to 17, got {}",
             options.opset);
  DEFT_CHECK(source.net != nullptr && source.net->built(), "onnx export: the network is not built");
  const nn::Module& net = *source.net;
  DEFT_CHECK(net.output_shape().size() == 1,
             "onnx export: the network's per-example output must be a vector, got {}",
             shape_str(net.output_shape()));
  const int64_t width = net.output_shape()[0];
  GraphBuilder g(options.opset);

  // input -> preprocessing -> network -> probabilities / predictions
  std::string x = "input";
  if (const data::Preprocessor* pre = source.preprocessor) {
    DEFT_CHECK(pre->fitted(), "onnx export: the preprocessing is not fitted");
    x = pre->is_image() ? image_preprocessing(g, *pre, x) : table_preprocessing(g, *pre, x);
  }
  NetworkExporter nx(g, options);
  const std::string y = nx.emit(net, "", x);

  const bool regression = source.output == OnnxOutput::Values;
  const std::string out_name = regression ? "predictions" : "probabilities";
  const bool two_column = !regression && source.binary && width == 1;
  std::string p = y;
  if (source.output == OnnxOutput::Logits)
    p = source.binary ? g.op("Sigmoid", {y}, "head") : g.op("Softmax", {y}, "head", {{"axis", int64_t{-1}}});
  if (two_column)  // one sigmoid output p -> [1 - p, p]
    g.op("Concat", {g.op("Sub", {g.scalar(1.0f), p}, "head"), p}, "head", {{"axis", int64_t{1}}}, out_name);
  else
    g.op("Identity", {p}, "head", {}, out_name);
  const int64_t out_width = two_column ? 2 : width;

  Shape in_dims{-1};
  in_dims.insert(in_dims.end(), source.raw_input.begin(), source.raw_input.end());
  const std::string in_doc = describe_input(source);
  const std::string out_doc =
      regression ? fmt::format("float32 [N,{}]: the predicted values", out_width)
                 : fmt::format("float32 [N,{}]: class probabilities{}", out_width,
                               source.class_names.empty()
                                   ? std::string()
                                   : fmt::format(" ({})", fmt::join(source.class_names, ", ")));

  ProtoWriter graph = g.graph();
  graph.bytes(kGraphName, options.model_name)
      .bytes(kGraphDocString, "input: " + in_doc + "; " + out_name + ": " + out_doc)
      .message(kGraphInput, value_info("input", in_dims, in_doc))
      .message(kGraphOutput, value_info(out_name, {-1, out_width}, out_doc));

  ProtoWriter opset;
  opset.bytes(kOpsetDomain, "").sint(kOpsetVersion, options.opset);
  ProtoWriter model;
  model.sint(kModelIrVersion, kIrVersion)
      .bytes(kModelProducerName, "deft")
      .bytes(kModelProducerVersion,
             options.producer_version.empty() ? DEFT_VERSION : options.producer_version)
      .bytes(kModelDocString,
             fmt::format("A deft model. input \"input\": {}. output \"{}\": {}.", in_doc, out_name, out_doc))
      .message(kModelGraph, graph)
      .message(kModelOpsetImport, opset);
  json meta = {{"deft_version", DEFT_VERSION},
               {"deft_commit", DEFT_GIT_COMMIT},
               {"task", regression ? "regression" : "classification"},
               {"class_names", json(source.class_names).dump()},
               {"input_shape", json(source.raw_input).dump()},
               {"preprocessing", source.preprocessor ? source.preprocessor->to_json().dump() : "null"},
               {"architecture", nn::module_spec(net).dump()}};
  for (const auto& e : options.extra_metadata.items())
    meta[e.key()] = e.value().is_string() ? e.value().get<std::string>() : e.value().dump();
  for (const auto& e : meta.items()) {
    ProtoWriter entry;
    entry.bytes(kEntryKey, e.key()).bytes(kEntryValue, e.value().get<std::string>());
    model.message(kModelMetadataProps, entry);
  }
  return model.str();
}

void write_onnx(const std::string& path, const OnnxSource& source, const OnnxOptions& options) {
  write_file_atomically(path, export_onnx(source, options));
}

}  // namespace deft::deploy
