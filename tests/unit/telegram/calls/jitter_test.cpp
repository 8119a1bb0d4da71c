// The jitter buffer on a simulated clock: a sender of frames, a network that delays, reorders,
// duplicates and loses them, and the engine's timer that polls when the next slot is due.
#include "telegram/calls/jitter.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace {

using esg::telegram::calls::JitterBuffer;
using Clock = JitterBuffer::Clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

struct Sent {
  Clock::time_point arrival;
  uint16_t seq;
  uint32_t ts;
  uint32_t samples;
  std::string payload;
};

struct Played {
  Clock::time_point at;
  uint32_t ts, samples;
  std::string payload;  // empty: missing
};

// Frames of `frame_ms` from a sender whose clock runs `rate` times ours; `delay(i)` is the
// network's delay of frame i (negative: lost).
template <typename Delay>
std::vector<Sent> send(int frames, int frame_ms, Delay delay, double rate = 1.0,
                       uint32_t ts0 = 1000) {
  std::vector<Sent> out;
  const Clock::time_point t0{};
  const uint32_t samples = uint32_t(48 * frame_ms);
  for (int i = 0; i < frames; ++i) {
    const double d = delay(i);
    if (d < 0) continue;
    const double sent_us = i * frame_ms * 1000.0 / rate;
    out.push_back({t0 + microseconds(int64_t(sent_us + d * 1000.0)), uint16_t(100 + i),
                   ts0 + uint32_t(i) * samples, samples, "f" + std::to_string(i)});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Sent& a, const Sent& b) { return a.arrival < b.arrival; });
  return out;
}

// Runs the buffer over the arrivals until `until` or until it has played everything, polling
// exactly when a slot is due.
std::vector<Played> run(JitterBuffer& jb, const std::vector<Sent>& in, Clock::time_point until) {
  std::vector<Played> out;
  size_t next = 0;
  for (;;) {
    const auto due = jb.next_due();
    const bool have = next < in.size();
    if (!have && (!due || *due > until || jb.queued() == 0)) break;
    if (have && (!due || in[next].arrival <= *due)) {
      const Sent& s = in[next++];
      jb.push({s.seq, s.ts, 7, s.samples, s.payload}, s.arrival);
      continue;
    }
    if (*due > until) break;
    const auto now = *due;
    jb.poll(now, [&](const JitterBuffer::Frame& f) {
      out.push_back({now, f.timestamp, f.samples, std::string(f.payload)});
    });
  }
  return out;
}

// Each slot starts when the one before ends: the stream towards the PBX is continuous in time.
// The one exception: the frame after a missing one plays with it, ahead of its slot.
void expect_steady(const std::vector<Played>& out) {
  if (out.empty()) return;
  auto slot = out[0].at;
  for (size_t i = 1; i < out.size(); ++i) {
    slot += microseconds(int64_t(out[i - 1].samples) * 1000 / 48);
    if (out[i - 1].payload.empty() && out[i].at == out[i - 1].at && !out[i].payload.empty())
      continue;  // early, after a missing frame
    ASSERT_EQ(std::chrono::duration_cast<microseconds>(out[i].at - slot).count(), 0)
        << "slot " << i;
  }
}

TEST(JitterBuffer, PutsReorderedFramesBackInOrder) {
  JitterBuffer jb;
  auto in = send(20, 20, [](int i) { return i == 5 ? 45.0 : 5.0; });  // 5 comes after 6
  ASSERT_EQ(in[5].seq, 106);
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(600));
  ASSERT_EQ(out.size(), 20u);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(out[size_t(i)].payload, "f" + std::to_string(i));
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_EQ(jb.counters().missing, 0u);
  expect_steady(out);
}

TEST(JitterBuffer, DropsAndCountsDuplicates) {
  JitterBuffer jb;
  auto in = send(10, 20, [](int) { return 5.0; });
  const Sent three = in[3], two = in[2];
  in.insert(in.begin() + 4, three);  // frame 3 twice in a row
  in.push_back(two);                 // and frame 2 again after it has played
  in.back().arrival = in[in.size() - 2].arrival;
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(400));
  ASSERT_EQ(out.size(), 10u);
  EXPECT_EQ(out[3].payload, "f3");
  EXPECT_EQ(out[4].payload, "f4");
  EXPECT_EQ(jb.counters().duplicates, 2u);
  EXPECT_EQ(jb.counters().played, 10u);
}

