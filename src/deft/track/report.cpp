#include "deft/track/report.h"

#include <algorithm>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "deft/track/importance.h"
#include "deft/track/plot.h"
#include "deft/track/study_plots.h"
#include "deft/version.h"

namespace deft::track {

using json = nlohmann::json;

namespace {

std::string esc(const std::string& s) { return svg::escape(s); }

std::string when(double t) {
  if (t <= 0) return "-";
  const auto tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string duration(double s) {
  if (!(s >= 0)) return "-";
  const auto t = static_cast<int64_t>(std::llround(s));
  if (t >= 3600) return fmt::format("{}h {:02}m {:02}s", t / 3600, t / 60 % 60, t % 60);
  if (t >= 60) return fmt::format("{}m {:02}s", t / 60, t % 60);
  return s < 10 ? fmt::format("{:.1f}s", s) : fmt::format("{}s", t);
}

std::string json_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return svg::format_value(v.get<double>());
  return v.dump();
}

std::string params_text(const json& p) {
  std::string out;
  for (auto it = p.begin(); it != p.end(); ++it) {
    if (!out.empty()) out += ", ";
    out += it.key() + "=" + json_text(it.value());
  }
  return out;
}

const char* kCss = R"CSS(
:root { --ink:#1f2328; --muted:#59636e; --line:#d8dee4; --bg:#f6f8fa; --accent:#4e79a7; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.5 "DejaVu Sans", Helvetica, Arial, sans-serif; color: var(--ink); background: var(--bg); }
header { background: #24292f; color: #fff; padding: 18px 28px; }
header h1 { margin: 0 0 4px; font-size: 22px; word-break: break-all; }
header p { margin: 0; color: #c9d1d9; }
nav { padding: 8px 28px; background: #fff; border-bottom: 1px solid var(--line); position: sticky; top: 0; }
nav a { margin-right: 14px; color: var(--accent); text-decoration: none; font-size: 13px; }
main { max-width: 1240px; margin: 0 auto; padding: 12px 20px 40px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 14px 20px; margin: 16px 0; }
h2 { font-size: 18px; margin: 0 0 10px; }
h3 { font-size: 15px; margin: 14px 0 6px; }
figure { margin: 8px 0; overflow-x: auto; }
figure > svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #fff8c5; }
.state-complete { color: #1a7f37; } .state-pruned { color: #bc4c00; } .state-fail { color: #cf222e; }
.muted, .note { color: var(--muted); }
.note { font-size: 13px; margin: 6px 0; }
.kv th { width: 200px; }
pre { background: var(--bg); padding: 10px; overflow-x: auto; font-size: 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 4px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 8px 14px; min-width: 140px; }
.card b { display: block; font-size: 20px; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 20px; }
)CSS";

// The page around the sections; the CSP makes "no network, no scripts" a property of the file.
std::string page(const std::string& title, const std::string& heading, const std::string& sub,
                 const std::vector<std::pair<std::string, std::string>>& nav, const std::string& body, double generated) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                    "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
                    "style-src 'unsafe-inline'\">\n"
                    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                    "<meta name=\"generator\" content=\"deft " DEFT_VERSION "\">\n";
  out += "<title>" + esc(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
  out += "<header><h1>" + esc(heading) + "</h1><p>" + esc(sub) + "</p></header>\n<nav>";
  for (const auto& [id, label] : nav) out += "<a href=\"#" + id + "\">" + esc(label) + "</a>";
  out += "</nav>\n<main>\n" + body + "</main>\n<footer>deft " DEFT_VERSION " | generated " + esc(when(generated)) +
         " | self-contained: no scripts, no network</footer>\n</body>\n</html>\n";
  return out;
}

std::string section(const std::string& id, const std::string& title, const std::string& content) {
  return "<section id=\"" + id + "\">\n<h2>" + esc(title) + "</h2>\n" + content + "\n</section>\n";
}

std::string figure(const std::string& id, const std::string& svg_text) {
  return "<figure class=\"plot\" id=\"plot-" + id + "\">" + svg_text + "</figure>";
}

std::string note(const std::string& text) { return "<p class=\"note\">" + esc(text) + "</p>"; }

std::string kv_table(const std::vector<std::pair<std::string, std::string>>& rows) {
  std::string out = "<table class=\"kv\">";
  for (const auto& [k, v] : rows) out += "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>";
  return out + "</table>";
}

std::string metric_name(const StudyRecord& s) {
  if (s.user_attrs.contains("metric") && s.user_attrs["metric"].is_string()) return s.user_attrs["metric"].get<std::string>();
  return "objective";
}

std::string directions_text(const StudyRecord& s) {
  std::string out;
  for (auto d : s.directions) out += (out.empty() ? "" : ", ") + to_string(d);
  return out.empty() ? "-" : out;
}

std::string fmt4(double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : "-"; }

// ---- evaluation sections --------------------------------------------------------------

std::string misclassified_svg(const EvaluationReport& e) {
  std::vector<svg::GridImage> images;
  auto name = [&](int64_t c) {
    return c >= 0 && static_cast<size_t>(c) < e.class_names.size() ? e.class_names[static_cast<size_t>(c)] : std::to_string(c);
  };
  for (const auto& m : e.misclassified) {
    if (m.pixels.size() != static_cast<size_t>(m.height) * m.width * m.channels || m.pixels.empty()) continue;
    svg::GridImage g;
    g.png = svg::encode_png(m.pixels.data(), m.height, m.width, m.channels);
    g.width = m.width;
    g.height = m.height;
    g.caption = "true: " + name(m.true_class);
    g.caption2 = fmt::format("pred: {} {:.0f}%", name(m.predicted_class), 100 * m.probability);
    g.tip = fmt::format("example {}: true {}, predicted {} with probability {:.3f}", m.index, name(m.true_class),
                        name(m.predicted_class), m.probability);
    images.push_back(std::move(g));
  }
  return svg::image_grid(fmt::format("Misclassified {} examples ({} shown)", e.split, images.size()), images, 9, 96);
}

std::string per_class_table(const EvaluationReport& e) {
  if (e.per_class.empty()) return note("no per-class metrics (not a classification, or no evaluation)");
  std::string out = "<table class=\"per-class\"><tr><th>class</th><th class=\"num\">precision</th><th class=\"num\">recall</th>"
                    "<th class=\"num\">F1</th><th class=\"num\">support</th></tr>";
  double p = 0, r = 0, f = 0, wp = 0, wr = 0, wf = 0;
  int64_t n = 0;
  for (const auto& c : e.per_class) {
    out += fmt::format("<tr><td>{}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td>"
                       "<td class=\"num\">{}</td></tr>",
                       esc(c.name), c.precision, c.recall, c.f1, c.support);
    p += c.precision;
    r += c.recall;
    f += c.f1;
    wp += c.precision * static_cast<double>(c.support);
    wr += c.recall * static_cast<double>(c.support);
    wf += c.f1 * static_cast<double>(c.support);
    n += c.support;
  }
  const double k = static_cast<double>(e.per_class.size()), nn = std::max<double>(1, static_cast<double>(n));
  out += fmt::format("<tr><th>macro avg</th><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td>"
                     "<td class=\"num\">{}</td></tr>",
                     p / k, r / k, f / k, n);
  out += fmt::format("<tr><th>weighted avg</th><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td><td class=\"num\">{:.4f}</td>"
                     "<td class=\"num\">{}</td></tr>",
                     wp / nn, wr / nn, wf / nn, n);
  out += fmt::format("<tr><th>accuracy</th><td></td><td></td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr></table>",
                     fmt4(e.accuracy), n);
  return out;
}

void evaluation_sections(const std::optional<EvaluationReport>& e, std::string& body,
                         std::vector<std::pair<std::string, std::string>>& nav) {
  nav.emplace_back("confusion", "Confusion matrix");
  nav.emplace_back("per-class", "Per class");
  nav.emplace_back("misclassified", "Misclassified");
  if (!e) {
    const std::string why = note("no evaluation of the model (no model file, or the data could not be loaded: see the summary)");
    body += section("confusion", "Confusion matrix", why);
    body += section("per-class", "Per-class metrics", why);
    body += section("misclassified", "Misclassified examples", why);
    return;
  }
  std::string metrics;
  for (const auto& [k, v] : e->metrics) metrics += (metrics.empty() ? "" : ", ") + k + " " + fmt4(v);
  body += section("confusion", fmt::format("Confusion matrix ({} split, {} examples)", e->split, e->examples),
                  (e->confusion.empty() ? note("no confusion matrix: not a classification")
                                        : figure("confusion", plot_confusion_matrix(e->confusion, e->class_names))) +
                      (metrics.empty() ? "" : note(metrics)));
  body += section("per-class", "Per-class metrics", per_class_table(*e));
  body += section("misclassified", "Misclassified examples",
                  e->misclassified.empty()
                      ? note(e->misclassified_note.empty() ? "no misclassified examples" : e->misclassified_note)
                      : figure("misclassified", misclassified_svg(*e)) +
                            note("The first misclassified examples of the split in its order; the caption gives the true "
                                 "class and the predicted one with its probability."));
}

std::string summary_cards(const std::vector<std::pair<std::string, std::string>>& cards) {
  std::string out = "<div class=\"cards\">";
  for (const auto& [label, value] : cards) out += "<div class=\"card\"><span class=\"muted\">" + esc(label) + "</span><b>" + esc(value) + "</b></div>";
  return out + "</div>";
}

std::string curves_block(const std::string& id, const std::string& label, const CurveSet& c) {
  std::string out = "<h3>" + esc(label + (c.run.empty() ? "" : " (run " + c.run + ")")) + "</h3>";
  if (c.points.empty()) return out + note(c.note.empty() ? "no metrics recorded" : c.note);
  out += figure(id, plot_learning_curves(c.points));
  if (!c.note.empty()) out += note(c.note);
  return out;
}

}  // namespace

const TrialRecord* best_trial(const StudyRecord& study, const std::vector<TrialRecord>& trials) {
  const TrialRecord* best = nullptr;
  const bool mx = !study.directions.empty() && study.directions[0] == Direction::Maximize;
  for (const auto& t : trials) {
    if (t.state != TrialState::Complete || t.values.empty() || !std::isfinite(t.values[0])) continue;
    if (!best || (mx ? t.values[0] > best->values[0] : t.values[0] < best->values[0])) best = &t;
  }
  return best;
}

std::vector<std::pair<std::string, std::string>> study_report_plots(const ReportData& d) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!d.best_trial.points.empty()) out.emplace_back("learning_curves_best_trial", plot_learning_curves(d.best_trial.points));
  if (!d.final_model.points.empty()) out.emplace_back("learning_curves_final", plot_learning_curves(d.final_model.points));
  out.emplace_back("optimization_history", plot_optimization_history(d.study, d.trials));
  out.emplace_back("intermediate_values", plot_intermediate_values(d.study, d.trials));
  out.emplace_back("parallel_coordinates", plot_parallel_coordinates(d.study, d.trials));
  out.emplace_back("param_importance", plot_param_importance(d.study, d.trials));
  if (d.study.directions.size() == 2) out.emplace_back("pareto_front", plot_pareto_front(d.study, d.trials));
  if (d.evaluation && !d.evaluation->confusion.empty())
    out.emplace_back("confusion_matrix", plot_confusion_matrix(d.evaluation->confusion, d.evaluation->class_names));
  if (d.evaluation && !d.evaluation->misclassified.empty()) out.emplace_back("misclassified", misclassified_svg(*d.evaluation));
  return out;
}

std::string study_report_html(const ReportData& d) {
  const StudyRecord& s = d.study;
  const std::string metric = metric_name(s);
  const double generated = d.generated > 0 ? d.generated : unix_now();
  std::map<TrialState, int64_t> counts;
  double t_first = 0, t_last = 0;
  for (const auto& t : d.trials) {
    ++counts[t.state];
    if (t.start_time > 0 && (t_first == 0 || t.start_time < t_first)) t_first = t.start_time;
    t_last = std::max({t_last, t.end_time, t.start_time});
  }
  const TrialRecord* best = best_trial(s, d.trials);
  std::vector<std::pair<std::string, std::string>> nav = {{"summary", "Summary"},
                                                          {"learning-curves", "Learning curves"},
                                                          {"history", "History"},
                                                          {"intermediate", "Intermediate values"},
                                                          {"parallel", "Parallel coordinates"},
                                                          {"importance", "Importance"}};
  std::string body;

  // summary
  {
    std::vector<std::pair<std::string, std::string>> cards = {
        {"trials", std::to_string(d.trials.size())},
        {"complete", std::to_string(counts[TrialState::Complete])},
        {"pruned", std::to_string(counts[TrialState::Pruned])},
        {"failed", std::to_string(counts[TrialState::Fail])}};
    if (counts[TrialState::Running] || counts[TrialState::Waiting])
      cards.emplace_back("running / waiting", fmt::format("{} / {}", counts[TrialState::Running], counts[TrialState::Waiting]));
    cards.emplace_back("best " + metric, best ? svg::format_value(best->values[0]) : "-");
    if (d.evaluation && std::isfinite(d.evaluation->accuracy))
      cards.emplace_back(d.evaluation->split + " accuracy", fmt::format("{:.4f}", d.evaluation->accuracy));
    std::vector<std::pair<std::string, std::string>> rows = {
        {"study", s.name},
        {"direction", directions_text(s) + (s.directions.size() > 1 ? " (plots show objective 1)" : "")},
        {"objective", metric},
        {"trials", fmt::format("{} complete, {} pruned, {} failed, {} running, {} waiting", counts[TrialState::Complete],
                               counts[TrialState::Pruned], counts[TrialState::Fail], counts[TrialState::Running],
                               counts[TrialState::Waiting])},
        {"best trial", best ? fmt::format("#{}: {} {}", best->number, metric, svg::format_value(best->values[0])) : "none complete"},
        {"best parameters", best ? params_text(best->param_json()) : "-"},
        {"dataset", d.dataset.empty() ? "-" : d.dataset},
        {"model file", d.model_path.empty() ? "-" : d.model_path},
        {"created", when(s.created)},
        {"trials ran", t_first > 0 ? fmt::format("{} to {} ({})", when(t_first), when(t_last), duration(t_last - t_first)) : "-"}};
    for (auto it = s.user_attrs.begin(); it != s.user_attrs.end(); ++it) {
      static const std::set<std::string> shown = {"metric", "data", "dataset", "model_path"};
      if (!shown.count(it.key())) rows.emplace_back(it.key(), json_text(it.value()));
    }
    std::string c = summary_cards(cards) + kv_table(rows);
    for (const auto& n : d.notes) c += note(n);
    body += section("summary", "Summary", c);
  }
  // learning curves
  body += section("learning-curves", "Learning curves",
                  curves_block("curves-final", "Final model", d.final_model) +
                      curves_block("curves-best", best ? fmt::format("Best trial #{}", best->number) : "Best trial", d.best_trial));
  body += section("history", "Optimisation history", figure("history", plot_optimization_history(s, d.trials)));
  body += section("intermediate", "Intermediate values", figure("intermediate", plot_intermediate_values(s, d.trials)));
  body += section("parallel", "Parallel coordinates", figure("parallel", plot_parallel_coordinates(s, d.trials)));
  body += section("importance", "Hyperparameter importance (" + importance_method() + ")",
                  figure("importance", plot_param_importance(s, d.trials)) +
                      note("fANOVA, as Optuna's default importance evaluator: a random forest fitted to the complete "
                           "trials' parameters (log-scaled ones in log space, categorical ones as indices), and the share "
                           "of the objective's variance each parameter's marginal explains, averaged over the trees."));
  if (s.directions.size() == 2) {
    nav.emplace_back("pareto", "Pareto front");
    body += section("pareto", "Pareto front", figure("pareto", plot_pareto_front(s, d.trials)));
  }
  evaluation_sections(d.evaluation, body, nav);

  // trials table
  nav.emplace_back("trials", "Trials");
  {
    std::string t = "<table class=\"trials\"><tr><th class=\"num\">trial</th><th>state</th>";
    for (size_t k = 0; k < std::max<size_t>(1, s.directions.size()); ++k)
      t += s.directions.size() > 1 ? fmt::format("<th class=\"num\">value {}</th>", k + 1) : "<th class=\"num\">" + esc(metric) + "</th>";
    t += "<th class=\"num\">steps</th><th class=\"num\">duration</th><th>parameters</th></tr>";
    for (const auto& tr : d.trials) {
      t += fmt::format("<tr{}><td class=\"num\">{}</td><td class=\"state-{}\">{}</td>", best == &tr ? " class=\"best\"" : "",
                       tr.number, to_string(tr.state), to_string(tr.state));
      for (size_t k = 0; k < std::max<size_t>(1, s.directions.size()); ++k)
        t += "<td class=\"num\">" + (k < tr.values.size() ? esc(svg::format_value(tr.values[k])) : std::string("-")) + "</td>";
      t += fmt::format("<td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
                       tr.last_step() ? std::to_string(*tr.last_step()) : "-",
                       tr.end_time > 0 ? esc(duration(tr.end_time - tr.start_time)) : "-", esc(params_text(tr.param_json())));
    }
    t += "</table>";
    if (d.trials.empty()) t = note("no trials yet");
    body += section("trials", fmt::format("Trials ({})", d.trials.size()), t);
  }
  const std::string sub = fmt::format("{} | {} trials | {} | generated {}", directions_text(s), d.trials.size(),
                                      d.dataset.empty() ? "dataset unknown" : d.dataset, when(generated));
  return page("deft report: " + s.name, "Study " + s.name, sub, nav, body, generated);
}

std::vector<std::pair<std::string, std::string>> run_report_plots(const RunReportData& d) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("learning_curves", plot_learning_curves(d.metrics));
  if (d.evaluation && !d.evaluation->confusion.empty())
    out.emplace_back("confusion_matrix", plot_confusion_matrix(d.evaluation->confusion, d.evaluation->class_names));
  if (d.evaluation && !d.evaluation->misclassified.empty()) out.emplace_back("misclassified", misclassified_svg(*d.evaluation));
  return out;
}

std::string run_report_html(const RunReportData& d) {
  const RunRecord& r = d.run;
  const double generated = d.generated > 0 ? d.generated : unix_now();
  std::vector<std::pair<std::string, std::string>> nav = {{"summary", "Summary"}, {"learning-curves", "Learning curves"},
                                                          {"config", "Configuration"}};
  std::string body;
  {
    std::vector<std::pair<std::string, std::string>> cards;
    for (auto it = r.summary.begin(); it != r.summary.end(); ++it)
      if (it.value().is_number() && cards.size() < 8) cards.emplace_back(it.key(), svg::format_value(it.value().get<double>()));
    std::vector<std::pair<std::string, std::string>> rows = {
        {"run", r.name},
        {"command", r.command},
        {"status", to_string(r.status)},
        {"started", when(r.start_time)},
        {"ended", r.end_time > 0 ? fmt::format("{} ({})", when(r.end_time), duration(r.end_time - r.start_time)) : "-"}};
    if (!r.study.empty()) rows.emplace_back("study", fmt::format("{} (trial {})", r.study, r.trial_number));
    if (r.config.contains("data")) rows.emplace_back("dataset", json_text(r.config["data"]));
    for (auto it = r.artifacts.begin(); it != r.artifacts.end(); ++it) rows.emplace_back("artifact: " + it.key(), json_text(it.value()));
    std::string c = summary_cards(cards) + kv_table(rows);
    for (const auto& n : d.notes) c += note(n);
    body += section("summary", "Summary", c);
  }
  body += section("learning-curves", "Learning curves",
                  d.metrics.empty() ? note("no metrics recorded") : figure("curves", plot_learning_curves(d.metrics)));
  {
    std::string c;
    if (!r.params.empty()) {
      std::vector<std::pair<std::string, std::string>> p;
      for (auto it = r.params.begin(); it != r.params.end(); ++it) p.emplace_back(it.key(), json_text(it.value()));
      c += "<h3>Parameters</h3>" + kv_table(p);
    }
    if (!r.summary.empty()) {
      std::vector<std::pair<std::string, std::string>> p;
      for (auto it = r.summary.begin(); it != r.summary.end(); ++it) p.emplace_back(it.key(), json_text(it.value()));
      c += "<h3>Summary metrics</h3>" + kv_table(p);
    }
    c += "<h3>Resolved configuration</h3><pre>" + esc(r.config.dump(2)) + "</pre>";
    if (!r.system.empty()) c += "<h3>System</h3><pre>" + esc(r.system.dump(2)) + "</pre>";
    body += section("config", "Configuration and parameters", c);
  }
  if (d.evaluation) evaluation_sections(d.evaluation, body, nav);
  return page("deft report: run " + r.name, "Run " + r.name,
              fmt::format("{} | {} | generated {}", r.command, to_string(r.status), when(generated)), nav, body, generated);
}

}  // namespace deft::track
