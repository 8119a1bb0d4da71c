#include "accounts/manager.hpp"

#include "log/log.hpp"

#include "base/random.hpp"

#include <condition_variable>
#include <ctime>
#include <filesystem>
#include <stdexcept>

namespace esg::accounts {

using nlohmann::json;

namespace {

std::string now_text() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
  return buf;
}

ApiError from_store(const store::Error& e) {
  switch (e.code) {
    case store::Errc::NotFound:
      return {404, "no provider with this id", "id"};
    case store::Errc::Conflict:
      return {409, "a provider with this code already exists", "code"};
    case store::Errc::Io:
      break;
  }
  return {500, "store: " + e.message, ""};
}

}  // namespace

AccountManager::AccountManager(store::Store& store, Runtime& runtime, ManagerOptions options)
    : store_(store), runtime_(runtime), options_(std::move(options)) {
  if (!options_.log_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(options_.log_dir, ec);
    reg_log_.open(options_.log_dir + "/reg.log", std::ios::app);
  }
}

AccountManager::~AccountManager() {
  stop();
}

std::string AccountManager::call_id_for(size_t worker, const std::string& prefix) const {
  // Responses find their transaction on the worker their Call-ID hashes to: pick a Call-ID
  // that hashes to the account's worker (a few tries on average, once per account).
  for (;;) {
    std::string id = prefix + random::hex(16) + "@esg";
    if (runtime_.worker_for(id) == worker) return id;
  }
}

void AccountManager::start(const json& config_providers) {
  if (!config_providers.is_array()) throw std::runtime_error("providers: must be an array");
  for (size_t i = 0; i < config_providers.size(); ++i) {
    const std::string path = "providers[" + std::to_string(i) + "]";
    auto a = account_from_json(config_providers[i]);
    if (!a) {
      throw std::runtime_error(path + (a.error().field.empty() ? "" : "." + a.error().field) +
                               ": " + a.error().message);
    }
    const std::string data = to_stored_json(*a).dump();
    if (auto existing = store_.find_code(store::Table::Providers, a->code)) {
      auto r = store_.update(store::Table::Providers, existing->id, a->code, data);
      if (!r) throw std::runtime_error(path + ": store: " + r.error().message);
    } else {
      auto r = store_.insert(store::Table::Providers, a->code, data, a->id);
      if (!r) throw std::runtime_error(path + ": store: " + r.error().message);
    }
  }
  auto rows = store_.list(store::Table::Providers);
  if (!rows) throw std::runtime_error("store: " + rows.error().message);
  for (const auto& row : *rows) {
    auto j = json::parse(row.data, nullptr, false);
    auto a = j.is_discarded() ? Result<Account, FieldError>(unexpected(FieldError{"", "bad JSON"}))
                              : account_from_json(j);
    if (!a) {
      throw std::runtime_error("store: provider " + row.code + ": " + a.error().field + ": " +
                               a.error().message);
    }
    a->id = row.id;
    // Start-up REGISTERs are paced at register_rate per second. In leased mode nothing starts
    // here: serve() paces what this instance takes.
    txn::Millis delay{0};
    if (!options_.leased) {
      std::lock_guard lock(mu_);
      delay = next_register_delay(*a);
    }
    run(*a, delay);
  }
}

void AccountManager::run(const Account& a, txn::Millis delay) {
  std::lock_guard lock(mu_);
  run_locked(a, delay);
}

void AccountManager::run_locked(const Account& a, txn::Millis delay) {
  // One copy per account: the client and the monitoring snapshot share this one.
  const auto& account = known_[a.id] = std::make_shared<const Account>(a);
  if (options_.leased) {
    auto it = served_.find(a.id);
    if (it == served_.end()) return;  // another instance's, or nobody's yet
    launch(*account, delay, it->second);
    return;
  }
  launch(*account, delay, false);
}

