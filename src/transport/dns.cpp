#include "transport/dns.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <sys/select.h>

#include <algorithm>
#include <future>
#include <random>
#include <stdexcept>

#include "sip/uri.hpp"

namespace esg::transport {

namespace {

// The smallest TTL among the answer records of a DNS reply (RFC 1035 §4.1), for caching.
uint32_t min_ttl(const std::vector<unsigned char>& m) {
  auto u16 = [&](size_t i) { return i + 1 < m.size() ? uint32_t(m[i] << 8 | m[i + 1]) : 0u; };
  if (m.size() < 12) return 0;
  const uint32_t qd = u16(4), an = u16(6);
  size_t i = 12;
  auto skip_name = [&] {
    while (i < m.size()) {
      const unsigned char len = m[i];
      if (len == 0) {
        ++i;
        return;
      }
      if ((len & 0xc0) == 0xc0) {
        i += 2;
        return;
      }
      i += 1 + len;
    }
  };
  for (uint32_t q = 0; q < qd && i < m.size(); ++q) {
    skip_name();
    i += 4;
  }
  uint32_t ttl = UINT32_MAX;
  for (uint32_t a = 0; a < an && i + 10 <= m.size(); ++a) {
    skip_name();
    if (i + 10 > m.size()) break;
    ttl = std::min(ttl, u16(i + 4) << 16 | u16(i + 6));
    i += 10 + u16(i + 8);
  }
  return ttl == UINT32_MAX ? 0 : ttl;
}

Proto proto_from(std::string_view transport, bool sips) {
  if (sips || text::iequals(transport, "tls")) return Proto::Tls;
  if (text::iequals(transport, "tcp")) return Proto::Tcp;
  return Proto::Udp;
}

std::string srv_prefix(Proto p) {
  switch (p) {
    case Proto::Tls:
      return "_sips._tcp.";
    case Proto::Tcp:
      return "_sip._tcp.";
    case Proto::Udp:
      return "_sip._udp.";
  }
  return "_sip._udp.";
}

uint16_t default_port(Proto p) {
  return p == Proto::Tls ? 5061 : 5060;
}

}  // namespace

Resolver::Resolver(Options options) : options_(std::move(options)) {
  static const int init = ares_library_init(ARES_LIB_INIT_ALL);
  if (init != ARES_SUCCESS) throw std::runtime_error("c-ares initialisation failed");
  ares_options o{};
  o.timeout = int(options_.timeout.count());
  o.tries = options_.tries;
  ares_channel ch = nullptr;
  if (ares_init_options(&ch, &o, ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS) {
    throw std::runtime_error("c-ares channel failed");
  }
  if (!options_.servers.empty()) {
    std::string csv;
    for (const auto& s : options_.servers)
      csv += (csv.empty() ? "" : ",") + s;
    if (ares_set_servers_ports_csv(ch, csv.c_str()) != ARES_SUCCESS) {
      ares_destroy(ch);
      throw std::runtime_error("bad dns.servers: " + csv);
    }
  }
  channel_ = ch;
  thread_ = std::thread([this] { run(); });
}

Resolver::~Resolver() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  ares_destroy(static_cast<ares_channel>(channel_));
}

void Resolver::resolve(const std::string& uri, Done done) {
  {
    std::lock_guard lock(mu_);
    jobs_.emplace_back(uri, std::move(done));
  }
  cv_.notify_one();
}

std::vector<Target> Resolver::resolve_sync(const std::string& uri) {
  std::promise<std::vector<Target>> p;
  auto f = p.get_future();
  resolve(uri, [&p](std::vector<Target> t) { p.set_value(std::move(t)); });
  return f.get();
}

void Resolver::run() {
  while (true) {
    std::pair<std::string, Done> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
      if (stop_) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job.second(locate(job.first));
  }
}

Resolver::Answer Resolver::query(const std::string& name, int type) {
  const auto key = std::make_pair(name, type);
  const auto now = std::chrono::steady_clock::now();
  if (auto it = cache_.find(key); it != cache_.end() && it->second.expires > now) {
    return it->second.answer;
  }
  Answer answer;
  auto ch = static_cast<ares_channel>(channel_);
  ares_query(
      ch, name.c_str(), ns_c_in, type,
      [](void* arg, int status, int, unsigned char* abuf, int alen) {
        auto* a = static_cast<Answer*>(arg);
        a->status = status;
        if (status == ARES_SUCCESS && abuf) a->bytes.assign(abuf, abuf + alen);
      },
      &answer);
  // Drive c-ares until this query is done (it has its own timeouts and retries).
  while (true) {
    fd_set readers, writers;
    FD_ZERO(&readers);
    FD_ZERO(&writers);
    const int nfds = ares_fds(ch, &readers, &writers);
    if (nfds == 0) break;
    timeval tv{};
    timeval* tvp = ares_timeout(ch, nullptr, &tv);
    select(nfds, &readers, &writers, nullptr, tvp);
    ares_process(ch, &readers, &writers);
  }
  // Answers live for their TTL; failures (NXDOMAIN, no data) for a short while.
  const uint32_t ttl = answer.status == ARES_SUCCESS ? min_ttl(answer.bytes) : 30;
  if (cache_.size() >= options_.max_cache) cache_.clear();
  cache_[key] = Cached{now + std::chrono::seconds(ttl), answer};
  return answer;
}

std::vector<Target> Resolver::addresses(const std::string& host, uint16_t port, Proto proto) {
  std::vector<Target> out;
  for (int type : {ns_t_a, ns_t_aaaa}) {
    Answer a = query(host, type);
    if (a.status != ARES_SUCCESS) continue;
    hostent* he = nullptr;
    const int rc =
        type == ns_t_a
            ? ares_parse_a_reply(a.bytes.data(), int(a.bytes.size()), &he, nullptr, nullptr)
            : ares_parse_aaaa_reply(a.bytes.data(), int(a.bytes.size()), &he, nullptr, nullptr);
    if (rc != ARES_SUCCESS || !he) continue;
    for (char** p = he->h_addr_list; *p; ++p) {
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(he->h_addrtype, *p, buf, sizeof buf);
      out.push_back(Target{proto, host, buf, port, 0, 0});
    }
    ares_free_hostent(he);
  }
  return out;
}

std::vector<Target> Resolver::srv(const std::string& name, Proto proto) {
  std::vector<Target> records;
  Answer a = query(name, ns_t_srv);
  if (a.status != ARES_SUCCESS) return {};
  ares_srv_reply* reply = nullptr;
  if (ares_parse_srv_reply(a.bytes.data(), int(a.bytes.size()), &reply) != ARES_SUCCESS) return {};
  for (auto* r = reply; r; r = r->next) {
    records.push_back(Target{proto, r->host, "", r->port, r->priority, r->weight});
  }
  ares_free_data(reply);
  order_srv(records);
  std::vector<Target> out;
  for (const auto& r : records) {
    for (auto& t : addresses(r.host, r.port, proto)) {
      t.priority = r.priority;
      t.weight = r.weight;
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<Target> Resolver::locate(const std::string& uri_text) {
  auto uri = sip::parse_uri(uri_text);
  if (!uri || !uri->is_sip()) return {};
  const bool sips = uri->scheme == sip::Scheme::Sips;
  const auto transport_param = uri->param("transport");
  const std::string host(uri->host);
  // §4.1/§4.2: a numeric host needs no lookup.
  if (uri->host_type == sip::HostType::IPv4 || uri->host_type == sip::HostType::IPv6) {
    const Proto p = proto_from(transport_param.value_or(""), sips);
    std::string addr = host;
    if (!addr.empty() && addr.front() == '[') addr = addr.substr(1, addr.size() - 2);
    return {Target{p, host, addr, uri->port ? uri->port : default_port(p), 0, 0}};
  }
  // An explicit port: A/AAAA only.
  if (uri->port) {
    const Proto p = proto_from(transport_param.value_or(""), sips);
    return addresses(host, uri->port, p);
  }
  // An explicit transport: SRV for it, else A/AAAA on the default port.
  if (transport_param) {
    const Proto p = proto_from(*transport_param, sips);
    auto t = srv(srv_prefix(p) + host, p);
    return t.empty() ? addresses(host, default_port(p), p) : t;
  }
  // NAPTR (§4.1): the services we support, by order then preference.
  std::vector<Target> out;
  Answer a = query(host, ns_t_naptr);
  if (a.status == ARES_SUCCESS) {
    ares_naptr_reply* reply = nullptr;
    if (ares_parse_naptr_reply(a.bytes.data(), int(a.bytes.size()), &reply) == ARES_SUCCESS) {
      struct Rule {
        uint16_t order, preference;
        Proto proto;
        std::string replacement;
      };
      std::vector<Rule> rules;
      for (auto* r = reply; r; r = r->next) {
        const std::string service(reinterpret_cast<const char*>(r->service));
        const std::string flags(reinterpret_cast<const char*>(r->flags));
        if (!text::iequals(flags, "s")) continue;
        Proto p;
        if (text::iequals(service, "SIP+D2U") && !sips)
          p = Proto::Udp;
        else if (text::iequals(service, "SIP+D2T") && !sips)
          p = Proto::Tcp;
        else if (text::iequals(service, "SIPS+D2T"))
          p = Proto::Tls;
        else
          continue;
        rules.push_back(Rule{r->order, r->preference, p, r->replacement});
      }
      ares_free_data(reply);
      std::stable_sort(rules.begin(), rules.end(), [](const Rule& x, const Rule& y) {
        return std::tie(x.order, x.preference) < std::tie(y.order, y.preference);
      });
      for (const auto& r : rules) {
        auto t = srv(r.replacement, r.proto);
        out.insert(out.end(), t.begin(), t.end());
      }
    }
  }
  if (!out.empty()) return out;
  // No NAPTR: SRV for each transport we support; then A/AAAA on 5060 over UDP (§4.1, §4.2).
  for (Proto p : sips ? std::vector<Proto>{Proto::Tls}
                      : std::vector<Proto>{Proto::Udp, Proto::Tcp, Proto::Tls}) {
    auto t = srv(srv_prefix(p) + host, p);
    out.insert(out.end(), t.begin(), t.end());
  }
  if (!out.empty()) return out;
  const Proto p = sips ? Proto::Tls : Proto::Udp;
  return addresses(host, default_port(p), p);
}

void Resolver::order_srv(std::vector<Target>& targets, uint32_t (*random)()) {
  thread_local std::mt19937 rng{std::random_device{}()};
  auto draw = [&](uint32_t bound) -> uint32_t {
    if (bound == 0) return 0;
    return (random ? random() : uint32_t(rng())) % (bound + 1);
  };
  std::stable_sort(targets.begin(), targets.end(),
                   [](const Target& a, const Target& b) { return a.priority < b.priority; });
  // RFC 2782: within a priority, pick by running sum of weights against a random number.
  std::vector<Target> out;
  size_t i = 0;
  while (i < targets.size()) {
    size_t j = i;
    while (j < targets.size() && targets[j].priority == targets[i].priority)
      ++j;
    std::vector<Target> group(targets.begin() + long(i), targets.begin() + long(j));
    // Zero-weight records first, so they get a small chance (as the RFC orders them).
    std::stable_partition(group.begin(), group.end(),
                          [](const Target& t) { return t.weight == 0; });
    while (!group.empty()) {
      uint32_t total = 0;
      for (const auto& t : group)
        total += t.weight;
      const uint32_t pick = draw(total);
      uint32_t sum = 0;
      size_t k = 0;
      for (; k < group.size(); ++k) {
        sum += group[k].weight;
        if (sum >= pick) break;
      }
      if (k == group.size()) k = group.size() - 1;
      out.push_back(group[k]);
      group.erase(group.begin() + long(k));
    }
    i = j;
  }
  targets = std::move(out);
}

}  // namespace esg::transport
