#include "sip/framer.hpp"

#include "base/text.hpp"

#include "sip/detail/lex.hpp"
#include "sip/headers.hpp"

namespace esg::sip {

namespace {

// Finds the empty line that ends the header section: CRLFCRLF, or LFLF from sloppy peers.
// Returns the offset just past it, or npos.
size_t end_of_headers(std::string_view s, size_t from) {
  for (size_t i = from; i < s.size(); ++i) {
    if (s[i] != '\n') continue;
    if (i + 1 < s.size() && s[i + 1] == '\n') return i + 2;
    if (i + 2 < s.size() && s[i + 1] == '\r' && s[i + 2] == '\n') return i + 3;
  }
  return std::string_view::npos;
}

}  // namespace

void StreamFramer::feed(std::string_view data) {
  if (start_ > 0 && start_ >= buf_.size() / 2) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  buf_.append(data);
}

StreamFramer::Event StreamFramer::fail(uint16_t status, std::string reason, const char* detail) {
  failed_ = true;
  Event e;
  e.kind = Kind::Error;
  e.error.code = status == 513 ? Errc::TooLarge : Errc::BadContentLength;
  e.error.status = status;
  e.error.reason = std::move(reason);
  e.error.detail = detail;
  return e;
}

StreamFramer::Event StreamFramer::next() {
  if (failed_) return fail(0, "Framing Lost", "stream already failed");
  std::string_view s(buf_.data() + start_, buf_.size() - start_);
  // Between messages: keep-alives (RFC 5626): CRLFCRLF is a ping, a lone CRLF a pong.
  if (!s.empty() && (s[0] == '\r' || s[0] == '\n')) {
    if (s.substr(0, 4) == "\r\n\r\n") {
      start_ += 4;
      scanned_ = 0;
      return {Kind::KeepAlive, {}, {}};
    }
    if (s.substr(0, 2) == "\r\n" && (s.size() == 2 || s[2] != '\r')) {
      start_ += 2;
      scanned_ = 0;
      return {Kind::Pong, {}, {}};
    }
    if (s[0] == '\n') {  // a stray LF
      start_ += 1;
      scanned_ = 0;
      return next();
    }
    if (s.size() < 4) return {};  // "\r", "\r\n\r": wait for the rest of the ping
  }
  if (s.empty()) return {};
  const size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
  const size_t hdr_end = end_of_headers(s, from);
  if (hdr_end == std::string_view::npos) {
    scanned_ = s.size();
    if (s.size() > max_size_) return fail(513, "Message Too Large", "header section too large");
    return {};
  }
  // Content-Length, from the header lines (compact form `l` included).
  uint64_t length = 0;
  bool seen = false;
  size_t line = s.find('\n') + 1;  // skip the start line
  while (line < hdr_end) {
    size_t eol = s.find('\n', line);
    std::string_view l = s.substr(line, eol - line);
    size_t colon = l.find(':');
    if (colon != std::string_view::npos && !l.empty() && !detail::is_ws(l[0])) {
      std::string_view name = text::trim(l.substr(0, colon));
      if (header_id(name) == HeaderId::ContentLength) {
        auto v = text::parse_uint(text::trim(l.substr(colon + 1)), UINT32_MAX);
        if (!v) return fail(400, "Malformed Content-Length", "not a non-negative number");
        if (seen && *v != length) {
          return fail(400, "Conflicting Content-Length", "two different Content-Length values");
        }
        seen = true;
        length = *v;
      }
    }
    line = eol + 1;
  }
  // RFC 3261 §18.3 requires Content-Length on streams; a message without one ends at its
  // headers, which is what every deployed peer that omits it means.
  const uint64_t total = hdr_end + length;
  if (total > max_size_) return fail(513, "Message Too Large", "message over the size limit");
  if (s.size() < total) return {};
  Event e{Kind::Message, s.substr(0, size_t(total)), {}};
  start_ += size_t(total);
  scanned_ = 0;
  return e;
}

ScannedIds scan_ids(std::string_view bytes) {
  ScannedIds ids;
  size_t pos = 0;
  while (pos < bytes.size() && (ids.call_id.empty() || ids.cseq_method.empty())) {
    size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos) end = bytes.size();
    std::string_view line = bytes.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the headers
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = text::trim(line.substr(0, colon));
      const std::string_view value = text::trim(line.substr(colon + 1));
      if (ids.call_id.empty() && (text::iequals(name, "Call-ID") || text::iequals(name, "i"))) {
        ids.call_id = value;
      } else if (ids.cseq_method.empty() && text::iequals(name, "CSeq")) {
        const size_t space = value.find_last_of(" \t");
        ids.cseq_method = space == std::string_view::npos ? "" : value.substr(space + 1);
      }
    }
    pos = end + 1;
  }
  return ids;
}

}  // namespace esg::sip
