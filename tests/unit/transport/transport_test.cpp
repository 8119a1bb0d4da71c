// The transport on loopback: two instances exchange packets over real sockets.
#include "transport/transport.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/udp.hpp>

#include <condition_variable>
#include <mutex>

#include "sip/framer.hpp"

namespace esg::transport {
namespace {

using namespace std::chrono_literals;

std::string request(const std::string& call_id, uint16_t port, size_t pad,
                    const std::string& method = "OPTIONS") {
  return method +
         " sip:b@127.0.0.1 SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 127.0.0.1:" +
         std::to_string(port) + ";rport;branch=z9hG4bKt" + call_id +
         "\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: " + call_id +
         "\r\nCSeq: 1 " + method + "\r\nMax-Forwards: 70\r\nX-Pad: " + std::string(pad, 'x') +
         "\r\nContent-Length: 0\r\n\r\n";
}

struct Received {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<Peer, std::string>> got;
  bool wait(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 5s, [&] { return got.size() >= n; });
  }
};

struct LoopbackPair : ::testing::Test {
  Workers workers{1};
  Workers peer_workers{1};
  SharedPacketIndex index;
  Received received;
  Transport a{workers, {}, nullptr, [](size_t, sip::Message&&, const Peer&) {}};
  Transport b{peer_workers, {}, nullptr, [this](size_t, sip::Message&& m, const Peer& from) {
                std::lock_guard lock(received.mu);
                received.got.emplace_back(from, std::string(m.bytes()));
                received.cv.notify_all();
              }};
  void SetUp() override {
    a.set_packet_index(&index);
    a.listen(Proto::Udp, "127.0.0.1", 0);
    a.listen(Proto::Tcp, "127.0.0.1", 0);
    b.listen(Proto::Udp, "127.0.0.1", 0);
    b.listen(Proto::Tcp, "127.0.0.1", 0);
    workers.start();
    peer_workers.start();
  }
  void TearDown() override {
    a.close();
    b.close();
    workers.stop();
    peer_workers.stop();
  }
  Peer to_b(Proto p) {
    Peer peer;
    peer.proto = p;
    peer.addr = boost::asio::ip::make_address("127.0.0.1");
    peer.port = b.local_port(p == Proto::Udp ? 0 : 1);
    return peer;
  }
};

TEST_F(LoopbackPair, ALargeRequestGoesOverTcpWithItsViaSaying_18_1_1) {
  auto small = sip::parse_message(request("small-1", a.local_port(0), 100));
  ASSERT_TRUE(small);
  Peer to = to_b(Proto::Udp);
  std::string bytes = fit_request_to_transport(*small, to, a.local_port(1));
  EXPECT_EQ(to.proto, Proto::Udp);
  EXPECT_EQ(bytes, small->bytes());
  ASSERT_TRUE(a.send(to, bytes));

  auto big = sip::parse_message(request("big-1", a.local_port(0), 1500));
  ASSERT_TRUE(big);
  to = to_b(Proto::Udp);
  bytes = fit_request_to_transport(*big, to, a.local_port(1));
  EXPECT_EQ(to.proto, Proto::Tcp);
  to.port = b.local_port(1);  // the peer's TCP listener (same port in a normal deployment)
  ASSERT_TRUE(a.send(to, bytes));
  ASSERT_TRUE(received.wait(2));
  std::lock_guard lock(received.mu);
  for (const auto& [from, text] : received.got) {
    auto m = sip::parse_message(text);
    ASSERT_TRUE(m);
    if (m->call_id() == "big-1") {
      EXPECT_EQ(from.proto, Proto::Tcp);
      EXPECT_EQ(m->top_via().transport, "TCP");
      EXPECT_EQ(m->top_via().port, a.local_port(1));
      EXPECT_EQ(m->top_via().branch, "z9hG4bKtbig-1");
    } else {
      EXPECT_EQ(from.proto, Proto::Udp);
      EXPECT_EQ(m->top_via().transport, "UDP");
    }
  }
}

TEST_F(LoopbackPair, WithoutATcpListenerTheRequestStaysOnUdp) {
  auto big = sip::parse_message(request("big-2", a.local_port(0), 1500));
  ASSERT_TRUE(big);
  Peer to = to_b(Proto::Udp);
  EXPECT_EQ(fit_request_to_transport(*big, to, 0), big->bytes());
  EXPECT_EQ(to.proto, Proto::Udp);
}

TEST_F(LoopbackPair, EverySentPacketOfACallIsFiledUnderItsCallId) {
  auto m = sip::parse_message(request("indexed-1", a.local_port(0), 10, "INVITE"));
  ASSERT_TRUE(m);
  ASSERT_TRUE(a.send(to_b(Proto::Udp), std::string(m->bytes())));
  ASSERT_TRUE(a.send(to_b(Proto::Udp), std::string(m->bytes())));
  auto packets = index.packets("indexed-1");
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(packets[0].direction, Direction::Send);
  EXPECT_EQ(packets[0].proto, "udp");
  EXPECT_EQ(packets[0].packet, m->bytes());
  EXPECT_TRUE(index.packets("unknown").empty());
  // Account traffic is not a call: it stays out of the index.
  for (const char* method : {"REGISTER", "OPTIONS"}) {
    auto r =
        sip::parse_message(request(std::string("acct-") + method, a.local_port(0), 10, method));
    ASSERT_TRUE(r);
    ASSERT_TRUE(a.send(to_b(Proto::Udp), std::string(r->bytes())));
    EXPECT_TRUE(index.packets(std::string("acct-") + method).empty()) << method;
  }
}

// Issue 24: what a worker has not read yet waits in the kernel's queue, and shows there.
TEST(UdpBacklog, DatagramsNobodyReadsFillTheWorkersQueue) {
  Workers idle{1};  // never started: nothing reads the socket
  Transport t{idle, {}, nullptr, [](size_t, sip::Message&&, const Peer&) {}};
  t.listen(Proto::Udp, "127.0.0.1", 0);
  EXPECT_EQ(t.udp_backlog(0), 0.0);
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io, boost::asio::ip::udp::endpoint(boost::asio::ip::udp::v4(), 0));
  const boost::asio::ip::udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"),
                                          t.local_port(0));
  const std::string packet(1000, 'x');
  for (int i = 0; i < 50; ++i)
    s.send_to(boost::asio::buffer(packet), to);
  const double some = t.udp_backlog(0);
  EXPECT_GT(some, 0.0);
  for (int i = 0; i < 2000; ++i) {
    boost::system::error_code ec;
    s.send_to(boost::asio::buffer(packet), to, 0, ec);
  }
  EXPECT_GT(t.udp_backlog(0), some);
  EXPECT_LE(t.udp_backlog(0), 1.0);
  EXPECT_EQ(t.udp_backlog(7), 0.0);  // no such worker
  t.close();
}

