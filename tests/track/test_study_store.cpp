// The study store on real databases: a SQLite file in a temporary folder, and the
// same tests on PostgreSQL when DEFT_TEST_PG_URL names a server (ctest's
// store_postgres starts a throwaway one with tests/track/pg_test_server.sh). Each
// PostgreSQL test works in a schema of its own, dropped afterwards.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "deft/tensor/error.h"
#include "deft/track/study_store.h"

namespace deft::track {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const double kInf = std::numeric_limits<double>::infinity();

template <class Fn>
void expect_input_error(Fn&& fn, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "expected an InputError mentioning '" << needle << "'";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

fs::path make_temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "deft-store-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

class StudyStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgresql") {
      const char* base = std::getenv("DEFT_TEST_PG_URL");
      if (base == nullptr || *base == 0)
        GTEST_SKIP() << "DEFT_TEST_PG_URL is not set (ctest's store_postgres sets it with a throwaway server)";
      static int counter = 0;
      schema_ = "deft_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
      admin_ = PQconnectdb(base);
      ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
      PQsetNoticeProcessor(admin_, [](void*, const char*) {}, nullptr);  // "drop cascades to ..."
      raw_sql("CREATE SCHEMA " + schema_);
      const std::string b = base;
      url_ = b + (b.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema_;
    } else {
      dir_ = make_temp_dir();
      url_ = "sqlite:///" + (dir_ / "study.db").string();
    }
    store_ = open_study_store(url_);
  }

  void TearDown() override {
    store_.reset();
    if (admin_ != nullptr) {
      if (!schema_.empty()) raw_sql("DROP SCHEMA " + schema_ + " CASCADE");
      PQfinish(admin_);
    }
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // Runs SQL on the store's database behind the store's back.
  void raw_sql(const std::string& sql) {
    if (admin_ != nullptr) {
      PGresult* r = PQexec(admin_, ("SET search_path TO " + schema_ + "; " + sql).c_str());
      const auto st = PQresultStatus(r);
      EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) << PQerrorMessage(admin_);
      PQclear(r);
      return;
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "study.db").c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  fs::path dir_;
  std::string schema_;
  PGconn* admin_ = nullptr;
  std::string url_;
  std::unique_ptr<StudyStore> store_;
};

TEST_P(StudyStoreTest, StudiesRoundTrip) {
  StudyStore& s = *store_;
  const int64_t a = s.create_study("alpha", {Direction::Maximize});
  const int64_t b = s.create_study("beta", {Direction::Minimize, Direction::Maximize});
  EXPECT_NE(a, b);
  EXPECT_EQ(s.create_study("alpha", {Direction::Maximize}), a);  // existing one, same directions
  expect_input_error([&] { s.create_study("alpha", {Direction::Minimize}); }, "[\"maximize\"]");
  expect_input_error([&] { s.create_study("alpha", {Direction::Minimize}); }, "[\"minimize\"]");

  s.set_study_user_attr(a, "dataset", "fashion-mnist");
  s.set_study_user_attr(a, "dataset", "mnist");  // overwrite
  s.set_study_system_attr(a, "space", json{{"lr", {1e-4, 0.1}}, {"layers", json::array({1, 2, 3})}});
  const auto found = s.find_study("alpha");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, a);
  EXPECT_EQ(found->name, "alpha");
  EXPECT_EQ(found->directions, std::vector<Direction>{Direction::Maximize});
  EXPECT_EQ(found->user_attrs, (json{{"dataset", "mnist"}}));
  EXPECT_EQ(found->system_attrs["space"]["layers"], json::array({1, 2, 3}));
  EXPECT_GT(found->created, 1.6e9);
  EXPECT_FALSE(s.find_study("gamma").has_value());
  EXPECT_EQ(s.study(b).directions, (std::vector<Direction>{Direction::Minimize, Direction::Maximize}));

