#include "media/codec.hpp"

#include <opus/opus.h>
#include <spandsp.h>
#include <speex/speex_resampler.h>

#include <strings.h>
#include <algorithm>
#include <cstring>
#include <random>

#include "media/rtp.hpp"

namespace esg::media {

namespace {

const CodecInfo kCodecs[] = {
    {CodecId::Pcma, "PCMA", 8000, 8000, 8, 1},
    {CodecId::Pcmu, "PCMU", 8000, 8000, 0, 1},
    {CodecId::G722, "G722", 8000, 16000, 9, 1},
    {CodecId::Opus, "opus", 48000, 48000, -1, 2},
};

class G711Decoder final : public Decoder {
 public:
  explicit G711Decoder(bool alaw) : alaw_(alaw) {}
  int decode(const uint8_t* data, size_t size, int16_t* pcm, size_t max) override {
    const size_t n = std::min(size, max);
    for (size_t i = 0; i < n; ++i)
      pcm[i] = alaw_ ? alaw_to_linear(data[i]) : ulaw_to_linear(data[i]);
    return int(n);
  }

 private:
  bool alaw_;
};

class G711Encoder final : public Encoder {
 public:
  explicit G711Encoder(bool alaw) : alaw_(alaw) {}
  int encode(const int16_t* pcm, size_t samples, uint8_t* out, size_t max) override {
    const size_t n = std::min(samples, max);
    for (size_t i = 0; i < n; ++i)
      out[i] = alaw_ ? linear_to_alaw(pcm[i]) : linear_to_ulaw(pcm[i]);
    return int(n);
  }

 private:
  bool alaw_;
};

class G722Decoder final : public Decoder {
 public:
  G722Decoder() : s_(g722_decode_init(nullptr, 64000, 0)) {}
  ~G722Decoder() override { g722_decode_free(s_); }
  int decode(const uint8_t* data, size_t size, int16_t* pcm, size_t max) override {
    if (size * 2 > max) size = max / 2;  // two samples per byte at 64 kbit/s
    return g722_decode(s_, pcm, data, int(size));
  }

 private:
  g722_decode_state_t* s_;
};

class G722Encoder final : public Encoder {
 public:
  G722Encoder() : s_(g722_encode_init(nullptr, 64000, 0)) {}
  ~G722Encoder() override { g722_encode_free(s_); }
  int encode(const int16_t* pcm, size_t samples, uint8_t* out, size_t max) override {
    if (samples / 2 > max) samples = max * 2;
    return g722_encode(s_, out, pcm, int(samples));
  }

 private:
  g722_encode_state_t* s_;
};

// RFC 6716 §4.1's range decoder, just for the first symbols of a SILK frame (bits of
// probability 1/2), as libopus' entdec.c decodes them.
class RangeBits {
 public:
  RangeBits(const uint8_t* buf, size_t size) : buf_(buf), size_(size) {
    rem_ = read();
    val_ = rng_ - 1 - uint32_t(rem_ >> 1);
    normalize();
  }
  bool bit() {
    const uint32_t s = rng_ >> 1;
    const bool one = val_ < s;
    if (!one) val_ -= s;
    rng_ = one ? s : rng_ - s;
    normalize();
    return one;
  }

