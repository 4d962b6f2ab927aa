#include "deft/track/run_report.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <functional>
#include <map>
#include <set>

#include <fmt/format.h>

#include "deft/tensor/error.h"

namespace deft::track {

using json = nlohmann::json;

namespace {

std::string time_text(double unix_s) {
  if (unix_s <= 0) return "-";
  const auto t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string duration_text(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  const auto t = static_cast<int64_t>(std::lround(s));
  if (t < 3600) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}h{:02}m", t / 3600, t / 60 % 60);
}

std::string number_text(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  if (std::fabs(v) >= 1000) return fmt::format("{:.1f}", v);
  return fmt::format("{:.4g}", v);
}

std::string value_text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return number_text(v.get<double>());
  return v.dump();
}

std::string shortened(std::string s, size_t width) {
  for (char& c : s)
    if (c == '\n' || c == '\t') c = ' ';
  if (s.size() > width) s = s.substr(0, width - 3) + "...";
  return s;
}

// A text table: the first column and columns of text left-aligned, numbers right-aligned.
std::string table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
                  const std::string& indent = "") {
  std::vector<size_t> width(header.size(), 0);
  std::vector<bool> numeric(header.size(), true), any_number(header.size(), false);
  for (size_t c = 0; c < header.size(); ++c) width[c] = header[c].size();
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size() && c < width.size(); ++c) {
      width[c] = std::max(width[c], row[c].size());
      if (row[c].empty() || row[c] == "-") continue;
      if (row[c].find_first_not_of("0123456789.-+einf") != std::string::npos) numeric[c] = false;
      else any_number[c] = true;
    }
  for (size_t c = 0; c < numeric.size(); ++c) numeric[c] = numeric[c] && any_number[c] && c > 0;
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (size_t c = 0; c < width.size(); ++c) {
      const std::string cell = c < cells.size() ? cells[c] : "";
      const bool last = c + 1 == width.size();
      if (numeric[c]) out += fmt::format("{:>{}}", cell, width[c]);
      else out += last ? cell : fmt::format("{:<{}}", cell, width[c]);
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string shown_status(const RunRecord& r) {
  if (r.status == RunStatus::Finished && r.summary.value("pruned", false)) return "pruned";
  return to_string(r.status);
}

std::string study_text(const RunRecord& r) {
  if (r.study.empty()) return "-";
  return r.trial_number >= 0 ? fmt::format("{}#{}", r.study, r.trial_number) : r.study;
}

// The summary's few numbers a list shows: tested, else validated, else trained.
std::string key_metrics(const RunRecord& r) {
  if (r.status == RunStatus::Failed || r.status == RunStatus::Killed)
    if (r.summary.contains("error")) return "error: " + shortened(value_text(r.summary["error"]), 60);
  std::string out;
  int shown = 0;
  for (const char* k : {"test_accuracy", "test_f1_macro", "test_loss", "test_mse", "value", "val_accuracy", "val_loss",
                        "accuracy", "loss"}) {
    if (shown == 3) break;
    if (!r.summary.contains(k) || !r.summary[k].is_number()) continue;
    if (std::string(k) == "value" && r.summary.contains("val_accuracy")) continue;  // the same number twice
    out += fmt::format("{}{}={}", out.empty() ? "" : " ", k, value_text(r.summary[k]));
    ++shown;
  }
  return out.empty() ? "-" : out;
}

// Per-epoch keys in reading order: training loss and metrics, validation ones, then the
// rest (lr, epoch_s, ...). Per-class metrics and batch series ("batch/loss") are left out.
int key_rank(const std::string& k) {
  if (k == "loss") return 0;
  if (k == "val_loss") return 2;
  if (k.rfind("val_", 0) == 0) return 3;
  if (k == "lr" || k == "epoch_s" || k == "samples_per_s") return 4;
  return 1;
}

bool epoch_key(const std::string& k) {
  return k.find('/') == std::string::npos && k.find("_class_") == std::string::npos;
}

std::vector<std::string> ordered(std::set<std::string> keys) {
  std::vector<std::string> out(keys.begin(), keys.end());
  std::stable_sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return key_rank(a) < key_rank(b);
  });
  return out;
}

