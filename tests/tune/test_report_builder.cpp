// The report from real stores: a small study in a temporary SQLite database, runs in
// the run store, a trained model evaluated; and the misclassified examples of images.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "../data/data_test_util.h"
#include "deft/nn/layers.h"
#include "deft/optim/adam.h"
#include "deft/tensor/error.h"
#include "deft/track/plot.h"
#include "deft/track/report.h"
#include "deft/train/run.h"
#include "deft/tune/report_builder.h"

namespace deft::tune {
namespace {

using json = nlohmann::json;
using test_util::TempDir;
using track::Direction;
using track::Distribution;
using track::TrialState;

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// Three separable blobs as a CSV file with a label column.
std::string write_blobs(const TempDir& dir) {
  const std::string path = dir.file("blobs.csv");
  std::ofstream f(path);
  f << "x1,x2,label\n";
  uint64_t s = 5;
  auto u = [&] {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(s >> 11) / 9007199254740992.0;
  };
  for (int i = 0; i < 150; ++i) {
    const int c = i % 3;
    f << fmt::format("{:.4f},{:.4f},{}\n", (c == 1 ? 2.0 : 0.0) + 1.5 * u(), (c == 2 ? 2.0 : 0.0) + 1.5 * u(),
                     std::string(1, static_cast<char>('a' + c)));
  }
  return path;
}

// A study of 7 trials: 4 complete, 2 pruned, 1 failed; trial 3 is the best.
void make_study(const std::string& url, const std::string& model_path) {
  auto store = track::open_study_store(url);
  const int64_t sid = store->create_study("blobs", {Direction::Maximize});
  store->set_study_user_attr(sid, "metric", "val_accuracy");
  store->set_study_user_attr(sid, "dataset", "blobs.csv");
  if (!model_path.empty()) store->set_study_user_attr(sid, "model_path", model_path);
  const std::vector<TrialState> states = {TrialState::Complete, TrialState::Pruned, TrialState::Complete,
                                          TrialState::Complete, TrialState::Fail,   TrialState::Pruned,
                                          TrialState::Complete};
  const std::vector<double> finals = {0.8, 0.5, 0.85, 0.95, 0, 0.4, 0.9};
  for (size_t i = 0; i < states.size(); ++i) {
    const track::TrialRecord t = store->start_trial(sid);
    store->set_param(t.id, "lr", 1e-3 * static_cast<double>(i + 1), Distribution::float_range(1e-4, 1e-1, true));
    store->set_param(t.id, "model", static_cast<double>(i % 2), Distribution::categorical({"mlp", "linear"}));
    const int64_t steps = states[i] == TrialState::Pruned ? 1 : 3;
    for (int64_t s = 1; s <= steps; ++s) store->report(t.id, s, {finals[i] - 0.1 / static_cast<double>(s)});
    store->finish_trial(t.id, states[i], states[i] == TrialState::Fail ? std::vector<double>{} : std::vector<double>{finals[i]});
  }
}

void make_runs(const std::string& url, const std::string& model_path) {
  auto runs = track::open_run_store(url);
  const int64_t best = runs->create_run({.name = "blobs-trial-3", .command = "trial", .study = "blobs", .trial_number = 3});
  const int64_t other = runs->create_run({.name = "blobs-trial-2", .command = "trial", .study = "blobs", .trial_number = 2});
  const int64_t fin = runs->create_run({.name = "blobs-final", .command = "auto", .study = "blobs"});
  for (int64_t e = 1; e <= 3; ++e) {
    const double t = 1000.0 + static_cast<double>(e);
    runs->log_metrics(best, {{"loss", e, 1.0 / static_cast<double>(e), t}, {"val_loss", e, 1.1 / static_cast<double>(e), t},
                             {"accuracy", e, 0.7 + 0.05 * static_cast<double>(e), t},
                             {"val_accuracy", e, 0.8 + 0.05 * static_cast<double>(e), t}});
    runs->log_metrics(other, {{"loss", e, 2.0, t}});
    runs->log_metrics(fin, {{"loss", e, 0.5 / static_cast<double>(e), t}, {"accuracy", e, 0.9, t}});
  }
  runs->finish_run(best, track::RunStatus::Finished, {{"val_accuracy", 0.95}});
  runs->finish_run(other, track::RunStatus::Finished, {{"val_accuracy", 0.85}});
  if (!model_path.empty()) runs->set_artifact(fin, "model", model_path);
  runs->finish_run(fin, track::RunStatus::Finished, {{"test_accuracy", 0.93}});
}

TEST(ReportBuilder, AStudyReportHasEverySectionTheCountsCurvesAndTheModelsEvaluation) {
  TempDir dir;
  const std::string url = "sqlite:///" + dir.file("s.db");
  // a real model trained on the CSV: its saved configuration says where its data are
  json cfg = {{"data", write_blobs(dir)}, {"target", "label"}, {"epochs", 2}, {"verbose", 0},
              {"out", dir.file("m.deft")}, {"hidden", {8}}};
  train::run_training(train::TrainConfig::from_json(cfg));
  make_study(url, dir.file("m.deft"));
  make_runs(url, "");
  auto studies = track::open_study_store(url);
  auto runs = track::open_run_store(url);
  const track::ReportData d = build_report_data(*studies, runs.get(), "blobs");
  EXPECT_EQ(d.trials.size(), 7u);
  EXPECT_EQ(d.best_trial.run, "blobs-trial-3");
  EXPECT_EQ(d.best_trial.points.size(), 12u);
  EXPECT_EQ(d.final_model.run, "blobs-final");
  ASSERT_TRUE(d.evaluation.has_value()) << (d.notes.empty() ? "" : d.notes[0]);
  EXPECT_EQ(d.evaluation->split, "test");
  ASSERT_EQ(d.evaluation->confusion.size(), 3u);
  int64_t total = 0;
  for (const auto& row : d.evaluation->confusion)
    for (int64_t v : row) total += v;
  EXPECT_EQ(total, d.evaluation->examples);
  EXPECT_EQ(d.evaluation->per_class.size(), 3u);
  EXPECT_EQ(d.evaluation->class_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_TRUE(d.evaluation->misclassified.empty());
  EXPECT_NE(d.evaluation->misclassified_note.find("not images"), std::string::npos);

  const std::string html = track::study_report_html(d);
  for (const char* id : {"summary", "learning-curves", "history", "intermediate", "parallel", "importance", "confusion",
                         "per-class", "misclassified", "trials"})
    EXPECT_EQ(count(html, fmt::format("<section id=\"{}\">", id)), 1u) << id;
  for (const char* plot : {"plot-curves-final", "plot-curves-best", "plot-history", "plot-intermediate", "plot-parallel",
                           "plot-importance", "plot-confusion"}) {
    const size_t at = html.find(fmt::format("<figure class=\"plot\" id=\"{}\"><svg ", plot));
    EXPECT_NE(at, std::string::npos) << plot;
  }
  EXPECT_NE(html.find("4 complete, 2 pruned, 1 failed, 0 running, 0 waiting"), std::string::npos);
  EXPECT_NE(html.find("#3: val_accuracy 0.95"), std::string::npos);
  EXPECT_NE(html.find("4 complete trials"), std::string::npos);  // history's subtitle
  EXPECT_NE(html.find("(run blobs-trial-3)"), std::string::npos);
  EXPECT_NE(html.find("fANOVA"), std::string::npos);
  EXPECT_EQ(count(html, "<td class=\"state-"), 7u);  // one row per trial
  EXPECT_NE(html.find("<tr class=\"best\"><td class=\"num\">3</td>"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org"));  // no links out but the SVG namespaces
  EXPECT_EQ(html.find("https://"), std::string::npos);
}

TEST(ReportBuilder, MissingModelRunStoreOrStudyBecomeNotesOrClearErrors) {
  TempDir dir;
  const std::string url = "sqlite:///" + dir.file("s.db");
  make_study(url, dir.file("gone.deft"));
  auto studies = track::open_study_store(url);
  track::ReportData d = build_report_data(*studies, nullptr, "blobs");
  EXPECT_FALSE(d.evaluation.has_value());
  ASSERT_FALSE(d.notes.empty());
  EXPECT_NE(d.notes[0].find("gone.deft does not exist"), std::string::npos);
  // without a run store the best trial's curve comes from its intermediate values
  ASSERT_EQ(d.best_trial.points.size(), 3u);
  EXPECT_EQ(d.best_trial.points[0].key, "val_accuracy");
  const std::string html = track::study_report_html(d);
  EXPECT_NE(html.find("intermediate values"), std::string::npos);
  EXPECT_NE(html.find("<section id=\"confusion\">"), std::string::npos);
  test_util::expect_input_error([&] { build_report_data(*studies, nullptr, "nope"); }, {"study 'nope' is not in"});
  test_util::expect_input_error([&] { write_report("nope", {.storage = url, .out = dir.file("r.html")}); },
                                {"'nope' is neither a study nor a run"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("r.html")));
}

TEST(ReportBuilder, WriteReportWritesHtmlSvgAndPngForStudiesAndRuns) {
  TempDir dir;
  const std::string url = "sqlite:///" + dir.file("s.db");
  make_study(url, "");
  make_runs(url, "");
  const auto files = write_report("blobs", {.storage = url, .out = dir.file("study.html"), .svg_dir = dir.file("svg"),
                                            .png = true, .report = {.evaluate = false}});
  EXPECT_TRUE(std::filesystem::exists(dir.file("study.html")));
  for (const char* stem : {"optimization_history", "intermediate_values", "parallel_coordinates", "param_importance",
                           "learning_curves_best_trial", "learning_curves_final"}) {
    const std::string svg_path = dir.file(std::string("svg/") + stem + ".svg");
    ASSERT_TRUE(std::filesystem::exists(svg_path)) << stem;
    EXPECT_TRUE(std::filesystem::exists(dir.file(std::string("svg/") + stem + ".png"))) << stem;
    std::ifstream f(svg_path);
    const std::string svg((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    EXPECT_NO_THROW(track::svg::svg_size(svg)) << stem;
  }
  EXPECT_EQ(files.size(), 1u + 2 * 6);
  write_report("blobs-trial-3", {.storage = url, .out = dir.file("run.html")});
  std::ifstream f(dir.file("run.html"));
  const std::string html((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("Run blobs-trial-3"), std::string::npos);
  EXPECT_NE(html.find("<figure class=\"plot\" id=\"plot-curves\"><svg "), std::string::npos);
  EXPECT_NE(html.find("Resolved configuration"), std::string::npos);
  test_util::expect_input_error([&] { write_report("blobs", {.storage = url, .png = true}); }, {"--svg-dir"});
}

// Images: the misclassified examples come with their pixels (HWC) and classes.
TEST(ReportBuilder, EvaluationReportFindsMisclassifiedImagesWithTheirPixels) {
  const int64_t n = 90, h = 6, w = 5;
  Tensor x = Tensor::empty({n, 1, h, w}, DType::UInt8);
  Tensor y = Tensor::empty({n}, DType::Int64);
  uint8_t* px = x.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    y.data<int64_t>()[i] = i % 3;
    for (int64_t k = 0; k < h * w; ++k) px[i * h * w + k] = static_cast<uint8_t>((i * 37 + k * 11) % 256);  // noise
  }
  data::Dataset d;
  d.features = x;
  d.labels = y;
  d.class_names = {"ant", "bee", "cat"};
  train::Model m(nn::Sequential{nn::Flatten(), nn::Dense(3)});
  m.compile(std::make_shared<optim::Adam>(optim::AdamOptions{.lr = 1e-3}),
            nn::make_loss("sparse_categorical_crossentropy", {{"from_logits", true}}), {"accuracy"});
  m.fit(d, {.epochs = 1, .batch_size = 32, .verbose = 0});
  const train::Evaluation ev = m.evaluate_full(d);
  const track::EvaluationReport r = evaluation_report(m, d, ev, "test", 10);
  int64_t wrong = 0;
  for (size_t i = 0; i < r.confusion.size(); ++i)
    for (size_t k = 0; k < r.confusion[i].size(); ++k) wrong += i == k ? 0 : r.confusion[i][k];
  ASSERT_GT(wrong, 10);  // labels are noise: plenty of errors
  ASSERT_EQ(r.misclassified.size(), 10u);
  for (const auto& e : r.misclassified) {
    EXPECT_NE(e.true_class, e.predicted_class);
    EXPECT_EQ(e.true_class, e.index % 3);
    EXPECT_EQ(e.height, h);
    EXPECT_EQ(e.width, w);
    EXPECT_EQ(e.channels, 1);
    ASSERT_EQ(e.pixels.size(), static_cast<size_t>(h * w));
    EXPECT_EQ(e.pixels[7], px[e.index * h * w + 7]);  // HWC of a 1-channel image: the same order
    EXPECT_GT(e.probability, 0.0);
    EXPECT_LE(e.probability, 1.0);
  }
  EXPECT_LT(r.misclassified[0].index, r.misclassified[9].index);  // in the split's order
  track::ReportData rd;
  rd.study.name = "imgs";
  rd.study.directions = {Direction::Maximize};
  rd.evaluation = r;
  const std::string html = track::study_report_html(rd);
  EXPECT_EQ(count(html, "data:image/png;base64,"), 10u);
  EXPECT_NE(html.find("true: ant"), std::string::npos);
}

}  // namespace
}  // namespace deft::tune
