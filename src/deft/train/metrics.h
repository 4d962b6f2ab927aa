// Streaming metrics: fed one batch at a time during training and evaluation,
// read once per epoch. Semantics follow scikit-learn's (zero_division=0, R² on
// constant targets, ROC-AUC ties); names follow Keras.
//
//   auto acc = make_metric("accuracy", 10);
//   for (auto& [x, y] : batches) acc->update(probabilities(x), y);   // [N,10], int64 [N]
//   double a = acc->result().at("accuracy");
//
//   ConfusionMatrix cm(10);                  // precision / recall / F1, per class and averaged
//   cm.update(probs, labels);
//   std::cout << format_classification_report(cm, class_names);
//
// Inputs per batch are probabilities (the trainer applies softmax / sigmoid first):
//   multiclass  predictions float32 [N,C], targets int64 [N] class indices;
//   binary      predictions float32 [N] or [N,1] = P(class 1), class 1 when p > 0.5,
//               targets int64 [N] or float32 [N] holding 0 / 1 ([N,1] also accepted);
//   regression  predictions and targets float32 [N] or [N,D] (averaged over outputs).
// A mismatched shape or a label outside [0,C) throws ShapeError / InputError naming it;
// a batch that throws leaves the metric unchanged. A metric that has seen no data
// (or, for AUC, only one class; for R², one sample) reports NaN, like scikit-learn.
// Updates are plain O(N·C) loops over the data, no graph: accuracy on a 64×10 batch
// takes about 0.4 µs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "deft/tensor/tensor.h"

namespace deft::train {

class Metric {
 public:
  virtual ~Metric() = default;
  // Canonical name, e.g. "accuracy", "top5_accuracy", "f1", "auc" (also for "roc_auc").
  virtual std::string name() const = 0;
  virtual void reset() = 0;
  virtual void update(const Tensor& predictions, const Tensor& targets) = 0;
  // Keys like "accuracy", "precision_macro", "f1_weighted", "auc", "r2".
  virtual std::map<std::string, double> result() const = 0;
};

// Fraction of rows whose predicted class (argmax; the first of equal maxima) is the
// target. num_classes = 0 takes the class count from the predictions.
class Accuracy : public Metric {
 public:
  explicit Accuracy(int64_t num_classes = 0);
  std::string name() const override { return "accuracy"; }
  void reset() override { correct_ = total_ = 0; }
  void update(const Tensor& predictions, const Tensor& targets) override;
  std::map<std::string, double> result() const override;

 private:
  int64_t num_classes_;
  int64_t correct_ = 0, total_ = 0;
};

// Fraction of rows whose target is among the k most probable classes. Classes are
// ranked by probability, equal probabilities by class index (lower first), so
// k = 1 agrees with Accuracy. Needs [N,C] predictions. Key "top{k}_accuracy".
class TopKAccuracy : public Metric {
 public:
  explicit TopKAccuracy(int64_t k, int64_t num_classes = 0);
  std::string name() const override { return name_; }
  void reset() override { hits_ = total_ = 0; }
  void update(const Tensor& predictions, const Tensor& targets) override;
  std::map<std::string, double> result() const override;

 private:
  int64_t k_, num_classes_;
  std::string name_;
  int64_t hits_ = 0, total_ = 0;
};

// Scores of one class, or an average over classes (support = number of true rows).
struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

// C×C counts, rows = true class, columns = predicted class; precision, recall and F1
// derived from them as scikit-learn does: 0 where a denominator is 0 (a class never
// predicted has precision 0, one never present recall 0). Macro averages run over the
// classes that occur as a target or a prediction (sklearn's default labels); micro
// averages pool the counts (all equal accuracy for single-label data); weighted
// averages weight by support. result() reports the families chosen at construction:
// "{family}_macro", "_micro", "_weighted", per class "{family}_class_{i}", and for two
// classes also "{family}" = the score of class 1 (sklearn's average='binary').
class ConfusionMatrix : public Metric {
 public:
  enum class Report { Precision, Recall, F1, All };  // All adds "accuracy"

  explicit ConfusionMatrix(int64_t num_classes, Report report = Report::All);
  std::string name() const override;  // "precision", "recall", "f1" or "confusion_matrix"
  void reset() override;
  void update(const Tensor& predictions, const Tensor& targets) override;
  std::map<std::string, double> result() const override;

  int64_t num_classes() const { return num_classes_; }
  int64_t count(int64_t true_class, int64_t predicted_class) const;
  void add(int64_t true_class, int64_t predicted_class, int64_t n = 1);
  void merge(const ConfusionMatrix& other);                       // adds other's counts; same class count
  const std::vector<int64_t>& counts() const { return counts_; }  // row-major C×C
  Tensor matrix() const;                                          // int64 [C,C]
  int64_t total() const;

