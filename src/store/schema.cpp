#include "store/store.hpp"

namespace esg::store {

std::string_view table_name(Table t) {
  switch (t) {
    case Table::Providers:
      return "providers";
    case Table::Pbx:
      return "pbx";
    case Table::Normalization:
      return "normalization";
    case Table::Routes:
      return "routes";
    case Table::BorderRules:
      return "borderrules";
    case Table::TelegramLines:
      return "telegramlines";
    case Table::Webhooks:
      return "webhooks";
  }
  return "";
}

const std::vector<std::string>& migrations() {
  // Portable SQL only: the same statements run on SQLite and PostgreSQL.
  static const std::vector<std::string> kMigrations = {
      // 1: provider accounts.
      "CREATE TABLE providers (id {id}, code TEXT NOT NULL UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 2: PBX connections.
      "CREATE TABLE pbx (id {id}, code TEXT NOT NULL UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 3: normalization rules (no code: NULLs never collide).
      "CREATE TABLE normalization (id {id}, code TEXT UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 4: routing rules.
      "CREATE TABLE routes (id {id}, code TEXT UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 5: call detail records.
      "CREATE TABLE cdrs (id {id}, call_id TEXT NOT NULL, started_ms BIGINT NOT NULL, "
      "state TEXT NOT NULL, caller TEXT NOT NULL, called TEXT NOT NULL, data TEXT NOT NULL)",
      "CREATE INDEX cdrs_started ON cdrs (started_ms)",
      "CREATE INDEX cdrs_state ON cdrs (state)",
      // 8: border rules.
      "CREATE TABLE borderrules (id {id}, code TEXT UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 9: Telegram lines.
      "CREATE TABLE telegramlines (id {id}, code TEXT NOT NULL UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
      // 10: which instance carries a call (a dead instance's calls are closed by another).
      "ALTER TABLE cdrs ADD COLUMN srvidx BIGINT NOT NULL DEFAULT 0",
      // 11: instances and their heartbeats (several instances on PostgreSQL).
      "CREATE TABLE instances (srvidx BIGINT PRIMARY KEY, roleid BIGINT NOT NULL, "
      "node TEXT NOT NULL, addr TEXT NOT NULL, started_ms BIGINT NOT NULL, "
      "heartbeat_ms BIGINT NOT NULL, regs TEXT NOT NULL)",
      // 12: who serves which account, until when.
      "CREATE TABLE leases (account TEXT PRIMARY KEY, srvidx BIGINT NOT NULL, "
      "expires_ms BIGINT NOT NULL)",
      // 13, 14: a counter every collection change bumps, so that other instances re-read.
      "CREATE TABLE config_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
      "INSERT INTO config_version (id, version) VALUES (1, 0)",
      // 15: each start of an instance draws a boot id (two instances with one srvidx are told).
      "ALTER TABLE instances ADD COLUMN boot TEXT NOT NULL DEFAULT ''",
      // 16-19: a counter every lease change bumps in the same statement, and each lease's
      // value of it, so that a heartbeat reads only the leases changed since the last one.
      // A counter row (not a sequence): its row lock makes the versions commit in order, so a
      // reader that saw version v has seen every change up to v.
      "ALTER TABLE leases ADD COLUMN version BIGINT NOT NULL DEFAULT 0",
      "CREATE INDEX leases_version ON leases (version)",
      "CREATE TABLE lease_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL)",
      "INSERT INTO lease_version (id, version) VALUES (1, 0)",
      // 20: the addresses each instance sends to PBXs from (the firewall list, issue 23).
      "ALTER TABLE instances ADD COLUMN addrs TEXT NOT NULL DEFAULT '[]'",
      // 21, 22: Telegram lines' session snapshots (a line moves without a shared disk).
      "CREATE TABLE telegram_sessions (id {id}, line_id BIGINT NOT NULL, taken_ms BIGINT NOT "
      "NULL, srvidx BIGINT NOT NULL, checksum TEXT NOT NULL, data TEXT NOT NULL)",
      "CREATE INDEX telegram_sessions_line ON telegram_sessions (line_id, taken_ms)",
      // 23: the CRM webhooks (issue 23).
      "CREATE TABLE webhooks (id {id}, code TEXT UNIQUE, data TEXT NOT NULL, "
      "updated_at TEXT NOT NULL)",
  };
  return kMigrations;
}

namespace {

Unexpected<Error> single_instance() {
  return unexpected(Error{Errc::Io, "several instances need store.postgres"});
}

}  // namespace

Result<ClusterView, Error> Store::heartbeat(const InstanceRow&, bool, int64_t, int64_t) {
  return single_instance();
}
Result<std::vector<InstanceRow>, Error> Store::instances() {
  return single_instance();
}
Result<std::vector<std::string>, Error> Store::acquire_leases(const std::vector<std::string>&,
                                                              int64_t, int64_t) {
  return single_instance();
}
Result<void, Error> Store::release_leases(const std::vector<std::string>&, int64_t) {
  return single_instance();
}
Result<void, Error> Store::put_session(const SessionSnapshot&, size_t) {
  return single_instance();
}
Result<std::vector<SessionSnapshot>, Error> Store::sessions(int64_t) {
  return single_instance();
}
Result<void, Error> Store::delete_sessions(int64_t) {
  return single_instance();
}

}  // namespace esg::store
