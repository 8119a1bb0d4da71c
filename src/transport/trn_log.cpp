#include "transport/trn_log.hpp"

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>

namespace esg::transport {

namespace {

std::tm local_tm(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return tm;
}

std::string day_of(std::chrono::system_clock::time_point t) {
  const std::tm tm = local_tm(t);
  return fmt::format("{:04}{:02}{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

}  // namespace

std::string format_trn_line(const PacketRecord& r) {
  const std::tm tm = local_tm(r.time);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(r.time.time_since_epoch()).count() %
      1000;
  std::string line = fmt::format("{:02}:{:02}:{:02}.{:03} <{}.{}.{}> {} {} {} {}", tm.tm_hour,
                                 tm.tm_min, tm.tm_sec, ms, r.worker, r.connection, r.counter,
                                 r.direction == Direction::Send ? "Send" : "Recv",
                                 r.direction == Direction::Send ? "to" : "from", r.proto, r.peer);
  if (r.banned) return line + " BANNED";
  if (r.direction == Direction::Send) line += r.ok ? " (ok)" : " (failed)";
  line.push_back(' ');
  line.reserve(line.size() + r.packet.size());
  // One line a packet: each line break (CRLF, or a lone CR or LF) becomes a space. The text
  // between breaks goes in one append (a character at a time was 3 % of esg's CPU).
  const std::string_view p = r.packet;
  for (size_t i = 0; i < p.size();) {
    const size_t brk = std::min(p.find_first_of("\r\n", i), p.size());
    line.append(p.data() + i, brk - i);
    if (brk == p.size()) break;
    line.push_back(' ');
    i = brk + (p[brk] == '\r' && brk + 1 < p.size() && p[brk + 1] == '\n' ? 2 : 1);
  }
  while (!line.empty() && line.back() == ' ')
    line.pop_back();
  return line;
}

std::optional<PacketRecord> parse_trn_line(std::string_view line, std::string_view day) {
  // "HH:MM:SS.mmm <W.C.N> Send to udp A:P (ok) packet" / "... Recv from udp A:P packet"
  if (line.size() < 13 || line[2] != ':' || line[5] != ':' || line[8] != '.' || day.size() != 8)
    return std::nullopt;
  auto num = [](std::string_view s) {
    int v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return -1;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(day.substr(0, 4)) - 1900;
  tm.tm_mon = num(day.substr(4, 2)) - 1;
  tm.tm_mday = num(day.substr(6, 2));
  tm.tm_hour = num(line.substr(0, 2));
  tm.tm_min = num(line.substr(3, 2));
  tm.tm_sec = num(line.substr(6, 2));
  tm.tm_isdst = -1;
  const int ms = num(line.substr(9, 3));
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_hour < 0 || tm.tm_min < 0 || tm.tm_sec < 0 || ms < 0)
    return std::nullopt;
  PacketRecord r;
  r.time = std::chrono::system_clock::from_time_t(std::mktime(&tm)) + std::chrono::milliseconds(ms);
  std::string_view rest = line.substr(13);
  const size_t ids_end = rest.find("> ");
  if (rest.empty() || rest[0] != '<' || ids_end == std::string_view::npos) return std::nullopt;
  // <W.C.N>: N is the packet's place in the order of all packets.
  const std::string_view ids = rest.substr(1, ids_end - 1);
  if (const size_t dot = ids.rfind('.'); dot != std::string_view::npos) {
    for (char c : ids.substr(dot + 1)) {
      if (c < '0' || c > '9') return std::nullopt;
      r.counter = r.counter * 10 + uint64_t(c - '0');
    }
  }
  rest.remove_prefix(ids_end + 2);
  if (rest.substr(0, 8) == "Send to ") {
    r.direction = Direction::Send;
    rest.remove_prefix(8);
  } else if (rest.substr(0, 10) == "Recv from ") {
    r.direction = Direction::Recv;
    rest.remove_prefix(10);
  } else {
    return std::nullopt;
  }
  const size_t sp1 = rest.find(' ');
  if (sp1 == std::string_view::npos) return std::nullopt;
  r.proto = std::string(rest.substr(0, sp1));
  rest.remove_prefix(sp1 + 1);
  const size_t sp2 = rest.find(' ');
  if (sp2 == std::string_view::npos) return std::nullopt;
  r.peer = std::string(rest.substr(0, sp2));
  rest.remove_prefix(sp2 + 1);
  if (rest == "BANNED" || rest.substr(0, 7) == "BANNED ") return std::nullopt;
  if (r.direction == Direction::Send) {
    if (rest.substr(0, 5) == "(ok) ") {
      rest.remove_prefix(5);
    } else if (rest.substr(0, 9) == "(failed) ") {
      r.ok = false;
      rest.remove_prefix(9);
    }
  }
  r.packet = std::string(rest);
  return r;
}

std::vector<PacketRecord> trn_packets(const std::string& dir,
                                      const std::vector<std::string>& call_ids,
                                      std::chrono::system_clock::time_point around,
                                      uint64_t max_bytes) {
  std::vector<PacketRecord> out;
  std::vector<std::string> needles;
  for (const auto& id : call_ids) {
    if (id.empty()) continue;
    needles.push_back("Call-ID: " + id + " ");
    needles.push_back(" i: " + id + " ");
  }
  if (needles.empty()) return out;
  uint64_t read = 0;
  for (int d = 0; d < 2; ++d) {
    const std::string day = day_of(around + std::chrono::hours(24 * d));
    // trn_DAY.log, then trn_DAY.1.log... as the writer rotates them.
    for (unsigned part = 0; part < 1000; ++part) {
      const std::string name = part == 0 ? fmt::format("{}/trn_{}.log", dir, day)
                                         : fmt::format("{}/trn_{}.{}.log", dir, day, part);
      std::ifstream in(name);
      if (!in) break;
      std::string line;
      while (std::getline(in, line)) {
        read += line.size() + 1;
        if (read > max_bytes) return out;
        line += ' ';  // the Call-ID may end the line
        bool ours = false;
        for (const auto& n : needles)
          ours = ours || line.find(n) != std::string::npos;
        if (!ours) continue;
        line.pop_back();
        if (auto r = parse_trn_line(line, day)) out.push_back(std::move(*r));
      }
    }
  }
  // Lines are in the order of their counters; a call's lines over a restart (counters begin
  // again) are put in time order.
  std::stable_sort(out.begin(), out.end(),
                   [](const PacketRecord& a, const PacketRecord& b) { return a.time < b.time; });
  return out;
}

TrnLog::TrnLog(Options options) : options_(std::move(options)) {
  std::filesystem::create_directories(options_.dir);
  thread_ = std::thread([this] { run(); });
}

TrnLog::~TrnLog() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void TrnLog::write(PacketRecord record) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      ++dropped_;
      return;
    }
    wake = wakes_writer();
    queue_.push_back({std::move(record), true});
  }
  if (wake) cv_.notify_one();
}

