// An int8 model file: a saved float model calibrated and quantised after training
// (`deft export --quantize int8`), and the step that puts the stored int8 ops back
// into a plan when the inference runtime loads it.
//
//   QuantizeModelReport r = quantize_model("m.deft", "m-int8.deft", train_images,
//                                          {.calibration = {.method = CalibrationMethod::Percentile}});
//   for (const auto& op : r.ops) fmt::print("{} {}\n", op.info.description, op.reason);
//   auto p = Predictor::load("m-int8.deft");        // p->info().quantized == true
//
// Calibration examples are raw, as the data holds them ([N, ...input_shape], uint8 or
// float32 pixels, float32 table columns); the model's preprocessing is applied, the
// float plan (BatchNorm folded) runs over them with an observer on every Dense/Conv
// input, and each op that int8_pays_off() is replaced (quant_ops.h: quantize_plan).
//
// The file written (atomically) is a .deft safetensors file:
//   metadata "deft"   the float model's JSON with "optimizer": null and a
//                     "quantization" object:
//     {"scheme": "int8 per-channel weights, u8 per-tensor activations",
//      "format_version": 1,
//      "calibration": {"method": "percentile", "percentile": 99.99, "examples": 2000},
//      "ops": [{"op": 3, "kind": "linear", "description": "linear int8 1024->128 + relu",
//               "weight_shape": [1024, 128], "activation": "relu",
//               "tensors": {"weight": "quant.3.weight_int8", "scale": "quant.3.weight_scale",
//                           "bias": "quant.3.bias"},
//               "weight": {...}, "input": {"dtype": "uint8", "scale": 0.021, "zero_point": 0, ...}}],
//      "kept_float": [{"op": 0, "kind": "conv2d", "reason": "..."}]}
//   model/*           the float weights, unchanged (the runtime builds the float plan
//                     from them, then swaps the quantised ops in)
//   quant.<op>.weight_int8   I8, the BatchNorm-folded weight, the float weight's layout
//   quant.<op>.weight_scale  F32 [O], per output channel
//   quant.<op>.bias          F32 [O], the folded bias
// The optimizer state (optimizer/* tensors) is not written: an int8 file is for
// inference only, and train::Model::load refuses it. <op> is the op's index in the
// plan, which Plan::build derives from the architecture alone.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "deft/deploy/infer_plan.h"
#include "deft/deploy/quant_ops.h"
#include "deft/tensor/safetensors.h"
#include "deft/tensor/tensor.h"

namespace deft::deploy {

// The metadata key an int8 file carries (inside the "deft" JSON).
inline constexpr const char* kQuantizationKey = "quantization";
inline constexpr const char* kQuantizationScheme = "int8 per-channel weights, u8 per-tensor activations";

struct QuantizedOpReport {
  QuantizedOpInfo info;
  std::string reason;  // why it was kept float ("" when quantised)
};

struct QuantizeModelReport {
  std::vector<QuantizedOpReport> ops;  // every Dense/Conv op of the plan, in order
  int64_t calibration_examples = 0;
  int64_t float_file_bytes = 0;  // the file read
  int64_t int8_file_bytes = 0;   // the file written
  int64_t quantized_ops() const;
};

// Reads `in_path` (a float .deft model), calibrates on `calibration_raw` and writes
// the int8 model to `out_path` (may equal in_path). InputError naming the file for a
// model that is not a float deft model, and naming both shapes for calibration
// examples whose shape differs from the model's input.
QuantizeModelReport quantize_model(const std::string& in_path, const std::string& out_path,
                                   const Tensor& calibration_raw, const QuantizeOptions& options = {});

// The runtime's side: replaces the ops listed in `quantization` (the metadata object
// above) in a float plan built from the same file with int8 ops made from the stored
// tensors. InputError naming the file and the tensor or op for a missing or
// inconsistent entry.
void apply_stored_quantization(infer::Plan& plan, const nlohmann::json& quantization,
                               const SafetensorsFile& file);

}  // namespace deft::deploy
