#include "transport/trn_log.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace esg::transport {
namespace {

PacketRecord record(Direction d, std::string packet) {
  PacketRecord r;
  r.time = std::chrono::system_clock::now();
  r.worker = 0;
  r.connection = 685;
  r.counter = 0;
  r.direction = d;
  r.proto = "udp";
  r.peer = "127.0.0.1:5060";
  r.packet = std::move(packet);
  return r;
}

TEST(TrnLine, SendAndRecvInTheContractFormat) {
  auto send = record(Direction::Send, "REGISTER sip:esg.local SIP/2.0\r\nCSeq: 1 REGISTER\r\n\r\n");
  const std::string line = format_trn_line(send);
  // HH:MM:SS.mmm <W.C.N> Send to udp A:P (ok) <packet>
  ASSERT_GT(line.size(), 13u);
  EXPECT_EQ(line[2], ':');
  EXPECT_EQ(line[5], ':');
  EXPECT_EQ(line[8], '.');
  EXPECT_EQ(line.substr(12),
            " <0.685.0> Send to udp 127.0.0.1:5060 (ok) REGISTER sip:esg.local SIP/2.0 CSeq: 1 "
            "REGISTER");
  auto recv = record(Direction::Recv, "SIP/2.0 200 OK\r\nVia: x\r\n\r\n");
  EXPECT_EQ(format_trn_line(recv).substr(12),
            " <0.685.0> Recv from udp 127.0.0.1:5060 SIP/2.0 200 OK Via: x");
  send.ok = false;
  EXPECT_NE(format_trn_line(send).find("(failed)"), std::string::npos);
  // Every line break is one space, CRLF or a lone CR or LF; the trailing ones go.
  auto odd = record(Direction::Recv, "a\rb\nc\r\r\nd\r\n\r\n");
  EXPECT_EQ(format_trn_line(odd).substr(12), " <0.685.0> Recv from udp 127.0.0.1:5060 a b c  d");
  EXPECT_EQ(format_trn_line(record(Direction::Recv, "\n")).substr(12),
            " <0.685.0> Recv from udp 127.0.0.1:5060");
}

TEST(TrnLine, BannedPacketsAreLoggedWithoutTheirBytes) {
  auto r = record(Direction::Recv, "INVITE sip:x SIP/2.0\r\n\r\n");
  r.banned = true;
  r.peer = "[::1]:5070";
  EXPECT_EQ(format_trn_line(r).substr(12), " <0.685.0> Recv from udp [::1]:5070 BANNED");
}

TEST(TrnLine, ReadBackIntoARecordOnTheFilesDay) {
  auto send = record(Direction::Send, "INVITE sip:x SIP/2.0\r\nCall-ID: abc@h\r\n\r\n");
  send.time = std::chrono::system_clock::now();
  const std::string line = format_trn_line(send);
  std::time_t t = std::chrono::system_clock::to_time_t(send.time);
  std::tm tm{};
  localtime_r(&t, &tm);
  char day[16];
  std::strftime(day, sizeof day, "%Y%m%d", &tm);
  auto r = esg::transport::parse_trn_line(line, day);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->direction, Direction::Send);
  EXPECT_EQ(r->proto, "udp");
  EXPECT_EQ(r->peer, "127.0.0.1:5060");
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->packet, "INVITE sip:x SIP/2.0 Call-ID: abc@h");
  const auto off = std::chrono::duration_cast<std::chrono::milliseconds>(r->time - send.time);
  EXPECT_LE(std::abs(off.count()), 1) << "to the millisecond";
  auto recv = esg::transport::parse_trn_line(
      "10:00:00.250 <1.0.7> Recv from tcp [::1]:5070 SIP/2.0 200 OK Via: x", "20261202");
  ASSERT_TRUE(recv);
  EXPECT_EQ(recv->direction, Direction::Recv);
  EXPECT_EQ(recv->peer, "[::1]:5070");
  EXPECT_EQ(recv->packet, "SIP/2.0 200 OK Via: x");
  for (const char* bad : {"", "garbage", "10:00:00.250 <1.0.7> Recv from udp 1.2.3.4:5 BANNED",
                          "1x:00:00.250 <1.0.7> Recv from udp 1.2.3.4:5 X"})
    EXPECT_FALSE(esg::transport::parse_trn_line(bad, "20261202")) << bad;
}

TEST(TrnLine, APacketIsAlwaysOneLine) {
  auto r = record(Direction::Recv, "a\nb\rc\r\n\r\nbody\r\n");
  const std::string line = format_trn_line(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find('\r'), std::string::npos);
  EXPECT_NE(line.find("a b c  body"), std::string::npos);
}

class TrnLogFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(testing::TempDir()) /
           ("trn-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::filesystem::path dir_;
};

