#include "telegram/calls/signaling.hpp"

#include <gtest/gtest.h>

#include <map>
#include <queue>
#include <random>

#include "capture.hpp"

namespace esg::telegram::calls {

class SignalingChannelTest {
 public:
  static void set_counter(SignalingChannel& c, uint32_t counter) { c.counter_ = counter; }
};

namespace {

using namespace std::chrono_literals;
using test::Capture;
using test::capture_names;
using test::CapturedBlob;
using test::load_capture;

constexpr uint32_t kAck = 0x40000000u;  // "requires ack"
const TimePoint t0 = TimePoint() + 1000h;

std::string u32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}
// Records as §2.2 lays them out.
std::string msg(uint32_t counter, const std::string& json, uint32_t flags = kAck) {
  return u32(counter | flags) + '\x7f' + u32(static_cast<uint32_t>(json.size())) + json;
}
std::string ack(uint32_t counter, uint32_t flags = kAck) {
  return u32(counter | flags) + '\xff';
}
std::string empty(uint32_t counter) {
  return u32(counter) + '\xfe';
}

std::string test_key() {
  std::mt19937 rng(42);
  std::string key(kCallKeySize, '\0');
  for (char& c : key)
    c = static_cast<char>(rng());
  return key;
}

// One channel, with what it sent and delivered; `peer` encrypts and decrypts as the other side.
struct Side {
  Side(const std::string& key, bool outgoing) : channel(key, outgoing), peer(key, !outgoing) {
    channel.send = [this](std::string b) { sent.push_back(std::move(b)); };
    channel.on_message = [this](std::string m) { delivered.push_back(std::move(m)); };
  }
  // The plaintext of the blob sent `i`-th.
  std::string plain(size_t i) const { return peer.decrypt(sent.at(i)).value_or("<undecryptable>"); }
  // Hands the channel a packet built by the peer.
  void receive(const std::string& plaintext, TimePoint now) {
    channel.on_blob(peer.encrypt(plaintext), now);
  }

