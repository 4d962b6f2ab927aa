#include "deft/train/metrics.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace deft::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// One validated classification batch. The tensors are kept so the pointers stay valid.
struct ClassBatch {
  Tensor probs, labels;  // contiguous float32; contiguous int64, each label in [0, classes)
  const float* p = nullptr;
  const int64_t* y = nullptr;
  int64_t n = 0;
  int64_t cols = 0;     // 1 for binary predictions ([N] / [N,1]), else C
  int64_t classes = 0;  // 2 for binary predictions, else C

  int64_t predicted(int64_t i) const {
    if (cols == 1) return p[i] > 0.5f ? 1 : 0;
    // First of equal maxima, as numpy / torch argmax; a NaN never wins.
    const float* row = p + i * cols;
    int64_t best = 0;
    float best_v = row[0];
    for (int64_t j = 1; j < cols; ++j) {
      if (row[j] > best_v) best_v = row[j], best = j;
    }
    return best;
  }
};

// Checks shapes, dtypes and label range before any state changes, so a bad batch
// leaves the metric as it was. expected_classes = 0 accepts any class count.
ClassBatch check_class_batch(const char* who, const Tensor& pred, const Tensor& target,
                             int64_t expected_classes) {
  DEFT_CHECK(pred.defined() && target.defined(), "{}: predictions and targets must be defined tensors", who);
  DEFT_CHECK(pred.dtype() == DType::Float32, "{}: predictions must be float32 probabilities, got {} {}", who,
             dtype_name(pred.dtype()), shape_str(pred.shape()));
  ClassBatch b;
  if (pred.dim() == 1 || (pred.dim() == 2 && pred.size(1) == 1)) {
    b.cols = 1;
    b.classes = 2;
  } else if (pred.dim() == 2) {
    b.cols = b.classes = pred.size(1);
  } else {
    fail<ShapeError>(
        "{}: predictions must be [N,C] class probabilities or [N] / [N,1] probabilities of class 1, got {}",
        who, shape_str(pred.shape()));
  }
  b.n = pred.size(0);
  if (expected_classes > 0 && b.classes != expected_classes) {
    if (b.cols == 1) {
      fail<ShapeError>("{}: predictions {} are binary (one probability per row), but there are {} classes",
                       who, shape_str(pred.shape()), expected_classes);
    }
    fail<ShapeError>("{}: predictions {} have {} classes, expected {}", who, shape_str(pred.shape()),
                     b.classes, expected_classes);
  }
  const bool rows_match =
      (target.dim() == 1 || (target.dim() == 2 && target.size(1) == 1)) && target.size(0) == b.n;
  DEFT_CHECK_SHAPE(rows_match, "{}: targets {} do not match predictions {}: expected [{}] class indices", who,
                   shape_str(target.shape()), shape_str(pred.shape()), b.n);

  b.probs = pred.contiguous_copy();
  b.p = b.probs.data<float>();
  if (target.dtype() == DType::Int64) {
    b.labels = target.contiguous_copy();
    const int64_t* y = b.labels.data<int64_t>();
    for (int64_t i = 0; i < b.n; ++i) {
      if (y[i] < 0 || y[i] >= b.classes) {
        fail("{}: label {} at row {} is out of range for {} classes (predictions {})", who, y[i], i,
             b.classes, shape_str(pred.shape()));
      }
    }
  } else if (target.dtype() == DType::Float32 && b.cols == 1) {
    const Tensor t = target.contiguous_copy();
    const float* y = t.data<float>();
    for (int64_t i = 0; i < b.n; ++i) {
      if (!(y[i] == 0.f || y[i] == 1.f)) fail("{}: binary target {} at row {} must be 0 or 1", who, y[i], i);
    }
    b.labels = t.to(DType::Int64);
  } else {
    fail("{}: targets must be int64 class indices{}, got {} {}", who, b.cols == 1 ? " or float32 0/1" : "",
         dtype_name(target.dtype()), shape_str(target.shape()));
  }
  b.y = b.labels.data<int64_t>();
  return b;
}

void check_num_classes(const char* who, int64_t num_classes, bool zero_means_infer) {
  if (zero_means_infer && num_classes == 0) return;
  DEFT_CHECK(num_classes >= 2, "{}: a classifier has at least 2 classes (2 for one sigmoid output), got {}",
             who, num_classes);
}

