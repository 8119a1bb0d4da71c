#pragma once
// The firewall list (issue 23): every address from which esg instances send to PBXs, SIP
// signaling and RTP media, for the PBX's firewall. Each instance collects its own addresses
// (collect_addresses) and publishes them in its row of the instances table; /fw.txt and the
// monitoring API merge the rows of every instance (fw_text, fw_json).
//
// A listener or the media relay bound to a wildcard (0.0.0.0, ::) sends from whichever address
// the routing table picks: a firewall cannot use the wildcard, so such an instance lists its
// interface addresses instead (loopback and link-local ones left out: they never reach a PBX
// on another host), and says so.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace esg::cluster {

// One address (or CIDR) an instance sends from.
struct FwAddress {
  std::string addr;               // canonical: "10.0.0.5", "2001:db8::1", "192.0.2.0/28"
  std::vector<std::string> uses;  // "sip", "rtp" (in that order, each once)
  // Where it comes from: "listen", "media", "interface" (a wildcard's), "extaddrs", "stun",
  // "fwaddrs" (each once, in the order first seen).
  std::vector<std::string> from;
  bool operator==(const FwAddress&) const = default;
};

// What an instance's addresses are made of.
struct FwSources {
  std::vector<std::string> listen;        // the SIP listeners' addresses (config order)
  std::string media_address = "0.0.0.0";  // media.address, where the relay's sockets bind
  std::vector<std::string> extaddrs;      // instance.extaddrs (what NAT makes of us)
  std::string stun;                       // the address STUN found ("" none)
  std::vector<std::string> fwaddrs;       // instance.fwaddrs: more addresses or CIDRs
  std::vector<std::string> interfaces;    // the host's addresses (interface_addresses())
};

// The instance's addresses, deduplicated (an address both listened on and advertised is one
// entry with both uses and sources), in address order. Text that is no address is skipped.
std::vector<FwAddress> collect_addresses(const FwSources& s);

// The host's interface addresses (getifaddrs), of interfaces that are up.
std::vector<std::string> interface_addresses();

// "10.0.0.5", "2001:db8::1" or "192.0.2.0/28" in canonical form (host bits of a CIDR cleared;
// a /32 or /128 is the plain address); nullopt when `text` is neither.
std::optional<std::string> canonical_address(const std::string& text);

nlohmann::json to_json(const std::vector<FwAddress>& addrs);
// What another instance published (tolerant: entries without an address are left out).
std::vector<FwAddress> fw_addresses_from_json(const nlohmann::json& j);

// One instance as /fw.txt shows it.
struct FwInstance {
  int64_t srvidx = 0;
  std::string node;
  bool online = true;
  bool self = false;  // the instance that answers
  std::vector<FwAddress> addrs;
};

// text/plain: a header comment (what the list is, when it was made, from how many instances,
// the wildcard rule), then one address or CIDR a line, sorted (IPv4 first, by value), each
// once, with a comment naming every instance that sends from it and for what.
std::string fw_text(const std::vector<FwInstance>& instances, int64_t now_ms);
// The same for the monitoring API: {"generated", "generated_ms", "addresses": [{"addr",
// "instances": [{"srvidx", "node", "online", "uses", "from"}]}], "instances": [{"srvidx",
// "node", "online", "addrs": [{"addr", "uses", "from"}]}]}.
nlohmann::json fw_json(const std::vector<FwInstance>& instances, int64_t now_ms);

}  // namespace esg::cluster
