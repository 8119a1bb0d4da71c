#include "telegram/calls/messages.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <limits>

namespace esg::telegram::calls {
namespace {

using nlohmann::json;

// Reads the fields of one message and keeps the first error, named by the field's path.
class Reader {
 public:
  explicit Reader(std::string_view type) : type_(type) {}

  bool failed() const { return !error_.empty(); }
  std::string take_error() { return std::move(error_); }

  // The member `key` of `obj`, or null (and an error if `required`).
  const json* field(const json& obj, const std::string& path, const char* key, bool required) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) {
      if (required) fail("missing required field '" + join(path, key) + "'");
      return nullptr;
    }
    return &*it;
  }

  void string(const json& obj, const std::string& path, const char* key, bool required,
              std::string& out) {
    const json* v = field(obj, path, key, required);
    if (!v) return;
    if (!v->is_string()) return wrong(path, key, "a string");
    out = v->get_ref<const std::string&>();
  }

  void boolean(const json& obj, const std::string& path, const char* key, bool& out) {
    const json* v = field(obj, path, key, false);
    if (!v) return;
    if (!v->is_boolean()) return wrong(path, key, "a boolean");
    out = v->get<bool>();
  }

  // A number within [lo, hi]; `lenient` also takes its decimal string (tgcalls writes SSRCs and
  // exchange ids as strings, §3.1).
  template <typename T>
  void integer(const json& obj, const std::string& path, const char* key, bool required,
               bool lenient, T& out) {
    const json* v = field(obj, path, key, required);
    if (!v) return;
    if (!to_integer(*v, lenient, out)) {
      wrong(path, key,
            lenient ? "an integer (number or decimal string) in range" : "an integer in range");
    }
  }

  template <typename T>
  bool to_integer(const json& v, bool lenient, T& out) {
    int64_t n = 0;
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      n = static_cast<int64_t>(u);
    } else if (v.is_number_integer()) {
      n = v.get<int64_t>();
    } else if (lenient && v.is_string()) {
      const std::string& s = v.get_ref<const std::string&>();
      const char* end = s.data() + s.size();
      auto [p, ec] = std::from_chars(s.data(), end, n);
      if (s.empty() || ec != std::errc() || p != end) return false;
    } else {
      return false;
    }
    if (n < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
        n > static_cast<int64_t>(std::numeric_limits<T>::max())) {
      return false;
    }
    out = static_cast<T>(n);
    return true;
  }

  // The array `key` (empty when absent and not required).
  const json* array(const json& obj, const std::string& path, const char* key, bool required) {
    const json* v = field(obj, path, key, required);
    if (v && !v->is_array()) {
      wrong(path, key, "an array");
      return nullptr;
    }
    return v;
  }

  // Element `i` of the array at `path` as an object; its own path is returned in `item_path`.
  bool object_at(const json& arr, const std::string& path, size_t i, std::string& item_path) {
    item_path = path + "[" + std::to_string(i) + "]";
    if (!arr[i].is_object()) {
      fail("field '" + item_path + "' has the wrong type (expected an object)");
      return false;
    }
    return true;
  }

  void wrong(const std::string& path, const std::string& key, const char* expected) {
    fail("field '" + join(path, key) + "' has the wrong type (expected " + expected + ")");
  }

  void fail(const std::string& what) {
    if (error_.empty()) error_ = type_ + ": " + what;
  }

  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

 private:
  std::string type_;
  std::string error_;
};

InitialSetup read_initial_setup(const json& j, Reader& r) {
  InitialSetup m;
  r.string(j, "", "ufrag", true, m.ufrag);
  r.string(j, "", "pwd", true, m.pwd);
  r.boolean(j, "", "renomination", m.renomination);
  if (const json* fps = r.array(j, "", "fingerprints", true)) {
    for (size_t i = 0; i < fps->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*fps, "fingerprints", i, p)) break;
      Fingerprint f;
      r.string((*fps)[i], p, "hash", true, f.hash);
      r.string((*fps)[i], p, "setup", true, f.setup);
      r.string((*fps)[i], p, "fingerprint", true, f.fingerprint);
      m.fingerprints.push_back(std::move(f));
    }
  }
  return m;
}

Candidates read_candidates(const json& j, Reader& r) {
  Candidates m;
  if (const json* cs = r.array(j, "", "candidates", true)) {
    for (size_t i = 0; i < cs->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*cs, "candidates", i, p)) break;
      std::string sdp;
      r.string((*cs)[i], p, "sdpString", true, sdp);
      m.sdp_strings.push_back(std::move(sdp));
    }
  }
  return m;
}

