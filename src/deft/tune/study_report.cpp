#include "deft/tune/study_report.h"

#include <cmath>
#include <ctime>
#include <set>

#include <fmt/format.h>

#include "deft/tensor/error.h"
#include "deft/tune/auto.h"
#include "deft/tune/pruner.h"
#include "deft/tune/study.h"

namespace deft::tune {

using json = nlohmann::json;

double parse_duration(const std::string& text) {
  DEFT_CHECK(!text.empty(), "duration: empty (use e.g. 90s, 10m, 1h30m)");
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(text.substr(i), &used);
    } catch (const std::exception&) {
      fail("duration '{}': expected a number at '{}' (use e.g. 90s, 10m, 1h30m)", text, text.substr(i));
    }
    DEFT_CHECK(v >= 0 && std::isfinite(v), "duration '{}': must not be negative", text);
    i += used;
    double unit = 1;
    if (i < text.size()) {
      const char u = text[i];
      if (u == 's') unit = 1;
      else if (u == 'm') unit = 60;
      else if (u == 'h') unit = 3600;
      else if (u == 'd') unit = 86400;
      else fail("duration '{}': unknown unit '{}' (s, m, h or d)", text, u);
      ++i;
    } else if (any) {
      fail("duration '{}': the last number has no unit", text);
    }
    total += v * unit;
    any = true;
  }
  return total;
}

namespace {

std::string csv_escape(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string when(double t) {
  if (t <= 0) return "-";
  const std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &tm);
  return buf;
}

track::StudyRecord find(track::StudyStore& store, const std::string& name) {
  auto s = store.find_study(name);
  if (!s) {
    std::string names;
    for (auto& st : store.list_studies()) {
      if (!names.empty()) names += ", ";
      names += st.name;
    }
    fail("study '{}' is not in {} (studies: {})", name, store.url(), names.empty() ? "none" : names);
  }
  return *s;
}

std::string dirs_text(const std::vector<Direction>& d) {
  std::string out;
  for (auto x : d) {
    if (!out.empty()) out += ",";
    out += track::to_string(x);
  }
  return out;
}

}  // namespace

std::string format_study_list(track::StudyStore& store) {
  const auto studies = store.list_studies();
  if (studies.empty()) return fmt::format("no studies in {}\n", store.url());
  std::string out = fmt::format("{:<32} {:<10} {:>6} {:>8} {:>6} {:>5} {:>7} {:>10}  {}\n", "study", "direction", "trials",
                                "complete", "pruned", "fail", "running", "best", "created");
  for (const auto& s : studies) {
    auto count = [&](TrialState st) {
      auto it = s.counts.find(st);
      return it == s.counts.end() ? int64_t{0} : it->second;
    };
    std::string best = "-";
    if (s.directions.size() == 1) {
      std::optional<double> b;
      for (const auto& t : store.trials(s.id))
        if (t.state == TrialState::Complete && !t.values.empty() && std::isfinite(t.values[0]) &&
            (!b || better(t.values[0], *b, s.directions[0])))
          b = t.values[0];
      if (b) best = fmt::format("{:.4f}", *b);
    } else {
      best = "pareto";
    }
    out += fmt::format("{:<32} {:<10} {:>6} {:>8} {:>6} {:>5} {:>7} {:>10}  {}\n", s.name, dirs_text(s.directions),
                       s.n_trials, count(TrialState::Complete), count(TrialState::Pruned), count(TrialState::Fail),
                       count(TrialState::Running), best, when(s.created));
  }
  return out;
}

