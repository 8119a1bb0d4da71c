// The SIP message parser: framing, start line, header lines, and the eager fields.

#include <cstring>

#include "sip/detail/lex.hpp"
#include "sip/message.hpp"

namespace esg::sip {

using detail::is_token;
using detail::is_token_char;
using text::iequals;

namespace {

constexpr std::string_view kVersion = "SIP/2.0";

struct MethodName {
  std::string_view name;
  Method method;
};
constexpr MethodName kMethods[] = {
    {"INVITE", Method::Invite},       {"ACK", Method::Ack},         {"BYE", Method::Bye},
    {"CANCEL", Method::Cancel},       {"OPTIONS", Method::Options}, {"REGISTER", Method::Register},
    {"INFO", Method::Info},           {"PRACK", Method::Prack},     {"UPDATE", Method::Update},
    {"SUBSCRIBE", Method::Subscribe}, {"NOTIFY", Method::Notify},   {"REFER", Method::Refer},
    {"MESSAGE", Method::Message},     {"PUBLISH", Method::Publish},
};

}  // namespace

Method method_from(std::string_view token) {
  for (const auto& m : kMethods) {
    if (m.name == token) return m.method;
  }
  return Method::Unknown;
}

std::string_view method_name(Method m) {
  for (const auto& entry : kMethods) {
    if (entry.method == m) return entry.name;
  }
  return {};
}

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::Empty:
      return "empty";
    case Errc::Truncated:
      return "truncated";
    case Errc::TooLarge:
      return "too_large";
    case Errc::BadStartLine:
      return "bad_start_line";
    case Errc::BadVersion:
      return "bad_version";
    case Errc::BadStatusCode:
      return "bad_status_code";
    case Errc::BadRequestUri:
      return "bad_request_uri";
    case Errc::UnsupportedScheme:
      return "unsupported_scheme";
    case Errc::BadHeaderLine:
      return "bad_header_line";
    case Errc::MissingHeader:
      return "missing_header";
    case Errc::DuplicateHeader:
      return "duplicate_header";
    case Errc::BadHeaderValue:
      return "bad_header_value";
    case Errc::CSeqMismatch:
      return "cseq_mismatch";
    case Errc::NotImplemented:
      return "not_implemented";
    case Errc::BadContentLength:
      return "bad_content_length";
  }
  return "unknown";
}

// Walks the buffer once and fills a Message. One instance per parse; never shared.
class Parser {
 public:
  Parser(Message& m, const ParseOptions& options) : m_(m), options_(options) {}

  Result<void, ParseError> run() {
    std::string_view all(m_.buf_.get(), m_.size_);
    // RFC 3261 §7.5: CRLFs before the start line are ignored (keep-alives, sloppy peers).
    size_t pos = 0;
    while (pos < all.size() && (all[pos] == '\r' || all[pos] == '\n'))
      ++pos;
    if (pos == all.size()) return error(Errc::Empty, 0, 0, "Empty", "no message");
    in_ = all;
    const bool response_like = all.substr(pos, 4) == "SIP/";
    m_.is_request_ = !response_like;
    if (all.size() > options_.max_size) {
      return error(Errc::TooLarge, 513, pos, "Message Too Large", "over the size limit");
    }
    size_t eol = 0;
    auto line = next_line(pos, eol);
    if (!line) return error(Errc::Truncated, 0, pos, "Truncated", "no end of start line");
    m_.start_line_ = *line;
    auto start = m_.is_request_ ? request_line(pos) : status_line(pos);
    if (!start) return start;
    auto hdrs = header_lines(eol);
    if (!hdrs) return hdrs;
    auto eager = eager_fields();
    if (!eager) return eager;
    return body();
  }