TEST_F(TrnLogFiles, WritesOneLinePerPacketIntoTodaysFile) {
  TrnLog log({dir_.string(), 1 << 20, 1000});
  for (int i = 0; i < 10; ++i)
    log.write(record(Direction::Recv, "OPTIONS sip:x SIP/2.0\r\n\r\n"));
  log.flush();
  EXPECT_EQ(log.written(), 10u);
  const auto names = files();
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].substr(0, 4), "trn_");
  EXPECT_EQ(names[0].size(), std::string("trn_20261123.log").size());
  std::ifstream in(dir_ / names[0]);
  std::string line;
  int lines = 0;
  while (std::getline(in, line))
    ++lines;
  EXPECT_EQ(lines, 10);
}

// The writer gathers a burst for a moment instead of waking per packet; without a flush the
// lines still reach the file on their own, those of a burst that arrives while it writes too.
TEST_F(TrnLogFiles, LinesReachTheFileWithoutAFlush) {
  TrnLog log({dir_.string(), 1 << 20, 100000});
  auto wait_written = [&](uint64_t n) {
    for (int i = 0; i < 200 && log.written() < n; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return log.written();
  };
  log.write(record(Direction::Recv, "OPTIONS sip:a SIP/2.0\r\n\r\n"));
  EXPECT_EQ(wait_written(1), 1u);
  // A burst longer than the gathering's limit, then the rest of it, then one more line on its
  // own.
  for (int i = 0; i < 10000; ++i)
    log.write(record(Direction::Recv, "x"));
  EXPECT_EQ(wait_written(10001), 10001u);
  PacketRecord r = record(Direction::Send, "BYE sip:b SIP/2.0\r\n\r\n");
  const auto ticket = log.open(r);
  log.fill(ticket, r);
  EXPECT_EQ(wait_written(10002), 10002u);
  const auto names = files();
  ASSERT_EQ(names.size(), 1u);
  std::ifstream in(dir_ / names[0]);
  std::string line;
  int lines = 0;
  while (std::getline(in, line))
    ++lines;
  EXPECT_EQ(lines, 10002);
}

TEST_F(TrnLogFiles, RotatesBySize) {
  TrnLog log({dir_.string(), 300, 1000});
  for (int i = 0; i < 10; ++i)
    log.write(record(Direction::Recv, std::string(100, 'x')));
  log.flush();
  const auto names = files();
  ASSERT_GE(names.size(), 4u);
  // trn_D.log, trn_D.1.log, trn_D.2.log ...
  const std::string day = names[0].substr(4, 8);
  EXPECT_EQ(names[0], "trn_" + day + ".1.log");  // sorted: ".1" before ".log"
  EXPECT_NE(std::find(names.begin(), names.end(), "trn_" + day + ".log"), names.end());
  for (const auto& n : names) {
    EXPECT_LE(std::filesystem::file_size(dir_ / n), 300u) << n;
  }
}

TEST_F(TrnLogFiles, AFullQueueDropsAndCountsInsteadOfBlocking) {
  TrnLog log({dir_.string(), 1 << 20, 0});
  for (int i = 0; i < 5; ++i)
    log.write(record(Direction::Recv, "x"));
  log.flush();
  EXPECT_EQ(log.dropped(), 5u);
  EXPECT_EQ(log.written(), 0u);
}

// Worker 1 decides to send a 200 and stamps it; before its send_to returns, the caller's ACK
// arrives on worker 2 and is stamped and filed; then worker 1 files the 200. The order of the
// stamps, not of the filing, is what the log and the index show.
TEST_F(TrnLogFiles, AReplyFiledWhileTheSendIsInProgressComesAfterIt) {
  TrnLog log({dir_.string(), 1 << 20, 1000});
  PacketIndex index;
  const std::string ok200 = "SIP/2.0 200 OK\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n";
  const std::string ack = "ACK sip:b@x SIP/2.0\r\nCall-ID: c1\r\nCSeq: 1 ACK\r\n\r\n";

  PacketRecord send = record(Direction::Send, "");
  send.worker = 1;
  send.time = {};
  const TrnLog::Ticket ticket = log.open(send);  // stamped before the system call
  ASSERT_NE(ticket, 0u);
  const auto stamped_at = send.time;
  EXPECT_GT(stamped_at.time_since_epoch().count(), 0) << "open() takes the time";

  PacketRecord reply = record(Direction::Recv, ack);
  reply.worker = 2;
  const TrnLog::Ticket reply_ticket = log.open(reply);
  EXPECT_GT(reply.counter, send.counter);
  EXPECT_GE(reply.time, stamped_at);
  index.add("c1", reply);
  log.fill(reply_ticket, reply);
  log.flush();
  EXPECT_EQ(log.written(), 0u) << "the ACK's line waits for the 200's";

  send.packet = ok200;  // send_to returned
  index.add("c1", send);
  log.fill(ticket, send);
  log.flush();
  EXPECT_EQ(log.written(), 2u);

  const auto packets = index.packets("c1");
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(packets[0].packet, ok200);
  EXPECT_EQ(packets[1].packet, ack);

  const auto names = files();
  ASSERT_EQ(names.size(), 1u);
  std::ifstream in(dir_ / names[0]);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);)
    lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("Send to udp 127.0.0.1:5060 (ok) SIP/2.0 200 OK"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("Recv from udp 127.0.0.1:5060 ACK sip:b@x"), std::string::npos)
      << lines[1];
  // The counters read back from the lines keep that order.
  const std::string day = names[0].substr(4, 8);
  const auto first = parse_trn_line(lines[0], day), second = parse_trn_line(lines[1], day);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->counter, send.counter);
  EXPECT_EQ(second->counter, reply.counter);
}

