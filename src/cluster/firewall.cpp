#include "cluster/firewall.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <compare>
#include <cstring>
#include <map>

#include "base/time.hpp"

namespace esg::cluster {

namespace {

// An address or network as bytes, for ordering: IPv4 before IPv6, then by value, then the
// narrower network first.
struct Key {
  int family = AF_INET;  // AF_INET or AF_INET6
  std::array<unsigned char, 16> bytes{};
  int prefix = 32;
  auto operator<=>(const Key& o) const {
    if (auto c = (family == AF_INET ? 0 : 1) <=> (o.family == AF_INET ? 0 : 1); std::is_neq(c))
      return c;
    if (auto c = bytes <=> o.bytes; std::is_neq(c)) return c;
    return prefix <=> o.prefix;
  }
  bool operator==(const Key&) const = default;

  std::string text() const {
    char buf[INET6_ADDRSTRLEN] = {};
    inet_ntop(family, bytes.data(), buf, sizeof buf);
    const int full = family == AF_INET ? 32 : 128;
    return prefix == full ? std::string(buf) : std::string(buf) + "/" + std::to_string(prefix);
  }
};

std::optional<Key> parse_key(const std::string& text) {
  Key k;
  std::string addr = text;
  int prefix = -1;
  if (const size_t slash = text.find('/'); slash != std::string::npos) {
    addr = text.substr(0, slash);
    const std::string p = text.substr(slash + 1);
    if (p.empty() || p.size() > 3 ||
        !std::all_of(p.begin(), p.end(), [](char c) { return c >= '0' && c <= '9'; }))
      return {};
    prefix = std::stoi(p);
  }
  if (inet_pton(AF_INET, addr.c_str(), k.bytes.data()) == 1) {
    k.family = AF_INET;
  } else if (inet_pton(AF_INET6, addr.c_str(), k.bytes.data()) == 1) {
    k.family = AF_INET6;
  } else {
    return {};
  }
  const int full = k.family == AF_INET ? 32 : 128;
  if (prefix > full) return {};
  k.prefix = prefix < 0 ? full : prefix;
  // The network's own address: 10.0.0.5/24 is 10.0.0.0/24.
  for (int bit = k.prefix; bit < full; ++bit)
    k.bytes[size_t(bit / 8)] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
  return k;
}

bool is_wildcard(const Key& k) {
  return k.prefix == (k.family == AF_INET ? 32 : 128) &&
         std::all_of(k.bytes.begin(), k.bytes.end(), [](unsigned char b) { return b == 0; });
}

// Loopback and link-local addresses never reach a PBX on another host.
bool is_local_only(const Key& k) {
  if (k.family == AF_INET) return k.bytes[0] == 127 || (k.bytes[0] == 169 && k.bytes[1] == 254);
  static const std::array<unsigned char, 16> kLoopback = {0, 0, 0, 0, 0, 0, 0, 0,
                                                          0, 0, 0, 0, 0, 0, 0, 1};
  return k.bytes == kLoopback || (k.bytes[0] == 0xfe && (k.bytes[1] & 0xc0) == 0x80);
}

void add_once(std::vector<std::string>& list, const std::string& v) {
  if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
}

// Addresses by key, merged: one entry per address with every use and source.
class Merger {
 public:
  void add(const Key& k, const std::string& use, const std::string& from) {
    auto& a = by_key_[k];
    if (a.addr.empty()) a.addr = k.text();
    add_once(a.uses, use);
    add_once(a.from, from);
  }
  void add_text(const std::string& text, const std::vector<std::string>& uses,
                const std::string& from) {
    const auto k = parse_key(text);
    if (!k || is_wildcard(*k)) return;
    for (const auto& u : uses)
      add(*k, u, from);
  }
  // An address bound to: itself, or for a wildcard the interfaces' addresses of its family
  // (:: on Linux is dual-stack: both).
  void add_bound(const std::string& text, const std::string& use, const std::string& from,
                 const std::vector<Key>& interfaces) {
    const auto k = parse_key(text);
    if (!k) return;
    if (!is_wildcard(*k)) {
      add(*k, use, from);
      return;
    }
    for (const auto& i : interfaces) {
      if (k->family == AF_INET && i.family != AF_INET) continue;
      add(i, use, "interface");
    }
  }
  std::vector<FwAddress> done() {
    std::vector<FwAddress> out;
    out.reserve(by_key_.size());
    for (auto& [k, a] : by_key_) {
      // sip before rtp, whatever order they came in.
      std::sort(a.uses.begin(), a.uses.end(), [](const std::string& x, const std::string& y) {
        return x == "sip" && y != "sip";
      });
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  std::map<Key, FwAddress> by_key_;
};

std::string instance_name(const FwInstance& i) {
  std::string s = "srvidx " + std::to_string(i.srvidx);
  if (!i.node.empty()) s += ", " + i.node;
  if (!i.online) s += ", offline";
  return "instance " + std::to_string(i.srvidx) + " (" + s + ")";
}

std::string joined(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (const auto& x : v)
    out += (out.empty() ? "" : sep) + x;
  return out;
}

// The instances in srvidx order.
std::vector<const FwInstance*> by_srvidx(const std::vector<FwInstance>& instances) {
  std::vector<const FwInstance*> sorted;
  sorted.reserve(instances.size());
  for (const auto& i : instances)
    sorted.push_back(&i);
  std::sort(sorted.begin(), sorted.end(),
            [](const FwInstance* a, const FwInstance* b) { return a->srvidx < b->srvidx; });
  return sorted;
}

struct Line {
  Key key;
  std::string addr;
  std::vector<std::pair<const FwInstance*, const FwAddress*>> who;
};

// Every address once, in order, with the instances that send from it (in srvidx order).
std::vector<Line> merged_lines(const std::vector<FwInstance>& instances) {
  std::map<Key, Line> lines;
  for (const auto* i : by_srvidx(instances)) {
    for (const auto& a : i->addrs) {
      const auto k = parse_key(a.addr);
      if (!k) continue;
      auto& l = lines[*k];
      if (l.addr.empty()) {
        l.key = *k;
        l.addr = k->text();
      }
      l.who.emplace_back(i, &a);
    }
  }
  std::vector<Line> out;
  out.reserve(lines.size());
  for (auto& [k, l] : lines)
    out.push_back(std::move(l));
  return out;
}

}  // namespace

std::optional<std::string> canonical_address(const std::string& text) {
  const auto k = parse_key(text);
  if (!k) return {};
  return k->text();
}

std::vector<std::string> interface_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET6_ADDRSTRLEN] = {};
    if (i->ifa_addr->sa_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                sizeof buf);
    } else if (i->ifa_addr->sa_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf,
                sizeof buf);
    } else {
      continue;
    }
    add_once(out, buf);
  }
  freeifaddrs(list);
  return out;
}

