// Samplers choose the parameters of a new trial from the trials recorded so far.
//
//   auto s = make_sampler("tpe", {{"seed", 1}, {"multivariate", true}});
//   // per trial, given a snapshot of the study:
//   auto joint = s->sample_relative(view, trial, space);        // multivariate TPE, grid, Sobol
//   double v = s->sample_independent(view, trial, "lr", dist);  // anything sample_relative left
//
// Values are in the Distribution's internal representation (index for categorical).
// The snapshot includes Running trials: TPE with constant_liar treats them as if they
// had the worst value, so parallel workers do not all pick the same point.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/track/study_store.h"

namespace deft::tune {

using track::Direction;
using track::Distribution;
using track::TrialRecord;
using track::TrialState;

// What a sampler or pruner sees of a study: its directions and every trial so far.
struct StudyView {
  std::string name;
  std::vector<Direction> directions;
  std::vector<TrialRecord> trials;  // ordered by number, every state
  bool maximize(size_t objective = 0) const { return directions.at(objective) == Direction::Maximize; }
};

using SearchSpace = std::map<std::string, Distribution>;

class Sampler {
 public:
  virtual ~Sampler() = default;
  virtual std::string name() const = 0;
  // The space sample_relative works on: for multivariate TPE, the parameters every
  // finished trial has with the same distribution (Optuna's intersection search space).
  virtual SearchSpace infer_relative_search_space(const StudyView&, const TrialRecord&) { return {}; }
  virtual std::map<std::string, double> sample_relative(const StudyView&, const TrialRecord&, const SearchSpace&) {
    return {};
  }
  virtual double sample_independent(const StudyView& view, const TrialRecord& trial, const std::string& name,
                                    const Distribution& d) = 0;
};

// name: random | grid | sobol | qmc | tpe. Options (JSON):
//   all:   seed (uint)
//   grid:  search_space {name: [values...]} (required; the grid is their product, visited
//          in a shuffled order; trial k takes point k mod size)
//   sobol: scramble (bool, default true)
//   tpe:   n_startup_trials 10, n_ei_candidates 24, gamma "default" (min(ceil(0.1 n), 25)),
//          prior_weight 1.0, consider_magic_clip true, consider_endpoints false,
//          multivariate false, constant_liar false, startup "random" | "sobol"
// InputError names an unknown sampler or option.
std::unique_ptr<Sampler> make_sampler(const std::string& name, const nlohmann::json& options = nlohmann::json::object());

}  // namespace deft::tune
