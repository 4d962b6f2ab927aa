// deft export: a saved model in another form.
//
//   deft export --model m.deft --onnx m.onnx [--opset 13..17] [--keep-batchnorm]
//   deft export --model m.deft --quantize int8 --calibration fashion-mnist --out m-int8.deft
//               [--calibration-size 2000] [--calibration-method percentile|minmax|mse]
//
// The ONNX graph takes the raw input the data holds and applies the model's
// preprocessing itself (deploy/onnx_export.h). The int8 model is a .deft file for the
// inference runtime (deploy/quantize_model.h), calibrated on a seeded random subset of
// the calibration data's training split. Each output form has its own flags and its
// own step in run(); a command line may ask for several at once (ONNX stays float).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "deft/cli/commands.h"
#include "deft/data/registry.h"
#include "deft/deploy/onnx_export.h"
#include "deft/deploy/quantize_model.h"
#include "deft/tensor/error.h"
#include "deft/tensor/random.h"
#include "deft/train/model.h"

namespace deft::cli {

namespace {

struct ExportArgs {
  std::string model;  // the .deft file read
  // ONNX
  std::string onnx;  // write the ONNX model here
  int64_t opset = 17;
  bool keep_batchnorm = false;
  // int8
  std::string quantize;            // "int8"
  std::string calibration;         // a dataset name or path: its training split calibrates
  std::string calibration_target;  // CSV calibration data: the label column
  int64_t calibration_size = 2000;
  std::string calibration_method = "percentile";
  std::string out;  // the int8 .deft written
};

constexpr uint64_t kCalibrationSeed = 0;

std::string megabytes(int64_t bytes) { return fmt::format("{:.2f} MB", static_cast<double>(bytes) / 1e6); }

// Every flag checked before anything is written.
void check_args(const ExportArgs& a) {
  DEFT_CHECK(!a.quantize.empty() || (a.out.empty() && a.calibration.empty()),
             "--out and --calibration go with --quantize int8");
  DEFT_CHECK(!a.onnx.empty() || !a.quantize.empty(),
             "deft export: nothing to export; give --onnx FILE and/or --quantize int8 --out FILE");
  DEFT_CHECK(a.opset >= 13 && a.opset <= 17, "--opset must be 13 to 17, got {}", a.opset);
  if (a.quantize.empty()) return;
  DEFT_CHECK(a.quantize == "int8", "--quantize: only int8 is supported, got '{}'", a.quantize);
  DEFT_CHECK(!a.out.empty(), "--quantize int8 needs --out FILE (the int8 model to write)");
  DEFT_CHECK(!a.calibration.empty(),
             "--quantize int8 needs --calibration DATA (a dataset name such as fashion-mnist, or a path)");
  DEFT_CHECK(a.calibration_size >= 1, "--calibration-size must be at least 1, got {}", a.calibration_size);
  try {
    deploy::parse_calibration_method(a.calibration_method);
  } catch (const InputError& e) {
    fail("--calibration-method: {}", e.what());
  }
}

// A seeded random subset (in data order) of the training split's raw features.
Tensor calibration_examples(const ExportArgs& a, int64_t* available) {
  data::LoadOptions lo;
  lo.target = a.calibration_target;
  const data::Dataset train = data::load_dataset(a.calibration, lo).train;
  DEFT_CHECK(train.features.defined() && train.size() > 0, "--calibration {}: no training examples",
             a.calibration);
  *available = train.size();
  if (a.calibration_size >= train.size()) return train.features;
  std::vector<int64_t> idx(static_cast<size_t>(train.size()));
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int64_t>(i);
  Generator gen(kCalibrationSeed);
  const auto k = static_cast<size_t>(a.calibration_size);
  for (size_t i = 0; i < k; ++i)  // partial Fisher-Yates
    std::swap(idx[i], idx[i + gen.next_u64() % (idx.size() - i)]);
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return train.subset(idx).features;
}

void export_int8_file(const ExportArgs& a) {
  int64_t available = 0;
  const Tensor calib = calibration_examples(a, &available);
  deploy::QuantizeOptions o;
  o.calibration.method = deploy::parse_calibration_method(a.calibration_method);
  deploy::QuantizeModelReport r;
  try {
    r = deploy::quantize_model(a.model, a.out, calib, o);
  } catch (const ShapeError& e) {
    fail("--calibration {}: {}", a.calibration, e.what());
  }
  std::string method = a.calibration_method;
  if (o.calibration.method == deploy::CalibrationMethod::Percentile)
    method += fmt::format(" {}", o.calibration.percentile);
  std::printf("calibrated on %lld of %lld training examples of %s (%s)\n",
              static_cast<long long>(r.calibration_examples), static_cast<long long>(available),
              a.calibration.c_str(), method.c_str());
  for (const auto& op : r.ops) {
    const std::string what = op.info.quantized ? fmt::format("int8 (input scale {:.6g}, zero point {})",
                                                             op.info.input.scale, op.info.input.zero_point)
                                               : "float32: " + op.reason;
    std::printf("  op %-3zu %-36s %s\n", op.info.op, op.info.description.c_str(), what.c_str());
  }
  std::printf("wrote %s (int8: %lld of %zu Dense/Conv layers quantised; %s, float model %s)\n", a.out.c_str(),
              static_cast<long long>(r.quantized_ops()), r.ops.size(), megabytes(r.int8_file_bytes).c_str(),
              megabytes(r.float_file_bytes).c_str());
}

void export_onnx_file(const train::Model& model, const ExportArgs& a) {
  deploy::OnnxSource src{.net = &model.net(),
                         .preprocessor = model.preprocessor(),
                         .raw_input = model.raw_input_shape(),
                         .class_names = model.class_names()};
  deploy::set_onnx_output(src, model.loss());
  if (model.task() == data::Task::Regression) src.output = deploy::OnnxOutput::Values;
  deploy::OnnxOptions o;
  o.opset = a.opset;
  o.fold_batchnorm = !a.keep_batchnorm;
  o.extra_metadata = {{"source_model", a.model}};
  deploy::write_onnx(a.onnx, src, o);
  std::printf("wrote %s (ONNX opset %lld, input \"input\", output \"%s\")\n", a.onnx.c_str(),
              static_cast<long long>(a.opset),
              src.output == deploy::OnnxOutput::Values ? "predictions" : "probabilities");
}

}  // namespace

Command add_export_command(CLI::App& app) {
  auto args = std::make_shared<ExportArgs>();
  Command c;
  c.app = app.add_subcommand(
      "export", "Export a saved model: ONNX (preprocessing included in the graph), int8-quantised .deft");
  c.app->add_option("--model", args->model, "Model file (.deft)")->required();
  // ONNX
  c.app->add_option("--onnx", args->onnx,
                    "Write an ONNX model here (input \"input\": raw data as the files hold it)");
  c.app->add_option("--opset", args->opset, "ONNX opset, 13 to 17 (default 17)");
  c.app->add_flag(
      "--keep-batchnorm", args->keep_batchnorm,
      "ONNX: export BatchNorm as BatchNormalization instead of folding it into the Conv/Dense before it");
  // int8
  c.app->add_option(
      "--quantize", args->quantize,
      "Write an int8-quantised model (.deft, for deft predict/serve/eval and libdeft-infer): int8");
  c.app->add_option(
      "--calibration", args->calibration,
      "int8: calibration data, a dataset name (fashion-mnist) or a path; its training split is used");
  c.app->add_option("--calibration-target", args->calibration_target,
                    "int8: the label column when the calibration data is a CSV file");
  c.app->add_option("--calibration-size", args->calibration_size,
                    "int8: examples to calibrate on, a seeded random subset (default 2000)");
  c.app->add_option("--calibration-method", args->calibration_method,
                    "int8: activation range from percentile (99.99%, default), minmax or mse");
  c.app->add_option("--out", args->out, "int8: the quantised model file to write");
  c.run = [args]() -> int {
    const ExportArgs& a = *args;
    check_args(a);
    if (!a.onnx.empty()) export_onnx_file(train::Model::load(a.model), a);
    if (!a.quantize.empty()) export_int8_file(a);
    return 0;
  };
  return c;
}

}  // namespace deft::cli