bool TrnLog::wakes_writer() const {
  // Only the first line of a burst wakes the writer, and a burst long enough to be written at
  // once: a futex call per packet cost more than writing the packet's line.
  return (queue_.empty() && !busy_) || queue_.size() + 1 == kBurst;
}

TrnLog::Ticket TrnLog::open(PacketRecord& record) {
  bool wake;
  Ticket ticket;
  {
    std::lock_guard lock(mu_);
    // The time is taken under the lock too, so that lines in counter order are in time order.
    record.time = std::chrono::system_clock::now();
    record.counter = next_counter_++;
    if (queue_.size() >= options_.max_queue) {
      ++dropped_;
      return 0;
    }
    wake = wakes_writer();
    queue_.emplace_back();  // its place only: fill() brings the record
    ticket = front_ticket_ + queue_.size() - 1;
  }
  if (wake) cv_.notify_one();
  return ticket;
}

void TrnLog::stamp(PacketRecord& record) {
  std::lock_guard lock(mu_);
  record.time = std::chrono::system_clock::now();
  record.counter = next_counter_++;
}

void TrnLog::fill(Ticket ticket, PacketRecord record) {
  if (ticket == 0) return;
  std::lock_guard lock(mu_);
  // Slots leave the queue only once filled, so an open ticket is always still in it. The
  // writer is not woken: it gathers for kGather and then takes what is filled.
  Slot& slot = queue_[size_t(ticket - front_ticket_)];
  slot.record = std::move(record);
  slot.filled = true;
}

void TrnLog::stamp_and_write(PacketRecord record) {
  const Ticket t = open(record);
  fill(t, std::move(record));
}

void TrnLog::flush() {
  std::unique_lock lock(mu_);
  hurry_ = true;
  cv_.notify_one();
  idle_.wait(lock, [this] { return (queue_.empty() || !queue_.front().filled) && !busy_; });
}

uint64_t TrnLog::written() const {
  std::lock_guard lock(mu_);
  return written_;
}

uint64_t TrnLog::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::string TrnLog::current_file() const {
  std::lock_guard lock(mu_);
  return current_;
}

void TrnLog::run() {
  std::vector<PacketRecord> batch;
  while (true) {
    {
      std::unique_lock lock(mu_);
      busy_ = false;
      idle_.notify_all();
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      // Gather for a moment: one write per burst instead of one per packet. The lines reach
      // the file at most kGather late; a crash loses at most that much.
      if (!stop_ && !hurry_ && queue_.size() < kBurst)
        cv_.wait_for(lock, kGather, [this] { return stop_ || hurry_ || queue_.size() >= kBurst; });
      hurry_ = false;
      if (stop_ && (queue_.empty() || !queue_.front().filled)) break;
      // The filled lines at the front; one still open (its send's system call is running)
      // holds back the lines after it until the next turn.
      while (!queue_.empty() && queue_.front().filled) {
        batch.push_back(std::move(queue_.front().record));
        queue_.pop_front();
        ++front_ticket_;
      }
      busy_ = true;
    }
    for (const auto& r : batch)
      write_line(format_trn_line(r), r.time);
    write_pending();
    {
      std::lock_guard lock(mu_);
      written_ += batch.size();
    }
    batch.clear();
  }
}

