// Writing an int8 .deft file (calibrate, quantise, store the int8 ops next to the
// float model) and reading its int8 ops back into a plan.
#include "deft/deploy/quantize_model.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <system_error>

#include "deft/data/preprocess.h"
#include "deft/tensor/error.h"

namespace deft::deploy {

namespace {

using json = nlohmann::json;

constexpr const char* kModelPrefix = "model/";

int64_t file_bytes(const std::string& path) {
  std::error_code ec;
  const auto n = std::filesystem::file_size(path, ec);
  return ec ? -1 : static_cast<int64_t>(n);
}

std::string tensor_prefix(size_t op) { return fmt::format("quant.{}", op); }

// Why an op that quantize_plan left float stayed float.
std::string kept_float_reason(const infer::Op& op, bool skipped) {
  if (skipped) return "kept float on request";
  if (const auto* conv = dynamic_cast<const infer::ConvOp*>(&op)) {
    const Shape& w = conv->kernel().shape();
    return fmt::format(
        "{} products per output (C/groups*kh*kw < 32): converting layouts costs more than int8 saves",
        w[1] * w[2] * w[3]);
  }
  return "int8 does not pay off for this layer";
}

json parse_model_metadata(const SafetensorsFile& file) {
  const auto it = file.metadata.find("deft");
  DEFT_CHECK(it != file.metadata.end(), "{}: not a deft model (no 'deft' entry in the safetensors metadata)",
             file.source);
  json meta;
  try {
    meta = json::parse(it->second);
  } catch (const json::exception& e) {
    fail("{}: the model metadata is not valid JSON: {}", file.source, e.what());
  }
  DEFT_CHECK(meta.is_object() && meta.value("format", "") == "deft-model", "{}: not a deft model file",
             file.source);
  return meta;
}

// The raw calibration examples as the plan's input: preprocessed, float32, [N, ...network input].
Tensor network_input(const Tensor& raw, const json& meta, const std::string& source) {
  const Shape raw_shape = meta.at("input_shape").get<Shape>();
  const Shape net_shape = meta.at("network_input_shape").get<Shape>();
  DEFT_CHECK(raw.defined() && raw.dim() >= 1, "{}: no calibration data given", source);
  const Shape per(raw.shape().begin() + 1, raw.shape().end());
  DEFT_CHECK_SHAPE(per == raw_shape,
                   "calibration examples have shape {} (data {}) but the model {} takes examples of shape {}",
                   shape_str(per), shape_str(raw.shape()), source, shape_str(raw_shape));
  DEFT_CHECK(raw.size(0) > 0, "{}: the calibration data holds no examples", source);
  DEFT_CHECK(raw.dtype() == DType::Float32 || raw.dtype() == DType::UInt8,
             "{}: calibration data must be float32 or uint8, got {}", source, dtype_name(raw.dtype()));
  Tensor x;
  if (!meta.at("preprocessing").is_null()) {
    x = data::Preprocessor::from_json(meta["preprocessing"]).transform_features(raw);
  } else {
    x = raw.dtype() == DType::Float32 ? raw.contiguous_copy() : raw.to(DType::Float32);
  }
  x = x.contiguous_copy();
  Shape shape{raw.size(0)};
  shape.insert(shape.end(), net_shape.begin(), net_shape.end());
  DEFT_CHECK_SHAPE(x.numel() == shape_numel(shape),
                   "{}: preprocessed calibration data {} does not fit the network's {}", source,
                   shape_str(x.shape()), shape_str(shape));
  return make_view(x, shape, contiguous_strides(shape), x.offset());
}

json activation_json(const infer::Activation& a) {
  json j = a.name();
  if (a.kind == infer::Activation::Kind::LeakyRelu || a.kind == infer::Activation::Kind::Elu)
    j = json{{"name", a.name()}, {"param", a.param}};
  return j;
}

}  // namespace

int64_t QuantizeModelReport::quantized_ops() const {
  return std::count_if(ops.begin(), ops.end(), [](const QuantizedOpReport& r) { return r.info.quantized; });
}

QuantizeModelReport quantize_model(const std::string& in_path, const std::string& out_path,
                                   const Tensor& calibration_raw, const QuantizeOptions& options) {
  const SafetensorsFile file = read_safetensors(in_path);
  json meta = parse_model_metadata(file);
  QuantizeModelReport report;
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> stored_dtypes;
  try {
    DEFT_CHECK(!meta.contains(kQuantizationKey), "already int8-quantised (quantise the float model instead)");
    const Shape net_shape = meta.at("network_input_shape").get<Shape>();
    const Tensor x = network_input(calibration_raw, meta, in_path);
    std::map<std::string, Tensor> weights;
    for (const auto& [name, t] : file.tensors)
      if (name.rfind(kModelPrefix, 0) == 0) {
        weights.emplace(name.substr(6), t);
        tensors.emplace_back(name, t);  // optimizer/* is dropped
      }
    infer::Plan plan = infer::Plan::build(meta.at("architecture"), net_shape, weights, in_path);
    plan.allocate(256);
    const std::vector<QuantizedOpInfo> infos = quantize_plan(plan, x, options);
    report.calibration_examples = x.size(0);

    json calibration{{"method", calibration_method_name(options.calibration.method)},
                     {"examples", report.calibration_examples}};
    if (options.calibration.method == CalibrationMethod::Percentile)
      calibration["percentile"] = options.calibration.percentile;
    if (options.calibration.method != CalibrationMethod::MinMax)
      calibration["bins"] = options.calibration.bins;
    json ops = json::array(), kept = json::array();
    for (const QuantizedOpInfo& info : infos) {
      QuantizedOpReport r{.info = info, .reason = {}};
      const infer::Op& op = plan.op(info.op);
      if (!info.quantized) {
        const bool skipped =
            std::find(options.skip_ops.begin(), options.skip_ops.end(), info.op) != options.skip_ops.end();
        r.reason = kept_float_reason(op, skipped);
        kept.push_back(
            {{"op", info.op}, {"kind", info.kind}, {"description", info.description}, {"reason", r.reason}});
        report.ops.push_back(std::move(r));
        continue;
      }
      const QuantizedWeights* w = nullptr;
      const std::vector<float>* bias = nullptr;
      const infer::Activation* act = nullptr;
      if (const auto* lin = dynamic_cast<const QuantizedLinearOp*>(&op)) {
        w = &lin->dense().weights();
        bias = &lin->dense().bias();
        act = &lin->activation();
      } else {
        const auto& conv = dynamic_cast<const QuantizedConvOp&>(op);
        w = &conv.conv().weights();
        bias = &conv.conv().bias();
        act = &conv.activation();
      }
      const std::string prefix = tensor_prefix(info.op);
      append_quantized_weights(prefix, *w, tensors, stored_dtypes);
      std::vector<float> b = *bias;
      if (b.empty()) b.assign(static_cast<size_t>(w->channels()), 0.0f);
      tensors.emplace_back(prefix + ".bias", Tensor::from_vector(b));
      json entry = layer_quant_json(*w, info.input, options.calibration);
      entry["op"] = info.op;
      entry["kind"] = info.kind;
      entry["description"] = info.description;
      entry["weight_shape"] = w->shape;
      entry["activation"] = activation_json(*act);
      entry["tensors"] = {{"weight", prefix + ".weight_int8"},
                          {"scale", prefix + ".weight_scale"},
                          {"bias", prefix + ".bias"}};
      ops.push_back(std::move(entry));
      report.ops.push_back(std::move(r));
    }
    meta["optimizer"] = nullptr;
    meta[kQuantizationKey] = {{"scheme", kQuantizationScheme},
                              {"format_version", 1},
                              {"calibration", std::move(calibration)},
                              {"ops", std::move(ops)},
                              {"kept_float", std::move(kept)}};
  } catch (const json::exception& e) {
    fail("{}: malformed model metadata: {}", in_path, e.what());
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.find(in_path) != std::string::npos) throw;
    fail("{}: {}", in_path, msg);
  }
  report.float_file_bytes = file_bytes(in_path);
  write_safetensors(out_path, tensors, {{"deft", meta.dump()}}, stored_dtypes);
  report.int8_file_bytes = file_bytes(out_path);
  return report;
}

