// Fuzz target for the SIP message core: parse (datagram and stream framing), every lazy
// accessor, the header value parsers, digest parsing, and the edit-and-serialize round trip.
// Invariant: an edited valid message serializes to a message that parses again with the same
// transaction identifiers.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "sip/auth/digest.hpp"
#include "sip/editor.hpp"
#include "sip/framer.hpp"
#include "sip/message.hpp"

using namespace esg::sip;

namespace {

// A broken invariant is a finding: say which, then abort so the fuzzer keeps the input.
#define check(ok)                                                               \
  do {                                                                          \
    if (!(ok)) {                                                                \
      std::fprintf(stderr, "invariant failed at line %d: %s\n", __LINE__, #ok); \
      std::abort();                                                             \
    }                                                                           \
  } while (0)

void exercise(const Message& m) {
  (void)m.vias();
  (void)m.contacts();
  (void)m.routes();
  (void)m.record_routes();
  (void)m.expires();
  (void)m.retry_after();
  (void)m.reason_header();
  (void)m.content_type();
  (void)m.tokens(HeaderId::Supported);
  for (const auto& h : m.headers()) {
    (void)parse_uri(h.value);
    (void)parse_name_addr(h.value);
    (void)parse_via_list(h.value);
    (void)auth::parse_challenge(h.value);
    (void)auth::parse_credentials(h.value);
  }
  (void)uri_equal(m.from().uri, m.to().uri);

  Editor untouched(m);
  auto same = parse_message(untouched.serialize());
  check(same.has_value());
  check(same->call_id() == m.call_id());
  check(same->cseq().number == m.cseq().number);
  check(same->body() == m.body());

  Editor e(m);
  e.add_front("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKfuzz");
  e.set_param(HeaderId::Via, "received", "127.0.0.2");
  e.remove_param(HeaderId::Via, "maddr");
  e.set_param(HeaderId::To, "tag", "fuzz");
  e.set_uri(HeaderId::Contact, "sip:esg@127.0.0.1:5080;transport=udp");
  e.remove(HeaderId::Route);
  e.set("Max-Forwards", "69");
  e.add_back("X-Fuzz", "1");
  e.set_body("v=0\r\n", "application/sdp");
  if (m.is_request()) e.set_request_uri("sip:100@127.0.0.1");
  auto edited = parse_message(e.serialize());
  check(edited.has_value());
  check(edited->call_id() == m.call_id());
  check(edited->top_via().branch == "z9hG4bKfuzz");
  check(edited->body() == "v=0\r\n");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto m = parse_message(bytes)) exercise(*m);

  // The same bytes as a TCP stream, cut at an arbitrary point.
  StreamFramer framer(16384);
  const size_t cut = size ? data[0] % (size + 1) : 0;
  framer.feed(bytes.substr(0, cut));
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 64; ++i) {
      auto ev = framer.next();
      if (ev.kind == StreamFramer::Kind::NeedMore || ev.kind == StreamFramer::Kind::Error) break;
      if (ev.kind == StreamFramer::Kind::Message) {
        ParseOptions o;
        o.framing = Framing::Stream;
        if (auto m = parse_message(ev.bytes, o)) (void)m->vias();
      }
    }
    framer.feed(bytes.substr(cut));
  }
  return 0;
}
