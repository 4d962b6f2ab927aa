#include "deft/track/dashboard_data.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>
#include <string_view>

namespace deft::track::dash {

using json = nlohmann::json;

namespace {

constexpr TrialState kStates[] = {TrialState::Running, TrialState::Waiting, TrialState::Complete, TrialState::Pruned,
                                  TrialState::Fail};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

TrialRow make_row(const TrialRecord& t) {
  TrialRow r;
  for (const auto& [name, v] : t.params) {
    auto it = t.distributions.find(name);
    json ext = v;
    if (it != t.distributions.end()) {
      try {
        ext = it->second.external(v);
      } catch (const Error&) {  // a value outside its distribution: show the stored number
      }
    }
    r.haystack += lower(name + "=" + (ext.is_string() ? ext.get<std::string>() : ext.dump())) + "\n";
    r.params[name] = std::move(ext);
  }
  return r;
}

bool same_numbers(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

// Whether anything the dashboard shows differs (the heartbeat is not shown).
bool same_trial(const TrialRecord& a, const TrialRecord& b) {
  if (a.state != b.state || a.start_time != b.start_time || a.end_time != b.end_time || a.params != b.params ||
      !same_numbers(a.values, b.values) || a.intermediate.size() != b.intermediate.size() ||
      a.user_attrs != b.user_attrs || a.system_attrs != b.system_attrs)
    return false;
  for (auto ia = a.intermediate.begin(), ib = b.intermediate.begin(); ia != a.intermediate.end(); ++ia, ++ib)
    if (ia->first != ib->first || !same_numbers(ia->second, ib->second)) return false;
  return true;
}

bool same_study(const StudyRecord& a, const StudyRecord& b) {
  return a.id == b.id && a.name == b.name && a.directions == b.directions && a.user_attrs == b.user_attrs &&
         a.system_attrs == b.system_attrs && a.created == b.created;
}

bool better_value(double a, double b, Direction d) { return d == Direction::Maximize ? a > b : a < b; }

// Aggregates over the trials: what make_snapshot and refresh_snapshot both finish with.
void aggregate(StudySnapshot& s) {
  std::set<std::string> names;
  for (TrialState st : kStates) s.counts[st] = 0;
  s.best.reset();
  s.open_numbers.clear();
  s.first_start = s.last_end = 0;
  const Direction d = s.study.directions.empty() ? Direction::Minimize : s.study.directions[0];
  for (size_t i = 0; i < s.trials.size(); ++i) {
    const TrialRecord& t = s.trials[i];
    for (const auto& p : t.params) names.insert(p.first);
    ++s.counts[t.state];
    if (!is_finished(t.state)) s.open_numbers.push_back(t.number);
    if (t.start_time > 0 && (s.first_start == 0 || t.start_time < s.first_start)) s.first_start = t.start_time;
    s.last_end = std::max(s.last_end, t.end_time);
    if (t.state == TrialState::Complete && !t.values.empty() && std::isfinite(t.values[0]) &&
        (!s.best || better_value(t.values[0], s.trials[*s.best].values[0], d)))
      s.best = i;
  }
  s.param_names.assign(names.begin(), names.end());
  s.study.n_trials = static_cast<int64_t>(s.trials.size());
  s.study.counts = s.counts;
}

json state_counts(const StudySnapshot& s) {
  json c = json::object();
  for (const auto& [st, n] : s.counts) c[to_string(st)] = n;
  return c;
}

json time_or_null(double t) { return t > 0 ? json(t) : json(nullptr); }

std::optional<double> duration(const TrialRecord& t, double now) {
  if (t.start_time <= 0) return std::nullopt;  // waiting
  return (t.end_time > 0 ? t.end_time : now) - t.start_time;
}

// A sort key: numbers before text, missing values apart (always last).
struct SortKey {
  enum Rank { Number, Text, Missing } rank = Missing;
  double num = 0;
  std::string_view text;
};

SortKey number_key(double v) { return std::isfinite(v) ? SortKey{SortKey::Number, v, {}} : SortKey{}; }

SortKey json_key(const json& v) {
  if (v.is_number()) return number_key(v.get<double>());
  if (v.is_boolean()) return {SortKey::Number, v.get<bool>() ? 1.0 : 0.0, {}};
  if (v.is_string()) return {SortKey::Text, 0, v.get_ref<const std::string&>()};
  return {};
}

int compare(const SortKey& a, const SortKey& b) {
  if (a.rank != b.rank) return a.rank < b.rank ? -1 : 1;
  if (a.rank == SortKey::Number) return a.num < b.num ? -1 : (a.num > b.num ? 1 : 0);
  if (a.rank == SortKey::Text) return a.text.compare(b.text);
  return 0;
}

std::optional<int64_t> parse_int(const std::string& text) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) return std::nullopt;
  return v;
}

}  // namespace

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::shared_ptr<const StudySnapshot> make_snapshot(StudyRecord study, std::vector<TrialRecord> trials,
                                                   int64_t version) {
  auto s = std::make_shared<StudySnapshot>();
  s->study = std::move(study);
  s->trials = std::move(trials);
  std::sort(s->trials.begin(), s->trials.end(),
            [](const TrialRecord& a, const TrialRecord& b) { return a.number < b.number; });
  s->rows.reserve(s->trials.size());
  for (const auto& t : s->trials) s->rows.push_back(make_row(t));
  s->version = version;
  aggregate(*s);
  return s;
}

