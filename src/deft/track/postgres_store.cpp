// The PostgreSQL connection behind the study store (libpq). The URL goes to
// PQconnectdb as it is. Statements are prepared once per connection; values travel
// as text. Write transactions run at READ COMMITTED and lock the rows they depend on
// (SELECT ... FOR UPDATE); serialization failures, deadlocks and a lost connection
// become TransientDbError, which the store retries.
#include <libpq-fe.h>

#include <cmath>
#include <unordered_map>

#include "deft/track/sql_store.h"

namespace deft::track {

namespace {

// The URL with any password replaced, for messages.
std::string shown_url(const std::string& url) {
  const size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  const size_t at = url.find('@', scheme + 3);
  const size_t colon = url.find(':', scheme + 3);
  if (at == std::string::npos || colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

// `?` placeholders to $1, $2, ... (the store's SQL has no `?` inside string literals).
std::string numbered(const std::string& sql) {
  std::string out;
  int n = 0;
  for (char c : sql) {
    if (c != '?') {
      out += c;
      continue;
    }
    out += '$';
    out += std::to_string(++n);
  }
  return out;
}

std::string as_text(double v) {
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  return fmt::format("{}", v);  // shortest text that reads back to the same double
}

class Result {
 public:
  explicit Result(PGresult* r) : r_(r) {}
  ~Result() { PQclear(r_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  PGresult* get() const { return r_; }

 private:
  PGresult* r_;
};

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(const std::string& url) : url_(shown_url(url)) {
    conn_ = PQconnectdb(url.c_str());
    if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
      const std::string why = conn_ ? PQerrorMessage(conn_) : "out of memory";
      PQfinish(conn_);
      conn_ = nullptr;
      fail("{}: cannot connect to PostgreSQL: {}", url_, trimmed(why));
    }
    PQsetNoticeProcessor(conn_, [](void*, const char*) {}, nullptr);  // "relation exists, skipping" etc.
  }

  ~PostgresConnection() override { PQfinish(conn_); }

  const std::string& url() const override { return url_; }
  std::string dialect() const override { return "postgresql"; }
  std::string for_update() const override { return " FOR UPDATE"; }
  void lock_schema() override { query("SELECT pg_advisory_xact_lock(7245917314)", {}); }

  std::vector<SqlRow> query(const std::string& sql, const std::vector<SqlValue>& params) override {
    const std::string& name = prepared(sql, static_cast<int>(params.size()));
    std::vector<std::string> texts(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlValue& v = params[i];
      if (const auto* n = std::get_if<int64_t>(&v)) texts[i] = std::to_string(*n);
      else if (const auto* d = std::get_if<double>(&v)) texts[i] = as_text(*d);
      else if (const auto* s = std::get_if<std::string>(&v)) texts[i] = *s;
      else continue;  // NULL
      values[i] = texts[i].c_str();
    }
    Result res(PQexecPrepared(conn_, name.c_str(), static_cast<int>(params.size()), values.data(), nullptr, nullptr, 0));
    check(res.get(), sql);
    std::vector<SqlRow> rows;
    const int n_rows = PQntuples(res.get()), n_cols = PQnfields(res.get());
    for (int r = 0; r < n_rows; ++r) {
      SqlRow row(static_cast<size_t>(n_cols));
      for (int c = 0; c < n_cols; ++c)
        if (!PQgetisnull(res.get(), r, c)) row[c] = std::string(PQgetvalue(res.get(), r, c));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  void exec_script(const std::string& sql) override {
    Result res(PQexec(conn_, sql.c_str()));
    check(res.get(), sql);
  }

  void begin(bool write) override {
    exec_script(write ? "BEGIN" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  }
  void commit() override { exec_script("COMMIT"); }
  void rollback() noexcept override {
    if (PQstatus(conn_) == CONNECTION_OK && PQtransactionStatus(conn_) != PQTRANS_IDLE) PQclear(PQexec(conn_, "ROLLBACK"));
  }

 private:
  static std::string trimmed(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }

  const std::string& prepared(const std::string& sql, int n_params) {
    auto it = statements_.find(sql);
    if (it != statements_.end()) return it->second;
    const std::string name = "deft_" + std::to_string(statements_.size());
    Result res(PQprepare(conn_, name.c_str(), numbered(sql).c_str(), n_params, nullptr));
    check(res.get(), sql);
    return statements_.emplace(sql, name).first->second;
  }

  void check(PGresult* res, const std::string& sql) {
    const ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return;
    const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
    const std::string code = state ? state : "";
    const std::string msg =
        fmt::format("{}: PostgreSQL: {} (in: {})", url_, trimmed(PQerrorMessage(conn_)), sql.substr(0, 120));
    if (PQstatus(conn_) != CONNECTION_OK) {  // the server went away: reconnect, prepare again, retry
      PQreset(conn_);
      statements_.clear();
      if (PQstatus(conn_) == CONNECTION_OK) throw TransientDbError(msg);
      throw Error(msg);
    }
    // serialization_failure, deadlock_detected, lock_not_available
    if (code == "40001" || code == "40P01" || code == "55P03") throw TransientDbError(msg);
    throw Error(msg);
  }

  std::string url_;
  PGconn* conn_ = nullptr;
  std::unordered_map<std::string, std::string> statements_;  // SQL -> prepared statement name
};

}  // namespace

std::unique_ptr<SqlConnection> open_postgres_connection(const std::string& url) {
  return std::make_unique<PostgresConnection>(url);
}

}  // namespace deft::track
