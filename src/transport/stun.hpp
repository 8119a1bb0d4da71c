#pragma once
// The instance's external address from STUN (RFC 5389): a Binding request to the configured
// server at start and then periodically; the XOR-MAPPED-ADDRESS of the answer (MAPPED-ADDRESS
// from RFC 3489 servers) is the address the outside sees us at. Retransmitted with a doubling
// timeout (RFC 5389 §7.2.1, fewer tries); failures are reported and tried again next period.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace esg::transport {

using StunTxid = std::array<uint8_t, 12>;

std::string stun_binding_request(const StunTxid& txid);
// The mapped address of a Binding success response to `txid`; none for anything else.
std::optional<boost::asio::ip::udp::endpoint> stun_mapped_address(std::string_view response,
                                                                  const StunTxid& txid);

class StunClient {
 public:
  struct Options {
    std::string server;  // host[:port], 3478 by default
    std::chrono::seconds interval{300};
    std::chrono::milliseconds first_timeout{500};
    int tries = 4;
  };
  // `found` is called (on `io`'s thread) with each address the server reports.
  StunClient(boost::asio::io_context& io, Options options,
             std::function<void(const std::string& address)> found);
  ~StunClient();
  void start();
  void stop();
  // {"server", "address", "port", "updated_ms", "error"}: for the monitoring API.
  nlohmann::json status() const;

 private:
  void query();
  void send();
  void receive();
  void fail(const std::string& why);

  boost::asio::io_context& io_;
  Options options_;
  std::function<void(const std::string&)> found_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::ip::udp::resolver resolver_;
  boost::asio::steady_timer timer_;
  boost::asio::ip::udp::endpoint server_;
  std::array<char, 1500> buf_{};
  boost::asio::ip::udp::endpoint from_;
  StunTxid txid_{};
  int try_ = 0;
  bool stopped_ = false;
  mutable std::mutex mu_;  // status() is read from the HTTP thread
  std::string address_, error_;
  uint16_t port_ = 0;
  int64_t updated_ms_ = 0;
};

}  // namespace esg::transport