std::vector<FwAddress> collect_addresses(const FwSources& s) {
  std::vector<Key> interfaces;
  for (const auto& text : s.interfaces) {
    if (auto k = parse_key(text); k && !is_wildcard(*k) && !is_local_only(*k))
      interfaces.push_back(*k);
  }
  Merger m;
  for (const auto& l : s.listen)
    m.add_bound(l, "sip", "listen", interfaces);
  m.add_bound(s.media_address, "rtp", "media", interfaces);
  // What NAT makes of us, and what the operator adds (a NAT pool): both kinds of packets.
  for (const auto& x : s.extaddrs)
    m.add_text(x, {"sip", "rtp"}, "extaddrs");
  if (!s.stun.empty()) m.add_text(s.stun, {"sip", "rtp"}, "stun");
  for (const auto& x : s.fwaddrs)
    m.add_text(x, {"sip", "rtp"}, "fwaddrs");
  return m.done();
}

nlohmann::json to_json(const std::vector<FwAddress>& addrs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& a : addrs)
    out.push_back({{"addr", a.addr}, {"uses", a.uses}, {"from", a.from}});
  return out;
}

std::vector<FwAddress> fw_addresses_from_json(const nlohmann::json& j) {
  std::vector<FwAddress> out;
  if (!j.is_array()) return out;
  auto strings = [](const nlohmann::json& v) {
    std::vector<std::string> s;
    if (!v.is_array()) return s;
    for (const auto& x : v)
      if (x.is_string()) s.push_back(x.get<std::string>());
    return s;
  };
  for (const auto& x : j) {
    if (!x.is_object() || !x.contains("addr") || !x["addr"].is_string()) continue;
    const auto canonical = canonical_address(x["addr"].get<std::string>());
    if (!canonical) continue;
    out.push_back({*canonical, strings(x.value("uses", nlohmann::json())),
                   strings(x.value("from", nlohmann::json()))});
  }
  return out;
}

std::string fw_text(const std::vector<FwInstance>& instances, int64_t now_ms) {
  const auto lines = merged_lines(instances);
  std::string out =
      "# esg firewall list: every address from which esg instances send to PBXs (SIP signaling "
      "and RTP media).\n"
      "# Allow these sources on the PBX's firewall. One address or CIDR a line; '#' starts a "
      "comment.\n"
      "# Generated " +
      timeutil::iso_time(now_ms) + " from " + std::to_string(instances.size()) +
      " instance(s) of the cluster.\n"
      "# An instance bound to a wildcard address (0.0.0.0, ::) is listed with its interface "
      "addresses\n"
      "# (loopback and link-local left out).\n";
  for (const auto& i : instances) {
    if (i.addrs.empty()) out += "# " + instance_name(i) + ": no address published\n";
  }
  size_t width = 0;
  for (const auto& l : lines)
    width = std::max(width, l.addr.size());
  for (const auto& l : lines) {
    std::string who;
    for (const auto& [i, a] : l.who)
      who += (who.empty() ? "" : "; ") + instance_name(*i) + ": " + joined(a->uses, ", ");
    out += l.addr + std::string(width - l.addr.size() + 2, ' ') + "# " + who + "\n";
  }
  return out;
}

nlohmann::json fw_json(const std::vector<FwInstance>& instances, int64_t now_ms) {
  nlohmann::json addresses = nlohmann::json::array();
  for (const auto& l : merged_lines(instances)) {
    nlohmann::json who = nlohmann::json::array();
    for (const auto& [i, a] : l.who) {
      who.push_back({{"srvidx", i->srvidx},
                     {"node", i->node},
                     {"online", i->online},
                     {"uses", a->uses},
                     {"from", a->from}});
    }
    addresses.push_back({{"addr", l.addr}, {"instances", who}});
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto* i : by_srvidx(instances)) {
    list.push_back({{"srvidx", i->srvidx},
                    {"node", i->node},
                    {"online", i->online},
                    {"self", i->self},
                    {"addrs", to_json(i->addrs)}});
  }
  return {{"generated", timeutil::iso_time(now_ms)},
          {"generated_ms", now_ms},
          {"addresses", addresses},
          {"instances", list}};
}

}  // namespace esg::cluster
