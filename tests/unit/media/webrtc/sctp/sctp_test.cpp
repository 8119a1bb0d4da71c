#include "media/webrtc/sctp/sctp.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace esg::media {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// From TELEGRAM-CALLS.md §3.1: what a Telegram peer sends when the channel opens.
constexpr const char* kMediaState =
    R"({"@type":"MediaState","lowBattery":false,"muted":false,"screencastState":"inactive",)"
    R"("videoRotation":0,"videoState":"inactive"})";

// The chunks of an SCTP packet (RFC 9260 §3: they follow the 12-byte common header, each with
// its type, flags and length, padded to 4 bytes).
constexpr int kChunkData = 0;
constexpr int kChunkInit = 1;
struct Chunk {
  int type;
  int flags;
  std::string_view value;  // after the chunk header
};
std::vector<Chunk> chunks(std::string_view packet) {
  std::vector<Chunk> out;
  for (size_t at = 12; at + 4 <= packet.size();) {
    const size_t length = (uint8_t(packet[at + 2]) << 8) | uint8_t(packet[at + 3]);
    if (length < 4 || at + length > packet.size()) break;
    out.push_back(
        {uint8_t(packet[at]), uint8_t(packet[at + 1]), packet.substr(at + 4, length - 4)});
    at += (length + 3) & ~size_t(3);
  }
  return out;
}
bool has_chunk(std::string_view packet, int type) {
  for (const Chunk& c : chunks(packet))
    if (c.type == type) return true;
  return false;
}
uint32_t be(std::string_view b, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v = (v << 8) | uint8_t(b[at + i]);
  return v;
}

// usrsctp's timers run on real time: the loop runs until `done` or `limit`.
bool run_until(asio::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds limit = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.run_for(5ms);
  }
  return true;
}

void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

// What one side's channel did, kept outside it so that the test still sees it when the channel
// is gone; anything it does after the test destroyed it is counted in after_gone.
struct Log {
  bool gone = false;
  int after_gone = 0;
  int opened = 0;
  int closed = 0;
  int open_order = 0;
  std::vector<std::string> texts;
  void event() {
    if (gone) ++after_gone;
  }
};

struct Side {
  std::unique_ptr<SctpDataChannel> channel;
  std::shared_ptr<Log> log = std::make_shared<Log>();
  int sent_packets = 0;
  std::vector<std::string> packets;  // every packet sent, lost ones too
  size_t largest_packet = 0;
  int lost_packets = 0;
  std::function<bool(std::string_view packet)> lose;  // of the packets this side sends
};

// Two channels on one io_context joined in memory: a packet one side sends reaches the other's
// on_packet as a posted datagram, unless the sender's `lose` drops it.
class Link {
 public:
  explicit Link(asio::io_context& io, bool a_opens = true, bool b_opens = false) : io_(io) {
    a.channel = std::make_unique<SctpDataChannel>(io, a_opens);
    b.channel = std::make_unique<SctpDataChannel>(io, b_opens);
    attach(a, b);
    attach(b, a);
  }

  void start() {
    a.channel->start();
    b.channel->start();
  }
  bool both_open() const { return a.log->opened == 1 && b.log->opened == 1; }
  void destroy(Side& side) {
    side.log->gone = true;
    side.channel.reset();
  }

  Side a, b;

 private:
  void attach(Side& from, Side& to) {
    auto log = from.log;
    SctpDataChannel& ch = *from.channel;
    ch.on_open = [this, log] {
      log->event();
      ++log->opened;
      log->open_order = ++opens_;
    };
    ch.on_text = [log](std::string_view text) {
      log->event();
      log->texts.emplace_back(text);
    };
    ch.on_close = [log] {
      log->event();
      ++log->closed;
    };
    ch.send = [this, log, &from, &to](std::string_view packet) {
      log->event();
      ++from.sent_packets;
      from.packets.emplace_back(packet);
      from.largest_packet = std::max(from.largest_packet, packet.size());
      if (from.lose && from.lose(packet)) {
        ++from.lost_packets;
        return;
      }
      asio::post(io_, [&to, p = std::string(packet)] {
        if (to.channel) to.channel->on_packet(p);
      });
    };
  }

  asio::io_context& io_;
  int opens_ = 0;
};