// One validated regression batch: [N] is taken as [N,1].
struct RegressionBatch {
  Tensor pred_t, target_t;
  const float* p = nullptr;
  const float* y = nullptr;
  int64_t n = 0, d = 0;
};

RegressionBatch check_regression_batch(const char* who, const Tensor& pred, const Tensor& target) {
  DEFT_CHECK(pred.defined() && target.defined(), "{}: predictions and targets must be defined tensors", who);
  DEFT_CHECK(pred.dtype() == DType::Float32 && target.dtype() == DType::Float32,
             "{}: predictions and targets must be float32, got {} {} and {} {}", who,
             dtype_name(pred.dtype()), shape_str(pred.shape()), dtype_name(target.dtype()),
             shape_str(target.shape()));
  auto rows_cols = [](const Tensor& t) -> std::pair<int64_t, int64_t> {
    if (t.dim() == 1) return {t.size(0), 1};
    if (t.dim() == 2) return {t.size(0), t.size(1)};
    return {-1, -1};
  };
  const auto [pn, pd] = rows_cols(pred);
  const auto [tn, td] = rows_cols(target);
  DEFT_CHECK_SHAPE(pn >= 0 && pn == tn && pd == td,
                   "{}: predictions {} and targets {} do not match (expected both [N] or both [N,D])", who,
                   shape_str(pred.shape()), shape_str(target.shape()));
  RegressionBatch b;
  b.pred_t = pred.contiguous_copy();
  b.target_t = target.contiguous_copy();
  b.p = b.pred_t.data<float>();
  b.y = b.target_t.data<float>();
  b.n = pn;
  b.d = pd;
  return b;
}

// Display width of UTF-8 text, counted in code points (what the table aligns on).
int64_t text_width(const std::string& s) {
  int64_t w = 0;
  for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
  return w;
}

// Cuts to at most `max` code points, ending in "…" when cut; never splits a code point.
std::string truncate_text(const std::string& s, int64_t max) {
  if (text_width(s) <= max) return s;
  size_t end = 0;
  int64_t kept = 0;
  for (; end < s.size(); ++end) {
    if ((static_cast<unsigned char>(s[end]) & 0xC0) != 0x80) {
      if (kept == max - 1) break;
      ++kept;
    }
  }
  return s.substr(0, end) + "\u2026";
}

std::string pad_left(const std::string& s, int64_t width) {
  return std::string(static_cast<size_t>(std::max<int64_t>(0, width - text_width(s))), ' ') + s;
}

std::vector<std::string> resolve_class_names(const ConfusionMatrix& cm, const std::vector<std::string>& names,
                                             const char* who) {
  if (names.empty()) {
    std::vector<std::string> out;
    for (int64_t c = 0; c < cm.num_classes(); ++c) out.push_back(std::to_string(c));
    return out;
  }
  DEFT_CHECK(static_cast<int64_t>(names.size()) == cm.num_classes(),
             "{}: {} class names for a {}x{} confusion matrix", who, names.size(), cm.num_classes(),
             cm.num_classes());
  return names;
}

double ratio(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

}  // namespace

// --- Accuracy ------------------------------------------------------------------

Accuracy::Accuracy(int64_t num_classes) : num_classes_(num_classes) {
  check_num_classes("accuracy", num_classes, true);
}

void Accuracy::update(const Tensor& predictions, const Tensor& targets) {
  const ClassBatch b = check_class_batch("accuracy", predictions, targets, num_classes_);
  int64_t correct = 0;
  for (int64_t i = 0; i < b.n; ++i) correct += b.predicted(i) == b.y[i];
  correct_ += correct;
  total_ += b.n;
}

std::map<std::string, double> Accuracy::result() const {
  return {{"accuracy", total_ == 0 ? kNaN : static_cast<double>(correct_) / static_cast<double>(total_)}};
}

// --- TopKAccuracy --------------------------------------------------------------

TopKAccuracy::TopKAccuracy(int64_t k, int64_t num_classes)
    : k_(k), num_classes_(num_classes), name_(fmt::format("top{}_accuracy", k)) {
  DEFT_CHECK(k >= 1, "top-k accuracy: k must be at least 1, got {}", k);
  check_num_classes(name_.c_str(), num_classes, true);
}

