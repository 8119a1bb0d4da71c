#pragma once
// DTMF in the media path (issue 7). Legs take key presses in different forms (the `dtmf`
// setting of an account or connection): RFC 4733 telephone events, SIP INFO, or in-band tones.
// The detector finds tones in G.711 audio; the injector writes a key press into the packets
// flowing towards a leg, as events or as tones.

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "media/codec.hpp"

namespace esg::media {

// RFC 4733 event codes 0-15 as keys ("0".."9", "*", "#", "A".."D").
inline constexpr char kDtmfKeys[] = "0123456789*#ABCD";
// The event code of a key; -1 for anything else.
int dtmf_event_of(char key);

// DTMF tones in G.711 audio (SpanDSP's detector): the digits each packet's payload completes.
class DtmfDetector {
 public:
  explicit DtmfDetector(CodecId codec);
  ~DtmfDetector();
  DtmfDetector(const DtmfDetector&) = delete;
  DtmfDetector& operator=(const DtmfDetector&) = delete;
  std::string push(const uint8_t* payload, size_t size);

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// Key presses written into a stream towards a leg. The injector rides on the packets already
// flowing there: while a key plays, each one is replaced, by an RFC 4733 event packet with the
// same sequence number (the stream stays continuous, no renumbering of what follows) or by the
// same packet with the tone's samples in place of its audio (G.711, SpanDSP's generator). A
// leg that is sent nothing hears nothing, as with a phone's keypad on a muted line. Keys queue
// and play one after another with a pause of two packets between them.
class DtmfInjector {
 public:
  enum class Mode { Events, Tones };
  // Events: under the leg's telephone-event payload type `event_pt`, timestamps at `clock_rate`.
  // Tones: in the leg's G.711 `codec`.
  DtmfInjector(Mode mode, int event_pt, CodecId codec, uint32_t clock_rate);
  ~DtmfInjector();
  DtmfInjector(const DtmfInjector&) = delete;
  DtmfInjector& operator=(const DtmfInjector&) = delete;

  // Queues `key` for `ms` milliseconds (40 to 5,000; 0 or less: 100). False: not a key.
  bool add(char key, int ms);
  bool busy() const { return playing_ || !queue_.empty() || gap_ > 0; }
  // One RTP packet (header included) on its way to the leg: true and `out` set when it is to
  // be replaced; false to send it as it is.
  bool apply(std::string_view packet, std::string& out);
  Mode mode() const { return mode_; }

 private:
  bool event_packet(std::string_view packet, uint32_t ts, std::string& out);
  bool tone_packet(std::string_view packet, std::string& out);

  struct Tone;
  Mode mode_;
  int event_pt_;
  CodecId codec_;
  uint32_t clock_rate_;
  std::deque<std::pair<char, int>> queue_;
  bool playing_ = false;
  char key_ = 0;
  int ms_ = 0;
  int gap_ = 0;  // packets left to pass untouched before the next key
  // Events: the key's first timestamp, the last packet's, and the end packets sent (three).
  uint32_t start_ts_ = 0, last_ts_ = 0, end_duration_ = 0;
  bool started_ = false;
  int ends_sent_ = 0;
  std::unique_ptr<Tone> tone_;
};

}  // namespace esg::media
