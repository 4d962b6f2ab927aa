// ONNX export: a trained network, with its preprocessing, as one ONNX model that any
// ONNX runtime (onnxruntime, OpenCV's DNN module, TensorRT...) runs without deft.
//
//   train::Model m = train::Model::load("fashion.deft");       // (deploy does not link train:
//   deploy::OnnxSource src{.net = &m.net(),                      //  the caller hands the parts over)
//                          .preprocessor = m.preprocessor(),
//                          .raw_input = m.raw_input_shape(),
//                          .class_names = m.class_names()};
//   deploy::set_onnx_output(src, m.loss());                      // softmax, sigmoid or none
//   deploy::write_onnx("fashion.onnx", src, {.opset = 17});
//   std::string bytes = deploy::export_onnx(src);                // or the ModelProto in memory
//
// The graph's contract (DESIGN.md): one input named "input", float32 raw features
// exactly as the data files hold them ([N,C,H,W] pixels 0-255, or [N,F] table columns
// with NaN for a missing value and the schema's integer codes in categorical columns),
// batch dimension "N" left dynamic. The fitted preprocessing is ops inside the graph:
// images x*a+b per channel (Mul, Add); tables per column imputation (IsNaN/IsInf +
// Where), clipping (Max, Min), scaling (Sub, Div), categorical codes -> one-hot or
// ordinal slots through a lookup table (Gather), dropped columns left out. One output:
// "probabilities" [N, classes] (softmax or sigmoid applied; a binary model with a single
// sigmoid output gives [N,2] = [1-p, p]) or, for regression, "predictions" [N, outputs].
// metadata_props hold the class names, the preprocessing JSON, the architecture and
// deft's version.
//
// Layers: Dense/Linear (Gemm, or MatMul + Add on inputs of rank > 2), Conv2d (groups,
// dilation, stride, explicit or "same" padding), BatchNorm1d/2d (folded into the Conv
// or Dense right before it, else BatchNormalization), LayerNorm (LayerNormalization
// from opset 17, ReduceMean/Sqrt below), Max/AvgPool2d (ceil_mode as extra trailing
// padding), AdaptiveAvgPool2d (1x1 or an even division), GlobalAvgPool2d, Add,
// Concat, Embedding (Cast + Gather), Flatten, Reshape, the activations (GELU exactly,
// through Erf) and Dropout/Dropout2d/Identity (nothing at inference). Anything else,
// or a layer configuration ONNX cannot express exactly, is an InputError naming the
// layer by its path ("layer 3.0.1 (AvgPool2d)").
//
// Runtimes: every op is standard ai.onnx at the chosen opset (onnx.checker's full check
// passes). OpenCV 4.6's DNN module runs the image models of every zoo family; it lacks
// what the table preprocessing uses (IsNaN, Where, Gather on computed indices), the
// Embedding's Gather and LayerNormalization, so those need a full ONNX runtime.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "deft/data/preprocess.h"
#include "deft/nn/loss.h"
#include "deft/nn/module.h"

namespace deft::deploy {

// How the network's output becomes the graph's output (nn::output_to_probabilities).
enum class OnnxOutput {
  Logits,         // softmax (sigmoid for a binary loss) -> "probabilities"
  Probabilities,  // already probabilities -> "probabilities"
  Values,         // regression -> "predictions"
};

struct OnnxSource {
  const nn::Module* net = nullptr;                   // built, weights loaded
  const data::Preprocessor* preprocessor = nullptr;  // nullptr: the net takes the raw input as is
  Shape raw_input;                                   // per example: [C,H,W] or [F]
  std::vector<std::string> class_names;              // classification: one per class (may be empty)
  OnnxOutput output = OnnxOutput::Logits;
  bool binary = false;  // the loss reads outputs through a sigmoid
};

// What the loss says about the output (Logits / Probabilities / Values, and binary).
// A null loss reads as Logits, multi-class.
void set_onnx_output(OnnxSource& source, const nn::Loss* loss);

struct OnnxOptions {
  int64_t opset = 17;               // 13..17 (ai.onnx); outside is an InputError
  bool fold_batchnorm = true;       // fold BatchNorm into the Conv/Dense before it when it can
  std::string producer_version;     // default: deft's version
  std::string model_name = "deft";  // the graph's name
  nlohmann::json extra_metadata = nlohmann::json::object();  // more metadata_props (string values)
};

// The serialized ModelProto. InputError for a bad opset, an unbuilt network or a
// layer that cannot be exported.
std::string export_onnx(const OnnxSource& source, const OnnxOptions& options = {});
// export_onnx() written atomically to `path`.
void write_onnx(const std::string& path, const OnnxSource& source, const OnnxOptions& options = {});

}  // namespace deft::deploy
