#include "telegram/calls/messages.hpp"

#include <gtest/gtest.h>

#include "capture.hpp"

namespace esg::telegram::calls {
namespace {

using test::Capture;
using test::capture_names;
using test::load_capture;

template <typename T>
T parse_as(const std::string& json) {
  auto r = parse_message(json);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error());
  if (!r) return {};
  const T* m = std::get_if<T>(&*r);
  EXPECT_NE(m, nullptr) << json;
  return m ? *m : T{};
}

std::string error_of(const std::string& json) {
  auto r = parse_message(json);
  EXPECT_FALSE(r.has_value()) << json;
  return r ? "" : r.error();
}

TEST(Messages, EveryCapturedMessageParsesAndSerializesToTheSameBytes) {
  size_t n = 0;
  for (const std::string& name : capture_names()) {
    const Capture c = load_capture(name);
    std::vector<std::string> all = c.sent_a;
    all.insert(all.end(), c.sent_b.begin(), c.sent_b.end());
    all.insert(all.end(), c.data_channel.begin(), c.data_channel.end());
    for (const std::string& json : all) {
      auto m = parse_message(json);
      ASSERT_TRUE(m.has_value()) << json << ": " << m.error();
      EXPECT_EQ(serialize(*m), json);
      ++n;
    }
  }
  EXPECT_GT(n, 30u);
}

TEST(Messages, ParsesInitialSetup) {
  const auto m = parse_as<InitialSetup>(
      R"({"@type":"InitialSetup","fingerprints":[{"fingerprint":"3A:7F:C2","hash":"sha-256",)"
      R"("setup":"actpass"}],"pwd":"q8Yh3m0kV1xZp5Lr2Tn6Wc9A","renomination":true,"ufrag":"Gk2/"})");
  EXPECT_EQ(m.ufrag, "Gk2/");
  EXPECT_EQ(m.pwd, "q8Yh3m0kV1xZp5Lr2Tn6Wc9A");
  EXPECT_TRUE(m.renomination);
  ASSERT_EQ(m.fingerprints.size(), 1u);
  EXPECT_EQ(m.fingerprints[0], (Fingerprint{"sha-256", "actpass", "3A:7F:C2"}));
  // renomination is optional (false).
  EXPECT_FALSE(parse_as<InitialSetup>(R"({"@type":"InitialSetup","ufrag":"u","pwd":"p",)"
                                      R"("fingerprints":[]})")
                   .renomination);
}

TEST(Messages, ParsesCandidates) {
  const auto m = parse_as<Candidates>(
      R"({"@type":"Candidates","candidates":[{"sdpString":"candidate:1 1 udp 2122260223 )"
      R"(192.0.2.1 50710 typ host"},{"sdpString":"candidate:2 1 udp 41819903 )"
      R"(reflector-2-3805618839.reflector 596 typ relay","sdpMid":"0","sdpMLineIndex":0}]})");
  EXPECT_EQ(m.sdp_strings,
            (std::vector<std::string>{"candidate:1 1 udp 2122260223 192.0.2.1 50710 typ host",
                                      "candidate:2 1 udp 41819903 reflector-2-3805618839.reflector "
                                      "596 typ relay"}));
}

