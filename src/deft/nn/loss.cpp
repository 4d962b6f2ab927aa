#include "deft/nn/loss.h"

#include <functional>

#include "deft/autograd/ops.h"
#include "deft/tensor/config_reader.h"
#include "deft/tensor/kernels.h"

namespace deft::nn {

namespace {

// Keras's epsilon: probabilities are clipped to [eps, 1 - eps] before the log.
constexpr float kProbEpsilon = 1e-7f;

// log of row-normalised, clipped probabilities. log_softmax of these is the same
// log-probabilities (the rows already sum to 1), so the fused logits kernels compute
// Keras's -sum(t log p) from them, with gradients flowing back through the clip.
Tensor clipped_log_probs(const Tensor& probs, const char* op) {
  DEFT_CHECK(probs.defined() && probs.dtype() == DType::Float32, "{}: output must be float32 probabilities",
             op);
  DEFT_CHECK_SHAPE(probs.dim() == 2, "{}: output must be [N, C], got {}", op, shape_str(probs.shape()));
  return log(clamp(probs / sum(probs, {-1}, true), kProbEpsilon, 1.0f - kProbEpsilon));
}

}  // namespace

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::Mean:
      return "mean";
    case Reduction::Sum:
      return "sum";
    case Reduction::None:
      return "none";
  }
  return "mean";
}

Reduction parse_reduction(const std::string& name) {
  if (name == "mean" || name == "sum_over_batch_size" || name == "auto") return Reduction::Mean;
  if (name == "sum") return Reduction::Sum;
  if (name == "none") return Reduction::None;
  fail("loss: unknown reduction '{}' (valid: mean, sum, none, sum_over_batch_size)", name);
}

// ---- functions ------------------------------------------------------------------------------
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets, Reduction reduction,
                            const Tensor& weights) {
  return binary_cross_entropy_loss(probs, targets, reduction, weights);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction,
                                        const Tensor& weights, float pos_weight) {
  return binary_cross_entropy_with_logits_loss(logits, targets, reduction, weights, pos_weight);
}

Tensor sparse_categorical_cross_entropy(const Tensor& logits, const Tensor& labels,
                                        const CrossEntropyOptions& options, const Tensor& sample_weights) {
  return cross_entropy_logits(logits, labels, options, sample_weights);
}

Tensor categorical_cross_entropy(const Tensor& output, const Tensor& target_probs, bool from_logits,
                                 const CrossEntropyOptions& options, const Tensor& sample_weights) {
  const Tensor logits = from_logits ? output : clipped_log_probs(output, "categorical_cross_entropy");
  return soft_cross_entropy_logits(logits, target_probs, options, sample_weights);
}

Tensor mse(const Tensor& pred, const Tensor& target, Reduction reduction, const Tensor& sample_weights) {
  return mse_loss(pred, target, reduction, sample_weights);
}

Tensor mae(const Tensor& pred, const Tensor& target, Reduction reduction, const Tensor& sample_weights) {
  return l1_loss(pred, target, reduction, sample_weights);
}

Tensor huber(const Tensor& pred, const Tensor& target, float delta, Reduction reduction,
             const Tensor& sample_weights) {
  return huber_loss(pred, target, delta, reduction, sample_weights);
}

// ---- objects ----------------------------------------------------------------------------------
SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(SparseCategoricalCrossentropyOptions options)
    : opt_(std::move(options)) {
  DEFT_CHECK(opt_.label_smoothing >= 0.0f && opt_.label_smoothing <= 1.0f,
             "SparseCategoricalCrossentropy: label_smoothing must be in [0, 1], got {}",
             opt_.label_smoothing);
}

Tensor SparseCategoricalCrossentropy::operator()(const Tensor& output, const Tensor& target,
                                                 const Tensor& sample_weights) const {
  const CrossEntropyOptions ce{opt_.label_smoothing, opt_.class_weights, opt_.reduction, opt_.ignore_index};
  const Tensor logits =
      opt_.from_logits ? output : clipped_log_probs(output, "sparse_categorical_crossentropy");
  return cross_entropy_logits(logits, target, ce, sample_weights);
}

nlohmann::json SparseCategoricalCrossentropy::config() const {
  nlohmann::json j = {{"from_logits", opt_.from_logits},
                      {"label_smoothing", opt_.label_smoothing},
                      {"reduction", reduction_name(opt_.reduction)}};
  if (!opt_.class_weights.empty()) j["class_weights"] = opt_.class_weights;
  if (opt_.ignore_index) j["ignore_index"] = *opt_.ignore_index;
  return j;
}

