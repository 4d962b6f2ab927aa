// Predictor: a .deft file read directly (safetensors + the "deft" metadata JSON that
// train::Model::save writes), its preprocessing applied into the plan's input buffer,
// the plan run batch by batch, and the output turned into probabilities the way
// nn::output_to_probabilities does for the saved loss.
#include "deft/deploy/infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "deft/data/preprocess.h"
#include "deft/deploy/infer_plan.h"
#include "deft/deploy/quantize_model.h"
#include "deft/tensor/error.h"
#include "deft/tensor/parallel.h"
#include "deft/tensor/safetensors.h"
#include "deft/tensor/vecmath.h"

namespace deft::deploy {

namespace {

using json = nlohmann::json;

constexpr const char* kModelPrefix = "model/";

// How the network's output becomes predict()'s.
enum class OutputMode {
  Values,             // regression, or probabilities already (a from_logits=false loss)
  Softmax,            // logits over the last axis
  Sigmoid,            // binary logits -> [1-p, p]
  BinaryProbability,  // binary probabilities -> [1-p, p]
};

class PredictorImpl final : public Predictor {
 public:
  PredictorImpl(const std::string& path, const InferOptions& options);

  const ModelInfo& info() const override { return info_; }
  Tensor predict(const Tensor& raw) override;
  void predict(const float* raw, int64_t n, float* out) override;
  RuntimeStats stats() const override;
  std::string describe() const override { return plan_.describe(); }

 private:
  void run_batches(const void* raw, bool u8, int64_t n, float* out);
  void preprocess(const void* raw, bool u8, int64_t n, float* dst) const;
  void postprocess(const float* y, int64_t n, float* out) const;

