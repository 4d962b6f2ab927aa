// The run store on real databases: a SQLite file in a temporary folder, and the same
// tests on PostgreSQL when DEFT_TEST_PG_URL names a server (ctest's store_postgres
// starts a throwaway one; each test works in a schema of its own, dropped afterwards).
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <optional>
#include <thread>

#include "../data/data_test_util.h"
#include "deft/tensor/error.h"
#include "deft/track/run_report.h"
#include "deft/track/run_store.h"
#include "deft/track/study_store.h"

namespace deft::track {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using deft::test_util::TempDir;
using tt::expect_input_error;

// The schema deft wrote before the run store (version 1), frozen here as it was: the
// upgrade test opens a database made with exactly this.
const char* kVersion1Schema = R"(CREATE TABLE IF NOT EXISTS deft_schema (
  version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS studies (
  id {id},
  name TEXT NOT NULL UNIQUE,
  directions TEXT NOT NULL,
  created {real} NOT NULL,
  next_number BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS study_user_attrs (
  study_id BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  PRIMARY KEY (study_id, key)
);
CREATE TABLE IF NOT EXISTS study_system_attrs (
  study_id BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  PRIMARY KEY (study_id, key)
);
CREATE TABLE IF NOT EXISTS trials (
  id {id},
  study_id BIGINT NOT NULL REFERENCES studies(id) ON DELETE CASCADE,
  number BIGINT NOT NULL,
  state TEXT NOT NULL,
  start_time {real} NOT NULL DEFAULT 0,
  end_time {real} NOT NULL DEFAULT 0,
  heartbeat {real} NOT NULL DEFAULT 0,
  UNIQUE (study_id, number)
);
CREATE INDEX IF NOT EXISTS trials_study_state ON trials (study_id, state, number);
CREATE TABLE IF NOT EXISTS trial_params (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  value {real},
  distribution TEXT NOT NULL,
  PRIMARY KEY (trial_id, name)
);
CREATE TABLE IF NOT EXISTS trial_values (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  objective INTEGER NOT NULL,
  value {real},
  PRIMARY KEY (trial_id, objective)
);
CREATE TABLE IF NOT EXISTS trial_intermediate_values (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  step BIGINT NOT NULL,
  objective INTEGER NOT NULL,
  value {real},
  PRIMARY KEY (trial_id, step, objective)
);
CREATE TABLE IF NOT EXISTS trial_user_attrs (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  PRIMARY KEY (trial_id, key)
);
CREATE TABLE IF NOT EXISTS trial_system_attrs (
  trial_id BIGINT NOT NULL REFERENCES trials(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value_json TEXT NOT NULL,
  PRIMARY KEY (trial_id, key)
);
)";

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

class RunStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      const char* base = std::getenv("DEFT_TEST_PG_URL");
      if (base == nullptr || *base == 0)
        GTEST_SKIP() << "DEFT_TEST_PG_URL is not set (ctest's store_postgres sets it with a throwaway server)";
      static int counter = 0;
      schema_ = "deft_runs_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
      admin_ = PQconnectdb(base);
      ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
      PQsetNoticeProcessor(admin_, [](void*, const char*) {}, nullptr);
      raw_sql("CREATE SCHEMA " + schema_);
      const std::string b = base;
      url_ = b + (b.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema_;
    } else {
      tmp_.emplace("deft-runs");
      dir_ = tmp_->path();
      url_ = "sqlite:///" + (dir_ / "runs.db").string();
    }
  }

  void TearDown() override {
    if (admin_ != nullptr) {
      if (!schema_.empty()) raw_sql("DROP SCHEMA " + schema_ + " CASCADE");
      PQfinish(admin_);
    }
  }

  std::unique_ptr<RunStore> open() { return open_run_store(url_); }

