#include "deft/tune/report_builder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "deft/tensor/error.h"
#include "deft/tensor/file_io.h"
#include "deft/track/plot.h"
#include "deft/train/run.h"

namespace deft::tune {

using json = nlohmann::json;

namespace {

std::string attr_string(const json& attrs, const char* key) {
  return attrs.contains(key) && attrs[key].is_string() ? attrs[key].get<std::string>() : "";
}

// The model evaluated on the test split of the data it was trained on (or `data_override`,
// all of it when it has no test split), as the report shows it. Problems become notes.
std::optional<track::EvaluationReport> evaluate_model_file(const std::string& path, const std::string& data_override,
                                                           const ReportOptions& o, std::vector<std::string>& notes) {
  if (path.empty()) {
    notes.push_back("no model file is recorded for this study: no evaluation (pass --model)");
    return std::nullopt;
  }
  if (!std::filesystem::exists(path)) {
    notes.push_back(fmt::format("the model file {} does not exist (any more): no evaluation", path));
    return std::nullopt;
  }
  try {
    train::Model model = train::Model::load(path);
    json cfg = model.provenance().value("config", json::object());
    if (!data_override.empty()) cfg["data"] = data_override;
    if (!cfg.contains("data") || cfg["data"].is_null()) {
      notes.push_back(fmt::format("the model {} does not record its data: no evaluation (pass --data)", path));
      return std::nullopt;
    }
    for (const char* drop : {"resume", "checkpoint", "out", "metrics_out", "log", "tensorboard"}) cfg.erase(drop);
    cfg["verbose"] = 0;
    data::DatasetSplits splits = train::load_training_data(train::TrainConfig::from_json(cfg));
    const bool has_test = splits.test.has_value();
    const data::Dataset& d = has_test ? *splits.test : splits.train;
    const train::Evaluation ev = model.evaluate_full(d, {.batch_size = o.batch_size});
    return evaluation_report(model, d, ev, has_test ? "test" : "train", o.max_misclassified);
  } catch (const std::exception& e) {
    notes.push_back(fmt::format("could not evaluate the model {}: {}", path, e.what()));
    return std::nullopt;
  }
}

// The first misclassified images of `d`, predicting a batch at a time until enough are found.
void find_misclassified(train::Model& model, const data::Dataset& d, int64_t max_n, track::EvaluationReport& r) {
  const Tensor x = d.features.contiguous_copy();
  const std::vector<int64_t> labels = d.labels.to(DType::Int64).to_vector<int64_t>();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t chunk = 512;
  const int out_c = c == 3 || c == 4 ? static_cast<int>(c) : 1;  // gray from the first channel otherwise
  const uint8_t* bytes = x.dtype() == DType::UInt8 ? x.data<uint8_t>() : nullptr;
  for (int64_t start = 0; start < n && static_cast<int64_t>(r.misclassified.size()) < max_n; start += chunk) {
    const int64_t k = std::min(chunk, n - start);
    Shape shape = x.shape();
    shape[0] = k;
    const Tensor part = make_view(x, shape, x.strides(), x.offset() + start * x.strides()[0]);
    const Tensor p = model.predict_proba(part, std::min<int64_t>(k, 256)).contiguous_copy();
    const int64_t width = p.numel() / std::max<int64_t>(k, 1);
    const float* pp = p.data<float>();
    const Tensor pix = bytes ? Tensor() : part.to(DType::Float32).contiguous_copy();
    for (int64_t i = 0; i < k && static_cast<int64_t>(r.misclassified.size()) < max_n; ++i) {
      const float* row = pp + i * width;
      int64_t pred = 0;
      double prob = 0;
      if (width == 1) {
        pred = row[0] > 0.5f ? 1 : 0;
        prob = pred ? row[0] : 1 - row[0];
      } else {
        for (int64_t j = 1; j < width; ++j)
          if (row[j] > row[pred]) pred = j;
        prob = row[pred];
      }
      const int64_t truth = labels[static_cast<size_t>(start + i)];
      if (pred == truth) continue;
      track::MisclassifiedExample m;
      m.index = start + i;
      m.true_class = truth;
      m.predicted_class = pred;
      m.probability = prob;
      m.height = static_cast<int>(h);
      m.width = static_cast<int>(w);
      m.channels = out_c;
      m.pixels.resize(static_cast<size_t>(h * w * out_c));
      // float images: 0-1 or 0-255, whichever the values say
      float scale = 1;
      if (pix.defined()) {
        const float* src = pix.data<float>() + i * c * h * w;
        float mx = 0;
        for (int64_t q = 0; q < c * h * w; ++q) mx = std::max(mx, src[q]);
        scale = mx <= 1.0f ? 255.0f : 1.0f;
      }
      for (int64_t ch = 0; ch < out_c; ++ch)
        for (int64_t y = 0; y < h; ++y)
          for (int64_t xx = 0; xx < w; ++xx) {
            const int64_t src_i = ((start + i) * c + ch) * h * w + y * w + xx;
            const size_t dst = static_cast<size_t>((y * w + xx) * out_c + ch);
            if (!pix.defined()) {
              m.pixels[dst] = bytes[src_i];
            } else {
              const float v = pix.data<float>()[(i * c + ch) * h * w + y * w + xx] * scale;
              m.pixels[dst] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
            }
          }
      r.misclassified.push_back(std::move(m));
    }
  }
}

track::CurveSet curves_of(track::RunStore& runs, const track::RunRecord& run) {
  track::CurveSet c;
  c.run = run.name;
  c.points = runs.metrics(run.id);
  if (c.points.empty()) c.note = fmt::format("the run {} recorded no metrics ({})", run.name, track::to_string(run.status));
  return c;
}

}  // namespace

track::EvaluationReport evaluation_report(train::Model& model, const data::Dataset& d, const train::Evaluation& ev,
                                          const std::string& split, int64_t max_misclassified) {
  track::EvaluationReport r;
  r.split = split;
  r.examples = ev.examples;
  r.class_names = model.class_names().empty() ? d.class_names : model.class_names();
  for (const auto& [k, v] : ev.logs)
    if (std::isfinite(v) && k.find("_class_") == std::string::npos) r.metrics[k] = v;
  if (ev.confusion) {
    const train::ConfusionMatrix& cm = *ev.confusion;
    const int64_t n = cm.num_classes();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<int64_t> row;
      for (int64_t k = 0; k < n; ++k) row.push_back(cm.count(i, k));
      r.confusion.push_back(std::move(row));
      const train::ClassScores s = cm.class_scores(i);
      r.per_class.push_back({static_cast<size_t>(i) < r.class_names.size() ? r.class_names[static_cast<size_t>(i)] : std::to_string(i),
                             s.precision, s.recall, s.f1, s.support});
    }
    r.accuracy = cm.accuracy();
  } else if (ev.logs.count("accuracy")) {
    r.accuracy = ev.logs.at("accuracy");
  }
  if (model.task() != data::Task::Classification || !d.labels.defined())
    r.misclassified_note = "a regression: no classes, so no misclassified examples";
  else if (!d.is_image())
    r.misclassified_note = "the data are not images: the grid of misclassified examples is for image data only";
  else if (max_misclassified > 0)
    find_misclassified(model, d, max_misclassified, r);
  if (r.misclassified.empty() && r.misclassified_note.empty()) r.misclassified_note = "every example is classified correctly";
  return r;
}

