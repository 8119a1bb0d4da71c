// The store on PostgreSQL (libpq): the schema of schema.cpp, the cluster's heartbeats and
// leases on the server's clock. One connection per store object, one statement at a time
// (a mutex); a lost connection is reset on the next call, so the instance comes back by itself
// when the server does.

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <mutex>

#include "store/store.hpp"

namespace esg::store {

namespace {

// The server's clock in Unix milliseconds: every instance reads time from the same clock.
constexpr const char* kNowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

// Every Table is configuration (CDRs and the cluster's tables have calls of their own): a
// data-modifying CTE bumps the configuration's version in the same statement as the change, so
// that an instance that sees the new version also sees the change.
const std::string kBump =
    "WITH bump AS (UPDATE config_version SET version = version + 1 WHERE id = 1) ";

using ResultPtr = std::unique_ptr<PGresult, decltype(&PQclear)>;

class PgStore final : public Store {
 public:
  explicit PgStore(const std::string& conninfo) : conninfo_(conninfo) {
    if (!connect()) {
      const std::string why = conn_ ? PQerrorMessage(conn_.get()) : "out of memory";
      throw StoreError("store.postgres: cannot connect: " + trim(why));
    }
    migrate();
  }

  Result<std::vector<Row>, Error> list(Table t) override {
    std::lock_guard lock(mu_);
    auto r = exec("SELECT id, code, data FROM " + std::string(table_name(t)) + " ORDER BY id", {});
    if (!r) return unexpected(r.error());
    std::vector<Row> rows;
    for (int i = 0; i < PQntuples(r->get()); ++i)
      rows.push_back(row_at(r->get(), i));
    return rows;
  }

  Result<Row, Error> get(Table t, int64_t id) override {
    std::lock_guard lock(mu_);
    return one(exec("SELECT id, code, data FROM " + std::string(table_name(t)) + " WHERE id = $1",
                    {std::to_string(id)}));
  }

  Result<Row, Error> find_code(Table t, const std::string& code) override {
    std::lock_guard lock(mu_);
    return one(exec("SELECT id, code, data FROM " + std::string(table_name(t)) + " WHERE code = $1",
                    {code}));
  }

  Result<int64_t, Error> insert(Table t, const std::string& code, const std::string& data,
                                int64_t id) override {
    std::lock_guard lock(mu_);
    const std::string table(table_name(t));
    std::vector<Param> params;
    if (id) params.emplace_back(std::to_string(id));
    params.push_back(code.empty() ? Param() : Param(code));
    params.emplace_back(data);
    auto r = exec(kBump + "INSERT INTO " + table +
                      (id ? " (id, code, data, updated_at) VALUES ($1, $2, $3, CURRENT_TIMESTAMP)"
                          : " (code, data, updated_at) VALUES ($1, $2, CURRENT_TIMESTAMP)") +
                      " RETURNING id",
                  params);
    if (!r) return unexpected(r.error());
    const int64_t got = std::stoll(PQgetvalue(r->get(), 0, 0));
    if (id) {
      // An explicit id leaves the sequence behind: the next automatic id must not collide.
      auto seq = exec("SELECT setval(pg_get_serial_sequence('" + table +
                          "', 'id'), (SELECT MAX(id) FROM " + table + "))",
                      {});
      if (!seq) return unexpected(seq.error());
    }
    return got;
  }

  Result<void, Error> update(Table t, int64_t id, const std::string& code,
                             const std::string& data) override {
    std::lock_guard lock(mu_);
    auto r = exec(kBump + "UPDATE " + std::string(table_name(t)) +
                      " SET code = $1, data = $2, updated_at = CURRENT_TIMESTAMP WHERE id = $3",
                  {code.empty() ? Param() : Param(code), data, std::to_string(id)});
    if (!r) return unexpected(r.error());
    if (affected(*r) == 0) return unexpected(Error{Errc::NotFound, "no such id"});
    return {};
  }

