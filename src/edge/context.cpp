#include "edge/context.hpp"

#include <condition_variable>
#include <deque>
#include <thread>

#include "base/text.hpp"

namespace esg::edge {

std::shared_ptr<const accounts::PbxConnection> EdgeConfig::pbx(std::string_view code) const {
  for (const auto& p : pbxs) {
    if (p->code == code) return p;
  }
  return nullptr;
}

std::shared_ptr<const accounts::PbxConnection> EdgeConfig::pbx_from(std::string_view ip) const {
  for (const auto& p : pbxs) {
    if (!p->enabled) continue;
    if (p->mode == "ip" && text::iequals(p->address, ip)) return p;
    if (p->mode == "register-out" &&
        (text::iequals(p->domain, ip) || text::iequals(p->address, ip)))
      return p;
  }
  return nullptr;
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

void CallBoard::put(const std::string& id, nlohmann::json call) {
  std::lock_guard lock(mu_);
  calls_[id] = std::move(call);
}

void CallBoard::erase(const std::string& id) {
  std::lock_guard lock(mu_);
  calls_.erase(id);
}

nlohmann::json CallBoard::list() const {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [id, c] : calls_)
    out.push_back(c);
  return out;
}

std::optional<nlohmann::json> CallBoard::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(id);
  if (it == calls_.end()) return std::nullopt;
  return it->second;
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
  };
  std::deque<Item> queue;
  bool stopping = false;
  bool busy = false;
  std::atomic<uint64_t> failures{0};
  std::unordered_map<std::string, int64_t> ids;  // key -> row id (writer thread only)
  std::thread thread;

  void write_one(Item& item) {
    auto it = ids.find(item.key);
    if (it == ids.end()) {
      auto id = store.cdr_insert(item.cdr);
      if (!id) ++failures;
      if (id && !item.last) ids[item.key] = *id;
    } else {
      item.cdr.id = it->second;
      if (!store.cdr_update(item.cdr)) ++failures;
      if (item.last) ids.erase(it);
    }
  }

  explicit Impl(store::Store& s) : store(s) {
    thread = std::thread([this] { run(); });
  }

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return stopping || !queue.empty(); });
      if (queue.empty()) return;
      // Everything queued goes in one transaction: one commit for a burst of calls.
      std::deque<Item> batch;
      batch.swap(queue);
      busy = true;
      lock.unlock();
      auto r = store.in_transaction([&] {
        for (auto& item : batch) write_one(item);
      });
      if (!r) failures += batch.size();
      lock.lock();
      busy = false;
      if (queue.empty()) idle.notify_all();
    }
  }
};

CdrWriter::CdrWriter(store::Store& store) : impl_(std::make_unique<Impl>(store)) {}

CdrWriter::~CdrWriter() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->thread.join();  // writes what is queued first
}

void CdrWriter::write(const std::string& key, store::Cdr cdr, bool last) {
  bool wake;
  {
    std::lock_guard lock(impl_->mu);
    // Bounded: under a flood of calls with a stalled disk, intermediate updates go first.
    if (impl_->queue.size() > 100000 && !last) return;
    // Only the first record of a burst wakes the writer (a futex call per record costs more
    // than the record); it takes the whole queue when it runs.
    wake = impl_->queue.empty() && !impl_->busy;
    impl_->queue.push_back({key, std::move(cdr), last});
  }
  if (wake) impl_->cv.notify_one();
}

uint64_t CdrWriter::failures() const {
  return impl_->failures.load();
}

void CdrWriter::flush() {
  std::unique_lock lock(impl_->mu);
  impl_->idle.wait(lock, [this] { return impl_->queue.empty() && !impl_->busy; });
}

}  // namespace esg::edge