// key -> step -> value
using Series = std::map<std::string, std::map<int64_t, double>>;

Series series_of(RunStore& store, int64_t run_id) {
  Series s;
  for (const MetricPoint& p : store.metrics(run_id)) s[p.key][p.step] = p.value;
  return s;
}

json series_json(const Series& s) {
  json out = json::object();
  for (const auto& [key, points] : s) {
    json steps = json::array(), values = json::array();
    for (const auto& [step, v] : points) {
      steps.push_back(step);
      values.push_back(std::isfinite(v) ? json(v) : json(nullptr));
    }
    out[key] = {{"steps", steps}, {"values", values}};
  }
  return out;
}

void section(std::string& out, const std::string& title, const json& obj) {
  out += "\n" + title + "\n";
  if (!obj.is_object() || obj.empty()) {
    out += "  (none)\n";
    return;
  }
  std::vector<std::vector<std::string>> rows;
  for (auto it = obj.begin(); it != obj.end(); ++it) rows.push_back({it.key(), shortened(value_text(it.value()), 100)});
  std::string t = table({"", ""}, rows, "  ");
  out += t.substr(t.find('\n') + 1);  // no header
}

}  // namespace

json run_json(const RunRecord& r) {
  return {{"id", r.id},
          {"name", r.name},
          {"command", r.command},
          {"study", r.study},
          {"trial_number", r.trial_number},
          {"status", to_string(r.status)},
          {"config", r.config},
          {"params", r.params},
          {"system", r.system},
          {"artifacts", r.artifacts},
          {"summary", r.summary},
          {"start_time", r.start_time},
          {"end_time", r.end_time},
          {"heartbeat", r.heartbeat},
          {"duration_s", r.duration()},
          {"host", r.host},
          {"pid", r.pid}};
}

RunRecord resolve_run(RunStore& store, const std::string& name_or_id) {
  auto r = store.find_run(name_or_id);
  DEFT_CHECK(r.has_value(), "{}: no run named '{}' (deft runs list shows the runs)", store.url(), name_or_id);
  return *r;
}

std::string format_run_list(RunStore& store, const RunFilter& filter, const std::string& format) {
  const std::vector<RunRecord> runs = store.list_runs(filter);
  if (format == "json") {
    json out = json::array();
    for (const auto& r : runs) out.push_back(run_json(r));
    return out.dump(2) + "\n";
  }
  DEFT_CHECK(format == "table", "runs list: --format must be table or json, got '{}'", format);
  if (runs.empty()) return fmt::format("no runs in {}\n", store.url());
  std::vector<std::vector<std::string>> rows;
  for (const auto& r : runs)
    rows.push_back({std::to_string(r.id), r.name, r.command, study_text(r), shown_status(r), time_text(r.start_time),
                    duration_text(r.duration()), key_metrics(r)});
  return table({"id", "name", "command", "study", "status", "started", "duration", "metrics"}, rows);
}