void AccountManager::launch(const Account& a, txn::Millis delay, bool clear_first) {
  auto slot = std::make_shared<Slot>();
  slot->id = a.id;
  // Register-out PBX connections run under negative ids.
  slot->worker =
      size_t((a.id < 0 ? -a.id : a.id) % int64_t(std::max<size_t>(1, runtime_.workers())));
  RegistrationOptions o = options_.registration;
  o.start_delay = delay;
  o.clear_bindings_first = clear_first;
  o.call_id = call_id_for(slot->worker, "reg-");
  if (a.pingmode == "options") o.ping_call_id = call_id_for(slot->worker, "ping-");
  const int64_t id = a.id;
  // The account known_ keeps, when that is the one given (a single copy per account).
  const auto k = known_.find(id);
  auto account =
      k != known_.end() && k->second.get() == &a ? k->second : std::make_shared<const Account>(a);
  snapshots_[id] = Snapshot{account, initial_status(!a.enabled ? RegState::Disabled
                                                    : a.reg    ? RegState::Unregistered
                                                               : RegState::None)};
  slots_[id] = slot;
  runtime_.post(slot->worker, [this, slot, account, o, id] {
    slot->client = std::make_unique<RegistrationClient>(
        account, runtime_.layer(slot->worker), runtime_.timers(slot->worker), runtime_.link(), o,
        // Two pointers: std::function keeps them in place, with no allocation per account.
        [this, from = slot.get()](const SharedStatus& s) { on_status(from->id, from, s); });
    slot->client->start();
  });
}

txn::Millis AccountManager::next_register_delay(const Account& a) {
  if (!a.reg || !a.enabled) return txn::Millis(0);
  const auto now = std::chrono::steady_clock::now();
  // Slots not used while idle are not saved up: a burst after a quiet time is still paced.
  if (next_register_ < now) next_register_ = now;
  const auto delay = std::chrono::ceil<txn::Millis>(next_register_ - now);
  next_register_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.1, options_.register_rate)));
  return delay;
}

void AccountManager::halt(int64_t id, std::function<void()> done) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard lock(mu_);
    auto it = slots_.find(id);
    if (it != slots_.end()) {
      slot = it->second;
      slots_.erase(it);
      halting_[slot.get()] = slot;
    }
  }
  if (!slot) {  // nothing running (outside the lock: `done` may start a client)
    if (done) done();
    return;
  }
  const size_t w = slot->worker;
  auto finish = [this, w](Slot* key, std::function<void()> done) {
    // Not inside the client's own callback: the client goes on the next turn of the loop.
    runtime_.post(w, [this, key, done = std::move(done)] {
      std::shared_ptr<Slot> s;
      {
        std::lock_guard lock(mu_);
        auto it = halting_.find(key);
        if (it != halting_.end()) {
          s = it->second;
          halting_.erase(it);
        }
      }
      if (s) s->client.reset();
      if (done) done();
    });
  };
  // The client's stop callback holds no owning pointer to its own slot (that would be a cycle
  // that leaks when the answer never comes); halting_ owns the slot until it is done.
  runtime_.post(w, [slot, finish, done = std::move(done)]() mutable {
    if (!slot->client) {
      finish(slot.get(), std::move(done));
      return;
    }
    Slot* key = slot.get();
    slot->client->stop(
        [finish, key, done = std::move(done)]() mutable { finish(key, std::move(done)); });
  });
}

void AccountManager::stop() {
  std::vector<int64_t> ids;
  std::vector<std::shared_ptr<Slot>> slots;
  {
    std::lock_guard lock(mu_);
    for (const auto& [id, slot] : slots_) {
      ids.push_back(id);
      slots.push_back(slot);
    }
    for (const auto& [key, slot] : halting_)
      slots.push_back(slot);
  }
  if (slots.empty()) return;
  // Shared, not on this stack: a late answer may still count down after we stopped waiting.
  struct Wait {
    std::mutex m;
    std::condition_variable cv;
    size_t left = 0;
    size_t pending = 0;
  };
  auto w = std::make_shared<Wait>();
  w->left = ids.size();
  for (int64_t id : ids) {
    halt(id, [w] {
      std::lock_guard l(w->m);
      --w->left;
      w->cv.notify_all();
    });
  }
  // Un-REGISTERs get an answer or time out (Timer F); a graceful stop waits a bounded time.
  {
    std::unique_lock l(w->m);
    w->cv.wait_for(l, std::chrono::seconds(5), [&] { return w->left == 0; });
    w->pending = slots.size();
  }
  // Clients still waiting for an answer are destroyed on their workers now, while the workers
  // and their timers still exist (not later, with the queues of a stopped io_context).
  for (const auto& slot : slots) {
    runtime_.post(slot->worker, [w, slot] {
      slot->client.reset();
      std::lock_guard l(w->m);
      --w->pending;
      w->cv.notify_all();
    });
  }
  {
    std::unique_lock l(w->m);
    w->cv.wait_for(l, std::chrono::seconds(5), [&] { return w->pending == 0; });
  }
  {
    std::lock_guard lock(mu_);
    halting_.clear();
  }
  // Whatever is still pending must not call into us any more.
  for (int64_t id : ids) {
    std::lock_guard lock(mu_);
    snapshots_.erase(id);
  }
}

