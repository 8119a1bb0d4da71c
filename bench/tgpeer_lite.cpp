// tgpeer_lite: a light stand-in for tgpeer (/work/shared/tools/tgpeer, the real tgcalls) in
// bench/telegram_media.py. tgpeer runs a whole WebRTC stack with audio processing: forty of
// them would take the CPU the benchmark means to measure in esg. This one is esg's own call
// engine (CallEngine, proven against tgpeer) with the same command line and stdio protocol
// (tgpeer's README), a sine pre-encoded once (a 1 s loop of 20 ms Opus frames, so sending
// costs no encoder) and a decoder for the recording and the levels. One io_context, one thread.
//
// stdout lines beyond tgpeer's: {"first_frame":t,"wall":unix} at the first Opus frame from the
// peer and {"first_audio":t,"wall":unix} at the first one that decodes to sound (above
// -50 dBFS), t in seconds since start, wall the Unix time (the benchmark compares it with the
// PBX's 200 OK on the same clock).

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include <opus/opus.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <istream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/base64.hpp"
#include "log/log.hpp"
#include "telegram/calls/engine.hpp"

namespace {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

constexpr int kRate = 48000, kFrame = 960;  // 20 ms at 48 kHz, mono
constexpr double kSoundRms = 0.00316;       // -50 dBFS: quieter is silence

struct Args {
  std::string version = "9.0.0";
  bool outgoing = false, p2p = false, have_role = false;
  std::string key_hex, servers = "[]", record, log_level = "warning";
  double tone = 0, amplitude = 0.3, seconds = 0;
};

void print(const json& j) {
  const std::string line = j.dump() + "\n";
  fwrite(line.data(), 1, line.size(), stdout);
  fflush(stdout);
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

bool parse(int argc, char** argv, Args& a, std::string* error) {
  for (int i = 1; i < argc; ++i) {
    const std::string o = argv[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= argc) return false;
      out = argv[++i];
      return true;
    };
    std::string v;
    if (o == "--outgoing" || o == "--incoming") {
      a.outgoing = o == "--outgoing";
      a.have_role = true;
    } else if (o == "--p2p") {
      a.p2p = true;
    } else if (o == "--beep" || o == "--tcp") {
      // tgpeer's; nothing here depends on them
    } else if (o == "--version") {
      if (!value(a.version)) break;
    } else if (o == "--key-hex") {
      if (!value(a.key_hex)) break;
    } else if (o == "--servers") {
      if (!value(a.servers)) break;
    } else if (o == "--record") {
      if (!value(a.record)) break;
    } else if (o == "--log-level") {
      if (!value(a.log_level)) break;
    } else if (o == "--tone" || o == "--amplitude" || o == "--seconds") {
      if (!value(v)) break;
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end == v.c_str() || *end) {
        *error = "bad number for " + o + ": " + v;
        return false;
      }
      (o == "--tone" ? a.tone : o == "--amplitude" ? a.amplitude : a.seconds) = d;
    } else {
      *error = "unknown option " + o;
      return false;
    }
  }
  if (!a.have_role) *error = "--outgoing or --incoming is required";
  if (a.key_hex.size() != 512 ||
      a.key_hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    *error = "--key-hex needs 512 hex digits";
  return error->empty();
}

std::string unhex(const std::string& h) {
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out += char(std::stoi(h.substr(i, 2), nullptr, 16));
  return out;
}

// A 16-bit mono 48 kHz WAV whose header is rewritten every second and at the end, as tgpeer's.
class Wav {
 public:
  explicit Wav(const std::string& path) {
    if (!path.empty()) f_ = fopen(path.c_str(), "wb");
    if (f_) header();
  }
  ~Wav() {
    if (!f_) return;
    header();
    fclose(f_);
  }
  void write(const int16_t* pcm, size_t n) {
    if (!f_) return;
    fwrite(pcm, 2, n, f_);
    samples_ += n;
  }
  void header() {
    if (!f_) return;
    const uint32_t data = uint32_t(samples_ * 2);
    uint8_t h[44];
    auto put32 = [&](int at, uint32_t v) {
      for (int i = 0; i < 4; ++i)
        h[at + i] = uint8_t(v >> (8 * i));
    };
    auto put16 = [&](int at, uint16_t v) {
      h[at] = uint8_t(v);
      h[at + 1] = uint8_t(v >> 8);
    };
    memcpy(h, "RIFF", 4);
    put32(4, 36 + data);
    memcpy(h + 8, "WAVEfmt ", 8);
    put32(16, 16);
    put16(20, 1);
    put16(22, 1);
    put32(24, kRate);
    put32(28, kRate * 2);
    put16(32, 2);
    put16(34, 16);
    memcpy(h + 36, "data", 4);
    put32(40, data);
    const long at = ftell(f_);
    fseek(f_, 0, SEEK_SET);
    fwrite(h, 1, sizeof h, f_);
    fseek(f_, at, SEEK_SET);
    fflush(f_);
  }
  uint64_t samples() const { return samples_; }