std::string format_run(RunStore& store, const std::string& name_or_id, const std::string& format) {
  const RunRecord r = resolve_run(store, name_or_id);
  const Series s = series_of(store, r.id);
  if (format == "json") {
    json out = run_json(r);
    out["metrics"] = series_json(s);
    return out.dump(2) + "\n";
  }
  DEFT_CHECK(format == "table", "runs show: --format must be table or json, got '{}'", format);
  std::string out = fmt::format("run {} '{}' ({}) {}\n", r.id, r.name, r.command, shown_status(r));
  out += fmt::format("  started {}, {}{}, on {} (pid {})\n", time_text(r.start_time), duration_text(r.duration()),
                     r.status == RunStatus::Running ? " so far" : "", r.host.empty() ? "?" : r.host, r.pid);
  if (!r.study.empty())
    out += r.trial_number >= 0 ? fmt::format("  study '{}', trial {}\n", r.study, r.trial_number)
                               : fmt::format("  study '{}'\n", r.study);
  if (r.summary.contains("error")) out += "  error: " + value_text(r.summary["error"]) + "\n";
  section(out, "params", r.params);
  section(out, "summary", r.summary);
  section(out, "artifacts", r.artifacts);
  section(out, "config", r.config);
  section(out, "system", r.system);

  std::set<std::string> keys;
  std::set<int64_t> steps;
  for (const auto& [key, points] : s)
    if (epoch_key(key)) {
      keys.insert(key);
      for (const auto& [step, v] : points) steps.insert(step);
    }
  out += "\nmetrics per epoch\n";
  if (keys.empty()) {
    out += "  (none)\n";
  } else {
    const std::vector<std::string> cols = ordered(keys);
    std::vector<std::string> header{"epoch"};
    header.insert(header.end(), cols.begin(), cols.end());
    std::vector<std::vector<std::string>> rows;
    for (int64_t step : steps) {
      std::vector<std::string> row{std::to_string(step)};
      for (const auto& k : cols) {
        const auto& points = s.at(k);
        const auto it = points.find(step);
        row.push_back(it == points.end() ? "-" : number_text(it->second));
      }
      rows.push_back(std::move(row));
    }
    out += table(header, rows, "  ");
  }
  for (const auto& [key, points] : s)
    if (key.find('/') != std::string::npos && !points.empty())
      out += fmt::format("{}: {} points, steps {}..{}, last {}\n", key, points.size(), points.begin()->first,
                         points.rbegin()->first, number_text(points.rbegin()->second));
  return out;
}