void AccountManager::on_status(int64_t id, const Slot* from, const SharedStatus& shared) {
  std::lock_guard lock(mu_);
  // Only the account's current client speaks for it: a client still un-registering after an
  // edit or a delete must not overwrite what its successor (perhaps a new account that got the
  // same id) reports.
  auto slot = slots_.find(id);
  if (slot == slots_.end() || slot->second.get() != from) return;
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return;
  // The snapshot shares what the client handed out (it never changes): no copy of its own.
  const SharedStatus previous = std::exchange(it->second.status, shared);
  const RegistrationStatus& old = *previous;
  const RegistrationStatus& s = *shared;
  if (old.regstate != s.regstate || old.pingstate != s.pingstate) {
    log::get("accounts")
        .info("{}: regstate {} -> {}, pingstate {} ({}){}{}", it->second.account->code,
              reg_state_name(old.regstate), reg_state_name(s.regstate),
              ping_state_name(s.pingstate), s.reason, s.warning.empty() ? "" : "; ", s.warning);
  }
  if (reg_log_.is_open() &&
      (old.regstate != s.regstate || old.pingstate != s.pingstate || old.reason != s.reason)) {
    reg_log_ << now_text() << " " << it->second.account->code << " regstate "
             << reg_state_name(old.regstate) << " -> " << reg_state_name(s.regstate)
             << " pingstate " << ping_state_name(s.pingstate) << " (" << s.reason << ")";
    if (!s.warning.empty()) reg_log_ << " WARNING: " << s.warning;
    reg_log_ << "\n";
    reg_log_.flush();
  }
}

Result<std::vector<Account>, store::Error> AccountManager::stored() {
  auto rows = store_.list(store::Table::Providers);
  if (!rows) return unexpected(rows.error());
  std::vector<Account> out;
  for (const auto& row : *rows) {
    auto j = json::parse(row.data, nullptr, false);
    if (j.is_discarded()) continue;
    auto a = account_from_json(j);
    if (!a) continue;  // a newer esg wrote it
    a->id = row.id;
    out.push_back(std::move(*a));
  }
  return out;
}

Result<json, ApiError> AccountManager::list() {
  auto accounts = stored();
  if (!accounts) return unexpected(from_store(accounts.error()));
  json items = json::array();
  for (const auto& a : *accounts)
    items.push_back(to_json(a));
  return json{{"items", items}};
}

Result<json, ApiError> AccountManager::get(int64_t id) {
  auto row = store_.get(store::Table::Providers, id);
  if (!row) return unexpected(from_store(row.error()));
  auto a = account_from_json(json::parse(row->data));
  if (!a)
    return unexpected(
        ApiError{500, "stored account is invalid: " + a.error().message, a.error().field});
  a->id = id;
  return to_json(*a);
}

Result<json, ApiError> AccountManager::save(int64_t id, const json& body, bool is_new) {
  if (!body.is_object()) return unexpected(ApiError{400, "the body must be a JSON object", ""});
  if (body.contains("id") && !body["id"].is_null() &&
      (!body["id"].is_number_integer() || (!is_new && body["id"].get<int64_t>() != id))) {
    return unexpected(
        ApiError{400, is_new ? "id must be an integer" : "id does not match the path", "id"});
  }
  auto a = account_from_json(body);
  if (!a) return unexpected(ApiError{400, a.error().message, a.error().field});
  if (is_new) {
    auto r = store_.insert(store::Table::Providers, a->code, to_stored_json(*a).dump(), a->id);
    if (!r) return unexpected(from_store(r.error()));
    a->id = *r;
  } else {
    a->id = id;
    auto r = store_.update(store::Table::Providers, id, a->code, to_stored_json(*a).dump());
    if (!r) return unexpected(from_store(r.error()));
  }
  // Apply at once: the old client un-registers, then the new one starts.
  const Account account = *a;
  restart(account);
  return to_json(account);
}