  SignalingChannel channel;
  SignalingCipher peer;
  std::vector<std::string> sent;
  std::vector<std::string> delivered;
};

// ---- against the captured tgcalls calls

TEST(SignalingChannel, DeliversEveryCapturedMessageOnceAndInOrder) {
  // The blobs each tgpeer sent, handed in order to a channel in the other's role: it delivers
  // exactly the messages that side logged as sent, although the blobs carry resends and some
  // never arrived (tgpeer_9.0.0_drops: the first three of A's and B's fourth were dropped).
  for (const std::string& name : capture_names()) {
    const Capture c = load_capture(name);
    uint64_t repeated = 0;
    for (char from : {'A', 'B'}) {
      SCOPED_TRACE(name + " from " + from);
      Side receiver(c.key, from == 'B');
      for (const CapturedBlob& b : c.blobs_of(from)) {
        if (b.relayed) receiver.channel.on_blob(b.blob, t0 + b.t);
      }
      EXPECT_EQ(receiver.delivered, c.sent_by(from));
      const auto& n = receiver.channel.counters();
      EXPECT_EQ(n.received, c.sent_by(from).size());
      EXPECT_EQ(n.undecryptable + n.malformed + n.replayed + n.oversized, 0u);
      EXPECT_FALSE(receiver.sent.empty());  // it acked them
      repeated += n.repeated;
    }
    // tgcalls resent some, and they were not delivered again.
    EXPECT_GT(repeated, 0u) << name;
  }
}

// A script of what one side did in a captured call: send its next logged message, or take one
// of the other side's blobs (by index among that side's blobs) and answer from on_message with
// its next `replies` logged messages, as tgcalls did.
struct Step {
  enum Kind { Send, Receive } kind;
  size_t blob = 0;
  size_t replies = 0;
};

// Replays `steps` as `side` and returns the blobs its channel sent.
std::vector<std::string> replay(const Capture& c, char side, const std::vector<Step>& steps) {
  Side s(c.key, side == 'A');
  const auto& mine = c.sent_by(side);
  const auto theirs = c.blobs_of(side == 'A' ? 'B' : 'A');
  size_t next = 0;
  size_t replies = 0;
  TimePoint now = t0;
  s.channel.on_message = [&](std::string) {
    for (; replies > 0; --replies)
      EXPECT_TRUE(s.channel.send_message(mine.at(next++), now));
  };
  for (const Step& step : steps) {
    if (step.kind == Step::Send) {
      EXPECT_TRUE(s.channel.send_message(mine.at(next++), now));
    } else {
      replies = step.replies;
      s.channel.on_blob(theirs.at(step.blob).blob, now);
      EXPECT_EQ(replies, 0u) << "no message came to answer";
    }
    now += 1ms;  // tgcalls sent all of these within 3 s: no resend was due
  }
  return s.sent;
}

void expect_same_as_tgcalls(const Capture& c, char side, const std::vector<Step>& steps,
                            size_t count) {
  const std::vector<std::string> ours = replay(c, side, steps);
  const auto real = c.blobs_of(side);
  ASSERT_EQ(ours.size(), count);
  const SignalingCipher reader(c.key, side != 'A');
  auto hex = [&](const std::string& blob) {
    static const char* digits = "0123456789abcdef";
    std::string out;
    for (unsigned char ch : reader.decrypt(blob).value_or("")) {
      out += digits[ch >> 4];
      out += digits[ch & 15];
    }
    return out;
  };
  for (size_t i = 0; i < count; ++i) {
    // The plaintexts first, readable in a failure; then the blobs, byte for byte.
    EXPECT_EQ(hex(ours[i]), hex(real.at(i).blob)) << side << " blob " << i;
    EXPECT_TRUE(ours[i] == real.at(i).blob) << side << " blob " << i;
  }
}

TEST(SignalingChannel, BuildsTheSamePacketsAsTgcallsInTheSameState) {
  // Where tgcalls' packets follow from the same counters and the same inputs (it batches the
  // acks of blobs that arrive together, and sends empty packets that this channel skips, so the
  // replays take the blobs it saw last), its blobs and ours are byte for byte the same.
  const Step S{Step::Send};
  auto R = [](size_t blob, size_t replies = 0) { return Step{Step::Receive, blob, replies}; };
  {
    const Capture c = load_capture("tgpeer_9.0.0.json");
    // B: two candidates (the second rides with the unacked first), an ack of A's InitialSetup,
    // acks of A's candidates, its own InitialSetup behind its unacked candidates, acks again;
    // A's packet of acks; A's offer, answered at once (acks ride with the answer), then B's
    // offer behind the unacked answer.
    expect_same_as_tgcalls(c, 'B', {S, S, R(0), R(1), S, R(2), R(3), R(4), R(5, 2)}, 8);
    // A: InitialSetup, two candidates, then one packet acking both of B's candidates.
    expect_same_as_tgcalls(c, 'A', {S, S, S, R(1)}, 4);
  }
  {
    const Capture c = load_capture("tgpeer_8.0.0.json");
    // A: after B's acks, B's candidates and InitialSetup in one packet: A's offer goes out with
    // the three acks behind it.
    expect_same_as_tgcalls(c, 'A', {S, S, S, R(3), R(5, 1)}, 4);
    expect_same_as_tgcalls(c, 'B', {S, S, R(0), R(2)}, 4);
  }
}

TEST(SignalingChannel, ResendsWhenTgcallsDid) {
  // tgpeer_9.0.0_drops: A's first three blobs were lost; tgcalls resent all three messages in
  // one packet 5 s after its last send (harness clock: the blob came out at 5448 ms).
  const Capture c = load_capture("tgpeer_9.0.0_drops.json");
  const auto real = c.blobs_of('A');
  Side a(c.key, true);
  for (size_t i = 0; i < 3; ++i)
    ASSERT_TRUE(a.channel.send_message(c.sent_a.at(i), t0 + real[i].t));
  ASSERT_TRUE(a.channel.next_tick().has_value());
  const auto resend_at = *a.channel.next_tick() - t0;
  EXPECT_EQ(resend_at, real[2].t + 5000ms);
  const CapturedBlob& real_resend = real.at(5);  // empty#8 with #1, #2, #4
  const auto off_by =
      std::chrono::duration_cast<std::chrono::milliseconds>(resend_at - real_resend.t);
  EXPECT_LE(std::abs(off_by.count()), 100);
  a.channel.tick(t0 + resend_at);
  ASSERT_EQ(a.sent.size(), 4u);
  EXPECT_EQ(a.plain(3), empty(6) + msg(1, c.sent_a[0]) + msg(2, c.sent_a[1]) + msg(4, c.sent_a[2]));
  // The same records as tgcalls' resend (its counter is 8: it also sent two packets of acks).
  const std::string theirs = a.peer.decrypt(real_resend.blob).value();
  EXPECT_EQ(theirs.substr(5), a.plain(3).substr(5));
}

// ---- §2.2 sending

TEST(SignalingChannel, FirstMessageGoesAloneAndLaterOnesRideWithTheUnacked) {
  Side s(test_key(), true);
  ASSERT_TRUE(s.channel.send_message("one", t0));
  ASSERT_EQ(s.sent.size(), 1u);
  EXPECT_EQ(s.plain(0), msg(1, "one"));
  // Step 4: #2 is queued and a service packet (its own counter, 3) carries #1 and #2.
  ASSERT_TRUE(s.channel.send_message("two", t0 + 1ms));
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(3) + msg(1, "one") + msg(2, "two"));
  EXPECT_EQ(s.channel.unacknowledged(), 2u);
  // Acked: the next message goes alone again, with the next counter.
  s.receive(empty(1) + ack(1) + ack(2), t0 + 2ms);
  EXPECT_EQ(s.channel.unacknowledged(), 0u);
  EXPECT_EQ(s.sent.size(), 2u);  // a packet of acks alone needs no ack
  ASSERT_TRUE(s.channel.send_message("three", t0 + 3ms));
  EXPECT_EQ(s.plain(2), msg(4, "three"));
  EXPECT_EQ(s.channel.counters().sent, 3u);
}

