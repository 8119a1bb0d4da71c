#pragma once
// The transaction log (CONTRACTS.md "Transaction log line"): one line per packet sent or
// received, written by a thread of its own so a slow disk never holds up a call, into
// trn_YYYYMMDD.log, then trn_YYYYMMDD.1.log... as each file reaches its size limit. Alongside,
// a bounded in-memory index of each Call-ID's packets for the call diagrams.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <fstream>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace esg::transport {

enum class Direction : uint8_t { Send, Recv };

struct PacketRecord {
  std::chrono::system_clock::time_point time;
  uint16_t worker = 0;
  uint32_t connection = 0;
  uint64_t counter = 0;
  Direction direction = Direction::Recv;
  std::string proto = "udp";  // udp | tcp | tls
  std::string peer;           // "A:P" ([A]:P for IPv6)
  bool ok = true;             // for sends: did the transport take it
  bool banned = false;        // dropped by policy: logged without its bytes
  std::string packet;
};

// "HH:MM:SS.mmm <W.C.N> Send to udp A:P (ok) <packet>" in local time, each CRLF (or lone CR or
// LF) of the packet written as one space so that a packet is one line.
std::string format_trn_line(const PacketRecord& r);
// A trn line back into its record, on local day `day` (the file's YYYYMMDD); nullopt for a
// line that is not one (or a BANNED one, which has no packet). The packet's line breaks are
// the spaces the log wrote for them.
std::optional<PacketRecord> parse_trn_line(std::string_view line, std::string_view day);
// The packets of `call_ids` in the trn files of `dir` for the local day of `around` and the day
// after (a call over midnight), oldest first. Reads at most `max_bytes` of log: an operator's
// look at an old call must not hold the HTTP thread for long.
std::vector<PacketRecord> trn_packets(const std::string& dir,
                                      const std::vector<std::string>& call_ids,
                                      std::chrono::system_clock::time_point around,
                                      uint64_t max_bytes = 256ull << 20);

class TrnLog {
 public:
  struct Options {
    std::string dir;
    uint64_t max_file_bytes = 64ull << 20;
    size_t max_queue = 100000;  // records waiting for the writer; past it, records are dropped
  };
  explicit TrnLog(Options options);
  ~TrnLog();  // writes what is queued, then stops the thread
  TrnLog(const TrnLog&) = delete;
  TrnLog& operator=(const TrnLog&) = delete;

  // Never blocks on the disk: queues the record, or counts it as dropped when the queue is full.
  void write(PacketRecord record);

  // A packet in two steps, for sends: open() stamps the record (time and counter, from one
  // sequence that every worker shares) and keeps its line's place when esg decides to send,
  // before the system call; fill() gives the outcome once the call returns. A reply that another
  // worker receives meanwhile is stamped after it and written after it, so no line shows an
  // answer before its cause. Every open() must be followed by its fill(): the writer waits for
  // it (a send is a system call away). Ticket 0 means the queue was full: the record is counted
  // as dropped and fill() ignores it.
  using Ticket = uint64_t;
  Ticket open(PacketRecord& record);
  void fill(Ticket ticket, PacketRecord record);
  // A time and a counter from the same sequence, for a record that is not logged (an event on
  // a call's diagram): the line numbers of the log then skip it.
  void stamp(PacketRecord& record);
  // open() and fill() at once: a received packet, stamped on arrival.
  void stamp_and_write(PacketRecord record);
  // Waits until everything queued so far is on disk (tests, shutdown).
  void flush();

  uint64_t written() const;
  uint64_t dropped() const;
  std::string current_file() const;

 private:
  // How long the writer gathers lines after the first of a burst, and how many lines end the
  // gathering early.
  static constexpr std::chrono::milliseconds kGather{20};
  static constexpr size_t kBurst = 4096;

  void run();
  bool wakes_writer() const;  // under mu_, before a line is queued
  void write_line(const std::string& line, std::chrono::system_clock::time_point t);
  void write_pending();

  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable idle_;
  // In line order; the writer takes the filled ones from the front, up to the first still open.
  struct Slot {
    PacketRecord record;
    bool filled = false;
  };
  std::deque<Slot> queue_;
  Ticket front_ticket_ = 1;  // the ticket of queue_.front(); tickets are consecutive
  uint64_t next_counter_ = 0;
  bool stop_ = false;
  bool busy_ = false;
  bool hurry_ = false;  // flush() waits: no gathering
  uint64_t written_ = 0;
  uint64_t dropped_ = 0;
  // Writer thread only:
  std::ofstream file_;
  std::string day_;
  unsigned part_ = 0;
  uint64_t file_bytes_ = 0;
  std::string current_;
  std::string pending_;  // the batch's lines not yet written
  std::thread thread_;
};

// The packets of recent calls, by Call-ID, bounded in calls, packets per call and bytes; the
// newest calls win. Not thread-safe: SharedPacketIndex shares it between threads.
class PacketIndex {
 public:
  PacketIndex(size_t max_calls = 10000, size_t max_packets_per_call = 200,
              size_t max_bytes = 64u << 20)
      : max_calls_(max_calls), max_packets_(max_packets_per_call), max_bytes_(max_bytes) {}
  // Files the packet in counter order: a send stamped before a reply but filed after it (the
  // reply was handled on another worker while the send's system call ran) still comes first.
  void add(std::string_view call_id, const PacketRecord& r);
  // Oldest first; empty when the call is unknown or was evicted.
  std::vector<PacketRecord> packets(std::string_view call_id) const;
  size_t calls() const { return by_call_.size(); }
  size_t bytes() const { return bytes_; }

 private:
  struct Entry {
    std::deque<PacketRecord> packets;
    std::list<std::string>::iterator age;
    size_t bytes = 0;
  };
  void evict_oldest();

  size_t max_calls_;
  size_t max_packets_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::list<std::string> ages_;  // front: newest
  std::unordered_map<std::string, Entry> by_call_;
};

// The index the transport feeds from every worker: shards by Call-ID, each behind its own
// lock, so two workers rarely meet and a reader (the call diagram) holds one shard briefly.
class SharedPacketIndex {
 public:
  static constexpr size_t kShards = 16;
  SharedPacketIndex(size_t max_calls = 10000, size_t max_packets_per_call = 200,
                    size_t max_bytes = 64u << 20);
  // Files a packet under its call. REGISTER and OPTIONS are account traffic, not calls: with
  // thousands of accounts refreshing, they would push the calls out of the index (the trn log
  // still has them).
  void add(std::string_view call_id, std::string_view cseq_method, const PacketRecord& r);
  std::vector<PacketRecord> packets(std::string_view call_id) const;
  size_t calls() const;

 private:
  struct Shard {
    mutable std::mutex mu;
    PacketIndex index;
  };
  Shard& shard(std::string_view call_id) const;
  std::unique_ptr<Shard[]> shards_;
};

}  // namespace esg::transport
