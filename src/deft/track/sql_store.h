// Internal to the study store: the few things a SQL database has to offer
// (SqliteConnection, PostgresConnection), and the one StudyStore written on top of
// them (sql_store.cpp), so both backends share every query and every rule.
//
// SQL is written once with `?` placeholders; the PostgreSQL connection renumbers
// them to $1, $2, ... Values travel as SqlValue: NULL, integer, real or text.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "deft/tensor/error.h"
#include "deft/track/study_store.h"

namespace deft::track {

// The database was busy or the transaction lost a race (SQLITE_BUSY/SQLITE_LOCKED,
// PostgreSQL serialization failure or deadlock): roll back and run it again.
class TransientDbError : public Error {
 public:
  using Error::Error;
};

using SqlValue = std::variant<std::monostate, int64_t, double, std::string>;
using SqlRow = std::vector<SqlValue>;

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual const std::string& url() const = 0;
  virtual std::string dialect() const = 0;  // "sqlite" or "postgresql"
  // Runs one statement (prepared once per connection, then reused) and returns its rows.
  virtual std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params = {}) = 0;
  // Runs several statements without parameters (schema creation).
  virtual void exec_script(const std::string& sql) = 0;
  // A write transaction takes the write lock up front (SQLite BEGIN IMMEDIATE).
  virtual void begin(bool write) = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;
  // Appended to a SELECT that must lock the rows it reads until commit ("" for SQLite,
  // whose write transactions already exclude each other).
  virtual std::string for_update() const = 0;
  // Taken first in the schema transaction so that two processes never create it at once.
  virtual void lock_schema() = 0;
};

std::unique_ptr<SqlConnection> open_sqlite_connection(const std::string& url, const std::string& path);
std::unique_ptr<SqlConnection> open_postgres_connection(const std::string& url);
std::unique_ptr<StudyStore> make_sql_study_store(std::unique_ptr<SqlConnection> db);

// Row accessors: a NULL real reads as NaN (NaN is stored as NULL).
int64_t sql_int(const SqlValue& v);
double sql_real(const SqlValue& v);
std::string sql_text(const SqlValue& v);
bool sql_null(const SqlValue& v);

}  // namespace deft::track
