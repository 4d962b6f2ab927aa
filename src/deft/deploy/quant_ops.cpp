// Int8 Linear/Conv ops for the inference plan, and the calibrate-and-swap pass.
#include "deft/deploy/quant_ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "deft/tensor/error.h"

namespace deft::deploy {
namespace {

bool is_relu(const infer::Activation& a) { return a.kind == infer::Activation::Kind::Relu; }

Conv2dParams conv_params(const infer::ConvGeometry& g) {
  Conv2dParams p;
  p.stride = g.stride;
  p.padding = g.padding;
  p.dilation = g.dilation;
  p.groups = g.groups;
  return p;
}

}  // namespace

// ---- Linear ----------------------------------------------------------------------------

QuantizedLinearOp::QuantizedLinearOp(const Shape& input_shape, QuantizedWeights weights, const Tensor& bias,
                                     const ActivationQuant& input, const infer::Activation& act)
    : dense_(std::move(weights), bias, input, is_relu(act)), act_(act) {
  DEFT_CHECK(!input_shape.empty() && input_shape.back() == dense_.in_features(),
             "int8 linear: input {} does not end in {} features", shape_str(input_shape),
             dense_.in_features());
  rows_per_example_ = shape_numel(input_shape) / dense_.in_features();
  input_shapes = {input_shape};
  output_shape = input_shape;
  output_shape.back() = dense_.out_features();
}

QuantizedLinearOp::QuantizedLinearOp(const infer::LinearOp& op, const ActivationQuant& input)
    : QuantizedLinearOp(op.input_shapes.at(0), quantize_weights(op.kernel(), WeightLayout::DenseInOut),
                        op.bias(), input, op.activation()) {}

std::string QuantizedLinearOp::describe() const {
  return fmt::format("linear int8 {}->{}{}", dense_.in_features(), dense_.out_features(),
                     act_.none() ? "" : " + " + act_.name());
}

void QuantizedLinearOp::run(std::span<const float* const> inputs, float* output, int64_t n) {
  const int64_t rows = n * rows_per_example_;
  if (rows == 0) return;
  dense_.forward(inputs[0], rows, output);
  if (!act_.none() && !is_relu(act_)) infer::apply_activation(act_, output, rows * dense_.out_features());
}

// ---- Conv --------------------------------------------------------------------------------

QuantizedConvOp::QuantizedConvOp(const infer::ConvGeometry& g, QuantizedWeights weights, const Tensor& bias,
                                 const ActivationQuant& input, const infer::Activation& act)
    : conv_(std::move(weights), bias, input, conv_params(g), is_relu(act)), act_(act), g_(g) {
  const Shape out = conv_.output_shape({1, g.C, g.H, g.W});
  DEFT_CHECK(out[1] == g.O && out[2] == g.Ho && out[3] == g.Wo,
             "int8 conv2d: weight {} does not give the geometry's output [{},{},{}]",
             shape_str(conv_.weights().shape), g.O, g.Ho, g.Wo);
  input_shapes = {{g.C, g.H, g.W}};
  output_shape = {g.O, g.Ho, g.Wo};
}

QuantizedConvOp::QuantizedConvOp(const infer::ConvOp& op, const ActivationQuant& input)
    : QuantizedConvOp(op.geometry(), quantize_weights(op.kernel(), WeightLayout::ConvOIHW), op.bias(), input,
                      op.activation()) {}

std::string QuantizedConvOp::describe() const {
  return fmt::format("conv2d int8 {}->{} {}x{}/{}{}{}", g_.C, g_.O, g_.kh, g_.kw, g_.stride[0],
                     g_.groups > 1 ? fmt::format(" groups {}", g_.groups) : "",
                     act_.none() ? "" : " + " + act_.name());
}

void QuantizedConvOp::run(std::span<const float* const> inputs, float* output, int64_t n) {
  if (n == 0) return;
  conv_.forward(inputs[0], {n, g_.C, g_.H, g_.W}, output);
  if (!act_.none() && !is_relu(act_)) infer::apply_activation(act_, output, n * g_.O * g_.Ho * g_.Wo);
}

// ---- the pass ----------------------------------------------------------------------------

std::vector<QuantizedOpInfo> quantize_plan(infer::Plan& plan, const Tensor& calibration,
                                           const QuantizeOptions& options) {
  const Shape& in_shape = plan.input_shape();
  DEFT_CHECK(calibration.defined() && calibration.dtype() == DType::Float32 && calibration.dim() >= 1 &&
                 Shape(calibration.shape().begin() + 1, calibration.shape().end()) == in_shape &&
                 calibration.size(0) > 0,
             "quantize: calibration data {} does not hold examples of shape {}",
             calibration.defined() ? shape_str(calibration.shape()) : "undefined", shape_str(in_shape));
  if (plan.max_batch() == 0) plan.allocate(256);

  // One observer per Linear/Conv op, by op index.
  std::vector<std::optional<RangeObserver>> observers(plan.size());
  std::vector<int64_t> in_numel(plan.size(), 0);
  for (size_t i = 0; i < plan.size(); ++i) {
    const infer::Op& op = plan.op(i);
    if (dynamic_cast<const infer::LinearOp*>(&op) || dynamic_cast<const infer::ConvOp*>(&op)) {
      observers[i].emplace(options.calibration);
      in_numel[i] = shape_numel(op.input_shapes.at(0));
    }
  }
  plan.set_observer([&](size_t i, std::span<const float* const> inputs, int64_t n) {
    if (observers[i]) observers[i]->observe(inputs[0], n * in_numel[i]);
  });
  const Tensor data = calibration.contiguous_copy();
  const int64_t per = shape_numel(in_shape), total = data.size(0);
  try {
    for (int64_t start = 0; start < total; start += plan.max_batch()) {
      const int64_t n = std::min(plan.max_batch(), total - start);
      std::memcpy(plan.input(), data.data<float>() + start * per,
                  static_cast<size_t>(n * per) * sizeof(float));
      plan.run(n);
    }
  } catch (...) {
    plan.set_observer({});
    throw;
  }
  plan.set_observer({});

  std::vector<QuantizedOpInfo> infos;
  for (size_t i = 0; i < plan.size(); ++i) {
    if (!observers[i]) continue;
    QuantizedOpInfo info;
    info.op = i;
    info.input = observers[i]->params();
    const bool skip =
        std::find(options.skip_ops.begin(), options.skip_ops.end(), i) != options.skip_ops.end();
    if (const auto* lin = dynamic_cast<const infer::LinearOp*>(&plan.op(i))) {
      info.kind = "linear";
      info.quantized = !skip && int8_pays_off(lin->kernel().shape(), WeightLayout::DenseInOut);
      if (info.quantized) plan.replace(i, std::make_unique<QuantizedLinearOp>(*lin, info.input));
    } else if (const auto* conv = dynamic_cast<const infer::ConvOp*>(&plan.op(i))) {
      info.kind = "conv2d";
      info.quantized = !skip && int8_pays_off(conv->kernel().shape(), WeightLayout::ConvOIHW);
      if (info.quantized) plan.replace(i, std::make_unique<QuantizedConvOp>(*conv, info.input));
    }
    info.description = plan.op(i).describe();
    infos.push_back(std::move(info));
  }
  plan.allocate(plan.max_batch());
  return infos;
}

}  // namespace deft::deploy
