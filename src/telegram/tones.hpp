#pragma once
// What a Telegram user hears from the gateway itself on an autoanswered call (issue 23): a
// ringback tone while the PBX only rings, a busy tone when it refuses or never answers. Telegram
// calls have no early media of their own, so without these an autoanswered user would hear
// silence. A tone is a cadence (425 Hz, the European ringback and busy frequency) or the line's
// WAV file, played as 20 ms Opus frames at the wall clock's pace on the line's worker.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace esg::media {
class Encoder;
}

namespace esg::telegram {

// 48 kHz mono 16-bit samples.
using Pcm48 = std::vector<int16_t>;

// A RIFF/WAVE file of 16-bit PCM (mono, or stereo mixed down), any sample rate, as 48 kHz mono;
// at most 60 s. The error says what is wrong with the file, for the config error of its field.
Result<Pcm48, std::string> load_wav(const std::string& path);

struct Cadence {
  int freq_hz = 425;
  int on_ms = 1000;
  int off_ms = 4000;
};
inline constexpr Cadence kRingback{425, 1000, 4000};  // ETSI ES 201 970: 1 s on, 4 s off
inline constexpr Cadence kBusy{425, 500, 500};        // 0.5 s on, 0.5 s off
inline constexpr Cadence kMenuBeep{880, 150, 0};      // one beep of the menu's default prompt

// The audio of a cadence, one period long.
Pcm48 cadence_pcm(const Cadence& c, int amplitude = 8000);

class TonePlayer {
 public:
  // `send` gets each Opus frame (20 ms) as it is due.
  TonePlayer(boost::asio::io_context& io, std::function<void(std::string_view opus)> send);
  ~TonePlayer();
  TonePlayer(const TonePlayer&) = delete;
  TonePlayer& operator=(const TonePlayer&) = delete;

  // Plays `pcm` over and over (a tone's period, or a file), replacing what played before.
  void play(std::shared_ptr<const Pcm48> pcm);
  void stop();
  bool playing() const { return playing_; }
  uint64_t frames() const { return frames_; }

 private:
  void tick();

  boost::asio::steady_timer timer_;
  std::function<void(std::string_view)> send_;
  std::unique_ptr<media::Encoder> encoder_;
  std::shared_ptr<const Pcm48> pcm_;
  size_t at_ = 0;
  bool playing_ = false;
  uint64_t frames_ = 0;
  std::chrono::steady_clock::time_point next_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace esg::telegram
