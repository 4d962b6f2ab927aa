// What the dashboard serves about a study, computed from an in-memory snapshot of its
// trials rather than from the database: the trial table (filter, sort, paginate), the
// summary, one trial in full. Internal to the dashboard (dashboard.cpp), kept apart so
// the table logic can be read and tested without a server.
//
//   auto snap = make_snapshot(study, store.trials(study.id), /*version*/ 1);
//   TrialQuery q = parse_trial_query([&](const char* k) { return param_of(request, k); });
//   nlohmann::json page = query_trials(*snap, q, unix_now());
//
// A snapshot is immutable once made and shared between request threads by
// shared_ptr<const StudySnapshot>; refresh_snapshot() makes the next one from the
// trials that changed (a finished trial never changes, so only the open ones and the
// new ones are read again).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

#include "deft/tensor/error.h"
#include "deft/track/study_store.h"

namespace deft::track::dash {

// A query parameter the dashboard cannot use: answered 400, naming the parameter.
class BadQuery : public InputError {
 public:
  BadQuery(std::string param, const std::string& message) : InputError(param + ": " + message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// What the table shows of a trial, derived once when the trial is read.
struct TrialRow {
  nlohmann::json params = nlohmann::json::object();  // {name: external value}
  std::string haystack;  // "name=value" per parameter, lower case, '\n'-separated: what q searches
};

struct StudySnapshot {
  StudyRecord study;
  std::vector<TrialRecord> trials;  // ordered by number
  std::vector<TrialRow> rows;       // one per trial
  std::vector<std::string> param_names;  // every parameter any trial has, sorted
  std::map<TrialState, int64_t> counts;  // every state, zeros included
  std::optional<size_t> best;            // index of the best complete trial on the first objective
  double first_start = 0, last_end = 0;  // the time span of the study's trials (0: none)
  int64_t version = 0;                   // grows whenever anything shown changes
  // Trials that may still change: Running and Waiting ones (their numbers).
  std::vector<int64_t> open_numbers;
};

std::shared_ptr<const StudySnapshot> make_snapshot(StudyRecord study, std::vector<TrialRecord> trials,
                                                   int64_t version);

// The next snapshot (numbered `version`) from `prev`, the study record read now, and
// the trials read again (any of the open ones plus any new ones). Returns prev itself
// when nothing shown changed, so callers (and caches keyed on the version) can tell.
std::shared_ptr<const StudySnapshot> refresh_snapshot(const std::shared_ptr<const StudySnapshot>& prev,
                                                      StudyRecord study, std::vector<TrialRecord> reread,
                                                      int64_t version);

// /api/studies/{name}/trials query: offset (>= 0), limit (1..1000, default 50),
// sort = number|value|value:K|state|duration|param:NAME, order = asc|desc,
// state = comma-separated states, q = words every trial's "name=value" text must hold.
struct TrialQuery {
  int64_t offset = 0;
  int64_t limit = 50;
  std::string sort = "number";
  bool descending = false;
  std::vector<TrialState> states;  // empty: every state
  std::vector<std::string> words;  // lower case
};
using QueryParam = std::function<std::optional<std::string>(const char* name)>;
TrialQuery parse_trial_query(const QueryParam& get);  // BadQuery on a bad value

// {total, filtered, offset, limit, sort, order, version, param_names, rows: [...]}.
// Missing values (running trials, NaN) sort last in both orders; ties by number.
// BadQuery when sort names a parameter or objective the study does not have.
nlohmann::json query_trials(const StudySnapshot& s, const TrialQuery& q, double now);

// One row of the table: number, state, values, params, duration_s, last_step, n_steps,
// start_time, end_time, user_attrs. full adds distributions, intermediate values
// ({step: [values]}) and system attrs.
nlohmann::json trial_json(const StudySnapshot& s, size_t index, double now, bool full);
std::optional<size_t> find_trial(const StudySnapshot& s, int64_t number);

// name, directions, counts, n_trials, best_value, best_trial (number), created, version.
nlohmann::json study_entry(const StudySnapshot& s);
// study_entry plus user/system attrs, the best trial in full, the parameters and their
// distributions, and the time span (first_start, last_end, elapsed_s, trial_seconds).
nlohmann::json study_summary(const StudySnapshot& s, double now);

// Finite numbers as JSON numbers, NaN and infinities as null (JSON has no NaN).
nlohmann::json number_or_null(double v);

}  // namespace deft::track::dash
