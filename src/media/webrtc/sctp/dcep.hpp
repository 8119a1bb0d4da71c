#pragma once
// The Data Channel Establishment Protocol (RFC 8832) and the payload protocol identifiers of
// WebRTC data channels (RFC 8831 §8): the bytes of DATA_CHANNEL_OPEN and DATA_CHANNEL_ACK, no
// SCTP in here, so the codec is tested on plain strings.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace esg::media::dcep {

// SCTP payload protocol identifiers (RFC 8831 §8, IANA "SCTP Payload Protocol Identifiers").
inline constexpr uint32_t kPpidDcep = 50;
inline constexpr uint32_t kPpidString = 51;
inline constexpr uint32_t kPpidBinaryPartial = 52;  // deprecated
inline constexpr uint32_t kPpidBinary = 53;
inline constexpr uint32_t kPpidStringPartial = 54;  // deprecated
inline constexpr uint32_t kPpidStringEmpty = 56;
inline constexpr uint32_t kPpidBinaryEmpty = 57;

// Message types (RFC 8832 §8.2.1).
inline constexpr uint8_t kAck = 0x02;
inline constexpr uint8_t kOpen = 0x03;

// Channel types (RFC 8832 §5.1).
inline constexpr uint8_t kReliable = 0x00;
inline constexpr uint8_t kReliableUnordered = 0x80;

// "Normal" priority as WebRTC writes it (RFC 8831 §6.4 refers to the W3C API's levels; browsers
// put 256 in the open message for the default).
inline constexpr uint16_t kPriorityNormal = 256;

struct Open {
  uint8_t channel_type = kReliable;
  uint16_t priority = kPriorityNormal;
  uint32_t reliability = 0;
  std::string label;
  std::string protocol;
};

// DATA_CHANNEL_OPEN (RFC 8832 §5.1): type, channel type, priority, reliability parameter,
// label length, protocol length (network byte order), then label and protocol. Label and
// protocol longer than 65535 bytes are cut (they are ours: "data" and "").
std::string encode_open(const Open& open);
// DATA_CHANNEL_ACK (RFC 8832 §5.2): the message type alone.
std::string encode_ack();

// The message type of a DCEP message, nullopt for an empty one.
std::optional<uint8_t> message_type(std::string_view message);
// A DATA_CHANNEL_OPEN; nullopt when it is not one or its lengths overrun the message (it came
// from the network: never trusted).
std::optional<Open> parse_open(std::string_view message);

}  // namespace esg::media::dcep