std::string format_study(track::StudyStore& store, const std::string& name, const std::string& format) {
  const track::StudyRecord s = find(store, name);
  const auto trials = store.trials(s.id);
  if (format == "json") {
    json arr = json::array();
    for (const auto& t : trials) arr.push_back(trial_json(t));
    json dirs = json::array();
    for (auto d : s.directions) dirs.push_back(track::to_string(d));
    return json{{"study", s.name}, {"directions", dirs}, {"user_attrs", s.user_attrs}, {"created", s.created},
                {"trials", arr}}
               .dump(2) +
           "\n";
  }
  if (format == "csv") {
    std::set<std::string> params, attrs;
    size_t n_values = s.directions.size();
    for (const auto& t : trials) {
      for (auto& [k, v] : t.params) params.insert(k);
      for (auto it = t.user_attrs.begin(); it != t.user_attrs.end(); ++it) attrs.insert(it.key());
    }
    std::string out = "number,state,start_time,end_time,duration_s,last_step";
    for (size_t i = 0; i < n_values; ++i) out += n_values == 1 ? ",value" : fmt::format(",value_{}", i);
    for (auto& p : params) out += ",params_" + csv_escape(p);
    for (auto& a : attrs) out += ",user_attrs_" + csv_escape(a);
    out += "\n";
    for (const auto& t : trials) {
      out += fmt::format("{},{},{:.3f},{:.3f},{:.3f},{}", t.number, track::to_string(t.state), t.start_time, t.end_time,
                         t.end_time > 0 ? t.end_time - t.start_time : 0.0,
                         t.last_step() ? std::to_string(*t.last_step()) : "");
      for (size_t i = 0; i < n_values; ++i)
        out += i < t.values.size() && std::isfinite(t.values[i]) ? fmt::format(",{}", t.values[i]) : ",";
      const json pj = t.param_json();
      for (auto& p : params) {
        out += ",";
        if (pj.contains(p)) out += csv_escape(pj[p].is_string() ? pj[p].get<std::string>() : pj[p].dump());
      }
      for (auto& a : attrs) {
        out += ",";
        if (t.user_attrs.contains(a))
          out += csv_escape(t.user_attrs[a].is_string() ? t.user_attrs[a].get<std::string>() : t.user_attrs[a].dump());
      }
      out += "\n";
    }
    return out;
  }
  DEFT_CHECK(format == "table", "study show: format '{}' is not table, json or csv", format);
  std::map<TrialState, int64_t> counts;
  for (const auto& t : trials) ++counts[t.state];
  std::string out = fmt::format("study {} ({}) in {}\ncreated {} | {} trials: {} complete, {} pruned, {} failed, {} running, {} waiting\n",
                                s.name, dirs_text(s.directions), store.url(), when(s.created), trials.size(),
                                counts[TrialState::Complete], counts[TrialState::Pruned], counts[TrialState::Fail],
                                counts[TrialState::Running], counts[TrialState::Waiting]);
  for (auto it = s.user_attrs.begin(); it != s.user_attrs.end(); ++it)
    out += fmt::format("  {}: {}\n", it.key(), it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
  out += "\n" + leaderboard_table(trials, s.directions, 1000000);
  return out;
}

std::string format_best(track::StudyStore& store, const std::string& name, const std::string& format) {
  const track::StudyRecord s = find(store, name);
  std::vector<TrialRecord> complete;
  for (auto& t : store.trials(s.id))
    if (t.state == TrialState::Complete && t.values.size() == s.directions.size()) complete.push_back(std::move(t));
  DEFT_CHECK(!complete.empty(), "study '{}' has no complete trial yet", name);
  std::vector<TrialRecord> best;
  if (s.directions.size() == 1) {
    size_t bi = 0;
    for (size_t i = 1; i < complete.size(); ++i)
      if (better(complete[i].values[0], complete[bi].values[0], s.directions[0])) bi = i;
    best.push_back(complete[bi]);
  } else {
    std::vector<std::vector<double>> vals;
    for (auto& t : complete) vals.push_back(t.values);
    const auto rank = pareto_ranks(vals, s.directions);
    for (size_t i = 0; i < complete.size(); ++i)
      if (rank[i] == 0) best.push_back(complete[i]);
  }
  if (format == "json") {
    if (best.size() == 1 && s.directions.size() == 1) return trial_json(best[0]).dump(2) + "\n";
    json arr = json::array();
    for (auto& t : best) arr.push_back(trial_json(t));
    return arr.dump(2) + "\n";
  }
  DEFT_CHECK(format == "table", "study best: format '{}' is not table or json", format);
  std::string out = s.directions.size() == 1 ? "" : fmt::format("Pareto front: {} trials\n", best.size());
  for (auto& t : best) {
    std::string vals;
    for (double v : t.values) {
      if (!vals.empty()) vals += ", ";
      vals += fmt::format("{:.6g}", v);
    }
    out += fmt::format("trial {}: value {}\n", t.number, vals);
    const json p = t.param_json();
    for (auto it = p.begin(); it != p.end(); ++it) out += fmt::format("  {}: {}\n", it.key(), it.value().dump());
  }
  return out;
}

}  // namespace deft::tune
