// deft auto: data and a time budget in, the best model deft could find out.
//
//   AutoOptions o;
//   o.data = "fashion-mnist";
//   o.time_budget_s = 600;
//   AutoResult r = run_auto(o);     // r.metrics is the --metrics-out object
//
// What it does, in order (each step's share of the budget is in the summary JSON):
//  1. Loads the data; holds out a stratified validation split (10% of train) for the
//     search, and keeps the test split untouched until the end.
//  2. Chooses model families from the data: images -> simple_cnn, lenet5, vgg_small,
//     resnet_small, mlp; tables -> mlp and linear (logistic/linear regression). Times a
//     few training steps of each, and drops the families whose final training could not
//     run min_final_epochs epochs in the final phase's share of the budget.
//  3. Searches with TPE (constant liar when workers > 1) and ASHA (one rung per epoch
//     count 1, 3, 9, ... up to max_trial_epochs): trials train on a subset of train sized
//     so that a trial's epoch takes ~1/40 of the search budget; the objective is the
//     validation metric.
//  4. Finalises: retrains the best configuration on train + validation for the epochs
//     the remaining budget allows (cosine schedule), or, when that is fewer than the
//     best trial trained, keeps the best trial's model. Evaluates on test, writes the
//     model, the summary and the leaderboard.
// The budget is hard: trials running at the end of the search phase are stopped, and
// the final training stops at the deadline.
#pragma once
#include <string>
#include <vector>
#include <nlohmann/json.hpp>
#include "deft/track/study_store.h"

namespace deft::tune {

struct AutoOptions {
  std::string data;              // dataset name or path
  std::string target;            // CSV: the label column
  double time_budget_s = 600;
  std::string metric = "accuracy";  // validation metric maximised: accuracy, f1_macro, ... (or loss: minimised)
  int workers = 1;               // trials side by side
  int threads = 0;               // cores for the whole run (0: all)
  std::string storage;           // study store URL (default sqlite:///deft.db)
  std::string study;             // study name (default auto-<data>-<time>)
  bool resume = false;           // continue the study of that name
  std::string out = "best.deft";
  std::string metrics_out;
  int64_t max_trials = 0;        // 0: no limit
  int64_t max_trial_epochs = 9;  // ASHA's top rung (1, 3, 9 with eta 3)
  int64_t max_total_epochs = 0;  // epochs over all trials (0: no limit)
  double search_fraction = 0.5;  // of the budget spent searching; the rest finalises
  std::vector<std::string> models;  // restrict the families (empty: chosen from the data)
  std::string space_file;        // YAML/JSON search space replacing the built-in one (auto.cpp: read_space_file)
  std::string sampler = "tpe";
  std::string pruner = "asha";
  uint64_t seed = 0;
  int verbose = 1;               // 0 silent, 1 one line per trial, 2 also training progress
  int64_t search_examples = 0;   // examples per trial (0: from the budget)
  std::string tensorboard = "runs";  // event files under <tensorboard>/<study>/<run>/ ("" = none)
};

struct AutoResult {
  nlohmann::json metrics;        // the --metrics-out object
  std::string leaderboard;       // the table printed at the end
};

AutoResult run_auto(const AutoOptions& options);

// A leaderboard of a study's trials, best first: number, state, value, epochs, duration, params.
std::string leaderboard_table(const std::vector<track::TrialRecord>& trials, const std::vector<track::Direction>& dirs,
                              size_t max_rows = 20);

}  // namespace deft::tune