void apply_stored_quantization(infer::Plan& plan, const json& quantization, const SafetensorsFile& file) {
  const std::string& src = file.source;
  DEFT_CHECK(quantization.is_object() && quantization.value("format_version", 0) == 1,
             "{}: unsupported \"quantization\" entry (format_version 1 expected)", src);
  DEFT_CHECK(quantization.value("scheme", "") == kQuantizationScheme,
             "{}: unknown quantization scheme '{}' (this runtime reads '{}')", src,
             quantization.value("scheme", ""), kQuantizationScheme);
  const json& ops = quantization.at("ops");
  DEFT_CHECK(ops.is_array(), "{}: quantization \"ops\" must be an array", src);
  for (const json& e : ops) {
    DEFT_CHECK(e.is_object() && e.contains("op") && e["op"].is_number_unsigned(),
               "{}: quantization entry {} has no op index", src, e.dump());
    const auto i = e["op"].get<size_t>();
    const std::string what = fmt::format("{}: quantised op {}", src, i);
    DEFT_CHECK(i < plan.size(), "{}: the plan has {} ops", what, plan.size());
    const std::string kind = e.value("kind", "");
    const std::string prefix = tensor_prefix(i);
    const infer::Op& op = plan.op(i);
    const auto* lin = dynamic_cast<const infer::LinearOp*>(&op);
    const auto* conv = dynamic_cast<const infer::ConvOp*>(&op);
    DEFT_CHECK((kind == "linear" && lin) || (kind == "conv2d" && conv),
               "{} is recorded as '{}' but the architecture gives '{}' there", what, kind, op.describe());
    const WeightLayout layout = lin ? WeightLayout::DenseInOut : WeightLayout::ConvOIHW;
    // The shapes first, so that an error names the tensor that is wrong.
    const Shape& float_shape = lin ? lin->kernel().shape() : conv->kernel().shape();
    const int64_t channels = float_shape[lin ? 1 : 0];
    const std::string wname = prefix + ".weight_int8", sname = prefix + ".weight_scale";
    DEFT_CHECK(file.at(wname).shape() == float_shape,
               "{}: tensor '{}' has shape {} but the layer's weight is {}", src, wname,
               shape_str(file.at(wname).shape()), shape_str(float_shape));
    DEFT_CHECK(file.at(sname).shape() == Shape{channels},
               "{}: tensor '{}' has shape {} but the layer has {} output channels", src, sname,
               shape_str(file.at(sname).shape()), channels);
    QuantizedWeights w = read_quantized_weights(file, prefix, layout);
    const std::string bname = prefix + ".bias";
    const Tensor& bias = file.at(bname);
    DEFT_CHECK(bias.dtype() == DType::Float32 && bias.shape() == Shape{w.channels()},
               "{}: tensor '{}' must be F32 [{}], got {} {}", src, bname, w.channels(),
               dtype_name(bias.dtype()), shape_str(bias.shape()));
    const ActivationQuant in = input_quant_from_json(e, what);
    const infer::Activation& act = lin ? lin->activation() : conv->activation();
    if (e.contains("activation"))
      DEFT_CHECK(e["activation"] == activation_json(act),
                 "{}: recorded activation {} but the architecture gives {}", what, e["activation"].dump(),
                 activation_json(act).dump());
    if (lin)
      plan.replace(i,
                   std::make_unique<QuantizedLinearOp>(lin->input_shapes.at(0), std::move(w), bias, in, act));
    else
      plan.replace(i, std::make_unique<QuantizedConvOp>(conv->geometry(), std::move(w), bias, in, act));
  }
}

}  // namespace deft::deploy
