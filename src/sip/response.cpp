#include "sip/response.hpp"

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

std::string build_response(const Message& request, uint16_t status, std::string_view reason,
                           std::string_view to_tag, std::string_view extra) {
  if (reason.empty()) reason = reason_phrase(status);
  std::string out;
  out.reserve(request.bytes().size() / 2 + 128);
  out.append("SIP/2.0 ").append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  for (const auto& h : request.headers()) {
    switch (h.id) {
      case HeaderId::Via:
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

}  // namespace esg::sip
