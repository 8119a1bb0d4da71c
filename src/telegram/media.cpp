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
  media_.on_frame = [this](std::string_view opus) { on_frame(opus); };
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

void RtpBridge::on_frame(std::string_view opus) {
  ++frames_in_;
  // The clock steps by the frame before: tgcalls sends 60 ms frames, esg's relay 20 ms ones.
  ts_ += last_samples_;
  const int n = opus_packet_get_nb_samples(reinterpret_cast<const unsigned char*>(opus.data()),
                                           opus_int32(opus.size()), 48000);
  last_samples_ = n > 0 ? uint32_t(n) : 960;
  if (event_packets_ >= 0) return;  // a key is being sent: its events stand for the audio
  send_rtp(opus_pt_, frames_in_ == 1, ts_, opus);
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
    event_ts_ = ts_ + 960;
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
    ts_ = event_ts_ + duration;
    if (keys_.empty()) return;
  }
  event_timer_.expires_after(std::chrono::milliseconds(20));
  event_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) event_tick();
  });
}

}  // namespace esg::telegram
