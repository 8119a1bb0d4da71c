#pragma once
// The jitter buffer of a Telegram call's received audio (issue 22), sans-IO: RTP packets in with
// their arrival time, frames out at a steady pace when the engine's timer polls. The PBX's G.711
// stream is made from what comes out, so the buffer's job is that it comes out continuous in
// time: one slot after the other on our clock, each slot either the sender's frame for it or
// "N samples are missing" (the relay's transcoder conceals those with Opus PLC/FEC).
//
// Playout follows the sender's RTP timestamps: frames come out in timestamp order, a frame's
// slot lasts its own length. Reordering within the buffer's depth is undone; duplicates and
// packets whose slot has passed are dropped and counted. The delay adapts: the target covers the
// spread of the packets' transit times seen over the last seconds and a multiple of the RFC 3550
// interarrival jitter, between a floor and a ceiling. The buffer grows by emitting a missing slot
// (one frame of concealment) and shrinks by skipping a frame, only after it has been too deep for
// a while: that also absorbs a sender whose clock runs slightly faster or slower than ours, so
// the stream towards the PBX keeps our clock's pace (no drift) and the buffer stays in bounds.
// A delay that steps up beyond the ceiling (packets late one after the other) starts the
// playout over on the new delay, with the slots going on meanwhile.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace esg::telegram::calls {

class JitterBuffer {
 public:
  using Clock = std::chrono::steady_clock;

  struct Options {
    uint32_t clock_rate = 48000;
    // 40 ms of jitter on 60 ms frames (tgcalls' frame size) needs 40 ms and a little headroom;
    // the slot granularity adds up to one frame above this.
    std::chrono::milliseconds floor{60};
    std::chrono::milliseconds ceiling{200};
    // Packets held (200 ms of 10 ms frames, with room for a burst): memory is bounded.
    size_t capacity = 32;
    // Too deep for this long before a frame is skipped: shrinking is slow, growing immediate.
    std::chrono::milliseconds shrink_after{2000};
    // Nothing received for this long: the next packet starts the playout over (the peer was
    // muted, or the path was lost), instead of being late.
    std::chrono::milliseconds restart_after{400};
    // This many packets late in a row, none on time between them: the path's delay stepped up
    // beyond what the buffer can cover (a new route, a reflector or a host under load), so
    // the playout starts over on the new delay. Waiting for the window of transit times to
    // forget the old, faster packets would drop everything for seconds.
    unsigned resync_after_late = 3;
  };

  struct Packet {
    uint16_t seq = 0;
    uint32_t timestamp = 0;
    uint32_t ssrc = 0;
    uint32_t samples = 0;  // the frame's length at clock_rate (0: unknown, one 20 ms frame)
    std::string_view payload;
  };

  // What a slot plays: the sender's frame (`payload` valid until the next push or poll), or a
  // missing frame of `samples` (payload empty) that the next stage conceals.
  struct Frame {
    uint32_t timestamp = 0;
    uint32_t samples = 0;
    std::string_view payload;
    bool missing() const { return payload.empty(); }
  };

  enum class Pushed : uint8_t { Queued, Duplicate, Late, Restarted };

  struct Counters {
    uint64_t received = 0, played = 0, duplicates = 0, late = 0;
    uint64_t missing = 0;   // slots played as missing frames (loss, late packets, growth)
    uint64_t inserted = 0;  // of those, slots added to grow the buffer
    uint64_t skipped = 0;   // frames skipped to shrink it (or because it was full)
    uint64_t restarts = 0;
    uint64_t resyncs = 0;  // of those, because the path's delay stepped beyond the buffer
    uint64_t early = 0;    // frames played right after the missing one before them
  };

  JitterBuffer();
  explicit JitterBuffer(Options options);

  Pushed push(const Packet& p, Clock::time_point now);
  // Plays every slot whose time has come by `now`, in order, through `emit`.
  template <typename Emit>
  void poll(Clock::time_point now, Emit&& emit) {
    while (started_ && now >= next_at_) {
      const auto f = next_slot();
      if (!f) continue;
      emit(*f);
      // A lost frame's next one, when it is here, goes at once: the next stage conceals the
      // gap when that frame comes (FEC needs it), so the concealed audio leaves on time and
      // the frame a slot early, rather than both a slot late.
      if (f->missing() && gap_) {
        if (const auto e = play_early()) emit(*e);
      }
    }
  }
  // When the next slot plays (for the engine's timer); none before the first packet.
  std::optional<Clock::time_point> next_due() const {
    if (!started_) return std::nullopt;
    return next_at_;
  }
  bool started() const { return started_; }

  const Counters& counters() const { return counters_; }
  // RFC 3550 interarrival jitter, in milliseconds.
  double jitter_ms() const { return jitter_us_ / 1000.0; }
  // The delay the buffer aims at, and the one it has now (how long after the fastest packets
  // would arrive the next slot plays).
  std::chrono::milliseconds target() const;
  std::chrono::milliseconds delay() const;
  size_t queued() const { return queued_; }

 private:
  struct Entry {
    bool used = false;
    uint16_t seq = 0;
    int64_t ts = 0;  // extended: relative to the playout's timeline
    uint32_t samples = 0;
    std::string payload;
  };
  // A window of transit-time extremes in blocks of a second (by arrival): a slow sender's clock
  // or a path that got faster leaves it block by block.
  static constexpr size_t kBlocks = 8;
  struct Block {
    int64_t min = 0, max = 0;
    bool set = false;
  };

  std::optional<Frame> next_slot();
  std::optional<Frame> play_early();
  void restart(const Packet& p, Clock::time_point now);
  void note_transit(int64_t transit_us, Clock::time_point now);
  int64_t extend(uint32_t ts) const { return next_ts_ + int32_t(ts - uint32_t(next_ts_)); }
  int64_t to_us(int64_t samples) const { return samples * 1000000 / int64_t(options_.clock_rate); }
  Entry* find(int64_t ts);
  Entry* earliest();
  bool seen(uint16_t seq) const;
  void mark_seen(uint16_t seq);
  int64_t baseline_us() const;
  int64_t spread_us() const;
  int64_t target_us() const;
  int64_t delay_us() const;

  Options options_;
  std::vector<Entry> entries_;
  size_t queued_ = 0;
  bool started_ = false;
  uint32_t ssrc_ = 0;
  int64_t next_ts_ = 0;        // the sender's timestamp of the next slot (extended)
  Clock::time_point next_at_;  // when it plays
  Clock::time_point epoch_;    // of the transit times below, with the sender's time then
  int64_t epoch_ts_ = 0;
  uint32_t slot_samples_ = 0;  // the last frame's length: a missing slot's
  bool gap_ = false;           // the last missing slot was a gap (not a slot added)
  bool early_ = false;         // a frame up to early_end_ has played ahead of its slot
  int64_t early_end_ = 0;
  Clock::time_point last_arrival_;
  // Transit (arrival minus the sender's time, relative) per packet, for the target and jitter.
  std::array<Block, kBlocks> blocks_{};
  size_t block_ = 0;
  Clock::time_point block_since_;
  int64_t last_transit_us_ = 0;
  bool have_transit_ = false;
  double jitter_us_ = 0;
  std::optional<Clock::time_point> too_deep_since_;
  // Sequence numbers seen recently (an anti-replay style window) for duplicates.
  uint16_t seq_top_ = 0;
  uint64_t seq_bits_ = 0;
  bool seq_set_ = false;
  unsigned late_run_ = 0;  // packets late in a row
  Counters counters_;
};

}  // namespace esg::telegram::calls
