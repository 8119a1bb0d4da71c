#include "sip/response.hpp"

#include "sip/editor.hpp"

namespace esg::sip {

std::string_view reason_phrase(uint16_t status) {
  switch (status) {
    case 100:
      return "Trying";
    case 180:
      return "Ringing";
    case 181:
      return "Call Is Being Forwarded";
    case 182:
      return "Queued";
    case 183:
      return "Session Progress";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 413:
      return "Request Entity Too Large";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Unsupported URI Scheme";
    case 420:
      return "Bad Extension";
    case 480:
      return "Temporarily Unavailable";
    case 481:
      return "Call/Transaction Does Not Exist";
    case 482:
      return "Loop Detected";
    case 483:
      return "Too Many Hops";
    case 486:
      return "Busy Here";
    case 487:
      return "Request Terminated";
    case 488:
      return "Not Acceptable Here";
    case 491:
      return "Request Pending";
    case 500:
      return "Server Internal Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Server Time-out";
    case 505:
      return "Version Not Supported";
    case 513:
      return "Message Too Large";
    case 603:
      return "Decline";
    default:
      return "";
  }
}

std::string stamp_via(std::string_view value, const Via& top, const Message::Source& source) {
  std::string out(value);
  // §18.2.1: "received" when sent-by is not the packet's source address; RFC 3581: with an empty
  // rport, "received" always and "rport" set to the source port.
  if (top.rport || top.host != source.addr) out = with_param(out, "received", source.addr);
  if (top.rport) out = with_param(out, "rport", std::to_string(source.port));
  return out;
}

std::string build_response(const Message& request, uint16_t status, std::string_view reason,
                           std::string_view to_tag, std::string_view extra) {
  if (reason.empty()) reason = reason_phrase(status);
  std::string out;
  out.reserve(request.bytes().size() / 2 + 128);
  out.append("SIP/2.0 ").append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  bool top_via = true;
  for (const auto& h : request.headers()) {
    switch (h.id) {
      case HeaderId::Via:
        out.append("Via: ");
        if (top_via && !request.source().addr.empty()) {
          out.append(stamp_via(h.value, request.top_via(), request.source()));
        } else {
          out.append(h.value);
        }
        out.append("\r\n");
        top_via = false;
        break;
      case HeaderId::From:
      case HeaderId::CallId:
      case HeaderId::CSeq:
        out.append(header_name(h.id)).append(": ").append(h.value).append("\r\n");
        break;
      case HeaderId::To:
        out.append("To: ").append(h.value);
        if (!to_tag.empty() && request.to_tag().empty()) out.append(";tag=").append(to_tag);
        out.append("\r\n");
        break;
      default:
        break;
    }
  }
  out.append(extra);
  out.append("Content-Length: 0\r\n\r\n");
  return out;
}

std::string build_error_response(std::string_view bytes, const ParseError& error,
                                 const Message::Source& source) {
  if (error.discard() || bytes.substr(0, 4) == "SIP/") return {};
  std::string headers;
  bool have_via = false;
  bool first_via = true;
  size_t pos = bytes.find('\n');
  while (pos != std::string_view::npos && pos + 1 < bytes.size()) {
    const size_t start = pos + 1;
    size_t end = bytes.find('\n', start);
    std::string_view line = bytes.substr(start, end == std::string_view::npos ? end : end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of the headers
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos && !text::is_ws(line[0])) {
      const HeaderId id = header_id(text::trim(line.substr(0, colon)));
      std::string_view value = text::trim(line.substr(colon + 1));
      // Bytes that cannot appear in a header value make the line unusable.
      bool clean = true;
      for (char c : value)
        clean &= static_cast<unsigned char>(c) >= 0x20 || c == '\t';
      if (clean && (id == HeaderId::Via || id == HeaderId::From || id == HeaderId::To ||
                    id == HeaderId::CallId || id == HeaderId::CSeq)) {
        std::string v(value);
        if (id == HeaderId::Via && first_via && !source.addr.empty()) {
          // Stamp only a top Via we can read; an unreadable one is answered to the source anyway.
          size_t comma = value.find(',');
          if (auto via = parse_via(text::trim(value.substr(0, comma)))) {
            v = stamp_via(value, *via, source);
          }
        }
        if (id == HeaderId::Via) {
          have_via = true;
          first_via = false;
        }
        headers.append(header_name(id)).append(": ").append(v).append("\r\n");
      }
    }
    pos = end;
  }
  if (!have_via) return {};
  std::string out = "SIP/2.0 " + std::to_string(error.status) + " " + error.reason + "\r\n";
  out.append(headers).append("Content-Length: 0\r\n\r\n");
  return out;
}

}  // namespace esg::sip