  ModelInfo info_;
  int threads_ = 1;
  infer::Plan plan_;
  std::optional<data::Preprocessor> pre_;
  std::vector<float> img_a_, img_b_;  // images: out = x * a[c] + b[c]
  int64_t raw_numel_ = 0;             // per example
  int64_t net_out_numel_ = 0, net_out_last_ = 1;
  OutputMode mode_ = OutputMode::Values;
  int64_t batches_ = 0;
};

std::string describe_architecture(const json& meta, const infer::Plan& plan) {
  std::string family;
  const json* prov = meta.contains("provenance") ? &meta["provenance"] : nullptr;
  if (prov && prov->is_object() && prov->contains("config") && (*prov)["config"].is_object()) {
    const json& cfg = (*prov)["config"];
    if (cfg.contains("model") && cfg["model"].is_string()) family = cfg["model"].get<std::string>();
  }
  if (family.empty()) family = meta.at("architecture").value("type", "network");
  return fmt::format("{} ({} layers)", family, plan.layers());
}

PredictorImpl::PredictorImpl(const std::string& path, const InferOptions& options) {
  DEFT_CHECK(options.max_batch >= 1, "{}: max_batch must be at least 1, got {}", path, options.max_batch);
  threads_ = options.threads > 0 ? options.threads : num_threads();
  const SafetensorsFile file = read_safetensors(path);
  const auto it = file.metadata.find("deft");
  DEFT_CHECK(it != file.metadata.end(), "{}: not a deft model (no 'deft' entry in the safetensors metadata)",
             path);
  json meta;
  try {
    meta = json::parse(it->second);
  } catch (const json::exception& e) {
    fail("{}: the model metadata is not valid JSON: {}", path, e.what());
  }
  try {
    DEFT_CHECK(meta.is_object() && meta.value("format", "") == "deft-model", "not a deft model file");
    DEFT_CHECK(meta.value("format_version", 0) == 1, "format version {} (this runtime reads 1)",
               meta.value("format_version", 0));
    std::map<std::string, Tensor> weights;
    for (const auto& [name, t] : file.tensors)
      if (name.rfind(kModelPrefix, 0) == 0) weights.emplace(name.substr(6), t);
    const Shape raw_shape = meta.at("input_shape").get<Shape>();
    const Shape net_shape = meta.at("network_input_shape").get<Shape>();
    if (!meta.at("preprocessing").is_null()) pre_ = data::Preprocessor::from_json(meta["preprocessing"]);
    plan_ = infer::Plan::build(meta.at("architecture"), net_shape, weights, path);
    if (meta.contains("output_shape"))
      DEFT_CHECK_SHAPE(meta["output_shape"].get<Shape>() == plan_.output_shape(),
                       "the architecture gives outputs {} but the file records {}",
                       shape_str(plan_.output_shape()), meta["output_shape"].dump());
    // An int8 file (deft export --quantize int8): the float plan, then its stored int8 ops swapped in.
    if (meta.contains(kQuantizationKey) && !meta[kQuantizationKey].is_null()) {
      apply_stored_quantization(plan_, meta[kQuantizationKey], file);
      info_.quantized = true;
    }

    info_.path = path;
    info_.input_shape = raw_shape;
    raw_numel_ = shape_numel(raw_shape);
    if (pre_) {
      DEFT_CHECK_SHAPE(pre_->num_inputs() == raw_numel_ && pre_->num_outputs() == shape_numel(net_shape),
                       "the preprocessing takes {} values and gives {}, but the model's input is {} and the "
                       "network's {}",
                       pre_->num_inputs(), pre_->num_outputs(), shape_str(raw_shape), shape_str(net_shape));
      info_.image = pre_->is_image();
      if (pre_->is_image()) {
        const auto& im = pre_->image();
        for (size_t c = 0; c < im.mean.size(); ++c) {  // Preprocessor::derive's coefficients
          img_a_.push_back(static_cast<float>(im.pixel_scale / im.std[c]));
          img_b_.push_back(static_cast<float>(-im.mean[c] / im.std[c]));
        }
      } else {
        for (const auto& c : pre_->columns()) info_.feature_names.push_back(c.name);
      }
    } else {
      DEFT_CHECK_SHAPE(raw_numel_ == shape_numel(net_shape), "input {} does not fit the network's {}",
                       shape_str(raw_shape), shape_str(net_shape));
      info_.image = raw_shape.size() == 3;
    }
    info_.classification = meta.at("task").get<std::string>() != "regression";
    info_.class_names = meta.value("class_names", std::vector<std::string>{});
    const Shape& out = plan_.output_shape();
    net_out_numel_ = shape_numel(out);
    net_out_last_ = out.empty() ? 1 : std::max<int64_t>(1, out.back());
    if (!meta.at("loss").is_null()) {
      const std::string loss = meta["loss"].at("name").get<std::string>();
      const json config = meta["loss"].value("config", json::object());
      const bool logits = config.value("from_logits", true);
      const bool cross_entropy =
          loss.find("crossentropy") != std::string::npos || loss.find("Crossentropy") != std::string::npos;
      const bool binary =
          cross_entropy && (loss.find("binary") != std::string::npos || loss.find("Binary") == 0);
      if (binary && net_out_numel_ == 1)
        mode_ = logits ? OutputMode::Sigmoid : OutputMode::BinaryProbability;
      else if (binary && logits)
        mode_ = OutputMode::Sigmoid;  // sigmoid per output, as output_to_probabilities
      else if (cross_entropy && logits)
        mode_ = OutputMode::Softmax;
    }
    const bool two =
        mode_ == OutputMode::BinaryProbability || (mode_ == OutputMode::Sigmoid && net_out_numel_ == 1);
    info_.num_outputs = two ? 2 : net_out_numel_;
    info_.parameters = plan_.parameters();
    info_.architecture = describe_architecture(meta, plan_);
    ThreadCountScope scope(threads_);
    plan_.allocate(options.max_batch);
    if (options.warm_up) {
      detail::sync_thread_count();
      std::fill_n(plan_.input(), options.max_batch * shape_numel(net_shape), 0.0f);
      plan_.run(options.max_batch);
    }
  } catch (const json::exception& e) {
    fail("{}: malformed model metadata: {}", path, e.what());
  } catch (const ShapeError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    fail<ShapeError>("{}: {}", path, msg);
  } catch (const InputError& e) {
    const std::string msg = e.what();
    if (msg.rfind(path, 0) == 0) throw;
    fail("{}: {}", path, msg);
  }
}

RuntimeStats PredictorImpl::stats() const {
  RuntimeStats s;
  s.buffer_bytes = plan_.buffer_bytes();
  s.buffer_allocations = plan_.allocations();
  s.batches_run = batches_;
  s.input_buffer = const_cast<infer::Plan&>(plan_).input();
  s.threads = threads_;
  s.max_batch = plan_.max_batch();
  return s;
}

Tensor PredictorImpl::predict(const Tensor& raw_in) {
  DEFT_CHECK(raw_in.defined(), "predict: {}: no input given", info_.path);
  const bool u8 = raw_in.dtype() == DType::UInt8;
  DEFT_CHECK(raw_in.dtype() == DType::Float32 || (u8 && info_.image), "predict: {} takes {} input, got {}",
             info_.path, info_.image ? "float32 or uint8" : "float32", dtype_name(raw_in.dtype()));
  const Shape per(raw_in.shape().begin() + std::min<int64_t>(1, raw_in.dim()), raw_in.shape().end());
  DEFT_CHECK_SHAPE(
      raw_in.dim() == static_cast<int64_t>(info_.input_shape.size()) + 1 && per == info_.input_shape,
      "predict: {} takes examples of shape {} (input [N,{}]), got input {}", info_.path,
      shape_str(info_.input_shape), shape_str(info_.input_shape).substr(1), shape_str(raw_in.shape()));
  const Tensor raw = raw_in.contiguous_copy();
  const int64_t n = raw.size(0);
  Tensor out = Tensor::empty({n, info_.num_outputs});
  if (n > 0) run_batches(raw.raw_data(), u8, n, out.data<float>());
  return out;
}

void PredictorImpl::predict(const float* raw, int64_t n, float* out) {
  DEFT_CHECK(n >= 0, "predict: {}: negative example count {}", info_.path, n);
  if (n == 0) return;
  DEFT_CHECK(raw != nullptr && out != nullptr, "predict: {}: null input or output buffer", info_.path);
  run_batches(raw, false, n, out);
}

void PredictorImpl::run_batches(const void* raw, bool u8, int64_t n, float* out) {
  ThreadCountScope scope(threads_);
  detail::sync_thread_count();
  const int64_t step = plan_.max_batch();
  const size_t elem = u8 ? 1 : sizeof(float);
  for (int64_t i = 0; i < n; i += step) {
    const int64_t b = std::min(step, n - i);
    preprocess(static_cast<const char*>(raw) + static_cast<size_t>(i * raw_numel_) * elem, u8, b,
               plan_.input());
    const float* y = plan_.run(b);
    postprocess(y, b, out + i * info_.num_outputs);
    ++batches_;
  }
}

void PredictorImpl::preprocess(const void* raw, bool u8, int64_t n, float* dst) const {
  const auto* f = static_cast<const float*>(raw);
  const auto* b = static_cast<const uint8_t*>(raw);
  if (!pre_) {
    const int64_t count = n * raw_numel_;
    if (u8) {
      for (int64_t i = 0; i < count; ++i) dst[i] = static_cast<float>(b[i]);
    } else {
      std::memcpy(dst, f, static_cast<size_t>(count) * sizeof(float));
    }
    return;
  }
  if (pre_->is_image()) {
    // As Preprocessor::transform_features: per (example, channel) plane, x * a + b.
    const Shape& chw = info_.input_shape;
    const int64_t channels = chw[0], plane = chw[1] * chw[2];
    parallel_for(0, n * channels, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(plane, 1)),
                 [&](int64_t p0, int64_t p1) {
                   for (int64_t p = p0; p < p1; ++p) {
                     const auto c = static_cast<size_t>(p % channels);
                     const float a = img_a_[c], s = img_b_[c];
                     float* __restrict o = dst + p * plane;
                     if (u8) {
                       const uint8_t* __restrict x = b + p * plane;
                       for (int64_t k = 0; k < plane; ++k) o[k] = static_cast<float>(x[k]) * a + s;
                     } else {
                       const float* __restrict x = f + p * plane;
                       for (int64_t k = 0; k < plane; ++k) o[k] = x[k] * a + s;
                     }
                   }
                 });
    return;
  }
  // Tables: impute, clip, scale; one-hot or ordinal.
  pre_->transform_table_rows(f, n, dst);
}

void PredictorImpl::postprocess(const float* y, int64_t n, float* out) const {
  const int64_t count = n * net_out_numel_;
  switch (mode_) {
    case OutputMode::Values:
      std::memcpy(out, y, static_cast<size_t>(count) * sizeof(float));
      return;
    case OutputMode::Softmax: {
      // kernel::softmax over the last axis: exp(x - max) / sum.
      const int64_t len = net_out_last_, rows = count / len;
      for (int64_t r = 0; r < rows; ++r) {
        const float* x = y + r * len;
        float* o = out + r * len;
        const float m = vm::stable_shift(x, len);
        float s = 0.0f;
        for (int64_t i = 0; i < len; ++i) {
          o[i] = vm::exp(x[i] - m);
          s += o[i];
        }
        const float inv = 1.0f / s;
        for (int64_t i = 0; i < len; ++i) o[i] *= inv;
      }
      return;
    }
    case OutputMode::Sigmoid:
    case OutputMode::BinaryProbability:
      if (info_.num_outputs == 2) {
        for (int64_t i = 0; i < n; ++i) {
          const float p = mode_ == OutputMode::Sigmoid ? vm::sigmoid(y[i]) : y[i];
          out[2 * i] = 1.0f - p;
          out[2 * i + 1] = p;
        }
      } else {
        for (int64_t i = 0; i < count; ++i) out[i] = vm::sigmoid(y[i]);
      }
      return;
  }
}

}  // namespace

std::unique_ptr<Predictor> Predictor::load(const std::string& path, const InferOptions& options) {
  return std::make_unique<PredictorImpl>(path, options);
}

}  // namespace deft::deploy