  Result<void, Error> remove(Table t, int64_t id) override {
    std::lock_guard lock(mu_);
    auto r = exec(kBump + "DELETE FROM " + std::string(table_name(t)) + " WHERE id = $1",
                  {std::to_string(id)});
    if (!r) return unexpected(r.error());
    if (affected(*r) == 0) return unexpected(Error{Errc::NotFound, "no such id"});
    return {};
  }

  int schema_version() override {
    std::lock_guard lock(mu_);
    auto r = exec("SELECT MAX(version) FROM schema_version", {});
    if (!r || PQgetisnull(r->get(), 0, 0)) return 0;
    return std::stoi(PQgetvalue(r->get(), 0, 0));
  }

  Result<int64_t, Error> cdr_insert(const Cdr& c) override {
    std::lock_guard lock(mu_);
    auto r = exec(
        "INSERT INTO cdrs (call_id, started_ms, state, caller, called, data, srvidx) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        {c.call_id, std::to_string(c.started_ms), c.state, c.caller, c.called, c.data,
         std::to_string(c.srvidx)});
    if (!r) return unexpected(r.error());
    return std::stoll(PQgetvalue(r->get(), 0, 0));
  }

  Result<void, Error> cdr_update(const Cdr& c) override {
    std::lock_guard lock(mu_);
    auto r = exec("UPDATE cdrs SET state = $1, data = $2 WHERE id = $3",
                  {c.state, c.data, std::to_string(c.id)});
    if (!r) return unexpected(r.error());
    if (affected(*r) == 0) return unexpected(Error{Errc::NotFound, "no such CDR"});
    return {};
  }

  Result<std::vector<Cdr>, Error> cdr_query(const CdrQuery& q) override {
    std::lock_guard lock(mu_);
    std::string sql =
        "SELECT id, call_id, started_ms, state, caller, called, data, srvidx FROM cdrs "
        "WHERE started_ms >= $1 AND started_ms <= $2";
    std::vector<Param> params = {std::to_string(q.from_ms), std::to_string(q.to_ms)};
    if (!q.number.empty()) {
      sql += " AND (strpos(caller, $4) > 0 OR strpos(called, $4) > 0)";
    }
    sql += " ORDER BY started_ms DESC, id DESC LIMIT $3";
    params.emplace_back(std::to_string(q.limit));
    if (!q.number.empty()) params.emplace_back(q.number);
    auto r = exec(sql, params);
    if (!r) return unexpected(r.error());
    std::vector<Cdr> out;
    PGresult* p = r->get();
    for (int i = 0; i < PQntuples(p); ++i) {
      out.push_back({std::stoll(PQgetvalue(p, i, 0)), PQgetvalue(p, i, 1),
                     std::stoll(PQgetvalue(p, i, 2)), PQgetvalue(p, i, 3), PQgetvalue(p, i, 4),
                     PQgetvalue(p, i, 5), PQgetvalue(p, i, 6), std::stoll(PQgetvalue(p, i, 7))});
    }
    return out;
  }

  Result<void, Error> in_transaction(const std::function<void()>& f) override {
    std::lock_guard lock(mu_);
    if (auto r = exec("BEGIN", {}); !r) return unexpected(r.error());
    f();
    auto r = exec("COMMIT", {});
    if (!r) return unexpected(r.error());
    // A statement that failed inside aborts the transaction: COMMIT then rolls back.
    if (std::string_view(PQcmdStatus(r->get())) == "ROLLBACK") {
      return unexpected(Error{Errc::Io, "the transaction was rolled back"});
    }
    return {};
  }

  Result<int64_t, Error> cdr_interrupt_active(int64_t srvidx) override {
    std::lock_guard lock(mu_);
    auto r = exec(
        "UPDATE cdrs SET state = 'interrupted' WHERE state IN ('active', 'answered') AND "
        "(srvidx = $1 OR srvidx = 0)",
        {std::to_string(srvidx)});
    if (!r) return unexpected(r.error());
    return affected(*r);
  }