std::shared_ptr<const StudySnapshot> refresh_snapshot(const std::shared_ptr<const StudySnapshot>& prev,
                                                      StudyRecord study, std::vector<TrialRecord> reread,
                                                      int64_t version) {
  bool changed = !same_study(prev->study, study);
  std::vector<std::pair<size_t, TrialRecord*>> replaced;  // index in prev->trials
  std::vector<TrialRecord*> added;
  for (auto& t : reread) {
    if (auto at = find_trial(*prev, t.number)) {
      if (!same_trial(prev->trials[*at], t)) replaced.emplace_back(*at, &t);
    } else {
      added.push_back(&t);
    }
  }
  if (!changed && replaced.empty() && added.empty()) return prev;
  auto s = std::make_shared<StudySnapshot>();
  s->study = std::move(study);
  s->trials = prev->trials;  // finished trials never change: copied, not read again
  s->rows = prev->rows;
  for (auto& [at, t] : replaced) {
    s->rows[at] = make_row(*t);
    s->trials[at] = std::move(*t);
  }
  std::sort(added.begin(), added.end(), [](const TrialRecord* a, const TrialRecord* b) { return a->number < b->number; });
  for (TrialRecord* t : added) {
    s->rows.push_back(make_row(*t));
    s->trials.push_back(std::move(*t));
  }
  if (!added.empty() && !prev->trials.empty() && added.front()->number < prev->trials.back().number) {
    // a gap filled in (not seen with the stores deft writes): keep the order by number
    std::vector<size_t> order(s->trials.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return s->trials[a].number < s->trials[b].number; });
    std::vector<TrialRecord> trials;
    std::vector<TrialRow> rows;
    for (size_t i : order) {
      trials.push_back(std::move(s->trials[i]));
      rows.push_back(std::move(s->rows[i]));
    }
    s->trials = std::move(trials);
    s->rows = std::move(rows);
  }
  s->version = version;
  aggregate(*s);
  return s;
}

std::optional<size_t> find_trial(const StudySnapshot& s, int64_t number) {
  // numbers are 0, 1, 2, ... so the index is the number; a search covers any gap
  if (number >= 0 && static_cast<size_t>(number) < s.trials.size() && s.trials[static_cast<size_t>(number)].number == number)
    return static_cast<size_t>(number);
  auto it = std::lower_bound(s.trials.begin(), s.trials.end(), number,
                             [](const TrialRecord& t, int64_t n) { return t.number < n; });
  if (it == s.trials.end() || it->number != number) return std::nullopt;
  return static_cast<size_t>(it - s.trials.begin());
}