TEST(Messages, ParsesNegotiateChannelsWithSsrcsAsStringsOrNumbers) {
  const auto m = parse_as<NegotiateChannels>(
      R"({"@type":"NegotiateChannels","exchangeId":"1904187316","contents":[)"
      R"({"type":"audio","ssrc":"2742128513","payloadTypes":[{"id":111,"name":"opus",)"
      R"("clockrate":48000,"channels":2,"feedbackTypes":[{"type":"transport-cc","subtype":""}],)"
      R"("parameters":{"minptime":"10","useinbandfec":"1"}}],"rtpExtensions":[{"id":2,)"
      R"("uri":"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"}]},)"
      R"({"type":"video","ssrc":4294967295,"ssrcGroups":[{"semantics":"FID",)"
      R"("ssrcs":["1",2]}]}]})");
  EXPECT_EQ(m.exchange_id, 1904187316u);
  ASSERT_EQ(m.contents.size(), 2u);
  const MediaContent& audio = m.contents[0];
  EXPECT_EQ(audio.type, "audio");
  EXPECT_EQ(audio.ssrc, 2742128513u);
  ASSERT_EQ(audio.payload_types.size(), 1u);
  const PayloadType& opus = audio.payload_types[0];
  EXPECT_EQ(opus.id, 111u);
  EXPECT_EQ(opus.name, "opus");
  EXPECT_EQ(opus.clockrate, 48000u);
  EXPECT_EQ(opus.channels, 2u);
  EXPECT_EQ(opus.feedback_types, (std::vector<FeedbackType>{{"transport-cc", ""}}));
  EXPECT_EQ(opus.parameters, (std::vector<std::pair<std::string, std::string>>{
                                 {"minptime", "10"}, {"useinbandfec", "1"}}));
  EXPECT_EQ(audio.rtp_extensions,
            (std::vector<RtpExtension>{
                {2, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"}}));
  const MediaContent& video = m.contents[1];
  EXPECT_EQ(video.ssrc, 4294967295u);
  EXPECT_EQ(video.ssrc_groups, (std::vector<SsrcGroup>{{"FID", {1, 2}}}));
  EXPECT_TRUE(video.payload_types.empty());
  // exchangeId as a number too.
  EXPECT_EQ(parse_as<NegotiateChannels>(R"({"@type":"NegotiateChannels","exchangeId":7,)"
                                        R"("contents":[]})")
                .exchange_id,
            7u);
}

TEST(Messages, ParsesMediaStateWithDefaults) {
  const auto m = parse_as<MediaState>(
      R"({"@type":"MediaState","lowBattery":true,"muted":true,"screencastState":"active",)"
      R"("videoRotation":270,"videoState":"suspended"})");
  EXPECT_EQ(m, (MediaState{true, true, "suspended", "active", 270}));
  EXPECT_EQ(parse_as<MediaState>(R"({"@type":"MediaState"})"), MediaState{});
}

TEST(Messages, IgnoresUnknownKeys) {
  const auto m = parse_as<Candidates>(
      R"({"@type":"Candidates","future":{"x":[1,2]},"candidates":[{"sdpString":"c","extra":1}]})");
  EXPECT_EQ(m.sdp_strings, std::vector<std::string>{"c"});
}

TEST(Messages, RefusesAnUnknownTypeNamingIt) {
  EXPECT_NE(error_of(R"({"@type":"VideoParameters","x":1})").find("'VideoParameters'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"type":"Candidates"})").find("'@type'"), std::string::npos);
  EXPECT_NE(error_of(R"({"@type":5})").find("'@type'"), std::string::npos);
  EXPECT_NE(error_of("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error_of(R"({"@type":"Candidates",)").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error_of("").find("not valid JSON"), std::string::npos);
}

TEST(Messages, RefusesMissingRequiredFieldsNamingThem) {
  struct Case {
    const char* json;
    const char* field;
  };
  const Case cases[] = {
      {R"({"@type":"InitialSetup","pwd":"p","fingerprints":[]})", "'ufrag'"},
      {R"({"@type":"InitialSetup","ufrag":"u","fingerprints":[]})", "'pwd'"},
      {R"({"@type":"InitialSetup","ufrag":"u","pwd":"p"})", "'fingerprints'"},
      {R"({"@type":"InitialSetup","ufrag":"u","pwd":"p","fingerprints":[{"hash":"sha-256",)"
       R"("setup":"actpass"}]})",
       "'fingerprints[0].fingerprint'"},
      {R"({"@type":"Candidates"})", "'candidates'"},
      {R"({"@type":"Candidates","candidates":[{"sdpString":"a"},{}]})",
       "'candidates[1].sdpString'"},
      {R"({"@type":"NegotiateChannels","contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1"})", "'contents'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio"}]})",
       "'contents[0].ssrc'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"ssrc":"1"}]})",
       "'contents[0].type'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1",)"
       R"("payloadTypes":[{"id":111,"clockrate":48000}]}]})",
       "'contents[0].payloadTypes[0].name'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1",)"
       R"("rtpExtensions":[{"id":2}]}]})",
       "'contents[0].rtpExtensions[0].uri'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio","ssrc":"1",)"
       R"("ssrcGroups":[{"semantics":"FID"}]}]})",
       "'contents[0].ssrcGroups[0].ssrcs'"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.json);
    EXPECT_NE(e.find(c.field), std::string::npos) << c.json << " -> " << e;
    EXPECT_NE(e.find("missing"), std::string::npos) << e;
  }
}

