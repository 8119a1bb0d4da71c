#pragma once
// RFC 3263 server location with c-ares: NAPTR -> SRV -> A/AAAA, priorities and weights (RFC
// 2782), answers cached for their TTL. Servers come from `dns.servers` (else the system's).
// Lookups run on a resolver thread of their own; a caller on a worker posts the result back.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "transport/transport.hpp"

namespace esg::transport {

struct Target {
  Proto proto = Proto::Udp;
  std::string host;  // the name the address came from
  std::string addr;  // IP address
  uint16_t port = 5060;
  uint16_t priority = 0;
  uint16_t weight = 0;
};

// Steps through resolved targets the way RFC 3263 §4.3 asks: on a transport error, a timeout
// (408 from the client transaction) or a 503, the request goes to the next target; any other
// answer ends the search.
class TargetCursor {
 public:
  explicit TargetCursor(std::vector<Target> targets) : targets_(std::move(targets)) {}
  // The target to send to now, or nullptr when every one has been tried.
  const Target* current() const { return next_ < targets_.size() ? &targets_[next_] : nullptr; }
  // After the outcome `status` (0: transport error) of the attempt at current(): true when the
  // request should be tried again at the new current() target.
  bool failover(int status) {
    if (status != 0 && status != 408 && status != 503) return false;
    ++next_;
    return current() != nullptr;
  }
  size_t tried() const { return next_; }

 private:
  std::vector<Target> targets_;
  size_t next_ = 0;
};

class Resolver {
 public:
  struct Options {
    std::vector<std::string> servers;  // "ip" or "ip:port"; empty: /etc/resolv.conf
    std::chrono::milliseconds timeout{2000};
    int tries = 2;
    size_t max_cache = 10000;
  };
  using Done = std::function<void(std::vector<Target>)>;

  explicit Resolver(Options options);
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // The targets to try, in order, for a sip:/sips: URI (RFC 3263 §4). Empty when nothing
  // resolves. `done` runs on the resolver thread.
  void resolve(const std::string& uri, Done done);
  std::vector<Target> resolve_sync(const std::string& uri);

  // RFC 2782 ordering: by priority, then a weighted random draw within each priority.
  static void order_srv(std::vector<Target>& targets, uint32_t (*random)() = nullptr);

 private:
  struct Answer {
    std::vector<unsigned char> bytes;
    int status = 0;
  };
  struct Cached {
    std::chrono::steady_clock::time_point expires;
    Answer answer;
  };
  void run();
  std::vector<Target> locate(const std::string& uri);
  Answer query(const std::string& name, int type);
  std::vector<Target> srv(const std::string& name, Proto proto);
  std::vector<Target> addresses(const std::string& host, uint16_t port, Proto proto);

  Options options_;
  void* channel_ = nullptr;  // ares_channel
  std::map<std::pair<std::string, int>, Cached> cache_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<std::string, Done>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace esg::transport
