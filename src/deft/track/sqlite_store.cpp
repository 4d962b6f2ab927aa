// The SQLite connection behind the study store: one file, WAL journal (readers never
// wait for the writer), busy_timeout, and statements prepared once and reused.
// SQLITE_BUSY / SQLITE_LOCKED become TransientDbError, which the store retries.
#include <sqlite3.h>

#include <chrono>
#include <thread>
#include <unordered_map>

#include "deft/track/sql_store.h"

namespace deft::track {

namespace {

bool transient(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

class SqliteConnection final : public SqlConnection {
 public:
  SqliteConnection(const std::string& url, const std::string& path) : url_(url) {
    const int rc = sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    if (rc != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
      sqlite3_close_v2(db_);
      db_ = nullptr;
      fail("{}: cannot open the SQLite file '{}': {}", url_, path, why);
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, 5000);
    // Switching to WAL needs a moment alone with the file: retry while others hold it.
    for (int attempt = 0;; ++attempt) {
      try {
        exec_script("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;");
        break;
      } catch (const TransientDbError&) {
        if (attempt > 2000) {
          close();
          throw;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5 + attempt % 20));
      } catch (const Error& e) {
        close();
        fail("{} (file '{}')", e.what(), path);
      }
    }
  }

  ~SqliteConnection() override { close(); }

  const std::string& url() const override { return url_; }
  std::string dialect() const override { return "sqlite"; }
  std::string for_update() const override { return ""; }
  void lock_schema() override {}  // BEGIN IMMEDIATE already keeps other writers out

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    sqlite3_stmt* st = prepared(sql);
    struct Reset {
      sqlite3_stmt* st;
      ~Reset() {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
      }
    } reset{st};
    for (size_t i = 0; i < params.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      const SqlValue& v = params[i];
      int rc = SQLITE_OK;
      if (const auto* n = std::get_if<int64_t>(&v)) rc = sqlite3_bind_int64(st, at, *n);
      else if (const auto* d = std::get_if<double>(&v)) rc = sqlite3_bind_double(st, at, *d);
      else if (const auto* s = std::get_if<std::string>(&v))
        rc = sqlite3_bind_text(st, at, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
      else rc = sqlite3_bind_null(st, at);
      if (rc != SQLITE_OK) raise(rc, sql);
    }
    std::vector<SqlRow> rows;
    for (;;) {
      const int rc = sqlite3_step(st);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) raise(rc, sql);
      SqlRow row(static_cast<size_t>(sqlite3_column_count(st)));
      for (int c = 0; c < static_cast<int>(row.size()); ++c) {
        switch (sqlite3_column_type(st, c)) {
          case SQLITE_INTEGER: row[c] = static_cast<int64_t>(sqlite3_column_int64(st, c)); break;
          case SQLITE_FLOAT: row[c] = sqlite3_column_double(st, c); break;
          case SQLITE_NULL: break;
          default: {
            const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
            row[c] = std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, c)));
          }
        }
      }
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void exec_script(const std::string& sql) override {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    const std::string why = err ? err : "";
    sqlite3_free(err);
    if (rc != SQLITE_OK) raise(rc, sql, why);
  }

  void begin(bool write) override { query(write ? "BEGIN IMMEDIATE" : "BEGIN", {}); }
  void commit() override { query("COMMIT", {}); }
  void rollback() noexcept override {
    if (db_ && !sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3_stmt* prepared(const std::string& sql) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    sqlite3_stmt* st = nullptr;
    const int rc = sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &st, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(st);
      raise(rc, sql);
    }
    statements_.emplace(sql, st);
    return st;
  }

  [[noreturn]] void raise(int rc, const std::string& sql, std::string why = "") const {
    if (why.empty()) why = sqlite3_errmsg(db_);
    const std::string msg = fmt::format("{}: SQLite: {} (in: {})", url_, why, sql.substr(0, 120));
    if (transient(rc)) throw TransientDbError(msg);
    throw Error(msg);
  }

  void close() {
    for (auto& [sql, st] : statements_) sqlite3_finalize(st);
    statements_.clear();
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
  }

  std::string url_;
  sqlite3* db_ = nullptr;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

std::unique_ptr<SqlConnection> open_sqlite_connection(const std::string& url, const std::string& path) {
  return std::make_unique<SqliteConnection>(url, path);
}

}  // namespace deft::track
