#pragma once
// Codecs for transcoding (issue 7): G.711 A-law and μ-law and G.722 from SpanDSP, Opus from
// libopus, resampling from SpeexDSP. A Transcoder turns one direction's RTP packets of one codec
// into packets of another: decode, resample, cut into frames of the ptime, encode, with its own
// sequence numbers, timestamps and SSRC. One per direction per call, used on the call's worker.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esg::media {

struct RtpHeader;

enum class CodecId : uint8_t { Pcma, Pcmu, G722, Opus };

struct CodecInfo {
  CodecId id;
  const char* name;      // as in a=rtpmap (case-insensitive there)
  uint32_t clock_rate;   // RTP clock (G.722's is 8000 for historical reasons, RFC 3551)
  uint32_t sample_rate;  // what it encodes
  int static_pt;         // -1: dynamic
  uint32_t channels;     // in a=rtpmap (Opus says 2, RFC 7587)
};

// The codecs esg can transcode, by rtpmap name ("PCMA", "opus"...), case-insensitively.
std::optional<CodecInfo> codec_named(std::string_view name);
// A static payload type's codec (0 PCMU, 8 PCMA, 9 G722).
std::optional<CodecInfo> codec_of_static(int payload_type);
const CodecInfo& codec_info(CodecId id);

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Samples written to `pcm` (at the codec's sample rate); negative on a broken frame.
  virtual int decode(const uint8_t* data, size_t size, int16_t* pcm, size_t max) = 0;
  // Whether conceal() makes audio for what is missing (Opus); others leave a gap a gap.
  virtual bool conceals() const { return false; }
  // `samples` of audio for frames that did not come, just before `next` (the packet that did):
  // from `next`'s in-band FEC where it has some (then `*fec` is set), else by extrapolation.
  // Samples written, negative on failure.
  virtual int conceal(const uint8_t* next, size_t next_size, int16_t* pcm, size_t samples,
                      bool* fec) {
    (void)next, (void)next_size, (void)pcm, (void)samples, (void)fec;
    return -1;
  }
};
// The longest gap a Transcoder fills by concealment; longer ones are real loss (or a sender's
// pause) and its output's time jumps over them, without packets. A source that knows its gaps
// (the Telegram leg's jitter buffer) sends audio of its own beyond this.
inline constexpr uint32_t kMaxConcealMs = 120;
// Whether an Opus packet carries in-band FEC (LBRR) for the audio before it (RFC 6716 §4.2.4).
bool opus_has_fec(const uint8_t* data, size_t size);
class Encoder {
 public:
  virtual ~Encoder() = default;
  // Bytes written to `out` for `samples` of PCM; negative on failure.
  virtual int encode(const int16_t* pcm, size_t samples, uint8_t* out, size_t max) = 0;
};
std::unique_ptr<Decoder> make_decoder(CodecId id);
// `source_rate`: the sample rate the audio had at its source (8000 for G.711): an Opus encoder
// codes no more bandwidth than there is (narrowband halves its CPU; bench/telegram_media.py).
std::unique_ptr<Encoder> make_encoder(CodecId id, uint32_t source_rate = 48000);

// Mono 16-bit PCM from one rate to another (SpeexDSP, quality 3: telephony).
class Resampler {
 public:
  Resampler(uint32_t from, uint32_t to);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;
  void process(const int16_t* in, size_t n, std::vector<int16_t>& out);

 private:
  struct State;
  std::unique_ptr<State> s_;
  uint32_t from_, to_;
};

class Transcoder {
 public:
  // Packets of `from` (payload type `from_pt`) become packets of `to` (payload type `to_pt`)
  // carrying `ptime_ms` of audio each.
  Transcoder(CodecId from, CodecId to, uint8_t to_pt, uint32_t ptime_ms = 20);
  ~Transcoder();
  // One received RTP packet (whole, header included); complete packets to send are appended.
  // From Opus, a gap in the timestamps up to 120 ms is filled before the packet is decoded (its
  // FEC, else packet loss concealment), so the output's timestamps advance by the real
  // duration; a longer gap is real loss: the output's time jumps over it. G.711 and G.722
  // sources are taken as they come.
  void push(std::string_view packet, std::vector<std::string>& out);
  uint64_t frames_in() const { return frames_in_; }
  uint64_t frames_out() const { return frames_out_; }
  // Gaps in an Opus source filled (and of those, from FEC), packets dropped as behind the
  // audio already made (reordered, duplicated), gaps too long to fill (the time jumps).
  uint64_t concealed() const { return concealed_; }
  uint64_t fec() const { return fec_; }
  uint64_t late() const { return late_; }
  uint64_t jumps() const { return jumps_; }

 private:
  // For a source that conceals: fills a gap before this packet, or says to drop it (false).
  bool follow_timeline(const RtpHeader& h, const uint8_t* data, size_t size,
                       std::vector<std::string>& out);
  void add_pcm(const int16_t* pcm, size_t n, std::vector<std::string>& out);

  const CodecInfo& from_;
  const CodecInfo& to_;
  uint8_t to_pt_;
  size_t frame_samples_;  // per output frame, at the encoder's rate
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<Encoder> encoder_;
  std::unique_ptr<Resampler> resampler_;
  std::vector<int16_t> pcm_, resampled_, pending_;
  uint16_t seq_;
  uint32_t ts_, ssrc_;
  bool marker_ = true;
  // The source's timeline (for a decoder that conceals): the timestamp the next packet should
  // have if nothing is missing.
  bool in_set_ = false;
  uint32_t in_ssrc_ = 0, in_next_ts_ = 0;
  uint64_t frames_in_ = 0, frames_out_ = 0;
  uint64_t concealed_ = 0, fec_ = 0, late_ = 0, jumps_ = 0;
};

}  // namespace esg::media
