// Studies: define-by-run hyperparameter search over a shared study store.
//
//   auto store = track::open_study_store("sqlite:///deft.db");
//   Study study(store, "branin", {Direction::Minimize}, make_sampler("tpe"), make_pruner("asha"));
//   study.optimize([](Trial& t) {
//     double x = t.suggest_float("x", -5, 10);
//     std::string opt = t.suggest_categorical("opt", {"adam", "sgd"});
//     for (int epoch = 1; epoch <= 9; ++epoch) {
//       t.report(score(epoch), epoch);
//       if (t.should_prune()) throw TrialPruned();
//     }
//     return std::vector<double>{final_score};
//   }, {.n_trials = 100, .timeout_s = 600, .workers = 2});
//
// Several processes (or machines, with PostgreSQL) may call optimize() on the same study
// at once. Running trials send heartbeats; a trial whose process died is failed by the
// next optimize() that notices and retried with the same parameters. An objective that
// throws or returns NaN fails its trial, not the study.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/track/study_store.h"
#include "deft/tune/pruner.h"
#include "deft/tune/sampler.h"

namespace deft::tune {

// Thrown by an objective to end its trial as pruned.
class TrialPruned : public std::exception {
 public:
  const char* what() const noexcept override { return "trial pruned"; }
};

class Study;

class Trial {
 public:
  Trial(Study& study, TrialRecord record);
  int64_t number() const { return rec_.number; }
  int64_t id() const { return rec_.id; }
  const TrialRecord& record() const { return rec_; }

  double suggest_float(const std::string& name, double low, double high, bool log = false, double step = 0);
  int64_t suggest_int(const std::string& name, int64_t low, int64_t high, bool log = false, int64_t step = 1);
  nlohmann::json suggest_categorical(const std::string& name, const std::vector<nlohmann::json>& choices);
  std::string suggest_categorical(const std::string& name, const std::vector<std::string>& choices);
  // Any distribution; returns the external value (number or the choice).
  nlohmann::json suggest(const std::string& name, const Distribution& d);

  // Intermediate value(s) at `step` (e.g. the epoch): one per objective.
  void report(double value, int64_t step);
  void report(const std::vector<double>& values, int64_t step);
  // Asks the study's pruner about the latest report. Also true once the study's hard
  // deadline has passed (the trial then ends as pruned, marked "stopped": "deadline").
  bool should_prune();
  // True once the study's hard deadline has passed or stop() was called.
  bool should_stop() const;

  void set_user_attr(const std::string& key, const nlohmann::json& v);
  nlohmann::json params() const { return rec_.param_json(); }

 private:
  friend class Study;
  Study& study_;
  TrialRecord rec_;
  SearchSpace relative_space_;
  std::map<std::string, double> relative_;
  bool relative_done_ = false;
};

struct OptimizeOptions {
  int64_t n_trials = 0;     // trials this call runs (0: no limit); with n_trials_total, the study's total
  int64_t n_trials_total = 0;  // stop when the study holds this many finished trials (0: no limit)
  double timeout_s = 0;     // wall-clock budget of this call (0: none); hard: running trials are stopped
  int workers = 1;          // trials side by side in this process; the cores are split between them
  int threads = 0;          // cores to split (0: all)
  double heartbeat_interval_s = 2.0;
  double stale_after_s = 30.0;  // a Running trial without heartbeat this long is failed and retried
  int max_retries = 1;
  // Stop when the best value has not improved by more than min_delta (relative) in this
  // many finished trials (0: never). Single objective only.
  int64_t converge_patience = 0;
  double converge_min_delta = 1e-4;
  // Called (under a lock, from the worker thread) when a trial of this call ends.
  std::function<void(const Study&, const TrialRecord&)> on_trial_end;
};

using Objective = std::function<std::vector<double>(Trial&)>;

class Study {
 public:
  // Creates the study in the store, or joins the existing one of that name.
  Study(std::shared_ptr<track::StudyStore> store, const std::string& name, const std::vector<Direction>& directions,
        std::unique_ptr<Sampler> sampler, std::unique_ptr<Pruner> pruner = nullptr);
  ~Study();

  const std::string& name() const { return name_; }
  int64_t id() const { return id_; }
  const std::vector<Direction>& directions() const { return directions_; }
  track::StudyStore& store() { return *store_; }

  void optimize(const Objective& objective, const OptimizeOptions& options = {});
  void optimize(const std::function<double(Trial&)>& objective, const OptimizeOptions& options = {});
  void stop() { stop_.store(true); }
  bool stopping() const;

  // Ask/tell, for loops the caller drives.
  Trial ask();
  void tell(Trial& trial, TrialState state, const std::vector<double>& values = {});

  std::vector<TrialRecord> trials() const;
  StudyView view() const;
  // Single objective: the best complete trial (InputError when there is none).
  TrialRecord best_trial() const;
  // The Pareto front of the complete trials (single objective: the best ones).
  std::vector<TrialRecord> best_trials() const;

  // Fails trials of this study whose worker stopped sending heartbeats; returns their numbers.
  std::vector<int64_t> fail_stale_trials(double stale_after_s, int max_retries);

 private:
  friend class Trial;
  TrialRecord run_one(const Objective& objective, int threads);
  std::shared_ptr<track::StudyStore> store_;
  mutable std::mutex store_mu_;  // one store connection, shared by this process's workers
  std::mutex sampler_mu_;
  std::string name_;
  int64_t id_ = -1;
  std::vector<Direction> directions_;
  std::unique_ptr<Sampler> sampler_;
  std::unique_ptr<Pruner> pruner_;
  std::atomic<bool> stop_{false};
  double deadline_ = 0;  // unix seconds, 0: none
  std::mutex running_mu_;
  std::vector<int64_t> running_;  // trial ids this process runs
};

// Best trial comparisons.
bool better(double a, double b, Direction d);
// {"number", "state", "values", "params", "user_attrs", ...} of a trial, for JSON output.
nlohmann::json trial_json(const TrialRecord& t);

}  // namespace deft::tune