void TrnLog::write_pending() {
  if (pending_.empty()) return;
  file_.write(pending_.data(), std::streamsize(pending_.size()));
  file_.flush();
  pending_.clear();
}

void TrnLog::write_line(const std::string& line, std::chrono::system_clock::time_point t) {
  const std::string day = day_of(t);
  const bool new_day = day != day_;
  if (new_day || !file_.is_open() || file_bytes_ + line.size() + 1 > options_.max_file_bytes) {
    write_pending();  // the lines before this one belong to the file being closed
    if (new_day) {
      day_ = day;
      part_ = 0;
    } else if (file_.is_open()) {
      ++part_;
    }
    file_.close();
    // Pick up where an earlier run of the same day stopped.
    while (true) {
      const std::string name =
          part_ == 0 ? fmt::format("trn_{}.log", day_) : fmt::format("trn_{}.{}.log", day_, part_);
      const std::string path = options_.dir + "/" + name;
      std::error_code ec;
      const auto size =
          std::filesystem::exists(path, ec) ? std::filesystem::file_size(path, ec) : 0;
      if (size + line.size() + 1 > options_.max_file_bytes && size > 0) {
        ++part_;
        continue;
      }
      file_.open(path, std::ios::app);
      file_bytes_ = size;
      std::lock_guard lock(mu_);
      current_ = path;
      break;
    }
  }
  // A batch's lines go to the file in one system call (write_pending).
  pending_.append(line);
  pending_.push_back('\n');
  file_bytes_ += line.size() + 1;
}

void PacketIndex::add(std::string_view call_id, const PacketRecord& r) {
  if (max_calls_ == 0 || max_packets_ == 0 || call_id.empty()) return;
  auto it = by_call_.find(std::string(call_id));
  if (it == by_call_.end()) {
    if (by_call_.size() >= max_calls_) evict_oldest();
    ages_.emplace_front(call_id);
    it = by_call_.emplace(std::string(call_id), Entry{{}, ages_.begin(), 0}).first;
  } else {
    ages_.splice(ages_.begin(), ages_, it->second.age);  // a new packet makes the call newest
  }
  Entry& e = it->second;
  if (e.packets.size() >= max_packets_) {
    e.bytes -= e.packets.front().packet.size();
    bytes_ -= e.packets.front().packet.size();
    e.packets.pop_front();
  }
  // Nearly always the end; a packet filed late goes back past the few filed meanwhile.
  auto at = e.packets.end();
  while (at != e.packets.begin() && std::prev(at)->counter > r.counter)
    --at;
  e.packets.insert(at, r);
  e.bytes += r.packet.size();
  bytes_ += r.packet.size();
  // The byte bound: older calls go first; the newest keeps at least this packet.
  while (bytes_ > max_bytes_ && by_call_.size() > 1)
    evict_oldest();
}

void PacketIndex::evict_oldest() {
  auto it = by_call_.find(ages_.back());
  bytes_ -= it->second.bytes;
  by_call_.erase(it);
  ages_.pop_back();
}

std::vector<PacketRecord> PacketIndex::packets(std::string_view call_id) const {
  auto it = by_call_.find(std::string(call_id));
  if (it == by_call_.end()) return {};
  return {it->second.packets.begin(), it->second.packets.end()};
}

SharedPacketIndex::SharedPacketIndex(size_t max_calls, size_t max_packets_per_call,
                                     size_t max_bytes)
    : shards_(std::make_unique<Shard[]>(kShards)) {
  for (size_t i = 0; i < kShards; ++i) {
    shards_[i].index =
        PacketIndex((max_calls + kShards - 1) / kShards, max_packets_per_call, max_bytes / kShards);
  }
}

SharedPacketIndex::Shard& SharedPacketIndex::shard(std::string_view call_id) const {
  return shards_[std::hash<std::string_view>()(call_id) % kShards];
}

void SharedPacketIndex::add(std::string_view call_id, std::string_view cseq_method,
                            const PacketRecord& r) {
  if (cseq_method == "REGISTER" || cseq_method == "OPTIONS") return;
  Shard& s = shard(call_id);
  std::lock_guard lock(s.mu);
  s.index.add(call_id, r);
}

std::vector<PacketRecord> SharedPacketIndex::packets(std::string_view call_id) const {
  Shard& s = shard(call_id);
  std::lock_guard lock(s.mu);
  return s.index.packets(call_id);
}

size_t SharedPacketIndex::calls() const {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    std::lock_guard lock(shards_[i].mu);
    n += shards_[i].index.calls();
  }
  return n;
}

}  // namespace esg::transport
