#pragma once
// ICE candidates as SDP carries them (RFC 8839 a=candidate) and as tgcalls signals them in its
// Candidates message, and the priority formulas of RFC 8445 §5.1.2 and §6.1.2.3.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esg::media::ice {

// An SDP candidate. Telegram's reflector relay candidates carry a hostname as address.
struct Candidate {
  std::string foundation;
  int component = 1;
  std::string protocol = "udp";
  uint32_t priority = 0;
  std::string address;
  uint16_t port = 0;
  std::string type;  // "host" "srflx" "prflx" "relay"
  std::string related_address;
  uint16_t related_port = 0;
  std::string ufrag;
  int generation = 0;
  int network_id = 1;

  // With or without the "a=" and "candidate:" prefixes; extensions other than generation,
  // ufrag and network-id are ignored. Nothing for a line that is not a candidate.
  static std::optional<Candidate> parse(std::string_view sdp);
  // "candidate:<f> 1 udp <prio> <addr> <port> typ host [raddr <a> rport <p>] generation 0
  // ufrag <u> network-id 1" (tgcalls' shape; ufrag left out when empty).
  std::string to_sdp() const;

  bool operator==(const Candidate&) const = default;
};

// RFC 8445 §5.1.2.2 type preferences.
inline constexpr uint32_t kTypePreferenceHost = 126;
inline constexpr uint32_t kTypePreferencePrflx = 110;
inline constexpr uint32_t kTypePreferenceSrflx = 100;
inline constexpr uint32_t kTypePreferenceRelay = 0;

// RFC 8445 §5.1.2.1: (2^24)*(type preference) + (2^8)*(local preference) + (256 - component).
inline constexpr uint32_t candidate_priority(uint32_t type_preference, uint32_t local_preference,
                                             int component = 1) {
  return (type_preference << 24) | ((local_preference & 0xFFFF) << 8) | uint32_t(256 - component);
}

// RFC 8445 §6.1.2.3: 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0), G the controlling agent's
// candidate's priority, D the controlled agent's.
inline constexpr uint64_t pair_priority(uint32_t controlling, uint32_t controlled) {
  const uint64_t g = controlling, d = controlled;
  return (std::min(g, d) << 32) + 2 * std::max(g, d) + (g > d ? 1 : 0);
}

}  // namespace esg::media::ice
