#include <sqlite3.h>

#include <filesystem>
#include <mutex>
#include <optional>

#include "store/store.hpp"

namespace esg::store {

namespace {

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), int(sql.size()), &stmt_, nullptr) != SQLITE_OK) {
      stmt_ = nullptr;
    }
  }
  // A statement the store keeps prepared (Kept), borrowed: reset and unbound when done.
  explicit Statement(sqlite3_stmt* kept) : stmt_(kept), kept_(true) {}
  ~Statement() {
    if (!kept_) {
      sqlite3_finalize(stmt_);
    } else if (stmt_) {
      sqlite3_reset(stmt_);
      sqlite3_clear_bindings(stmt_);
    }
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  explicit operator bool() const { return stmt_ != nullptr; }
  sqlite3_stmt* get() { return stmt_; }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind_code(int i, const std::string& v) {
    if (v.empty()) {
      sqlite3_bind_null(stmt_, i);
    } else {
      bind(i, v);
    }
  }
  void bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), int(v.size()), SQLITE_TRANSIENT);
  }
  int step() { return sqlite3_step(stmt_); }
  int64_t int_at(int i) { return sqlite3_column_int64(stmt_, i); }
  std::string text_at(int i) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? std::string(p, size_t(sqlite3_column_bytes(stmt_, i))) : std::string();
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  bool kept_ = false;
};

// A statement prepared once, on first use, and kept: a call's CDR is written several times
// (routing, answered, ended), and preparing its statement each time was 3 % of esg's CPU at
// 1,500 calls/s (issue 24). Used under the store's lock.
class Kept {
 public:
  explicit Kept(const char* sql) : sql_(sql) {}
  ~Kept() { sqlite3_finalize(stmt_); }
  Kept(const Kept&) = delete;
  Kept& operator=(const Kept&) = delete;
  Statement use(sqlite3* db) {
    if (!stmt_ &&
        sqlite3_prepare_v3(db, sql_, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr) != SQLITE_OK)
      stmt_ = nullptr;
    return Statement(stmt_);
  }

