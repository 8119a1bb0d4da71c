#include "edge/context.hpp"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <thread>

#include "base/json_text.hpp"
#include "base/text.hpp"

namespace esg::edge {

std::shared_ptr<const accounts::PbxConnection> EdgeConfig::pbx(std::string_view code) const {
  for (const auto& p : pbxs) {
    if (p->code == code) return p;
  }
  return nullptr;
}

std::shared_ptr<const accounts::PbxConnection> EdgeConfig::pbx_from(
    std::string_view ip, const Resolved& resolved) const {
  for (const auto& p : pbxs) {
    if (!p->enabled) continue;
    if (p->mode == "ip" && text::iequals(p->address, ip)) return p;
    if (p->mode == "register-out" &&
        (text::iequals(p->domain, ip) || text::iequals(p->address, ip)))
      return p;
  }
  // Connections known by name: only when the literal addresses named none.
  if (!resolved) return nullptr;
  // A name has a letter and no ':' (IPv4 literals have no letter, IPv6 ones have ':').
  auto is_name = [](const std::string& s) {
    return s.find(':') == std::string::npos &&
           std::any_of(s.begin(), s.end(), [](char ch) { return std::isalpha(uint8_t(ch)); });
  };
  for (const auto& p : pbxs) {
    if (!p->enabled || (p->mode != "ip" && p->mode != "register-out")) continue;
    if (!is_name(p->address) && !(p->mode == "register-out" && is_name(p->domain))) continue;
    for (const auto& addr : resolved(*p)) {
      if (addr == ip) return p;
    }
  }
  return nullptr;
}

std::shared_ptr<EdgeConfig> edge_config_from_store(store::Store& store, std::string system_domain,
                                                   std::vector<std::string> extaddrs,
                                                   const ShareAccount& share) {
  auto cfg = std::make_shared<EdgeConfig>();
  cfg->system_domain = std::move(system_domain);
  auto rows_of = [&store](store::Table t) {
    std::vector<nlohmann::json> out;
    if (auto rows = store.list(t)) {
      for (const auto& row : *rows) {
        auto j = nlohmann::json::parse(row.data, nullptr, false);
        if (!j.is_object()) continue;
        j["id"] = row.id;
        out.push_back(std::move(j));
      }
    }
    return out;
  };
  std::vector<std::shared_ptr<const accounts::Account>> accounts;
  for (const auto& j : rows_of(store::Table::Providers)) {
    if (auto a = accounts::account_from_json(j)) {
      accounts.push_back(share ? share(std::move(*a))
                               : std::make_shared<const accounts::Account>(std::move(*a)));
    }
  }
  cfg->accounts = std::make_shared<AccountIndex>(std::move(accounts), std::move(extaddrs));
  for (const auto& j : rows_of(store::Table::Pbx)) {
    if (auto p = accounts::pbx_from_json(j))
      cfg->pbxs.push_back(std::make_shared<const accounts::PbxConnection>(std::move(*p)));
  }
  std::vector<NormRule> norm;
  for (const auto& j : rows_of(store::Table::Normalization)) {
    if (auto r = norm_rule_from_json(j)) norm.push_back(std::move(*r));
  }
  cfg->normalizer = Normalizer(std::move(norm));
  std::vector<RouteRule> routes;
  for (const auto& j : rows_of(store::Table::Routes)) {
    if (auto r = route_rule_from_json(j)) routes.push_back(std::move(*r));
  }
  cfg->router = Router(std::move(routes));
  return cfg;
}

Result<nlohmann::json, accounts::FieldError> substitution_test(const EdgeConfig& cfg,
                                                               const nlohmann::json& b) {
  using accounts::FieldError;
  auto bad = [](std::string f, std::string m) {
    return unexpected(FieldError{std::move(f), std::move(m)});
  };
  if (!b.is_object()) return bad("", "the body must be a JSON object");
  static const char* kKnown[] = {"account",      "direction", "from_user",
                                 "from_display", "to_user",   "ruri_user"};
  for (auto it = b.begin(); it != b.end(); ++it) {
    bool known = false;
    for (const char* k : kKnown)
      known = known || it.key() == k;
    if (!known) return bad(it.key(), "unknown field");
    if (it.key() != "account" && !it.value().is_string()) return bad(it.key(), "must be a string");
  }
  std::shared_ptr<const accounts::Account> account;
  if (!b.contains("account")) return bad("account", "is required (id or code)");
  if (b["account"].is_number_integer()) {
    for (const auto& a : cfg.accounts->accounts()) {
      if (a->id == b["account"].get<int64_t>()) account = a;
    }
  } else if (b["account"].is_string()) {
    account = cfg.accounts->by_code(b["account"].get<std::string>());
  } else {
    return bad("account", "must be an account id or code");
  }
  if (!account) return bad("account", "no such account");
  const std::string direction = b.value("direction", std::string("in"));
  if (direction != "in" && direction != "out") return bad("direction", "must be in or out");
  NormFields in;
  in.from_user = b.value("from_user", std::string());
  in.from_display = b.value("from_display", std::string());
  in.to_user = b.value("to_user", std::string());
  in.ruri_user = b.value("ruri_user", in.to_user);
  auto res = cfg.normalizer.apply(direction == "out", *account, in, cfg.system_domain);
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : res.steps) {
    steps.push_back(
        {{"rule", s.rule}, {"field", s.field}, {"before", s.before}, {"after", s.after}});
  }
  return nlohmann::json{{"account", account->code}, {"direction", direction},
                        {"input", to_json(in)},     {"steps", steps},
                        {"defaults", res.defaults}, {"result", to_json(res.fields)}};
}

