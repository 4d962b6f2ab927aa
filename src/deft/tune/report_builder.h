// Gathers what an HTML report shows (track/report.h) from the stores and the model:
// `deft report` and the report.html `deft auto` writes.
//
//   auto studies = open_study_store(url);
//   auto runs = open_run_store(url);
//   track::ReportData d = build_report_data(*studies, runs.get(), "fmnist");
//   write_file_atomically("report.html", track::study_report_html(d));
//
// The study and its trials come from the study store; the learning curves of the best
// trial (its run: study = name, trial_number) and of the final model (the run
// "<study>-final", command "auto") from the run store, when one is given; the best
// trial's curve falls back to its intermediate values. The model file is the one
// given, else the study's user attr model_path, else the final run's "model" artifact;
// it is evaluated on the test split of the data it was trained on (the configuration
// saved in the model), giving the confusion matrix, per-class metrics and the first
// misclassified examples (image data only). What cannot be loaded becomes a note in
// the report, not an error; an unknown study or run is an InputError.
#pragma once
#include <string>
#include <vector>
#include "deft/data/dataset.h"
#include "deft/track/report.h"
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"
#include "deft/train/model.h"

namespace deft::tune {

struct ReportOptions {
  std::string model_path;        // "" = from the study (user attr model_path) or its final run
  std::string data;              // "" = the data the model was trained on
  bool evaluate = true;          // load and evaluate the model
  int64_t max_misclassified = 36;
  int64_t batch_size = 256;
};

track::ReportData build_report_data(track::StudyStore& studies, track::RunStore* runs, const std::string& study,
                                    const ReportOptions& options = {});
track::RunReportData build_run_report_data(track::RunStore& runs, const std::string& run_name_or_id,
                                           const ReportOptions& options = {});

// An evaluation already computed (ev, from model.evaluate_full(data)) as the report shows
// it; predicts batches of `data` only until max_misclassified wrong ones are found.
track::EvaluationReport evaluation_report(train::Model& model, const data::Dataset& data, const train::Evaluation& ev,
                                          const std::string& split, int64_t max_misclassified = 36);

// deft auto's report.html, from the evaluation it already has (ev of `model` on `data`).
// Never throws: returns "" when written, else what went wrong (the run goes on).
std::string write_auto_report(track::StudyStore& studies, track::RunStore* runs, const std::string& study,
                              train::Model& model, const data::Dataset& data, const train::Evaluation& ev,
                              const std::string& split, const std::string& path) noexcept;

struct ReportWriteOptions {
  std::string storage = "sqlite:///deft.db";
  std::string out = "report.html";
  std::string svg_dir;           // also every plot as DIR/<name>.svg
  bool png = false;              // and as DIR/<name>.png (svg_dir required)
  ReportOptions report;
};
// `deft report NAME`: NAME is a study, else a run (name or id); writes the HTML (and the
// plots) and returns the files written. InputError when NAME is neither.
std::vector<std::string> write_report(const std::string& name, const ReportWriteOptions& options);

}  // namespace deft::tune