 private:
  Unexpected<ParseError> error(Errc code, uint16_t status, size_t offset, std::string reason,
                               const char* detail) {
    // A malformed response is never answered (RFC 3261 §18.1.2: discard it).
    if (!m_.is_request_) status = 0;
    ParseError e;
    e.code = code;
    e.status = status;
    e.reason = std::move(reason);
    e.detail = detail;
    e.offset = offset;
    return unexpected(std::move(e));
  }

  Unexpected<ParseError> bad_value(const HeaderField& h, const ValueError& v) {
    std::string phrase = "Malformed ";
    phrase += h.id == HeaderId::Other ? h.name : header_name(h.id);
    return error(Errc::BadHeaderValue, 400, offset_of(h.value) + v.offset, std::move(phrase),
                 v.what);
  }

  size_t offset_of(std::string_view v) const {
    const char* base = m_.buf_.get();
    if (v.data() >= base && v.data() <= base + m_.size_) return size_t(v.data() - base);
    return 0;  // an unfolded value lives in the side store
  }

  // The line starting at `pos`, without its line end; `eol` is set past the line end.
  // Lines end in CRLF; a bare LF is tolerated. nullopt when the input ends first.
  std::optional<std::string_view> next_line(size_t pos, size_t& eol) const {
    const void* nl = std::memchr(in_.data() + pos, '\n', in_.size() - pos);
    if (!nl) return std::nullopt;
    size_t end = size_t(static_cast<const char*>(nl) - in_.data());
    eol = end + 1;
    if (end > pos && in_[end - 1] == '\r') --end;
    return in_.substr(pos, end - pos);
  }