std::string format_run_comparison(RunStore& store, const std::vector<std::string>& names_or_ids,
                                  const std::string& format) {
  DEFT_CHECK(names_or_ids.size() >= 2, "runs compare: give at least two runs, got {}", names_or_ids.size());
  DEFT_CHECK(format == "table" || format == "json", "runs compare: --format must be table or json, got '{}'", format);
  std::vector<RunRecord> runs;
  std::vector<Series> series;
  for (const auto& n : names_or_ids) {
    runs.push_back(resolve_run(store, n));
    series.push_back(series_of(store, runs.back().id));
  }
  auto column = [&](const std::function<json(const RunRecord&)>& get) {
    json values = json::array();
    for (const auto& r : runs) values.push_back(get(r));
    return values;
  };

  // params that differ (missing counts as a value of its own)
  std::set<std::string> param_keys, summary_keys, val_keys;
  for (const auto& r : runs) {
    for (auto it = r.params.begin(); it != r.params.end(); ++it) param_keys.insert(it.key());
    for (auto it = r.summary.begin(); it != r.summary.end(); ++it)
      if (it.value().is_number() && !it.value().is_boolean()) summary_keys.insert(it.key());
  }
  for (const auto& s : series)
    for (const auto& [key, points] : s)
      if (key.rfind("val_", 0) == 0 && epoch_key(key)) val_keys.insert(key);
  if (val_keys.empty())
    for (const auto& s : series)
      if (s.count("loss")) val_keys.insert("loss");
  json differ = json::object();
  for (const auto& k : param_keys) {
    json values = column([&](const RunRecord& r) { return r.params.contains(k) ? r.params[k] : json(nullptr); });
    if (std::any_of(values.begin(), values.end(), [&](const json& v) { return v != values[0]; })) differ[k] = values;
  }
  std::vector<std::string> summary_order(summary_keys.begin(), summary_keys.end());
  std::stable_sort(summary_order.begin(), summary_order.end(), [](const std::string& a, const std::string& b) {
    auto rank = [](const std::string& k) { return k.rfind("test_", 0) == 0 ? 0 : k.rfind("val_", 0) == 0 ? 1 : 2; };
    return rank(a) < rank(b);
  });
  std::set<int64_t> steps;
  for (const auto& s : series)
    for (const auto& k : val_keys)
      if (s.count(k))
        for (const auto& [step, v] : s.at(k)) steps.insert(step);

  if (format == "json") {
    json out;
    out["runs"] = column([](const RunRecord& r) { return json(r.name); });
    out["status"] = column([](const RunRecord& r) { return json(to_string(r.status)); });
    out["params_differ"] = differ;
    json summary = json::object();
    for (const auto& k : summary_order)
      summary[k] = column([&](const RunRecord& r) { return r.summary.contains(k) ? r.summary[k] : json(nullptr); });
    out["summary"] = summary;
    json epochs = json::object();
    for (const auto& k : ordered(val_keys)) {
      json rows = json::array();
      for (int64_t step : steps) {
        json row = {{"epoch", step}};
        for (size_t i = 0; i < runs.size(); ++i) {
          const auto ks = series[i].find(k);
          const bool has = ks != series[i].end() && ks->second.count(step);
          row[runs[i].name] = has && std::isfinite(ks->second.at(step)) ? json(ks->second.at(step)) : json(nullptr);
        }
        rows.push_back(row);
      }
      epochs[k] = rows;
    }
    out["epochs"] = epochs;
    return out.dump(2) + "\n";
  }

  std::vector<std::string> header{""};
  for (const auto& r : runs) header.push_back(r.name);
  auto text_row = [&](const std::string& label, const json& values) {
    std::vector<std::string> row{label};
    for (const auto& v : values) row.push_back(value_text(v));
    return row;
  };
  std::vector<std::vector<std::string>> rows;
  rows.push_back(text_row("command", column([](const RunRecord& r) { return json(r.command); })));
  rows.push_back(text_row("status", column([](const RunRecord& r) { return json(shown_status(r)); })));
  rows.push_back(text_row("started", column([](const RunRecord& r) { return json(time_text(r.start_time)); })));
  rows.push_back(text_row("duration", column([](const RunRecord& r) { return json(duration_text(r.duration())); })));
  std::string out = table(header, rows);
  out += "\nparams that differ\n";
  if (differ.empty()) {
    out += "  (none: the runs have the same params)\n";
  } else {
    rows.clear();
    for (auto it = differ.begin(); it != differ.end(); ++it) rows.push_back(text_row(it.key(), it.value()));
    out += table(header, rows, "  ");
  }
  out += "\nfinal metrics\n";
  if (summary_order.empty()) {
    out += "  (none)\n";
  } else {
    rows.clear();
    for (const auto& k : summary_order)
      rows.push_back(
          text_row(k, column([&](const RunRecord& r) { return r.summary.contains(k) ? r.summary[k] : json(nullptr); })));
    out += table(header, rows, "  ");
  }
  // the headline validation series only (JSON has them all)
  std::set<std::string> shown_keys;
  for (const char* k : {"val_loss", "val_accuracy", "val_f1_macro", "val_mse", "val_mae", "val_r2", "loss"})
    if (val_keys.count(k)) shown_keys.insert(k);
  if (shown_keys.empty()) shown_keys = val_keys;
  for (const auto& k : ordered(shown_keys)) {
    out += "\n" + k + " per epoch\n";
    rows.clear();
    for (int64_t step : steps) {
      std::vector<std::string> row{std::to_string(step)};
      for (size_t i = 0; i < runs.size(); ++i) {
        const auto ks = series[i].find(k);
        row.push_back(ks != series[i].end() && ks->second.count(step) ? number_text(ks->second.at(step)) : "-");
      }
      rows.push_back(std::move(row));
    }
    std::vector<std::string> epoch_header = header;
    epoch_header[0] = "epoch";
    out += table(epoch_header, rows, "  ");
  }
  return out;
}

}  // namespace deft::track
