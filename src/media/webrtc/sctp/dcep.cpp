#include "media/webrtc/sctp/dcep.hpp"

#include <algorithm>

namespace esg::media::dcep {

namespace {

constexpr size_t kOpenHeader = 12;  // up to the label (RFC 8832 §5.1)

void put16(std::string& out, uint16_t v) {
  out.push_back(char(v >> 8));
  out.push_back(char(v & 0xff));
}

void put32(std::string& out, uint32_t v) {
  put16(out, uint16_t(v >> 16));
  put16(out, uint16_t(v & 0xffff));
}

uint16_t get16(std::string_view in, size_t at) {
  return uint16_t((uint8_t(in[at]) << 8) | uint8_t(in[at + 1]));
}

uint32_t get32(std::string_view in, size_t at) {
  return (uint32_t(get16(in, at)) << 16) | get16(in, at + 2);
}

}  // namespace

std::string encode_open(const Open& open) {
  const std::string_view label(open.label.data(), std::min<size_t>(open.label.size(), 0xffff));
  const std::string_view protocol(open.protocol.data(),
                                  std::min<size_t>(open.protocol.size(), 0xffff));
  std::string out;
  out.reserve(kOpenHeader + label.size() + protocol.size());
  out.push_back(char(kOpen));
  out.push_back(char(open.channel_type));
  put16(out, open.priority);
  put32(out, open.reliability);
  put16(out, uint16_t(label.size()));
  put16(out, uint16_t(protocol.size()));
  out.append(label);
  out.append(protocol);
  return out;
}

std::string encode_ack() {
  return std::string(1, char(kAck));
}

std::optional<uint8_t> message_type(std::string_view message) {
  if (message.empty()) return std::nullopt;
  return uint8_t(message[0]);
}

std::optional<Open> parse_open(std::string_view message) {
  if (message.size() < kOpenHeader || uint8_t(message[0]) != kOpen) return std::nullopt;
  const size_t label_length = get16(message, 8);
  const size_t protocol_length = get16(message, 10);
  if (kOpenHeader + label_length + protocol_length > message.size()) return std::nullopt;
  Open open;
  open.channel_type = uint8_t(message[1]);
  open.priority = get16(message, 2);
  open.reliability = get32(message, 4);
  open.label = std::string(message.substr(kOpenHeader, label_length));
  open.protocol = std::string(message.substr(kOpenHeader + label_length, protocol_length));
  return open;
}

}  // namespace esg::media::dcep
