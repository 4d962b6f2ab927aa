// Losses: functions for hand-written training loops, and Loss objects for
// model.compile and config files.
//
//   Tensor l = nn::sparse_categorical_cross_entropy(logits, labels, {.label_smoothing = 0.1f});
//   auto loss = nn::make_loss("sparse_categorical_crossentropy", {{"label_smoothing", 0.1}});
//   Tensor l2 = (*loss)(model_output, labels, sample_weights);
//   Tensor probs = nn::output_to_probabilities(model_output, *loss);  // for metrics, predict
//
// All are numerically stable (the logits forms never take log of a probability) and
// built on the fused kernels in deft/autograd/ops_nn.h. Per-sample weights (float [N],
// constants) give Reduction::Mean = sum(w_i l_i) / sum(w_i); fit(class_weight=...) uses
// them. Class weights of the sparse form follow PyTorch (mean divided by the sum of the
// samples' class weights).
//
// deft models output logits, so every cross-entropy here defaults to from_logits = true
// (Keras defaults to false): set from_logits = false for a model ending in softmax/sigmoid.
// Probabilities are normalised per row and clipped to [1e-7, 1 - 1e-7] like Keras.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "deft/autograd/ops_nn.h"
#include "deft/tensor/tensor.h"

namespace deft::nn {

using Reduction = deft::Reduction;
// label_smoothing, class_weights, reduction, ignore_index.
using CrossEntropyOptions = deft::CrossEntropyOptions;

// "mean", "sum", "none"; parse_reduction also takes Keras's "sum_over_batch_size" and "auto".
const char* reduction_name(Reduction r);
Reduction parse_reduction(const std::string& name);

// ---- functions ------------------------------------------------------------------------------
// probs / logits: [N] or [N,1] (or [N,K] multi-label); targets: float or int64 0/1 of the
// same numel. Reduction::None keeps the output's shape. `weights` are per-sample [N].
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets, Reduction reduction = Reduction::Mean,
                            const Tensor& weights = {});
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction = Reduction::Mean, const Tensor& weights = {},
                                        float pos_weight = 1.0f);
// logits [N,C], labels int64 [N]; Reduction::None gives [N].
Tensor sparse_categorical_cross_entropy(const Tensor& logits, const Tensor& labels,
                                        const CrossEntropyOptions& options = {},
                                        const Tensor& sample_weights = {});
// output [N,C] (logits, or probabilities when !from_logits), target_probs [N,C].
Tensor categorical_cross_entropy(const Tensor& output, const Tensor& target_probs, bool from_logits = true,
                                 const CrossEntropyOptions& options = {}, const Tensor& sample_weights = {});
// Regression: pred and target of one shape ([N] and [N,1] match each other).
Tensor mse(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean,
           const Tensor& sample_weights = {});
Tensor mae(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean,
           const Tensor& sample_weights = {});
// PyTorch HuberLoss: 0.5 d^2 for |d| < delta, delta (|d| - delta/2) beyond.
Tensor huber(const Tensor& pred, const Tensor& target, float delta = 1.0f,
             Reduction reduction = Reduction::Mean, const Tensor& sample_weights = {});

// ---- objects ----------------------------------------------------------------------------------
// What a model's output is, as the loss reads it.
enum class OutputKind { Logits, Probabilities, Values };

class Loss {
 public:
  virtual ~Loss() = default;
  virtual Tensor operator()(const Tensor& output, const Tensor& target,
                            const Tensor& sample_weights = {}) const = 0;
  virtual std::string name() const = 0;       // the Keras name; make_loss(name(), config()) rebuilds it
  virtual nlohmann::json config() const = 0;  // its options
  virtual OutputKind output_kind() const = 0;
  // Binary losses read logits/probabilities through a sigmoid, the others through a softmax.
  virtual bool is_binary() const { return false; }
};

struct SparseCategoricalCrossentropyOptions {
  bool from_logits = true;
  float label_smoothing = 0.0f;
  Reduction reduction = Reduction::Mean;
  std::vector<float> class_weights;     // empty: all 1
  std::optional<int64_t> ignore_index;  // samples with this label are skipped
};

class SparseCategoricalCrossentropy : public Loss {
 public:
  explicit SparseCategoricalCrossentropy(SparseCategoricalCrossentropyOptions options = {});
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "sparse_categorical_crossentropy"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override;
  const SparseCategoricalCrossentropyOptions& options() const { return opt_; }

 private:
  SparseCategoricalCrossentropyOptions opt_;
};

struct CategoricalCrossentropyOptions {
  bool from_logits = true;
  float label_smoothing = 0.0f;
  Reduction reduction = Reduction::Mean;
};

class CategoricalCrossentropy : public Loss {
 public:
  explicit CategoricalCrossentropy(CategoricalCrossentropyOptions options = {});
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "categorical_crossentropy"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override;
  const CategoricalCrossentropyOptions& options() const { return opt_; }

 private:
  CategoricalCrossentropyOptions opt_;
};

struct BinaryCrossentropyOptions {
  bool from_logits = true;
  float label_smoothing = 0.0f;  // Keras: targets become t (1 - s) + s / 2
  Reduction reduction = Reduction::Mean;
  float pos_weight = 1.0f;  // logits only: weight of the positive term
};

class BinaryCrossentropy : public Loss {
 public:
  explicit BinaryCrossentropy(BinaryCrossentropyOptions options = {});
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "binary_crossentropy"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override;
  bool is_binary() const override { return true; }
  const BinaryCrossentropyOptions& options() const { return opt_; }

 private:
  BinaryCrossentropyOptions opt_;
};

struct RegressionLossOptions {
  Reduction reduction = Reduction::Mean;
};

class MeanSquaredError : public Loss {
 public:
  explicit MeanSquaredError(RegressionLossOptions options = {}) : opt_(options) {}
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "mean_squared_error"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override { return OutputKind::Values; }

 private:
  RegressionLossOptions opt_;
};

class MeanAbsoluteError : public Loss {
 public:
  explicit MeanAbsoluteError(RegressionLossOptions options = {}) : opt_(options) {}
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "mean_absolute_error"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override { return OutputKind::Values; }

 private:
  RegressionLossOptions opt_;
};

struct HuberOptions {
  float delta = 1.0f;
  Reduction reduction = Reduction::Mean;
};

class Huber : public Loss {
 public:
  explicit Huber(HuberOptions options = {});
  Tensor operator()(const Tensor& output, const Tensor& target,
                    const Tensor& sample_weights = {}) const override;
  std::string name() const override { return "huber"; }
  nlohmann::json config() const override;
  OutputKind output_kind() const override { return OutputKind::Values; }

 private:
  HuberOptions opt_;
};

// Builds a loss from its Keras name ("sparse_categorical_crossentropy",
// "categorical_crossentropy", "binary_crossentropy", "mse"/"mean_squared_error",
// "mae"/"mean_absolute_error", "huber"; the class names work too) and its options
// (the keys config() writes; Keras's "name" key is ignored). Unknown names and options
// throw InputError listing the valid ones.
std::shared_ptr<Loss> make_loss(const std::string& name, const nlohmann::json& config = {});
std::vector<std::string> loss_names();

// The model's output as probabilities for metrics and predict: softmax over the last
// axis (or sigmoid for binary losses) of logits; probabilities and values as they are.
Tensor output_to_probabilities(const Tensor& output, const Loss& loss);

}  // namespace deft::nn
