#pragma once
// The SDP model (RFC 8866). Values are owned strings: the B2BUA and the media relay rewrite
// descriptions, so the model outlives the message it came from.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace esg::sdp {

struct Origin {  // o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>
  std::string username;
  std::string session_id;
  std::string session_version;
  std::string nettype = "IN";
  std::string addrtype = "IP4";
  std::string address;
};

struct Connection {  // c=<nettype> <addrtype> <connection-address>
  std::string nettype = "IN";
  std::string addrtype = "IP4";
  std::string address;  // may carry /ttl and /count for multicast, kept as written
};

struct Bandwidth {  // b=<bwtype>:<bandwidth>
  std::string type;
  uint64_t value = 0;
};

struct Timing {  // t=<start> <stop>, with its r= lines
  uint64_t start = 0;
  uint64_t stop = 0;
  std::vector<std::string> repeats;
};

struct Attribute {  // a=<name>[:<value>]
  std::string name;
  std::optional<std::string> value;
};

enum class Direction : uint8_t { SendRecv, SendOnly, RecvOnly, Inactive };
std::string_view direction_name(Direction d);

struct RtpMap {  // a=rtpmap:<pt> <encoding>/<clock>[/<channels>]
  int payload_type = 0;
  std::string encoding;
  uint32_t clock_rate = 0;
  uint32_t channels = 1;
};

struct Crypto {  // a=crypto:<tag> <suite> <key-params> [<session-params>] (RFC 4568)
  uint32_t tag = 0;
  std::string suite;
  std::string key_params;
  std::string session_params;
};

struct Media {
  std::string media;  // audio, video, application, image...
  uint16_t port = 0;
  uint16_t port_count = 0;  // 0 when not written
  std::string proto;        // RTP/AVP, RTP/SAVP, udptl...
  std::vector<std::string> formats;
  std::optional<std::string> title;  // i=
  std::optional<Connection> connection;
  std::vector<Bandwidth> bandwidths;
  std::optional<std::string> key;  // k=
  std::vector<Attribute> attributes;

  const Attribute* attribute(std::string_view name) const;
  std::vector<const Attribute*> attributes_named(std::string_view name) const;
  std::optional<RtpMap> rtpmap(int payload_type) const;
  std::optional<std::string> fmtp(int payload_type) const;
  std::optional<uint32_t> ptime() const;
  std::optional<uint32_t> maxptime() const;
  std::optional<Direction> direction() const;  // as written at media level
  // a=rtcp:<port> [<nettype> <addrtype> <address>] (RFC 3605)
  std::optional<uint16_t> rtcp_port() const;
  std::vector<Crypto> crypto() const;
};

struct Session {
  int version = 0;
  Origin origin;
  std::string name = "-";
  std::optional<std::string> info;  // i=
  std::optional<std::string> uri;   // u=
  std::vector<std::string> emails;  // e=
  std::vector<std::string> phones;  // p=
  std::optional<Connection> connection;
  std::vector<Bandwidth> bandwidths;
  std::vector<Timing> timings;
  std::optional<std::string> zone;  // z=
  std::optional<std::string> key;   // k=
  std::vector<Attribute> attributes;
  std::vector<Media> media;

  const Attribute* attribute(std::string_view name) const;
  // The direction in force for a media line: media level, else session level, else sendrecv.
  Direction direction(const Media& m) const;
  // The connection in force for a media line: media level, else session level.
  const Connection* connection_for(const Media& m) const;
};

struct ParseError {
  size_t line = 0;        // 1-based line number
  std::string line_text;  // the offending line
  std::string what;
};

Result<Session, ParseError> parse(std::string_view text);
std::string serialize(const Session& s);

}  // namespace esg::sdp
