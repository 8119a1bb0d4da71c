#pragma once
// What the B2BUA reads about the instance at call time: an immutable snapshot of the
// configuration (accounts, PBX connections, normalization and routing rules), rebuilt whenever
// one of them changes and swapped in whole, so a call sees one consistent version; live account
// state (registered? pinging?); trunk counters shared by all workers; the board of calls in
// progress for the monitoring API; and where CDRs go.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/pbx.hpp"
#include "accounts/registrar.hpp"
#include "edge/matching/matching.hpp"
#include "edge/normalize/normalize.hpp"
#include "edge/routing/routing.hpp"
#include "store/store.hpp"

namespace esg::edge {

struct EdgeConfig {
  std::shared_ptr<const AccountIndex> accounts;
  std::vector<std::shared_ptr<const accounts::PbxConnection>> pbxs;
  Normalizer normalizer{{}};
  Router router{{}};
  std::string system_domain = "esg.local";

  std::shared_ptr<const accounts::PbxConnection> pbx(std::string_view code) const;
  // The `ip` connection whose address is `ip`, or the register-out connection whose registrar
  // is at `ip` (who is calling, CONTRACTS.md step 4). A connection given by name is at what
  // `resolved` says the name resolved to.
  using Resolved = std::function<std::vector<std::string>(const accounts::PbxConnection&)>;
  std::shared_ptr<const accounts::PbxConnection> pbx_from(std::string_view ip,
                                                          const Resolved& resolved = {}) const;
};

// Reads accounts, PBX connections and the rules from the store into a snapshot. `share`, when
// given, turns each parsed account into the one the account manager already keeps (the same
// account once in memory, not once per table).
using ShareAccount =
    std::function<std::shared_ptr<const accounts::Account>(accounts::Account&& parsed)>;
std::shared_ptr<EdgeConfig> edge_config_from_store(store::Store& store, std::string system_domain,
                                                   std::vector<std::string> extaddrs,
                                                   const ShareAccount& share = {});

// The substitution test (REST and `esg normalize`): `body` names an account (id or code), a
// direction and the numbers; the answer lists each rule that applied and the result. Errors
// name the field.
Result<nlohmann::json, accounts::FieldError> substitution_test(const EdgeConfig& cfg,
                                                               const nlohmann::json& body);

// Concurrent calls per account or connection (`trunks`), in both directions, across workers.
class Trunks {
 public:
  // False when `limit` (> 0) calls are already in progress on `key`.
  bool acquire(const std::string& key, int limit);
  void release(const std::string& key);
  int in_use(const std::string& key) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, int> used_;
};

// Calls in progress, as the monitoring API shows them. Updated on state changes only.
class CallBoard {
 public:
  // The call's record as JSON text (B2bua::record_text) and its legs' Call-IDs (their notes
  // show on it). Text, not a tree: the B2BUA puts a call up to four times a call, the API reads
  // the board now and then.
  void put(const std::string& id, std::string record, std::string a_call_id = {},
           std::string b_call_id = {});
  void erase(const std::string& id);
  nlohmann::json list() const;
  std::optional<nlohmann::json> get(const std::string& id) const;
  size_t size() const;
  // For /metrics: calls routed by direction ("in", "out"), and calls ended by direction and
  // result ("answered", "cancelled", "4xx", "5xx", "6xx", "failed").
  void count_attempt(const std::string& direction);
  void count_end(const std::string& direction, const std::string& result);
  nlohmann::json counters() const;  // {"attempts": {dir: n}, "completed": {dir: {result: n}}}
  // What another part of esg knows of a call's leg (the Telegram side of a Telegram line's
  // call): shown as `key` on the call whose A or B leg has Call-ID `leg_call_id`. Kept until
  // the call leaves the board (an annotation of no call left is dropped with the next one).
  void annotate(const std::string& leg_call_id, const std::string& key, nlohmann::json value);
  // The annotation `key` of a leg, while kept (a call's CDR takes its Telegram side's fields
  // from it when the call ends, after it has left the board).
  std::optional<nlohmann::json> note(const std::string& leg_call_id, const std::string& key) const;

