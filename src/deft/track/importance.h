// Hyperparameter importance by fANOVA (Hutter et al., 2014), as Optuna's default
// FanovaImportanceEvaluator computes it:
//
//   auto imp = param_importances(store->trials(study.id));   // sorted, most important first
//   for (auto& p : imp) fmt::print("{} {:.3f}\n", p.name, p.importance);
//
//  1. The complete trials with a finite objective, over the parameters every one of them
//     has with the same distribution (Optuna's intersection search space), in their
//     internal representation: log-scaled parameters in log space, categorical ones as
//     the choice's index, each dimension bounded by its distribution (a categorical
//     spans [-0.5, K-0.5], an int [low-step/2, high+step/2], so every choice weighs the same).
//  2. A random forest of regression trees (64 trees, bootstrap samples, every feature
//     tried at every split, variance-reduction splits at midpoints, grown until leaves
//     are pure; scikit-learn's RandomForestRegressor defaults), deterministic for the seed.
//  3. Per tree, exactly from its partition of the search box into leaf boxes under the
//     uniform measure: the tree's total variance, and for each parameter the variance of
//     its marginal (the tree's prediction averaged over all other parameters), as a
//     function of that parameter. The parameter's importance in the tree is the fraction
//     marginal / total; fractions are averaged over the trees that vary, then normalised
//     to sum to 1. A parameter with a single possible value gets 0; when the objective
//     does not vary at all, every importance is 0 (never NaN).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>
#include "deft/track/study_store.h"

namespace deft::track {

struct ImportanceOptions {
  int n_trees = 64;
  int max_depth = 64;
  uint64_t seed = 0;
  size_t objective = 0;  // which objective of a multi-objective study
};

struct ParamImportance {
  std::string name;
  double importance = 0;  // normalised: the importances of a study sum to 1 (or are all 0)
  double stddev = 0;      // spread of the un-normalised fraction over the trees
};

// "fANOVA (random forest, 64 trees)": what charts and reports name as the method.
std::string importance_method(const ImportanceOptions& o = {});

// The importances of the parameters of a study's trials, most important first (ties
// by name). Empty when fewer than two complete trials share a parameter.
std::vector<ParamImportance> param_importances(const std::vector<TrialRecord>& trials, const ImportanceOptions& o = {});
// The number of trials param_importances would use (for captions).
size_t importance_trial_count(const std::vector<TrialRecord>& trials, const ImportanceOptions& o = {});

// The evaluator on plain data: rows of x (one column per feature, already transformed),
// their targets y, and each feature's bounds. Returns one normalised importance per
// feature; `stddev` (optional) gets each feature's spread over the trees.
std::vector<double> fanova_importances(const std::vector<std::vector<double>>& x, const std::vector<double>& y,
                                       const std::vector<std::pair<double, double>>& bounds,
                                       const ImportanceOptions& o = {}, std::vector<double>* stddev = nullptr);

}  // namespace deft::track
