#pragma once
// HEP v3 export (issue 10): every packet esg sends or receives, also to a Homer collector over
// UDP, as HEP's chunks (addresses and ports of both ends, time, SIP as the payload, the
// Call-ID as correlation id, the capture agent id and password). Sending never blocks a
// worker: a datagram that the socket cannot take at once is counted as dropped.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "transport/transport.hpp"
#include "transport/trn_log.hpp"

namespace esg::transport {

struct HepOptions {
  std::string address;  // the collector, "IP:port"
  uint32_t id = 2001;   // capture agent id
  std::string password;
};

// One HEP v3 packet. `from`/`to` are the two ends as the packet travelled.
struct HepPacket {
  boost::asio::ip::address src, dst;
  uint16_t src_port = 0, dst_port = 0;
  bool tcp = false;
  std::chrono::system_clock::time_point time;
  std::string payload, call_id;
};
std::string encode_hep(const HepPacket& p, uint32_t agent_id, const std::string& password);

class HepExporter {
 public:
  // `locals`: the address and port of each listener, in config order (what a packet was
  // received on or sent from).
  struct Local {
    Proto proto = Proto::Udp;
    boost::asio::ip::address addr;
    uint16_t port = 0;
  };
  static Result<boost::asio::ip::udp::endpoint, std::string> parse_address(const std::string& a);
  HepExporter(HepOptions options, boost::asio::ip::udp::endpoint collector,
              std::vector<Local> locals);
  ~HepExporter();
  // Thread-safe: any worker.
  void send(const PacketRecord& r, const Peer& peer);
  uint64_t sent() const { return sent_; }
  uint64_t dropped() const { return dropped_; }

 private:
  HepOptions options_;
  boost::asio::io_context io_;  // never run: the socket is used synchronously, non-blocking
  boost::asio::ip::udp::socket sock_;
  boost::asio::ip::udp::endpoint collector_;
  std::vector<Local> locals_;
  std::atomic<uint64_t> sent_{0}, dropped_{0};
};

}  // namespace esg::transport