  // Runs SQL on the store's database behind the store's back; returns the first
  // column of the first row ("" when none).
  std::string raw_sql(const std::string& sql) {
    std::string first;
    if (admin_ != nullptr) {
      PGresult* r = PQexec(admin_, ("SET search_path TO " + schema_ + "; " + sql).c_str());
      const auto st = PQresultStatus(r);
      EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << PQerrorMessage(admin_);
      if (st == PGRES_TUPLES_OK && PQntuples(r) > 0) first = PQgetvalue(r, 0, 0);
      PQclear(r);
      return first;
    }
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_ / "runs.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    auto cb = [](void* out, int n, char** values, char**) {
      auto* s = static_cast<std::string*>(out);
      if (s->empty() && n > 0 && values[0]) *s = values[0];
      return 0;
    };
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), cb, &first, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return first;
  }

  std::string dialect() const { return GetParam(); }

  std::optional<TempDir> tmp_;  // SQLite: the database's folder, removed after the test
  fs::path dir_;
  std::string schema_;
  PGconn* admin_ = nullptr;
  std::string url_;
};

TEST_P(RunStoreTest, EveryFieldRoundTrips) {
  auto s = open();
  const json config = {{"data", "fashion-mnist"}, {"hidden", {128, 64}}, {"optimizer", {{"name", "adam"}}}};
  RunRecord in;
  in.name = "mlp-1";
  in.command = "trial";
  in.study = "fmnist";
  in.trial_number = 7;
  in.config = config;
  in.params = {{"lr", 0.001}, {"batch_size", 64}};
  in.system = system_info();
  in.artifacts = {{"log", "/tmp/log.csv"}};
  in.start_time = 1.7e9 + 0.25;
  const int64_t id = s->create_run(in);
  s->set_params(id, {{"optimizer", "adam"}, {"lr", 0.002}});  // merged: lr replaced, batch_size kept
  s->set_system(id, {{"note", "extra"}});
  s->set_artifact(id, "model", "/tmp/m.deft");
  const double inf = std::numeric_limits<double>::infinity();
  s->log_metrics(id, {{"loss", 1, 0.5, 1.7e9 + 1}, {"loss", 2, 0.25, 0}, {"val_loss", 1, NAN, 1.7e9 + 2},
                      {"weird", 1, inf, 0}, {"weird", 2, -inf, 0}, {"batch/loss", 100, 0.1 + 1e-17, 0}});
  RunRecord running = s->run(id);
  EXPECT_EQ(running.status, RunStatus::Running);
  EXPECT_EQ(running.end_time, 0);
  EXPECT_GE(running.heartbeat, running.start_time);
  s->finish_run(id, RunStatus::Finished, {{"test_accuracy", 0.875}, {"wall_s", 12.5}});

  const RunRecord r = s->run(id);
  EXPECT_EQ(r.id, id);
  EXPECT_EQ(r.name, "mlp-1");
  EXPECT_EQ(r.command, "trial");
  EXPECT_EQ(r.study, "fmnist");
  EXPECT_EQ(r.trial_number, 7);
  EXPECT_EQ(r.status, RunStatus::Finished);
  EXPECT_EQ(r.config, config);
  EXPECT_EQ(r.params, (json{{"lr", 0.002}, {"batch_size", 64}, {"optimizer", "adam"}}));
  EXPECT_EQ(r.system["note"], "extra");
  EXPECT_EQ(r.system["deft_version"], in.system["deft_version"]);
  EXPECT_EQ(r.artifacts, (json{{"log", "/tmp/log.csv"}, {"model", "/tmp/m.deft"}}));
  EXPECT_EQ(r.summary, (json{{"test_accuracy", 0.875}, {"wall_s", 12.5}}));
  EXPECT_EQ(r.start_time, 1.7e9 + 0.25);
  EXPECT_GT(r.end_time, r.start_time);
  EXPECT_EQ(r.pid, getpid());
  EXPECT_FALSE(r.host.empty());

  const auto loss = s->metrics(id, "loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_EQ(loss[0].key, "loss");
  EXPECT_EQ(loss[0].step, 1);
  EXPECT_EQ(loss[0].value, 0.5);
  EXPECT_EQ(loss[0].time, 1.7e9 + 1);
  EXPECT_GT(loss[1].time, 1.6e9);  // 0: the time of the call
  EXPECT_TRUE(std::isnan(s->metrics(id, "val_loss").at(0).value));
  const auto weird = s->metrics(id, "weird");
  EXPECT_EQ(weird.at(0).value, inf);
  EXPECT_EQ(weird.at(1).value, -inf);
  EXPECT_EQ(s->metrics(id, "batch/loss").at(0).value, 0.1 + 1e-17);  // bit for bit
  EXPECT_EQ(s->metric_keys(id), (std::vector<std::string>{"batch/loss", "loss", "val_loss", "weird"}));
  EXPECT_EQ(s->metrics(id).size(), 6u);
  EXPECT_TRUE(s->metrics(id, "nope").empty());

  // find_run by name or id, the report's JSON
  EXPECT_EQ(s->find_run("mlp-1")->id, id);
  EXPECT_EQ(s->find_run(std::to_string(id))->name, "mlp-1");
  EXPECT_FALSE(s->find_run("nope").has_value());
  EXPECT_EQ(run_json(r)["status"], "finished");
  expect_input_error([&] { s->run(id + 100); }, {"no run with id"});
  expect_input_error([&] { s->log_metrics(id + 100, {{"loss", 1, 1, 0}}); }, {"no run with id"});
  expect_input_error([&] { resolve_run(*s, "nope"); }, {"'nope'"});

  s->delete_run(id);
  EXPECT_FALSE(s->find_run("mlp-1").has_value());
  EXPECT_EQ(raw_sql("SELECT COUNT(*) FROM run_metrics"), "0");
}

TEST_P(RunStoreTest, BatchesUpsertAndSeriesComeBackInStepOrder) {
  auto s = open();
  const int64_t id = s->create_run({.name = "a"});
  std::vector<MetricPoint> batch;
  for (int64_t step = 250; step >= 1; --step) batch.push_back({"batch/loss", step, 1.0 / static_cast<double>(step), 0});
  batch.push_back({"batch/loss", 3, 42.0, 0});  // the same (key, step) twice in a batch: the last one wins
  s->log_metrics(id, batch);
  auto series = s->metrics(id, "batch/loss");
  ASSERT_EQ(series.size(), 250u);
  for (size_t i = 0; i < series.size(); ++i) EXPECT_EQ(series[i].step, static_cast<int64_t>(i) + 1);
  EXPECT_EQ(series[2].value, 42.0);
  EXPECT_EQ(series[249].value, 1.0 / 250);
  // logged again: replaced, not duplicated
  s->log_metrics(id, {{"batch/loss", 1, -1.0, 0}, {"batch/loss", 251, 7.0, 0}});
  series = s->metrics(id, "batch/loss");
  ASSERT_EQ(series.size(), 251u);
  EXPECT_EQ(series.front().value, -1.0);
  EXPECT_EQ(series.back().value, 7.0);
  s->log_metrics(id, {});  // nothing: fine
  expect_input_error([&] { s->log_metrics(id, {{"", 1, 1.0, 0}}); }, {"has no key"});
}

TEST_P(RunStoreTest, NamesAreUniqueAndUnnamedRunsAreNamedAfterTheirId) {
  auto s = open();
  const int64_t a = s->create_run({.command = "train"});
  EXPECT_EQ(s->run(a).name, "run-" + std::to_string(a));
  const int64_t b = s->create_run({.name = "mine"});
  expect_input_error([&] { s->create_run({.name = "mine"}); }, {"'mine' exists already"});
  // the name an unnamed run would get, taken by a user: the next unnamed one moves aside
  const std::string next = "run-" + std::to_string(b + 1);
  s->create_run({.name = next});
  const int64_t d = s->create_run({});
  EXPECT_EQ(s->run(d).name, "run-" + std::to_string(d));
  const int64_t e = create_run_unique(*s, {.name = "mine"});
  EXPECT_EQ(s->run(e).name, "mine-2");
  EXPECT_EQ(s->run(create_run_unique(*s, {.name = "mine"})).name, "mine-3");
  EXPECT_EQ(s->list_runs().size(), 6u);
}

TEST_P(RunStoreTest, ListIsNewestFirstAndFilters) {
  auto s = open();
  for (int i = 0; i < 3; ++i) s->create_run({.name = "t" + std::to_string(i), .command = "trial", .study = "s1", .trial_number = i});
  s->create_run({.name = "other", .command = "trial", .study = "s2", .trial_number = 0});
  const int64_t final_run = s->create_run({.name = "s1-final", .command = "auto", .study = "s1"});
  const int64_t plain = s->create_run({.name = "plain", .command = "train"});
  s->finish_run(plain, RunStatus::Failed, {{"error", "boom"}});
  expect_input_error([&] { s->finish_run(plain, RunStatus::Running, {}); }, {"finish_run"});

  auto names = [](const std::vector<RunRecord>& runs) {
    std::vector<std::string> out;
    for (const auto& r : runs) out.push_back(r.name);
    return out;
  };
  EXPECT_EQ(names(s->list_runs()), (std::vector<std::string>{"plain", "s1-final", "other", "t2", "t1", "t0"}));
  EXPECT_EQ(names(s->list_runs({.study = "s1"})), (std::vector<std::string>{"s1-final", "t2", "t1", "t0"}));
  EXPECT_EQ(names(s->list_runs({.study = "s1", .command = "trial", .limit = 2})), (std::vector<std::string>{"t2", "t1"}));
  EXPECT_EQ(names(s->list_runs({.status = "failed"})), (std::vector<std::string>{"plain"}));
  EXPECT_EQ(s->list_runs({.command = "auto"}).at(0).id, final_run);
  EXPECT_EQ(s->run(plain).summary["error"], "boom");
  EXPECT_TRUE(s->list_runs({.study = "none"}).empty());
}

TEST_P(RunStoreTest, AVersion1DatabaseIsUpgradedInPlace) {
  // a database as deft wrote it before the run store: schema version 1, one study
  const bool pg = dialect() == "postgresql";
  std::string v1 = replace_all(kVersion1Schema, "{id}", pg ? "BIGSERIAL PRIMARY KEY" : "INTEGER PRIMARY KEY AUTOINCREMENT");
  v1 = replace_all(v1, "{real}", pg ? "DOUBLE PRECISION" : "REAL");
  raw_sql(v1 + "INSERT INTO deft_schema (version) VALUES (1); "
               "INSERT INTO studies (name, directions, created, next_number) VALUES ('old', '[\"maximize\"]', 1.5e9, 1); "
               "INSERT INTO trials (study_id, number, state, start_time, end_time, heartbeat) "
               "VALUES (1, 0, 'complete', 1.5e9, 1.5e9, 1.5e9);");
  EXPECT_EQ(v1, schema_sql(dialect(), 1));  // the version-1 part of the schema is unchanged
  auto s = open();
  EXPECT_EQ(raw_sql("SELECT version FROM deft_schema"), std::to_string(kSchemaVersion));
  EXPECT_EQ(raw_sql("SELECT COUNT(*) FROM deft_schema"), "1");
  const int64_t id = s->create_run({.name = "after-upgrade"});
  s->log_metrics(id, {{"loss", 1, 0.5, 0}});
  EXPECT_EQ(s->metrics(id, "loss").size(), 1u);
  // the studies are untouched and still readable
  auto studies = open_study_store(url_);
  const auto old = studies->find_study("old");
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ(old->n_trials, 1);
  EXPECT_EQ(studies->trials(old->id).at(0).state, TrialState::Complete);
  // opening again changes nothing
  s = open();
  EXPECT_EQ(s->run(id).name, "after-upgrade");
  EXPECT_EQ(raw_sql("SELECT version FROM deft_schema"), std::to_string(kSchemaVersion));
}

TEST_P(RunStoreTest, NewerSchemaIsRefusedNamingTheVersion) {
  open();
  raw_sql("UPDATE deft_schema SET version = 99");
  expect_input_error([&] { open(); }, {"schema version 99"});
}

TEST_P(RunStoreTest, TwoThreadsLogToTheirOwnRunsAtOnce) {
  auto shared = open();
  const int64_t a = shared->create_run({.name = "a"}), b = shared->create_run({.name = "b"});
  // one thread on the shared store, one on a connection of its own
  auto own = open();
  auto work = [](RunStore* s, int64_t id) {
    for (int64_t epoch = 1; epoch <= 40; ++epoch) {
      std::vector<MetricPoint> pts;
      for (int64_t k = 0; k < 25; ++k) pts.push_back({"batch/loss", (epoch - 1) * 25 + k + 1, static_cast<double>(id), 0});
      pts.push_back({"loss", epoch, static_cast<double>(epoch), 0});
      s->log_metrics(id, pts);
      s->set_params(id, {{"epoch_" + std::to_string(epoch % 3), epoch}});
    }
  };
  std::thread t1(work, shared.get(), a), t2(work, own.get(), b);
  work(shared.get(), shared->create_run({.name = "c"}));  // and this thread on the shared store too
  t1.join();
  t2.join();
  for (int64_t id : {a, b}) {
    const auto batch = shared->metrics(id, "batch/loss");
    ASSERT_EQ(batch.size(), 1000u);
    for (const auto& p : batch) EXPECT_EQ(p.value, static_cast<double>(id));
    EXPECT_EQ(shared->metrics(id, "loss").size(), 40u);
    EXPECT_EQ(shared->run(id).params.size(), 3u);
  }
}

TEST_P(RunStoreTest, RunsOfADeadProcessAreReapedAsKilled) {
  auto s = open();
  const int64_t mine = s->create_run({.name = "alive"});
  // a run whose process has ended: this process's run, handed to a child that exited
  const int64_t orphan = s->create_run({.name = "orphan"});
  pid_t child = 0;
  char* argv[] = {const_cast<char*>("true"), nullptr};
  ASSERT_EQ(posix_spawnp(&child, "true", nullptr, nullptr, argv, environ), 0);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  raw_sql("UPDATE runs SET pid = " + std::to_string(child) + " WHERE id = " + std::to_string(orphan));
  EXPECT_EQ(s->run(orphan).status, RunStatus::Running);
  EXPECT_EQ(s->run(orphan).pid, child);
  EXPECT_EQ(s->reap_dead_runs(), std::vector<int64_t>{orphan});
  const RunRecord r = s->run(orphan);
  EXPECT_EQ(r.status, RunStatus::Killed);
  EXPECT_NE(r.summary.value("error", "").find("ended without finishing"), std::string::npos);
  EXPECT_EQ(s->run(mine).status, RunStatus::Running);  // this process is alive
  EXPECT_TRUE(s->reap_dead_runs().empty());
}

TEST_P(RunStoreTest, ReportsListShowAndCompare) {
  auto s = open();
  const int64_t a = s->create_run({.name = "ra", .command = "train", .params = {{"lr", 0.01}, {"batch_size", 32}}});
  const int64_t b = s->create_run({.name = "rb", .command = "train", .params = {{"lr", 0.001}, {"batch_size", 32}}});
  for (int64_t id : {a, b}) {
    std::vector<MetricPoint> pts;
    for (int64_t e = 1; e <= 3; ++e) {
      pts.push_back({"loss", e, 1.0 / static_cast<double>(e * id), 0});
      pts.push_back({"val_accuracy", e, 0.5 + 0.1 * static_cast<double>(e), 0});
    }
    s->log_metrics(id, pts);
    s->finish_run(id, RunStatus::Finished, {{"test_accuracy", id == a ? 0.81 : 0.83}});
  }
  const std::string list = format_run_list(*s, {}, "table");
  EXPECT_NE(list.find("test_accuracy=0.81"), std::string::npos) << list;
  EXPECT_LT(list.find(" rb "), list.find(" ra ")) << list;  // newest first
  EXPECT_EQ(json::parse(format_run_list(*s, {.limit = 1}, "json")).size(), 1u);
  const std::string show = format_run(*s, "ra", "table");
  EXPECT_NE(show.find("metrics per epoch"), std::string::npos) << show;
  EXPECT_NE(show.find("val_accuracy"), std::string::npos) << show;
  const json shown = json::parse(format_run(*s, std::to_string(b), "json"));
  EXPECT_EQ(shown["metrics"]["val_accuracy"]["steps"], json::array({1, 2, 3}));
  const std::string cmp = format_run_comparison(*s, {"ra", "rb"}, "table");
  EXPECT_NE(cmp.find("lr"), std::string::npos) << cmp;
  EXPECT_EQ(cmp.find("batch_size"), std::string::npos) << cmp;  // the same in both: not shown
  EXPECT_NE(cmp.find("val_accuracy per epoch"), std::string::npos) << cmp;
  const json cj = json::parse(format_run_comparison(*s, {"ra", "rb"}, "json"));
  EXPECT_EQ(cj["params_differ"]["lr"], json::array({0.01, 0.001}));
  EXPECT_EQ(cj["summary"]["test_accuracy"], json::array({0.81, 0.83}));
  expect_input_error([&] { format_run_comparison(*s, {"ra", "zz"}, "table"); }, {"'zz'"});
}

INSTANTIATE_TEST_SUITE_P(Sqlite, RunStoreTest, ::testing::Values("sqlite"));
INSTANTIATE_TEST_SUITE_P(Postgres, RunStoreTest, ::testing::Values("postgresql"));

TEST(RunStoreSystemInfo, NamesTheMachineAndTheLibraries) {
  const json s = system_info();
  for (const char* k : {"deft_version", "hostname", "cpu_model", "logical_cores", "threads", "onednn", "sqlite",
                        "compiler", "os"})
    EXPECT_TRUE(s.contains(k)) << k << " missing in " << s.dump();
  EXPECT_GE(s["logical_cores"].get<int>(), 1);
  EXPECT_EQ(s["sqlite"], sqlite3_libversion());
}

// log_metrics of 10,000 points: in batches of 100 (one transaction each) against one
// point per call. Prints the times; asserts nothing about them.
TEST(RunStoreTiming, BatchedAgainstOnePointPerCall) {
  const TempDir tmp("deft-runs");
  auto s = open_run_store("sqlite:///" + tmp.file("t.db"));
  const int64_t batched = s->create_run({.name = "batched"}), single = s->create_run({.name = "single"});
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  for (int64_t b = 0; b < 100; ++b) {
    std::vector<MetricPoint> pts;
    for (int64_t k = 0; k < 100; ++k) pts.push_back({"batch/loss", b * 100 + k + 1, 0.5, 0});
    s->log_metrics(batched, pts);
  }
  const double batched_s = std::chrono::duration<double>(clock::now() - t0).count();
  t0 = clock::now();
  for (int64_t k = 0; k < 10000; ++k) s->log_metrics(single, {{"batch/loss", k + 1, 0.5, 0}});
  const double single_s = std::chrono::duration<double>(clock::now() - t0).count();
  std::printf("[ timing ] SQLite log_metrics of 10000 points: batches of 100 %.3f s, one per call %.3f s (%.0fx)\n",
              batched_s, single_s, single_s / batched_s);
  EXPECT_EQ(s->metrics(batched, "batch/loss").size(), 10000u);
  EXPECT_EQ(s->metrics(single, "batch/loss").size(), 10000u);
}

}  // namespace
}  // namespace deft::track