TEST(SctpDataChannel, OpenerOpensTheChannelOnBothSidesAckerFirst) {
  asio::io_context io;
  Link link(io);
  EXPECT_FALSE(link.a.channel->send_text("too early"));
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  EXPECT_TRUE(link.a.channel->open());
  EXPECT_TRUE(link.b.channel->open());
  // RFC 8832 §6: the acker is open on receiving DATA_CHANNEL_OPEN, the opener on the ACK.
  EXPECT_LT(link.b.log->open_order, link.a.log->open_order);
  EXPECT_TRUE(link.a.channel->opener());
  EXPECT_FALSE(link.b.channel->opener());
  EXPECT_EQ(link.a.channel->counters().send_failed, 1u);
  EXPECT_GT(link.a.channel->counters().packets_sent, 0u);
  EXPECT_GT(link.b.channel->counters().packets_received, 0u);
}

// What goes on the wire, read from the packets themselves (both sides run this code, so only
// the bytes can show that it is what dcSCTP and other stacks expect).
TEST(SctpDataChannel, WireFormatIsRfc8831) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  EXPECT_TRUE(link.a.channel->send_text(kMediaState));
  EXPECT_TRUE(link.a.channel->send_text(""));
  EXPECT_TRUE(link.a.channel->send_binary("\x01"));
  ASSERT_TRUE(run_until(io, [&] { return link.b.log->texts.size() == 2; }));

  struct Data {
    int flags;
    uint16_t stream;
    uint32_t ppid;
    std::string payload;
  };
  auto data_of = [](const Side& side) {
    std::vector<Data> out;
    for (const std::string& packet : side.packets) {
      // Common header: source and destination port 5000 (TELEGRAM-CALLS.md §4.6).
      EXPECT_EQ(be(packet, 0, 2), 5000u);
      EXPECT_EQ(be(packet, 2, 2), 5000u);
      for (const Chunk& c : chunks(packet)) {
        // DATA (RFC 9260 §3.3.1): TSN, stream identifier, sequence number, PPID, user data.
        if (c.type != kChunkData || c.value.size() < 12) continue;
        out.push_back({c.flags, uint16_t(be(c.value, 4, 2)), be(c.value, 8, 4),
                       std::string(c.value.substr(12))});
      }
    }
    return out;
  };
  const std::vector<Data> from_a = data_of(link.a), from_b = data_of(link.b);
  ASSERT_EQ(from_a.size(), 4u);
  ASSERT_EQ(from_b.size(), 1u);
  for (const Data& d : from_a) {
    EXPECT_EQ(d.stream, 0);
    EXPECT_EQ(d.flags & 0x04, 0);     // U bit clear: ordered
    EXPECT_EQ(d.flags & 0x03, 0x03);  // B and E: each message in one chunk
  }
  EXPECT_EQ(from_a[0].ppid, 50u);  // DCEP
  EXPECT_EQ(from_a[0].payload, std::string("\x03\x00\x01\x00\x00\x00\x00\x00\x00\x04\x00\x00"
                                           "data",
                                           16));
  EXPECT_EQ(from_b[0].ppid, 50u);
  EXPECT_EQ(from_b[0].stream, 0);
  EXPECT_EQ(from_b[0].payload, "\x02");
  EXPECT_EQ(from_a[1].ppid, 51u);
  EXPECT_EQ(from_a[1].payload, kMediaState);
  EXPECT_EQ(from_a[2].ppid, 56u);
  EXPECT_EQ(from_a[2].payload, std::string(1, '\0'));
  EXPECT_EQ(from_a[3].ppid, 53u);
}

TEST(SctpDataChannel, TwoAckersMakeAnAssociationButNoChannel) {
  asio::io_context io;
  Link link(io, false, false);
  link.start();
  // The association comes up at once (a few packets each way); nobody sends OPEN.
  ASSERT_TRUE(run_until(io, [&] { return link.b.channel->counters().packets_received >= 2; }));
  run_for(io, 300ms);
  EXPECT_EQ(link.a.log->opened, 0);
  EXPECT_EQ(link.b.log->opened, 0);
  EXPECT_FALSE(link.a.channel->send_text(kMediaState));
}