 private:
  FILE* f_ = nullptr;
  uint64_t samples_ = 0;
};

// One second of the tone (or of silence) as 50 Opus frames that loop without a seam: encoded
// twice through and the second pass kept, so the encoder's state at the loop's start is what
// follows its end. An integral frequency has whole periods in one second.
std::vector<std::string> encode_loop(double hz, double amplitude, std::string* error) {
  int err = 0;
  OpusEncoder* enc = opus_encoder_create(kRate, 1, OPUS_APPLICATION_VOIP, &err);
  if (!enc) {
    *error = std::string("opus_encoder_create: ") + opus_strerror(err);
    return {};
  }
  opus_encoder_ctl(enc, OPUS_SET_BITRATE(32000));
  std::vector<std::string> frames;
  std::vector<int16_t> pcm(kFrame);
  unsigned char out[1500];
  for (int f = 0; f < 100; ++f) {
    for (int i = 0; i < kFrame; ++i) {
      const double t = double((f % 50) * kFrame + i) / kRate;
      pcm[i] = int16_t(hz > 0 ? std::lround(amplitude * 32767.0 * std::sin(2 * M_PI * hz * t)) : 0);
    }
    const int n = opus_encode(enc, pcm.data(), kFrame, out, sizeof out);
    if (n < 0) {
      *error = std::string("opus_encode: ") + opus_strerror(n);
      break;
    }
    if (f >= 50) frames.emplace_back(reinterpret_cast<char*>(out), size_t(n));
  }
  opus_encoder_destroy(enc);
  return error->empty() ? frames : std::vector<std::string>{};
}

class Peer {
 public:
  Peer(asio::io_context& io, Args args, std::vector<std::string> loop)
      : io_(io),
        args_(std::move(args)),
        loop_(std::move(loop)),
        in_(io, ::dup(0)),
        send_timer_(io),
        second_timer_(io),
        end_timer_(io),
        wav_(args_.record) {
    int err = 0;
    dec_ = opus_decoder_create(kRate, 1, &err);
    pcm_.resize(kFrame * 6);  // up to 120 ms in one packet
  }
  ~Peer() {
    if (dec_) opus_decoder_destroy(dec_);
  }

