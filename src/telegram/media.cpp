#include "telegram/media.hpp"

#include <boost/asio/ip/address.hpp>

#include <opus/opus.h>

#include <cstring>

#include "base/random.hpp"

namespace esg::telegram {

namespace asio = boost::asio;
using asio::ip::udp;

RtpBridge::RtpBridge(asio::io_context& io, TelegramMedia& media, uint8_t opus_pt, uint8_t event_pt)
    : io_(io),
      media_(media),
      opus_pt_(opus_pt),
      event_pt_(event_pt),
      sock_(io, udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
      seq_(uint16_t(random::between(0, 0xFFFF))),
      ts_(uint32_t(random::between(0, 0xFFFFFFFF))),
      ssrc_(uint32_t(random::between(1, 0xFFFFFFFF))),
      event_timer_(io) {
  port_ = sock_.local_endpoint().port();
  media_.on_frame = [this](const AudioFrame& f) { on_frame(f); };
  receive();
}

RtpBridge::~RtpBridge() {
  *alive_ = false;
  media_.on_frame = nullptr;
  boost::system::error_code ec;
  sock_.close(ec);
}

void RtpBridge::receive() {
  sock_.async_receive_from(asio::buffer(buf_), from_, [this, alive = alive_](auto ec, size_t n) {
    if (ec || !*alive) return;
    const auto* b = reinterpret_cast<const uint8_t*>(buf_.data());
    if (n > 12 && (b[0] >> 6) == 2 && (b[1] & 0x7F) == opus_pt_) {
      peer_ = from_;  // symmetric: answer where the relay sends from
      const size_t at = 12 + 4 * size_t(b[0] & 0x0F);
      if (at < n) {
        ++frames_out_;
        media_.send(std::string_view(buf_.data() + at, n - at));
      }
    }
    receive();
  });
}

void RtpBridge::send_rtp(uint8_t pt, bool marker, uint32_t ts, std::string_view payload) {
  if (!peer_) return;
  std::string p(12, '\0');
  p[0] = char(0x80);
  p[1] = char((marker ? 0x80 : 0) | pt);
  p[2] = char(seq_ >> 8);
  p[3] = char(seq_);
  ++seq_;
  for (int i = 0; i < 4; ++i) {
    p[size_t(4 + i)] = char(ts >> (24 - 8 * i));
    p[size_t(8 + i)] = char(ssrc_ >> (24 - 8 * i));
  }
  p.append(payload);
  boost::system::error_code ec;
  sock_.send_to(asio::buffer(p), *peer_, 0, ec);
}

void RtpBridge::on_frame(const AudioFrame& f) {
  ++frames_in_;
  uint32_t n = f.samples;
  if (n == 0 && !f.missing()) {
    const int s = opus_packet_get_nb_samples(reinterpret_cast<const unsigned char*>(f.opus.data()),
                                             opus_int32(f.opus.size()), 48000);
    n = s > 0 ? uint32_t(s) : 960;
  }
  if (n == 0) n = 960;
  // Our timestamp is the source's plus an offset, fixed while the source's timeline goes on
  // (a lost frame keeps its place: a gap); chosen anew where it breaks, so that the frame
  // follows what went before (ts_ is where the next frame of ours starts).
  if (!timeline_ || f.timestamp != src_next_) {
    offset_ = ts_ - f.timestamp;
    marker_ = true;  // RFC 3551: the start of a talkspurt (or of the stream)
  }
  timeline_ = true;
  const uint32_t ts = f.timestamp + offset_;
  src_next_ = f.timestamp + n;
  ts_ = ts + n;
  if (event_packets_ >= 0) return;  // a key is being sent: its events stand for the audio
  if (f.missing()) {
    // The relay sees the loss (sequence) and its length (timestamps) and conceals it.
    ++missing_;
    ++seq_;
    return;
  }
  send_rtp(opus_pt_, marker_, ts, f.opus);
  marker_ = false;
}

void RtpBridge::send_key(char key) {
  if (!event_pt_) return;  // the relay took no telephone events on this leg
  keys_ += key;
  if (event_packets_ < 0) event_tick();
}

// RFC 4733 at 48 kHz: five updates 20 ms apart (100 ms), then the end three times.
void RtpBridge::event_tick() {
  static const std::string kKeys = "0123456789*#ABCD";
  if (event_packets_ < 0) {
    if (keys_.empty()) return;
    event_packets_ = 0;
    event_ts_ = ts_;
  }
  const size_t code = kKeys.find(keys_.front());
  const int k = event_packets_++;
  const bool end = k >= 5;
  const uint32_t duration = uint32_t(end ? 5 : k + 1) * 960;
  const char payload[4] = {char(code == std::string::npos ? 0 : code), char((end ? 0x80 : 0) | 10),
                           char(duration >> 8), char(duration)};
  send_rtp(event_pt_, k == 0, event_ts_, std::string_view(payload, 4));
  if (k >= 7) {  // the third end packet
    keys_.erase(0, 1);
    event_packets_ = -1;
    // Audio frames went on meanwhile (unsent); without them the next starts after the event.
    if (int32_t(ts_ - (event_ts_ + duration)) < 0) {
      ts_ = event_ts_ + duration;
      timeline_ = false;
    }
    if (keys_.empty()) return;
  }
  event_timer_.expires_after(std::chrono::milliseconds(20));
  event_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) event_tick();
  });
}

}  // namespace esg::telegram
