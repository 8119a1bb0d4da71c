#include "telegram/calls/jitter.hpp"

#include <algorithm>
#include <cstdlib>

namespace esg::telegram::calls {

namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// Above the spread it has seen the target keeps this much more: a packet slightly slower than
// any before is not late at once.
constexpr int64_t kHeadroomUs = 10000;
// Uniform jitter of span A gives an RFC 3550 jitter of about A/3: three of it cover the span
// while the window of extremes is still filling (at the start, after a restart).
constexpr double kJitterToSpan = 3.0;
// A frame is skipped only if the buffer would still be this much over its target afterwards:
// the delay never oscillates around the target by a frame.
constexpr int64_t kShrinkMarginUs = 20000;
// A timestamp this far from the playout point is a new timeline (a sender that restarted), not
// a frame to wait for or a late one.
constexpr int64_t kJumpUs = 1000000;
constexpr auto kBlock = std::chrono::seconds(1);

int64_t us(JitterBuffer::Clock::duration d) {
  return duration_cast<microseconds>(d).count();
}

}  // namespace

JitterBuffer::JitterBuffer() : JitterBuffer(Options{}) {}

JitterBuffer::JitterBuffer(Options options) : options_(options) {
  if (options_.clock_rate == 0) options_.clock_rate = 48000;
  if (options_.capacity == 0) options_.capacity = 1;
  entries_.resize(options_.capacity);
  slot_samples_ = options_.clock_rate / 50;
}

std::chrono::milliseconds JitterBuffer::target() const {
  return milliseconds(target_us() / 1000);
}

std::chrono::milliseconds JitterBuffer::delay() const {
  return started_ ? milliseconds(delay_us() / 1000) : milliseconds(0);
}

int64_t JitterBuffer::baseline_us() const {
  int64_t b = 0;
  bool set = false;
  for (const auto& k : blocks_) {
    if (!k.set) continue;
    b = set ? std::min(b, k.min) : k.min;
    set = true;
  }
  return b;
}

int64_t JitterBuffer::spread_us() const {
  int64_t lo = 0, hi = 0;
  bool set = false;
  for (const auto& k : blocks_) {
    if (!k.set) continue;
    lo = set ? std::min(lo, k.min) : k.min;
    hi = set ? std::max(hi, k.max) : k.max;
    set = true;
  }
  return hi - lo;
}

int64_t JitterBuffer::target_us() const {
  const int64_t need = std::max(spread_us(), int64_t(kJitterToSpan * jitter_us_)) + kHeadroomUs;
  return std::clamp(need, us(options_.floor), us(options_.ceiling));
}

// How long after a packet of the fastest transit seen would arrive, the next slot plays: a
// packet is on time when its transit is at most this much above the fastest.
int64_t JitterBuffer::delay_us() const {
  return us(next_at_ - epoch_) - to_us(next_ts_ - epoch_ts_) - baseline_us();
}

void JitterBuffer::note_transit(int64_t transit_us, Clock::time_point now) {
  if (now - block_since_ >= kBlock) {
    block_ = (block_ + 1) % kBlocks;
    blocks_[block_] = Block{};
    block_since_ = now;
  }
  Block& k = blocks_[block_];
  k.min = k.set ? std::min(k.min, transit_us) : transit_us;
  k.max = k.set ? std::max(k.max, transit_us) : transit_us;
  k.set = true;
  // RFC 3550 §6.4.1: J += (|D| - J) / 16, D the difference of consecutive transits.
  if (have_transit_)
    jitter_us_ += (double(std::llabs(transit_us - last_transit_us_)) - jitter_us_) / 16.0;
  last_transit_us_ = transit_us;
  have_transit_ = true;
}

bool JitterBuffer::seen(uint16_t seq) const {
  if (!seq_set_) return false;
  const uint16_t back = uint16_t(seq_top_ - seq);
  if (back >= 64) return false;  // ahead of the window (or too old to tell)
  return (seq_bits_ >> back) & 1;
}

void JitterBuffer::mark_seen(uint16_t seq) {
  if (!seq_set_) {
    seq_set_ = true;
    seq_top_ = seq;
    seq_bits_ = 1;
    return;
  }
  const uint16_t ahead = uint16_t(seq - seq_top_);
  if (ahead != 0 && ahead < 0x8000) {
    seq_bits_ = ahead >= 64 ? 0 : seq_bits_ << ahead;
    seq_bits_ |= 1;
    seq_top_ = seq;
    return;
  }
  const uint16_t back = uint16_t(seq_top_ - seq);
  if (back < 64) seq_bits_ |= uint64_t(1) << back;
}

JitterBuffer::Entry* JitterBuffer::find(int64_t ts) {
  for (auto& e : entries_)
    if (e.used && e.ts == ts) return &e;
  return nullptr;
}

JitterBuffer::Entry* JitterBuffer::earliest() {
  Entry* best = nullptr;
  for (auto& e : entries_)
    if (e.used && (!best || e.ts < best->ts)) best = &e;
  return best;
}

void JitterBuffer::restart(const Packet& p, Clock::time_point now) {
  const int64_t samples = p.samples ? p.samples : options_.clock_rate / 50;
  for (auto& e : entries_)
    e.used = false;
  queued_ = 0;
  blocks_ = {};
  block_since_ = now;
  have_transit_ = false;
  too_deep_since_.reset();
  seq_set_ = false;
  late_run_ = 0;
  early_ = gap_ = false;
  ssrc_ = p.ssrc;
  // The packet plays a target's delay from now. Before the first packet there is no timeline;
  // after one, the slots go on without a pause (missing ones until this packet's), so the
  // stream towards the PBX keeps its pace through the restart.
  const int64_t wait = target_us();
  if (!started_) {
    next_at_ = now + microseconds(wait);
    next_ts_ = int64_t(p.timestamp);
  } else {
    const int64_t gap = std::max<int64_t>(0, us(now - next_at_) + wait);
    next_ts_ = int64_t(p.timestamp) - gap * int64_t(options_.clock_rate) / 1000000;
    ++counters_.restarts;
  }
  started_ = true;
  slot_samples_ = uint32_t(samples);
  epoch_ = now;
  epoch_ts_ = int64_t(p.timestamp);
  note_transit(0, now);
}