  bool start(std::string* error) {
    std::string key = unhex(args_.key_hex);
    json servers = json::parse(args_.servers, nullptr, false);
    if (servers.is_discarded() || !servers.is_array()) {
      *error = "--servers is not a JSON array";
      return false;
    }
    const json ready = {
        {"@type", "callStateReady"},
        {"protocol", {{"@type", "callProtocol"}, {"library_versions", {args_.version}}}},
        {"servers", servers},
        {"config", "{}"},
        {"encryption_key", esg::base64::encode(key)},
        {"emojis", json::array()},
        {"allow_p2p", args_.p2p},
        {"custom_parameters", ""}};
    esg::telegram::calls::CallEngine::Options o;
    o.call_id = args_.outgoing ? "lite-out" : "lite-in";
    engine_ = std::make_unique<esg::telegram::calls::CallEngine>(io_, o);
    engine_->on_signaling = [](std::string blob) {
      print({{"signaling", esg::base64::encode(blob)}});
    };
    engine_->on_frame = [this](const esg::telegram::AudioFrame& f) {
      if (!f.missing()) on_frame(f.opus);  // missing ones (after the jitter buffer): not heard
    };
    engine_->on_failed = [this](const std::string& why) {
      print({{"state", "failed"}, {"reason", why}});
      finish("failed");
    };
    started_ = Clock::now();
    if (!engine_->start(ready, args_.outgoing, error)) return false;
    print({{"state", "reconnecting"}});
    read_stdin();
    next_send_ = Clock::now();
    send_tick();
    second_tick();
    if (args_.seconds > 0) {
      end_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(args_.seconds)));
      end_timer_.async_wait([this](boost::system::error_code ec) {
        if (!ec) finish(state_);
      });
    }
    return true;
  }

 private:
  double since_start() const {
    return std::chrono::duration<double>(Clock::now() - started_).count();
  }

  void read_stdin() {
    asio::async_read_until(in_, buf_, '\n', [this](boost::system::error_code ec, size_t) {
      if (ec) {  // the end of stdin stops the call, as tgpeer's
        finish(state_);
        return;
      }
      std::istream is(&buf_);
      std::string line;
      std::getline(is, line);
      const json j = json::parse(line, nullptr, false);
      if (j.is_object()) {
        if (j.contains("signaling") && j["signaling"].is_string()) {
          if (engine_) engine_->signaling(esg::base64::decode(j["signaling"].get<std::string>()));
        } else if (j.value("stop", false)) {
          finish(state_);
          return;
        } else if (j.contains("mute") && j["mute"].is_boolean()) {
          if (j["mute"].get<bool>() != muted_) {
            muted_ = j["mute"].get<bool>();
            print({{"muted", muted_}});
          }
        } else if (j.contains("network")) {
          print({{"warning", "network control is not available in tgpeer_lite"}});
        }
      }
      if (!done_) read_stdin();
    });
  }

  // 20 ms frames on absolute deadlines (no drift); the state is looked at each tick until the
  // call connects (tgpeer reports established within a frame of it).
  void send_tick() {
    if (done_) return;
    if (!established_ && engine_->status().value("state", "") == "connected") {
      established_ = true;
      state_ = "established";
      established_at_ = since_start();
      print({{"state", "established"}, {"t", established_at_}, {"wall", wall_now()}});
    }
    if (established_ && !muted_ && !loop_.empty()) {
      engine_->send(loop_[sent_ % loop_.size()]);
      ++sent_;
    }
    next_send_ += std::chrono::milliseconds(20);
    send_timer_.expires_at(next_send_);
    send_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) send_tick();
    });
  }

  void on_frame(std::string_view opus) {
    ++frames_in_;
    if (frames_in_ == 1) print({{"first_frame", since_start()}, {"wall", wall_now()}});
    if (!dec_) return;
    const int n = opus_decode(dec_, reinterpret_cast<const unsigned char*>(opus.data()),
                              opus_int32(opus.size()), pcm_.data(), int(pcm_.size()), 0);
    if (n <= 0) {
      ++decode_errors_;
      return;
    }
    double sum = 0;
    for (int i = 0; i < n; ++i) {
      const double x = pcm_[i] / 32768.0;
      sum += x * x;
      peak_ = std::max(peak_, std::fabs(x));
    }
    level_sum_ += sum;
    level_n_ += uint64_t(n);
    rx_samples_ += uint64_t(n);
    if (!heard_ && std::sqrt(sum / n) > kSoundRms) {
      heard_ = true;
      print({{"first_audio", since_start()}, {"wall", wall_now()}});
    }
    wav_.write(pcm_.data(), size_t(n));
  }

  void second_tick() {
    if (done_) return;
    if (ticks_++ > 0) {
      const double rms = level_n_ ? std::sqrt(level_sum_ / double(level_n_)) : 0.0;
      const double tx = established_ && !muted_ && args_.tone > 0 ? args_.amplitude / M_SQRT2 : 0;
      print({{"audio_level", rms}, {"rx_peak", peak_}, {"tx_level", tx}, {"t", since_start()}});
      level_sum_ = 0;
      level_n_ = 0;
      peak_ = 0;
      wav_.header();
      if (established_) {
        const bool up = engine_->status().value("state", "") == "connected";
        if (up != (state_ == "established")) {
          state_ = up ? "established" : "reconnecting";
          print({{"state", state_}});
        }
      }
    }
    second_timer_.expires_after(std::chrono::seconds(1));
    second_timer_.async_wait([this](boost::system::error_code ec) {
      if (!ec) second_tick();
    });
  }

  void finish(const std::string& last_state) {
    if (done_) return;
    done_ = true;
    json st = engine_ ? engine_->status() : json::object();
    if (engine_) engine_->stop();
    send_timer_.cancel();
    second_timer_.cancel();
    end_timer_.cancel();
    boost::system::error_code ec;
    in_.cancel(ec);
    wav_.header();
    print({{"stats",
            {{"stopped_cleanly", true},
             {"last_state", last_state},
             {"engine", "tgpeer_lite (esg CallEngine)"},
             {"frames_sent", sent_},
             {"frames_received", frames_in_},
             {"decode_errors", decode_errors_},
             {"rx_samples", rx_samples_},
             {"tx_samples", sent_ * kFrame},
             {"recorded_samples", wav_.samples()},
             {"established_s", established_at_},
             {"engine_status", st},
             {"wall_s", since_start()}}}});
    io_.stop();
  }

  asio::io_context& io_;
  Args args_;
  std::vector<std::string> loop_;
  asio::posix::stream_descriptor in_;
  asio::streambuf buf_;
  asio::steady_timer send_timer_, second_timer_, end_timer_;
  Wav wav_;
  OpusDecoder* dec_ = nullptr;
  std::vector<int16_t> pcm_;
  std::unique_ptr<esg::telegram::calls::CallEngine> engine_;
  Clock::time_point started_{}, next_send_{};
  std::string state_ = "reconnecting";
  bool established_ = false, muted_ = false, heard_ = false, done_ = false;
  double established_at_ = -1;
  uint64_t sent_ = 0, frames_in_ = 0, rx_samples_ = 0, decode_errors_ = 0, ticks_ = 0;
  double level_sum_ = 0, peak_ = 0;
  uint64_t level_n_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--list-versions") {
    print({{"versions", esg::telegram::calls::versions()}, {"max_layer", 92}});
    return 0;
  }
  Args args;
  std::string error;
  if (!parse(argc, argv, args, &error)) {
    fprintf(stderr, "tgpeer_lite: %s\n", error.c_str());
    return 2;
  }
  bool known = false;
  for (const auto& v : esg::telegram::calls::versions())
    known = known || v == args.version;
  if (!known) {
    print({{"error", "unsupported version " + args.version},
           {"versions", esg::telegram::calls::versions()}});
    return 3;
  }
  esg::log::Options lo;
  const std::string& l = args.log_level;
  lo.level = l == "none"                ? "off"
             : l == "warning"           ? "warn"
             : l == "verbose"           ? "debug"
             : esg::log::valid_level(l) ? l
                                        : "warn";
  esg::log::init(lo);
  const auto loop = encode_loop(args.tone, args.amplitude, &error);
  if (loop.empty()) {
    fprintf(stderr, "tgpeer_lite: %s\n", error.c_str());
    return 1;
  }
  asio::io_context io;
  Peer peer(io, std::move(args), loop);
  if (!peer.start(&error)) {
    print({{"state", "failed"}, {"reason", error}});
    return 1;
  }
  io.run();
  return 0;
}