TrialQuery parse_trial_query(const QueryParam& get) {
  TrialQuery q;
  if (auto v = get("offset")) {
    auto n = parse_int(*v);
    if (!n || *n < 0) throw BadQuery("offset", "must be a whole number >= 0, got '" + *v + "'");
    q.offset = *n;
  }
  if (auto v = get("limit")) {
    auto n = parse_int(*v);
    if (!n || *n < 1 || *n > 1000) throw BadQuery("limit", "must be a whole number from 1 to 1000, got '" + *v + "'");
    q.limit = *n;
  }
  if (auto v = get("sort")) {
    const bool known = *v == "number" || *v == "value" || *v == "state" || *v == "duration" ||
                       (v->rfind("value:", 0) == 0 && parse_int(v->substr(6)).value_or(-1) >= 0) ||
                       (v->rfind("param:", 0) == 0 && v->size() > 6);
    if (!known)
      throw BadQuery("sort", "unknown column '" + *v + "' (number, value, value:K, state, duration, param:NAME)");
    q.sort = *v;
  }
  if (auto v = get("order")) {
    if (*v != "asc" && *v != "desc") throw BadQuery("order", "must be asc or desc, got '" + *v + "'");
    q.descending = *v == "desc";
  }
  if (auto v = get("state")) {
    size_t start = 0;
    while (start <= v->size()) {
      const size_t comma = std::min(v->find(',', start), v->size());
      const std::string name = v->substr(start, comma - start);
      if (!name.empty()) {
        bool found = false;
        for (TrialState st : kStates)
          if (to_string(st) == name) {
            q.states.push_back(st);
            found = true;
          }
        if (!found)
          throw BadQuery("state", "unknown trial state '" + name + "' (running, waiting, complete, pruned, fail)");
      }
      start = comma + 1;
    }
    if (q.states.empty()) throw BadQuery("state", "names no state (e.g. state=complete,pruned)");
  }
  if (auto v = get("q")) {
    std::string word;
    for (char c : lower(*v) + " ") {
      if (std::isspace(static_cast<unsigned char>(c))) {
        if (!word.empty()) q.words.push_back(word);
        word.clear();
      } else {
        word += c;
      }
    }
  }
  return q;
}

json query_trials(const StudySnapshot& s, const TrialQuery& q, double now) {
  // the key of each trial for the sort asked for
  std::function<SortKey(size_t)> key;
  if (q.sort == "number") {
    key = [&](size_t i) { return SortKey{SortKey::Number, static_cast<double>(s.trials[i].number), {}}; };
  } else if (q.sort == "state") {
    static const std::string names[] = {to_string(TrialState::Running), to_string(TrialState::Complete),
                                        to_string(TrialState::Pruned), to_string(TrialState::Fail),
                                        to_string(TrialState::Waiting)};
    key = [&](size_t i) { return SortKey{SortKey::Text, 0, names[static_cast<int>(s.trials[i].state)]}; };
  } else if (q.sort == "duration") {
    key = [&](size_t i) {
      auto d = duration(s.trials[i], now);
      return d ? number_key(*d) : SortKey{};
    };
  } else if (q.sort.rfind("value", 0) == 0) {
    const size_t k = q.sort == "value" ? 0 : static_cast<size_t>(*parse_int(q.sort.substr(6)));
    if (k >= s.study.directions.size())
      throw BadQuery("sort", "'" + q.sort + "': study '" + s.study.name + "' has " +
                                 std::to_string(s.study.directions.size()) + " objective(s), numbered from 0");
    key = [&s, k](size_t i) {
      const auto& v = s.trials[i].values;
      return k < v.size() ? number_key(v[k]) : SortKey{};
    };
  } else {
    const std::string name = q.sort.substr(6);
    if (!std::binary_search(s.param_names.begin(), s.param_names.end(), name))
      throw BadQuery("sort", "study '" + s.study.name + "' has no parameter '" + name + "'");
    key = [&s, name](size_t i) {
      auto it = s.rows[i].params.find(name);
      return it == s.rows[i].params.end() ? SortKey{} : json_key(*it);
    };
  }

  std::vector<std::pair<SortKey, size_t>> hits;
  hits.reserve(s.trials.size());
  unsigned state_mask = 0;
  for (TrialState st : q.states) state_mask |= 1u << static_cast<int>(st);
  for (size_t i = 0; i < s.trials.size(); ++i) {
    if (state_mask && !(state_mask & (1u << static_cast<int>(s.trials[i].state)))) continue;
    bool match = true;
    for (const auto& w : q.words)
      if (s.rows[i].haystack.find(w) == std::string::npos) {
        match = false;
        break;
      }
    if (match) hits.emplace_back(key(i), i);
  }
  const auto before = [&](const std::pair<SortKey, size_t>& a, const std::pair<SortKey, size_t>& b) {
    const bool ma = a.first.rank == SortKey::Missing, mb = b.first.rank == SortKey::Missing;
    if (ma != mb) return mb;  // missing values last, whatever the order
    const int c = compare(a.first, b.first);
    if (c != 0) return q.descending ? c > 0 : c < 0;
    return a.second < b.second;  // trials are by number: ties by number
  };
  const size_t end = static_cast<size_t>(std::min<int64_t>(q.offset + q.limit, static_cast<int64_t>(hits.size())));
  const size_t begin = std::min(static_cast<size_t>(q.offset), hits.size());
  // only the page needs to be in order
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(end), hits.end(), before);

  json rows = json::array();
  for (size_t k = begin; k < end; ++k) rows.push_back(trial_json(s, hits[k].second, now, false));
  return {{"total", s.trials.size()},
          {"filtered", hits.size()},
          {"offset", q.offset},
          {"limit", q.limit},
          {"sort", q.sort},
          {"order", q.descending ? "desc" : "asc"},
          {"version", s.version},
          {"param_names", s.param_names},
          {"rows", std::move(rows)}};
}