TEST(SctpDataChannel, TextBothWaysInOrderUpToTheMaximumSize) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));

  std::string big(100 * 1024, '\0');
  for (size_t i = 0; i < big.size(); ++i)
    big[i] = char('a' + i % 26);
  const std::string max(kSctpMaxMessage, 'm');
  EXPECT_TRUE(link.a.channel->send_text(kMediaState));
  EXPECT_TRUE(link.a.channel->send_text(""));
  EXPECT_TRUE(link.a.channel->send_text(big));
  EXPECT_TRUE(link.a.channel->send_text(max));
  EXPECT_FALSE(link.a.channel->send_text(max + "x"));
  EXPECT_TRUE(link.b.channel->send_text(kMediaState));
  EXPECT_TRUE(link.b.channel->send_text(big));

  ASSERT_TRUE(run_until(
      io, [&] { return link.b.log->texts.size() == 4 && link.a.log->texts.size() == 2; }));
  EXPECT_EQ(link.b.log->texts[0], kMediaState);
  EXPECT_EQ(link.b.log->texts[1], "");
  EXPECT_EQ(link.b.log->texts[2], big);
  EXPECT_EQ(link.b.log->texts[3], max);
  EXPECT_EQ(link.a.log->texts[0], kMediaState);
  EXPECT_EQ(link.a.log->texts[1], big);
  EXPECT_EQ(link.a.channel->counters().sent, 4u);
  EXPECT_EQ(link.a.channel->counters().send_failed, 1u);
  EXPECT_EQ(link.b.channel->counters().received, 4u);
  EXPECT_EQ(link.b.channel->counters().dropped, 0u);
  // Big messages are many SCTP packets, none of them over 1191 bytes: what fits into IPv6's
  // minimum MTU with DTLS, UDP and TURN around it.
  EXPECT_LE(link.a.largest_packet, 1191u);
  EXPECT_GT(link.a.largest_packet, 1100u);
  EXPECT_LE(link.b.largest_packet, 1191u);
  EXPECT_GT(link.b.channel->counters().packets_sent + link.a.channel->counters().packets_sent,
            200u);
}

TEST(SctpDataChannel, BinaryMessagesAreIgnored) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  EXPECT_TRUE(link.a.channel->send_binary("\x01\x02\x03"));
  EXPECT_TRUE(link.a.channel->send_binary(""));
  EXPECT_TRUE(link.a.channel->send_text("after"));
  ASSERT_TRUE(run_until(io, [&] { return !link.b.log->texts.empty(); }));
  run_for(io, 50ms);
  ASSERT_EQ(link.b.log->texts.size(), 1u);
  EXPECT_EQ(link.b.log->texts[0], "after");
  EXPECT_EQ(link.b.channel->counters().dropped, 2u);
  EXPECT_EQ(link.b.channel->counters().received, 1u);
}

TEST(SctpDataChannel, LostPacketsAreRetransmitted) {
  asio::io_context io;
  Link link(io);
  // Lost: a's first INIT, the first packet with DATA each side sends (the DCEP OPEN and ACK).
  link.a.lose = [inits = 0, data = 0](std::string_view p) mutable {
    return (has_chunk(p, kChunkInit) && inits++ == 0) || (has_chunk(p, kChunkData) && data++ == 0);
  };
  link.b.lose = [data = 0](std::string_view p) mutable {
    return has_chunk(p, kChunkData) && data++ == 0;
  };
  link.start();
  ASSERT_TRUE(run_until(
      io, [&] { return link.both_open(); }, 10s));
  EXPECT_EQ(link.a.lost_packets, 2);
  EXPECT_EQ(link.b.lost_packets, 1);

  // The first DATA of a message each way is lost: SCTP's T3-rtx resends it.
  link.a.lose = [data = 0](std::string_view p) mutable {
    return has_chunk(p, kChunkData) && data++ == 0;
  };
  link.b.lose = link.a.lose;
  EXPECT_TRUE(link.a.channel->send_text("one"));
  EXPECT_TRUE(link.b.channel->send_text("two"));
  ASSERT_TRUE(run_until(
      io, [&] { return link.b.log->texts.size() == 1 && link.a.log->texts.size() == 1; }, 10s));
  EXPECT_EQ(link.a.lost_packets, 3);
  EXPECT_EQ(link.b.lost_packets, 2);
  EXPECT_EQ(link.b.log->texts[0], "one");
  EXPECT_EQ(link.a.log->texts[0], "two");
}

TEST(SctpDataChannel, PacketsBeforeStartAreKept) {
  asio::io_context io;
  Link link(io);
  // b's own INIT is lost: only a's INIT, which arrives before b has started, can make the
  // association before a retransmission (1 s).
  link.b.lose = [](std::string_view p) { return has_chunk(p, kChunkInit); };
  link.a.channel->start();
  run_for(io, 50ms);
  EXPECT_EQ(link.b.channel->counters().packets_received, 0u);
  link.b.channel->start();
  ASSERT_TRUE(run_until(
      io, [&] { return link.both_open(); }, 700ms));
  EXPECT_EQ(link.b.channel->counters().packets_dropped, 0u);
}