TEST(SignalingChannel, ResendsEveryFiveSecondsUntilAcked) {
  Side s(test_key(), false);
  ASSERT_TRUE(s.channel.send_message("m", t0));
  EXPECT_EQ(s.channel.next_tick(), t0 + 5000ms);
  s.channel.tick(t0 + 4999ms);
  EXPECT_EQ(s.sent.size(), 1u);
  s.channel.tick(t0 + 5000ms);
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(2) + msg(1, "m"));
  EXPECT_EQ(s.channel.counters().resent, 1u);
  EXPECT_EQ(s.channel.next_tick(), t0 + 10000ms);
  s.channel.tick(t0 + 10000ms);
  EXPECT_EQ(s.plain(2), empty(3) + msg(1, "m"));
  // An ack stops it.
  s.receive(empty(1) + ack(1), t0 + 11000ms);
  EXPECT_EQ(s.channel.next_tick(), std::nullopt);
  s.channel.tick(t0 + 20000ms);
  EXPECT_EQ(s.sent.size(), 3u);
}

TEST(SignalingChannel, ResendsOnlyWhatWasSentThreeSecondsAgo) {
  Side s(test_key(), true);
  ASSERT_TRUE(s.channel.send_message("m", t0));
  // The peer's message 2.9 s later is acked at once; #1 went out 2.9 s ago and waits.
  s.receive(msg(1, "p1"), t0 + 2900ms);
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(2) + ack(1));
  // At 3 s it rides along with the next ack.
  s.receive(msg(2, "p2"), t0 + 3000ms);
  ASSERT_EQ(s.sent.size(), 3u);
  EXPECT_EQ(s.plain(2), empty(3) + ack(2) + msg(1, "m"));
  // The resend timer restarted with that packet.
  EXPECT_EQ(s.channel.next_tick(), t0 + 8000ms);
}

