// SDP parser (RFC 8866 §5, §9): one pass over the lines, checking order and each line's fields.

#include <vector>

#include "base/text.hpp"
#include "sdp/session.hpp"

namespace esg::sdp {

namespace {

std::vector<std::string_view> split_spaces(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && s[i] == ' ')
      ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ')
      ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<Session, ParseError> run() {
    size_t pos = 0;
    // Session-level lines in RFC 8866 order; media-level lines follow each m=.
    static constexpr std::string_view kSessionOrder = "vosiuepcbtrzka";
    static constexpr std::string_view kMediaTypes = "icbka";
    size_t order = 0;
    bool seen_v = false;
    bool seen_o = false;
    bool seen_s = false;
    while (pos < text_.size()) {
      size_t eol = text_.find('\n', pos);
      size_t next = eol == std::string_view::npos ? text_.size() : eol + 1;
      std::string_view line = text_.substr(pos, next - pos);
      if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      pos = next;
      ++line_no_;
      line_ = line;
      if (line.empty()) continue;  // tolerate blank lines (trailing CRLFs from some stacks)
      if (line.size() < 2 || line[1] != '=' || line[0] < 'a' || line[0] > 'z') {
        return fail("expected <type>=<value>");
      }
      const char type = line[0];
      std::string_view value = line.substr(2);
      if (!seen_v && type != 'v') return fail("the description must start with v=");
      if (seen_v && !seen_o && type != 'o') return fail("o= must follow v=");
      if (s_.media.empty() && type != 'm') {
        const size_t at = kSessionOrder.find(type);
        if (at == std::string_view::npos) return fail("unknown line type");
        // t= and r= alternate (one r= group per t=); everything else keeps RFC order.
        const bool repeat_ok = type == 't' && kSessionOrder[order] == 'r';
        if (at < order && !repeat_ok) return fail("line out of order");
        order = at;
      } else if (type != 'm' && kMediaTypes.find(type) == std::string_view::npos) {
        return fail(std::string(1, type) + "= line not allowed after m=");
      }
      Result<void, ParseError> r;
      switch (type) {
        case 'v':
          if (seen_v) return fail("second v= line");
          if (value != "0") return fail("unsupported SDP version");
          seen_v = true;
          break;
        case 'o':
          r = origin(value);
          seen_o = true;
          break;
        case 's':
          s_.name = std::string(value);
          seen_s = true;
          break;
        case 'i':
          (s_.media.empty() ? s_.info : s_.media.back().title) = std::string(value);
          break;
        case 'u':
          s_.uri = std::string(value);
          break;
        case 'e':
          s_.emails.emplace_back(value);
          break;
        case 'p':
          s_.phones.emplace_back(value);
          break;
        case 'c':
          r = connection(value);
          break;
        case 'b':
          r = bandwidth(value);
          break;
        case 't':
          r = timing(value);
          break;
        case 'r':
          if (s_.timings.empty()) return fail("r= without t=");
          s_.timings.back().repeats.emplace_back(value);
          break;
        case 'z':
          s_.zone = std::string(value);
          break;
        case 'k':
          (s_.media.empty() ? s_.key : s_.media.back().key) = std::string(value);
          break;
        case 'a':
          r = attribute(value);
          break;
        case 'm':
          r = media(value);
          break;
        default:
          return fail("unknown line type");
      }
      if (!r) return unexpected(r.error());
    }
    line_ = {};
    if (!seen_v) return fail("missing v= line");
    if (!seen_o) return fail("missing o= line");
    if (!seen_s) return fail("missing s= line");
    return std::move(s_);
  }

 private:
  Unexpected<ParseError> fail(std::string what) {
    return unexpected(ParseError{line_no_, std::string(line_), std::move(what)});
  }

  Result<void, ParseError> origin(std::string_view v) {
    auto f = split_spaces(v);
    if (f.size() != 6) return fail("o= needs 6 fields");
    if (!text::parse_uint(f[1]) || !text::parse_uint(f[2])) {
      return fail("o= session id and version must be numbers");
    }
    s_.origin = Origin{std::string(f[0]), std::string(f[1]), std::string(f[2]),
                       std::string(f[3]), std::string(f[4]), std::string(f[5])};
    return {};
  }

  Result<void, ParseError> connection(std::string_view v) {
    auto f = split_spaces(v);
    if (f.size() != 3) return fail("c= needs 3 fields");
    if (f[0] != "IN") return fail("c= network type must be IN");
    if (f[1] != "IP4" && f[1] != "IP6") return fail("c= address type must be IP4 or IP6");
    Connection c{std::string(f[0]), std::string(f[1]), std::string(f[2])};
    if (s_.media.empty()) {
      s_.connection = std::move(c);
    } else {
      s_.media.back().connection = std::move(c);
    }
    return {};
  }

