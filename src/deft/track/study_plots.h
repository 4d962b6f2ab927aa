// Plots of studies and runs, each a self-contained SVG string (no JS, no external
// references): what the HTML report and the web dashboard embed, and what
// `deft report --svg-dir` writes as files. The Optuna/TensorBoard counterparts are named.
//
//   auto store = open_study_store(url);
//   StudyRecord s = *store->find_study("fmnist");
//   std::string svg = plot_optimization_history(s, store->trials(s.id));
//
// Every plot handles empty input (a chart saying "no data") and escapes every text
// taken from the data. Multi-objective studies: history, intermediate values,
// parallel coordinates and importance plot the first objective and say so in the
// title; plot_pareto_front draws the first two objectives.
#pragma once
#include <cstdint>
#include <string>
#include <vector>
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"

namespace deft::track {

// optuna.visualization.plot_optimization_history: the objective of every complete
// trial and the best value so far (direction-aware). Pruned and failed trials are
// left out (the subtitle counts them).
std::string plot_optimization_history(const StudyRecord& study, const std::vector<TrialRecord>& trials);

// plot_intermediate_values: one line per trial across steps; pruned trials in their
// own colour with a marker at their last step.
std::string plot_intermediate_values(const StudyRecord& study, const std::vector<TrialRecord>& trials);

// plot_parallel_coordinate: one axis per parameter (numeric: log-scaled where the
// distribution is; categorical: one tick per choice) and the objective; complete
// trials' lines coloured by objective value, with a colour bar.
std::string plot_parallel_coordinates(const StudyRecord& study, const std::vector<TrialRecord>& trials);

// plot_param_importances: fANOVA importances (importance.h) as horizontal bars; the
// method is named in the title.
std::string plot_param_importance(const StudyRecord& study, const std::vector<TrialRecord>& trials);

// Two objectives: complete trials' values as a scatter, the Pareto front highlighted.
// Other studies: a chart saying it needs two objectives.
std::string plot_pareto_front(const StudyRecord& study, const std::vector<TrialRecord>& trials);

// TensorBoard-style train vs validation per epoch from a run's metric series: a loss
// panel (loss / val_loss), an accuracy panel (accuracy / val_accuracy), and one panel
// per other pair (X / val_X). "batch/..." keys, lr, epoch_s and samples_per_s are left out.
std::string plot_learning_curves(const std::vector<MetricPoint>& points);

// Rows = true class, columns = predicted; counts in the cells, shaded by the row's
// share (recall-normalised), so rare classes read as clearly as common ones.
std::string plot_confusion_matrix(const std::vector<std::vector<int64_t>>& cm, const std::vector<std::string>& class_names);

}  // namespace deft::track