track::ReportData build_report_data(track::StudyStore& studies, track::RunStore* runs, const std::string& name,
                                    const ReportOptions& o) {
  const std::optional<track::StudyRecord> found = studies.find_study(name);
  if (!found) {
    std::string names;
    for (const auto& s : studies.list_studies()) names += (names.empty() ? "" : ", ") + s.name;
    fail("study '{}' is not in {} (studies: {})", name, studies.url(), names.empty() ? "none" : names);
  }
  track::ReportData d;
  d.study = *found;
  d.trials = studies.trials(d.study.id);
  d.dataset = attr_string(d.study.user_attrs, "dataset");
  if (d.dataset.empty()) d.dataset = attr_string(d.study.user_attrs, "data");
  d.model_path = o.model_path.empty() ? attr_string(d.study.user_attrs, "model_path") : o.model_path;
  const track::TrialRecord* best = track::best_trial(d.study, d.trials);

  if (runs) {
    try {
      const std::vector<track::RunRecord> rs = runs->list_runs({.study = name});  // newest first
      if (best)
        for (const auto& r : rs)
          if (r.trial_number == best->number && r.command != "auto") {
            d.best_trial = curves_of(*runs, r);
            break;
          }
      std::optional<track::RunRecord> fin;
      for (const auto& r : rs)
        if (r.command == "auto" && r.trial_number < 0) {
          fin = r;
          break;
        }
      if (!fin) fin = runs->find_run(name + "-final");
      if (fin) {
        d.final_model = curves_of(*runs, *fin);
        if (d.model_path.empty() && fin->artifacts.contains("model") && fin->artifacts["model"].is_string())
          d.model_path = fin->artifacts["model"].get<std::string>();
      } else {
        d.final_model.note = "no final-model run in the run store (a study not made by deft auto, or still searching)";
      }
    } catch (const std::exception& e) {
      d.notes.push_back(fmt::format("could not read the run store: {}", e.what()));
    }
  } else {
    d.final_model.note = "no run store given: the final model's curves are not available";
  }
  // the best trial's objective curve from the study itself
  if (best && d.best_trial.points.empty() && !best->intermediate.empty()) {
    const std::string metric = attr_string(d.study.user_attrs, "metric");
    const std::string key = metric.empty() ? "val_objective" : metric.rfind("val_", 0) == 0 ? metric : "val_" + metric;
    for (const auto& [step, v] : best->intermediate)
      if (!v.empty()) d.best_trial.points.push_back({key, step, v[0], 0});
    d.best_trial.note = fmt::format("validation curve from trial {}'s intermediate values (the run store has no run "
                                    "with its training metrics)", best->number);
  }
  if (!best) d.best_trial.note = "no complete trial yet";
  if (o.evaluate) d.evaluation = evaluate_model_file(d.model_path, o.data, o, d.notes);
  d.generated = track::unix_now();
  return d;
}