 private:
  int read() { return at_ < size_ ? buf_[at_++] : 0; }
  void normalize() {
    while (rng_ <= (1u << 23)) {
      rng_ <<= 8;
      const int prev = rem_;
      rem_ = read();
      const int sym = ((prev << 8) | rem_) >> 1;
      val_ = ((val_ << 8) + (255 & ~uint32_t(sym))) & 0x7FFFFFFF;
    }
  }
  const uint8_t* buf_;
  size_t size_, at_ = 0;
  int rem_ = 0;
  uint32_t rng_ = 128, val_ = 0;
};

class OpusDecoderImpl final : public Decoder {
 public:
  OpusDecoderImpl() {
    int err = 0;
    d_ = opus_decoder_create(48000, 1, &err);
  }
  ~OpusDecoderImpl() override { opus_decoder_destroy(d_); }
  int decode(const uint8_t* data, size_t size, int16_t* pcm, size_t max) override {
    if (!d_) return -1;
    return opus_decode(d_, data, opus_int32(size), pcm, int(max), 0);
  }
  bool conceals() const override { return true; }
  int conceal(const uint8_t* next, size_t next_size, int16_t* pcm, size_t samples,
              bool* fec) override {
    if (!d_) return -1;
    // With decode_fec libopus extrapolates all but the last frame's length and decodes that
    // from the LBRR; samples must be the whole gap, in steps of 2.5 ms.
    *fec = next && opus_has_fec(next, next_size);
    if (*fec) return opus_decode(d_, next, opus_int32(next_size), pcm, int(samples), 1);
    return opus_decode(d_, nullptr, 0, pcm, int(samples), 0);
  }

 private:
  OpusDecoder* d_ = nullptr;
};

class OpusEncoderImpl final : public Encoder {
 public:
  explicit OpusEncoderImpl(uint32_t source_rate) {
    int err = 0;
    e_ = opus_encoder_create(48000, 1, OPUS_APPLICATION_VOIP, &err);
    if (e_) {
      opus_encoder_ctl(e_, OPUS_SET_BITRATE(32000));
      // Telephony: complexity 5 instead of 10 takes a fifth less CPU per channel
      // (bench/media_bench).
      opus_encoder_ctl(e_, OPUS_SET_COMPLEXITY(5));
      // Audio from G.711 has nothing above 4 kHz, from G.722 nothing above 8 kHz: coding the
      // empty band costs CPU (147 -> 73 us a 20 ms frame for narrowband) and no quality.
      if (source_rate <= 8000)
        opus_encoder_ctl(e_, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_NARROWBAND));
      else if (source_rate <= 16000)
        opus_encoder_ctl(e_, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
    }
  }
  ~OpusEncoderImpl() override { opus_encoder_destroy(e_); }
  int encode(const int16_t* pcm, size_t samples, uint8_t* out, size_t max) override {
    if (!e_) return -1;
    return opus_encode(e_, pcm, int(samples), out, opus_int32(max));
  }

