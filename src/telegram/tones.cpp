#include "telegram/tones.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "media/codec.hpp"

namespace esg::telegram {

namespace {

constexpr size_t kFrame = 960;  // 20 ms at 48 kHz
constexpr uint32_t kMaxSeconds = 60;

uint32_t le32(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return uint32_t(b[0]) | uint32_t(b[1]) << 8 | uint32_t(b[2]) << 16 | uint32_t(b[3]) << 24;
}
uint16_t le16(const char* p) {
  const auto* b = reinterpret_cast<const uint8_t*>(p);
  return uint16_t(b[0] | b[1] << 8);
}

}  // namespace

Result<Pcm48, std::string> load_wav(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return unexpected("cannot read " + path);
  // Bounded: 60 s of 48 kHz stereo and the headers.
  const auto size = f.tellg();
  if (size < 0) return unexpected("cannot read " + path);
  if (uint64_t(size) > kMaxSeconds * 48000 * 4 + 4096)
    return unexpected(path + " is too long (at most " + std::to_string(kMaxSeconds) + " s)");
  std::string data(size_t(size), '\0');
  f.seekg(0);
  f.read(data.data(), std::streamsize(data.size()));
  data.resize(size_t(f.gcount()));
  if (data.size() < 12 || data.compare(0, 4, "RIFF") != 0 || data.compare(8, 4, "WAVE") != 0)
    return unexpected(path + " is not a WAV file (RIFF/WAVE)");
  uint16_t format = 0, channels = 0, bits = 0;
  uint32_t rate = 0;
  std::string_view samples;
  for (size_t at = 12; at + 8 <= data.size();) {
    const uint32_t size = le32(&data[at + 4]);
    const size_t body = at + 8;
    if (size > data.size() - body) {
      if (data.compare(at, 4, "data") == 0) {  // a truncated data chunk: what is there
        samples = std::string_view(data).substr(body);
        break;
      }
      return unexpected(path + ": a chunk runs past the end of the file");
    }
    if (data.compare(at, 4, "fmt ") == 0 && size >= 16) {
      format = le16(&data[body]);
      channels = le16(&data[body + 2]);
      rate = le32(&data[body + 4]);
      bits = le16(&data[body + 14]);
    } else if (data.compare(at, 4, "data") == 0) {
      samples = std::string_view(data).substr(body, size);
    }
    at = body + size + (size & 1);
  }
  if (format != 1 && format != 0xFFFE) return unexpected(path + ": not PCM");
  if (bits != 16) return unexpected(path + ": must be 16-bit PCM");
  if (channels != 1 && channels != 2) return unexpected(path + ": must be mono or stereo");
  if (rate < 8000 || rate > 48000) return unexpected(path + ": sample rate must be 8-48 kHz");
  if (samples.size() < size_t(channels) * 2) return unexpected(path + ": has no audio");
  std::vector<int16_t> mono(samples.size() / (2 * size_t(channels)));
  for (size_t i = 0; i < mono.size(); ++i) {
    int sum = 0;
    for (size_t c = 0; c < channels; ++c)
      sum += int16_t(le16(&samples[(i * channels + c) * 2]));
    mono[i] = int16_t(sum / channels);
  }
  if (rate == 48000) return mono;
  Pcm48 out;
  media::Resampler r(rate, 48000);
  r.process(mono.data(), mono.size(), out);
  return out;
}

Pcm48 cadence_pcm(const Cadence& c, int amplitude) {
  const size_t on = size_t(std::max(0, c.on_ms)) * 48, off = size_t(std::max(0, c.off_ms)) * 48;
  Pcm48 out(on + off, 0);
  constexpr double kPi = 3.14159265358979323846;
  for (size_t i = 0; i < on; ++i)
    out[i] = int16_t(amplitude * std::sin(2 * kPi * c.freq_hz * double(i) / 48000.0));
  return out;
}

TonePlayer::TonePlayer(boost::asio::io_context& io, std::function<void(std::string_view)> send)
    : timer_(io), send_(std::move(send)), encoder_(media::make_encoder(media::CodecId::Opus)) {}

TonePlayer::~TonePlayer() {
  *alive_ = false;
}

void TonePlayer::play(std::shared_ptr<const Pcm48> pcm) {
  if (!pcm || pcm->empty()) {
    stop();
    return;
  }
  pcm_ = std::move(pcm);
  at_ = 0;
  if (playing_) return;  // the running timer goes on with the new audio
  playing_ = true;
  next_ = std::chrono::steady_clock::now();
  tick();
}

void TonePlayer::stop() {
  playing_ = false;
  timer_.cancel();
}

void TonePlayer::tick() {
  if (!playing_ || !pcm_) return;
  // Frames due by now (a late timer sends what it owes, so the pace stays the clock's).
  const auto now = std::chrono::steady_clock::now();
  if (now - next_ > std::chrono::milliseconds(200)) next_ = now;  // a stall: no burst
  while (next_ <= now) {
    std::array<int16_t, kFrame> frame{};
    for (size_t i = 0; i < kFrame; ++i) {
      frame[i] = (*pcm_)[at_];
      at_ = (at_ + 1) % pcm_->size();
    }
    std::array<uint8_t, 1500> out{};
    const int n = encoder_ ? encoder_->encode(frame.data(), kFrame, out.data(), out.size()) : -1;
    ++frames_;
    next_ += std::chrono::milliseconds(20);
    if (n > 0) send_(std::string_view(reinterpret_cast<const char*>(out.data()), size_t(n)));
    if (!playing_) return;  // stopped by the one it sends to
  }
  timer_.expires_at(next_);
  timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (!ec && *alive) tick();
  });
}

}  // namespace esg::telegram
