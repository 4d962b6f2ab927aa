#include "deft/track/study_plots.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "deft/track/importance.h"
#include "deft/track/plot.h"

namespace deft::track {

namespace {

using svg::Marker;
using svg::Series;

const char* kComplete = "#4e79a7";
const char* kPruned = "#e15759";
const char* kOther = "#9c9c9c";
const char* kBest = "#e15759";

std::string metric_name(const StudyRecord& s) {
  if (s.user_attrs.contains("metric") && s.user_attrs["metric"].is_string()) return s.user_attrs["metric"].get<std::string>();
  return "objective";
}

bool maximize(const StudyRecord& s) { return !s.directions.empty() && s.directions[0] == Direction::Maximize; }

// " (objective 1 of 3)" for multi-objective studies: every single-objective plot says which.
std::string objective_note(const StudyRecord& s) {
  return s.directions.size() > 1 ? fmt::format(" (objective 1 of {})", s.directions.size()) : "";
}

bool has_value(const TrialRecord& t) { return !t.values.empty() && std::isfinite(t.values[0]); }

std::string choice_text(const nlohmann::json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

}  // namespace

std::string plot_optimization_history(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  const std::string metric = metric_name(study);
  const std::string title = "Optimization history: " + study.name + objective_note(study);
  Series obj{.name = "complete trial", .color = kComplete, .line = false, .marker = Marker::Circle,
             .css_class = "objective"};
  Series best{.name = "best so far", .color = kBest, .step = true, .width = 2.2, .css_class = "best"};
  int64_t pruned = 0, failed = 0, other = 0;
  double b = NAN;
  const bool mx = maximize(study);
  for (const auto& t : trials) {
    if (t.state == TrialState::Pruned) ++pruned;
    else if (t.state == TrialState::Fail) ++failed;
    else if (t.state != TrialState::Complete) ++other;
    if (t.state != TrialState::Complete || !has_value(t)) continue;
    const double v = t.values[0];
    obj.x.push_back(static_cast<double>(t.number));
    obj.y.push_back(v);
    obj.tips.push_back(fmt::format("trial {}: {} {}", t.number, metric, svg::format_value(v)));
    if (std::isnan(b) || (mx ? v > b : v < b)) b = v;
    best.x.push_back(static_cast<double>(t.number));
    best.y.push_back(b);
  }
  if (obj.x.empty())
    return svg::message_chart(title, fmt::format("no complete trial yet ({} trials: {} pruned, {} failed)", trials.size(),
                                                 pruned, failed));
  svg::XYChart c;
  c.title = title;
  c.subtitle = fmt::format("{} complete trials, {} ({}); best {} | not shown: {} pruned, {} failed{}", obj.x.size(),
                           mx ? "maximize" : "minimize", metric, svg::format_value(b), pruned, failed,
                           other ? fmt::format(", {} running or waiting", other) : "");
  c.x_label = "trial";
  c.y_label = metric;
  c.integer_x = true;
  c.series = {obj, best};
  return svg::xy_chart(c);
}

std::string plot_intermediate_values(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  const std::string metric = metric_name(study);
  const std::string title = "Intermediate values: " + study.name + objective_note(study);
  svg::XYChart c;
  c.title = title;
  c.x_label = "step (epoch)";
  c.y_label = metric;
  c.integer_x = true;
  bool named_complete = false, named_pruned = false, named_other = false;
  int64_t n_complete = 0, n_pruned = 0, n_other = 0;
  std::vector<Series> pruned_marks;
  for (const auto& t : trials) {
    if (t.intermediate.empty()) continue;
    Series s;
    s.css_class = "trial " + to_string(t.state);
    s.width = 1.4;
    s.opacity = t.state == TrialState::Complete ? 0.7 : 0.85;
    for (const auto& [step, vals] : t.intermediate) {
      if (vals.empty() || !std::isfinite(vals[0])) continue;
      s.x.push_back(static_cast<double>(step));
      s.y.push_back(vals[0]);
    }
    if (s.x.empty()) continue;
    if (t.state == TrialState::Complete) {
      s.color = kComplete;
      if (!named_complete) s.name = "complete";
      named_complete = true;
      ++n_complete;
    } else if (t.state == TrialState::Pruned) {
      s.color = kPruned;
      if (!named_pruned) s.name = "pruned (\xE2\x9C\x95: where it stopped)";
      named_pruned = true;
      ++n_pruned;
      Series m{.color = kPruned, .line = false, .marker = Marker::Cross, .css_class = "pruned-mark"};
      m.x = {s.x.back()};
      m.y = {s.y.back()};
      m.tips = {fmt::format("trial {} pruned at step {}: {}", t.number, static_cast<int64_t>(s.x.back()),
                            svg::format_value(s.y.back()))};
      pruned_marks.push_back(std::move(m));
    } else {
      s.color = kOther;
      s.dashed = true;
      if (!named_other) s.name = "failed or running";
      named_other = true;
      ++n_other;
    }
    // hover on the last point names the trial
    s.marker = Marker::Circle;
    s.marker_size = 2;
    for (size_t i = 0; i < s.x.size(); ++i)
      s.tips.push_back(fmt::format("trial {} ({}) step {}: {}", t.number, to_string(t.state), static_cast<int64_t>(s.x[i]),
                                   svg::format_value(s.y[i])));
    c.series.push_back(std::move(s));
  }
  if (c.series.empty()) return svg::message_chart(title, "no trial has reported an intermediate value yet");
  for (auto& m : pruned_marks) c.series.push_back(std::move(m));
  c.subtitle = fmt::format("one line per trial: {} complete, {} pruned{}", n_complete, n_pruned,
                           n_other ? fmt::format(", {} failed or running", n_other) : "");
  return svg::xy_chart(c);
}

std::string plot_parallel_coordinates(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  const std::string metric = metric_name(study);
  const std::string title = "Parallel coordinates: " + study.name + objective_note(study);
  std::vector<const TrialRecord*> use;
  for (const auto& t : trials)
    if (t.state == TrialState::Complete && has_value(t)) use.push_back(&t);
  if (use.empty()) return svg::message_chart(title, "no complete trial yet");
  // every parameter any complete trial has, with the distribution the first one used
  std::map<std::string, Distribution> dists;
  for (const TrialRecord* t : use)
    for (const auto& [name, d] : t->distributions) dists.emplace(name, d);
  svg::ParallelChart c;
  c.title = title;
  c.color_label = metric;
  c.reverse_colors = !maximize(study);
  svg::ParallelAxis objective{.name = metric};
  for (const TrialRecord* t : use) {
    objective.values.push_back(t->values[0]);
    c.color_values.push_back(t->values[0]);
    c.tips.push_back(fmt::format("trial {}: {} {}", t->number, metric, svg::format_value(t->values[0])));
  }
  c.axes.push_back(std::move(objective));
  size_t partial = 0;
  for (const auto& [name, d] : dists) {
    svg::ParallelAxis a{.name = name};
    if (d.kind == Distribution::Kind::Categorical) {
      for (const auto& ch : d.choices) a.categories.push_back(choice_text(ch));
    } else {
      a.low = d.low;
      a.high = d.high;
      a.log = d.log;
    }
    bool missing = false;
    for (const TrialRecord* t : use) {
      auto it = t->params.find(name);
      auto td = t->distributions.find(name);
      double v = NAN;
      if (it != t->params.end() && td != t->distributions.end()) {
        v = it->second;
        // a trial that drew from another distribution: map its value onto this axis
        if (d.kind == Distribution::Kind::Categorical && !(td->second == d)) {
          const auto ext = td->second.external(v);
          auto f = std::find(d.choices.begin(), d.choices.end(), ext);
          v = f == d.choices.end() ? NAN : static_cast<double>(f - d.choices.begin());
        }
      }
      missing |= !std::isfinite(v);
      a.values.push_back(v);
    }
    partial += missing;
    c.axes.push_back(std::move(a));
  }
  c.subtitle = fmt::format("{} complete trials, coloured by {} ({}: brighter is better){}", use.size(), metric,
                           maximize(study) ? "maximize" : "minimize",
                           partial ? "; a gap: the trial has no such parameter" : "");
  c.width = std::max(720, std::min(1400, 140 * static_cast<int>(c.axes.size()) + 200));
  return svg::parallel_coordinates(c);
}

std::string plot_param_importance(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  ImportanceOptions o;
  const std::string title = "Hyperparameter importance by " + importance_method(o) + ": " + study.name + objective_note(study);
  const auto imp = param_importances(trials, o);
  if (imp.empty())
    return svg::message_chart(title, "needs at least two complete trials that share a parameter");
  svg::BarChart c;
  c.title = title;
  bool all_zero = true;
  for (const auto& p : imp) {
    c.labels.push_back(p.name);
    c.values.push_back(p.importance);
    c.value_text.push_back(fmt::format("{:.3f}", p.importance));
    all_zero &= p.importance == 0;
  }
  const size_t n = importance_trial_count(trials, o);
  c.subtitle = all_zero ? fmt::format("{} complete trials; the objective did not vary, so no parameter explains any of it", n)
                        : fmt::format("share of the objective's variance each parameter explains alone; {} complete "
                                      "trials, parameters all of them have; sums to 1", n);
  c.x_label = "importance";
  return svg::bar_chart(c);
}

std::string plot_pareto_front(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  const std::string title = "Pareto front: " + study.name;
  if (study.directions.size() != 2)
    return svg::message_chart(title, fmt::format("a Pareto front plot needs two objectives; this study has {}",
                                                 study.directions.size()));
  std::vector<const TrialRecord*> use;
  for (const auto& t : trials)
    if (t.state == TrialState::Complete && t.values.size() >= 2 && std::isfinite(t.values[0]) && std::isfinite(t.values[1]))
      use.push_back(&t);
  if (use.empty()) return svg::message_chart(title, "no complete trial yet");
  auto better_eq = [&](double a, double b, size_t k) {
    return study.directions[k] == Direction::Maximize ? a >= b : a <= b;
  };
  auto dominates = [&](const TrialRecord* a, const TrialRecord* b) {
    return better_eq(a->values[0], b->values[0], 0) && better_eq(a->values[1], b->values[1], 1) &&
           (a->values[0] != b->values[0] || a->values[1] != b->values[1]);
  };
  Series rest{.name = "trial", .color = kOther, .line = false, .marker = Marker::Circle, .css_class = "dominated"};
  std::vector<const TrialRecord*> front;
  for (const TrialRecord* t : use) {
    bool dominated = false;
    for (const TrialRecord* u : use) dominated = dominated || dominates(u, t);
    if (dominated) {
      rest.x.push_back(t->values[0]);
      rest.y.push_back(t->values[1]);
      rest.tips.push_back(fmt::format("trial {}: ({}, {})", t->number, svg::format_value(t->values[0]),
                                      svg::format_value(t->values[1])));
    } else {
      front.push_back(t);
    }
  }
  std::sort(front.begin(), front.end(), [](auto* a, auto* b) { return a->values[0] < b->values[0]; });
  Series pf{.name = "Pareto front", .color = kBest, .marker = Marker::Diamond, .css_class = "pareto"};
  for (const TrialRecord* t : front) {
    pf.x.push_back(t->values[0]);
    pf.y.push_back(t->values[1]);
    pf.tips.push_back(fmt::format("trial {}: ({}, {})", t->number, svg::format_value(t->values[0]),
                                  svg::format_value(t->values[1])));
  }
  svg::XYChart c;
  c.title = title;
  c.subtitle = fmt::format("{} complete trials, {} on the front", use.size(), front.size());
  c.x_label = "objective 1 (" + to_string(study.directions[0]) + ")";
  c.y_label = "objective 2 (" + to_string(study.directions[1]) + ")";
  c.series = {rest, pf};
  return svg::xy_chart(c);
}

std::string plot_learning_curves(const std::vector<MetricPoint>& points) {
  std::map<std::string, std::map<int64_t, double>> series;
  static const std::set<std::string> skip = {"lr", "epoch", "epoch_s", "samples_per_s", "time", "wall_s"};
  for (const MetricPoint& p : points) {
    if (p.key.rfind("batch/", 0) == 0 || skip.count(p.key) || !std::isfinite(p.value)) continue;
    series[p.key][p.step] = p.value;
  }
  if (series.empty()) return svg::message_chart("Learning curves", "no per-epoch metrics recorded");
  // panels: X with val_X; loss first, accuracy second, then by name
  std::vector<std::string> bases;
  for (const auto& [key, s] : series) {
    const std::string base = key.rfind("val_", 0) == 0 ? key.substr(4) : key;
    if (std::find(bases.begin(), bases.end(), base) == bases.end()) bases.push_back(base);
  }
  auto rank = [](const std::string& b) { return b == "loss" ? 0 : b == "accuracy" ? 1 : 2; };
  std::stable_sort(bases.begin(), bases.end(), [&](auto& a, auto& b) { return rank(a) < rank(b); });
  std::vector<std::string> panels;
  for (const std::string& base : bases) {
    svg::XYChart c;
    c.title = base;
    c.x_label = "epoch";
    c.y_label = base;
    c.integer_x = true;
    c.width = 500;
    c.height = 320;
    for (const auto& [key, label, color, dashed] :
         std::vector<std::tuple<std::string, std::string, std::string, bool>>{{base, "train", svg::palette(0), false},
                                                                              {"val_" + base, "validation", svg::palette(1), true}}) {
      auto it = series.find(key);
      if (it == series.end()) continue;
      Series s{.name = label, .color = color, .dashed = dashed, .marker = Marker::Circle, .marker_size = 2.5,
               .css_class = label == "train" ? "train" : "validation"};
      for (const auto& [step, v] : it->second) {
        s.x.push_back(static_cast<double>(step));
        s.y.push_back(v);
        s.tips.push_back(fmt::format("{} epoch {}: {}", key, step, svg::format_value(v)));
      }
      c.series.push_back(std::move(s));
    }
    panels.push_back(svg::xy_chart(c));
  }
  return svg::arrange(panels, 2);
}

std::string plot_confusion_matrix(const std::vector<std::vector<int64_t>>& cm, const std::vector<std::string>& class_names) {
  const size_t n = cm.size();
  if (n == 0) return svg::message_chart("Confusion matrix", "no evaluation");
  svg::Heatmap h;
  h.title = "Confusion matrix";
  h.x_label = "predicted class";
  h.y_label = "true class";
  int64_t total = 0, correct = 0;
  for (size_t i = 0; i < n; ++i) {
    const std::string name = i < class_names.size() && !class_names[i].empty() ? class_names[i] : std::to_string(i);
    h.row_labels.push_back(name);
    h.col_labels.push_back(name);
    int64_t row = 0;
    for (size_t k = 0; k < cm[i].size(); ++k) row += cm[i][k];
    std::vector<double> shade;
    std::vector<std::string> text;
    std::vector<bool> hi;
    for (size_t k = 0; k < n; ++k) {
      const int64_t v = k < cm[i].size() ? cm[i][k] : 0;
      shade.push_back(row > 0 ? static_cast<double>(v) / static_cast<double>(row) : 0);
      text.push_back(v ? std::to_string(v) : "");
      hi.push_back(i == k);
      total += v;
      if (i == k) correct += v;
    }
    h.shade.push_back(std::move(shade));
    h.text.push_back(std::move(text));
    h.highlight.push_back(std::move(hi));
  }
  h.subtitle = fmt::format("rows: true class, shaded by the row's share; {} examples, accuracy {}", total,
                           total ? fmt::format("{:.4f}", static_cast<double>(correct) / static_cast<double>(total)) : "-");
  return svg::heatmap(h);
}

}  // namespace deft::track