PayloadType read_payload_type(const json& j, const std::string& path, Reader& r) {
  PayloadType pt;
  r.integer(j, path, "id", true, false, pt.id);
  r.string(j, path, "name", true, pt.name);
  r.integer(j, path, "clockrate", true, false, pt.clockrate);
  r.integer(j, path, "channels", false, false, pt.channels);
  if (const json* fbs = r.array(j, path, "feedbackTypes", false)) {
    const std::string fp = Reader::join(path, "feedbackTypes");
    for (size_t i = 0; i < fbs->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*fbs, fp, i, p)) break;
      FeedbackType fb;
      r.string((*fbs)[i], p, "type", true, fb.type);
      r.string((*fbs)[i], p, "subtype", false, fb.subtype);
      pt.feedback_types.push_back(std::move(fb));
    }
  }
  if (const json* params = r.field(j, path, "parameters", false)) {
    if (!params->is_object()) {
      r.wrong(path, "parameters", "an object");
    } else {
      const std::string pp = Reader::join(path, "parameters");
      for (const auto& [name, value] : params->items()) {
        if (!value.is_string()) {
          r.wrong(pp, name, "a string");
          break;
        }
        pt.parameters.emplace_back(name, value.get_ref<const std::string&>());
      }
    }
  }
  return pt;
}

MediaContent read_content(const json& j, const std::string& path, Reader& r) {
  MediaContent c;
  r.string(j, path, "type", true, c.type);
  r.integer(j, path, "ssrc", true, true, c.ssrc);
  if (const json* groups = r.array(j, path, "ssrcGroups", false)) {
    const std::string gp = Reader::join(path, "ssrcGroups");
    for (size_t i = 0; i < groups->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*groups, gp, i, p)) break;
      SsrcGroup g;
      r.string((*groups)[i], p, "semantics", true, g.semantics);
      if (const json* ssrcs = r.array((*groups)[i], p, "ssrcs", true)) {
        for (size_t k = 0; k < ssrcs->size(); ++k) {
          uint32_t ssrc = 0;
          if (!r.to_integer((*ssrcs)[k], true, ssrc)) {
            r.fail(
                "field '" + Reader::join(p, "ssrcs") + "[" + std::to_string(k) +
                "]' has the wrong type (expected an integer (number or decimal string) in range)");
            break;
          }
          g.ssrcs.push_back(ssrc);
        }
      }
      c.ssrc_groups.push_back(std::move(g));
    }
  }
  if (const json* pts = r.array(j, path, "payloadTypes", false)) {
    const std::string pp = Reader::join(path, "payloadTypes");
    for (size_t i = 0; i < pts->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*pts, pp, i, p)) break;
      c.payload_types.push_back(read_payload_type((*pts)[i], p, r));
    }
  }
  if (const json* exts = r.array(j, path, "rtpExtensions", false)) {
    const std::string ep = Reader::join(path, "rtpExtensions");
    for (size_t i = 0; i < exts->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*exts, ep, i, p)) break;
      RtpExtension e;
      r.integer((*exts)[i], p, "id", true, false, e.id);
      r.string((*exts)[i], p, "uri", true, e.uri);
      c.rtp_extensions.push_back(std::move(e));
    }
  }
  return c;
}

NegotiateChannels read_negotiate_channels(const json& j, Reader& r) {
  NegotiateChannels m;
  r.integer(j, "", "exchangeId", true, true, m.exchange_id);
  if (const json* cs = r.array(j, "", "contents", true)) {
    for (size_t i = 0; i < cs->size() && !r.failed(); ++i) {
      std::string p;
      if (!r.object_at(*cs, "contents", i, p)) break;
      m.contents.push_back(read_content((*cs)[i], p, r));
    }
  }
  return m;
}

MediaState read_media_state(const json& j, Reader& r) {
  MediaState m;
  r.boolean(j, "", "muted", m.muted);
  r.boolean(j, "", "lowBattery", m.low_battery);
  r.string(j, "", "videoState", false, m.video_state);
  r.string(j, "", "screencastState", false, m.screencast_state);
  r.integer(j, "", "videoRotation", false, false, m.video_rotation);
  return m;
}

// ---- writing, as json11 does

void put_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c <= 0x1f) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == 0xe2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xa8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xa9)) {
          // U+2028 and U+2029 are escaped so the text stays valid JavaScript.
          out += static_cast<unsigned char>(s[i + 2]) == 0xa8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

// Writes an object's members in the order given (callers list them in byte order, as json11's
// std::map does).
class ObjectWriter {
 public:
  explicit ObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  ~ObjectWriter() { out_.push_back('}'); }
  ObjectWriter(const ObjectWriter&) = delete;
  ObjectWriter& operator=(const ObjectWriter&) = delete;

  std::string& key(std::string_view k) {
    if (!first_) out_ += ", ";
    first_ = false;
    put_string(out_, k);
    out_ += ": ";
    return out_;
  }
  void string(std::string_view k, std::string_view v) { put_string(key(k), v); }
  void number(std::string_view k, int64_t v) { key(k) += std::to_string(v); }
  void boolean(std::string_view k, bool v) { key(k) += v ? "true" : "false"; }
  void decimal_string(std::string_view k, uint32_t v) { put_string(key(k), std::to_string(v)); }

 private:
  std::string& out_;
  bool first_ = true;
};

template <typename T, typename F>
void put_array(std::string& out, const std::vector<T>& items, F&& each) {
  out.push_back('[');
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ", ";
    each(items[i]);
  }
  out.push_back(']');
}

