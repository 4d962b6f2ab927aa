// HTML reports of a study (`deft report STUDY`, and report.html of every `deft auto`)
// and of a single run (`deft report RUN`): one self-contained file — inline CSS, inline
// SVG plots (study_plots.h), PNG images as data: URIs — that needs no network and no
// JavaScript (a Content-Security-Policy forbids both), to open, mail or archive.
//
//   ReportData d;                      // plain data: track/ does not depend on train/
//   d.study = *store->find_study("fmnist");
//   d.trials = store->trials(d.study.id);
//   d.evaluation = ...;                // tune/report_builder.h fills everything from the stores and the model
//   write_file_atomically("report.html", study_report_html(d));
//
// Sections of the study report: summary, learning curves, optimisation history,
// intermediate values, parallel coordinates, parameter importance, (Pareto front),
// confusion matrix, per-class metrics, misclassified examples, trials. A section
// without data says why. Every text from the data is escaped.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"

namespace deft::track {

struct ClassMetrics {
  std::string name;
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

struct MisclassifiedExample {
  int64_t index = -1;            // in the evaluated split
  std::vector<uint8_t> pixels;   // height x width x channels (HWC), 0-255
  int height = 0, width = 0, channels = 0;
  int64_t true_class = -1, predicted_class = -1;
  double probability = 0;        // of the predicted class
};

// How the best (final) model did on held-out data.
struct EvaluationReport {
  std::string split = "test";
  int64_t examples = 0;
  std::vector<std::string> class_names;
  std::vector<std::vector<int64_t>> confusion;  // rows true, columns predicted
  std::vector<ClassMetrics> per_class;
  double accuracy = NAN;
  std::map<std::string, double> metrics;       // loss, f1_macro, ... as evaluate() logs them
  std::vector<MisclassifiedExample> misclassified;  // up to 36
  std::string misclassified_note;              // why there are none to show (e.g. not images)
};

// A run's per-epoch metric series, with where it came from.
struct CurveSet {
  std::string run;                  // the run's name ("" when not from the run store)
  std::vector<MetricPoint> points;
  std::string note;                 // e.g. "from the trial's intermediate values"
};

struct ReportData {
  StudyRecord study;
  std::vector<TrialRecord> trials;
  CurveSet best_trial;              // the best trial's curves
  CurveSet final_model;             // the run "<study>-final" (the retrained model)
  std::optional<EvaluationReport> evaluation;
  std::string dataset;              // what the study searched on
  std::string model_path;           // the final model file, when known
  std::vector<std::string> notes;   // shown under the summary (what could not be loaded, and why)
  double generated = 0;             // unix seconds; 0 = now
};

// Every plot of the report, as (file stem, SVG): what --svg-dir writes.
std::vector<std::pair<std::string, std::string>> study_report_plots(const ReportData& d);
std::string study_report_html(const ReportData& d);

struct RunReportData {
  RunRecord run;
  std::vector<MetricPoint> metrics;
  std::optional<EvaluationReport> evaluation;
  std::vector<std::string> notes;
  double generated = 0;
};
std::vector<std::pair<std::string, std::string>> run_report_plots(const RunReportData& d);
std::string run_report_html(const RunReportData& d);

// The best complete trial of a study on its first objective (direction-aware); null when none.
const TrialRecord* best_trial(const StudyRecord& study, const std::vector<TrialRecord>& trials);

}  // namespace deft::track
