#pragma once
// Codec negotiation across the two legs (RFC 3264, issue 7). Each leg has a preference list
// (the account's or connection's `codecs`). An offer crossing to a leg keeps the codecs both
// sides have (pass-through); when they share none, esg offers that leg's preferred codecs it
// can transcode to. The answer coming back picks the codec: the same one on both sides, or a
// transcodable one of the first offer's, with a transcoder for each direction.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "media/codec.hpp"
#include "sdp/session.hpp"

namespace esg::media {

struct Format {
  int pt = -1;
  std::string name;  // rtpmap encoding ("PCMA", "telephone-event"...)
  uint32_t clock = 8000;
  uint32_t channels = 1;
  std::optional<std::string> fmtp;
  bool dtmf() const;
  std::optional<CodecInfo> codec() const;  // a codec esg can transcode
};

// The formats of an m= line, in order, with their rtpmaps (static types without one too).
std::vector<Format> formats_of(const sdp::Media& m);
// Replaces the m= line's formats (and their rtpmap/fmtp attributes) with `formats`.
void set_formats(sdp::Media& m, const std::vector<Format>& formats);
// The formats to offer a leg that prefers `prefer` (empty: anything), given `offered`.
std::vector<Format> offer_for(const std::vector<Format>& offered,
                              const std::vector<std::string>& prefer);

// What an answer means for the offerer's leg.
struct AnswerPlan {
  std::vector<Format> formats;  // what the offerer is told
  bool transcode = false;
  Format offerer, answerer;  // the codec on each side (when transcoding, or for a PT map)
  int offerer_dtmf = -1, answerer_dtmf = -1;
};
// Whether an offer (SDP text) shares no codec with a leg that prefers `prefer` while esg could
// transcode: then the relay must carry the call even when it would not otherwise.
bool needs_transcoding(std::string_view offer, const std::vector<std::string>& prefer);

AnswerPlan answer_for(const std::vector<Format>& offered, const std::vector<Format>& answered,
                      const std::vector<std::string>& offerer_prefers);

}  // namespace esg::media
