// Hot-path benchmarks for the SIP message core: parse-and-read of what every transaction needs,
// and edit-and-serialize as the B2BUA does for each forwarded message.

#include <benchmark/benchmark.h>

#include "sdp/session.hpp"
#include "sip/editor.hpp"
#include "sip/message.hpp"
#include "test_util.hpp"

namespace {

using namespace esg::sip;

const std::string kInvite = test::provider_invite();

const std::string kOk = test::crlf(
    "SIP/2.0 200 OK\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-esg-1a2b3c;rport=5080;received=127.0.0.1\n"
    "Record-Route: <sip:127.0.0.5;lr>\n"
    "From: <sip:100@127.0.0.1>;tag=esg-7f3a\n"
    "To: <sip:200@127.0.0.5>;tag=as58f4201b\n"
    "Call-ID: 3848276298220188511@127.0.0.1\n"
    "CSeq: 1 INVITE\n"
    "Contact: <sip:200@127.0.0.5:5060>\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\n"
    "Supported: replaces, timer\n"
    "Content-Length: 0\n\n");

const std::string kRegister = test::crlf(
    "REGISTER sip:pbx.example SIP/2.0\n"
    "Via: SIP/2.0/UDP 127.0.0.7:5062;rport;branch=z9hG4bKPj9d6a3b1e\n"
    "Max-Forwards: 70\n"
    "From: <sip:1001@pbx.example>;tag=8b2c7d1e\n"
    "To: <sip:1001@pbx.example>\n"
    "Call-ID: 1f0a6b2c-9d3e-4c5f-8a7b-6c5d4e3f2a1b\n"
    "CSeq: 4 REGISTER\n"
    "User-Agent: baresip v3.0.0 (x86_64/linux)\n"
    "Contact: <sip:1001@127.0.0.7:5062;transport=udp>;expires=3600\n"
    "Expires: 3600\n"
    "Authorization: Digest username=\"1001\", realm=\"pbx.example\", "
    "nonce=\"00000000665f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f\", uri=\"sip:pbx.example\", "
    "response=\"0a4f113b8cde5e6f7a8b9c0d1e2f3a4b\", algorithm=MD5, cnonce=\"0a4f113b\", "
    "qop=auth, nc=00000001\n"
    "Content-Length: 0\n\n");

// What a transaction reads from every message.
template <typename M>
void read_core(const M& m) {
  benchmark::DoNotOptimize(m.top_via().branch.data());
  benchmark::DoNotOptimize(m.from_tag().data());
  benchmark::DoNotOptimize(m.to().uri.user.data());
  benchmark::DoNotOptimize(m.call_id().data());
  benchmark::DoNotOptimize(m.cseq().number);
}

void parse_and_read(benchmark::State& state, const std::string& bytes) {
  for (auto _ : state) {
    auto m = parse_message(bytes);
    if (!m) state.SkipWithError("parse failed");
    read_core(*m);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(bytes.size()));
}

void BM_ParseInvite(benchmark::State& s) {
  parse_and_read(s, kInvite);
}
void BM_Parse200Ok(benchmark::State& s) {
  parse_and_read(s, kOk);
}
void BM_ParseRegisterWithAuth(benchmark::State& s) {
  parse_and_read(s, kRegister);
}

void BM_EditAndSerializeInvite(benchmark::State& state) {
  auto m = parse_message(kInvite);
  for (auto _ : state) {
    Editor e(*m);
    e.set_request_uri("sip:100@127.0.0.1:5090");
    e.remove(HeaderId::Via);
    e.add_front("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bK-esg-1a2b3c;rport");
    e.set_uri(HeaderId::Contact, "sip:esg@127.0.0.1:5080");
    e.set("Max-Forwards", "62");
    std::string out = e.serialize();
    benchmark::DoNotOptimize(out.data());
  }
}

void BM_ParseSdp(benchmark::State& state) {
  auto m = parse_message(kInvite);
  for (auto _ : state) {
    auto s = esg::sdp::parse(m->body());
    benchmark::DoNotOptimize(s.has_value());
  }
}

BENCHMARK(BM_ParseInvite);
BENCHMARK(BM_Parse200Ok);
BENCHMARK(BM_ParseRegisterWithAuth);
BENCHMARK(BM_EditAndSerializeInvite);
BENCHMARK(BM_ParseSdp);

}  // namespace

BENCHMARK_MAIN();
