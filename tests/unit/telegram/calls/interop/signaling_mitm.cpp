// A manual interop check of SignalingChannel and the V2 messages against the real tgcalls: this
// program sits between two tgpeers (/work/shared/tools/tgpeer) and terminates the signaling of
// each, as the callee towards the caller A and as the caller towards the callee B, passing every
// message through parse_message and serialize. The call only comes up if tgcalls accepts the
// channel's packets, acks and resends in both roles and the serialized messages. Optionally
// drops blobs at random both ways, so that both ends' resends are exercised.
//
//   g++ -std=c++20 -O1 -I src tests/unit/telegram/calls/interop/signaling_mitm.cpp
//       build/<dir>/src/telegram/calls/libesg_tgcalls_signaling.a -lcrypto -o /tmp/signaling_mitm
//   cp /work/shared/tools/tgpeer/relay_demo.py /tmp/mitm_demo.py
//   patch /tmp/mitm_demo.py tests/unit/telegram/calls/data/relay_demo_dump.patch
//   patch /tmp/mitm_demo.py tests/unit/telegram/calls/interop/mitm_demo.patch
//   python3 /tmp/mitm_demo.py --bin /work/shared/tools/tgpeer/tgpeer --versions 9.0.0,8.0.0
//       --netns tgsig --mitm /tmp/signaling_mitm:0.15       (one command line each)
//
// stdin: {"from":"A"|"B","blob":base64}; stdout: {"to":"A"|"B","blob":base64}, {"log":...} and
// once a second {"stats":...}. Arguments: the key in hex, the loss (0..1), a random seed.
#include <openssl/evp.h>
#include <poll.h>

#include <nlohmann/json.hpp>

#include <iostream>
#include <random>

#include "telegram/calls/messages.hpp"
#include "telegram/calls/signaling.hpp"

using namespace esg::telegram::calls;

namespace {

std::string to_base64(const std::string& s) {
  std::string o(4 * ((s.size() + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(o.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  o.resize(static_cast<size_t>(n));
  return o;
}

std::string from_base64(const std::string& s) {
  std::string o(3 * s.size() / 4 + 3, '\0');
  const int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(o.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  size_t pad = 0;
  if (!s.empty() && s.back() == '=') ++pad;
  if (s.size() > 1 && s[s.size() - 2] == '=') ++pad;
  o.resize(static_cast<size_t>(n) - pad);
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  std::string key;
  const std::string hex = argv[1];
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    key.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  const double loss = argc > 2 ? std::atof(argv[2]) : 0;
  std::mt19937 rng(argc > 3 ? static_cast<unsigned>(std::atoi(argv[3])) : 1u);
  std::uniform_real_distribution<double> u(0, 1);
  SignalingChannel to_a(key, false);  // we are the callee towards A
  SignalingChannel to_b(key, true);   // and the caller towards B
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto out = [](const nlohmann::json& j) { std::cout << j.dump() << std::endl; };
  uint64_t dropped = 0, identical = 0, differ = 0;
  auto sender = [&](const char* to) {
    return [&, to](std::string b) {
      if (u(rng) < loss) {
        ++dropped;
        return;
      }
      out({{"to", to}, {"blob", to_base64(b)}});
    };
  };
  to_a.send = sender("A");
  to_b.send = sender("B");
  auto relay = [&](SignalingChannel& onward, const char* from, const std::string& m) {
    auto parsed = parse_message(m);
    const std::string again = parsed ? serialize(*parsed) : m;
    if (parsed && again == m) {
      ++identical;
    } else {
      ++differ;
      out({{"log",
            std::string("not identical from ") + from + ": " + (parsed ? again : parsed.error())}});
    }
    if (!onward.send_message(again, now())) out({{"log", "send_message refused"}});
  };
  to_a.on_message = [&](std::string m) { relay(to_b, "A", m); };
  to_b.on_message = [&](std::string m) { relay(to_a, "B", m); };
  auto stats = [](const SignalingChannel& ch) {
    const auto& n = ch.counters();
    return nlohmann::json{{"sent", n.sent},           {"received", n.received},
                          {"resent", n.resent},       {"repeated", n.repeated},
                          {"replayed", n.replayed},   {"undecryptable", n.undecryptable},
                          {"malformed", n.malformed}, {"unacked", ch.unacknowledged()}};
  };
  auto last_stats = now();
  std::string line;
  for (;;) {
    int timeout = 200;
    for (const SignalingChannel* c : {&to_a, &to_b}) {
      if (auto t = c->next_tick()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*t - now()).count();
        timeout = std::max(0, std::min(timeout, static_cast<int>(ms) + 1));
      }
    }
    pollfd pfd{0, POLLIN, 0};
    if (poll(&pfd, 1, timeout) > 0) {
      if (!std::getline(std::cin, line)) break;
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("blob")) continue;
      if (u(rng) < loss) {
        ++dropped;
        continue;
      }
      (j.value("from", "") == "A" ? to_a : to_b)
          .on_blob(from_base64(j["blob"].get<std::string>()), now());
    }
    to_a.tick(now());
    to_b.tick(now());
    if (now() - last_stats > std::chrono::seconds(1)) {
      last_stats = now();
      out({{"stats",
            {{"to_a", stats(to_a)},
             {"to_b", stats(to_b)},
             {"dropped", dropped},
             {"identical", identical},
             {"differ", differ}}}});
    }
  }
  return 0;
}