TEST(SignalingChannel, ARecordThatDoesNotFitWaitsAndStopsTheList) {
  Side s(test_key(), true);
  const std::string big(SignalingChannel::kMaxMessageSize - 100, 'b');
  ASSERT_TRUE(s.channel.send_message("a", t0));
  ASSERT_TRUE(s.channel.send_message(big, t0));
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(3) + msg(1, "a") + msg(2, big));
  // #4 does not fit behind #1 and #2: the packet carries those two, #4 waits.
  ASSERT_TRUE(s.channel.send_message(std::string(200, 'c'), t0 + 1ms));
  ASSERT_EQ(s.sent.size(), 3u);
  EXPECT_EQ(s.plain(2), empty(5) + msg(1, "a") + msg(2, big));
  EXPECT_LE(s.sent[2].size(), SignalingChannel::kMaxPacketSize);
  // Once #1 and #2 are acked, the resend timer sends #4 (never sent, so due at once).
  s.receive(empty(1) + ack(1) + ack(2), t0 + 2ms);
  EXPECT_EQ(s.channel.next_tick(), t0 + 1ms + 5000ms);
  s.channel.tick(t0 + 5001ms);
  ASSERT_EQ(s.sent.size(), 4u);
  EXPECT_EQ(s.plain(3), empty(6) + msg(4, std::string(200, 'c')));
}

TEST(SignalingChannel, RefusesWhatCannotBeSent) {
  Side s(test_key(), true);
  // The largest message fits a service packet with the empty record: 16384 bytes in all.
  const std::string largest(SignalingChannel::kMaxMessageSize, 'x');
  EXPECT_FALSE(s.channel.send_message(largest + "x", t0));
  ASSERT_TRUE(s.channel.send_message(largest, t0));
  EXPECT_EQ(s.sent.back().size(), SignalingChannel::kMaxPacketSize - 5);
  s.channel.tick(t0 + 5000ms);  // resent behind an empty record: exactly 16 KiB
  EXPECT_EQ(s.sent.back().size(), SignalingChannel::kMaxPacketSize);
  EXPECT_EQ(s.plain(1), empty(2) + msg(1, largest));
}

TEST(SignalingChannel, RefusesMoreThan65536Unacknowledged) {
  Side s(test_key(), true);
  s.channel.send = nullptr;  // nobody listens: nothing is ever acked
  // 400-byte messages: each send builds a service packet of the 40 oldest that fit.
  const std::string m(400 - 9, 'm');
  for (size_t i = 0; i < SignalingChannel::kMaxUnacknowledged; ++i) {
    ASSERT_TRUE(s.channel.send_message(m, t0)) << i;
  }
  EXPECT_FALSE(s.channel.send_message(m, t0));
  EXPECT_EQ(s.channel.unacknowledged(), SignalingChannel::kMaxUnacknowledged);
  // Each service packet stays within 16 KiB, as full as the records allow.
  std::string last;
  s.channel.send = [&](std::string b) { last = std::move(b); };
  s.channel.tick(t0 + 5000ms);
  EXPECT_EQ(last.size(), kMsgKeySize + 5 + 40 * 400);
}

TEST(SignalingChannel, StopsSendingWhenTheCounterIsUsedUp) {
  // Counters never pass 2^30-1 (the 30 bits of seq).
  constexpr uint32_t kMax = SignalingChannel::kMaxCounter;
  Side s(test_key(), true);
  SignalingChannelTest::set_counter(s.channel, kMax - 1);
  ASSERT_TRUE(s.channel.send_message("last", t0));
  EXPECT_EQ(s.plain(0), msg(kMax, "last"));
  // Another message would need its own counter and a service packet's.
  EXPECT_FALSE(s.channel.send_message("more", t0));
  // No counter is left for a resend either: the channel is spent and asks for no more ticks.
  EXPECT_EQ(s.channel.next_tick(), std::nullopt);
  s.channel.tick(t0 + 5000ms);
  s.receive(msg(1, "in"), t0 + 5001ms);  // still delivered, though it cannot be acked
  EXPECT_EQ(s.delivered, std::vector<std::string>{"in"});
  EXPECT_EQ(s.sent.size(), 1u);
  EXPECT_EQ(s.channel.next_tick(), std::nullopt);
}