  // Request-Line = Method SP Request-URI SP SIP-Version CRLF
  Result<void, ParseError> request_line(size_t pos) {
    std::string_view line = m_.start_line_;
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos || sp1 == 0) {
      return error(Errc::BadStartLine, 400, pos, "Malformed Request-Line", "no method");
    }
    m_.method_text_ = line.substr(0, sp1);
    if (!is_token(m_.method_text_)) {
      return error(Errc::BadStartLine, 400, pos, "Malformed Request-Line", "method not a token");
    }
    m_.method_ = method_from(m_.method_text_);
    size_t sp2 = line.rfind(' ');
    if (sp2 == sp1) {
      return error(Errc::BadStartLine, 400, pos + sp1, "Malformed Request-Line",
                   "missing SIP-Version");
    }
    m_.version_ = line.substr(sp2 + 1);
    std::string_view uri_text = line.substr(sp1 + 1, sp2 - sp1 - 1);
    // RFC 4475 §3.1.2.9, §3.1.2.10, §3.1.2.8: extra SP between elements, trailing SP, or LWS
    // inside the Request-URI make the line ambiguous; reject rather than guess.
    // (A tab inside the URI is caught by the URI parser: no URI holds whitespace.)
    if (m_.version_.empty() || uri_text.empty() || uri_text.find(' ') != std::string_view::npos) {
      return error(Errc::BadStartLine, 400, pos + sp1 + 1, "Malformed Request-Line",
                   "extra whitespace in Request-Line");
    }
    if (!iequals(m_.version_, kVersion)) {
      if (text::starts_with_icase(m_.version_, "SIP/")) {
        return error(Errc::BadVersion, 505, pos + sp2 + 1, "Version Not Supported",
                     "only SIP/2.0 is supported");
      }
      return error(Errc::BadStartLine, 400, pos + sp2 + 1, "Malformed Request-Line",
                   "bad SIP-Version");
    }
    if (uri_text.front() == '<') {
      return error(Errc::BadRequestUri, 400, pos + sp1 + 1, "Malformed Request-URI",
                   "Request-URI enclosed in <>");
    }
    auto uri = parse_uri(uri_text);
    if (!uri) {
      return error(Errc::BadRequestUri, 400, pos + sp1 + 1 + uri.error().offset,
                   "Malformed Request-URI", uri.error().what);
    }
    m_.request_uri_ = *uri;
    if (uri->scheme == Scheme::Other) {
      return error(Errc::UnsupportedScheme, 416, pos + sp1 + 1, "Unsupported URI Scheme",
                   "Request-URI scheme is not sip, sips or tel");
    }
    // §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
    if (!uri->headers.empty()) {
      return error(Errc::BadRequestUri, 400, pos + sp1 + 1, "Malformed Request-URI",
                   "headers in Request-URI");
    }
    return {};
  }

  // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase CRLF
  Result<void, ParseError> status_line(size_t pos) {
    std::string_view line = m_.start_line_;
    size_t sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) {
      return error(Errc::BadStartLine, 0, pos, "Malformed Status-Line", "no status code");
    }
    m_.version_ = line.substr(0, sp1);
    if (!iequals(m_.version_, kVersion)) {
      return error(Errc::BadVersion, 0, pos, "Version Not Supported", "only SIP/2.0");
    }
    size_t code_end = line.find(' ', sp1 + 1);
    std::string_view code = line.substr(
        sp1 + 1, code_end == std::string_view::npos ? std::string_view::npos : code_end - sp1 - 1);
    auto status = code.size() == 3 ? text::parse_uint(code, 999) : std::nullopt;
    if (!status || *status < 100 || *status > 699) {
      return error(Errc::BadStatusCode, 0, pos + sp1 + 1, "Malformed Status-Line",
                   "status code not 100-699");
    }
    m_.status_ = static_cast<uint16_t>(*status);
    // RFC 4475 §3.1.1.13: the SP before an empty reason phrase may be missing in practice.
    m_.reason_ =
        code_end == std::string_view::npos ? std::string_view{} : line.substr(code_end + 1);
    return {};
  }

  Result<void, ParseError> header_lines(size_t pos) {
    m_.headers_.reserve(24);
    while (true) {
      if (pos >= in_.size()) {
        // No empty line. A datagram that ends right after a complete header line is taken as
        // ending its headers there (RFC 4475 baddn.dat); one that ends mid-line is truncated.
        if (options_.framing == Framing::Datagram && pos > 0 && in_[pos - 1] == '\n') {
          body_start_ = pos;
          return {};
        }
        return error(Errc::Truncated, 0, pos, "Truncated", "message ends inside headers");
      }
      size_t eol = 0;
      auto line = next_line(pos, eol);
      if (!line) {
        return error(Errc::Truncated, 0, pos, "Truncated", "message ends inside headers");
      }
      if (line->empty()) {
        body_start_ = eol;
        return {};
      }
      if (detail::is_ws(line->front())) {
        return error(Errc::BadHeaderLine, 400, pos, "Malformed Header Line",
                     "continuation line without a header");
      }
      // header-name = token, then optional whitespace, then ':' (RFC 3261 §7.3.1).
      size_t k = 0;
      while (k < line->size() && is_token_char((*line)[k]))
        ++k;
      std::string_view name = line->substr(0, k);
      while (k < line->size() && detail::is_ws((*line)[k]))
        ++k;
      if (k == line->size() || (*line)[k] != ':') {
        return error(Errc::BadHeaderLine, 400, pos + k, "Malformed Header Line",
                     k == line->size() ? "no colon" : "header name is not a token");
      }
      if (name.empty()) {
        return error(Errc::BadHeaderLine, 400, pos, "Malformed Header Line", "empty header name");
      }
      const size_t colon = k;
      std::string_view value = line->substr(colon + 1);
      // Folded continuation lines (RFC 3261 §7.3.1) start with SP or HTAB.
      size_t field_end = eol;
      bool folded = false;
      while (field_end < in_.size() && detail::is_ws(in_[field_end])) {
        size_t next_eol = 0;
        auto cont = next_line(field_end, next_eol);
        if (!cont) {
          if (options_.framing == Framing::Datagram) break;
          return error(Errc::Truncated, 0, field_end, "Truncated", "message ends inside headers");
        }
        folded = true;
        field_end = next_eol;
      }
      HeaderField h;
      h.name = name;
      h.id = header_id(name);
      h.raw = in_.substr(pos, field_end - pos);
      if (!folded) {
        h.value = text::trim(value);
      } else {
        h.value = unfold(in_.substr(pos + colon + 1, field_end - pos - colon - 1));
      }
      m_.headers_.push_back(h);
      pos = field_end;
    }
  }

  // Replaces each line end and the whitespace around it with one SP.
  std::string_view unfold(std::string_view folded) {
    std::string out;
    out.reserve(folded.size());
    for (size_t i = 0; i < folded.size(); ++i) {
      const char c = folded[i];
      if (c == '\r' || c == '\n') {
        while (!out.empty() && detail::is_ws(out.back()))
          out.pop_back();
        size_t j = i;
        while (j < folded.size() &&
               (folded[j] == '\r' || folded[j] == '\n' || detail::is_ws(folded[j]))) {
          ++j;
        }
        if (!out.empty() && j < folded.size()) out.push_back(' ');
        i = j - 1;
      } else {
        out.push_back(c);
      }
    }
    m_.unfolded_.push_front(std::move(out));
    return text::trim(m_.unfolded_.front());
  }

  Result<void, ParseError> eager_fields() {
    const HeaderField* via = nullptr;
    const HeaderField* from = nullptr;
    const HeaderField* to = nullptr;
    const HeaderField* call_id = nullptr;
    const HeaderField* cseq = nullptr;
    const HeaderField* max_forwards = nullptr;
    for (const auto& h : m_.headers_) {
      const HeaderField** slot = nullptr;
      switch (h.id) {
        case HeaderId::Via:
          if (!via) via = &h;
          continue;
        case HeaderId::From:
          slot = &from;
          break;
        case HeaderId::To:
          slot = &to;
          break;
        case HeaderId::CallId:
          slot = &call_id;
          break;
        case HeaderId::CSeq:
          slot = &cseq;
          break;
        case HeaderId::MaxForwards:
          slot = &max_forwards;
          break;
        case HeaderId::ContentLength: {
          auto r = content_length(h);
          if (!r) return r;
          continue;
        }
        default:
          continue;
      }
      if (*slot) {
        // RFC 4475 §3.3.8: two values in a single-valued field.
        std::string phrase = "Duplicate ";
        phrase += header_name(h.id);
        return error(Errc::DuplicateHeader, 400, offset_of(h.raw), std::move(phrase),
                     "single-valued header repeated");
      }
      *slot = &h;
    }
    // RFC 3261 §8.1.1: To, From, CSeq, Call-ID and Via are mandatory (Max-Forwards is not
    // enforced: RFC 2543 peers omit it, RFC 4475 §3.4.1).
    const std::pair<const HeaderField*, HeaderId> required[] = {{via, HeaderId::Via},
                                                                {from, HeaderId::From},
                                                                {to, HeaderId::To},
                                                                {call_id, HeaderId::CallId},
                                                                {cseq, HeaderId::CSeq}};
    for (const auto& [field, id] : required) {
      if (!field) {
        std::string phrase = "Missing ";
        phrase += header_name(id);
        return error(Errc::MissingHeader, 400, body_start_, std::move(phrase),
                     "mandatory header absent");
      }
    }
    // Most Via lines carry one value: look for a separating comma only when there is a comma.
    size_t comma = via->value.find(',');
    if (comma != std::string_view::npos) comma = detail::find_top_level(via->value, ',');
    auto top = parse_via(text::trim(via->value.substr(0, comma)));
    if (!top) return bad_value(*via, top.error());
    m_.top_via_ = *top;
    auto f = parse_name_addr(from->value);
    if (!f) return bad_value(*from, f.error());
    m_.from_ = *f;
    auto t = parse_name_addr(to->value);
    if (!t) return bad_value(*to, t.error());
    m_.to_ = *t;
    // Call-ID = word [ "@" word ]: no whitespace inside.
    m_.call_id_ = call_id->value;
    bool one_word = !m_.call_id_.empty();
    for (char c : m_.call_id_)
      one_word &= !detail::is_ws(c);
    if (!one_word) return bad_value(*call_id, ValueError{"Call-ID must be one word", 0});
    auto c = parse_cseq(cseq->value);
    if (!c) return bad_value(*cseq, c.error());
    m_.cseq_ = *c;
    if (max_forwards) {
      auto mf = text::parse_uint(max_forwards->value, UINT64_MAX);
      if (!mf && !all_digits(max_forwards->value)) {
        return bad_value(*max_forwards, ValueError{"Max-Forwards must be digits", 0});
      }
      if (mf && *mf <= 255) m_.max_forwards_ = static_cast<uint8_t>(*mf);
    }
    if (m_.is_request_ && m_.cseq_.method != m_.method_text_) {
      // RFC 4475 §3.1.2.18: an unknown method is answered 501 even when CSeq disagrees.
      if (m_.method_ == Method::Unknown) {
        return error(Errc::NotImplemented, 501, offset_of(cseq->value), "Not Implemented",
                     "unknown method");
      }
      return error(Errc::CSeqMismatch, 400, offset_of(cseq->value), "CSeq Method Mismatch",
                   "CSeq method differs from the Request-Line");
    }
    return {};
  }

  static bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!text::is_digit(c)) return false;
    }
    return true;
  }

  Result<void, ParseError> content_length(const HeaderField& h) {
    auto v = text::parse_uint(h.value, UINT32_MAX);
    if (!v) {
      return error(Errc::BadContentLength, 400, offset_of(h.value), "Malformed Content-Length",
                   "not a non-negative number");
    }
    if (m_.has_content_length_ && *v != content_length_) {
      // RFC 4475 §3.3.9: two different values leave the framing undefined.
      return error(Errc::BadContentLength, 400, offset_of(h.raw), "Conflicting Content-Length",
                   "two different Content-Length values");
    }
    m_.has_content_length_ = true;
    content_length_ = *v;
    return {};
  }

  Result<void, ParseError> body() {
    const size_t available = in_.size() - body_start_;
    size_t length = 0;
    if (m_.has_content_length_) {
      if (content_length_ > available) {
        // RFC 4475 §3.1.2.2: over UDP the datagram is all there is.
        return error(Errc::BadContentLength, 400, body_start_, "Content-Length Too Large",
                     "Content-Length exceeds the bytes received");
      }
      length = content_length_;
    } else if (options_.framing == Framing::Datagram) {
      // RFC 3261 §18.3: without Content-Length over UDP the body runs to the datagram's end.
      length = available;
    }
    m_.body_ = in_.substr(body_start_, length);
    m_.size_ = body_start_ + length;  // trailing octets of a datagram are ignored (§18.3)
    return {};
  }

  Message& m_;
  const ParseOptions& options_;
  std::string_view in_;
  size_t body_start_ = 0;
  uint64_t content_length_ = 0;
};

Result<Message, ParseError> parse_message(std::unique_ptr<char[]> buf, size_t size,
                                          const ParseOptions& options) {
  Message m;
  m.buf_ = std::move(buf);
  m.size_ = size;
  Parser parser(m, options);
  auto r = parser.run();
  if (!r) return unexpected(r.error());
  return m;
}

Result<Message, ParseError> parse_message(std::string_view bytes, const ParseOptions& options) {
  auto buf = std::make_unique_for_overwrite<char[]>(bytes.size() + 1);
  if (!bytes.empty()) std::memcpy(buf.get(), bytes.data(), bytes.size());
  buf[bytes.size()] = '\0';
  return parse_message(std::move(buf), bytes.size(), options);
}

}  // namespace esg::sip