TEST(SctpDataChannel, CloseAbortsAndThePeerHearsIt) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  link.a.channel->close();
  EXPECT_FALSE(link.a.channel->open());
  EXPECT_FALSE(link.a.channel->send_text("gone"));
  ASSERT_TRUE(run_until(io, [&] { return link.b.log->closed == 1; }));
  EXPECT_FALSE(link.b.channel->open());
  EXPECT_FALSE(link.b.channel->send_text("gone"));
  EXPECT_EQ(link.a.log->closed, 0);  // close() is no news to its caller
  run_for(io, 100ms);
  EXPECT_EQ(link.b.log->closed, 1);
}

TEST(SctpDataChannel, ClosingTheChannelResetsItsStreamAndThePeerHearsIt) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  link.a.channel->close_channel();
  EXPECT_FALSE(link.a.channel->open());
  EXPECT_FALSE(link.a.channel->send_text("gone"));
  ASSERT_TRUE(run_until(io, [&] { return link.b.log->closed == 1; }));
  EXPECT_FALSE(link.b.channel->open());
  EXPECT_FALSE(link.b.channel->send_text("gone"));
  run_for(io, 100ms);
  EXPECT_EQ(link.a.log->closed, 0);
  EXPECT_EQ(link.b.log->closed, 1);
}

TEST(SctpDataChannel, PacketsBeforeStartAreBounded) {
  asio::io_context io;
  SctpDataChannel channel(io, false);
  for (size_t i = 0; i < SctpDataChannel::kEarlyPackets + 4; ++i)
    channel.on_packet("early");
  EXPECT_EQ(channel.counters().packets_dropped, 4u);
  EXPECT_EQ(channel.counters().packets_received, 0u);
}

TEST(SctpDataChannel, NoCallbackAfterDestructionMidAssociation) {
  asio::io_context io;
  Link link(io);
  link.start();
  ASSERT_TRUE(run_until(io, [&] { return link.both_open(); }));
  // Packets both ways are in the queue when b goes: a's DATA for b, b's SACKs and DATA for a.
  EXPECT_TRUE(link.a.channel->send_text(kMediaState));
  EXPECT_TRUE(link.b.channel->send_text(kMediaState));
  io.poll_one();
  link.destroy(link.b);
  // a retransmits into the void for a while (T3-rtx from 400 ms on): nothing reaches b's
  // callbacks, nor its send.
  run_for(io, 1500ms);
  EXPECT_EQ(link.b.log->after_gone, 0);
  EXPECT_FALSE(link.a.log->texts.size() > 1);
}

TEST(SctpDataChannel, NoCallbackAfterDestructionMidHandshake) {
  asio::io_context io;
  Link link(io);
  link.start();
  // a's INIT is still in the io_context's queue (usrsctp's output is posted), b's is on its way.
  link.destroy(link.a);
  // a's INIT timer would fire at 1 s; b's own INIT retransmissions go on.
  run_for(io, 1500ms);
  EXPECT_EQ(link.a.log->after_gone, 0);
  EXPECT_EQ(link.b.log->opened, 0);
}

TEST(SctpDataChannel, ManyChannelsComeAndGo) {
  // Channels made and destroyed one after another share usrsctp, its clock and the worker's
  // tick: later ones still open at once.
  asio::io_context io;
  for (int round = 0; round < 5; ++round) {
    Link link(io);
    link.start();
    ASSERT_TRUE(run_until(
        io, [&] { return link.both_open(); }, 2s))
        << round;
    EXPECT_TRUE(link.b.channel->send_text(std::to_string(round)));
    ASSERT_TRUE(run_until(
        io, [&] { return !link.a.log->texts.empty(); }, 2s));
    EXPECT_EQ(link.a.log->texts[0], std::to_string(round));
  }
}

// Two esg workers: an io_context each, run by its own thread; channel a lives on the first, b on
// the second, and packets cross between them as posts.
class SctpTwoWorkers : public ::testing::Test {
 protected:
  struct Worker {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> guard{io.get_executor()};
    std::thread thread;
    std::unique_ptr<SctpDataChannel> channel;  // touched only on `thread`
    std::mutex mutex;
    std::vector<std::string> texts;  // under `mutex`
    std::atomic<int> opened{0};
    std::atomic<bool> gone{false};
    std::atomic<int> lose_data{0};  // packets with DATA still to lose
  };

