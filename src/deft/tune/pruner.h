// Pruners decide, after each reported intermediate value, whether a trial should stop.
//
//   auto p = make_pruner("asha", {{"min_resource", 1}, {"reduction_factor", 3}});
//   json attrs = json::object();
//   bool stop = p->prune(view, trial, attrs);  // trial.intermediate holds the latest report
//   for (auto& [k, v] : attrs.items()) store.set_trial_system_attr(trial.id, k, v);
//
// Single objective: the value at the step. Several objectives: trials are compared by
// Pareto dominance (median pruner: pruned when the median vector of the other trials
// dominates the trial's vector; ASHA: promoted when in the top 1/eta by non-dominated
// rank, ties broken by crowding distance).
#pragma once
#include <memory>
#include <string>
#include <nlohmann/json.hpp>
#include "deft/tune/sampler.h"

namespace deft::tune {

class Pruner {
 public:
  virtual ~Pruner() = default;
  virtual std::string name() const = 0;
  // `trial` is the current trial with its latest report in trial.intermediate;
  // `view` the study snapshot (trial itself included or not; pruners must skip it by
  // id; when the view holds a copy of it, `trial` is the fresher one). Pruners that
  // record per-trial state (ASHA's "completed_rung_<r>" values) put it in `attrs_out`;
  // the caller stores those as the trial's system attrs, so every process sees them.
  virtual bool prune(const StudyView& view, const TrialRecord& trial, nlohmann::json& attrs_out) = 0;
};

// name: none | median | percentile | asha | successive_halving | hyperband. Options:
//   median/percentile: n_startup_trials 5, n_warmup_steps 0, interval_steps 1, percentile 50
//   asha:       min_resource 1, reduction_factor 3 (eta), min_early_stopping_rate 0,
//               bootstrap_count 0
//   hyperband:  min_resource 1, max_resource (required), reduction_factor 3; brackets
//               s = 0 .. floor(log_eta(max/min)); a trial's bracket is chosen from its
//               number with weights proportional to each bracket's budget, as Optuna does
// InputError names an unknown pruner or option.
std::unique_ptr<Pruner> make_pruner(const std::string& name, const nlohmann::json& options = nlohmann::json::object());

// Non-dominated sorting of value vectors under the directions: rank 0 is the Pareto front.
std::vector<int> pareto_ranks(const std::vector<std::vector<double>>& values, const std::vector<Direction>& dirs);
// True when a is at least as good as b in every objective and better in one.
bool dominates(const std::vector<double>& a, const std::vector<double>& b, const std::vector<Direction>& dirs);

}  // namespace deft::tune
