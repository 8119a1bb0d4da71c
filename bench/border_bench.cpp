// The border's drop path in process (issue 6): the per-packet check the transport makes before
// parsing, on batches of received datagrams' source addresses, on one core. Goal: at least
// 1,000,000 packets per second dropped, so that a flood cannot take the gateway down. Also the
// rule evaluation with 10,000 address rules, on the socket and after parsing.

#include <benchmark/benchmark.h>

#include <random>
#include <string>
#include <vector>

#include "edge/border/border.hpp"

namespace {

using esg::edge::Border;
using esg::edge::BorderAction;
using esg::edge::BorderRule;
using esg::edge::BorderRules;
using esg::edge::IpKey;
using esg::edge::PacketFields;
namespace ip = boost::asio::ip;

constexpr std::string_view kInvite = "INVITE sip:100@203.0.113.1 SIP/2.0\r\n";
constexpr size_t kBatch = 64;  // datagrams handled per wake-up in a flood

BorderRule rule(int64_t id, int priority, BorderAction action, std::string address) {
  BorderRule r;
  r.id = id;
  r.priority = priority;
  r.action = action;
  r.address = std::move(address);
  return r;
}

// Source addresses as the socket reports them, spread over 10.0.0.0/8.
std::vector<ip::address> sources(size_t n, uint32_t seed = 7) {
  std::mt19937 rng(seed);
  std::vector<ip::address> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(ip::address_v4(0x0A000000u | (rng() & 0xFFFFFFu)));
  return out;
}

// 10,000 address rules of every kind: exact addresses, CIDRs of several lengths, masks.
std::vector<BorderRule> ten_thousand_rules() {
  std::vector<BorderRule> rules;
  int64_t id = 1;
  for (int i = 0; i < 8000; ++i) {
    rules.push_back(rule(id++, 50, BorderAction::Allow,
                         "192.168." + std::to_string(i / 250) + "." + std::to_string(i % 250)));
  }
  for (int i = 0; i < 1500; ++i) {
    const int bits = 16 + i % 13;
    rules.push_back(rule(id++, 60, BorderAction::Drop,
                         "172." + std::to_string(16 + i % 16) + "." + std::to_string(i % 256) +
                             ".0/" + std::to_string(bits)));
  }
  for (int i = 0; i < 500; ++i) {
    rules.push_back(rule(id++, 70, BorderAction::Deny,
                         "100." + std::to_string(i % 128) + ".?" + std::to_string(i % 10) + ".*"));
  }
  return rules;
}

Border::Options options() {
  Border::Options o;
  o.workers = 1;
  o.pike.requests = 30;
  return o;
}

// A whitelist (allow one address, drop the rest) against a flood from everywhere else.
void BM_DropPath_Whitelist(benchmark::State& state) {
  Border border(options());
  border.set_rules(std::make_shared<BorderRules>(
      std::vector<BorderRule>{rule(1, 10, BorderAction::Allow, "127.0.0.1"),
                              rule(2, 100, BorderAction::Drop, "0.0.0.0/0")},
      BorderAction::Allow));
  const auto from = sources(kBatch);
  for (auto _ : state) {
    for (const auto& a : from)
      benchmark::DoNotOptimize(border.drop_at_socket(IpKey::of(a), kInvite, 0));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_DropPath_Whitelist);

// No rules; a flood from 64 banned addresses among 10,000 bans.
void BM_DropPath_Banned(benchmark::State& state) {
  Border border(options());
  const auto banned = sources(10000, 11);
  for (const auto& a : banned)
    border.bans().ban(IpKey::of(a), "bench", 3600, 1);
  const std::vector<ip::address> from(banned.begin(), banned.begin() + kBatch);
  for (auto _ : state) {
    for (const auto& a : from)
      benchmark::DoNotOptimize(border.drop_at_socket(IpKey::of(a), kInvite, 0));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_DropPath_Banned);

// What the check costs packets that pass: no rules, no bans, the flood limit counting.
void BM_PassPath_FloodCounting(benchmark::State& state) {
  Border::Options o = options();
  o.pike.requests = 1 << 30;
  Border border(o);
  const auto from = sources(kBatch);
  for (auto _ : state) {
    for (const auto& a : from)
      benchmark::DoNotOptimize(border.drop_at_socket(IpKey::of(a), kInvite, 0));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_PassPath_FloodCounting);

// The 10,000 rules plus a drop-all, decided on the socket, from addresses none of the first
// 10,000 match (the worst case: every structure is consulted).
void BM_TenThousandRules_AtSocket(benchmark::State& state) {
  auto rules = ten_thousand_rules();
  rules.push_back(rule(99999, 1000, BorderAction::Drop, "0.0.0.0/0"));
  Border border(options());
  border.set_rules(std::make_shared<BorderRules>(std::move(rules), BorderAction::Allow));
  const auto from = sources(kBatch);
  for (auto _ : state) {
    for (const auto& a : from)
      benchmark::DoNotOptimize(border.drop_at_socket(IpKey::of(a), kInvite, 0));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_TenThousandRules_AtSocket);

// The same rules with 20 rules on parsed fields in front: decided after parsing.
void BM_TenThousandRules_AfterParsing(benchmark::State& state) {
  auto rules = ten_thousand_rules();
  for (int i = 0; i < 20; ++i) {
    BorderRule r;
    r.id = 100000 + i;
    r.priority = 5;
    r.action = BorderAction::Drop;
    r.user_agent = "/reg/(?i).*scanner" + std::to_string(i) + ".*";
    r.method = "REGISTER";
    rules.push_back(r);
  }
  BorderRules compiled(std::move(rules), BorderAction::Allow);
  std::vector<IpKey> from;
  for (const auto& a : sources(kBatch))
    from.push_back(IpKey::of(a));
  PacketFields f;
  f.proto = "udp";
  f.port = 5060;
  f.method = "REGISTER";
  f.user_agent = "friendly-scanner";
  f.from_user = "100";
  f.to_user = "100";
  for (auto _ : state) {
    for (const auto& k : from)
      benchmark::DoNotOptimize(compiled.decide(k, f));
  }
  state.SetItemsProcessed(int64_t(state.iterations() * kBatch));
}
BENCHMARK(BM_TenThousandRules_AfterParsing);

// Compiling 10,000 rules: what every rule change costs.
void BM_TenThousandRules_Compile(benchmark::State& state) {
  const auto rules = ten_thousand_rules();
  for (auto _ : state) {
    BorderRules compiled(rules, BorderAction::Allow);
    benchmark::DoNotOptimize(compiled.size());
  }
}
BENCHMARK(BM_TenThousandRules_Compile)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
