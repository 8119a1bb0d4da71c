#pragma once
// The JSON messages of Telegram's V2 call signaling (8.0.0/9.0.0; TELEGRAM-CALLS.md §3.1), as
// tgcalls' InstanceV2Impl sends them inside SignalingChannel (MediaState also travels over the
// SCTP data channel).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "base/result.hpp"

namespace esg::telegram::calls {

struct Fingerprint {
  std::string hash, setup, fingerprint;
  bool operator==(const Fingerprint&) const = default;
};
struct InitialSetup {
  std::string ufrag, pwd;
  bool renomination = false;
  std::vector<Fingerprint> fingerprints;
  bool operator==(const InitialSetup&) const = default;
};
struct Candidates {
  std::vector<std::string> sdp_strings;  // SDP a=candidate values without "a="
  bool operator==(const Candidates&) const = default;
};
struct FeedbackType {
  std::string type, subtype;
  bool operator==(const FeedbackType&) const = default;
};
struct PayloadType {
  uint32_t id = 0;
  std::string name;
  uint32_t clockrate = 0, channels = 0;
  std::vector<FeedbackType> feedback_types;
  std::vector<std::pair<std::string, std::string>> parameters;  // sent sorted by name
  bool operator==(const PayloadType&) const = default;
};
struct RtpExtension {
  int id = 0;
  std::string uri;
  bool operator==(const RtpExtension&) const = default;
};
struct SsrcGroup {
  std::string semantics;
  std::vector<uint32_t> ssrcs;
  bool operator==(const SsrcGroup&) const = default;
};
struct MediaContent {
  std::string type;  // "audio" or "video"
  uint32_t ssrc = 0;
  std::vector<SsrcGroup> ssrc_groups;
  std::vector<PayloadType> payload_types;
  std::vector<RtpExtension> rtp_extensions;
  bool operator==(const MediaContent&) const = default;
};
struct NegotiateChannels {
  uint32_t exchange_id = 0;
  std::vector<MediaContent> contents;
  bool operator==(const NegotiateChannels&) const = default;
};
struct MediaState {
  bool muted = false, low_battery = false;
  std::string video_state = "inactive", screencast_state = "inactive";  // inactive|suspended|active
  int video_rotation = 0;                                               // 0, 90, 180, 270
  bool operator==(const MediaState&) const = default;
};
using Message = std::variant<InitialSetup, Candidates, NegotiateChannels, MediaState>;

// One message. An unknown @type, a missing required field or a field of the wrong type gives an
// error text that names it (the engine logs it and ignores the message). ssrc, exchangeId and
// ssrcs are read from a decimal string or a number; unknown keys are ignored. A gzip-compressed
// message (tgcalls' receivers accept one; 8.0.0/9.0.0 senders never compress) is refused.
Result<Message, std::string> parse_message(std::string_view json);

// The JSON tgcalls (json11) writes: one line, keys in byte order, ", " and ": " between items,
// ssrc/exchangeId/ssrcs as decimal strings, ssrcGroups and payloadTypes only when not empty.
std::string serialize(const Message& m);

}  // namespace esg::telegram::calls
