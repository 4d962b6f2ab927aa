// The run store: every `deft train` run and every trial of a study is a run, with its
// resolved configuration, parameters, system information, metric series, artifacts,
// timings and final status. It lives in the same database as the studies
// (open_run_store takes the same URLs as open_study_store), in its own tables:
// runs, and run_metrics for the series (one row per (run, key, step)), written in
// batches so a run with many steps costs few transactions.
//
//   auto runs = open_run_store("sqlite:///deft.db");
//   int64_t id = runs->create_run({.name = "mlp-1", .command = "train", .config = cfg});
//   runs->log_metrics(id, {{"loss", 1, 0.41, t}, {"accuracy", 1, 0.86, t}});
//   runs->set_artifact(id, "model", "mlp.deft");
//   runs->finish_run(id, RunStatus::Finished, {{"test_accuracy", 0.88}});
//
// Every call is one transaction (retried while the database is busy, as the study
// store's); one store object may be shared by threads. A run records the host and
// process that created it: reap_dead_runs() marks the running runs of this host whose
// process is gone (SIGKILL, a crash) as killed, and RunSignalGuard marks a process's
// runs killed when SIGINT/SIGTERM ends it. The tables are in docs/study_storage.md.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include <nlohmann/json.hpp>

namespace deft::track {

enum class RunStatus { Running, Finished, Failed, Killed };
std::string to_string(RunStatus s);  // "running", "finished", "failed", "killed"
RunStatus run_status_from_string(const std::string& s);

struct RunRecord {
  int64_t id = -1;
  std::string name;                 // unique in the store ("" on create: "run-<id>")
  std::string command;              // "train", "auto", "trial", ...
  std::string study;                // the study's name for trials, else ""
  int64_t trial_number = -1;        // the trial's number within its study, else -1
  RunStatus status = RunStatus::Running;
  nlohmann::json config = nlohmann::json::object();     // the resolved configuration
  nlohmann::json params = nlohmann::json::object();     // hyperparameters {name: value}
  nlohmann::json system = nlohmann::json::object();     // system_info() and anything else
  nlohmann::json artifacts = nlohmann::json::object();  // {"model": path, "checkpoint": path, ...}
  nlohmann::json summary = nlohmann::json::object();    // final metrics {name: number}
  double start_time = 0;            // unix seconds
  double end_time = 0;              // 0 while running
  // Set by the store: the last write to the run (unix seconds), and the host name and
  // process id of the process that created it.
  double heartbeat = 0;
  std::string host;
  int64_t pid = 0;

  double duration() const;  // end (or last heartbeat while running) - start, seconds
};

struct MetricPoint {
  std::string key;   // "loss", "val_accuracy", "lr", "batch/loss", ...
  int64_t step = 0;  // the epoch (1-based) for per-epoch keys, the global batch for "batch/..." keys
  double value = 0;
  double time = 0;   // unix seconds
};

struct RunFilter {
  std::string study;          // only this study's runs ("" = all)
  std::string command;        // "" = all
  std::string status;         // "running", "finished", ... ("" = all)
  int64_t limit = 0;          // 0 = no limit; newest first
};

class RunStore {
 public:
  virtual ~RunStore() = default;
  virtual std::string url() const = 0;

  // Returns the id; start_time = now when 0; status, heartbeat, host and pid are set by
  // the store. InputError when the name is taken.
  virtual int64_t create_run(const RunRecord& r) = 0;
  virtual void set_params(int64_t run_id, const nlohmann::json& params) = 0;  // merged
  virtual void set_config(int64_t run_id, const nlohmann::json& config) = 0;
  virtual void set_system(int64_t run_id, const nlohmann::json& system) = 0;  // merged
  virtual void set_artifact(int64_t run_id, const std::string& name, const std::string& path) = 0;
  // One transaction for the whole batch; a (key, step) logged again replaces the value.
  virtual void log_metrics(int64_t run_id, const std::vector<MetricPoint>& points) = 0;
  // Sets the status (not Running), the end time and the summary (merged into what the
  // run's summary holds).
  virtual void finish_run(int64_t run_id, RunStatus status, const nlohmann::json& summary) = 0;

  virtual std::optional<RunRecord> find_run(const std::string& name_or_id) = 0;
  virtual RunRecord run(int64_t run_id) = 0;  // InputError when there is none
  virtual std::vector<RunRecord> list_runs(const RunFilter& f = {}) = 0;
  virtual std::vector<std::string> metric_keys(int64_t run_id) = 0;
  // The series of one key ordered by step, or of every key when key is "".
  virtual std::vector<MetricPoint> metrics(int64_t run_id, const std::string& key = "") = 0;
  virtual void delete_run(int64_t run_id) = 0;
  // Marks the running runs created on this host by a process that no longer exists
  // killed (end time: their last heartbeat; summary.error says why). Returns their ids.
  virtual std::vector<int64_t> reap_dead_runs() = 0;
};

// Same URLs as open_study_store (study_store.h); the same database holds both.
std::unique_ptr<RunStore> open_run_store(const std::string& url);

// create_run with r.name, or, when that is taken, r.name-2, r.name-3, ... Returns the id.
int64_t create_run_unique(RunStore& store, RunRecord r);

// While it lives, SIGINT and SIGTERM (where their action is the default one) first
// mark the watched runs killed, waiting at most 2 s for the database, and then end the
// process as the signal would have. A second signal ends it at once. One guard at a
// time: a guard made while another lives watches nothing.
class RunSignalGuard {
 public:
  explicit RunSignalGuard(RunStore& store);
  ~RunSignalGuard();
  RunSignalGuard(const RunSignalGuard&) = delete;
  RunSignalGuard& operator=(const RunSignalGuard&) = delete;
  void watch(int64_t run_id);
  void unwatch(int64_t run_id);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// deft's version and git commit, host, CPU model, cores, threads, oneDNN/SQLite/compiler
// versions, OS: what the run store records in every run's "system".
nlohmann::json system_info();

}  // namespace deft::track