void TopKAccuracy::update(const Tensor& predictions, const Tensor& targets) {
  const ClassBatch b = check_class_batch(name_.c_str(), predictions, targets, num_classes_);
  DEFT_CHECK_SHAPE(b.cols >= 2, "{}: needs [N,C] class probabilities, got predictions {}", name_,
                   shape_str(predictions.shape()));
  int64_t hits = 0;
  for (int64_t i = 0; i < b.n; ++i) {
    const float* row = b.p + i * b.cols;
    const int64_t y = b.y[i];
    const float s = row[y];
    // Rank of the target: classes with a higher probability, and equal ones with a lower index.
    int64_t rank = 0;
    for (int64_t j = 0; j < b.cols; ++j) rank += row[j] > s || (row[j] == s && j < y);
    hits += rank < k_;
  }
  hits_ += hits;
  total_ += b.n;
}

std::map<std::string, double> TopKAccuracy::result() const {
  return {{name_, total_ == 0 ? kNaN : static_cast<double>(hits_) / static_cast<double>(total_)}};
}

// --- ConfusionMatrix -------------------------------------------------------------

namespace {
const char* report_name(ConfusionMatrix::Report r) {
  switch (r) {
    case ConfusionMatrix::Report::Precision:
      return "precision";
    case ConfusionMatrix::Report::Recall:
      return "recall";
    case ConfusionMatrix::Report::F1:
      return "f1";
    case ConfusionMatrix::Report::All:
      break;
  }
  return "confusion_matrix";
}
}  // namespace

ConfusionMatrix::ConfusionMatrix(int64_t num_classes, Report report)
    : num_classes_(num_classes), report_(report) {
  check_num_classes(report_name(report), num_classes, false);
  counts_.assign(static_cast<size_t>(num_classes * num_classes), 0);
}

std::string ConfusionMatrix::name() const { return report_name(report_); }

void ConfusionMatrix::reset() { std::fill(counts_.begin(), counts_.end(), 0); }

void ConfusionMatrix::update(const Tensor& predictions, const Tensor& targets) {
  const ClassBatch b = check_class_batch(report_name(report_), predictions, targets, num_classes_);
  for (int64_t i = 0; i < b.n; ++i) ++counts_[static_cast<size_t>(b.y[i] * num_classes_ + b.predicted(i))];
}

int64_t ConfusionMatrix::count(int64_t true_class, int64_t predicted_class) const {
  DEFT_CHECK(
      true_class >= 0 && true_class < num_classes_ && predicted_class >= 0 && predicted_class < num_classes_,
      "confusion matrix: cell ({}, {}) is outside a {}x{} matrix", true_class, predicted_class, num_classes_,
      num_classes_);
  return counts_[static_cast<size_t>(true_class * num_classes_ + predicted_class)];
}