bool Trunks::acquire(const std::string& key, int limit) {
  std::lock_guard lock(mu_);
  int& n = used_[key];
  if (limit > 0 && n >= limit) return false;
  ++n;
  return true;
}

void Trunks::release(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = used_.find(key);
  if (it == used_.end()) return;
  if (--it->second <= 0) used_.erase(it);
}

int Trunks::in_use(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = used_.find(key);
  return it == used_.end() ? 0 : it->second;
}

void CallBoard::put(const std::string& id, std::string record, std::string a_call_id,
                    std::string b_call_id) {
  Entry e{std::move(record), std::move(a_call_id), std::move(b_call_id)};
  std::lock_guard lock(mu_);
  std::swap(calls_[id], e);  // the old record is freed after the lock
}

void CallBoard::erase(const std::string& id) {
  std::lock_guard lock(mu_);
  calls_.erase(id);
}

nlohmann::json CallBoard::list() const {
  // Copied under the lock, parsed after it: the workers put calls meanwhile.
  std::vector<std::pair<std::string, Notes>> calls;
  {
    std::lock_guard lock(mu_);
    calls.reserve(calls_.size());
    for (const auto& [id, c] : calls_)
      calls.emplace_back(c.record, notes_of(id, c));
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [record, notes] : calls)
    out.push_back(with_notes(record, notes));
  return out;
}

void CallBoard::annotate(const std::string& leg_call_id, const std::string& key,
                         nlohmann::json value) {
  std::lock_guard lock(mu_);
  // Bounded by the calls on the board: notes of legs no call has any more go first.
  if (notes_.size() > 2 * calls_.size() + 64) {
    std::unordered_map<std::string, bool> legs;
    for (const auto& [id, c] : calls_) {
      legs[id] = true;
      legs[c.a_call_id] = true;
      legs[c.b_call_id] = true;
    }
    std::erase_if(notes_, [&](const auto& n) { return !legs.count(n.first); });
  }
  notes_[leg_call_id] = {key, std::move(value)};
}

std::optional<nlohmann::json> CallBoard::note(const std::string& leg_call_id,
                                              const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = notes_.find(leg_call_id);
  if (it == notes_.end() || it->second.first != key) return std::nullopt;
  return it->second.second;
}

