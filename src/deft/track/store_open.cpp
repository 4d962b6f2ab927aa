// open_study_store: picks the backend from the URL; schema_sql: the versioned schema
// (documented in docs/study_storage.md — change both together, and bump kSchemaVersion).
#include <cmath>
#include <cstdlib>

#include "deft/track/sql_store.h"

namespace deft::track {

namespace {

// {id} is the auto-numbered key, {real} a double column; the rest is the same SQL.
const char* kSchemaTemplate = R"(CREATE TABLE IF NOT EXISTS deft_schema (
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
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
    s.replace(at, from.size(), to);
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::string schema_sql(const std::string& dialect) {
  if (dialect == "sqlite")
    return replace_all(replace_all(kSchemaTemplate, "{id}", "INTEGER PRIMARY KEY AUTOINCREMENT"), "{real}", "REAL");
  if (dialect == "postgresql")
    return replace_all(replace_all(kSchemaTemplate, "{id}", "BIGSERIAL PRIMARY KEY"), "{real}",
                       "DOUBLE PRECISION");
  fail("schema_sql: unknown dialect '{}' (expected sqlite or postgresql)", dialect);
}

std::unique_ptr<StudyStore> open_study_store(const std::string& url) {
  DEFT_CHECK(!url.empty(), "study store: empty storage URL (expected sqlite:///FILE or postgresql://...)");
  if (starts_with(url, "postgresql://") || starts_with(url, "postgres://"))
    return make_sql_study_store(open_postgres_connection(url));
  std::string path = url;
  if (starts_with(url, "sqlite:")) {
    // As in SQLAlchemy and Optuna: sqlite:///rel.db is relative to the working
    // folder, sqlite:////abs/path.db is absolute.
    DEFT_CHECK(starts_with(url, "sqlite:///"), "study store URL '{}': expected sqlite:///FILE", url);
    path = url.substr(std::string("sqlite:///").size());
  } else if (url.find("://") != std::string::npos) {
    fail("study store URL '{}': unknown scheme (expected sqlite:///FILE or postgresql://user@host:port/db)", url);
  }
  DEFT_CHECK(!path.empty(), "study store URL '{}': no file name", url);
  return make_sql_study_store(open_sqlite_connection(url, path));
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
