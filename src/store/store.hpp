#pragma once
// The store: what esg keeps between runs (DESIGN.md "Storage and scale"). Each collection is a
// table of rows with an integer id, a unique code and the object as JSON text, so the schema is
// the same on SQLite (embedded, the default) and PostgreSQL (several instances): the
// dialect-specific bits (id columns, upserts, pragmas, the clock) stay behind this interface.

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace esg::store {

// Rules have no code of their own: insert them with an empty code (stored as NULL).
enum class Table : uint8_t {
  Providers,
  Pbx,
  Normalization,
  Routes,
  BorderRules,
  TelegramLines,
  Webhooks
};
std::string_view table_name(Table t);

struct Row {
  int64_t id = 0;
  std::string code;
  std::string data;  // JSON text
};

enum class Errc : uint8_t { NotFound, Conflict, Io };
struct Error {
  Errc code;
  std::string message;
};

// Opening a store that cannot be used (start-up only).
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Cdr {
  int64_t id = 0;
  std::string call_id;         // the A leg's
  int64_t started_ms = 0;      // Unix time in milliseconds
  std::string state;           // active | answered | ended | interrupted
  std::string caller, called;  // as received (the filters also look at data)
  std::string data;            // the whole record as JSON text
  int64_t srvidx = 0;          // the instance that carries the call (0: written before clusters)
};

struct CdrQuery {
  int64_t from_ms = 0;
  int64_t to_ms = INT64_MAX;
  std::string number;  // caller or called contains it (empty: any)
  size_t limit = 100;
};

// Several instances (cluster/): each heartbeats into `instances` and holds leases on the
// accounts it serves. Times are the store's clock (PostgreSQL's), never an instance's, so that
// instances with skewed clocks agree on who is alive and whose lease ran out.
struct InstanceRow {
  int64_t srvidx = 0;
  int64_t roleid = 0;
  std::string node;
  std::string addr;
  int64_t started_ms = 0;
  int64_t heartbeat_ms = 0;  // the store's clock at the last heartbeat
  std::string regs;          // JSON: the accounts it serves, as the monitoring API shows them
  // Drawn at each start: a second instance configured with the same srvidx has another one.
  std::string boot;
  // JSON: the addresses it sends to PBXs from (cluster/firewall.hpp), for /fw.txt.
  std::string addrs = "[]";
};

struct Lease {
  std::string account;  // "provider:<id>", "pbx:<id>", "tg:<id>"
  int64_t srvidx = 0;   // 0: released, nobody holds it
  // The store's clock: the lease is held at least until then (taken + ttl), and after that for
  // as long as its holder heartbeats: the heartbeat renews every lease at once.
  int64_t expires_ms = 0;
  int64_t version = 0;  // the lease counter when it last changed
};

struct ClusterView {
  int64_t now_ms = 0;                  // the store's clock when it was read
  int64_t config_version = 0;          // bumped by every change of a collection (instances re-read)
  int64_t lease_version = 0;           // bumped by every change of a lease
  std::vector<InstanceRow> instances;  // without `regs` (instances() has them)
  std::vector<Lease> leases;           // those changed after the version asked for
};

// A Telegram line's TDLib folder, packed (telegram/sessions.hpp): the next instance that serves
// the line restores it, so a line moves between machines without a shared disk (issue 23).
struct SessionSnapshot {
  int64_t id = 0;
  int64_t line_id = 0;
  int64_t taken_ms = 0;  // the store's clock
  int64_t srvidx = 0;    // who took it
  std::string checksum;  // SHA-256 of `data`, hex
  std::string data;      // the packed folder (base64 text: the same column on both dialects)
};

class Store {
 public:
  virtual ~Store() = default;
  virtual Result<std::vector<Row>, Error> list(Table t) = 0;
  virtual Result<Row, Error> get(Table t, int64_t id) = 0;
  virtual Result<Row, Error> find_code(Table t, const std::string& code) = 0;
  // `id` 0 takes the next free one. Conflict when the code (or id) is taken.
  virtual Result<int64_t, Error> insert(Table t, const std::string& code, const std::string& data,
                                        int64_t id = 0) = 0;
  virtual Result<void, Error> update(Table t, int64_t id, const std::string& code,
                                     const std::string& data) = 0;
  virtual Result<void, Error> remove(Table t, int64_t id) = 0;
  virtual int schema_version() = 0;

  // Call detail records: written when a call starts (state `active`), updated when it is
  // answered and when it ends, so that a crash loses nothing.
  virtual Result<int64_t, Error> cdr_insert(const Cdr& c) = 0;
  virtual Result<void, Error> cdr_update(const Cdr& c) = 0;
  virtual Result<std::vector<Cdr>, Error> cdr_query(const CdrQuery& q) = 0;
  // Runs `f` (which calls this store) as one transaction: one commit for many writes.
  virtual Result<void, Error> in_transaction(const std::function<void()>& f) = 0;
  // What instance `srvidx` left `active` or `answered` (a crash, its own or noticed by
  // another instance) becomes `interrupted`; rows from before clusters (srvidx 0) too.
  // Returns how many.
  virtual Result<int64_t, Error> cdr_interrupt_active(int64_t srvidx) = 0;

  // Several instances: only PostgreSQL implements these (SQLite is one instance's store).
  // Writes this instance's row (heartbeat = now, or 0 when `self.heartbeat_ms` < 0: the
  // instance stopped; `regs` only when `with_regs`), then reads the view: the instances and the
  // leases changed after `leases_after` (all of them for -1). The heartbeat is also the renewal
  // of every lease `self` holds, so an idle heartbeat reads no lease row and writes only its
  // own: its cost does not grow with the accounts. Conflict when the row belongs to another
  // start (`boot`) that heartbeated within `dead_after_ms`: two live instances with one srvidx
  // (or a restart before the old one counts as dead).
  virtual Result<ClusterView, Error> heartbeat(const InstanceRow& self, bool with_regs,
                                               int64_t dead_after_ms, int64_t leases_after);
  // Every instance with its `regs`.
  virtual Result<std::vector<InstanceRow>, Error> instances();
  // Takes each lease that nobody holds, that `srvidx` holds already, or whose holder has been
  // silent for `ttl_ms` (and that was taken more than `ttl_ms` ago); returns the accounts
  // `srvidx` holds now. Atomic per lease: two instances never both get one unexpired lease,
  // and a holder that heartbeats again is never robbed by a taker that saw it silent.
  virtual Result<std::vector<std::string>, Error> acquire_leases(
      const std::vector<std::string>& accounts, int64_t srvidx, int64_t ttl_ms);
  // Releases those of `accounts` that `srvidx` holds (the row stays, with srvidx 0, so that
  // the other instances see the change among the leases changed since their last look).
  virtual Result<void, Error> release_leases(const std::vector<std::string>& accounts,
                                             int64_t srvidx);
  // Telegram session snapshots (PostgreSQL only, as the leases): a new one, keeping the
  // newest `keep` of its line; a line's snapshots, newest first; all of a deleted line's.
  virtual Result<void, Error> put_session(const SessionSnapshot& s, size_t keep);
  virtual Result<std::vector<SessionSnapshot>, Error> sessions(int64_t line_id);
  virtual Result<void, Error> delete_sessions(int64_t line_id);
};

// The migrations, in order; migration i brings the schema to version i + 1. `{id}` stands for
// the dialect's auto-numbered primary key column type.
const std::vector<std::string>& migrations();

// SQLite in WAL mode, the file created (with its folder) when missing. Throws StoreError.
std::unique_ptr<Store> open_sqlite(const std::string& path);
// PostgreSQL (libpq connection string or URI). Throws StoreError when the first connection or
// the migrations fail; later, a lost connection is an Io error and re-established by itself.
std::unique_ptr<Store> open_postgres(const std::string& conninfo);

}  // namespace esg::store