  Result<ClusterView, Error> heartbeat(const InstanceRow& self, bool with_regs,
                                       int64_t dead_after_ms, int64_t leases_after) override {
    std::lock_guard lock(mu_);
    // The row is ours when it carries our boot id, or when whoever wrote it stopped or fell
    // silent for dead_after: never while another start of this srvidx is alive.
    auto w =
        exec(std::string("INSERT INTO instances (srvidx, roleid, node, addr, started_ms, "
                         "heartbeat_ms, regs, boot, addrs) VALUES ($1, $2, $3, $4, $5, CASE WHEN "
                         "$8::boolean THEN 0 ELSE ") +
                 kNowMs +
                 " END, $6, $9, $11) ON CONFLICT (srvidx) DO UPDATE SET roleid = "
                 "EXCLUDED.roleid, node = EXCLUDED.node, addr = EXCLUDED.addr, started_ms = "
                 "EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms, regs = CASE "
                 "WHEN $7::boolean THEN EXCLUDED.regs ELSE instances.regs END, boot = "
                 "EXCLUDED.boot, addrs = EXCLUDED.addrs WHERE instances.boot = EXCLUDED.boot OR "
                 "instances.boot = '' "
                 "OR instances.heartbeat_ms = 0 OR instances.heartbeat_ms < " +
                 kNowMs + " - $10 RETURNING srvidx",
             {std::to_string(self.srvidx), std::to_string(self.roleid), self.node, self.addr,
              std::to_string(self.started_ms), self.regs, with_regs ? "true" : "false",
              self.heartbeat_ms < 0 ? "true" : "false", self.boot, std::to_string(dead_after_ms),
              self.addrs});
    if (!w) return unexpected(w.error());
    if (PQntuples(w->get()) == 0) {
      auto who = exec(std::string("SELECT node, addr, ") + kNowMs +
                          " - heartbeat_ms FROM instances WHERE srvidx = $1",
                      {std::to_string(self.srvidx)});
      std::string other = "another instance";
      if (who && PQntuples(who->get()) == 1) {
        other = std::string("node '") + PQgetvalue(who->get(), 0, 0) + "' at " +
                PQgetvalue(who->get(), 0, 1) + ", its last heartbeat " +
                PQgetvalue(who->get(), 0, 2) + " ms ago";
      }
      return unexpected(Error{Errc::Conflict, "srvidx " + std::to_string(self.srvidx) +
                                                  " is in use by " + other +
                                                  ": every instance needs a srvidx of its own"});
    }
    // A statement of its own, after the write: an instance that took one of our leases while
    // it saw us silent held our row (FOR SHARE) until it committed, so this read, begun after
    // our write got the row, sees that take.
    auto r = exec(std::string("SELECT 0, '', ") + kNowMs +
                      ", (SELECT version FROM config_version WHERE id = 1), (SELECT version FROM "
                      "lease_version WHERE id = 1), 0::bigint, '', '' UNION ALL SELECT 1, '', "
                      "srvidx, roleid, started_ms, heartbeat_ms, node, addr FROM instances "
                      "UNION ALL SELECT 2, account, srvidx, expires_ms, version, 0, '', '' FROM "
                      "leases WHERE version > $1",
                  {std::to_string(leases_after)});
    if (!r) return unexpected(r.error());
    ClusterView v;
    PGresult* p = r->get();
    auto num = [p](int i, int col) { return std::stoll(PQgetvalue(p, i, col)); };
    for (int i = 0; i < PQntuples(p); ++i) {
      switch (num(i, 0)) {
        case 0:
          v.now_ms = num(i, 2);
          v.config_version = num(i, 3);
          v.lease_version = num(i, 4);
          break;
        case 1: {
          InstanceRow x;
          x.srvidx = num(i, 2);
          x.roleid = num(i, 3);
          x.started_ms = num(i, 4);
          x.heartbeat_ms = num(i, 5);
          x.node = PQgetvalue(p, i, 6);
          x.addr = PQgetvalue(p, i, 7);
          v.instances.push_back(std::move(x));
          break;
        }
        default:
          v.leases.push_back({PQgetvalue(p, i, 1), num(i, 2), num(i, 3), num(i, 4)});
      }
    }
    std::sort(v.instances.begin(), v.instances.end(),
              [](const InstanceRow& x, const InstanceRow& y) { return x.srvidx < y.srvidx; });
    return v;
  }

