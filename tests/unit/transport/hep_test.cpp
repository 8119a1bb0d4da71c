// HEP v3 as Homer reads it: the header, then generic chunks (vendor 0) in a known layout.
#include "transport/hep.hpp"

#include <gtest/gtest.h>

#include <boost/asio/ip/address.hpp>

#include <map>

namespace {

using esg::transport::encode_hep;
using esg::transport::HepExporter;
using esg::transport::HepPacket;

std::map<int, std::string> chunks(const std::string& d) {
  std::map<int, std::string> out;
  size_t at = 6;
  while (at + 6 <= d.size()) {
    const auto* b = reinterpret_cast<const unsigned char*>(d.data() + at);
    const int vendor = b[0] << 8 | b[1], type = b[2] << 8 | b[3], len = b[4] << 8 | b[5];
    EXPECT_EQ(vendor, 0);
    out[type] = d.substr(at + 6, size_t(len - 6));
    at += size_t(len);
  }
  EXPECT_EQ(at, d.size());
  return out;
}

TEST(Hep, EncodesTheChunksHomerReads) {
  HepPacket p;
  p.src = boost::asio::ip::make_address("10.0.0.1");
  p.dst = boost::asio::ip::make_address("10.0.0.2");
  p.src_port = 5060;
  p.dst_port = 5080;
  p.time = std::chrono::system_clock::time_point(std::chrono::microseconds(1700000000123456));
  p.payload = "OPTIONS sip:a SIP/2.0\r\n\r\n";
  p.call_id = "abc@h";
  const std::string d = encode_hep(p, 2001, "pw");
  ASSERT_EQ(d.substr(0, 4), "HEP3");
  EXPECT_EQ(size_t(uint8_t(d[4]) << 8 | uint8_t(d[5])), d.size());
  auto c = chunks(d);
  EXPECT_EQ(c[1], std::string("\x02", 1));
  EXPECT_EQ(c[2], std::string("\x11", 1));
  EXPECT_EQ(c[3], std::string("\x0a\x00\x00\x01", 4));
  EXPECT_EQ(c[4], std::string("\x0a\x00\x00\x02", 4));
  EXPECT_EQ(c[7], std::string("\x13\xc4", 2));
  EXPECT_EQ(c[8], std::string("\x13\xd8", 2));
  EXPECT_EQ(c[9], std::string("\x65\x53\xf1\x00", 4));   // 1700000000
  EXPECT_EQ(c[10], std::string("\x00\x01\xe2\x40", 4));  // 123456
  EXPECT_EQ(c[11], std::string("\x01", 1));
  EXPECT_EQ(c[12], std::string("\x00\x00\x07\xd1", 4));
  EXPECT_EQ(c[14], "pw");
  EXPECT_EQ(c[15], p.payload);
  EXPECT_EQ(c[17], "abc@h");
}

TEST(Hep, IPv6EndsAndNoPassword) {
  HepPacket p;
  p.src = boost::asio::ip::make_address("::1");
  p.dst = boost::asio::ip::make_address("2001:db8::2");
  p.tcp = true;
  auto c = chunks(encode_hep(p, 1, ""));
  EXPECT_EQ(c[1], std::string("\x0a", 1));
  EXPECT_EQ(c[2], std::string("\x06", 1));
  EXPECT_EQ(c[5].size(), 16u);
  EXPECT_EQ(c[6].size(), 16u);
  EXPECT_EQ(c.count(14), 0u);
  EXPECT_EQ(c.count(17), 0u);
}

TEST(Hep, CollectorAddressesAreIpAndPort) {
  EXPECT_TRUE(HepExporter::parse_address("127.0.0.1:9060"));
  EXPECT_TRUE(HepExporter::parse_address("[::1]:9060"));
  EXPECT_FALSE(HepExporter::parse_address("homer:9060"));
  EXPECT_FALSE(HepExporter::parse_address("127.0.0.1"));
  EXPECT_FALSE(HepExporter::parse_address("127.0.0.1:99999"));
}

}  // namespace