  ClassScores class_scores(int64_t c) const;
  ClassScores macro() const;
  ClassScores micro() const;
  ClassScores weighted() const;
  double accuracy() const;  // NaN when empty

 private:
  int64_t num_classes_;
  Report report_;
  std::vector<int64_t> counts_;
};

// Binary ROC-AUC, exact: every score is kept (5 bytes a sample) and result() sorts them
// (O(n log n); 10^6 samples take well under a second),
// integrating the ROC curve by trapezoids over distinct thresholds, as sklearn's
// roc_auc_score does; equal to P(score_pos > score_neg) + 0.5·P(tie). Predictions
// [N], [N,1] or [N,2] (column 1 is used). NaN when only one class has been seen.
class RocAuc : public Metric {
 public:
  RocAuc() = default;
  std::string name() const override { return "auc"; }
  void reset() override;
  void update(const Tensor& predictions, const Tensor& targets) override;
  std::map<std::string, double> result() const override;
  double auc() const;

 private:
  std::vector<float> scores_;
  std::vector<uint8_t> positive_;
};

// The mean over all elements of an error of (prediction - target), summed in
// double: what MeanSquaredError and MeanAbsoluteError share.
class MeanElementError : public Metric {
 public:
  std::string name() const override { return name_; }
  void reset() override { sum_ = 0, count_ = 0; }
  std::map<std::string, double> result() const override;

 protected:
  explicit MeanElementError(const char* name) : name_(name) {}
  // Adds error(prediction - target) of every element of the batch.
  template <class Error>
  void accumulate(const Tensor& predictions, const Tensor& targets, Error error);

 private:
  const char* name_;
  double sum_ = 0;
  int64_t count_ = 0;
};

// Mean squared / absolute error over all elements.
class MeanSquaredError : public MeanElementError {
 public:
  MeanSquaredError() : MeanElementError("mse") {}
  void update(const Tensor& predictions, const Tensor& targets) override;
};

class MeanAbsoluteError : public MeanElementError {
 public:
  MeanAbsoluteError() : MeanElementError("mae") {}
  void update(const Tensor& predictions, const Tensor& targets) override;
};

// R² = 1 − SS_res / SS_tot per output, averaged over outputs (sklearn's
// 'uniform_average'). Target variance is merged batch by batch (Chan et al.), so
// large offsets do not cancel. A constant target gives 1 when predicted exactly and
// 0 otherwise (sklearn's force_finite); fewer than two samples give NaN.
class R2Score : public Metric {
 public:
  std::string name() const override { return "r2"; }
  void reset() override;
  void update(const Tensor& predictions, const Tensor& targets) override;
  std::map<std::string, double> result() const override;

 private:
  int64_t n_ = 0;
  std::vector<double> mean_, m2_, ss_res_;  // one per output
};

// Keras-like names: "accuracy" / "acc"; "top_k_accuracy" (k = 5), "top5", "top3_accuracy";
// "precision", "recall", "f1" (a ConfusionMatrix reporting that family);
// "confusion_matrix"; "auc" / "roc_auc"; "mse"; "mae"; "r2". Case-insensitive.
// num_classes: the classifier's class count (2 for one sigmoid output); 0 lets accuracy
// and top-k take it from the predictions; ignored by regression metrics.
// Unknown names throw InputError listing the valid ones.
std::unique_ptr<Metric> make_metric(const std::string& name, int64_t num_classes);

// {"classes": [...], "matrix": [[...]], "per_class": [{"class", "precision", "recall",
//  "f1", "support"}], "accuracy", "support", "macro": {...}, "micro": {...},
//  "weighted": {...}}. Empty class_names → "0", "1", ...
nlohmann::json confusion_json(const ConfusionMatrix& cm, const std::vector<std::string>& class_names = {});

// A text table in the layout of sklearn's classification_report (precision, recall,
// f1-score, support per class; accuracy, macro avg, weighted avg), followed by the
// confusion matrix with class names as row and column headings (long names are cut
// with "…"; matrices over 40 classes are left out as too wide to read).
std::string format_classification_report(const ConfusionMatrix& cm,
                                         const std::vector<std::string>& class_names = {}, int digits = 2);

// What an evaluation reports from its confusion matrix, into `logs`: accuracy, macro
// precision/recall/F1, weighted F1, and for two classes the positive class's scores
// (as sklearn reports them).
void add_confusion_logs(const ConfusionMatrix& cm, std::map<std::string, double>& logs);

}  // namespace deft::train