 private:
  struct Entry {
    std::string record;
    std::string a_call_id, b_call_id;
  };
  // The notes of a call's legs, taken under the lock; shown on its record after it.
  using Notes = std::vector<std::pair<std::string, nlohmann::json>>;
  Notes notes_of(const std::string& id, const Entry& call) const;
  static nlohmann::json with_notes(const std::string& record, const Notes& notes);
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> calls_;
  std::unordered_map<std::string, std::pair<std::string, nlohmann::json>> notes_;
  nlohmann::json counters_ = {{"attempts", nlohmann::json::object()},
                              {"completed", nlohmann::json::object()}};
};

// Writes CDRs on a thread of its own: a worker never waits for the disk.
class CdrWriter {
 public:
  // `srvidx` marks the records as this instance's: another one closes them if it dies.
  CdrWriter(store::Store& store, int64_t srvidx);
  ~CdrWriter();
  CdrWriter(const CdrWriter&) = delete;
  CdrWriter& operator=(const CdrWriter&) = delete;
  // The record of call `key` as it stands now (inserted the first time, updated after).
  void write(const std::string& key, store::Cdr cdr, bool last);
  // A change to the record of the call whose A leg is `call_id`, from outside the B2BUA (a
  // Telegram line's missed-call message, written after the PBX's reject ended the call).
  // Applied in order with the writes: to the record as last written when the call has ended
  // (one of the last 1024 ended records), else to each later write of that call. `edit` runs
  // on the writer's thread and must be idempotent.
  using Edit = std::function<void(nlohmann::json& data)>;
  void amend(const std::string& call_id, Edit edit);
  void flush();               // waits until everything queued is written (tests, shutdown)
  uint64_t failures() const;  // records the store refused (counted, for the metrics)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int64_t srvidx_;
};

// The Telegram lines' SIP sides (issue 9): each running line is a SIP peer of esg on loopback
// (src/telegram/bridge.hpp). Its INVITEs come from `host:port` and go to its PBX connection;
// calls routed to it (action `telegram`) are sent there. Written by the lines, read by the
// workers.
struct TelegramLineInfo {
  std::string code;
  std::string pbx;    // the PBX connection its incoming calls go to
  int trunks = 0;     // concurrent calls, both directions; 0: no limit
  std::string state;  // the line's authorization state: calls go out only when "ready"
  std::string host;
  uint16_t port = 0;
  // The other PBX connections its menu of lines names (issue 23): an INVITE from the line may
  // ask for one of these with X-ESG-PBX, never for another.
  std::vector<std::string> menu_pbxs;
};

class TelegramDirectory {
 public:
  void put(TelegramLineInfo line);
  void remove(const std::string& code);
  std::optional<TelegramLineInfo> by_code(std::string_view code) const;
  std::optional<TelegramLineInfo> at(std::string_view host, uint16_t port) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, TelegramLineInfo> lines_;
};

class Context {
 public:
  virtual ~Context() = default;
  virtual std::shared_ptr<const EdgeConfig> config() const = 0;
  // Can a call go out through this account now (enabled, registered when it registers, its
  // OPTIONS pings answered)? `why` says what is missing.
  virtual bool account_ready(const accounts::Account& a, std::string* why) const = 0;
  virtual Trunks& trunks() = 0;
  virtual CallBoard& board() = 0;
  virtual CdrWriter* cdrs() = 0;                 // null: no CDRs
  virtual accounts::Registrar* registrar() = 0;  // null: no register-in connections
  // What the account's domain and proxy names resolved to (for the source check): empty for
  // addresses, and until the lookup has answered.
  virtual std::vector<std::string> resolved(const accounts::Account& a) = 0;
  // The same for a PBX connection's address (and a register-out registrar's domain).
  virtual std::vector<std::string> resolved(const accounts::PbxConnection& p) = 0;
  // A request that failed in a way attackers cause (unknown account, wrong credentials):
  // counted per source address, for the bans.
  virtual void count_failure(const std::string& addr, const std::string& what) = 0;
  virtual TelegramDirectory& telegram() = 0;
};

}  // namespace esg::edge
