#pragma once
// Two DtlsSessions wired back to back in memory, with a hook that loses chosen datagrams.

#include <algorithm>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "media/webrtc/dtls/dtls.hpp"

namespace esg::media::dtls::test {

struct Side {
  std::unique_ptr<DtlsSession> session;
  std::optional<SrtpKeys> keys;
  std::optional<std::string> failed;
  std::vector<std::string> data;
  std::vector<std::string> sent;  // every datagram this side sent, in order
  std::deque<std::string> wire;   // sent and not yet delivered
  size_t lost = 0;                // sent and lost on the way
};

struct Link {
  std::shared_ptr<const DtlsCertificate> client_cert = DtlsCertificate::generate();
  std::shared_ptr<const DtlsCertificate> server_cert = DtlsCertificate::generate();
  Side client, server;
  // Returns true to lose the datagram `index` (0-based, per sender) that `from` sends.
  std::function<bool(const Side& from, size_t index)> lose;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();

  // `client_expects`/`server_expects`: the fingerprint each side is told by signaling (the
  // peer's real one when empty).
  explicit Link(std::string client_expects = "", std::string server_expects = "") {
    if (client_expects.empty()) client_expects = server_cert->fingerprint();
    if (server_expects.empty()) server_expects = client_cert->fingerprint();
    client.session =
        std::make_unique<DtlsSession>(DtlsRole::Client, client_cert, "sha-256", client_expects);
    server.session =
        std::make_unique<DtlsSession>(DtlsRole::Server, server_cert, "sha-256", server_expects);
    wire(client);
    wire(server);
  }

  void wire(Side& s) {
    s.session->send = [this, &s](std::string_view d) {
      const size_t index = s.sent.size();
      s.sent.emplace_back(d);
      if (lose && lose(s, index))
        ++s.lost;
      else
        s.wire.emplace_back(d);
    };
    s.session->on_connected = [&s](const SrtpKeys& k) { s.keys = k; };
    s.session->on_failed = [&s](std::string_view why) { s.failed = std::string(why); };
    s.session->on_data = [&s](std::string_view d) { s.data.emplace_back(d); };
  }

  // Delivers what is on the wire, both ways, until nothing is left.
  void pump() {
    for (int rounds = 0; rounds < 1000 && (!client.wire.empty() || !server.wire.empty());
         ++rounds) {
      deliver(client, server);
      deliver(server, client);
    }
  }

  void deliver(Side& from, Side& to) {
    while (!from.wire.empty()) {
      std::string d = std::move(from.wire.front());
      from.wire.pop_front();
      to.session->on_packet(d, now);
    }
  }

  void start() {
    server.session->start(now);
    client.session->start(now);
    pump();
  }

  bool both_connected() const { return client.keys && server.keys; }

  size_t largest_datagram() const {
    size_t n = 0;
    for (const auto* s : {&client, &server})
      for (const auto& d : s->sent)
        n = std::max(n, d.size());
    return n;
  }
};

}  // namespace esg::media::dtls::test
