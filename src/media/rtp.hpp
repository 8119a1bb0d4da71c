#pragma once
// RTP and RTCP as the relay sees them (RFC 3550): the few header fields it reads, and the
// receiver statistics of a stream (A.1 sequence tracking, A.3 loss, A.8 interarrival jitter),
// plus what the peer's own RTCP receiver reports say. No allocation per packet.

#include <cstdint>
#include <optional>
#include <string_view>

namespace esg::media {

struct RtpHeader {
  uint8_t payload_type = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
};

// Version 2 and at least a fixed header; RTCP (payload types 72-76 with the marker bit, RFC
// 5761 §4) is not RTP.
inline std::optional<RtpHeader> parse_rtp(std::string_view p) {
  if (p.size() < 12) return std::nullopt;
  const auto* b = reinterpret_cast<const uint8_t*>(p.data());
  if ((b[0] >> 6) != 2) return std::nullopt;
  const uint8_t pt = b[1] & 0x7F;
  if (pt >= 72 && pt <= 76) return std::nullopt;
  RtpHeader h;
  h.payload_type = pt;
  h.seq = uint16_t(b[2] << 8 | b[3]);
  h.timestamp = uint32_t(b[4]) << 24 | uint32_t(b[5]) << 16 | uint32_t(b[6]) << 8 | b[7];
  h.ssrc = uint32_t(b[8]) << 24 | uint32_t(b[9]) << 16 | uint32_t(b[10]) << 8 | b[11];
  return h;
}

inline bool is_rtcp(std::string_view p) {
  if (p.size() < 8) return false;
  const auto* b = reinterpret_cast<const uint8_t*>(p.data());
  return (b[0] >> 6) == 2 && b[1] >= 200 && b[1] <= 206;
}

// What a stream's receiver knows: counts, loss from sequence numbers, jitter in timestamp units
// (converted to milliseconds with the clock rate when reported).
class ReceiveStats {
 public:
  void on_packet(const RtpHeader& h, uint32_t arrival_ts_units) {
    if (!started_ || h.ssrc != ssrc_) {
      // A new source (or a re-latch): its sequence space starts over.
      started_ = true;
      ssrc_ = h.ssrc;
      base_ = h.seq;
      max_ = h.seq;
      cycles_ = 0;
      received_ = 0;
      transit_set_ = false;
    } else {
      const uint16_t delta = uint16_t(h.seq - max_);
      if (delta < 3000) {  // in order, perhaps with a gap
        if (h.seq < max_) cycles_ += 65536;
        max_ = h.seq;
      } else if (delta <= 65536 - 100) {
        // A big jump: a restarted sender; count from here (RFC 3550 A.1, simplified).
        base_ = h.seq;
        max_ = h.seq;
        cycles_ = 0;
        received_ = 0;
      }  // else a duplicate or reordered packet: counted below, no sequence change
    }
    ++received_;
    const int64_t transit = int64_t(arrival_ts_units) - int64_t(h.timestamp);
    if (transit_set_) {
      int64_t d = transit - transit_;
      if (d < 0) d = -d;
      jitter_ += (double(d) - jitter_) / 16.0;
    }
    transit_ = transit;
    transit_set_ = true;
  }
  uint64_t expected() const { return started_ ? uint64_t(cycles_) + max_ - base_ + 1 : 0; }
  int64_t lost() const { return started_ ? int64_t(expected()) - int64_t(received_) : 0; }
  double jitter_units() const { return jitter_; }
  uint32_t ssrc() const { return ssrc_; }

 private:
  bool started_ = false;
  uint32_t ssrc_ = 0;
  uint16_t base_ = 0, max_ = 0;
  uint32_t cycles_ = 0;
  uint64_t received_ = 0;
  bool transit_set_ = false;
  int64_t transit_ = 0;
  double jitter_ = 0;
};

// The first report block of an RTCP SR or RR: what the far end says about what it received.
struct ReportBlock {
  uint8_t fraction_lost = 0;  // of 256
  int32_t cumulative_lost = 0;
  uint32_t jitter = 0;  // timestamp units
};

inline std::optional<ReportBlock> parse_report(std::string_view p) {
  // Walk the compound packet for the first SR (200) or RR (201) with a report block.
  const auto* b = reinterpret_cast<const uint8_t*>(p.data());
  size_t at = 0;
  while (at + 8 <= p.size()) {
    if ((b[at] >> 6) != 2) return std::nullopt;
    const uint8_t count = b[at] & 0x1F;
    const uint8_t type = b[at + 1];
    const size_t len = (size_t(b[at + 2] << 8 | b[at + 3]) + 1) * 4;
    if (at + len > p.size()) return std::nullopt;
    const size_t block = type == 200 ? at + 28 : type == 201 ? at + 8 : 0;
    if (block && count > 0 && block + 24 <= at + len) {
      ReportBlock r;
      r.fraction_lost = b[block + 4];
      int32_t lost = int32_t(b[block + 5]) << 16 | int32_t(b[block + 6]) << 8 | b[block + 7];
      if (lost & 0x800000) lost |= int32_t(0xFF000000);  // 24-bit signed
      r.cumulative_lost = lost;
      r.jitter = uint32_t(b[block + 12]) << 24 | uint32_t(b[block + 13]) << 16 |
                 uint32_t(b[block + 14]) << 8 | b[block + 15];
      return r;
    }
    at += len;
  }
  return std::nullopt;
}

}  // namespace esg::media