Result<json, ApiError> AccountManager::create(const json& body) {
  std::unique_lock lock(api_mu_);
  auto r = save(0, body, true);
  lock.unlock();
  if (r && options_.on_change) options_.on_change();
  return r;
}

Result<json, ApiError> AccountManager::replace(int64_t id, const json& body) {
  std::unique_lock lock(api_mu_);
  auto row = store_.get(store::Table::Providers, id);
  if (!row) return unexpected(from_store(row.error()));
  json j = body;
  // PUT replaces, but a password is write-only: a PUT without `pwd` keeps the stored one, so
  // an object read back from GET can be edited and put back.
  if (j.is_object() && !j.contains("pwd")) {
    auto stored = json::parse(row->data, nullptr, false);
    if (stored.is_object() && stored.contains("pwd")) j["pwd"] = stored["pwd"];
  }
  auto r = save(id, j, false);
  lock.unlock();
  if (r && options_.on_change) options_.on_change();
  return r;
}

Result<json, ApiError> AccountManager::patch(int64_t id, const json& body) {
  std::unique_lock lock(api_mu_);
  if (!body.is_object()) return unexpected(ApiError{400, "the body must be a JSON object", ""});
  auto row = store_.get(store::Table::Providers, id);
  if (!row) return unexpected(from_store(row.error()));
  json merged = json::parse(row->data, nullptr, false);
  if (!merged.is_object()) merged = json::object();
  merged.merge_patch(body);  // RFC 7386: null removes a field (back to its default)
  merged["id"] = id;
  auto r = save(id, merged, false);
  lock.unlock();
  if (r && options_.on_change) options_.on_change();
  return r;
}

Result<void, ApiError> AccountManager::remove(int64_t id) {
  std::unique_lock lock(api_mu_);
  auto r = store_.remove(store::Table::Providers, id);
  if (!r) return unexpected(from_store(r.error()));
  forget(id);
  lock.unlock();
  if (options_.on_change) options_.on_change();
  return {};
}

void AccountManager::restart(const Account& a) {
  uint64_t number = 0;
  {
    std::lock_guard lock(mu_);
    number = restarting_[a.id] = ++restarts_;
  }
  halt(a.id, [this, a, number] {
    // The check and the start under one lock: a removal cannot slip in between.
    std::lock_guard lock(mu_);
    auto it = restarting_.find(a.id);
    if (it == restarting_.end() || it->second != number) return;  // superseded or removed
    restarting_.erase(it);
    run_locked(a, txn::Millis(0));
  });
}

void AccountManager::forget(int64_t id) {
  {
    std::lock_guard state_lock(mu_);
    known_.erase(id);
    restarting_.erase(id);  // a restart still waiting for the old client must not run
  }
  halt(id, [this, id] {
    std::lock_guard lock(mu_);
    if (!slots_.count(id)) snapshots_.erase(id);
  });
  {
    // Gone from monitoring at once, not when its client has un-registered (that may take a
    // transaction's time; the halting client reports to nobody: its slot is gone).
    std::lock_guard state_lock(mu_);
    if (!slots_.count(id)) snapshots_.erase(id);
  }
}

void AccountManager::sync_register_out(const std::vector<Account>& wanted) {
  std::lock_guard lock(api_mu_);
  std::unordered_map<int64_t, std::string> next;
  for (const auto& a : wanted) {
    const std::string text = to_stored_json(a).dump();
    next[a.id] = text;
    auto it = register_out_.find(a.id);
    if (it != register_out_.end() && it->second == text) continue;  // unchanged
    restart(a);
  }
  for (const auto& [id, text] : register_out_) {
    if (!next.count(id)) forget(id);
  }
  register_out_ = std::move(next);
}

void AccountManager::serve(int64_t id, bool clear_first) {
  std::lock_guard lock(mu_);
  if (served_.count(id)) return;
  served_[id] = clear_first;
  auto it = known_.find(id);
  // A takeover of many accounts (the death of another instance) is paced like a start-up.
  if (it != known_.end() && !slots_.count(id)) {
    launch(*it->second, next_register_delay(*it->second), clear_first);
  }
}

