// The study store: studies, trials, parameters, objective values, intermediate values
// and attributes, shared by every process (and machine) that works a study.
//
//   auto store = open_study_store("sqlite:///runs/deft.db");     // or postgresql://user@host:5432/db
//   int64_t sid = store->create_study("fmnist", {Direction::Maximize});  // or returns the existing one
//   TrialRecord t = store->start_trial(sid);                     // a queued (retry) trial first, else a new one
//   store->set_param(t.id, "lr", 0.01, Distribution::float_range(1e-4, 1e-1, true));
//   store->report(t.id, /*step*/ 1, {0.87});
//   store->finish_trial(t.id, TrialState::Complete, {0.91});
//
// Trial numbers are 0, 1, 2, ... per study with no gaps or duplicates however many
// processes start trials at once. Running trials send heartbeats; fail_stale_trials()
// fails the ones whose worker stopped beating and queues a retry with the same
// parameters. Every write is one transaction. The schema (schema_sql()) is versioned
// in the table deft_schema.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

namespace deft::track {

enum class Direction { Minimize, Maximize };
std::string to_string(Direction d);
Direction direction_from_string(const std::string& s);  // "minimize"/"maximize"; InputError otherwise

enum class TrialState { Running, Complete, Pruned, Fail, Waiting };
std::string to_string(TrialState s);  // "running", "complete", "pruned", "fail", "waiting"
TrialState trial_state_from_string(const std::string& s);
inline bool is_finished(TrialState s) { return s == TrialState::Complete || s == TrialState::Pruned || s == TrialState::Fail; }

// The range a parameter was drawn from. Values are held in their "internal"
// representation: the number itself for float/int, the index of the choice for
// categorical. JSON form: {"type":"float","low":..,"high":..,"log":false,"step":0}
// {"type":"int",...} {"type":"categorical","choices":[...]} (choices are JSON values).
struct Distribution {
  enum class Kind { Float, Int, Categorical };
  Kind kind = Kind::Float;
  double low = 0, high = 1;
  bool log = false;
  double step = 0;  // 0: continuous (float); int: >= 1
  std::vector<nlohmann::json> choices;

  static Distribution float_range(double low, double high, bool log = false, double step = 0);
  static Distribution int_range(int64_t low, int64_t high, bool log = false, int64_t step = 1);
  static Distribution categorical(std::vector<nlohmann::json> choices);

  bool contains(double internal) const;
  nlohmann::json external(double internal) const;  // the value the user sees
  double internal(const nlohmann::json& external) const;  // InputError when not in range
  nlohmann::json to_json() const;
  static Distribution from_json(const nlohmann::json& j);
  bool operator==(const Distribution& o) const;
  bool single() const;  // only one possible value
};

struct TrialRecord {
  int64_t id = -1;       // unique in the store
  int64_t study_id = -1;
  int64_t number = -1;   // 0, 1, ... within the study
  TrialState state = TrialState::Running;
  std::map<std::string, double> params;  // internal representation
  std::map<std::string, Distribution> distributions;
  std::vector<double> values;            // one per objective once complete (pruned: last intermediate)
  std::map<int64_t, std::vector<double>> intermediate;  // step -> one value per objective
  nlohmann::json user_attrs = nlohmann::json::object();
  nlohmann::json system_attrs = nlohmann::json::object();
  double start_time = 0;   // unix seconds
  double end_time = 0;     // 0 while running
  double heartbeat = 0;    // unix seconds of the last heartbeat

  nlohmann::json param_json() const;  // {name: external value}
  std::optional<int64_t> last_step() const;
};

struct StudyRecord {
  int64_t id = -1;
  std::string name;
  std::vector<Direction> directions;
  nlohmann::json user_attrs = nlohmann::json::object();
  nlohmann::json system_attrs = nlohmann::json::object();
  double created = 0;
  int64_t n_trials = 0;
  std::map<TrialState, int64_t> counts;
};

class StudyStore {
 public:
  virtual ~StudyStore() = default;
  virtual std::string url() const = 0;

  // Creates the study, or returns the id of the existing one of that name when its
  // directions match (InputError names both when they do not).
  virtual int64_t create_study(const std::string& name, const std::vector<Direction>& directions) = 0;
  virtual std::optional<StudyRecord> find_study(const std::string& name) = 0;
  virtual StudyRecord study(int64_t study_id) = 0;
  virtual std::vector<StudyRecord> list_studies() = 0;
  virtual void delete_study(int64_t study_id) = 0;
  virtual void set_study_user_attr(int64_t study_id, const std::string& key, const nlohmann::json& v) = 0;
  virtual void set_study_system_attr(int64_t study_id, const std::string& key, const nlohmann::json& v) = 0;

  // Starts a trial: the oldest Waiting trial of the study if there is one (its
  // params kept), otherwise a new one. Number assignment is atomic across processes.
  virtual TrialRecord start_trial(int64_t study_id) = 0;
  // Queues a trial with fixed parameters (a retry, or a user's enqueue); returns its id.
  virtual int64_t enqueue_trial(int64_t study_id, const std::map<std::string, double>& params,
                                const std::map<std::string, Distribution>& distributions,
                                const nlohmann::json& system_attrs) = 0;
  // Writes fail with InputError when the trial is not Running (e.g. it was failed by
  // another process after its heartbeat stopped).
  virtual void set_param(int64_t trial_id, const std::string& name, double internal, const Distribution& d) = 0;
  virtual void report(int64_t trial_id, int64_t step, const std::vector<double>& values) = 0;
  virtual void set_trial_user_attr(int64_t trial_id, const std::string& key, const nlohmann::json& v) = 0;
  virtual void set_trial_system_attr(int64_t trial_id, const std::string& key, const nlohmann::json& v) = 0;
  // Returns false (and changes nothing) when the trial is no longer Running.
  virtual bool finish_trial(int64_t trial_id, TrialState state, const std::vector<double>& values) = 0;
  virtual void heartbeat(int64_t trial_id) = 0;
  // Fails Running trials of the study whose heartbeat is older than grace_s seconds,
  // and, for each, queues a Waiting retry with the same parameters (system attrs
  // "retry_of": number, "retries": k) unless it already was retried max_retries times.
  // Returns the numbers of the trials failed.
  virtual std::vector<int64_t> fail_stale_trials(int64_t study_id, double grace_s, int max_retries) = 0;

  virtual TrialRecord trial(int64_t trial_id) = 0;
  virtual std::vector<TrialRecord> trials(int64_t study_id) = 0;  // ordered by number
  // The trials numbered first_number or above, ordered by number: what a reader that
  // caches a study (the dashboard) reloads, since a finished trial never changes.
  virtual std::vector<TrialRecord> trials_from(int64_t study_id, int64_t first_number) {
    auto all = trials(study_id);
    std::erase_if(all, [&](const TrialRecord& t) { return t.number < first_number; });
    return all;
  }
};

// "sqlite:///rel.db" (relative to the working folder), "sqlite:////abs/path.db"
// (absolute: SQLAlchemy's and Optuna's rule), a plain path (SQLite), or
// "postgresql://user@host:port/db" (libpq connection URI).
// InputError names the URL when it cannot be opened.
std::unique_ptr<StudyStore> open_study_store(const std::string& url);

// The schema as SQL, for the documentation and for tests ("sqlite" or "postgresql"):
// version 1 is the study store, 2 adds the run store (run_store.h). Opening an older
// database upgrades it in place.
constexpr int kSchemaVersion = 2;
std::string schema_sql(const std::string& dialect, int version = kSchemaVersion);

double unix_now();

}  // namespace deft::track
