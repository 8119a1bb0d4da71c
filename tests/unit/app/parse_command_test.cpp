#include "app/parse_command.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

namespace esg::app {
namespace {

std::string torture_path(const char* name) {
  return std::string(ESG_TEST_DATA) + "/rfc4475/" + name + ".dat";
}

std::vector<nlohmann::json> lines_of(const std::string& out) {
  std::vector<nlohmann::json> v;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line))
    v.push_back(nlohmann::json::parse(line));
  return v;
}

TEST(ParseCommand, DescribesAValidRequest) {
  std::ostringstream out, err;
  EXPECT_EQ(run_parse({torture_path("esc01")}, out, err), 0);
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1u);
  const auto& j = lines[0];
  EXPECT_TRUE(j["ok"].get<bool>());
  EXPECT_EQ(j["kind"], "request");
  EXPECT_EQ(j["method"], "INVITE");
  EXPECT_EQ(j["ruri"]["user"], "sips:user@example.com");
  EXPECT_EQ(j["ruri"]["host"], "example.net");
  EXPECT_EQ(j["via"]["transport"], "UDP");
  EXPECT_EQ(j["via"]["branch"], "z9hG4bKkdjuw");
  EXPECT_EQ(j["from"]["tag"], "938");
  EXPECT_EQ(j["from"]["uri"]["user"], "I have spaces");
  EXPECT_EQ(j["cseq"]["number"], 234234);
  EXPECT_EQ(j["max_forwards"], 87);
  EXPECT_EQ(j["content_length"], 150);
  // RFC 4475's bodies write `a=rtpmap:31 LPC` without a clock rate: the SDP summary names it.
  EXPECT_EQ(j["sdp"]["line"], 8);
  EXPECT_EQ(j["sdp"]["line_text"], "a=rtpmap:31 LPC");
}

TEST(ParseCommand, SummarizesTheSdp) {
  const std::string path = testing::TempDir() + "/invite.sip";
  {
    const std::string body =
        "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n";
    std::ofstream o(path, std::ios::binary);
    o << "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2;branch=z9hG4bK1\r\n"
         "From: <sip:200@127.0.0.2>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: sdp1\r\n"
         "CSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: "
      << body.size() << "\r\n\r\n"
      << body;
  }
  std::ostringstream out, err;
  EXPECT_EQ(run_parse({path}, out, err), 0);
  auto j = lines_of(out.str()).at(0);
  EXPECT_EQ(j["sdp"]["connection"], "127.0.0.2");
  EXPECT_EQ(j["sdp"]["media"][0]["port"], 4000);
  EXPECT_EQ(j["sdp"]["media"][0]["codecs"][0], "PCMA/8000");
  EXPECT_EQ(j["sdp"]["media"][0]["codecs"][1], "telephone-event/8000");
  EXPECT_EQ(j["sdp"]["media"][0]["ptime"], 20);
  EXPECT_EQ(j["sdp"]["media"][0]["direction"], "sendrecv");
}

TEST(ParseCommand, ReportsFailuresWithStatusAndExitsOne) {
  std::ostringstream out, err;
  EXPECT_EQ(run_parse({torture_path("badvers"), torture_path("bigcode"), torture_path("zeromf")},
                      out, err),
            1);
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_FALSE(lines[0]["ok"].get<bool>());
  EXPECT_EQ(lines[0]["status"], 505);
  EXPECT_EQ(lines[0]["error"], "bad_version");
  EXPECT_EQ(lines[1]["status"], "discard");
  EXPECT_TRUE(lines[2]["ok"].get<bool>());
  EXPECT_EQ(lines[2]["max_forwards"], 0);
}

TEST(ParseCommand, StreamModeFramesSeveralMessages) {
  const std::string path = testing::TempDir() + "/stream.bin";
  {
    std::ifstream a(torture_path("zeromf"), std::ios::binary);
    std::stringstream s;
    s << a.rdbuf();
    std::ofstream o(path, std::ios::binary);
    o << "\r\n\r\n" << s.str() << s.str();
  }
  std::ostringstream out, err;
  EXPECT_EQ(run_parse({"--stream", path}, out, err), 0);
  auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[1]["index"], 1);
  EXPECT_EQ(lines[1]["method"], "OPTIONS");
}

TEST(ParseCommand, BadUsageExitsTwo) {
  std::ostringstream out, err;
  EXPECT_EQ(run_parse({}, out, err), 2);
  EXPECT_EQ(run_parse({"--bogus", "x"}, out, err), 2);
  EXPECT_EQ(run_parse({"/nonexistent/file"}, out, err), 2);
}

}  // namespace
}  // namespace esg::app