  Result<std::vector<InstanceRow>, Error> instances() override {
    std::lock_guard lock(mu_);
    auto r = exec(
        "SELECT srvidx, roleid, node, addr, started_ms, heartbeat_ms, regs, addrs FROM instances "
        "ORDER BY srvidx",
        {});
    if (!r) return unexpected(r.error());
    std::vector<InstanceRow> out;
    for (int i = 0; i < PQntuples(r->get()); ++i)
      out.push_back(instance_at(r->get(), i, true));
    return out;
  }

  Result<std::vector<std::string>, Error> acquire_leases(const std::vector<std::string>& accounts,
                                                         int64_t srvidx, int64_t ttl_ms) override {
    std::lock_guard lock(mu_);
    if (accounts.empty()) return std::vector<std::string>{};
    // Every lease writer bumps the counter first: its row lock orders the writers (versions
    // commit in order) and keeps them from deadlocking on the lease rows. ON CONFLICT locks the
    // lease row: of two instances racing for it, the second sees the first one's fresh expiry
    // and gets no row back. The holders' instance rows are read FOR SHARE, which gives their
    // latest heartbeat and holds it back until this commits: a holder that heartbeats again is
    // either seen alive here, or sees this take in its next read.
    auto r = exec(
        std::string("WITH v AS (UPDATE lease_version SET version = version + 1 WHERE id = 1 "
                    "RETURNING version), holders AS (SELECT srvidx, heartbeat_ms FROM instances "
                    "WHERE srvidx IN (SELECT srvidx FROM leases WHERE account = ANY($1::text[])) "
                    "FOR SHARE) INSERT INTO leases (account, srvidx, expires_ms, version) SELECT "
                    "a, $2, ") +
            kNowMs +
            " + $3, v.version FROM unnest($1::text[]) AS a, v ORDER BY a ON CONFLICT (account) "
            "DO UPDATE SET srvidx = EXCLUDED.srvidx, expires_ms = EXCLUDED.expires_ms, version "
            "= EXCLUDED.version WHERE leases.srvidx = EXCLUDED.srvidx OR leases.srvidx = 0 OR "
            "(leases.expires_ms < " +
            kNowMs +
            " AND NOT EXISTS (SELECT 1 FROM holders h WHERE h.srvidx = leases.srvidx AND "
            "h.heartbeat_ms > " +
            kNowMs + " - $3)) RETURNING account",
        {text_array(accounts), std::to_string(srvidx), std::to_string(ttl_ms)});
    if (!r) return unexpected(r.error());
    std::vector<std::string> held;
    for (int i = 0; i < PQntuples(r->get()); ++i)
      held.emplace_back(PQgetvalue(r->get(), i, 0));
    return held;
  }

  Result<void, Error> release_leases(const std::vector<std::string>& accounts,
                                     int64_t srvidx) override {
    std::lock_guard lock(mu_);
    if (accounts.empty()) return {};
    auto r = exec(
        "WITH v AS (UPDATE lease_version SET version = version + 1 WHERE id = 1 RETURNING "
        "version) UPDATE leases SET srvidx = 0, version = (SELECT version FROM v) WHERE account "
        "= ANY($1::text[]) AND srvidx = $2",
        {text_array(accounts), std::to_string(srvidx)});
    if (!r) return unexpected(r.error());
    return {};
  }