  s.start_trial(a);
  const TrialRecord t = s.start_trial(a);
  s.finish_trial(t.id, TrialState::Complete, {1.0});
  const StudyRecord sa = s.study(a);
  EXPECT_EQ(sa.n_trials, 2);
  EXPECT_EQ(sa.counts.at(TrialState::Running), 1);
  EXPECT_EQ(sa.counts.at(TrialState::Complete), 1);

  auto all = s.list_studies();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "alpha");
  EXPECT_EQ(all[1].name, "beta");

  s.delete_study(a);
  EXPECT_FALSE(s.find_study("alpha").has_value());
  EXPECT_EQ(s.list_studies().size(), 1u);
  expect_input_error([&] { s.trial(t.id); }, "no trial with id");
  expect_input_error([&] { s.study(a); }, "no study with id");
  // The name is free again, and numbering starts over.
  const int64_t again = s.create_study("alpha", {Direction::Minimize});
  EXPECT_EQ(s.start_trial(again).number, 0);
}

TEST_P(StudyStoreTest, TrialsRoundTripEverything) {
  StudyStore& s = *store_;
  const int64_t sid = s.create_study("rt", {Direction::Minimize, Direction::Maximize, Direction::Minimize});
  const TrialRecord t = s.start_trial(sid);
  EXPECT_EQ(t.number, 0);
  EXPECT_EQ(t.study_id, sid);
  EXPECT_EQ(t.state, TrialState::Running);
  EXPECT_GT(t.start_time, 1.6e9);
  EXPECT_GT(t.heartbeat, 1.6e9);
  EXPECT_EQ(t.end_time, 0);

  const std::map<std::string, Distribution> dists = {
      {"lr", Distribution::float_range(1e-5, 0.3, true)},
      {"dropout", Distribution::float_range(0, 0.5, false, 0.125)},
      {"units", Distribution::int_range(16, 512, true)},
      {"layers", Distribution::int_range(1, 9, false, 2)},
      {"opt", Distribution::categorical({"adam", 3, nullptr, true, 0.5, json{{"k", "v"}}})},
  };
  const std::map<std::string, double> values = {
      {"lr", 0.1 + 0.2}, {"dropout", 0.375}, {"units", 128}, {"layers", 7}, {"opt", 5}};
  for (const auto& [name, v] : values) s.set_param(t.id, name, v, dists.at(name));
  s.report(t.id, 1, {0.5, 1e-300, -2.25});
  s.report(t.id, 3, {std::nan(""), kInf, -kInf});
  s.report(t.id, 2, {1.0 / 3.0, 2, 3});
  s.report(t.id, 2, {0.25, 2, 3});  // a step reported again replaces the values
  s.set_trial_user_attr(t.id, "note", "first");
  s.set_trial_user_attr(t.id, "curve", json::array({1.5, 2.5}));
  s.set_trial_system_attr(t.id, "seed", 42);
  s.heartbeat(t.id);
  ASSERT_TRUE(s.finish_trial(t.id, TrialState::Complete, {std::nan(""), kInf, -kInf}));

  const TrialRecord u = s.trial(t.id);
  EXPECT_EQ(u.state, TrialState::Complete);
  EXPECT_EQ(u.params, values);
  EXPECT_EQ(u.distributions, dists);
  EXPECT_EQ(u.param_json()["opt"], json({{"k", "v"}}));
  EXPECT_EQ(u.param_json()["units"], 128);
  ASSERT_EQ(u.values.size(), 3u);
  EXPECT_TRUE(std::isnan(u.values[0]));
  EXPECT_EQ(u.values[1], kInf);
  EXPECT_EQ(u.values[2], -kInf);
  ASSERT_EQ(u.intermediate.size(), 3u);
  EXPECT_EQ(u.intermediate.at(1), (std::vector<double>{0.5, 1e-300, -2.25}));
  EXPECT_EQ(u.intermediate.at(2), (std::vector<double>{0.25, 2, 3}));
  EXPECT_TRUE(std::isnan(u.intermediate.at(3)[0]));
  EXPECT_EQ(u.intermediate.at(3)[1], kInf);
  EXPECT_EQ(u.intermediate.at(3)[2], -kInf);
  EXPECT_EQ(u.last_step(), 3);
  EXPECT_EQ(u.user_attrs, (json{{"note", "first"}, {"curve", {1.5, 2.5}}}));
  EXPECT_EQ(u.system_attrs, (json{{"seed", 42}}));
  EXPECT_GE(u.end_time, u.start_time);
  EXPECT_GE(u.heartbeat, t.heartbeat);

  // More trials number on; trials() comes ordered by number, complete with everything.
  const TrialRecord t1 = s.start_trial(sid);
  const TrialRecord t2 = s.start_trial(sid);
  EXPECT_EQ(t1.number, 1);
  EXPECT_EQ(t2.number, 2);
  s.report(t2.id, 0, {1, 2, 3});
  EXPECT_TRUE(s.finish_trial(t2.id, TrialState::Pruned, {}));  // pruned: the last intermediate values
  const auto all = s.trials(sid);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].params, values);
  EXPECT_EQ(all[0].intermediate.at(2), u.intermediate.at(2));
  EXPECT_EQ(all[1].state, TrialState::Running);
  EXPECT_EQ(all[2].state, TrialState::Pruned);
  EXPECT_EQ(all[2].values, (std::vector<double>{1, 2, 3}));

  // A second store on the same URL sees it all and numbers on.
  auto other = open_study_store(url_);
  EXPECT_EQ(other->trial(t.id).params, values);
  EXPECT_EQ(other->start_trial(sid).number, 3);
}

