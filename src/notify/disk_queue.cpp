#include "notify/disk_queue.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "log/log.hpp"

namespace esg::notify {

namespace fs = std::filesystem;

DiskQueue::DiskQueue(std::string dir, size_t max)
    : dir_(std::move(dir)), max_(std::max<size_t>(1, max)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_))
    throw std::runtime_error("webhook queue folder " + dir_ + ": " + ec.message());
  std::vector<Item> found;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".tmp") == 0) {
      fs::remove(e.path(), ec);  // a write a crash cut short
      continue;
    }
    unsigned long long seq = 0;
    long long hook = 0, created = 0;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "%llu-%lld-%lld.%3s", &seq, &hook, &created, tail) != 4 ||
        std::string(tail) != "ev") {
      continue;  // not ours
    }
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    found.push_back({seq, hook, created, ss.str()});
  }
  if (ec) throw std::runtime_error("webhook queue folder " + dir_ + ": " + ec.message());
  std::sort(found.begin(), found.end(), [](const Item& a, const Item& b) { return a.seq < b.seq; });
  for (auto& i : found) {
    next_seq_ = std::max<uint64_t>(next_seq_, i.seq + 1);
    by_hook_[i.hook].push_back(std::move(i));
    ++size_;
  }
  while (size_ > max_)
    drop_oldest();
}

std::string DiskQueue::path_of(const Item& i) const {
  char name[96];
  std::snprintf(name, sizeof name, "%020llu-%lld-%lld.ev", static_cast<unsigned long long>(i.seq),
                static_cast<long long>(i.hook), static_cast<long long>(i.created_ms));
  return dir_ + "/" + name;
}

void DiskQueue::remove_file(const Item& i) {
  std::error_code ec;
  fs::remove(path_of(i), ec);
}

void DiskQueue::drop_oldest() {
  auto oldest = by_hook_.end();
  for (auto it = by_hook_.begin(); it != by_hook_.end(); ++it) {
    if (!it->second.empty() &&
        (oldest == by_hook_.end() || it->second.front().seq < oldest->second.front().seq))
      oldest = it;
  }
  if (oldest == by_hook_.end()) return;
  remove_file(oldest->second.front());
  oldest->second.pop_front();
  if (oldest->second.empty()) by_hook_.erase(oldest);
  --size_;
}

size_t DiskQueue::push(int64_t hook, int64_t created_ms, std::string body) {
  size_t dropped = 0;
  if (size_ >= max_) {
    drop_oldest();
    dropped = 1;
  }
  Item i{next_seq_++, hook, created_ms, std::move(body)};
  const std::string path = path_of(i);
  {
    std::ofstream out(path + ".tmp", std::ios::binary | std::ios::trunc);
    out.write(i.body.data(), std::streamsize(i.body.size()));
    out.close();
    std::error_code ec;
    if (!out) {
      ec = std::make_error_code(std::errc::io_error);
    } else {
      fs::rename(path + ".tmp", path, ec);
    }
    if (ec) {
      // Kept in memory all the same: delivered unless esg restarts first.
      if (write_errors_++ % 100 == 0)
        log::get("notify").error("webhook queue: cannot write {}: {}", path, ec.message());
      fs::remove(path + ".tmp", ec);
    }
  }
  by_hook_[hook].push_back(std::move(i));
  ++size_;
  return dropped;
}

const DiskQueue::Item* DiskQueue::front(int64_t hook) const {
  auto it = by_hook_.find(hook);
  if (it == by_hook_.end() || it->second.empty()) return nullptr;
  return &it->second.front();
}

void DiskQueue::pop(int64_t hook) {
  auto it = by_hook_.find(hook);
  if (it == by_hook_.end() || it->second.empty()) return;
  remove_file(it->second.front());
  it->second.pop_front();
  --size_;
  if (it->second.empty()) by_hook_.erase(it);
}

size_t DiskQueue::retain(const std::vector<int64_t>& keep) {
  size_t n = 0;
  for (auto it = by_hook_.begin(); it != by_hook_.end();) {
    if (std::find(keep.begin(), keep.end(), it->first) != keep.end()) {
      ++it;
      continue;
    }
    for (const auto& i : it->second)
      remove_file(i);
    n += it->second.size();
    size_ -= it->second.size();
    it = by_hook_.erase(it);
  }
  return n;
}

std::vector<int64_t> DiskQueue::hooks() const {
  std::vector<int64_t> out;
  for (const auto& [h, q] : by_hook_)
    if (!q.empty()) out.push_back(h);
  return out;
}

}  // namespace esg::notify