TEST(JitterBuffer, ALostFrameIsAMissingSlotAtItsTime) {
  JitterBuffer jb;
  const auto in = send(10, 60, [](int i) { return i == 4 ? -1.0 : 2.0; });
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(800));
  ASSERT_EQ(out.size(), 10u);
  EXPECT_TRUE(out[4].payload.empty());
  EXPECT_EQ(out[4].samples, 2880u);
  EXPECT_EQ(out[4].ts, 1000u + 4 * 2880);
  // Its slot is where frame 4 would have played: 4 frames after the first one.
  EXPECT_EQ(out[4].at - out[0].at, milliseconds(240));
  // The frame after it goes at once (the relay conceals the gap when it comes), its own slot
  // then passes without anything, and frame 6 plays in its slot.
  EXPECT_EQ(out[5].payload, "f5");
  EXPECT_EQ(out[5].at, out[4].at);
  EXPECT_EQ(out[6].at - out[0].at, milliseconds(360));
  EXPECT_EQ(jb.counters().missing, 1u);
  EXPECT_EQ(jb.counters().early, 1u);
  expect_steady(out);
}

TEST(JitterBuffer, APacketAfterItsSlotIsLateAndTheTargetGrows) {
  JitterBuffer jb;
  // Frame 6 comes 150 ms late: its slot has been played as missing by then.
  const auto in = send(40, 20, [](int i) { return i == 6 ? 152.0 : 2.0; });
  const auto before = jb.target();
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(1200));
  EXPECT_EQ(jb.counters().late, 1u);
  EXPECT_TRUE(out[6].payload.empty());
  EXPECT_EQ(out[6].ts, 1000u + 6 * 960);
  // What came that late is now covered (up to the ceiling), by slots added, not by a pause.
  EXPECT_GE(jb.target(), milliseconds(150));
  EXPECT_GT(jb.target(), before);
  EXPECT_GE(jb.counters().inserted, 1u);
  expect_steady(out);
}

// 40 ms of uniform jitter (packets reorder at 20 ms frames): after the start nothing is late and
// nothing is missing, and the slots keep an exact pace.
void steady_under_jitter(int frame_ms) {
  JitterBuffer jb;
  std::mt19937 rng{uint32_t(frame_ms)};
  std::uniform_real_distribution<double> jitter(0, 40);
  const int frames = 60000 / frame_ms;
  const auto in = send(frames, frame_ms, [&](int) { return 10 + jitter(rng); });
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(60000 + 300));
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_LE(jb.counters().missing, 2u) << "slots added while the target grew";
  EXPECT_EQ(jb.counters().played, uint64_t(frames));
  EXPECT_GE(jb.jitter_ms(), 10.0);
  EXPECT_LE(jb.jitter_ms(), 20.0);
  EXPECT_GE(jb.target(), milliseconds(50));
  EXPECT_LE(jb.delay(), milliseconds(40 + 10 + frame_ms + 20 + frame_ms));
  expect_steady(out);
}

TEST(JitterBuffer, SteadyUnder40msJitterWith60msFrames) {
  steady_under_jitter(60);
}

TEST(JitterBuffer, SteadyUnder40msJitterWith20msFrames) {
  steady_under_jitter(20);
}

// A sender's clock 0.1 % off ours for 10 minutes: the buffer skips (fast) or adds (slow) a frame
// now and then, its delay stays within its bounds, and the stream keeps our clock's pace.
void bounded_with_skew(double rate) {
  JitterBuffer jb;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> jitter(0, 20);
  const int frames = int(600000 / 60 * rate);
  const auto in = send(
      frames, 60, [&](int) { return 10 + jitter(rng); }, rate);
  std::vector<Played> out;
  size_t next = 0;
  int64_t worst_delay = 0, least_delay = 1 << 30;
  // By hand, to watch the delay on the way.
  for (;;) {
    const auto due = jb.next_due();
    if (next < in.size() && (!due || in[next].arrival <= *due)) {
      const Sent& s = in[next++];
      jb.push({s.seq, s.ts, 7, s.samples, s.payload}, s.arrival);
      continue;
    }
    if (next >= in.size()) break;
    jb.poll(*due, [&](const JitterBuffer::Frame& f) {
      out.push_back({*due, f.timestamp, f.samples, std::string(f.payload)});
    });
    if (*due > Clock::time_point{} + std::chrono::seconds(10)) {
      worst_delay = std::max<int64_t>(worst_delay, jb.delay().count());
      least_delay = std::min<int64_t>(least_delay, jb.delay().count());
    }
  }
  expect_steady(out);
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_LE(worst_delay, 200 + 60);
  EXPECT_GE(least_delay, 20);
  // 600 ms of difference over the 10 minutes: about 10 frames of 60 ms.
  const auto& c = jb.counters();
  if (rate > 1) {
    EXPECT_GE(c.skipped, 8u);
    EXPECT_LE(c.skipped, 12u);
  } else {
    EXPECT_GE(c.inserted, 8u);
    EXPECT_LE(c.inserted, 13u);
  }
  // expect_steady above: the slots played cover the wall-clock time, to the sample.
  EXPECT_LE(jb.queued(), 6u);
}

TEST(JitterBuffer, SenderClockFastByAThousandthStaysBounded) {
  bounded_with_skew(1.001);
}