TEST(SignalingChannel, WithAKeyOfAnotherSizeSendsAndDeliversNothing) {
  SignalingChannel c(std::string(255, 'k'), true);
  int sent = 0;
  c.send = [&](std::string) { ++sent; };
  EXPECT_FALSE(c.send_message("m", t0));
  c.on_blob(std::string(64, 'x'), t0);
  EXPECT_EQ(sent, 0);
  EXPECT_EQ(c.counters().undecryptable, 1u);
  EXPECT_FALSE(SignalingCipher(std::string(255, 'k'), true).valid());
  EXPECT_EQ(SignalingCipher(std::string(255, 'k'), true).encrypt("abcde"), "");
}

// ---- §2.2 acks

TEST(SignalingChannel, AcksANewMessageAtOnceWithItsSeqCopied) {
  Side s(test_key(), false);
  s.receive(msg(7, "hello"), t0);
  EXPECT_EQ(s.delivered, std::vector<std::string>{"hello"});
  ASSERT_EQ(s.sent.size(), 1u);
  EXPECT_EQ(s.plain(0), empty(1) + ack(7));
  // Two new ones in one packet: one ack packet for both.
  s.receive(empty(8) + msg(9, "a") + msg(10, "b"), t0 + 1ms);
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(2) + ack(9) + ack(10));
  EXPECT_EQ(s.channel.next_tick(), std::nullopt);
}

TEST(SignalingChannel, AcksPiggyBackOnAnAnswerSentFromOnMessage) {
  Side s(test_key(), true);
  s.channel.on_message = [&](std::string m) {
    s.delivered.push_back(m);
    EXPECT_TRUE(s.channel.send_message("re:" + m, t0));
  };
  s.receive(msg(1, "q"), t0);
  ASSERT_EQ(s.sent.size(), 1u);  // no separate ack packet
  EXPECT_EQ(s.plain(0), msg(1, "re:q") + ack(1));
}

TEST(SignalingChannel, AcksGoBeforeResendsInAServicePacket) {
  Side s(test_key(), true);
  ASSERT_TRUE(s.channel.send_message("mine", t0));
  s.receive(msg(1, "theirs"), t0 + 4000ms);
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(2) + ack(1) + msg(1, "mine"));
}

TEST(SignalingChannel, RepeatsAreAckedAgainLaterButNotDelivered) {
  Side s(test_key(), false);
  s.receive(msg(1, "x"), t0);
  ASSERT_EQ(s.sent.size(), 1u);
  // The peer did not get the ack and resends #1 in a service packet: not delivered again, and
  // acked within 5 s rather than at once.
  s.receive(empty(2) + msg(1, "x"), t0 + 5000ms);
  EXPECT_EQ(s.delivered.size(), 1u);
  EXPECT_EQ(s.sent.size(), 1u);
  EXPECT_EQ(s.channel.counters().repeated, 1u);
  EXPECT_EQ(s.channel.next_tick(), t0 + 10000ms);
  // Another repeat does not postpone it.
  s.receive(empty(3) + msg(1, "x"), t0 + 7000ms);
  EXPECT_EQ(s.channel.next_tick(), t0 + 10000ms);
  s.channel.tick(t0 + 10000ms);
  ASSERT_EQ(s.sent.size(), 2u);
  EXPECT_EQ(s.plain(1), empty(2) + ack(1));  // once per distinct seq
  // A repeat together with a new message: all acked at once.
  s.receive(empty(4) + msg(1, "x") + msg(5, "y"), t0 + 11000ms);
  EXPECT_EQ(s.delivered, (std::vector<std::string>{"x", "y"}));
  ASSERT_EQ(s.sent.size(), 3u);
  EXPECT_EQ(s.plain(2), empty(3) + ack(1) + ack(5));
}

