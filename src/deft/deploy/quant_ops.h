// Int8 ops for the inference plan (infer_plan.h) and the calibration pass that puts
// them in place of the float Linear/Conv ops (quant.h has the arithmetic).
//
//   infer::Plan plan = infer::Plan::build(arch, input_shape, weights, path);  // float, BN folded
//   plan.allocate(256);
//   std::vector<QuantizedOpInfo> q = quantize_plan(plan, calibration, {.method = ...});
//   plan.allocate(256);                       // replace() asks for it
//   plan.run(n);                              // now int8 where it pays off
//
// `calibration` holds preprocessed inputs [N, ...plan.input_shape()] (what the plan's
// input buffer takes); they run through the float plan in batches of max_batch() with
// an observer on every Linear/Conv input, then each op that int8_pays_off() is
// replaced by its int8 twin. The returned list says, per Linear/Conv op, what was done
// (for the export's report and the file's metadata: layer_quant_json).
//
// To rebuild a quantised plan from a file, build the float plan, then replace op i with
// QuantizedLinearOp/QuantizedConvOp made from the stored QuantizedWeights, bias and
// ActivationQuant (the constructors taking them) instead of calibrating again.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "deft/deploy/infer_ops.h"
#include "deft/deploy/infer_plan.h"
#include "deft/deploy/quant.h"

namespace deft::deploy {

// A LinearOp on int8: the same shapes, activation and (folded) bias.
class QuantizedLinearOp : public infer::Op {
 public:
  QuantizedLinearOp(const infer::LinearOp& op, const ActivationQuant& input);
  QuantizedLinearOp(const Shape& input_shape, QuantizedWeights weights, const Tensor& bias,
                    const ActivationQuant& input, const infer::Activation& act);
  std::string kind() const override { return "linear_int8"; }
  std::string describe() const override;
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  const QuantizedDense& dense() const { return dense_; }
  const infer::Activation& activation() const { return act_; }

 private:
  QuantizedDense dense_;
  infer::Activation act_;  // applied after the op unless ReLU (fused into oneDNN)
  int64_t rows_per_example_;
};

// A ConvOp on int8.
class QuantizedConvOp : public infer::Op {
 public:
  QuantizedConvOp(const infer::ConvOp& op, const ActivationQuant& input);
  QuantizedConvOp(const infer::ConvGeometry& g, QuantizedWeights weights, const Tensor& bias,
                  const ActivationQuant& input, const infer::Activation& act);
  std::string kind() const override { return "conv2d_int8"; }
  std::string describe() const override;
  void run(std::span<const float* const> inputs, float* output, int64_t n) override;
  const QuantizedConv2d& conv() const { return conv_; }
  const infer::Activation& activation() const { return act_; }

 private:
  QuantizedConv2d conv_;
  infer::Activation act_;
  infer::ConvGeometry g_;
};

struct QuantizedOpInfo {
  size_t op = 0;            // index in the plan
  std::string kind;         // "linear" or "conv2d"
  bool quantized = false;   // false: kept float (int8_pays_off said no, or skip_ops)
  ActivationQuant input;    // the calibrated input parameters (also when kept float)
  std::string description;  // the op's describe() after the pass
};

struct QuantizeOptions {
  ObserverOptions calibration;
  std::vector<size_t> skip_ops;  // op indices to keep float (e.g. the classifier)
};

// Calibrates on `calibration` ([N, ...input_shape], Float32, N > 0) and swaps the ops.
// InputError when the calibration data has the wrong shape or is empty.
std::vector<QuantizedOpInfo> quantize_plan(infer::Plan& plan, const Tensor& calibration,
                                           const QuantizeOptions& options = {});

}  // namespace deft::deploy