TEST_F(TrnLogFiles, StampsAreOneOrderAcrossThreads) {
  TrnLog log({dir_.string(), 1 << 20, 100000});
  constexpr int kThreads = 4, kEach = 2000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&log, t] {
      for (int i = 0; i < kEach; ++i) {
        PacketRecord r = record(Direction::Send, "");
        r.worker = uint16_t(t);
        const auto ticket = log.open(r);
        r.packet = std::to_string(r.counter);
        log.fill(ticket, r);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  log.flush();
  ASSERT_EQ(log.written(), uint64_t(kThreads * kEach));
  const auto names = files();
  ASSERT_EQ(names.size(), 1u);
  std::ifstream in(dir_ / names[0]);
  const std::string day = names[0].substr(4, 8);
  uint64_t expected = 0;
  std::chrono::system_clock::time_point last{};
  for (std::string line; std::getline(in, line); ++expected) {
    const auto r = parse_trn_line(line, day);
    ASSERT_TRUE(r) << line;
    ASSERT_EQ(r->counter, expected) << "lines in the order of their stamps";
    ASSERT_EQ(r->packet, std::to_string(expected));
    ASSERT_GE(r->time, last) << "and of their times";
    last = r->time;
  }
  EXPECT_EQ(expected, uint64_t(kThreads * kEach));
}

// An event on a call's diagram (issue 22) takes its place in the packets' order without a line.
TEST_F(TrnLogFiles, AStampForTheDiagramTakesTheNextCounterAndWritesNoLine) {
  TrnLog log({dir_.string(), 1 << 20, 1000});
  PacketRecord before = record(Direction::Recv, "OPTIONS sip:x SIP/2.0\r\n\r\n");
  log.fill(log.open(before), before);
  PacketRecord event = record(Direction::Recv, "updateCall ready");
  event.time = {};
  log.stamp(event);
  PacketRecord after = record(Direction::Recv, "OPTIONS sip:x SIP/2.0\r\n\r\n");
  log.fill(log.open(after), after);
  log.flush();
  EXPECT_EQ(event.counter, before.counter + 1);
  EXPECT_EQ(after.counter, event.counter + 1);
  EXPECT_GE(event.time, before.time);
  EXPECT_EQ(log.written(), 2u);
}

TEST(PacketIndex, FilesPacketsInTheOrderOfTheirStamps) {
  PacketIndex index(10, 4);
  auto at = [](uint64_t counter, const char* packet) {
    PacketRecord r = record(Direction::Recv, packet);
    r.counter = counter;
    return r;
  };
  index.add("c", at(1, "a"));
  index.add("c", at(3, "c"));
  index.add("c", at(4, "d"));
  index.add("c", at(2, "b"));  // stamped before c and d, filed after them
  auto p = index.packets("c");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p[0].packet + p[1].packet + p[2].packet + p[3].packet, "abcd");
  index.add("c", at(5, "e"));  // the bound still drops the oldest
  p = index.packets("c");
  ASSERT_EQ(p.size(), 4u);
  EXPECT_EQ(p.front().packet, "b");
  EXPECT_EQ(p.back().packet, "e");
}

TEST(PacketIndex, KeepsTheNewestCallsAndTheLastPacketsOfEach) {
  PacketIndex index(2, 3);
  for (int i = 0; i < 5; ++i)
    index.add("call-a", record(Direction::Recv, std::to_string(i)));
  auto a = index.packets("call-a");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a.front().packet, "2");
  EXPECT_EQ(a.back().packet, "4");
  index.add("call-b", record(Direction::Recv, "b"));
  index.add("call-a", record(Direction::Send, "5"));  // call-a becomes the newest again
  index.add("call-c", record(Direction::Recv, "c"));  // evicts call-b, the oldest
  EXPECT_EQ(index.calls(), 2u);
  EXPECT_TRUE(index.packets("call-b").empty());
  EXPECT_EQ(index.packets("call-a").back().packet, "5");
  EXPECT_EQ(index.packets("call-c").size(), 1u);
}

}  // namespace
}  // namespace esg::transport
