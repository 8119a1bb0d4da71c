#pragma once
// esg as the registrar of PBX connections in mode `register-in` (RFC 3261 §10.3): the PBX
// REGISTERs with digest credentials (its connection's `username`/`pwd`), esg keeps its binding
// until it expires, and calls for that PBX go to where the REGISTER came from (its NAT's
// address, not what its Contact claims). Failed authentications are reported for the bans.
// Shared by all workers: one lock, taken per REGISTER and per call set-up, never per packet.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "accounts/pbx.hpp"
#include "sip/auth/digest.hpp"
#include "sip/message.hpp"

namespace esg::accounts {

struct Binding {
  std::string pbx;        // connection code
  std::string contact;    // the registered Contact URI
  std::string transport;  // udp | tcp | tls, of the REGISTER
  std::string addr;       // where the REGISTER came from
  uint16_t port = 0;
  std::chrono::steady_clock::time_point expires;
};

class Registrar {
 public:
  struct Options {
    std::string realm = "esg";
    int min_expires = 60;
    int max_expires = 3600;
    std::function<std::chrono::steady_clock::time_point()> now;  // steady_clock when empty
  };
  struct Answer {
    uint16_t status = 200;
    std::string reason;
    std::string extra;          // header lines ending in CRLF
    bool auth_failure = false;  // counts towards a ban of the source
    std::string why;            // for the log
  };

  explicit Registrar(Options options);

  // The connections that may register (register-in), replaced whenever they change; bindings
  // of connections that are gone or changed credentials are dropped.
  void set_connections(const std::vector<std::shared_ptr<const PbxConnection>>& pbxs);
  // Answers a REGISTER that came from `transport` `addr`:`port`.
  Answer on_register(const sip::Message& request, const std::string& transport,
                     const std::string& addr, uint16_t port);

  // Who is calling, by authentication: a request (an INVITE) that carries credentials of a
  // register-in connection, answering a nonce of ours, names that connection. `failed` tells
  // credentials that were there but wrong (they count towards bans).
  std::optional<std::string> authenticate(const sip::Message& request, bool* failed);

  std::optional<Binding> binding(const std::string& pbx_code);
  // The register-in connection with a live binding from `addr`, if any (who is calling).
  std::optional<std::string> pbx_at(const std::string& addr);
  std::vector<Binding> bindings();

 private:
  std::chrono::steady_clock::time_point now() const;

  Options options_;
  std::mutex mu_;
  sip::auth::DigestServer digest_;
  std::unordered_map<std::string, std::shared_ptr<const PbxConnection>> by_username_;
  std::unordered_map<std::string, Binding> bindings_;  // by connection code
};

}  // namespace esg::accounts
