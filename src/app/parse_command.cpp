#include "app/parse_command.hpp"

#include <fstream>
#include <sstream>

#include "base/json_text.hpp"
#include "sdp/session.hpp"
#include "sip/framer.hpp"
#include "sip/message.hpp"

namespace esg::app {

using nlohmann::json;

namespace {

json uri_json(const sip::Uri& u) {
  json j = {{"scheme", std::string(u.scheme_text)}};
  if (u.is_sip() || u.scheme == sip::Scheme::Tel) {
    j["user"] = u.user_unescaped();
    if (u.is_sip()) {
      j["host"] = std::string(u.host);
      j["port"] = u.port ? json(u.port) : json(nullptr);
    }
    j["params"] = std::string(u.params);
    if (!u.headers.empty()) j["headers"] = std::string(u.headers);
  } else {
    j["opaque"] = std::string(u.opaque);
  }
  return j;
}

json name_addr_json(const sip::NameAddr& na) {
  json j = {{"display", na.display_name_unquoted()}, {"uri", uri_json(na.uri)}};
  auto tag = na.param("tag");
  j["tag"] = tag ? json(std::string(*tag)) : json(nullptr);
  if (!na.params.empty()) j["params"] = std::string(na.params);
  return j;
}

json sdp_json(std::string_view body) {
  auto s = sdp::parse(body);
  if (!s) {
    return {
        {"error", s.error().what}, {"line", s.error().line}, {"line_text", s.error().line_text}};
  }
  json j;
  j["origin"] = s->origin.address;
  j["connection"] = s->connection ? json(s->connection->address) : json(nullptr);
  j["media"] = json::array();
  for (const auto& m : s->media) {
    json mj = {{"media", m.media},
               {"port", m.port},
               {"proto", m.proto},
               {"formats", m.formats},
               {"direction", std::string(sdp::direction_name(s->direction(m)))}};
    json codecs = json::array();
    for (const auto& f : m.formats) {
      char* end = nullptr;
      long pt = std::strtol(f.c_str(), &end, 10);
      if (end && *end == '\0') {
        if (auto map = m.rtpmap(int(pt))) {
          codecs.push_back(map->encoding + "/" + std::to_string(map->clock_rate));
        }
      }
    }
    mj["codecs"] = codecs;
    if (auto c = s->connection_for(m)) mj["connection"] = c->address;
    if (auto p = m.ptime()) mj["ptime"] = *p;
    j["media"].push_back(mj);
  }
  return j;
}

json error_json(const sip::ParseError& e) {
  return {{"ok", false},        {"error", std::string(sip::errc_name(e.code))},
          {"reason", e.reason}, {"detail", e.detail},
          {"offset", e.offset}, {"status", e.discard() ? json("discard") : json(e.status)}};
}

}  // namespace

json describe_message(std::string_view bytes, bool stream) {
  sip::ParseOptions options;
  options.framing = stream ? sip::Framing::Stream : sip::Framing::Datagram;
  auto parsed = sip::parse_message(bytes, options);
  if (!parsed) return error_json(parsed.error());
  const sip::Message& m = *parsed;
  json j = {{"ok", true}, {"kind", m.is_request() ? "request" : "response"}};
  if (m.is_request()) {
    j["method"] = std::string(m.method_text());
    j["ruri"] = uri_json(m.request_uri());
  } else {
    j["status"] = m.status();
    j["reason"] = std::string(m.reason());
  }
  const sip::Via& v = m.top_via();
  j["via"] = {
      {"transport", std::string(v.transport)},
      {"host", std::string(v.host)},
      {"port", v.port ? json(v.port) : json(nullptr)},
      {"branch", std::string(v.branch)},
      {"received", v.received ? json(std::string(*v.received)) : json(nullptr)},
      {"rport", v.rport ? (v.rport_value ? json(*v.rport_value) : json(true)) : json(nullptr)}};
  if (auto vias = m.vias()) j["via_count"] = vias->size();
  j["from"] = name_addr_json(m.from());
  j["to"] = name_addr_json(m.to());
  if (m.header(sip::HeaderId::Contact)) {
    auto contacts = m.contacts();
    if (!contacts) {
      // A server reading this Contact (registrar, dialog layer) answers 400.
      sip::ParseError e;
      e.code = sip::Errc::BadHeaderValue;
      e.reason = "Malformed Contact";
      e.detail = contacts.error().what;
      const sip::HeaderField* h = m.header(sip::HeaderId::Contact);
      const std::string_view all = m.bytes();
      const bool inside =
          h->value.data() >= all.data() && h->value.data() < all.data() + all.size();
      e.offset = inside ? size_t(h->value.data() - all.data()) + contacts.error().offset : 0;
      return error_json(e);
    }
    if (contacts->star) {
      j["contacts"] = "*";
    } else {
      j["contacts"] = json::array();
      for (const auto& c : contacts->items)
        j["contacts"].push_back(uri_json(c.uri));
    }
  }
  j["call_id"] = std::string(m.call_id());
  j["cseq"] = {{"number", m.cseq().number}, {"method", std::string(m.cseq().method)}};
  j["max_forwards"] = m.max_forwards() ? json(*m.max_forwards()) : json(nullptr);
  if (m.has_content_length()) {
    j["content_length"] = m.body().size();
  } else {
    j["content_length"] = nullptr;
  }
  j["body_length"] = m.body().size();
  if (auto ct = m.content_type();
      ct && *ct && (*ct)->is("application", "sdp") && !m.body().empty()) {
    j["sdp"] = sdp_json(m.body());
  }
  return j;
}

int run_parse(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool stream = false;
  std::vector<std::string> files;
  for (const auto& a : args) {
    if (a == "--stream") {
      stream = true;
    } else if (!a.empty() && a[0] == '-') {
      err << "esg parse: unknown option " << a << "\n";
      return 2;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    err << "usage: esg parse [--stream] FILE...\n";
    return 2;
  }
  bool all_ok = true;
  auto print = [&](json j, const std::string& file, size_t index) {
    j["file"] = file;
    j["index"] = index;
    all_ok = all_ok && j["ok"].get<bool>();
    out << json_text(j) << "\n";
  };
  for (const auto& file : files) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      err << "esg parse: cannot read " << file << "\n";
      return 2;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string data = ss.str();
    if (!stream) {
      print(describe_message(data, false), file, 0);
      continue;
    }
    sip::StreamFramer framer;
    framer.feed(data);
    size_t index = 0;
    while (true) {
      auto ev = framer.next();
      if (ev.kind == sip::StreamFramer::Kind::Message) {
        print(describe_message(ev.bytes, true), file, index++);
      } else if (ev.kind == sip::StreamFramer::Kind::KeepAlive ||
                 ev.kind == sip::StreamFramer::Kind::Pong) {
        continue;
      } else if (ev.kind == sip::StreamFramer::Kind::Error) {
        print(error_json(ev.error), file, index++);
        break;
      } else {
        if (framer.buffered() > 0) {
          sip::ParseError e;
          e.code = sip::Errc::Truncated;
          e.status = 0;
          e.reason = "Truncated";
          e.detail = "stream ends inside a message";
          e.offset = data.size() - framer.buffered();
          print(error_json(e), file, index++);
        }
        break;
      }
    }
  }
  return all_ok ? 0 : 1;
}

}  // namespace esg::app