TEST(JitterBuffer, SenderClockSlowByAThousandthStaysBounded) {
  bounded_with_skew(0.999);
}

TEST(JitterBuffer, AfterASilenceTheNextPacketStartsOverWithoutAPause) {
  JitterBuffer jb;
  // 1 s of frames, 2 s of nothing (muted), then frames whose timestamps went on meanwhile.
  auto in = send(50, 20, [](int i) { return i >= 20 && i < 20 + 100 ? -1.0 : 3.0; });
  auto more = send(
      30, 20, [](int) { return 3.0; }, 1.0, 1000 + 120 * 960);
  for (auto& s : more) {
    s.arrival += milliseconds(2400);
    s.seq = uint16_t(s.seq + 120);
  }
  in.erase(std::remove_if(in.begin(), in.end(), [](const Sent& s) { return s.seq >= 120; }),
           in.end());
  in.insert(in.end(), more.begin(), more.end());
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(3300));
  expect_steady(out);
  EXPECT_EQ(jb.counters().restarts, 1u);
  EXPECT_EQ(jb.counters().late, 0u);
  EXPECT_EQ(jb.counters().played, 20u + 30u);
  // The first frame after the silence plays a target's delay after it came (or a slot less:
  // it goes with the last missing slot before it).
  int found = 0;
  for (const auto& p : out) {
    if (p.payload != "f0" || p.ts == 1000u) continue;
    ++found;
    const auto waited = p.at - (Clock::time_point{} + milliseconds(2400 + 3));
    EXPECT_LE(waited, jb.target());
    EXPECT_GE(waited, jb.target() - milliseconds(20));
  }
  EXPECT_EQ(found, 1);
}

// The path's delay steps up by 300 ms mid-call, beyond the 200 ms ceiling (a new route, a
// reflector or a host under load): a few packets are late, then the playout starts over on the
// new delay instead of dropping everything until the old fast packets leave the window (8 s),
// and the slots keep their pace through it.
TEST(JitterBuffer, ADelayStepBeyondTheCeilingStartsThePlayoutOverOnTheNewDelay) {
  JitterBuffer jb;
  const int frames = 300;  // 6 s of 20 ms frames, the step after 2 s
  const auto in = send(frames, 20, [](int i) { return i < 100 ? 5.0 : 305.0; });
  const auto out = run(jb, in, Clock::time_point{} + milliseconds(6000 + 800));
  expect_steady(out);
  EXPECT_EQ(jb.counters().resyncs, 1u);
  EXPECT_EQ(jb.counters().restarts, 1u);
  EXPECT_LE(jb.counters().late, 2u);
  EXPECT_GE(jb.counters().played, uint64_t(frames - 3));
  // The last frames all played, in order.
  ASSERT_GE(out.size(), 20u);
  int last = -1;
  for (const auto& p : out) {
    if (p.payload.empty()) continue;
    const int n = std::stoi(p.payload.substr(1));
    EXPECT_GT(n, last);
    last = n;
  }
  EXPECT_EQ(last, frames - 1);
}

// Isolated late packets (jitter beyond the target now and then) do not start the playout over.
TEST(JitterBuffer, LatePacketsWithOnTimeOnesBetweenThemAreOnlyLate) {
  JitterBuffer jb;
  const auto in = send(200, 20, [](int i) { return i % 25 == 12 ? 400.0 : 5.0; });
  run(jb, in, Clock::time_point{} + milliseconds(4000 + 800));
  EXPECT_EQ(jb.counters().resyncs, 0u);
  EXPECT_GE(jb.counters().late, 5u);
}

TEST(JitterBuffer, ANewSourceStartsOverAndMemoryIsBounded) {
  JitterBuffer::Options o;
  o.capacity = 8;
  JitterBuffer jb(o);
  const Clock::time_point t{};
  EXPECT_EQ(jb.push({1, 5000, 7, 960, "a"}, t), JitterBuffer::Pushed::Restarted);
  // A burst of 20 frames at once: 8 are held, the rest dropped and counted.
  for (uint16_t i = 1; i < 20; ++i)
    jb.push({uint16_t(1 + i), 5000 + 960u * i, 7, 960, "b"}, t);
  EXPECT_EQ(jb.queued(), 8u);
  EXPECT_EQ(jb.counters().skipped, 12u);
  // Another SSRC: its timeline replaces the old one.
  EXPECT_EQ(jb.push({900, 77, 8, 960, "c"}, t + milliseconds(5)), JitterBuffer::Pushed::Restarted);
  EXPECT_EQ(jb.queued(), 1u);
  // A jump of the timestamps by minutes, too.
  EXPECT_EQ(jb.push({901, 77 + 48000 * 120, 8, 960, "d"}, t + milliseconds(25)),
            JitterBuffer::Pushed::Restarted);
}

}  // namespace