  Result<void, Error> put_session(const SessionSnapshot& s, size_t keep) override {
    std::lock_guard lock(mu_);
    auto r = exec(std::string("INSERT INTO telegram_sessions (line_id, taken_ms, srvidx, checksum, "
                              "data) VALUES ($1, ") +
                      kNowMs + ", $2, $3, $4)",
                  {std::to_string(s.line_id), std::to_string(s.srvidx), s.checksum, s.data});
    if (!r) return unexpected(r.error());
    r = exec(
        "DELETE FROM telegram_sessions WHERE line_id = $1 AND id NOT IN (SELECT id FROM "
        "telegram_sessions WHERE line_id = $1 ORDER BY taken_ms DESC, id DESC LIMIT $2)",
        {std::to_string(s.line_id), std::to_string(std::max<size_t>(1, keep))});
    if (!r) return unexpected(r.error());
    return {};
  }

  Result<std::vector<SessionSnapshot>, Error> sessions(int64_t line_id) override {
    std::lock_guard lock(mu_);
    auto r = exec(
        "SELECT id, line_id, taken_ms, srvidx, checksum, data FROM telegram_sessions WHERE "
        "line_id = $1 ORDER BY taken_ms DESC, id DESC",
        {std::to_string(line_id)});
    if (!r) return unexpected(r.error());
    std::vector<SessionSnapshot> out;
    for (int i = 0; i < PQntuples(r->get()); ++i) {
      SessionSnapshot s;
      s.id = std::stoll(PQgetvalue(r->get(), i, 0));
      s.line_id = std::stoll(PQgetvalue(r->get(), i, 1));
      s.taken_ms = std::stoll(PQgetvalue(r->get(), i, 2));
      s.srvidx = std::stoll(PQgetvalue(r->get(), i, 3));
      s.checksum = PQgetvalue(r->get(), i, 4);
      s.data = std::string(PQgetvalue(r->get(), i, 5), size_t(PQgetlength(r->get(), i, 5)));
      out.push_back(std::move(s));
    }
    return out;
  }

  Result<void, Error> delete_sessions(int64_t line_id) override {
    std::lock_guard lock(mu_);
    auto r = exec("DELETE FROM telegram_sessions WHERE line_id = $1", {std::to_string(line_id)});
    if (!r) return unexpected(r.error());
    return {};
  }

 private:
  // A text parameter, or SQL NULL.
  struct Param {
    Param() = default;
    Param(std::string v) : value(std::move(v)), null(false) {}  // NOLINT: implicit on purpose
    Param(const char* v) : value(v), null(false) {}             // NOLINT
    std::string value;
    bool null = true;
  };

  // A PostgreSQL array literal of text values, each quoted.
  static std::string text_array(const std::vector<std::string>& values) {
    std::string out = "{";
    for (const auto& v : values) {
      if (out.size() > 1) out += ',';
      out += '"';
      for (char c : v) {
        if (c == '"' || c == '\\') out += '\\';
        out += c;
      }
      out += '"';
    }
    return out + "}";
  }

  static std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
      s.pop_back();
    return s;
  }

