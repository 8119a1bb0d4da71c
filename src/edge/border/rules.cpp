#include "edge/border/rules.hpp"

#include <re2/re2.h>
#include <re2/set.h>

#include <algorithm>
#include <map>
#include <set>

namespace esg::edge {

using nlohmann::json;

std::string_view border_action_name(BorderAction a) {
  switch (a) {
    case BorderAction::Allow:
      return "allow";
    case BorderAction::Deny:
      return "deny";
    case BorderAction::Drop:
      return "drop";
  }
  return "";
}

std::optional<BorderAction> border_action(std::string_view name) {
  if (name == "allow") return BorderAction::Allow;
  if (name == "deny") return BorderAction::Deny;
  if (name == "drop") return BorderAction::Drop;
  return std::nullopt;
}

namespace {

constexpr const char* kFilters[] = {"address",   "port",      "proto",   "method",
                                    "ruri_user", "from_user", "to_user", "user_agent"};

// An address filter split into its kind: CIDR (network key and prefix on the 128-bit form), an
// exact address, or a mask/regex to run as RE2 over the address text.
struct AddressPattern {
  enum class Kind : uint8_t { Exact, Cidr, Regex } kind = Kind::Exact;
  IpKey key;
  int bits = 128;
  std::string regex;  // RE2 syntax, matched against the whole text
};

std::optional<AddressPattern> parse_address(const std::string& text, std::string* why) {
  AddressPattern p;
  if (text.rfind("/reg/", 0) == 0) {
    if (!valid_pattern(text, why)) return std::nullopt;
    p.kind = AddressPattern::Kind::Regex;
    p.regex = text.substr(5);
    return p;
  }
  if (const size_t slash = text.find('/'); slash != std::string::npos) {
    auto key = IpKey::parse(std::string_view(text).substr(0, slash));
    const std::string bits = text.substr(slash + 1);
    const int max = key && key->v4() ? 32 : 128;
    if (!key || bits.empty() || bits.size() > 3 ||
        bits.find_first_not_of("0123456789") != std::string::npos || std::stoi(bits) > max) {
      if (why) *why = "not a CIDR (address/bits)";
      return std::nullopt;
    }
    p.kind = AddressPattern::Kind::Cidr;
    p.bits = std::stoi(bits) + (key->v4() ? 96 : 0);
    p.key = key->masked(p.bits);
    return p;
  }
  if (text.find_first_of("?*") != std::string::npos) {
    if (text.find_first_not_of("0123456789abcdefABCDEF.:?*") != std::string::npos) {
      if (why) *why = "a mask may hold only address characters, ? and *";
      return std::nullopt;
    }
    p.kind = AddressPattern::Kind::Regex;
    // The address text is lower case (inet_ntop), so is the mask: no (?i), a smaller DFA.
    for (char c : text) {
      if (c >= 'A' && c <= 'F') c = char(c - 'A' + 'a');
      if (c == '*') {
        p.regex += ".*";
      } else if (c == '?') {
        p.regex += '.';
      } else if (c == '.') {
        p.regex += "\\.";
      } else {
        p.regex += c;
      }
    }
    return p;
  }
  auto key = IpKey::parse(text);
  if (!key) {
    if (why) *why = "must be an IP address, a CIDR, a mask like 44.55.6?.* or /reg/<regex>";
    return std::nullopt;
  }
  p.key = *key;
  return p;
}

}  // namespace

bool BorderRule::address_only() const {
  return !address.empty() && port.empty() && proto.empty() && method.empty() && ruri_user.empty() &&
         from_user.empty() && to_user.empty() && user_agent.empty();
}

Result<BorderRule, accounts::FieldError> border_rule_from_json(const json& j) {
  using E = accounts::FieldError;
  auto bad = [](std::string field, std::string msg) {
    return unexpected(E{std::move(field), std::move(msg)});
  };
  if (!j.is_object()) return bad("", "must be an object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& k = it.key();
    if (k == "id" || k == "priority" || k == "enabled" || k == "action" || k == "comment") continue;
    if (std::find_if(std::begin(kFilters), std::end(kFilters),
                     [&](const char* f) { return k == f; }) == std::end(kFilters)) {
      return bad(k, "unknown field");
    }
  }
  BorderRule r;
  for (const char* k : {"id", "priority"}) {
    if (j.contains(k) && !j[k].is_number_integer()) return bad(k, "must be an integer");
  }
  if (j.contains("enabled") && !j["enabled"].is_boolean())
    return bad("enabled", "must be true or false");
  if (j.contains("comment") && !j["comment"].is_string()) return bad("comment", "must be a string");
  r.id = j.value("id", int64_t(0));
  r.priority = j.value("priority", 100);
  r.enabled = j.value("enabled", true);
  r.comment = j.value("comment", std::string());
  if (!j.contains("action") || !j["action"].is_string())
    return bad("action", "is required: allow, deny or drop");
  auto action = border_action(j["action"].get<std::string>());
  if (!action) return bad("action", "must be allow, deny or drop");
  r.action = *action;
  std::string* fields[] = {&r.address,   &r.port,      &r.proto,   &r.method,
                           &r.ruri_user, &r.from_user, &r.to_user, &r.user_agent};
  for (size_t i = 0; i < std::size(kFilters); ++i) {
    const char* k = kFilters[i];
    if (!j.contains(k)) continue;
    if (j[k].is_number_integer() && std::string_view(k) == "port") {
      *fields[i] = std::to_string(j[k].get<int64_t>());
    } else if (!j[k].is_string()) {
      return bad(k, "must be a string");
    } else {
      *fields[i] = j[k].get<std::string>();
    }
    if (fields[i]->find_first_of("\r\n") != std::string::npos) return bad(k, "must be one line");
    std::string why;
    if (!valid_pattern(*fields[i], &why)) return bad(k, why);
  }
  std::string why;
  if (!r.address.empty() && !parse_address(r.address, &why)) return bad("address", why);
  if (!r.port.empty() && r.port.rfind("/reg/", 0) != 0) {
    if (r.port.find_first_not_of("0123456789?*") != std::string::npos)
      return bad("port", "must be a port number, a mask like 50?? or /reg/<regex>");
    if (r.port.find_first_of("?*") == std::string::npos &&
        (r.port.size() > 5 || std::stoi(r.port) < 1 || std::stoi(r.port) > 65535))
      return bad("port", "must be 1-65535");
  }
  if (!r.proto.empty() && r.proto.rfind("/reg/", 0) != 0 &&
      r.proto.find_first_of("?*") == std::string::npos && r.proto != "udp" && r.proto != "tcp" &&
      r.proto != "tls") {
    return bad("proto", "must be udp, tcp or tls (or a mask)");
  }
  return r;
}

json to_json(const BorderRule& r) {
  json j = {{"id", r.id},
            {"priority", r.priority},
            {"enabled", r.enabled},
            {"action", std::string(border_action_name(r.action))}};
  const std::string* fields[] = {&r.address,   &r.port,      &r.proto,   &r.method,
                                 &r.ruri_user, &r.from_user, &r.to_user, &r.user_agent};
  for (size_t i = 0; i < std::size(kFilters); ++i) {
    if (!fields[i]->empty()) j[kFilters[i]] = *fields[i];
  }
  j["comment"] = r.comment;
  return j;
}

// ---- AddressIndex ----------------------------------------------------------------------------

struct AddressIndex::Set {
  Set() : set(options(), RE2::ANCHOR_BOTH) {}
  static RE2::Options options() {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(64 << 20);  // room for the DFA of thousands of masks
    return o;
  }
  RE2::Set set;
  std::vector<uint32_t> values;  // by index in the set
};

AddressIndex::AddressIndex() = default;
AddressIndex::~AddressIndex() = default;
AddressIndex::AddressIndex(AddressIndex&&) noexcept = default;
AddressIndex& AddressIndex::operator=(AddressIndex&&) noexcept = default;

namespace {
void keep_lowest(std::unordered_map<IpKey, uint32_t, IpKeyHash>& m, const IpKey& k, uint32_t v) {
  auto [it, added] = m.emplace(k, v);
  if (!added) it->second = std::min(it->second, v);
}
}  // namespace

void AddressIndex::add(const std::string& pattern, uint32_t value) {
  auto p = parse_address(pattern, nullptr);
  if (!p) return;  // validated before it was stored
  switch (p->kind) {
    case AddressPattern::Kind::Exact:
      keep_lowest(exact_, p->key, value);
      return;
    case AddressPattern::Kind::Cidr: {
      Range r;
      r.first = number(p->key);
      r.last = r.first;
      // The host bits all ones: the last address of the network.
      const int host = 128 - p->bits;
      if (host >= 64) {
        r.last.lo = ~0ull;
        r.last.hi |= host == 128 ? ~0ull : (host == 64 ? 0 : (~0ull >> (128 - host)));
      } else if (host > 0) {
        r.last.lo |= ~0ull >> (64 - host);
      }
      r.value = value;
      ranges_.push_back(r);
      return;
    }
    case AddressPattern::Kind::Regex:
      masks_.emplace_back(p->regex, value);
      return;
  }
}

AddressIndex::U128 AddressIndex::number(const IpKey& k) {
  U128 n;
  for (int i = 0; i < 8; ++i) {
    n.hi = (n.hi << 8) | k.bytes[size_t(i)];
    n.lo = (n.lo << 8) | k.bytes[size_t(i + 8)];
  }
  return n;
}

void AddressIndex::compile() {
  // Sweep the CIDR boundaries in order, keeping the values of the CIDRs that cover the point.
  starts_.clear();
  values_.clear();
  struct Event {
    U128 at;
    bool open;
    uint32_t value;
  };
  std::vector<Event> events;
  for (const auto& r : ranges_) {
    events.push_back({r.first, true, r.value});
    if (r.last != U128{~0ull, ~0ull}) {
      U128 next = r.last;
      if (++next.lo == 0) ++next.hi;
      events.push_back({next, false, r.value});
    }
  }
  std::sort(events.begin(), events.end(),
            [](const Event& a, const Event& b) { return a.at < b.at; });
  std::multiset<uint32_t> open;
  for (size_t i = 0; i < events.size();) {
    const U128 at = events[i].at;
    for (; i < events.size() && events[i].at == at; ++i) {
      if (events[i].open) {
        open.insert(events[i].value);
      } else {
        open.erase(open.find(events[i].value));
      }
    }
    const uint32_t value = open.empty() ? kNone : *open.begin();
    if (!values_.empty() && values_.back() == value) continue;
    starts_.push_back(at);
    values_.push_back(value);
  }
  set_.reset();
  if (masks_.empty()) return;
  auto set = std::make_unique<Set>();
  for (const auto& [re, value] : masks_) {
    if (set->set.Add(re, nullptr) >= 0) set->values.push_back(value);
  }
  if (!set->values.empty() && set->set.Compile()) set_ = std::move(set);
}

bool AddressIndex::empty() const {
  return exact_.empty() && starts_.empty() && !set_;
}

uint32_t AddressIndex::first(const IpKey& addr) const {
  uint32_t best = kNone;
  if (!exact_.empty()) {
    if (auto it = exact_.find(addr); it != exact_.end()) best = it->second;
  }
  if (!starts_.empty()) {
    const U128 n = number(addr);
    auto it = std::upper_bound(starts_.begin(), starts_.end(), n);
    if (it != starts_.begin()) best = std::min(best, values_[size_t(it - starts_.begin() - 1)]);
  }
  if (set_) {
    char buf[64];
    const std::string_view text = addr.format(buf);
    thread_local std::vector<int> hits;
    hits.clear();
    if (set_->set.Match(re2::StringPiece(text.data(), text.size()), &hits)) {
      for (int i : hits)
        best = std::min(best, set_->values[size_t(i)]);
    }
  }
  return best;
}

// ---- BorderRules -----------------------------------------------------------------------------

struct BorderRules::Compiled {
  BorderRule rule;
  AddressIndex address;  // this rule's own address filter
  Pattern port, proto, method, ruri_user, from_user, to_user, user_agent;
  std::optional<IpKey> names;  // the one address this rule names explicitly (IP or /32, /128)