TEST(SignalingChannel, DeliversRecordsWithoutTheAckBitOnceThroughThePacketWindow) {
  Side s(test_key(), false);
  s.receive(msg(1, "a", 0), t0);
  s.receive(empty(2) + msg(3, "b", 0) + msg(3, "b", 0), t0);
  s.receive(empty(4) + msg(1, "a", 0), t0);  // counter 1 was the first packet's
  EXPECT_EQ(s.delivered, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(s.sent.empty());  // nothing asked for an ack
  // A single-message packet (bit 31) is one record.
  s.receive(msg(5, "c", 0x80000000u), t0);
  EXPECT_EQ(s.delivered.back(), "c");
  s.receive(msg(6, "d", 0x80000000u) + ack(1), t0);
  EXPECT_EQ(s.channel.counters().malformed, 1u);
}

// ---- §2.3 duplicates

TEST(SignalingChannel, DropsAPacketSeenBeforeOrTooOld) {
  Side s(test_key(), false);
  const std::string first = s.peer.encrypt(msg(1, "one"));
  s.channel.on_blob(first, t0);
  s.channel.on_blob(first, t0);  // TDLib delivered it twice
  EXPECT_EQ(s.delivered.size(), 1u);
  EXPECT_EQ(s.channel.counters().replayed, 1u);
  EXPECT_EQ(s.sent.size(), 1u);  // a dropped packet is not acked again
  // Counters may arrive out of order within 64 of the largest.
  s.receive(empty(100), t0);
  s.receive(msg(37, "late"), t0);  // 37 + 64 > 100
  EXPECT_EQ(s.delivered.back(), "late");
  s.receive(msg(36, "too late"), t0);  // 36 + 64 <= 100
  EXPECT_EQ(s.delivered.back(), "late");
  EXPECT_EQ(s.channel.counters().replayed, 2u);
}

TEST(SignalingChannel, ForgetsDeliveredCountersBelowThePacketsFirstAckRequiringRecord) {
  Side s(test_key(), false);
  s.receive(msg(1, "one"), t0);
  s.receive(msg(2, "two"), t0);
  // The sender resends oldest first: a packet starting at #3 means #1 and #2 were acked.
  s.receive(empty(4) + msg(3, "three"), t0);
  // An old packet that the window still takes (never seen: its counter 1 was the first
  // message's; here a delayed copy with a fresh counter) must not deliver #1 again.
  s.receive(empty(5) + msg(1, "one"), t0);
  EXPECT_EQ(s.delivered, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(s.channel.counters().repeated, 1u);
}

// ---- hostile input

TEST(SignalingChannel, DropsMalformedPacketsWhole) {
  Side s(test_key(), false);
  const std::vector<std::string> bad = {
      u32(1 | kAck) + '\x7e',                               // unknown type
      msg(1, "x") + '\x01',                                 // 1 byte left over
      msg(1, "x") + std::string("\x00\x00\x00", 3),         // 3 bytes left over
      msg(1, "x") + u32(2) + '\xfe',                        // empty not first
      ack(1) + msg(2, "x"),                                 // ack first
      u32(1 | kAck) + '\x7f' + u32(10) + "short",           // truncated body
      u32(1 | kAck) + '\x7f' + std::string("\x00\x00", 2),  // truncated length
      empty(1) + msg(2, "ok") + u32(3) + '\x55',            // bad type after a good record
      empty(1) + msg(2, "single", 0x80000000u | kAck),      // single-message not alone
  };
  for (const std::string& p : bad)
    s.receive(p, t0);
  EXPECT_TRUE(s.delivered.empty());
  EXPECT_TRUE(s.sent.empty());
  EXPECT_EQ(s.channel.counters().malformed, bad.size());
  // None of them used up counter 1: a good packet with it still goes through.
  s.receive(msg(1, "good"), t0);
  EXPECT_EQ(s.delivered, std::vector<std::string>{"good"});
}

TEST(SignalingChannel, CountsOversizedAndUndecryptableBlobs) {
  Side s(test_key(), false);
  s.channel.on_blob(std::string(20, 'x'), t0);
  s.channel.on_blob(std::string(kMaxIncomingPacketSize + 1, 'x'), t0);
  s.channel.on_blob(std::string(100, 'x'), t0);
  // Our own direction's encryption is not the peer's.
  s.channel.on_blob(SignalingCipher(test_key(), false).encrypt(msg(1, "x")), t0);
  const auto& n = s.channel.counters();
  EXPECT_EQ(n.oversized, 2u);
  EXPECT_EQ(n.undecryptable, 2u);
  EXPECT_TRUE(s.delivered.empty());
}

TEST(SignalingChannel, SurvivesRandomBytesTruncationsAndBitFlips) {
  // Fuzz-style: random blobs, every truncation and bit flip of a valid one, and random
  // plaintexts behind a valid msg_key (so the record parser sees them). Nothing is delivered
  // but the valid blob, and every drop is counted.
  Side s(test_key(), false);
  std::mt19937 rng(7);
  auto bytes = [&](size_t n) {
    std::string b(n, '\0');
    for (char& c : b)
      c = static_cast<char>(rng());
    return b;
  };
  uint64_t inputs = 0;
  for (int i = 0; i < 2000; ++i, ++inputs) {
    s.channel.on_blob(bytes(rng() % 200), t0);
  }
  const std::string valid =
      s.peer.encrypt(empty(1) + msg(2, "{\"@type\":\"Candidates\"}") + ack(5) + msg(3, "z", 0));
  for (size_t n = 0; n < valid.size(); ++n, ++inputs)
    s.channel.on_blob(valid.substr(0, n), t0);
  for (size_t bit = 0; bit < valid.size() * 8; ++bit, ++inputs) {
    std::string b = valid;
    b[bit / 8] = static_cast<char>(b[bit / 8] ^ (1 << (bit % 8)));
    s.channel.on_blob(b, t0);
  }
  EXPECT_TRUE(s.delivered.empty());
  // Random plaintexts, and random record sequences, encrypted as the peer would.
  const char types[] = {'\x7f', '\xff', '\xfe', '\x00'};
  for (int i = 0; i < 3000; ++i) {
    std::string p;
    if (i % 2) {
      p = bytes(5 + rng() % 60);
    } else {
      for (int r = 0, n = 1 + static_cast<int>(rng() % 5); r < n; ++r) {
        p += u32(static_cast<uint32_t>(rng()) & 0xC00000FFu) + types[rng() % 4];
        if (p.back() == '\x7f') {
          const uint32_t len = rng() % 8;
          p += u32(rng() % 4 == 0 ? len + 3 : len) + bytes(len);
        }
      }
    }
    s.receive(p, t0 + std::chrono::milliseconds(i));
  }
  // And the valid blob itself once.
  s.channel.on_blob(valid, t0 + 10s);
  const auto& n = s.channel.counters();
  EXPECT_EQ(n.oversized + n.undecryptable, inputs);
  EXPECT_GT(n.malformed, 0u);
  EXPECT_GT(n.replayed, 0u);
  EXPECT_GT(n.received, 0u);
  for (const std::string& m : s.delivered)
    EXPECT_LE(m.size(), 8u);
}

// ---- two channels over a lossy, reordering, duplicating carrier

struct Network {
  struct InFlight {
    TimePoint at;
    uint64_t order;
    int to;
    std::string blob;
    bool operator>(const InFlight& o) const {
      return std::tie(at, order) > std::tie(o.at, o.order);
    }
  };
  std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> queue;
  std::mt19937 rng{2026};
  double loss = 0, duplicate = 0;
  int max_delay_ms = 0;
  uint64_t order = 0;
  uint64_t lost = 0, duplicated = 0;

  void carry(int to, std::string blob, TimePoint now) {
    std::uniform_real_distribution<double> u(0, 1);
    if (u(rng) < loss) {
      ++lost;
      return;
    }
    const int copies = u(rng) < duplicate ? 2 : 1;
    duplicated += copies - 1;
    for (int i = 0; i < copies; ++i) {
      const auto delay = std::chrono::milliseconds(max_delay_ms ? rng() % max_delay_ms : 0);
      queue.push({now + delay, order++, to, blob});
    }
  }
};

void run_pair(double loss, double duplicate, int max_delay_ms, int messages) {
  const std::string key = test_key();
  Side a(key, true);
  Side b(key, false);
  Network net;
  net.loss = loss;
  net.duplicate = duplicate;
  net.max_delay_ms = max_delay_ms;
  TimePoint now = t0;
  a.channel.send = [&](std::string blob) { net.carry(1, std::move(blob), now); };
  b.channel.send = [&](std::string blob) { net.carry(0, std::move(blob), now); };
  // Each side sends its messages at random moments over the first minute; one in five answers
  // a message as soon as it arrives.
  std::vector<std::string> from_a, from_b;
  std::map<TimePoint, std::pair<int, std::string>> plan;
  for (int i = 0; i < messages; ++i) {
    for (int side = 0; side < 2; ++side) {
      std::string m =
          std::string(side ? "b" : "a") + std::to_string(i) + std::string(net.rng() % 300, '.');
      (side ? from_b : from_a).push_back(m);
      plan.emplace(t0 + std::chrono::milliseconds(net.rng() % 60000) +
                       std::chrono::microseconds(i * 2 + side),
                   std::make_pair(side, std::move(m)));
    }
  }
  std::vector<std::string> planned_a, planned_b;
  for (const auto& [at, what] : plan)
    (what.first ? planned_b : planned_a).push_back(what.second);
  std::vector<std::string> answers_a, answers_b;
  b.channel.on_message = [&](std::string m) {
    b.delivered.push_back(m);
    if (b.delivered.size() % 5 == 0) {
      answers_b.push_back("re:" + m);
      ASSERT_TRUE(b.channel.send_message(answers_b.back(), now));
    }
  };
  Side* sides[2] = {&a, &b};
  for (int steps = 0; steps < 1000000; ++steps) {
    std::optional<TimePoint> next;
    auto consider = [&](std::optional<TimePoint> t) {
      if (t && (!next || *t < *next)) next = t;
    };
    if (!plan.empty()) consider(plan.begin()->first);
    if (!net.queue.empty()) consider(net.queue.top().at);
    consider(a.channel.next_tick());
    consider(b.channel.next_tick());
    if (!next) break;
    ASSERT_GE(*next, now);
    now = *next;
    if (!plan.empty() && plan.begin()->first == now) {
      auto [side, m] = plan.begin()->second;
      plan.erase(plan.begin());
      ASSERT_TRUE(sides[side]->channel.send_message(m, now));
    } else if (!net.queue.empty() && net.queue.top().at == now) {
      Network::InFlight f = net.queue.top();
      net.queue.pop();
      sides[f.to]->channel.on_blob(f.blob, now);
    } else {
      a.channel.tick(now);
      b.channel.tick(now);
    }
  }
  std::vector<std::string> expect_at_a = planned_b;
  // b's answers are interleaved with its planned messages in sending order; compare as a whole.
  EXPECT_EQ(a.delivered.size(), planned_b.size() + answers_b.size());
  std::vector<std::string> a_planned_part, a_answers_part;
  for (const std::string& m : a.delivered) {
    (m.rfind("re:", 0) == 0 ? a_answers_part : a_planned_part).push_back(m);
  }
  EXPECT_EQ(a_planned_part, planned_b);
  EXPECT_EQ(a_answers_part, answers_b);
  EXPECT_EQ(b.delivered, planned_a);
  EXPECT_EQ(a.channel.unacknowledged() + b.channel.unacknowledged(), 0u);
  if (loss > 0) {
    EXPECT_GT(net.lost, 0u);
    EXPECT_GT(a.channel.counters().resent + b.channel.counters().resent, 0u);
  }
  if (duplicate > 0) {
    EXPECT_GT(a.channel.counters().replayed + b.channel.counters().replayed, 0u);
  }
  EXPECT_EQ(a.channel.counters().malformed + b.channel.counters().malformed, 0u);
}

TEST(SignalingChannel, PairDeliversEverythingOnceInOrderOverAPerfectCarrier) {
  run_pair(0, 0, 0, 50);
}

TEST(SignalingChannel, PairDeliversEverythingOnceInOrderDespiteLossReorderingAndDuplicates) {
  run_pair(0.3, 0.2, 3000, 200);
}

TEST(SignalingChannel, PairDeliversEverythingOnceInOrderOverAVeryBadCarrier) {
  run_pair(0.6, 0.5, 9000, 60);
}

}  // namespace
}  // namespace esg::telegram::calls