TEST(ScanIds, FindsCallIdInLongAndCompactFormsAndTheCSeqMethodInTheHeadersOnly) {
  auto ids =
      sip::scan_ids("INVITE sip:a SIP/2.0\r\nVia: x\r\nCall-ID:  abc@h \r\nCSeq: 2 INVITE\r\n\r\n");
  EXPECT_EQ(ids.call_id, "abc@h");
  EXPECT_EQ(ids.cseq_method, "INVITE");
  EXPECT_EQ(sip::scan_ids("SIP/2.0 200 OK\r\ni: c1\r\n\r\n").call_id, "c1");
  ids = sip::scan_ids("OPTIONS x SIP/2.0\r\nVia: x\r\n\r\nCall-ID: body\r\nCSeq: 1 BYE\r\n");
  EXPECT_EQ(ids.call_id, "");
  EXPECT_EQ(ids.cseq_method, "");
}

TEST(PacketIndexBytes, OldCallsMakeRoomWhenTheByteBoundIsReached) {
  PacketIndex index(100, 100, 1000);
  PacketRecord r;
  r.packet = std::string(400, 'x');
  index.add("a", r);
  index.add("b", r);
  EXPECT_EQ(index.calls(), 2u);
  index.add("c", r);  // 1200 bytes: "a" goes
  EXPECT_EQ(index.calls(), 2u);
  EXPECT_TRUE(index.packets("a").empty());
  EXPECT_EQ(index.bytes(), 800u);
  EXPECT_EQ(index.packets("c").size(), 1u);
}

// A Telegram call's lane (issue 22): events filed between a call's packets keep their place in
// the one order of all packets, with their lane as proto.
TEST_F(LoopbackPair, NotesTakeTheirPlaceAmongTheCallsPackets) {
  a.note("lane-1", "telegram", "updateCall pending");
  ASSERT_TRUE(a.send(to_b(Proto::Udp), request("lane-1", a.local_port(0), 10, "INVITE")));
  ASSERT_TRUE(received.wait(1));
  a.note("lane-1", "telegram", "updateCall ready");
  a.note("", "telegram", "no call: not filed");
  const auto packets = index.packets("lane-1");
  ASSERT_EQ(packets.size(), 3u);
  EXPECT_EQ(packets[0].proto, "telegram");
  EXPECT_EQ(packets[0].packet, "updateCall pending");
  EXPECT_EQ(packets[1].proto, "udp");
  EXPECT_EQ(packets[1].packet.rfind("INVITE ", 0), 0u);
  EXPECT_EQ(packets[2].packet, "updateCall ready");
  EXPECT_LT(packets[0].counter, packets[1].counter);
  EXPECT_LT(packets[1].counter, packets[2].counter);
  EXPECT_LE(packets[0].time, packets[1].time);
}

}  // namespace
}  // namespace esg::transport