void ConfusionMatrix::add(int64_t true_class, int64_t predicted_class, int64_t n) {
  count(true_class, predicted_class);  // range check
  DEFT_CHECK(n >= 0, "confusion matrix: cannot add a negative count {}", n);
  counts_[static_cast<size_t>(true_class * num_classes_ + predicted_class)] += n;
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  DEFT_CHECK_SHAPE(other.num_classes_ == num_classes_,
                   "confusion matrix: cannot merge a {}x{} matrix into a {}x{} one", other.num_classes_,
                   other.num_classes_, num_classes_, num_classes_);
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

Tensor ConfusionMatrix::matrix() const { return Tensor::from_vector(counts_, {num_classes_, num_classes_}); }

int64_t ConfusionMatrix::total() const {
  int64_t t = 0;
  for (int64_t v : counts_) t += v;
  return t;
}

ClassScores ConfusionMatrix::class_scores(int64_t c) const {
  DEFT_CHECK(c >= 0 && c < num_classes_, "confusion matrix: class {} is out of range for {} classes", c,
             num_classes_);
  int64_t predicted = 0, support = 0;
  for (int64_t j = 0; j < num_classes_; ++j) {
    predicted += counts_[static_cast<size_t>(j * num_classes_ + c)];
    support += counts_[static_cast<size_t>(c * num_classes_ + j)];
  }
  const int64_t tp = counts_[static_cast<size_t>(c * num_classes_ + c)];
  // F1 from counts, 2·TP / (2·TP + FP + FN), as sklearn >= 1.3; equal to 2PR/(P+R) where defined.
  return {ratio(tp, predicted), ratio(tp, support), ratio(2 * tp, predicted + support), support};
}

ClassScores ConfusionMatrix::macro() const {
  ClassScores m;
  int64_t used = 0;
  for (int64_t c = 0; c < num_classes_; ++c) {
    const ClassScores s = class_scores(c);
    // sklearn's default labels: only classes seen as a target or a prediction count.
    int64_t predicted = 0;
    for (int64_t t = 0; t < num_classes_; ++t) predicted += count(t, c);
    if (s.support == 0 && predicted == 0) continue;
    m.precision += s.precision, m.recall += s.recall, m.f1 += s.f1;
    ++used;
  }
  if (used > 0) m.precision /= used, m.recall /= used, m.f1 /= used;
  m.support = total();
  return m;
}

ClassScores ConfusionMatrix::micro() const {
  int64_t trace = 0;
  for (int64_t c = 0; c < num_classes_; ++c) trace += count(c, c);
  const int64_t n = total();
  // Pooled TP = trace; pooled TP+FP and TP+FN are both every row.
  const double a = ratio(trace, n);
  return {a, a, a, n};
}

ClassScores ConfusionMatrix::weighted() const {
  ClassScores w;
  const int64_t n = total();
  for (int64_t c = 0; c < num_classes_; ++c) {
    const ClassScores s = class_scores(c);
    const double f = ratio(s.support, n);
    w.precision += f * s.precision, w.recall += f * s.recall, w.f1 += f * s.f1;
  }
  w.support = n;
  return w;
}

double ConfusionMatrix::accuracy() const {
  const int64_t n = total();
  return n == 0 ? kNaN : micro().precision;
}

std::map<std::string, double> ConfusionMatrix::result() const {
  std::vector<ClassScores> per_class;
  for (int64_t c = 0; c < num_classes_; ++c) per_class.push_back(class_scores(c));
  const ClassScores ma = macro(), mi = micro(), we = weighted();
  std::map<std::string, double> out;
  auto add_family = [&](const std::string& family, double ClassScores::*field) {
    for (int64_t c = 0; c < num_classes_; ++c) {
      out[fmt::format("{}_class_{}", family, c)] = per_class[static_cast<size_t>(c)].*field;
    }
    out[family + "_macro"] = ma.*field;
    out[family + "_micro"] = mi.*field;
    out[family + "_weighted"] = we.*field;
    if (num_classes_ == 2) out[family] = per_class[1].*field;
  };
  if (report_ == Report::Precision || report_ == Report::All)
    add_family("precision", &ClassScores::precision);
  if (report_ == Report::Recall || report_ == Report::All) add_family("recall", &ClassScores::recall);
  if (report_ == Report::F1 || report_ == Report::All) add_family("f1", &ClassScores::f1);
  if (report_ == Report::All) out["accuracy"] = accuracy();
  return out;
}

// --- RocAuc ----------------------------------------------------------------------

void RocAuc::reset() {
  scores_.clear();
  positive_.clear();
}

void RocAuc::update(const Tensor& predictions, const Tensor& targets) {
  DEFT_CHECK_SHAPE(!(predictions.defined() && predictions.dim() == 2 && predictions.size(1) > 2),
                   "auc: binary ROC-AUC only, got predictions {} for {} classes",
                   shape_str(predictions.shape()),
                   predictions.defined() && predictions.dim() == 2 ? predictions.size(1) : 0);
  const ClassBatch b = check_class_batch("auc", predictions, targets, 2);
  auto score = [&](int64_t i) { return b.cols == 1 ? b.p[i] : b.p[i * 2 + 1]; };
  for (int64_t i = 0; i < b.n; ++i) {
    // NaN has no place in the ranking (and would break the sort's ordering).
    DEFT_CHECK(!std::isnan(score(i)), "auc: prediction at row {} is NaN", i);
  }
  for (int64_t i = 0; i < b.n; ++i) {
    scores_.push_back(score(i));
    positive_.push_back(static_cast<uint8_t>(b.y[i]));
  }
}

double RocAuc::auc() const {
  struct Item {
    float score;
    uint8_t positive;
  };
  std::vector<Item> items(scores_.size());
  int64_t n_pos = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    items[i] = {scores_[i], positive_[i]};
    n_pos += positive_[i];
  }
  const int64_t n_neg = static_cast<int64_t>(items.size()) - n_pos;
  if (n_pos == 0 || n_neg == 0) return kNaN;  // undefined, as sklearn says
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.score > b.score; });
  // Walk thresholds from high to low; each group of equal scores moves the ROC point
  // diagonally, and the trapezoid under that step counts ties as half. Twice the area,
  // in units of one (positive, negative) pair, is an exact integer.
  int64_t tp = 0, fp = 0, twice_area = 0;
  for (size_t i = 0; i < items.size();) {
    const float s = items[i].score;
    int64_t dtp = 0, dfp = 0;
    for (; i < items.size() && items[i].score == s; ++i) (items[i].positive ? dtp : dfp) += 1;
    twice_area += dfp * (2 * tp + dtp);
    tp += dtp;
    fp += dfp;
  }
  return static_cast<double>(twice_area) / (2.0 * static_cast<double>(n_pos) * static_cast<double>(n_neg));
}