TEST(Messages, RefusesFieldsOfTheWrongTypeNamingThem) {
  struct Case {
    const char* json;
    const char* field;
  };
  const Case cases[] = {
      {R"({"@type":"InitialSetup","ufrag":1,"pwd":"p","fingerprints":[]})", "'ufrag'"},
      {R"({"@type":"InitialSetup","ufrag":"u","pwd":"p","renomination":"yes","fingerprints":[]})",
       "'renomination'"},
      {R"({"@type":"InitialSetup","ufrag":"u","pwd":"p","fingerprints":{}})", "'fingerprints'"},
      {R"({"@type":"InitialSetup","ufrag":"u","pwd":"p","fingerprints":["x"]})",
       "'fingerprints[0]'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"12x","contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"4294967296","contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":-1,"contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":1.5,"contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"","contents":[]})", "'exchangeId'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio",)"
       R"("ssrc":"1","payloadTypes":[{"id":"111","name":"opus","clockrate":48000}]}]})",
       "'contents[0].payloadTypes[0].id'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio",)"
       R"("ssrc":"1","payloadTypes":[{"id":111,"name":"opus","clockrate":48000,)"
       R"("parameters":{"minptime":10}}]}]})",
       "'contents[0].payloadTypes[0].parameters.minptime'"},
      {R"({"@type":"NegotiateChannels","exchangeId":"1","contents":[{"type":"audio",)"
       R"("ssrc":"1","ssrcGroups":[{"semantics":"FID","ssrcs":["1",true]}]}]})",
       "'contents[0].ssrcGroups[0].ssrcs[1]'"},
      {R"({"@type":"MediaState","muted":"no"})", "'muted'"},
      {R"({"@type":"MediaState","videoRotation":"90"})", "'videoRotation'"},
      {R"({"@type":"MediaState","videoState":0})", "'videoState'"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of(c.json);
    EXPECT_NE(e.find(c.field), std::string::npos) << c.json << " -> " << e;
    EXPECT_NE(e.find("wrong type"), std::string::npos) << e;
  }
}

TEST(Messages, RefusesGzipWithAClearError) {
  const std::string gz("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
  EXPECT_NE(error_of(gz).find("gzip"), std::string::npos);
}

TEST(Messages, SerializesAsTgcallsWithSsrcsAsStrings) {
  NegotiateChannels n;
  n.exchange_id = 4000000000u;
  MediaContent c;
  c.type = "audio";
  c.ssrc = 2742128513u;
  c.ssrc_groups = {{"FID", {1, 4294967295u}}};
  PayloadType pt;
  pt.id = 111;
  pt.name = "opus";
  pt.clockrate = 48000;
  pt.channels = 2;
  pt.parameters = {{"useinbandfec", "1"}, {"minptime", "10"}};  // written sorted, as json11 does
  c.payload_types = {pt};
  n.contents = {c};
  EXPECT_EQ(serialize(n),
            R"({"@type": "NegotiateChannels", "contents": [{"payloadTypes": [{"channels": 2, )"
            R"("clockrate": 48000, "feedbackTypes": [], "id": 111, "name": "opus", "parameters": )"
            R"({"minptime": "10", "useinbandfec": "1"}}], "rtpExtensions": [], "ssrc": )"
            R"("2742128513", "ssrcGroups": [{"semantics": "FID", "ssrcs": ["1", "4294967295"]}], )"
            R"("type": "audio"}], "exchangeId": "4000000000"})");
  // Empty groups and payload types are left out; rtpExtensions is always there.
  MediaContent bare;
  bare.type = "video";
  bare.ssrc = 5;
  EXPECT_EQ(serialize(NegotiateChannels{1, {bare}}),
            R"({"@type": "NegotiateChannels", "contents": [{"rtpExtensions": [], "ssrc": "5", )"
            R"("type": "video"}], "exchangeId": "1"})");
}

TEST(Messages, RoundTripsEveryType) {
  InitialSetup is{"Gk2/", "q8Yh3m0kV1xZp5Lr2Tn6Wc9A", false, {{"sha-256", "passive", "AA:BB"}}};
  Candidates cs{{"candidate:1 1 udp 1 192.0.2.1 1 typ host", "candidate:2 1 udp 2 ::1 2 typ host"}};
  PayloadType pt{111,
                 "opus",
                 48000,
                 2,
                 {{"transport-cc", ""}, {"nack", "pli"}},
                 {{"minptime", "10"}, {"useinbandfec", "1"}}};
  MediaContent mc{"audio", 1, {{"SIM", {1, 2, 3}}}, {pt}, {{3, "urn:x"}, {2, "urn:y"}}};
  NegotiateChannels nc{4294967295u, {mc, MediaContent{"video", 9, {}, {}, {}}}};
  MediaState ms{true, false, "active", "suspended", 90};
  for (const Message& m : std::vector<Message>{is, cs, nc, ms, Candidates{}, NegotiateChannels{}}) {
    auto back = parse_message(serialize(m));
    ASSERT_TRUE(back.has_value()) << serialize(m) << ": " << back.error();
    EXPECT_EQ(*back, m) << serialize(m);
  }
}

TEST(Messages, EscapesStringsAsJson11) {
  Candidates c{{std::string("q\"b\\n\n\t\x01 \xe2\x80\xa8 \xc3\xa9")}};
  EXPECT_EQ(serialize(c),
            "{\"@type\": \"Candidates\", \"candidates\": [{\"sdpString\": "
            "\"q\\\"b\\\\n\\n\\t\\u0001 \\u2028 \xc3\xa9\"}]}");
  auto back = parse_message(serialize(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(std::get<Candidates>(*back), c);
}

}  // namespace
}  // namespace esg::telegram::calls