void write(std::string& out, const InitialSetup& m) {
  ObjectWriter o(out);
  o.string("@type", "InitialSetup");
  put_array(o.key("fingerprints"), m.fingerprints, [&](const Fingerprint& f) {
    ObjectWriter fo(out);
    fo.string("fingerprint", f.fingerprint);
    fo.string("hash", f.hash);
    fo.string("setup", f.setup);
  });
  o.string("pwd", m.pwd);
  o.boolean("renomination", m.renomination);
  o.string("ufrag", m.ufrag);
}

void write(std::string& out, const Candidates& m) {
  ObjectWriter o(out);
  o.string("@type", "Candidates");
  put_array(o.key("candidates"), m.sdp_strings, [&](const std::string& s) {
    ObjectWriter co(out);
    co.string("sdpString", s);
  });
}

void write_payload_type(std::string& out, const PayloadType& pt) {
  ObjectWriter o(out);
  o.number("channels", pt.channels);
  o.number("clockrate", pt.clockrate);
  put_array(o.key("feedbackTypes"), pt.feedback_types, [&](const FeedbackType& fb) {
    ObjectWriter fo(out);
    fo.string("subtype", fb.subtype);
    fo.string("type", fb.type);
  });
  o.number("id", pt.id);
  o.string("name", pt.name);
  auto params = pt.parameters;
  std::stable_sort(params.begin(), params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string& p = o.key("parameters");
  ObjectWriter po(p);
  for (const auto& [name, value] : params)
    po.string(name, value);
}

void write_content(std::string& out, const MediaContent& c) {
  ObjectWriter o(out);
  if (!c.payload_types.empty()) {
    put_array(o.key("payloadTypes"), c.payload_types,
              [&](const PayloadType& pt) { write_payload_type(out, pt); });
  }
  put_array(o.key("rtpExtensions"), c.rtp_extensions, [&](const RtpExtension& e) {
    ObjectWriter eo(out);
    eo.number("id", e.id);
    eo.string("uri", e.uri);
  });
  o.decimal_string("ssrc", c.ssrc);
  if (!c.ssrc_groups.empty()) {
    put_array(o.key("ssrcGroups"), c.ssrc_groups, [&](const SsrcGroup& g) {
      ObjectWriter go(out);
      go.string("semantics", g.semantics);
      put_array(go.key("ssrcs"), g.ssrcs, [&](uint32_t s) { put_string(out, std::to_string(s)); });
    });
  }
  o.string("type", c.type);
}

void write(std::string& out, const NegotiateChannels& m) {
  ObjectWriter o(out);
  o.string("@type", "NegotiateChannels");
  put_array(o.key("contents"), m.contents, [&](const MediaContent& c) { write_content(out, c); });
  o.decimal_string("exchangeId", m.exchange_id);
}

void write(std::string& out, const MediaState& m) {
  ObjectWriter o(out);
  o.string("@type", "MediaState");
  o.boolean("lowBattery", m.low_battery);
  o.boolean("muted", m.muted);
  o.string("screencastState", m.screencast_state);
  o.number("videoRotation", m.video_rotation);
  o.string("videoState", m.video_state);
}

}  // namespace

Result<Message, std::string> parse_message(std::string_view text) {
  if (text.size() >= 2 && static_cast<unsigned char>(text[0]) == 0x1f &&
      static_cast<unsigned char>(text[1]) == 0x8b) {
    return unexpected(std::string(
        "gzip-compressed signaling message refused (8.0.0/9.0.0 senders do not compress)"));
  }
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return unexpected(std::string("signaling message is not valid JSON"));
  if (!j.is_object()) return unexpected(std::string("signaling message is not a JSON object"));
  auto t = j.find("@type");
  if (t == j.end()) return unexpected(std::string("missing required field '@type'"));
  if (!t->is_string()) {
    return unexpected(std::string("field '@type' has the wrong type (expected a string)"));
  }
  const std::string& type = t->get_ref<const std::string&>();
  Reader r(type);
  Message m;
  if (type == "InitialSetup") {
    m = read_initial_setup(j, r);
  } else if (type == "Candidates") {
    m = read_candidates(j, r);
  } else if (type == "NegotiateChannels") {
    m = read_negotiate_channels(j, r);
  } else if (type == "MediaState") {
    m = read_media_state(j, r);
  } else {
    return unexpected("unknown @type '" + type + "'");
  }
  if (r.failed()) return unexpected(r.take_error());
  return m;
}

std::string serialize(const Message& m) {
  std::string out;
  std::visit([&](const auto& msg) { write(out, msg); }, m);
  return out;
}

}  // namespace esg::telegram::calls