std::map<std::string, double> RocAuc::result() const { return {{"auc", auc()}}; }

// --- regression --------------------------------------------------------------------

template <class Error>
void MeanElementError::accumulate(const Tensor& predictions, const Tensor& targets, Error error) {
  const RegressionBatch b = check_regression_batch(name_, predictions, targets);
  double s = 0;
  for (int64_t i = 0; i < b.n * b.d; ++i) s += error(static_cast<double>(b.p[i]) - b.y[i]);
  sum_ += s;
  count_ += b.n * b.d;
}

std::map<std::string, double> MeanElementError::result() const {
  return {{name_, count_ == 0 ? kNaN : sum_ / static_cast<double>(count_)}};
}

void MeanSquaredError::update(const Tensor& predictions, const Tensor& targets) {
  accumulate(predictions, targets, [](double e) { return e * e; });
}

void MeanAbsoluteError::update(const Tensor& predictions, const Tensor& targets) {
  accumulate(predictions, targets, [](double e) { return std::abs(e); });
}

void R2Score::reset() {
  n_ = 0;
  mean_.clear(), m2_.clear(), ss_res_.clear();
}

void R2Score::update(const Tensor& predictions, const Tensor& targets) {
  const RegressionBatch b = check_regression_batch("r2", predictions, targets);
  if (b.n == 0) return;
  if (n_ > 0) {
    DEFT_CHECK_SHAPE(static_cast<int64_t>(mean_.size()) == b.d,
                     "r2: predictions {} have {} outputs, earlier batches had {}",
                     shape_str(predictions.shape()), b.d, mean_.size());
  } else {
    const auto d = static_cast<size_t>(b.d);
    mean_.assign(d, 0), m2_.assign(d, 0), ss_res_.assign(d, 0);
  }
  const double nb = static_cast<double>(b.n), na = static_cast<double>(n_), n = na + nb;
  for (int64_t j = 0; j < b.d; ++j) {
    const auto k = static_cast<size_t>(j);
    double sum = 0, res = 0;
    for (int64_t i = 0; i < b.n; ++i) {
      const double y = b.y[i * b.d + j];
      const double e = y - b.p[i * b.d + j];
      sum += y;
      res += e * e;
    }
    const double mean_b = sum / nb;
    double m2_b = 0;
    for (int64_t i = 0; i < b.n; ++i) {
      const double dy = b.y[i * b.d + j] - mean_b;
      m2_b += dy * dy;
    }
    // Chan et al.'s pairwise merge of (count, mean, sum of squared deviations).
    const double delta = mean_b - mean_[k];
    mean_[k] += delta * nb / n;
    m2_[k] += m2_b + delta * delta * na * nb / n;
    ss_res_[k] += res;
  }
  n_ += b.n;
}