 private:
  const char* sql_;
  sqlite3_stmt* stmt_ = nullptr;
};

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(const std::string& path) {
    std::error_code ec;
    const auto folder = std::filesystem::path(path).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder, ec);
    if (sqlite3_open_v2(path.c_str(), &db_,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        nullptr) != SQLITE_OK) {
      const std::string why = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      throw StoreError("store.sqlite: cannot open " + path + ": " + why);
    }
    sqlite3_busy_timeout(db_, 5000);
    exec_or_throw("PRAGMA journal_mode=WAL");
    exec_or_throw("PRAGMA synchronous=NORMAL");
    exec_or_throw("PRAGMA foreign_keys=ON");
    // SQLite's own page cache (2 MiB by default) fills with the providers table once esg has
    // read 10,000 accounts: a copy of pages the kernel's file cache holds anyway. 512 KiB keeps
    // the hot pages (the CDR table's end, the indexes) without that second copy in esg's RSS.
    exec_or_throw("PRAGMA cache_size=-512");
    migrate();
  }
  ~SqliteStore() override {
    cdr_insert_.reset();
    cdr_update_.reset();
    sqlite3_close(db_);
  }

  Result<std::vector<Row>, Error> list(Table t) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_, "SELECT id, code, data FROM " + std::string(table_name(t)) + " ORDER BY id");
    if (!s) return io_error();
    std::vector<Row> rows;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW)
      rows.push_back({s.int_at(0), s.text_at(1), s.text_at(2)});
    if (rc != SQLITE_DONE) return io_error();
    return rows;
  }

  Result<Row, Error> get(Table t, int64_t id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_, "SELECT id, code, data FROM " + std::string(table_name(t)) + " WHERE id = ?");
    if (!s) return io_error();
    s.bind(1, id);
    return one(s);
  }

  Result<Row, Error> find_code(Table t, const std::string& code) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_,
                "SELECT id, code, data FROM " + std::string(table_name(t)) + " WHERE code = ?");
    if (!s) return io_error();
    s.bind(1, code);
    return one(s);
  }

  Result<int64_t, Error> insert(Table t, const std::string& code, const std::string& data,
                                int64_t id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    const std::string table(table_name(t));
    Statement s(db_, id ? "INSERT INTO " + table +
                              " (id, code, data, updated_at) VALUES (?, ?, ?, CURRENT_TIMESTAMP)"
                        : "INSERT INTO " + table +
                              " (code, data, updated_at) VALUES (?, ?, CURRENT_TIMESTAMP)");
    if (!s) return io_error();
    int i = 1;
    if (id) s.bind(i++, id);
    s.bind_code(i++, code);
    s.bind(i, data);
    const int rc = s.step();
    if (rc == SQLITE_CONSTRAINT) return unexpected(Error{Errc::Conflict, "code or id is taken"});
    if (rc != SQLITE_DONE) return io_error();
    return int64_t(sqlite3_last_insert_rowid(db_));
  }

  Result<void, Error> update(Table t, int64_t id, const std::string& code,
                             const std::string& data) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_, "UPDATE " + std::string(table_name(t)) +
                         " SET code = ?, data = ?, updated_at = CURRENT_TIMESTAMP WHERE id = ?");
    if (!s) return io_error();
    s.bind_code(1, code);
    s.bind(2, data);
    s.bind(3, id);
    const int rc = s.step();
    if (rc == SQLITE_CONSTRAINT) return unexpected(Error{Errc::Conflict, "code is taken"});
    if (rc != SQLITE_DONE) return io_error();
    if (sqlite3_changes(db_) == 0) return unexpected(Error{Errc::NotFound, "no such id"});
    return {};
  }

  Result<void, Error> remove(Table t, int64_t id) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_, "DELETE FROM " + std::string(table_name(t)) + " WHERE id = ?");
    if (!s) return io_error();
    s.bind(1, id);
    if (s.step() != SQLITE_DONE) return io_error();
    if (sqlite3_changes(db_) == 0) return unexpected(Error{Errc::NotFound, "no such id"});
    return {};
  }

  Result<int64_t, Error> cdr_insert(const Cdr& c) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s = cdr_insert_->use(db_);
    if (!s) return io_error();
    s.bind(1, c.call_id);
    s.bind(2, c.started_ms);
    s.bind(3, c.state);
    s.bind(4, c.caller);
    s.bind(5, c.called);
    s.bind(6, c.data);
    s.bind(7, c.srvidx);
    if (s.step() != SQLITE_DONE) return io_error();
    return int64_t(sqlite3_last_insert_rowid(db_));
  }

  Result<void, Error> cdr_update(const Cdr& c) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s = cdr_update_->use(db_);
    if (!s) return io_error();
    s.bind(1, c.state);
    s.bind(2, c.data);
    s.bind(3, c.id);
    if (s.step() != SQLITE_DONE) return io_error();
    if (sqlite3_changes(db_) == 0) return unexpected(Error{Errc::NotFound, "no such CDR"});
    return {};
  }

  Result<std::vector<Cdr>, Error> cdr_query(const CdrQuery& q) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    std::string sql =
        "SELECT id, call_id, started_ms, state, caller, called, data FROM cdrs "
        "WHERE started_ms >= ? AND started_ms <= ?";
    if (!q.number.empty()) sql += " AND (instr(caller, ?) > 0 OR instr(called, ?) > 0)";
    sql += " ORDER BY started_ms DESC, id DESC LIMIT ?";
    Statement s(db_, sql);
    if (!s) return io_error();
    int i = 1;
    s.bind(i++, q.from_ms);
    s.bind(i++, q.to_ms);
    if (!q.number.empty()) {
      s.bind(i++, q.number);
      s.bind(i++, q.number);
    }
    s.bind(i, int64_t(q.limit));
    std::vector<Cdr> out;
    int rc;
    while ((rc = s.step()) == SQLITE_ROW) {
      out.push_back({s.int_at(0), s.text_at(1), s.int_at(2), s.text_at(3), s.text_at(4),
                     s.text_at(5), s.text_at(6)});
    }
    if (rc != SQLITE_DONE) return io_error();
    return out;
  }

  Result<int64_t, Error> cdr_interrupt_active(int64_t srvidx) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    Statement s(db_,
                "UPDATE cdrs SET state = 'interrupted' WHERE (state = 'active' OR "
                "state = 'answered') AND (srvidx = ? OR srvidx = 0)");
    if (!s) return io_error();
    s.bind(1, srvidx);
    if (s.step() != SQLITE_DONE) return io_error();
    return int64_t(sqlite3_changes(db_));
  }

  Result<void, Error> in_transaction(const std::function<void()>& f) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) return io_error();
    f();
    if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      auto e = io_error();
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return e;
    }
    return {};
  }

  int schema_version() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    return version();
  }

 private:
  Unexpected<Error> io_error() const { return unexpected(Error{Errc::Io, sqlite3_errmsg(db_)}); }

  Result<Row, Error> one(Statement& s) {
    const int rc = s.step();
    if (rc == SQLITE_ROW) return Row{s.int_at(0), s.text_at(1), s.text_at(2)};
    if (rc == SQLITE_DONE) return unexpected(Error{Errc::NotFound, "no such id"});
    return io_error();
  }

  void exec_or_throw(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      const std::string why = err ? err : "unknown error";
      sqlite3_free(err);
      throw StoreError("store.sqlite: " + why + " (in: " + sql + ")");
    }
  }

  int version() {
    Statement s(db_, "SELECT MAX(version) FROM schema_version");
    if (!s || s.step() != SQLITE_ROW) return 0;
    return int(s.int_at(0));
  }

  // Each migration runs in its own transaction with the version bump, so a crash midway leaves
  // the schema at a known version.
  void migrate() {
    exec_or_throw("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    const auto& all = migrations();
    const int current = version();
    if (current > int(all.size())) {
      throw StoreError("store.sqlite: schema version " + std::to_string(current) +
                       " is newer than this esg knows (" + std::to_string(all.size()) + ")");
    }
    for (int v = current; v < int(all.size()); ++v) {
      std::string sql = all[size_t(v)];
      for (size_t p; (p = sql.find("{id}")) != std::string::npos;)
        sql.replace(p, 4, "INTEGER PRIMARY KEY AUTOINCREMENT");  // ids are never reused
      exec_or_throw("BEGIN IMMEDIATE");
      try {
        exec_or_throw(sql);
        exec_or_throw("INSERT INTO schema_version (version) VALUES (" + std::to_string(v + 1) +
                      ")");
        exec_or_throw("COMMIT");
      } catch (...) {
        sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
    }
  }

  sqlite3* db_ = nullptr;
  std::recursive_mutex mu_;  // in_transaction() calls the other methods
  // Finalized before db_ is closed (the destructor resets them first).
  std::optional<Kept> cdr_insert_{std::in_place,
                                  "INSERT INTO cdrs (call_id, started_ms, state, caller, called, "
                                  "data, srvidx) VALUES (?, ?, ?, ?, ?, ?, ?)"};
  std::optional<Kept> cdr_update_{std::in_place,
                                  "UPDATE cdrs SET state = ?, data = ? WHERE id = ?"};
};

}  // namespace

std::unique_ptr<Store> open_sqlite(const std::string& path) {
  return std::make_unique<SqliteStore>(path);
}

}  // namespace esg::store
