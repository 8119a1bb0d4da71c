// SDP serializer: RFC 8866 line order, CRLF line ends.

#include "sdp/session.hpp"

namespace esg::sdp {

namespace {

void line(std::string& out, char type, std::string_view value) {
  out.push_back(type);
  out.push_back('=');
  out.append(value);
  out.append("\r\n");
}

void connection(std::string& out, const Connection& c) {
  line(out, 'c', c.nettype + " " + c.addrtype + " " + c.address);
}

void bandwidths(std::string& out, const std::vector<Bandwidth>& bs) {
  for (const auto& b : bs)
    line(out, 'b', b.type + ":" + std::to_string(b.value));
}

void attributes(std::string& out, const std::vector<Attribute>& as) {
  for (const auto& a : as)
    line(out, 'a', a.value ? a.name + ":" + *a.value : a.name);
}

}  // namespace

std::string serialize(const Session& s) {
  std::string out;
  out.reserve(256 + 128 * s.media.size());
  line(out, 'v', std::to_string(s.version));
  const Origin& o = s.origin;
  line(out, 'o',
       o.username + " " + o.session_id + " " + o.session_version + " " + o.nettype + " " +
           o.addrtype + " " + o.address);
  line(out, 's', s.name);
  if (s.info) line(out, 'i', *s.info);
  if (s.uri) line(out, 'u', *s.uri);
  for (const auto& e : s.emails)
    line(out, 'e', e);
  for (const auto& p : s.phones)
    line(out, 'p', p);
  if (s.connection) connection(out, *s.connection);
  bandwidths(out, s.bandwidths);
  for (const auto& t : s.timings) {
    line(out, 't', std::to_string(t.start) + " " + std::to_string(t.stop));
    for (const auto& r : t.repeats)
      line(out, 'r', r);
  }
  if (s.zone) line(out, 'z', *s.zone);
  if (s.key) line(out, 'k', *s.key);
  attributes(out, s.attributes);
  for (const auto& m : s.media) {
    std::string ml = m.media + " " + std::to_string(m.port);
    // Appended, not `"/" + std::to_string(...)`: GCC 12 at -O3 takes that insert at the front
    // for an overlapping memcpy (-Werror=restrict in a Release build).
    if (m.port_count) ml.append("/").append(std::to_string(m.port_count));
    ml += " " + m.proto;
    for (const auto& f : m.formats)
      ml += " " + f;
    line(out, 'm', ml);
    if (m.title) line(out, 'i', *m.title);
    if (m.connection) connection(out, *m.connection);
    bandwidths(out, m.bandwidths);
    if (m.key) line(out, 'k', *m.key);
    attributes(out, m.attributes);
  }
  return out;
}

}  // namespace esg::sdp