track::RunReportData build_run_report_data(track::RunStore& runs, const std::string& name, const ReportOptions& o) {
  const std::optional<track::RunRecord> r = runs.find_run(name);
  DEFT_CHECK(r.has_value(), "run '{}' is not in {}", name, runs.url());
  track::RunReportData d;
  d.run = *r;
  d.metrics = runs.metrics(r->id);
  std::string model = o.model_path;
  if (model.empty() && r->artifacts.contains("model") && r->artifacts["model"].is_string())
    model = r->artifacts["model"].get<std::string>();
  if (o.evaluate && (!model.empty() || !o.model_path.empty())) d.evaluation = evaluate_model_file(model, o.data, o, d.notes);
  else if (model.empty()) d.notes.push_back("the run saved no model: no evaluation");
  d.generated = track::unix_now();
  return d;
}

std::string write_auto_report(track::StudyStore& studies, track::RunStore* runs, const std::string& study,
                              train::Model& model, const data::Dataset& data, const train::Evaluation& ev,
                              const std::string& split, const std::string& path) noexcept {
  try {
    track::ReportData d = build_report_data(studies, runs, study, {.evaluate = false});
    d.evaluation = evaluation_report(model, data, ev, split);
    if (d.model_path.empty()) d.notes.push_back("the model file is not recorded in the study");
    write_file_atomically(path, track::study_report_html(d));
    return "";
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "unknown error";
  }
}

std::vector<std::string> write_report(const std::string& name, const ReportWriteOptions& o) {
  DEFT_CHECK(!o.png || !o.svg_dir.empty(), "report: --png writes next to the SVG files: give --svg-dir too");
  auto studies = track::open_study_store(o.storage);
  std::unique_ptr<track::RunStore> runs;
  std::string runs_error;
  try {
    runs = track::open_run_store(o.storage);
  } catch (const std::exception& e) {
    runs_error = e.what();
  }
  std::string html;
  std::vector<std::pair<std::string, std::string>> plots;
  if (studies->find_study(name)) {
    track::ReportData d = build_report_data(*studies, runs.get(), name, o.report);
    if (!runs_error.empty()) d.notes.push_back("no run store: " + runs_error);
    html = track::study_report_html(d);
    if (!o.svg_dir.empty()) plots = track::study_report_plots(d);
  } else {
    std::optional<track::RunRecord> run;
    if (runs) run = runs->find_run(name);
    if (!run) {
      std::string names;
      for (const auto& s : studies->list_studies()) names += (names.empty() ? "" : ", ") + s.name;
      fail("'{}' is neither a study nor a run in {} (studies: {})", name, o.storage,
           names.empty() ? "none" : names);
    }
    const track::RunReportData d = build_run_report_data(*runs, name, o.report);
    html = track::run_report_html(d);
    if (!o.svg_dir.empty()) plots = track::run_report_plots(d);
  }
  std::vector<std::string> written;
  write_file_atomically(o.out, html);
  written.push_back(o.out);
  if (!o.svg_dir.empty()) {
    std::filesystem::create_directories(o.svg_dir);
    for (const auto& [stem, svg] : plots) {
      const std::string base = (std::filesystem::path(o.svg_dir) / stem).string();
      write_file_atomically(base + ".svg", svg);
      written.push_back(base + ".svg");
      if (o.png) {
        track::svg::svg_to_png(svg, base + ".png");
        written.push_back(base + ".png");
      }
    }
  }
  return written;
}

}  // namespace deft::tune