TEST_P(StudyStoreTest, WritesToFinishedTrialsAreRejected) {
  StudyStore& s = *store_;
  const int64_t sid = s.create_study("done", {Direction::Maximize});
  const TrialRecord t = s.start_trial(sid);
  expect_input_error([&] { s.report(t.id, 0, {1, 2}); }, "1 objective(s), got 2 value(s)");
  expect_input_error([&] { s.finish_trial(t.id, TrialState::Complete, {}); }, "got 0 value(s)");
  expect_input_error([&] { s.finish_trial(t.id, TrialState::Running, {1}); }, "not running");
  ASSERT_TRUE(s.finish_trial(t.id, TrialState::Complete, {0.75}));
  const std::string why = "trial 0 of study 'done' is complete, not running";
  expect_input_error([&] { s.set_param(t.id, "x", 0.5, Distribution::float_range(0, 1)); }, why);
  expect_input_error([&] { s.report(t.id, 1, {0.5}); }, why);
  expect_input_error([&] { s.set_trial_user_attr(t.id, "k", 1); }, why);
  expect_input_error([&] { s.set_trial_system_attr(t.id, "k", 1); }, why);
  EXPECT_FALSE(s.finish_trial(t.id, TrialState::Fail, {}));
  s.heartbeat(t.id);  // changes nothing
  const TrialRecord u = s.trial(t.id);
  EXPECT_EQ(u.state, TrialState::Complete);
  EXPECT_EQ(u.values, std::vector<double>{0.75});
  EXPECT_TRUE(u.params.empty());
  EXPECT_TRUE(u.intermediate.empty());
}

