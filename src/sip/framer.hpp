#pragma once
// Cuts a TCP/TLS byte stream into SIP messages by Content-Length (RFC 3261 §18.3), and
// recognises the CRLF keep-alives of RFC 5626 §3.5.1 between messages.

#include <cstddef>
#include <string>
#include <string_view>

#include "sip/error.hpp"

namespace esg::sip {

class StreamFramer {
 public:
  enum class Kind {
    NeedMore,   // no complete message buffered yet
    Message,    // `bytes` is one whole message: hand it to parse_message(..., Framing::Stream)
    KeepAlive,  // a CRLFCRLF ping: answer with one CRLF (the pong)
    Pong,       // a single CRLF: the peer answered our ping
    Error,      // framing is lost: answer `error` if it has a status, then close the connection
  };
  struct Event {
    Kind kind = Kind::NeedMore;
    std::string_view bytes;  // valid until the next feed() or next()
    ParseError error;
  };

  explicit StreamFramer(size_t max_size = 65535) : max_size_(max_size) {}

  void feed(std::string_view data);
  Event next();
  size_t buffered() const { return buf_.size() - start_; }
  // The bytes not handed out yet (after an Error: the message that broke the framing).
  std::string_view pending() const { return std::string_view(buf_).substr(start_); }

 private:
  Event fail(uint16_t status, std::string reason, const char* detail);

  std::string buf_;
  size_t start_ = 0;    // first byte not yet handed out
  size_t scanned_ = 0;  // how far the search for the end of headers got (relative to start_)
  size_t max_size_;
  bool failed_ = false;
};

// The Call-ID and the CSeq method of raw message bytes without a full parse (the packet index
// files every packet it sees, sent ones included, under its call): the first Call-ID (or `i`)
// and CSeq headers before the blank line, trimmed; "" for what is missing.
struct ScannedIds {
  std::string_view call_id;
  std::string_view cseq_method;
};
ScannedIds scan_ids(std::string_view bytes);

}  // namespace esg::sip