void AccountManager::unserve(int64_t id, std::function<void()> done) {
  {
    std::lock_guard lock(mu_);
    served_.erase(id);
  }
  halt(id, [this, id, done = std::move(done)] {
    {
      std::lock_guard lock(mu_);
      if (!slots_.count(id)) snapshots_.erase(id);
    }
    if (done) done();
  });
  // Gone from this instance's monitoring at once: it is no longer the one that serves it.
  std::lock_guard lock(mu_);
  if (!slots_.count(id)) snapshots_.erase(id);
}

std::vector<Leasable> AccountManager::leasable() const {
  std::lock_guard lock(mu_);
  std::vector<Leasable> out;
  out.reserve(known_.size());
  for (const auto& [id, a] : known_)
    out.push_back({id, a->serveridxs});
  return out;
}

bool AccountManager::resync() {
  std::unique_lock lock(api_mu_);
  auto accounts = stored();
  if (!accounts) return false;  // the store is away: the caller tries again
  std::unordered_map<int64_t, Account> stored;
  for (auto& a : *accounts)
    stored.emplace(a.id, std::move(a));
  std::vector<int64_t> gone;
  std::vector<Account> changed;
  {
    std::lock_guard state(mu_);
    for (const auto& [id, a] : known_) {
      if (id > 0 && !stored.count(id)) gone.push_back(id);
    }
    for (const auto& [id, a] : stored) {
      auto it = known_.find(id);
      if (it == known_.end() || to_stored_json(*it->second) != to_stored_json(a)) {
        changed.push_back(a);
      }
    }
  }
  for (int64_t id : gone)
    forget(id);
  for (const auto& a : changed)
    restart(a);
  lock.unlock();
  if ((!gone.empty() || !changed.empty()) && options_.on_change) options_.on_change();
  return true;
}

json AccountManager::regs() const {
  std::lock_guard lock(mu_);
  std::vector<const Snapshot*> all;
  for (const auto& [id, s] : snapshots_)
    all.push_back(&s);
  std::sort(all.begin(), all.end(),
            [](const Snapshot* a, const Snapshot* b) { return a->account->id < b->account->id; });
  json out = json::array();
  for (const Snapshot* s : all) {
    const Account& a = *s->account;
    json addrs = json::array({a.domain});
    if (!a.proxyaddr.empty() && a.proxyaddr != a.domain) addrs.push_back(a.proxyaddr);
    for (const auto& x : a.extaddrs)
      addrs.push_back(x);
    json lines = json::array();
    const std::string& r = s->status->last_response;
    for (size_t pos = 0; pos < r.size();) {
      size_t end = r.find("\r\n", pos);
      if (end == std::string::npos) end = r.size();
      if (end > pos) lines.push_back(r.substr(pos, end - pos));
      pos = end + 2;
    }
    json e = {
        {"code", a.code},
        {"d", a.domain},
        {"user", a.username},
        {"domain", a.domain},
        {"port", a.next_hop_port()},
        {"proto", a.transport.str()},
        {"addrs", addrs},
        {"regstate", reg_state_name(s->status->regstate)},
        {"pingstate", ping_state_name(s->status->pingstate)},
        {"last_response", lines},
        {"onlinetrunkcount", options_.calls_in_progress ? options_.calls_in_progress(a.code) : 0}};
    if (!s->status->reason.empty()) e["reason"] = s->status->reason;
    if (s->status->expires) e["expires"] = s->status->expires;
    if (!s->status->warning.empty()) e["warning"] = s->status->warning;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<RegistrationStatus> AccountManager::status(int64_t id) const {
  std::lock_guard lock(mu_);
  auto it = snapshots_.find(id);
  if (it == snapshots_.end()) return std::nullopt;
  return *it->second.status;
}

std::shared_ptr<const Account> AccountManager::shared(Account&& a) const {
  {
    std::lock_guard lock(mu_);
    auto it = known_.find(a.id);
    if (it != known_.end() && *it->second == a) return it->second;
  }
  return std::make_shared<const Account>(std::move(a));
}

std::optional<RegistrationStatus> AccountManager::status(const std::string& code) const {
  std::lock_guard lock(mu_);
  for (const auto& [id, s] : snapshots_) {
    if (s.account->code == code) return *s.status;
  }
  return std::nullopt;
}

}  // namespace esg::accounts