json trial_json(const StudySnapshot& s, size_t index, double now, bool full) {
  const TrialRecord& t = s.trials[index];
  json values = json::array();
  for (double v : t.values) values.push_back(number_or_null(v));
  auto d = duration(t, now);
  auto last = t.last_step();
  json j{{"number", t.number},
         {"state", to_string(t.state)},
         {"values", std::move(values)},
         {"params", s.rows[index].params},
         {"duration_s", d ? json(*d) : json(nullptr)},
         {"last_step", last ? json(*last) : json(nullptr)},
         {"n_steps", t.intermediate.size()},
         {"start_time", time_or_null(t.start_time)},
         {"end_time", time_or_null(t.end_time)},
         {"user_attrs", t.user_attrs}};
  if (full) {
    json dists = json::object();
    for (const auto& [name, dist] : t.distributions) dists[name] = dist.to_json();
    json inter = json::array();
    for (const auto& [step, vals] : t.intermediate) {
      json vs = json::array();
      for (double v : vals) vs.push_back(number_or_null(v));
      inter.push_back({{"step", step}, {"values", std::move(vs)}});
    }
    j["distributions"] = std::move(dists);
    j["intermediate"] = std::move(inter);
    j["system_attrs"] = t.system_attrs;
    j["heartbeat"] = time_or_null(t.heartbeat);
  }
  return j;
}

json study_entry(const StudySnapshot& s) {
  json dirs = json::array();
  for (Direction d : s.study.directions) dirs.push_back(to_string(d));
  return {{"name", s.study.name},
          {"directions", std::move(dirs)},
          {"n_trials", s.trials.size()},
          {"counts", state_counts(s)},
          {"best_value", s.best ? number_or_null(s.trials[*s.best].values[0]) : json(nullptr)},
          {"best_trial", s.best ? json(s.trials[*s.best].number) : json(nullptr)},
          {"created", time_or_null(s.study.created)},
          {"last_end", time_or_null(s.last_end)},
          {"version", s.version}};
}

json study_summary(const StudySnapshot& s, double now) {
  json j = study_entry(s);
  j["user_attrs"] = s.study.user_attrs;
  j["system_attrs"] = s.study.system_attrs;
  j["best"] = s.best ? trial_json(s, *s.best, now, false) : json(nullptr);
  // each parameter with the distribution of the latest trial that has it
  json params = json::array();
  for (const auto& name : s.param_names) {
    json dist;
    for (auto t = s.trials.rbegin(); t != s.trials.rend(); ++t)
      if (auto it = t->distributions.find(name); it != t->distributions.end()) {
        dist = it->second.to_json();
        break;
      }
    params.push_back({{"name", name}, {"distribution", std::move(dist)}});
  }
  j["params"] = std::move(params);
  double lo = INFINITY, hi = -INFINITY, trial_seconds = 0;
  for (const auto& t : s.trials) {
    if (t.state == TrialState::Complete && !t.values.empty() && std::isfinite(t.values[0])) {
      lo = std::min(lo, t.values[0]);
      hi = std::max(hi, t.values[0]);
    }
    if (is_finished(t.state) && t.start_time > 0 && t.end_time > 0) trial_seconds += t.end_time - t.start_time;
  }
  j["value_range"] = lo <= hi ? json::array({lo, hi}) : json(nullptr);
  j["first_start"] = time_or_null(s.first_start);
  const bool open = s.counts.at(TrialState::Running) > 0;
  const double end = open ? now : s.last_end;
  j["elapsed_s"] = s.first_start > 0 && end > 0 ? json(end - s.first_start) : json(nullptr);
  j["trial_seconds"] = trial_seconds;
  return j;
}

}  // namespace deft::track::dash