  Result<void, ParseError> bandwidth(std::string_view v) {
    size_t colon = v.find(':');
    if (colon == std::string_view::npos || colon == 0) return fail("b= needs <type>:<value>");
    auto n = text::parse_uint(v.substr(colon + 1));
    if (!n) return fail("b= value must be a number");
    Bandwidth b{std::string(v.substr(0, colon)), *n};
    (s_.media.empty() ? s_.bandwidths : s_.media.back().bandwidths).push_back(std::move(b));
    return {};
  }

  Result<void, ParseError> timing(std::string_view v) {
    auto f = split_spaces(v);
    if (f.size() != 2) return fail("t= needs start and stop");
    auto start = text::parse_uint(f[0]);
    auto stop = text::parse_uint(f[1]);
    if (!start || !stop) return fail("t= times must be numbers");
    s_.timings.push_back(Timing{*start, *stop, {}});
    return {};
  }

  Result<void, ParseError> attribute(std::string_view v) {
    size_t colon = v.find(':');
    Attribute a;
    a.name = std::string(v.substr(0, colon));
    if (a.name.empty()) return fail("a= without a name");
    for (char c : a.name) {
      if (!text::is_alnum(c) && c != '-' && c != '_' && c != '.') {
        return fail("bad attribute name");
      }
    }
    if (colon != std::string_view::npos) a.value = std::string(v.substr(colon + 1));
    if (a.name == "rtpmap" || a.name == "fmtp") {
      if (!a.value) return fail("a=" + a.name + " needs a value");
      size_t sp = a.value->find(' ');
      std::string_view fmt = std::string_view(*a.value).substr(0, sp);
      if (sp == std::string::npos || fmt.empty()) {
        return fail("a=" + a.name + " needs <format> <parameters>");
      }
      if (a.name == "rtpmap") {
        if (!text::parse_uint(fmt, 127)) return fail("a=rtpmap payload type must be 0-127");
        std::string_view enc = std::string_view(*a.value).substr(sp + 1);
        size_t slash = enc.find('/');
        if (slash == std::string_view::npos || slash == 0) {
          return fail("a=rtpmap needs <encoding>/<clock rate>");
        }
        std::string_view rate = enc.substr(slash + 1);
        if (!text::parse_uint(rate.substr(0, rate.find('/')), UINT32_MAX)) {
          return fail("a=rtpmap clock rate must be a number");
        }
      }
    } else if (a.name == "ptime" || a.name == "maxptime") {
      // ptime may be fractional in the grammar; integers are what SIP endpoints send.
      if (!a.value || text::trim(*a.value).empty()) return fail("a=" + a.name + " needs a value");
    } else if (a.name == "rtcp") {
      if (!a.value ||
          !text::parse_uint(std::string_view(*a.value).substr(0, a.value->find(' ')), 65535)) {
        return fail("a=rtcp needs a port");
      }
    } else if (a.name == "crypto") {
      if (!a.value || split_spaces(*a.value).size() < 3) {
        return fail("a=crypto needs <tag> <suite> <key-params>");
      }
    }
    (s_.media.empty() ? s_.attributes : s_.media.back().attributes).push_back(std::move(a));
    return {};
  }

  Result<void, ParseError> media(std::string_view v) {
    auto f = split_spaces(v);
    if (f.size() < 4) return fail("m= needs <media> <port> <proto> <format>...");
    Media m;
    m.media = std::string(f[0]);
    size_t slash = f[1].find('/');
    auto port = text::parse_uint(f[1].substr(0, slash), 65535);
    if (!port) return fail("m= port must be 0-65535");
    m.port = static_cast<uint16_t>(*port);
    if (slash != std::string_view::npos) {
      auto count = text::parse_uint(f[1].substr(slash + 1), 65535);
      if (!count) return fail("m= port count must be a number");
      m.port_count = static_cast<uint16_t>(*count);
    }
    m.proto = std::string(f[2]);
    for (size_t i = 3; i < f.size(); ++i)
      m.formats.emplace_back(f[i]);
    s_.media.push_back(std::move(m));
    return {};
  }

  std::string_view text_;
  std::string_view line_;
  size_t line_no_ = 0;
  Session s_;
};

}  // namespace

Result<Session, ParseError> parse(std::string_view text) {
  return Parser(text).run();
}

}  // namespace esg::sdp