 private:
  OpusEncoder* e_ = nullptr;
};

}  // namespace

bool opus_has_fec(const uint8_t* d, size_t n) {
  if (n < 2) return false;
  const int config = d[0] >> 3;
  if (config >= 16) return false;  // CELT only: no SILK layer, no LBRR
  // Where the first frame is and how long (§3.2): LBRR for the audio before the packet is in
  // the first frame's SILK header.
  size_t at = 1, len = n - 1;
  auto length = [&](size_t& l) {
    if (at >= n) return false;
    l = d[at++];
    if (l >= 252) {
      if (at >= n) return false;
      l += 4 * size_t(d[at++]);
    }
    return true;
  };
  switch (d[0] & 3) {
    case 0:
      break;
    case 1:
      len = (n - 1) / 2;
      break;
    case 2:
      if (!length(len)) return false;
      break;
    default: {
      const uint8_t c = d[at++];
      const size_t frames = c & 0x3F;
      if (frames == 0) return false;
      size_t padding = 0;
      if (c & 0x40) {
        for (;;) {
          if (at >= n) return false;
          const uint8_t p = d[at++];
          padding += p == 255 ? 254 : p;
          if (p != 255) break;
        }
      }
      if (c & 0x80) {
        if (!length(len)) return false;
        for (size_t i = 2; i < frames; ++i) {
          size_t skip = 0;
          if (!length(skip)) return false;
        }
      } else {
        if (n < at + padding) return false;
        len = (n - at - padding) / frames;
      }
    }
  }
  if (at >= n || len == 0) return false;
  len = std::min(len, n - at);
  // 20 ms SILK frames in the Opus frame (§4.2.2): 40 ms has 2, 60 ms 3; hybrid has 1.
  const int size = config & 3;
  const int silk_frames = config < 12 && size >= 2 ? size : 1;
  RangeBits bits(d + at, len);
  for (int i = 0; i < silk_frames; ++i)
    bits.bit();       // the VAD flags (§4.2.3)
  return bits.bit();  // the (mid) channel's LBRR flag
}

std::optional<CodecInfo> codec_named(std::string_view name) {
  for (const auto& c : kCodecs) {
    if (name.size() == std::strlen(c.name) && strncasecmp(name.data(), c.name, name.size()) == 0)
      return c;
  }
  return std::nullopt;
}

std::optional<CodecInfo> codec_of_static(int payload_type) {
  for (const auto& c : kCodecs) {
    if (c.static_pt >= 0 && c.static_pt == payload_type) return c;
  }
  return std::nullopt;
}

const CodecInfo& codec_info(CodecId id) {
  for (const auto& c : kCodecs) {
    if (c.id == id) return c;
  }
  return kCodecs[0];
}

std::unique_ptr<Decoder> make_decoder(CodecId id) {
  switch (id) {
    case CodecId::Pcma:
      return std::make_unique<G711Decoder>(true);
    case CodecId::Pcmu:
      return std::make_unique<G711Decoder>(false);
    case CodecId::G722:
      return std::make_unique<G722Decoder>();
    case CodecId::Opus:
      return std::make_unique<OpusDecoderImpl>();
  }
  return nullptr;
}

std::unique_ptr<Encoder> make_encoder(CodecId id, uint32_t source_rate) {
  switch (id) {
    case CodecId::Pcma:
      return std::make_unique<G711Encoder>(true);
    case CodecId::Pcmu:
      return std::make_unique<G711Encoder>(false);
    case CodecId::G722:
      return std::make_unique<G722Encoder>();
    case CodecId::Opus:
      return std::make_unique<OpusEncoderImpl>(source_rate);
  }
  return nullptr;
}

struct Resampler::State {
  SpeexResamplerState* st = nullptr;
};

Resampler::Resampler(uint32_t from, uint32_t to)
    : s_(std::make_unique<State>()), from_(from), to_(to) {
  int err = 0;
  if (from != to) s_->st = speex_resampler_init(1, from, to, 3, &err);
}

Resampler::~Resampler() {
  if (s_->st) speex_resampler_destroy(s_->st);
}

void Resampler::process(const int16_t* in, size_t n, std::vector<int16_t>& out) {
  if (!s_->st) {
    out.insert(out.end(), in, in + n);
    return;
  }
  const size_t at = out.size();
  out.resize(at + n * to_ / from_ + 16);
  spx_uint32_t in_len = spx_uint32_t(n), out_len = spx_uint32_t(out.size() - at);
  speex_resampler_process_int(s_->st, 0, in, &in_len, out.data() + at, &out_len);
  out.resize(at + out_len);
}

Transcoder::Transcoder(CodecId from, CodecId to, uint8_t to_pt, uint32_t ptime_ms)
    : from_(codec_info(from)),
      to_(codec_info(to)),
      to_pt_(to_pt),
      frame_samples_(size_t(codec_info(to).sample_rate) * ptime_ms / 1000),
      decoder_(make_decoder(from)),
      encoder_(make_encoder(to, codec_info(from).sample_rate)),
      resampler_(
          std::make_unique<Resampler>(codec_info(from).sample_rate, codec_info(to).sample_rate)) {
  std::random_device rd;
  seq_ = uint16_t(rd());
  ts_ = rd();
  ssrc_ = rd();
}

Transcoder::~Transcoder() = default;

bool Transcoder::follow_timeline(const RtpHeader& h, const uint8_t* data, size_t size,
                                 std::vector<std::string>& out) {
  if (!in_set_ || h.ssrc != in_ssrc_) {
    in_set_ = true;
    in_ssrc_ = h.ssrc;
    return true;
  }
  const int32_t gap = int32_t(h.timestamp - in_next_ts_);
  const int32_t cap = int32_t(from_.clock_rate * kMaxConcealMs / 1000);
  if (gap == 0) return true;
  if (gap < 0) {
    if (-gap <= cap) {
      // Behind the audio already made (reordered, duplicated): its time has been filled.
      ++late_;
      return false;
    }
    marker_ = true;  // a sender that started its clock over
    return true;
  }
  if (gap > cap) {
    ++jumps_;
    ts_ += uint32_t(uint64_t(gap) * to_.clock_rate / from_.clock_rate);
    marker_ = true;
    return true;
  }
  const size_t quantum = from_.sample_rate / 400;  // 2.5 ms, Opus' shortest frame
  const size_t samples =
      std::min(pcm_.size(), size_t(gap) * from_.sample_rate / from_.clock_rate / quantum * quantum);
  if (samples == 0) return true;
  bool fec = false;
  const int n = decoder_->conceal(data, size, pcm_.data(), samples, &fec);
  if (n <= 0) return true;
  ++concealed_;
  if (fec) ++fec_;
  add_pcm(pcm_.data(), size_t(n), out);
  return true;
}

void Transcoder::push(std::string_view packet, std::vector<std::string>& out) {
  const auto h = parse_rtp(packet);
  if (!h) return;
  // The payload: after the fixed header, CSRCs and an extension; without padding.
  const auto* b = reinterpret_cast<const uint8_t*>(packet.data());
  size_t at = 12 + 4 * size_t(b[0] & 0x0F);
  if ((b[0] & 0x10) && at + 4 <= packet.size())
    at += 4 + 4 * size_t(uint16_t(b[at + 2] << 8 | b[at + 3]));
  size_t end = packet.size();
  if ((b[0] & 0x20) && end > at) end -= std::min<size_t>(b[end - 1], end - at);
  if (at >= end) return;
  pcm_.resize(5760);  // 120 ms at 48 kHz, Opus's longest frame
  const bool timeline = decoder_->conceals();
  if (timeline && !follow_timeline(*h, b + at, end - at, out)) return;
  const int n = decoder_->decode(b + at, end - at, pcm_.data(), pcm_.size());
  if (timeline)
    in_next_ts_ = h->timestamp + uint32_t(std::max(n, 0)) * from_.clock_rate / from_.sample_rate;
  if (n <= 0) return;
  ++frames_in_;
  add_pcm(pcm_.data(), size_t(n), out);
}

void Transcoder::add_pcm(const int16_t* pcm, size_t n, std::vector<std::string>& out) {
  resampled_.clear();
  resampler_->process(pcm, n, resampled_);
  pending_.insert(pending_.end(), resampled_.begin(), resampled_.end());
  const uint32_t ts_step = uint32_t(frame_samples_ * to_.clock_rate / to_.sample_rate);
  size_t used = 0;
  while (pending_.size() - used >= frame_samples_) {
    std::string p(12 + 1500, '\0');
    auto* o = reinterpret_cast<uint8_t*>(p.data());
    const int bytes = encoder_->encode(pending_.data() + used, frame_samples_, o + 12, 1500);
    used += frame_samples_;
    if (bytes <= 0) continue;
    o[0] = 0x80;
    o[1] = uint8_t(to_pt_ | (marker_ ? 0x80 : 0));
    marker_ = false;
    o[2] = uint8_t(seq_ >> 8);
    o[3] = uint8_t(seq_);
    for (int i = 0; i < 4; ++i) {
      o[4 + i] = uint8_t(ts_ >> (24 - 8 * i));
      o[8 + i] = uint8_t(ssrc_ >> (24 - 8 * i));
    }
    ++seq_;
    ts_ += ts_step;
    p.resize(12 + size_t(bytes));
    out.push_back(std::move(p));
    ++frames_out_;
  }
  pending_.erase(pending_.begin(), pending_.begin() + long(used));
}

}  // namespace esg::media
