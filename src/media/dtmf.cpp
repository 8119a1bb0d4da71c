#include "media/dtmf.hpp"

#include <spandsp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "media/rtp.hpp"

namespace esg::media {

int dtmf_event_of(char key) {
  if (key >= 'a' && key <= 'd') key = char(key - 'a' + 'A');
  for (int i = 0; i < 16; ++i) {
    if (kDtmfKeys[i] == key) return i;
  }
  return -1;
}

struct DtmfDetector::State {
  CodecId codec;
  dtmf_rx_state_t* rx = nullptr;
  std::string found;
  std::vector<int16_t> pcm;
};

DtmfDetector::DtmfDetector(CodecId codec) : s_(std::make_unique<State>()) {
  s_->codec = codec;
  s_->rx = dtmf_rx_init(
      nullptr,
      [](void* user, const char* digits, int len) {
        static_cast<State*>(user)->found.append(digits, size_t(len));
      },
      s_.get());
}

DtmfDetector::~DtmfDetector() {
  if (s_->rx) dtmf_rx_free(s_->rx);
}

std::string DtmfDetector::push(const uint8_t* payload, size_t size) {
  if (!s_->rx || (s_->codec != CodecId::Pcma && s_->codec != CodecId::Pcmu)) return {};
  s_->pcm.resize(size);
  for (size_t i = 0; i < size; ++i)
    s_->pcm[i] =
        s_->codec == CodecId::Pcma ? alaw_to_linear(payload[i]) : ulaw_to_linear(payload[i]);
  s_->found.clear();
  dtmf_rx(s_->rx, s_->pcm.data(), int(size));
  return s_->found;
}

struct DtmfInjector::Tone {
  dtmf_tx_state_t* tx = nullptr;
  std::vector<int16_t> pcm;
  ~Tone() {
    if (tx) dtmf_tx_free(tx);
  }
};

DtmfInjector::DtmfInjector(Mode mode, int event_pt, CodecId codec, uint32_t clock_rate)
    : mode_(mode),
      event_pt_(event_pt),
      codec_(codec),
      clock_rate_(clock_rate ? clock_rate : 8000) {}

DtmfInjector::~DtmfInjector() = default;

bool DtmfInjector::add(char key, int ms) {
  if (dtmf_event_of(key) < 0) return false;
  if (ms <= 0) ms = 100;
  queue_.emplace_back(key, std::clamp(ms, 40, 5000));
  return true;
}

bool DtmfInjector::apply(std::string_view packet, std::string& out) {
  const auto h = parse_rtp(packet);
  if (!h) return false;
  if (!playing_) {
    if (gap_ > 0) {
      --gap_;
      return false;
    }
    if (queue_.empty()) return false;
    std::tie(key_, ms_) = queue_.front();
    queue_.pop_front();
    playing_ = true;
    started_ = false;
    ends_sent_ = 0;
    end_duration_ = 0;
    if (mode_ == Mode::Tones) {
      if (!tone_) tone_ = std::make_unique<Tone>();
      if (tone_->tx) dtmf_tx_free(tone_->tx);
      tone_->tx = dtmf_tx_init(nullptr);
      dtmf_tx_set_level(tone_->tx, -10, 0);
      dtmf_tx_set_timing(tone_->tx, ms_, 0);
      const char digits[2] = {key_, 0};
      dtmf_tx_put(tone_->tx, digits, 1);
    }
  }
  return mode_ == Mode::Events ? event_packet(packet, h->timestamp, out) : tone_packet(packet, out);
}

// RFC 4733 §2.5: one event, its timestamp the start's, the duration growing with each packet;
// the end bit on the last three, which carry the same duration.
bool DtmfInjector::event_packet(std::string_view packet, uint32_t ts, std::string& out) {
  const uint32_t step = started_ ? ts - last_ts_ : clock_rate_ / 50;
  const bool first = !started_;
  if (first) {
    started_ = true;
    start_ts_ = ts;
  }
  last_ts_ = ts;
  const uint32_t target = uint32_t(uint64_t(ms_) * clock_rate_ / 1000);
  uint32_t duration = ts - start_ts_ + (step < clock_rate_ ? step : clock_rate_ / 50);
  bool end = false;
  if (end_duration_ || duration >= target) {
    if (!end_duration_) end_duration_ = std::min<uint32_t>(std::max(duration, target), 0xFFFF);
    duration = end_duration_;
    end = true;
  }
  out.assign(packet.substr(0, 12));
  out[0] = char(0x80);  // version 2, no padding, extension or CSRCs
  out[1] = char((first ? 0x80 : 0) | (event_pt_ & 0x7F));
  for (int i = 0; i < 4; ++i)
    out[size_t(4 + i)] = char(start_ts_ >> (24 - 8 * i));
  const uint8_t payload[4] = {uint8_t(dtmf_event_of(key_)), uint8_t((end ? 0x80 : 0) | 10),
                              uint8_t(std::min<uint32_t>(duration, 0xFFFF) >> 8),
                              uint8_t(std::min<uint32_t>(duration, 0xFFFF))};
  out.append(reinterpret_cast<const char*>(payload), 4);
  if (end && ++ends_sent_ == 3) {
    playing_ = false;
    gap_ = 2;
  }
  return true;
}

// The packet's own header, its payload replaced by the tone's next samples (G.711 has one byte
// per sample); when the tone ends part-way the rest is silence.
bool DtmfInjector::tone_packet(std::string_view packet, std::string& out) {
  const auto* b = reinterpret_cast<const uint8_t*>(packet.data());
  size_t at = 12 + 4 * size_t(b[0] & 0x0F);
  if ((b[0] & 0x10) && at + 4 <= packet.size())  // header extension
    at += 4 + 4 * size_t(uint16_t(b[at + 2] << 8 | b[at + 3]));
  size_t end = packet.size();
  if ((b[0] & 0x20) && end > at) end -= std::min<size_t>(b[end - 1], end - at);  // padding
  if (at >= end || (codec_ != CodecId::Pcma && codec_ != CodecId::Pcmu)) {
    playing_ = false;
    return false;
  }
  const size_t n = end - at;
  tone_->pcm.assign(n, 0);
  const int made = dtmf_tx(tone_->tx, tone_->pcm.data(), int(n));
  if (made <= 0) {  // the tone ended with the last packet: this one is the pause's
    playing_ = false;
    gap_ = 1;
    return false;
  }
  out.assign(packet);
  for (size_t i = 0; i < n; ++i) {
    out[at + i] = char(codec_ == CodecId::Pcma ? linear_to_alaw(tone_->pcm[i])
                                               : linear_to_ulaw(tone_->pcm[i]));
  }
  if (made < int(n)) {
    playing_ = false;
    gap_ = 2;
  }
  return true;
}

}  // namespace esg::media