  bool connect() {
    // Later keywords override what the connection string says: a dead server must not hold
    // a heartbeat for the operating system's TCP timeout.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* values[] = {conninfo_.c_str(), "2", "esg", nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (!conn_) return false;
    // Server notices ("relation already exists, skipping") are not errors: not on stderr.
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);
    return PQstatus(conn_.get()) == CONNECTION_OK;
  }

  Result<ResultPtr, Error> exec(const std::string& sql, const std::vector<Param>& params) {
    if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
      if (!conn_) {
        connect();
      } else {
        PQreset(conn_.get());
      }
      if (!conn_ || PQstatus(conn_.get()) != CONNECTION_OK) {
        return unexpected(Error{Errc::Io, "no connection: " + trim(PQerrorMessage(conn_.get()))});
      }
    }
    std::vector<const char*> values;
    for (const auto& p : params)
      values.push_back(p.null ? nullptr : p.value.c_str());
    ResultPtr r(PQexecParams(conn_.get(), sql.c_str(), int(values.size()), nullptr, values.data(),
                             nullptr, nullptr, 0),
                &PQclear);
    const ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    const char* state = r ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    std::string why = trim(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_.get()));
    if (state && std::string_view(state) == "23505") {
      return unexpected(Error{Errc::Conflict, "code or id is taken"});
    }
    return unexpected(Error{Errc::Io, why});
  }

  static int64_t affected(const ResultPtr& r) {
    const char* n = PQcmdTuples(r.get());
    return n && *n ? std::stoll(n) : 0;
  }

  static Row row_at(PGresult* p, int i) {
    return {std::stoll(PQgetvalue(p, i, 0)), PQgetvalue(p, i, 1), PQgetvalue(p, i, 2)};
  }

  static InstanceRow instance_at(PGresult* p, int i, bool with_regs) {
    InstanceRow x;
    x.srvidx = std::stoll(PQgetvalue(p, i, 0));
    x.roleid = std::stoll(PQgetvalue(p, i, 1));
    x.node = PQgetvalue(p, i, 2);
    x.addr = PQgetvalue(p, i, 3);
    x.started_ms = std::stoll(PQgetvalue(p, i, 4));
    x.heartbeat_ms = std::stoll(PQgetvalue(p, i, 5));
    if (with_regs) {
      x.regs = PQgetvalue(p, i, 6);
      x.addrs = PQgetvalue(p, i, 7);
    }
    return x;
  }

  Result<Row, Error> one(Result<ResultPtr, Error> r) {
    if (!r) return unexpected(r.error());
    if (PQntuples(r->get()) == 0) return unexpected(Error{Errc::NotFound, "no such id"});
    return row_at(r->get(), 0);
  }

  void exec_or_throw(const std::string& sql) {
    auto r = exec(sql, {});
    if (!r) throw StoreError("store.postgres: " + r.error().message + " (in: " + sql + ")");
  }

  // All migrations in one transaction under an advisory lock: instances started together on
  // an empty database must not run them twice; PostgreSQL's DDL is transactional.
  void migrate() {
    exec_or_throw("BEGIN");
    try {
      exec_or_throw("SELECT pg_advisory_xact_lock(5080)");
      exec_or_throw("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      auto r = exec("SELECT COALESCE(MAX(version), 0) FROM schema_version", {});
      if (!r) throw StoreError("store.postgres: " + r.error().message);
      const int current = std::stoi(PQgetvalue(r->get(), 0, 0));
      const auto& all = migrations();
      if (current > int(all.size())) {
        throw StoreError("store.postgres: schema version " + std::to_string(current) +
                         " is newer than this esg knows (" + std::to_string(all.size()) + ")");
      }
      for (int v = current; v < int(all.size()); ++v) {
        std::string sql = all[size_t(v)];
        for (size_t p; (p = sql.find("{id}")) != std::string::npos;)
          sql.replace(p, 4, "BIGSERIAL PRIMARY KEY");
        exec_or_throw(sql);
        exec_or_throw("INSERT INTO schema_version (version) VALUES (" + std::to_string(v + 1) +
                      ")");
      }
      exec_or_throw("COMMIT");
    } catch (...) {
      (void)exec("ROLLBACK", {});
      throw;
    }
  }

  std::string conninfo_;
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_{nullptr, &PQfinish};
  std::recursive_mutex mu_;  // in_transaction() calls the other methods
};

}  // namespace

std::unique_ptr<Store> open_postgres(const std::string& conninfo) {
  return std::make_unique<PgStore>(conninfo);
}

}  // namespace esg::store
