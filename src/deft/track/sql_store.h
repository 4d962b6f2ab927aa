// Internal to the stores: the few things a SQL database has to offer
// (SqliteConnection, PostgresConnection), the transaction runner and schema set-up
// both stores share, and the one StudyStore (sql_store.cpp) and one RunStore
// (run_store.cpp) written on top of them, so both backends share every query and rule.
//
// SQL is written once with `?` placeholders; the PostgreSQL connection renumbers
// them to $1, $2, ... Values travel as SqlValue: NULL, integer, real or text.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "deft/tensor/error.h"
#include "deft/track/run_store.h"
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
// The connection a storage URL names (open_study_store's rules); `what` names the
// store in error messages ("study store", "run store").
std::unique_ptr<SqlConnection> open_sql_connection(const std::string& url, const std::string& what);

// Runs each call as one transaction on a connection, one at a time (a mutex: the
// connection may be shared by threads), again and again while the database is busy:
// a TransientDbError rolls back and retries after a jittered pause that doubles from
// 1 ms to 100 ms; a database busy for kMaxBusySeconds in a row is an internal Error.
class SqlTransactions {
 public:
  static constexpr double kMaxBusySeconds = 300;
  explicit SqlTransactions(SqlConnection& db);

  template <class Fn>
  auto run(bool write, Fn&& fn) -> decltype(fn()) {
    std::lock_guard<std::mutex> hold(mutex_);
    const auto start = std::chrono::steady_clock::now();
    double pause_ms = 1;
    for (;;) {
      try {
        db_.begin(write);
        auto result = fn();
        db_.commit();
        return result;
      } catch (const TransientDbError& e) {
        db_.rollback();
        wait_to_retry(start, pause_ms, e);
      } catch (...) {
        db_.rollback();
        throw;
      }
    }
  }

 private:
  void wait_to_retry(std::chrono::steady_clock::time_point start, double& pause_ms, const TransientDbError& e);
  SqlConnection& db_;
  std::mutex mutex_;
  std::mt19937 rng_;
};

// Creates the schema (schema_sql) in an empty database, upgrades an older version in
// place (version 1 -> 2 adds the run tables), or checks the version of a current one;
// one write transaction. Errors opening the database become InputErrors naming the URL.
void init_schema(SqlConnection& db, SqlTransactions& tx);
// The DDL that takes a database of schema version `from` to kSchemaVersion.
std::string schema_upgrade_sql(const std::string& dialect, int from);

std::unique_ptr<StudyStore> make_sql_study_store(std::unique_ptr<SqlConnection> db);
std::unique_ptr<RunStore> make_sql_run_store(std::unique_ptr<SqlConnection> db);

// Row accessors: a NULL real reads as NaN (NaN is stored as NULL).
int64_t sql_int(const SqlValue& v);
double sql_real(const SqlValue& v);
std::string sql_text(const SqlValue& v);
bool sql_null(const SqlValue& v);

}  // namespace deft::track