TEST_P(StudyStoreTest, WaitingTrialsStartFirst) {
  StudyStore& s = *store_;
  const int64_t sid = s.create_study("queue", {Direction::Minimize});
  const Distribution lr = Distribution::float_range(1e-4, 1, true);
  const Distribution act = Distribution::categorical({"relu", "gelu"});
  const int64_t q0 = s.enqueue_trial(sid, {{"lr", 0.01}, {"act", 1}}, {{"lr", lr}, {"act", act}}, {{"origin", "user"}});
  const int64_t q1 = s.enqueue_trial(sid, {{"lr", 0.02}}, {{"lr", lr}}, json::object());
  EXPECT_EQ(s.trial(q0).state, TrialState::Waiting);
  EXPECT_EQ(s.study(sid).counts.at(TrialState::Waiting), 2);
  expect_input_error([&] { s.report(q0, 0, {1}); }, "trial 0 of study 'queue' is waiting, not running");

  const TrialRecord a = s.start_trial(sid);  // the oldest waiting one first
  EXPECT_EQ(a.id, q0);
  EXPECT_EQ(a.number, 0);
  EXPECT_EQ(a.state, TrialState::Running);
  EXPECT_EQ(a.params, (std::map<std::string, double>{{"lr", 0.01}, {"act", 1}}));
  EXPECT_EQ(a.distributions.at("act"), act);
  EXPECT_EQ(a.param_json()["act"], "gelu");
  EXPECT_EQ(a.system_attrs, (json{{"origin", "user"}}));
  EXPECT_GT(a.start_time, 1.6e9);
  const TrialRecord b = s.start_trial(sid);
  EXPECT_EQ(b.id, q1);
  EXPECT_EQ(b.params.at("lr"), 0.02);
  const TrialRecord c = s.start_trial(sid);  // queue empty: a new trial
  EXPECT_EQ(c.number, 2);
  EXPECT_TRUE(c.params.empty());
  expect_input_error([&] { s.enqueue_trial(sid, {{"x", 1}}, {}, json::object()); }, "has no distribution");
}

TEST_P(StudyStoreTest, FailStaleTrialsQueuesRetries) {
  StudyStore& s = *store_;
  const int64_t sid = s.create_study("stale", {Direction::Minimize});
  const Distribution d = Distribution::int_range(1, 10);
  const TrialRecord lost = s.start_trial(sid);
  s.set_param(lost.id, "k", 3, d);
  s.set_trial_system_attr(lost.id, "seed", 7);
  // Margins of a second: on a loaded 2-core machine a PostgreSQL round trip can take
  // a few hundred milliseconds, which made 0.3 s grace fail the fresh trial now and then.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const TrialRecord alive = s.start_trial(sid);  // fresh heartbeat
  EXPECT_EQ(s.fail_stale_trials(sid, 1.0, 1), std::vector<int64_t>{0});
  EXPECT_TRUE(s.fail_stale_trials(sid, 1.0, 1).empty());  // nothing more to do

  const auto all = s.trials(sid);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].state, TrialState::Fail);
  EXPECT_GT(all[0].end_time, 0);
  EXPECT_EQ(all[1].state, TrialState::Running);
  EXPECT_EQ(all[2].state, TrialState::Waiting);
  EXPECT_EQ(all[2].params, (std::map<std::string, double>{{"k", 3}}));
  EXPECT_EQ(all[2].distributions.at("k"), d);
  EXPECT_EQ(all[2].system_attrs, (json{{"retry_of", 0}, {"retries", 1}}));
  // The lost worker's writes now fail; its finish changes nothing.
  expect_input_error([&] { s.report(lost.id, 1, {0.5}); }, "trial 0 of study 'stale' is fail, not running");
  EXPECT_FALSE(s.finish_trial(lost.id, TrialState::Complete, {0.5}));

  // The retry runs and is lost too: failed, but max_retries = 1 queues no third try.
  const TrialRecord retry = s.start_trial(sid);
  EXPECT_EQ(retry.number, 2);
  EXPECT_EQ(retry.params.at("k"), 3);
  s.heartbeat(alive.id);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  s.heartbeat(alive.id);
  EXPECT_EQ(s.fail_stale_trials(sid, 1.0, 1), std::vector<int64_t>{2});
  EXPECT_EQ(s.trial(alive.id).state, TrialState::Running);
  EXPECT_EQ(s.study(sid).n_trials, 3);
  EXPECT_EQ(s.start_trial(sid).number, 3);  // a new trial, not a retry
}

TEST_P(StudyStoreTest, NewerSchemaVersionIsRejected) {
  store_->create_study("kept", {Direction::Minimize});
  store_.reset();
  raw_sql("UPDATE deft_schema SET version = 99");
  try {
    open_study_store(url_);
    ADD_FAILURE() << "a store with schema version 99 opened";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("schema version 99"), std::string::npos) << what;
    EXPECT_NE(what.find(GetParam() == "sqlite" ? url_ : "postgresql://"), std::string::npos) << what;
  }
  raw_sql("UPDATE deft_schema SET version = " + std::to_string(kSchemaVersion));
  store_ = open_study_store(url_);
  EXPECT_TRUE(store_->find_study("kept").has_value());
}