OutputKind SparseCategoricalCrossentropy::output_kind() const {
  return opt_.from_logits ? OutputKind::Logits : OutputKind::Probabilities;
}

CategoricalCrossentropy::CategoricalCrossentropy(CategoricalCrossentropyOptions options) : opt_(options) {
  DEFT_CHECK(opt_.label_smoothing >= 0.0f && opt_.label_smoothing <= 1.0f,
             "CategoricalCrossentropy: label_smoothing must be in [0, 1], got {}", opt_.label_smoothing);
}

Tensor CategoricalCrossentropy::operator()(const Tensor& output, const Tensor& target,
                                           const Tensor& sample_weights) const {
  CrossEntropyOptions ce;
  ce.label_smoothing = opt_.label_smoothing;
  ce.reduction = opt_.reduction;
  return categorical_cross_entropy(output, target, opt_.from_logits, ce, sample_weights);
}

nlohmann::json CategoricalCrossentropy::config() const {
  return {{"from_logits", opt_.from_logits},
          {"label_smoothing", opt_.label_smoothing},
          {"reduction", reduction_name(opt_.reduction)}};
}

OutputKind CategoricalCrossentropy::output_kind() const {
  return opt_.from_logits ? OutputKind::Logits : OutputKind::Probabilities;
}

BinaryCrossentropy::BinaryCrossentropy(BinaryCrossentropyOptions options) : opt_(options) {
  DEFT_CHECK(opt_.label_smoothing >= 0.0f && opt_.label_smoothing <= 1.0f,
             "BinaryCrossentropy: label_smoothing must be in [0, 1], got {}", opt_.label_smoothing);
  DEFT_CHECK(opt_.from_logits || opt_.pos_weight == 1.0f,
             "BinaryCrossentropy: pos_weight needs from_logits = true");
}

Tensor BinaryCrossentropy::operator()(const Tensor& output, const Tensor& target,
                                      const Tensor& sample_weights) const {
  Tensor t = target;
  if (opt_.label_smoothing > 0.0f) {
    DEFT_CHECK(target.defined(), "binary_crossentropy: target is undefined");
    if (t.dtype() != DType::Float32) t = kernel::convert(t, DType::Float32);
    t = affine(t, 1.0f - opt_.label_smoothing, 0.5f * opt_.label_smoothing);
  }
  return opt_.from_logits
             ? binary_cross_entropy_with_logits(output, t, opt_.reduction, sample_weights, opt_.pos_weight)
             : binary_cross_entropy(output, t, opt_.reduction, sample_weights);
}

nlohmann::json BinaryCrossentropy::config() const {
  return {{"from_logits", opt_.from_logits},
          {"label_smoothing", opt_.label_smoothing},
          {"reduction", reduction_name(opt_.reduction)},
          {"pos_weight", opt_.pos_weight}};
}

OutputKind BinaryCrossentropy::output_kind() const {
  return opt_.from_logits ? OutputKind::Logits : OutputKind::Probabilities;
}

Tensor MeanSquaredError::operator()(const Tensor& output, const Tensor& target,
                                    const Tensor& sample_weights) const {
  return mse(output, target, opt_.reduction, sample_weights);
}
nlohmann::json MeanSquaredError::config() const { return {{"reduction", reduction_name(opt_.reduction)}}; }

Tensor MeanAbsoluteError::operator()(const Tensor& output, const Tensor& target,
                                     const Tensor& sample_weights) const {
  return mae(output, target, opt_.reduction, sample_weights);
}
nlohmann::json MeanAbsoluteError::config() const { return {{"reduction", reduction_name(opt_.reduction)}}; }

Huber::Huber(HuberOptions options) : opt_(options) {
  DEFT_CHECK(opt_.delta > 0.0f, "Huber: delta must be positive, got {}", opt_.delta);
}
Tensor Huber::operator()(const Tensor& output, const Tensor& target, const Tensor& sample_weights) const {
  return huber(output, target, opt_.delta, opt_.reduction, sample_weights);
}
nlohmann::json Huber::config() const {
  return {{"delta", opt_.delta}, {"reduction", reduction_name(opt_.reduction)}};
}

