// Fuzz target for the SDP parser. Invariant: what parses serializes to text that parses again
// and serializes identically (the serializer's output is canonical).

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "sdp/session.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = esg::sdp::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!s) return 0;
  for (const auto& m : s->media) {
    for (const auto& f : m.formats) {
      (void)m.rtpmap(std::atoi(f.c_str()));
      (void)m.fmtp(std::atoi(f.c_str()));
    }
    (void)m.crypto();
    (void)m.rtcp_port();
    (void)m.ptime();
    (void)s->direction(m);
  }
  const std::string once = esg::sdp::serialize(*s);
  auto again = esg::sdp::parse(once);
  if (!again) std::abort();
  if (esg::sdp::serialize(*again) != once) std::abort();
  return 0;
}