CallBoard::Notes CallBoard::notes_of(const std::string& id, const Entry& call) const {
  Notes out;
  for (const std::string* leg : {&id, &call.a_call_id, &call.b_call_id}) {
    auto it = notes_.find(*leg);
    if (!leg->empty() && it != notes_.end()) out.push_back(it->second);
  }
  return out;
}

nlohmann::json CallBoard::with_notes(const std::string& record, const Notes& notes) {
  // Records are B2bua::record_text's: valid JSON, U+FFFD for bytes from the wire.
  nlohmann::json out = nlohmann::json::parse(record, nullptr, false);
  if (!out.is_object()) return nlohmann::json::object();
  for (const auto& [key, value] : notes)
    out[key] = value;
  return out;
}

void CallBoard::count_attempt(const std::string& direction) {
  std::lock_guard lock(mu_);
  auto& n = counters_["attempts"][direction];
  n = n.is_number() ? n.get<uint64_t>() + 1 : 1;
}

void CallBoard::count_end(const std::string& direction, const std::string& result) {
  std::lock_guard lock(mu_);
  auto& n = counters_["completed"][direction][result];
  n = n.is_number() ? n.get<uint64_t>() + 1 : 1;
}

nlohmann::json CallBoard::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::optional<nlohmann::json> CallBoard::get(const std::string& id) const {
  std::string record;
  Notes notes;
  {
    std::lock_guard lock(mu_);
    auto it = calls_.find(id);
    if (it == calls_.end()) return std::nullopt;
    record = it->second.record;
    notes = notes_of(id, it->second);
  }
  return with_notes(record, notes);
}

size_t CallBoard::size() const {
  std::lock_guard lock(mu_);
  return calls_.size();
}

struct CdrWriter::Impl {
  store::Store& store;
  std::mutex mu;
  std::condition_variable cv, idle;
  struct Item {
    std::string key;
    store::Cdr cdr;
    bool last;
    Edit edit;  // set: an amend of the call cdr.call_id, no record of its own
  };
  std::deque<Item> queue;
  bool stopping = false;
  bool busy = false;
  bool hurry = false;  // flush() waits: no gathering
  std::atomic<uint64_t> failures{0};
  // Writer thread only: key -> row id of the calls in progress; their edits by A-leg Call-ID;
  // the last records of ended calls, for amends (moved here, not copied: a map entry per call
  // on this thread, and a few MiB at most).
  static constexpr size_t kRecentEnded = 1024;
  std::unordered_map<std::string, int64_t> ids;
  std::unordered_map<std::string, std::vector<Edit>> edits;
  std::unordered_map<std::string, store::Cdr> recent;
  std::deque<std::string> recent_order;
  std::thread thread;

  static void apply(store::Cdr& cdr, const std::vector<Edit>& list) {
    auto data = nlohmann::json::parse(cdr.data, nullptr, false);
    if (!data.is_object()) return;
    for (const auto& e : list)
      e(data);
    cdr.data = json_text(data);
  }

  void write_one(Item& item) {
    if (item.edit) return amend_one(item);
    if (!edits.empty()) {
      auto e = edits.find(item.cdr.call_id);
      if (e != edits.end()) {
        apply(item.cdr, e->second);
        if (item.last) edits.erase(e);
      }
    }
    auto it = ids.find(item.key);
    if (it == ids.end()) {
      auto id = store.cdr_insert(item.cdr);
      if (!id) ++failures;
      if (id && !item.last) ids[item.key] = *id;
      if (id) item.cdr.id = *id;
    } else {
      item.cdr.id = it->second;
      if (!store.cdr_update(item.cdr)) ++failures;
      if (item.last) ids.erase(it);
    }
    if (item.last && item.cdr.id) keep_ended(std::move(item.cdr));
  }

  void keep_ended(store::Cdr cdr) {
    std::string call_id = cdr.call_id;
    if (recent.insert_or_assign(call_id, std::move(cdr)).second)
      recent_order.push_back(std::move(call_id));
    while (recent_order.size() > kRecentEnded) {
      recent.erase(recent_order.front());
      recent_order.pop_front();
    }
  }