// ---- make_loss --------------------------------------------------------------------------------
namespace {

// Losses read their options with ConfigReader (owner "loss <name>"). Null means
// "the default" for them, as Keras writes None for an option left unset.
ConfigReader options_reader(const std::string& name, const nlohmann::json& options) {
  return ConfigReader("loss " + name, options, ConfigReader::Nulls::Default);
}

Reduction read_reduction(ConfigReader& r, Reduction fallback) {
  return parse_reduction(r.string("reduction", reduction_name(fallback)));
}

float read_float(ConfigReader& r, const char* key, float fallback) {
  return static_cast<float>(r.number(key, fallback));
}

// The options every cross-entropy has.
template <class Options>
void read_cross_entropy_options(ConfigReader& r, Options& o) {
  o.from_logits = r.boolean("from_logits", o.from_logits);
  o.label_smoothing = read_float(r, "label_smoothing", o.label_smoothing);
  o.reduction = read_reduction(r, o.reduction);
}

using Factory = std::function<std::shared_ptr<Loss>(const std::string& name, const nlohmann::json&)>;

std::shared_ptr<Loss> make_sparse(const std::string& name, const nlohmann::json& cfg) {
  ConfigReader r = options_reader(name, cfg);
  SparseCategoricalCrossentropyOptions o;
  read_cross_entropy_options(r, o);
  const std::vector<double> class_weights = r.numbers("class_weights", {});
  o.class_weights.assign(class_weights.begin(), class_weights.end());
  if (r.raw("ignore_index")) o.ignore_index = r.integer("ignore_index", 0);
  r.finish();
  return std::make_shared<SparseCategoricalCrossentropy>(o);
}
std::shared_ptr<Loss> make_categorical(const std::string& name, const nlohmann::json& cfg) {
  ConfigReader r = options_reader(name, cfg);
  CategoricalCrossentropyOptions o;
  read_cross_entropy_options(r, o);
  r.finish();
  return std::make_shared<CategoricalCrossentropy>(o);
}
std::shared_ptr<Loss> make_binary(const std::string& name, const nlohmann::json& cfg) {
  ConfigReader r = options_reader(name, cfg);
  BinaryCrossentropyOptions o;
  read_cross_entropy_options(r, o);
  o.pos_weight = read_float(r, "pos_weight", o.pos_weight);
  r.finish();
  return std::make_shared<BinaryCrossentropy>(o);
}
template <class L>
std::shared_ptr<Loss> make_regression(const std::string& name, const nlohmann::json& cfg) {
  ConfigReader r = options_reader(name, cfg);
  RegressionLossOptions o;
  o.reduction = read_reduction(r, o.reduction);
  r.finish();
  return std::make_shared<L>(o);
}
std::shared_ptr<Loss> make_huber(const std::string& name, const nlohmann::json& cfg) {
  ConfigReader r = options_reader(name, cfg);
  HuberOptions o;
  o.delta = read_float(r, "delta", o.delta);
  o.reduction = read_reduction(r, o.reduction);
  r.finish();
  return std::make_shared<Huber>(o);
}

const std::vector<std::pair<std::string, Factory>>& registry() {
  static const std::vector<std::pair<std::string, Factory>> r = {
      {"sparse_categorical_crossentropy", make_sparse},
      {"SparseCategoricalCrossentropy", make_sparse},
      {"categorical_crossentropy", make_categorical},
      {"CategoricalCrossentropy", make_categorical},
      {"binary_crossentropy", make_binary},
      {"BinaryCrossentropy", make_binary},
      {"mse", make_regression<MeanSquaredError>},
      {"mean_squared_error", make_regression<MeanSquaredError>},
      {"MeanSquaredError", make_regression<MeanSquaredError>},
      {"mae", make_regression<MeanAbsoluteError>},
      {"mean_absolute_error", make_regression<MeanAbsoluteError>},
      {"MeanAbsoluteError", make_regression<MeanAbsoluteError>},
      {"huber", make_huber},
      {"huber_loss", make_huber},
      {"Huber", make_huber},
  };
  return r;
}

}  // namespace

std::vector<std::string> loss_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::shared_ptr<Loss> make_loss(const std::string& name, const nlohmann::json& config) {
  // Keras writes the name beside the options; the registry name decides.
  nlohmann::json options = config;
  if (options.is_object()) options.erase("name");
  for (const auto& [key, factory] : registry())
    if (key == name) return factory(name, options);
  std::string list;
  for (const auto& n : loss_names()) list += (list.empty() ? "" : ", ") + n;
  fail("make_loss: unknown loss '{}' (valid: {})", name, list);
}

Tensor output_to_probabilities(const Tensor& output, const Loss& loss) {
  if (loss.output_kind() != OutputKind::Logits) return output;
  return loss.is_binary() ? sigmoid(output) : softmax(output, -1);
}

}  // namespace deft::nn
