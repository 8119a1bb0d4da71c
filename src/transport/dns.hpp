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
