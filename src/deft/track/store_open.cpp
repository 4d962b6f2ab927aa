// open_study_store / open_run_store: pick the backend from the URL; schema_sql: the
// versioned schema (documented in docs/study_storage.md — change both together, bump
// kSchemaVersion, and add the upgrade from the previous version to kUpgrades).
#include <cmath>
#include <cstdlib>
#include <iterator>

#include "deft/track/sql_store.h"

namespace deft::track {

namespace {

// {id} is the auto-numbered key, {real} a double column, {without_rowid} SQLite's
// clustered-table clause; the rest is the same SQL. Version 1: the study store.
const char* kSchemaV1 = R"(CREATE TABLE IF NOT EXISTS deft_schema (
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

// Version 2 adds the run store: one row per run, and its metric series, one row per
// (run, key, step). The primary key of run_metrics is the index a series is read by
// (on SQLite the table itself, WITHOUT ROWID, is stored in that order).
const char* kSchemaV2 = R"(CREATE TABLE IF NOT EXISTS runs (
  id {id},
  name TEXT NOT NULL UNIQUE,
  command TEXT NOT NULL DEFAULT '',
  study TEXT NOT NULL DEFAULT '',
  trial_number BIGINT NOT NULL DEFAULT -1,
  status TEXT NOT NULL,
  config_json TEXT NOT NULL DEFAULT '{}',
  params_json TEXT NOT NULL DEFAULT '{}',
  system_json TEXT NOT NULL DEFAULT '{}',
  artifacts_json TEXT NOT NULL DEFAULT '{}',
  summary_json TEXT NOT NULL DEFAULT '{}',
  start_time {real} NOT NULL DEFAULT 0,
  end_time {real} NOT NULL DEFAULT 0,
  heartbeat {real} NOT NULL DEFAULT 0,
  host TEXT NOT NULL DEFAULT '',
  pid BIGINT NOT NULL DEFAULT 0,
  pid_start BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_study ON runs (study, trial_number);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status, host);
CREATE TABLE IF NOT EXISTS run_metrics (
  run_id BIGINT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  step BIGINT NOT NULL,
  value {real},
  wall_time {real} NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, key, step)
){without_rowid};
)";

// kUpgrades[v - 1]: the DDL that takes version v to v + 1.
const char* const kUpgrades[] = {kSchemaV2};
static_assert(std::size(kUpgrades) == kSchemaVersion - 1, "one upgrade per version step");

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string in_dialect(const std::string& ddl, const std::string& dialect) {
  if (dialect == "sqlite")
    return replace_all(replace_all(replace_all(ddl, "{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"), "{real}", "REAL"),
                       "{without_rowid}", " WITHOUT ROWID");
  if (dialect == "postgresql")
    return replace_all(replace_all(replace_all(ddl, "{id}", "BIGSERIAL PRIMARY KEY"), "{real}", "DOUBLE PRECISION"),
                       "{without_rowid}", "");
  fail("schema_sql: unknown dialect '{}' (expected sqlite or postgresql)", dialect);
}

}  // namespace

std::string schema_sql(const std::string& dialect, int version) {
  DEFT_CHECK(version >= 1 && version <= kSchemaVersion, "schema_sql: no schema version {} (1 to {})", version,
             kSchemaVersion);
  std::string ddl = kSchemaV1;
  for (int v = 1; v < version; ++v) ddl += kUpgrades[v - 1];
  return in_dialect(ddl, dialect);
}

std::string schema_upgrade_sql(const std::string& dialect, int from) {
  DEFT_CHECK(from >= 1 && from <= kSchemaVersion, "schema_upgrade_sql: no schema version {}", from);
  std::string ddl;
  for (int v = from; v < kSchemaVersion; ++v) ddl += kUpgrades[v - 1];
  return in_dialect(ddl, dialect);
}

std::unique_ptr<SqlConnection> open_sql_connection(const std::string& url, const std::string& what) {
  DEFT_CHECK(!url.empty(), "{}: empty storage URL (expected sqlite:///FILE or postgresql://...)", what);
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://")) return open_postgres_connection(url);
  std::string path = url;
  if (starts_with(url, "sqlite:")) {
    // As in SQLAlchemy and Optuna: sqlite:///rel.db is relative to the working
    // folder, sqlite:////abs/path.db is absolute.
    DEFT_CHECK(starts_with(url, "sqlite:///"), "{} URL '{}': expected sqlite:///FILE", what, url);
    path = url.substr(std::string("sqlite:///").size());
  } else if (url.find("://") != std::string::npos) {
    fail("{} URL '{}': unknown scheme (expected sqlite:///FILE or postgresql://user@host:port/db)", what, url);
  }
  DEFT_CHECK(!path.empty(), "{} URL '{}': no file name", what, url);
  return open_sqlite_connection(url, path);
}

std::unique_ptr<StudyStore> open_study_store(const std::string& url) {
  return make_sql_study_store(open_sql_connection(url, "study store"));
}

std::unique_ptr<RunStore> open_run_store(const std::string& url) {
  return make_sql_run_store(open_sql_connection(url, "run store"));
}

int64_t sql_int(const SqlValue& v) {
  if (const auto* i = std::get_if<int64_t>(&v)) return *i;
  if (const auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtoll(s->c_str(), nullptr, 10);
  fail<Error>("study store: NULL where an integer was expected");
}

double sql_real(const SqlValue& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* i = std::get_if<int64_t>(&v)) return static_cast<double>(*i);
  if (const auto* s = std::get_if<std::string>(&v)) return std::strtod(s->c_str(), nullptr);  // "Infinity" too
  return std::nan("");
}

std::string sql_text(const SqlValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<int64_t>(&v)) return std::to_string(*i);
  fail<Error>("study store: expected a text column");
}

bool sql_null(const SqlValue& v) { return std::holds_alternative<std::monostate>(v); }

}  // namespace deft::track
