// An execution plan: a saved network's architecture (nn::module_spec JSON) and
// weights turned into a list of ops (infer_ops.h) over float buffers allocated once.
//
//   Plan plan = Plan::build(arch_json, {1, 28, 28}, weights, "fashion.deft");
//   plan.allocate(256);                     // buffers for up to 256 examples
//   preprocess(raw, plan.input(), n);       // n <= 256 examples into the input buffer
//   const float* out = plan.run(n);         // n examples of plan.output_shape()
//
// Building interprets the layer types nn/registry.cpp knows without instantiating an
// nn::Module: Dropout, Identity, Flatten and Reshape cost nothing (the next op reads
// the same buffer); a BatchNorm right after a Dense or Conv2d is folded into its
// weights (eval mode: running statistics); an activation right after an op that can
// apply it is fused into that op. An unknown layer type, a missing tensor or one of
// the wrong shape is an InputError naming the file and the tensor or layer.
//
// Buffers are assigned by liveness (a value's buffer is reused once its last reader
// has run, element-wise ops write in place), so a deep network needs a few
// activations' worth of memory, not one per layer.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "deft/deploy/infer_ops.h"
#include "deft/tensor/tensor.h"

namespace deft::deploy::infer {

class Plan {
 public:
  // `weights`: the model's tensors by Module::state name ("0.kernel", "3.0.1.running_mean").
  static Plan build(const nlohmann::json& architecture, const Shape& input,
                    const std::map<std::string, Tensor>& weights, const std::string& source);

  // (Re)allocates every buffer for `max_batch` examples.
  void allocate(int64_t max_batch);
  int64_t max_batch() const { return max_batch_; }
  // Where the caller writes the (preprocessed) input: max_batch() examples of input_shape().
  float* input();
  // Runs every op on the first n (<= max_batch()) examples of input(); returns n examples
  // of output_shape(), valid until the next run.
  // With `op_seconds`, adds each op's wall time to its entry (resized to size()): for profiling.
  const float* run(int64_t n, std::vector<double>* op_seconds = nullptr);

  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }
  int64_t parameters() const { return parameters_; }
  int64_t layers() const { return layers_; }            // layers of the architecture (containers excluded)
  int64_t buffer_bytes() const;                         // all buffers together
  int64_t allocations() const { return allocations_; }  // buffer allocations so far

  // Called before op i runs, with that op's inputs (n examples each): how int8
  // calibration sees each Linear/Conv input. An empty function removes it.
  using Observer = std::function<void(size_t op, std::span<const float* const> inputs, int64_t n)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // The ops in execution order; replace() swaps one for another with the same shapes
  // (an int8 LinearOp for a float one, say). Call allocate() again afterwards.
  size_t size() const { return steps_.size(); }
  Op& op(size_t i) const { return *steps_.at(i).op; }
  void replace(size_t i, std::unique_ptr<Op> op);
  // One line per op: "conv2d 1->32 3x3/1 + relu".
  std::string describe() const;

 private:
  struct Step {
    std::unique_ptr<Op> op;
    std::vector<int> inputs;  // value ids
    int output = -1;
    bool has_activation = false;
    std::vector<const float*> in_ptrs;  // filled per run, allocated once
  };
  friend class PlanBuilder;

  Shape input_shape_, output_shape_;
  std::vector<Step> steps_;
  std::vector<int64_t> value_numel_;  // per example
  int output_value_ = 0;
  int64_t parameters_ = 0, layers_ = 0;

  int64_t max_batch_ = 0;
  int64_t allocations_ = 0;
  std::vector<int> value_buffer_;
  std::vector<Tensor> buffers_;
  Observer observer_;
};

}  // namespace deft::deploy::infer