  static bool field(const Pattern& p, const std::string& filter, std::string_view value) {
    return filter.empty() || p.matches(value);
  }
  bool matches(const IpKey& addr, const PacketFields& f) const {
    if (!rule.address.empty() && address.first(addr) == AddressIndex::kNone) return false;
    if (!rule.port.empty() && !port.matches(std::to_string(f.port))) return false;
    return field(proto, rule.proto, f.proto) && field(method, rule.method, f.method) &&
           field(ruri_user, rule.ruri_user, f.ruri_user) &&
           field(from_user, rule.from_user, f.from_user) &&
           field(to_user, rule.to_user, f.to_user) &&
           field(user_agent, rule.user_agent, f.user_agent);
  }
};

BorderRules::BorderRules() = default;
BorderRules::~BorderRules() = default;
size_t BorderRules::size() const {
  return rules_.size();
}

BorderRules::BorderRules(std::vector<BorderRule> rules, BorderAction default_action,
                         std::vector<Protected> protect)
    : default_(default_action) {
  std::sort(rules.begin(), rules.end(), [](const BorderRule& a, const BorderRule& b) {
    return a.priority != b.priority ? a.priority < b.priority : a.id < b.id;
  });
  for (auto& r : rules) {
    if (!r.enabled) continue;
    Compiled c;
    c.rule = std::move(r);
    const BorderRule& x = c.rule;
    if (!x.address.empty()) {
      c.address.add(x.address, 0);
      c.address.compile();
      if (auto p = parse_address(x.address, nullptr);
          p && p->kind != AddressPattern::Kind::Regex && p->bits == 128) {
        c.names = p->key;
      }
    }
    c.port = Pattern(x.port);
    c.proto = Pattern(x.proto);
    c.method = Pattern(x.method);
    c.ruri_user = Pattern(x.ruri_user);
    c.from_user = Pattern(x.from_user);
    c.to_user = Pattern(x.to_user);
    c.user_agent = Pattern(x.user_agent);
    const auto order = uint32_t(rules_.size());
    if (x.address_only()) {
      address_only_.add(x.address, order);
      ++address_rules_;
    } else {
      field_rules_.push_back(order);
      first_field_ = std::min(first_field_, order);
    }
    if (x.action == BorderAction::Allow && !x.address.empty())
      allow_addresses_.add(x.address, order);
    rules_.push_back(std::move(c));
  }
  address_only_.compile();
  allow_addresses_.compile();
  needs_fields_ = !field_rules_.empty() || default_ == BorderAction::Deny ||
                  std::any_of(rules_.begin(), rules_.end(), [](const Compiled& c) {
                    return c.rule.action == BorderAction::Deny;
                  });

  for (auto& p : protect) {
    auto [it, added] = protected_.emplace(p.addr, p.who);
    if (!added && it->second.find(p.who) == std::string::npos) it->second += ", " + p.who;
  }
  // Say which rules touch the protected addresses, once per compilation (never per packet).
  std::map<std::string, std::string> sorted;  // stable order for the API
  for (const auto& [addr, who] : protected_)
    sorted.emplace(addr.to_string(), who);
  for (const auto& [text, who] : sorted) {
    const IpKey addr = *IpKey::parse(text);
    bool decided = false;
    for (const auto& c : rules_) {
      if (c.rule.address.empty() || c.address.first(addr) == AddressIndex::kNone) continue;
      const bool named = c.names && *c.names == addr;
      if (c.rule.action != BorderAction::Allow) {
        const std::string act(border_action_name(c.rule.action));
        if (named) {
          warnings_.push_back("border rule #" + std::to_string(c.rule.id) + " (" + act +
                              ") names " + text + " of " + who + ": its packets are " +
                              (c.rule.action == BorderAction::Drop ? "dropped" : "denied"));
        } else if (c.rule.address_only() && !decided) {
          warnings_.push_back(text + " of " + who + " passes although border rule #" +
                              std::to_string(c.rule.id) + " would " + act +
                              " it (a rule must name the address to " + act + " it)");
        }
      }
      if (c.rule.address_only()) decided = true;
    }
    if (!decided && default_ != BorderAction::Allow) {
      warnings_.push_back(text + " of " + who + " passes although the default action is " +
                          std::string(border_action_name(default_)));
    }
  }
}

BorderVerdict BorderRules::verdict_of(uint32_t order, const IpKey& addr) const {
  BorderVerdict v;
  if (order == AddressIndex::kNone) {
    v.action = default_;
  } else {
    const Compiled& c = rules_[order];
    v.action = c.rule.action;
    v.rule = c.rule.id;
    if (c.names && *c.names == addr) return v;  // named explicitly: the rule holds
  }
  if (v.action != BorderAction::Allow && !protected_.empty() && is_protected(addr)) {
    v.action = BorderAction::Allow;
    v.protected_ = true;
  }
  return v;
}

BorderRules::AtSocket BorderRules::at_socket(const IpKey& addr) const {
  AtSocket s;
  if (rules_.empty() && default_ == BorderAction::Allow) return s;  // the common case
  const uint32_t first = address_only_.empty() ? AddressIndex::kNone : address_only_.first(addr);
  if (first == AddressIndex::kNone && first_field_ != AddressIndex::kNone) {
    s.step = Step::Parse;
    return s;
  }
  if (first != AddressIndex::kNone && first > first_field_) {
    s.step = Step::Parse;  // a rule on parsed fields comes first
    return s;
  }
  const BorderVerdict v = verdict_of(first, addr);
  s.protected_ = v.protected_;
  switch (v.action) {
    case BorderAction::Allow:
      s.step = Step::Pass;
      break;
    case BorderAction::Deny:
      s.step = Step::Parse;  // the 403 needs the request
      break;
    case BorderAction::Drop:
      s.step = Step::Drop;
      break;
  }
  return s;
}

BorderVerdict BorderRules::decide(const IpKey& addr, const PacketFields& f) const {
  const uint32_t first = address_only_.empty() ? AddressIndex::kNone : address_only_.first(addr);
  for (uint32_t order : field_rules_) {
    if (order > first) break;
    if (rules_[order].matches(addr, f)) return verdict_of(order, addr);
  }
  return verdict_of(first, addr);
}

bool BorderRules::allowed_by_address(const IpKey& addr) const {
  return !allow_addresses_.empty() && allow_addresses_.first(addr) != AddressIndex::kNone;
}

}  // namespace esg::edge
