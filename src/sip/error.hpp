#pragma once
// What can be wrong with a SIP message, and what a server does about it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace esg::sip {

enum class Errc : uint8_t {
  Empty,              // nothing but whitespace (a keep-alive)
  Truncated,          // the datagram or buffer ends inside the header section
  TooLarge,           // over the configured message size limit
  BadStartLine,       // request line or status line does not follow the grammar
  BadVersion,         // SIP-Version other than SIP/2.0
  BadStatusCode,      // response code not 100..699
  BadRequestUri,      // Request-URI malformed (LWS, <>, escaped headers)
  UnsupportedScheme,  // Request-URI scheme we cannot serve
  BadHeaderLine,      // a header line with no colon or no name
  MissingHeader,      // Via, From, To, Call-ID or CSeq absent
  DuplicateHeader,    // a single-valued header appears twice
  BadHeaderValue,     // a header value that does not parse (the header name says which)
  CSeqMismatch,       // CSeq method differs from the request method
  NotImplemented,     // unknown method whose CSeq names another method
  BadContentLength,   // negative, not a number, conflicting, or more than the bytes present
};

struct ParseError {
  Errc code = Errc::BadStartLine;
  // The SIP status a server answers with, or 0: discard silently (bad responses, noise).
  uint16_t status = 400;
  // The reason phrase to send: it names the fault, e.g. "Malformed CSeq".
  std::string reason;
  // A longer explanation for logs and `esg parse` ("sequence number over 2^32-1").
  const char* detail = "";
  // Byte offset in the input where the fault was found.
  size_t offset = 0;

  bool discard() const { return status == 0; }
};

std::string_view errc_name(Errc code);

}  // namespace esg::sip

namespace esg::sip {

// A header value or URI that does not follow its grammar: what is wrong and where in the value.
struct ValueError {
  const char* what = "malformed";
  size_t offset = 0;
};

namespace detail {
inline Unexpected<ValueError> fail(const char* what, size_t offset) {
  return unexpected(ValueError{what, offset});
}
}  // namespace detail

}  // namespace esg::sip