std::map<std::string, double> R2Score::result() const {
  if (n_ < 2) return {{"r2", kNaN}};
  double sum = 0;
  for (size_t k = 0; k < mean_.size(); ++k) {
    // A constant target has SS_tot exactly 0: n copies of one float32 value sum exactly in double,
    // so each batch mean is the value itself and every merge adds 0.
    if (m2_[k] == 0) {
      sum += ss_res_[k] == 0 ? 1.0 : 0.0;
    } else {
      sum += 1.0 - ss_res_[k] / m2_[k];
    }
  }
  return {{"r2", sum / static_cast<double>(mean_.size())}};
}

// --- factory -------------------------------------------------------------------------

std::unique_ptr<Metric> make_metric(const std::string& name, int64_t num_classes) {
  std::string n = name;
  for (char& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  using R = ConfusionMatrix::Report;
  if (n == "accuracy" || n == "acc" || n == "sparse_categorical_accuracy" || n == "binary_accuracy") {
    return std::make_unique<Accuracy>(num_classes);
  }
  if (n == "top_k_accuracy" || n == "top_k_categorical_accuracy" ||
      n == "sparse_top_k_categorical_accuracy") {
    return std::make_unique<TopKAccuracy>(5, num_classes);  // Keras's default k
  }
  if (n.starts_with("top") && n.size() > 3 && std::isdigit(static_cast<unsigned char>(n[3]))) {
    int64_t k = 0;
    const char* first = n.data() + 3;
    const char* last = n.data() + n.size();
    const auto [end, ec] = std::from_chars(first, last, k);
    const std::string rest(end, last);
    if (ec == std::errc() && (rest.empty() || rest == "_accuracy" || rest == "_acc")) {
      return std::make_unique<TopKAccuracy>(k, num_classes);
    }
  }
  if (n == "precision") return std::make_unique<ConfusionMatrix>(num_classes, R::Precision);
  if (n == "recall") return std::make_unique<ConfusionMatrix>(num_classes, R::Recall);
  if (n == "f1" || n == "f1_score") return std::make_unique<ConfusionMatrix>(num_classes, R::F1);
  if (n == "confusion_matrix") return std::make_unique<ConfusionMatrix>(num_classes, R::All);
  if (n == "auc" || n == "roc_auc") {
    DEFT_CHECK(num_classes == 0 || num_classes == 2, "auc: binary ROC-AUC only, but there are {} classes",
               num_classes);
    return std::make_unique<RocAuc>();
  }
  if (n == "mse" || n == "mean_squared_error") return std::make_unique<MeanSquaredError>();
  if (n == "mae" || n == "mean_absolute_error") return std::make_unique<MeanAbsoluteError>();
  if (n == "r2" || n == "r2_score") return std::make_unique<R2Score>();
  fail(
      "unknown metric '{}'; valid: accuracy (acc), top_k_accuracy (top5, topK), precision, recall, f1, "
      "confusion_matrix, auc (roc_auc), mse, mae, r2",
      name);
}

// --- reports -----------------------------------------------------------------------------

nlohmann::json confusion_json(const ConfusionMatrix& cm, const std::vector<std::string>& class_names) {
  const std::vector<std::string> names = resolve_class_names(cm, class_names, "confusion_json");
  const int64_t c_n = cm.num_classes();
  auto scores = [](const ClassScores& s) {
    return nlohmann::json{
        {"precision", s.precision}, {"recall", s.recall}, {"f1", s.f1}, {"support", s.support}};
  };
  nlohmann::json matrix = nlohmann::json::array();
  nlohmann::json per_class = nlohmann::json::array();
  for (int64_t t = 0; t < c_n; ++t) {
    nlohmann::json row = nlohmann::json::array();
    for (int64_t p = 0; p < c_n; ++p) row.push_back(cm.count(t, p));
    matrix.push_back(std::move(row));
    nlohmann::json s = scores(cm.class_scores(t));
    s["class"] = names[static_cast<size_t>(t)];
    per_class.push_back(std::move(s));
  }
  const double acc = cm.accuracy();
  return {{"classes", names},
          {"matrix", std::move(matrix)},
          {"per_class", std::move(per_class)},
          {"accuracy", std::isnan(acc) ? nlohmann::json(nullptr) : nlohmann::json(acc)},
          {"support", cm.total()},
          {"macro", scores(cm.macro())},
          {"micro", scores(cm.micro())},
          {"weighted", scores(cm.weighted())}};
}

std::string format_classification_report(const ConfusionMatrix& cm,
                                         const std::vector<std::string>& class_names, int digits) {
  constexpr int64_t kRowNameMax = 24;     // longest class name shown in row headings
  constexpr int64_t kColumnNameMax = 10;  // ... and in the matrix's column headings
  constexpr int64_t kMaxMatrixClasses = 40;
  DEFT_CHECK(digits >= 0 && digits <= 10, "classification report: digits must be in 0..10, got {}", digits);
  const std::vector<std::string> full = resolve_class_names(cm, class_names, "classification report");
  const int64_t c_n = cm.num_classes();
  std::vector<std::string> rows;
  for (const std::string& s : full) rows.push_back(truncate_text(s, kRowNameMax));

  // The layout of sklearn's classification_report: right-aligned 9-wide columns.
  int64_t width = std::max<int64_t>(text_width("weighted avg"), digits);
  for (const std::string& s : rows) width = std::max(width, text_width(s));
  std::string out = pad_left("", width) + " ";
  for (const char* h : {"precision", "recall", "f1-score", "support"}) out += fmt::format(" {:>9}", h);
  out += "\n\n";
  auto score_row = [&](const std::string& heading, const ClassScores& s) {
    out += pad_left(heading, width) + " " +
           fmt::format(" {:>9.{}f} {:>9.{}f} {:>9.{}f} {:>9}\n", s.precision, digits, s.recall, digits, s.f1,
                       digits, s.support);
  };
  for (int64_t c = 0; c < c_n; ++c) score_row(rows[static_cast<size_t>(c)], cm.class_scores(c));
  out += "\n";
  out += pad_left("accuracy", width) + " " +
         fmt::format(" {:>9} {:>9} {:>9.{}f} {:>9}\n", "", "", cm.accuracy(), digits, cm.total());
  score_row("macro avg", cm.macro());
  score_row("weighted avg", cm.weighted());

  out += "\n";
  if (c_n > kMaxMatrixClasses) {
    out += fmt::format("Confusion matrix: {} classes, too wide to print (confusion_json has it).\n", c_n);
    return out;
  }
  out += "Confusion matrix (rows: true class, columns: predicted class)\n";
  // Each column as wide as its heading or its widest count, whichever is wider.
  std::vector<std::string> cols;
  std::vector<int64_t> col_width;
  for (int64_t p = 0; p < c_n; ++p) {
    cols.push_back(truncate_text(full[static_cast<size_t>(p)], kColumnNameMax));
    int64_t w = text_width(cols.back());
    for (int64_t t = 0; t < c_n; ++t) w = std::max<int64_t>(w, std::to_string(cm.count(t, p)).size());
    col_width.push_back(w);
  }
  int64_t row_width = 0;
  for (const std::string& s : rows) row_width = std::max(row_width, text_width(s));
  out += std::string(static_cast<size_t>(row_width), ' ');
  for (int64_t p = 0; p < c_n; ++p)
    out += "  " + pad_left(cols[static_cast<size_t>(p)], col_width[static_cast<size_t>(p)]);
  out += "\n";
  for (int64_t t = 0; t < c_n; ++t) {
    const std::string& r = rows[static_cast<size_t>(t)];
    out += r + std::string(static_cast<size_t>(row_width - text_width(r)), ' ');
    for (int64_t p = 0; p < c_n; ++p) {
      out += "  " + pad_left(std::to_string(cm.count(t, p)), col_width[static_cast<size_t>(p)]);
    }
    out += "\n";
  }
  return out;
}

void add_confusion_logs(const ConfusionMatrix& cm, std::map<std::string, double>& logs) {
  const ClassScores mac = cm.macro(), wei = cm.weighted();
  logs["accuracy"] = cm.accuracy();
  logs["precision_macro"] = mac.precision;
  logs["recall_macro"] = mac.recall;
  logs["f1_macro"] = mac.f1;
  logs["f1_weighted"] = wei.f1;
  if (cm.num_classes() == 2) {
    const ClassScores pos = cm.class_scores(1);
    logs["precision"] = pos.precision;
    logs["recall"] = pos.recall;
    logs["f1"] = pos.f1;
  }
}

}  // namespace deft::train