JitterBuffer::Pushed JitterBuffer::push(const Packet& p, Clock::time_point now) {
  ++counters_.received;
  const uint32_t samples = p.samples ? p.samples : options_.clock_rate / 50;
  Pushed result = Pushed::Queued;
  int64_t ext = extend(p.timestamp);
  if (!started_ || p.ssrc != ssrc_ || now - last_arrival_ > options_.restart_after ||
      to_us(std::llabs(ext - next_ts_)) > kJumpUs) {
    restart(p, now);
    ext = int64_t(p.timestamp);
    result = Pushed::Restarted;
  } else if (seen(p.seq)) {
    // Before its transit counts: a copy that came late says nothing about when frames come.
    ++counters_.duplicates;
    return Pushed::Duplicate;
  } else {
    note_transit(us(now - epoch_) - to_us(ext - epoch_ts_), now);
  }
  last_arrival_ = now;
  mark_seen(p.seq);
  if (ext < next_ts_ && ++late_run_ < options_.resync_after_late) {
    // Its slot has played (as a missing frame): too late. Its transit is in the window above,
    // so the target grows to catch the next one as slow.
    ++counters_.late;
    return Pushed::Late;
  }
  if (ext < next_ts_) {
    // Late again and again: the delay has stepped beyond the buffer (Options). This packet
    // starts the playout over and plays a target's delay from now.
    ++counters_.resyncs;
    restart(p, now);
    ext = int64_t(p.timestamp);
    mark_seen(p.seq);
    result = Pushed::Restarted;
  }
  late_run_ = 0;
  if (queued_ >= entries_.size()) {
    // Full: far more than the ceiling is waiting, so this one is not needed to stay in bounds.
    ++counters_.skipped;
    return result;
  }
  for (auto& e : entries_) {
    if (e.used) continue;
    e.used = true;
    e.seq = p.seq;
    e.ts = ext;
    e.samples = samples;
    e.payload.assign(p.payload.data(), p.payload.size());
    ++queued_;
    break;
  }
  return result;
}

std::optional<JitterBuffer::Frame> JitterBuffer::next_slot() {
  // A frame that overlaps what has played (frames of other lengths than their timestamps say)
  // can never play: it goes, as late, so that it holds no entry.
  for (Entry* old = earliest(); old && old->ts < next_ts_; old = earliest()) {
    old->used = false;
    --queued_;
    ++counters_.late;
  }
  gap_ = false;
  if (early_ && next_ts_ < early_end_) {
    // This slot's frame went with the missing one before it: its time passes in silence.
    const int64_t n = early_end_ - next_ts_;
    early_ = false;
    next_ts_ = early_end_;
    next_at_ += microseconds(to_us(n));
    return std::nullopt;
  }
  early_ = false;
  const int64_t target = target_us(), delay = delay_us();
  Entry* e = find(next_ts_);
  if (delay < target) {
    // Too shallow (packets came later than it covers): one slot more, concealed; the frame due
    // now plays in the next slot.
    too_deep_since_.reset();
    ++counters_.missing;
    ++counters_.inserted;
    Frame f{uint32_t(next_ts_), slot_samples_, {}};
    next_at_ += microseconds(to_us(slot_samples_));
    return f;
  }
  if (e && delay - to_us(e->samples) >= target + kShrinkMarginUs) {
    // Too deep: a sender's clock faster than ours, or jitter that has calmed down. Skip one
    // frame once that has lasted, so that the delay goes down slowly and the pace stays ours.
    if (!too_deep_since_) too_deep_since_ = next_at_;
    if (next_at_ - *too_deep_since_ >= options_.shrink_after) {
      too_deep_since_.reset();
      ++counters_.skipped;
      next_ts_ += e->samples;
      e->used = false;
      --queued_;
      return std::nullopt;  // the next frame plays in this same slot
    }
  } else {
    too_deep_since_.reset();
  }
  if (e) {
    Frame f{uint32_t(e->ts), e->samples, e->payload};
    e->used = false;  // its payload stays until a push reuses the entry
    --queued_;
    ++counters_.played;
    slot_samples_ = e->samples;
    next_ts_ += e->samples;
    next_at_ += microseconds(to_us(e->samples));
    return f;
  }
  // Missing: a slot of the last frame's length, or up to the next frame that is here.
  uint32_t n = slot_samples_;
  if (const Entry* next = earliest(); next && next->ts - next_ts_ < int64_t(n))
    n = uint32_t(next->ts - next_ts_);
  if (n == 0) n = slot_samples_;
  ++counters_.missing;
  Frame f{uint32_t(next_ts_), n, {}};
  next_ts_ += n;
  next_at_ += microseconds(to_us(n));
  gap_ = true;
  return f;
}

std::optional<JitterBuffer::Frame> JitterBuffer::play_early() {
  Entry* e = find(next_ts_);
  if (!e) return std::nullopt;
  Frame f{uint32_t(e->ts), e->samples, e->payload};
  e->used = false;
  --queued_;
  ++counters_.played;
  ++counters_.early;
  slot_samples_ = e->samples;
  early_ = true;
  early_end_ = e->ts + e->samples;
  return f;
}

}  // namespace esg::telegram::calls
