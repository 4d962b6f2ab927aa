// The inference runtime: a saved model (.deft, float32 or int8-quantised) run without
// the training code. This header and its implementation are what libdeft-infer holds
// (with the tensor kernels and the preprocessing): no autograd graph, no optimizers,
// no tuning, no storage.
//
//   auto p = deploy::Predictor::load("fashion.deft", {.threads = 2, .max_batch = 256});
//   const deploy::ModelInfo& info = p->info();      // per-example input shape, classes...
//   Tensor probs = p->predict(raw);                 // raw [N, ...] as the data holds it
//
// Inputs are raw features exactly as the data files hold them (uint8 or float32 pixels
// 0-255 N×C×H×W, or float32 table columns N×F with NaN for missing values); the
// model's preprocessing is applied inside. Outputs: classification -> probabilities
// [N, classes] (a binary model with one sigmoid output gives [N, 2]); regression ->
// predictions [N, outputs].
//
// A Predictor is not thread-safe: one caller at a time (deft serve's batcher thread
// owns one). predict() splits N into batches of at most max_batch, runs each through
// buffers allocated once, at load, for max_batch examples, and reused across calls
// (a larger N is more batches, never more memory); intra-op work uses `threads`
// threads (small layers run on one: waking a pool costs more than they do).
// Bad input (wrong per-example shape, wrong dtype, a file that is not a deft model)
// is an InputError naming the file or the shape.
//
// Inside (deploy/infer_plan.h, infer_ops.h): the architecture JSON is interpreted into
// a plan of ops over float buffers — no nn::Module, no autograd — with BatchNorm folded
// into the Dense/Conv2d before it and activations fused into the op before them;
// Dense and Conv2d run as oneDNN primitives whose weights are reordered once, at load.
// libdeft-infer (a shared library) holds this, the tensor kernels and the
// preprocessing; deploy/deft_infer.h is its C API.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::deploy {

struct InferOptions {
  int threads = 0;          // 0: the process default (DEFT_NUM_THREADS or the cores)
  int64_t max_batch = 256;  // examples per forward pass
  // Run one max_batch pass of zeros at load, so that the oneDNN primitives (and their
  // reordered weights) for full batches exist before the first request.
  bool warm_up = true;
};

struct ModelInfo {
  std::string path;                        // the file loaded
  Shape input_shape;                       // per example, raw: [C,H,W] or [F]
  bool image = false;                      // input is pixels (uint8 accepted as well as float32)
  std::vector<std::string> feature_names;  // tables: the raw input columns, in order
  bool classification = true;
  int64_t num_outputs = 0;               // classes (classification) or regression outputs
  std::vector<std::string> class_names;  // classification: one per class
  bool quantized = false;                // int8 weights and activations for Linear/Conv
  std::string architecture;              // a one-line description, e.g. "vgg_small (12 layers)"
  int64_t parameters = 0;
};

// What the runtime holds and has done, for tests and diagnostics.
struct RuntimeStats {
  int64_t buffer_bytes = 0;        // the activation buffers, all together
  int64_t buffer_allocations = 0;  // times they were (re)allocated: 1 after load unless a batch outgrew them
  int64_t batches_run = 0;         // forward passes so far
  const void* input_buffer = nullptr;  // where the preprocessed batch goes (stable across calls)
  int threads = 0;                     // intra-op threads used
  int64_t max_batch = 0;
};

class Predictor {
 public:
  // InputError naming `path` when it is missing, corrupt or not a deft model.
  static std::unique_ptr<Predictor> load(const std::string& path, const InferOptions& options = {});
  virtual ~Predictor() = default;

  virtual const ModelInfo& info() const = 0;
  // raw: [N, ...info().input_shape], Float32 or UInt8 (images); N may be 0.
  // Returns Float32 [N, info().num_outputs] (probabilities or predictions).
  virtual Tensor predict(const Tensor& raw) = 0;
  // The same into a caller's buffer: `raw` holds n examples of float32 (row-major),
  // `out` has room for n * info().num_outputs floats.
  virtual void predict(const float* raw, int64_t n, float* out) = 0;

  virtual RuntimeStats stats() const { return {}; }
  // The execution plan, one op a line ("conv2d 1->32 3x3/1 + relu", ...).
  virtual std::string describe() const { return {}; }
};

}  // namespace deft::deploy