TEST_P(StudyStoreTest, UnknownIdsAreInputErrors) {
  StudyStore& s = *store_;
  expect_input_error([&] { s.start_trial(12345); }, "no study with id 12345");
  expect_input_error([&] { s.trials(12345); }, "no study with id 12345");
  expect_input_error([&] { s.set_study_user_attr(12345, "a", 1); }, "no study with id 12345");
  expect_input_error([&] { s.report(777, 0, {1}); }, "no trial with id 777");
  expect_input_error([&] { s.finish_trial(777, TrialState::Complete, {1}); }, "no trial with id 777");
  expect_input_error([&] { s.fail_stale_trials(12345, 1, 1); }, "no study with id 12345");
}

INSTANTIATE_TEST_SUITE_P(Sqlite, StudyStoreTest, ::testing::Values("sqlite"));
INSTANTIATE_TEST_SUITE_P(Postgres, StudyStoreTest, ::testing::Values("postgresql"));

TEST(StudyStoreOpen, GarbageFileIsInputErrorNamingIt) {
  const fs::path dir = make_temp_dir();
  const std::string path = (dir / "garbage.db").string();
  {
    std::ofstream f(path, std::ios::binary);
    for (int i = 0; i < 4096; ++i) f.put(static_cast<char>((i * 7919 + 13) % 251));
  }
  expect_input_error([&] { open_study_store(path); }, path);
  expect_input_error([&] { open_study_store("sqlite:///" + path); }, "not a database");
  fs::remove_all(dir);
}

TEST(StudyStoreOpen, BadUrlsAreInputErrors) {
  const fs::path dir = make_temp_dir();
  const std::string missing = (dir / "no" / "such" / "folder" / "x.db").string();
  expect_input_error([&] { open_study_store(missing); }, missing);
  expect_input_error([&] { open_study_store(dir.string()); }, dir.string());  // a folder, not a file
  expect_input_error([&] { open_study_store("mysql://u@h/db"); }, "mysql://u@h/db");
  expect_input_error([&] { open_study_store("sqlite://x.db"); }, "sqlite://x.db");
  expect_input_error([&] { open_study_store(""); }, "empty");
  // Port 1 on loopback: nothing listens, the connection is refused at once.
  expect_input_error([&] { open_study_store("postgresql://nobody:secret@127.0.0.1:1/none"); },
                     "postgresql://nobody:***@127.0.0.1:1/none");
  fs::remove_all(dir);
}

TEST(StudyStoreOpen, PlainPathAndUrlAreTheSameFile) {
  const fs::path dir = make_temp_dir();
  const std::string path = (dir / "same.db").string();
  open_study_store(path)->create_study("s", {Direction::Maximize});
  EXPECT_TRUE(open_study_store("sqlite:///" + path)->find_study("s").has_value());  // sqlite:////abs/path
  fs::remove_all(dir);
}

TEST(StudyStoreOpen, SchemaSqlNamesEveryTable) {
  for (const std::string dialect : {"sqlite", "postgresql"}) {
    const std::string sql = schema_sql(dialect);
    for (const char* table : {"deft_schema", "studies", "study_user_attrs", "study_system_attrs", "trials",
                              "trial_params", "trial_values", "trial_intermediate_values", "trial_user_attrs",
                              "trial_system_attrs"})
      EXPECT_NE(sql.find(std::string("CREATE TABLE IF NOT EXISTS ") + table + " ("), std::string::npos)
          << dialect << " " << table;
    EXPECT_NE(sql.find("UNIQUE (study_id, number)"), std::string::npos);
  }
  EXPECT_NE(schema_sql("postgresql").find("BIGSERIAL"), std::string::npos);
  expect_input_error([] { schema_sql("oracle"); }, "oracle");
}

}  // namespace
}  // namespace deft::track