  void SetUp() override {
    a_.thread = std::thread([this] { a_.io.run(); });
    b_.thread = std::thread([this] { b_.io.run(); });
    make(a_, b_, true);
    make(b_, a_, false);
    on(a_, [this] { a_.channel->start(); });
    on(b_, [this] { b_.channel->start(); });
    ASSERT_TRUE(wait_for([this] { return a_.opened == 1 && b_.opened == 1; }, 5s));
  }

  void TearDown() override {
    destroy(a_);
    destroy(b_);
    a_.guard.reset();
    b_.guard.reset();
    a_.thread.join();  // returns once the workers' tickers went with their channels
    b_.thread.join();
    EXPECT_EQ(after_gone_, 0);
  }

  // Runs `f` on `w`'s thread and waits for it.
  static void on(Worker& w, const std::function<void()>& f) {
    std::promise<void> done;
    asio::post(w.io, [&] {
      f();
      done.set_value();
    });
    done.get_future().wait();
  }

  static bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(5ms);
    return done();
  }

  static size_t count(Worker& w) {
    std::lock_guard lock(w.mutex);
    return w.texts.size();
  }

  void destroy(Worker& w) {
    on(w, [&w] {
      w.gone = true;
      w.channel.reset();
    });
  }

  Worker a_, b_;
  std::atomic<int> after_gone_{0};

 private:
  void make(Worker& self, Worker& peer, bool opener) {
    on(self, [this, &self, &peer, opener] {
      self.channel = std::make_unique<SctpDataChannel>(self.io, opener);
      self.channel->on_open = [this, &self] {
        if (self.gone) ++after_gone_;
        ++self.opened;
      };
      self.channel->on_text = [this, &self](std::string_view text) {
        if (self.gone) ++after_gone_;
        std::lock_guard lock(self.mutex);
        self.texts.emplace_back(text);
      };
      self.channel->send = [this, &self, &peer](std::string_view packet) {
        if (self.gone) ++after_gone_;
        if (self.lose_data > 0 && has_chunk(packet, kChunkData)) {
          --self.lose_data;
          return;
        }
        asio::post(peer.io, [&peer, p = std::string(packet)] {
          if (peer.channel) peer.channel->on_packet(p);
        });
      };
    });
  }
};

TEST_F(SctpTwoWorkers, MessagesBothWaysThenOneGoesWhileThePeerSends) {
  constexpr int kBurst = 200;
  asio::post(a_.io, [this] {
    for (int i = 0; i < kBurst; ++i)
      a_.channel->send_text("a" + std::to_string(i));
  });
  asio::post(b_.io, [this] {
    for (int i = 0; i < kBurst; ++i)
      b_.channel->send_text("b" + std::to_string(i));
  });
  ASSERT_TRUE(wait_for([this] { return count(a_) == kBurst && count(b_) == kBurst; }, 10s));
  {
    std::scoped_lock lock(a_.mutex, b_.mutex);
    for (int i = 0; i < kBurst; ++i)
      EXPECT_EQ(b_.texts[i], "a" + std::to_string(i));
    for (int i = 0; i < kBurst; ++i)
      EXPECT_EQ(a_.texts[i], "b" + std::to_string(i));
  }
  // b keeps sending while a is destroyed on its own thread; b's retransmissions then go into
  // the void for a while before b goes too (TearDown).
  asio::post(b_.io, [this] {
    for (int i = 0; i < kBurst; ++i)
      b_.channel->send_text("late");
  });
  destroy(a_);
  std::this_thread::sleep_for(600ms);
}

TEST_F(SctpTwoWorkers, AChannelsTimersRunOnTheOtherWorkerAndAreHandedOver) {
  const uint64_t before = SctpDataChannel::handed_over();
  // a's message is lost, and a's worker is then busy for longer than the retransmission
  // timeout: only b's worker drives usrsctp's clock, so a's T3-rtx expires on b's thread and
  // the retransmission is posted over to a's worker.
  on(a_, [this] {
    a_.lose_data = 1;
    EXPECT_TRUE(a_.channel->send_text("x"));
  });
  asio::post(a_.io, [] { std::this_thread::sleep_for(1500ms); });
  ASSERT_TRUE(wait_for([this] { return count(b_) == 1; }, 5s));
  EXPECT_EQ(a_.lose_data, 0);
  EXPECT_GT(SctpDataChannel::handed_over(), before);
  std::lock_guard lock(b_.mutex);
  EXPECT_EQ(b_.texts[0], "x");
}

}  // namespace
}  // namespace esg::media