  void amend_one(Item& item) {
    auto r = recent.find(item.cdr.call_id);
    if (r != recent.end()) {
      apply(r->second, {item.edit});
      if (!store.cdr_update(r->second)) ++failures;
      return;
    }
    // Not ended yet (or not written yet): each later write of the call takes the edit. A
    // bounded number of calls: edits for calls that never come are dropped with the oldest.
    if (edits.size() >= kRecentEnded && !edits.count(item.cdr.call_id)) edits.erase(edits.begin());
    edits[item.cdr.call_id].push_back(std::move(item.edit));
  }

  explicit Impl(store::Store& s) : store(s) {
    thread = std::thread([this] { run(); });
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty()) return;
      // Gather for a moment: one commit per burst instead of one per call (each commit costs
      // a dozen system calls). A crash loses at most this much.
      if (!stopping && !hurry && queue.size() < 1000) {
        cv.wait_for(lock, std::chrono::milliseconds(200),
                    [this] { return stopping || hurry || queue.size() >= 1000; });
      }
      hurry = false;
      // Everything queued goes in one transaction: one commit for a burst of calls.
      std::deque<Item> batch;
      batch.swap(queue);
      busy = true;
      lock.unlock();
      auto r = store.in_transaction([&] {
        for (auto& item : batch)
          write_one(item);
      });
      if (!r) failures += batch.size();
      lock.lock();
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
  }
};

CdrWriter::CdrWriter(store::Store& store, int64_t srvidx)
    : impl_(std::make_unique<Impl>(store)), srvidx_(srvidx) {}

CdrWriter::~CdrWriter() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();  // writes what is queued first
}

void CdrWriter::write(const std::string& key, store::Cdr cdr, bool last) {
  cdr.srvidx = srvidx_;
  bool wake;
  {
    std::lock_guard lock(impl_->mu);
    // Bounded: under a flood of calls with a stalled disk, intermediate updates go first.
    if (impl_->queue.size() > 100000 && !last) return;
    // Only the first record of a burst wakes the writer (a futex call per record costs more
    // than the record); it takes the whole queue when it runs.
    wake = (impl_->queue.empty() && !impl_->busy) || impl_->queue.size() == 999;
    impl_->queue.push_back({key, std::move(cdr), last, {}});
  }
  if (wake) impl_->cv.notify_one();
}

void CdrWriter::amend(const std::string& call_id, Edit edit) {
  if (!edit) return;
  store::Cdr cdr;
  cdr.call_id = call_id;
  {
    std::lock_guard lock(impl_->mu);
    impl_->queue.push_back({{}, std::move(cdr), false, std::move(edit)});
  }
  impl_->cv.notify_one();
}

uint64_t CdrWriter::failures() const {
  return impl_->failures.load();
}

void CdrWriter::flush() {
  std::unique_lock lock(impl_->mu);
  impl_->hurry = true;
  impl_->cv.notify_one();
  impl_->idle.wait(lock, [this] { return impl_->queue.empty() && !impl_->busy; });
}

}  // namespace esg::edge

namespace esg::edge {

void TelegramDirectory::put(TelegramLineInfo line) {
  std::lock_guard lock(mu_);
  lines_[line.code] = std::move(line);
}

void TelegramDirectory::remove(const std::string& code) {
  std::lock_guard lock(mu_);
  lines_.erase(code);
}

std::optional<TelegramLineInfo> TelegramDirectory::by_code(std::string_view code) const {
  std::lock_guard lock(mu_);
  auto it = lines_.find(std::string(code));
  if (it == lines_.end()) return std::nullopt;
  return it->second;
}

std::optional<TelegramLineInfo> TelegramDirectory::at(std::string_view host, uint16_t port) const {
  std::lock_guard lock(mu_);
  for (const auto& [code, l] : lines_) {
    if (l.port == port && l.host == host) return l;
  }
  return std::nullopt;
}

}  // namespace esg::edge
