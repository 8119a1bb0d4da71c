#include "telegram/calls/servers.hpp"

#include <gtest/gtest.h>

#include "base/base64.hpp"

namespace esg::telegram::calls {
namespace {

using nlohmann::json;

const std::string kTag = "0123456789abcdef";

json reflector(json id, const std::string& v4, const std::string& v6, int port, bool tcp = false,
               const std::string& tag = kTag) {
  return {{"@type", "callServer"},
          {"id", id},
          {"ip_address", v4},
          {"ipv6_address", v6},
          {"port", port},
          {"type",
           {{"@type", "callServerTypeTelegramReflector"},
            {"peer_tag", base64::encode(tag)},
            {"is_tcp", tcp}}}};
}

json webrtc(json id, const std::string& v4, int port, bool stun, bool turn) {
  return {{"@type", "callServer"},
          {"id", id},
          {"ip_address", v4},
          {"ipv6_address", ""},
          {"port", port},
          {"type",
           {{"@type", "callServerTypeWebrtc"},
            {"username", "u"},
            {"password", "p"},
            {"supports_turn", turn},
            {"supports_stun", stun}}}};
}

media::ice::Endpoint ep(const char* ip, uint16_t port) {
  return {boost::asio::ip::make_address(ip), port};
}

TEST(CallServers, ReflectorIdsAreRanksOfAllReflectorIdsTcpIncludedAscending) {
  // Unsorted ids, int64 as TDLib writes them (strings) and as numbers; the TCP one (id 5)
  // counts in the numbering but is skipped; a WebRTC server's id does not count.
  const json servers = json::array({
      reflector("900", "10.0.0.9", "", 596),
      webrtc("1", "10.0.0.50", 3478, true, true),
      reflector(5, "10.0.0.5", "", 443, true),
      reflector("7000000000", "10.0.0.70", "fd00::70", 597),
  });
  const CallServers c = parse_call_servers(servers);
  ASSERT_EQ(c.reflectors.size(), 3u);
  // 5 -> 1 (TCP, skipped), 900 -> 2, 7000000000 -> 3; IPv4 and IPv6 of one server: one id.
  EXPECT_EQ(c.reflectors[0], (media::ice::ReflectorServer{2, ep("10.0.0.9", 596), kTag}));
  EXPECT_EQ(c.reflectors[1], (media::ice::ReflectorServer{3, ep("10.0.0.70", 597), kTag}));
  EXPECT_EQ(c.reflectors[2], (media::ice::ReflectorServer{3, ep("fd00::70", 597), kTag}));
  EXPECT_EQ(c.skipped_tcp_reflectors, 1u);
  ASSERT_EQ(c.skipped.size(), 1u);
  EXPECT_EQ(c.skipped[0].id, "5");
  EXPECT_EQ(c.skipped[0].address, "10.0.0.5:443");
  EXPECT_NE(c.skipped[0].why.find("TCP"), std::string::npos);
  // The WebRTC server: STUN and TURN.
  ASSERT_EQ(c.ice.size(), 2u);
  EXPECT_FALSE(c.ice[0].turn);
  EXPECT_TRUE(c.ice[1].turn);
  EXPECT_EQ(c.ice[1].address, ep("10.0.0.50", 3478));
  EXPECT_EQ(c.ice[1].username, "u");
  EXPECT_EQ(c.ice[1].password, "p");
}

TEST(CallServers, TwoIdsAndTheSameIdTwice) {
  const json servers = json::array({
      reflector("20", "10.0.0.2", "", 596), reflector("10", "10.0.0.1", "", 596),
      reflector("20", "", "fd00::2", 596),  // the same server listed again for its IPv6
  });
  const CallServers c = parse_call_servers(servers);
  ASSERT_EQ(c.reflectors.size(), 3u);
  EXPECT_EQ(c.reflectors[0].id, 2);
  EXPECT_EQ(c.reflectors[1].id, 1);
  EXPECT_EQ(c.reflectors[2].id, 2);
  EXPECT_EQ(c.reflectors[2].address, ep("fd00::2", 596));
  EXPECT_TRUE(c.skipped.empty());
}

TEST(CallServers, BadEntriesAreSkippedAndNamedNeverThrown) {
  json bad_port = reflector("1", "10.0.0.1", "", 0);
  json bad_tag = reflector("2", "10.0.0.2", "", 596, false, "short");
  json no_id = reflector("x", "10.0.0.3", "", 596);
  json no_address = reflector("3", "nowhere", "", 596);
  json unknown = {{"id", "4"}, {"type", {{"@type", "callServerTypeFuture"}}}};
  json wrong_types = {{"id", json::array()}, {"port", "596"}, {"type", 7}};
  const json servers = json::array({bad_port, bad_tag, no_id, no_address, unknown, wrong_types,
                                    "text", 5, reflector("3", "10.0.0.4", "", 596)});
  CallServers c;
  ASSERT_NO_THROW(c = parse_call_servers(servers));
  EXPECT_EQ(c.skipped.size(), 8u);
  EXPECT_EQ(c.skipped_tcp_reflectors, 0u);
  // Ids 1, 2, 3 (the unreadable one does not count): the good one, id "3", is rank 3.
  ASSERT_EQ(c.reflectors.size(), 1u);
  EXPECT_EQ(c.reflectors[0].id, 3);
  EXPECT_EQ(c.reflectors[0].address, ep("10.0.0.4", 596));
  EXPECT_TRUE(parse_call_servers(json()).reflectors.empty());
  EXPECT_TRUE(parse_call_servers(json::object()).skipped.empty());
}

TEST(CustomParameters, EveryTrueKeyIsUnknownEmptyAndInvalidAreSurvived) {
  auto p = parse_custom_parameters(
      R"({"network_use_mtproto": true, "network_standalone_reflectors": false, "x": 1,)"
      R"( "network_enable_shared_socket": true})");
  EXPECT_TRUE(p.valid);
  // nlohmann's object keeps keys sorted.
  EXPECT_EQ(p.unknown_true,
            (std::vector<std::string>{"network_enable_shared_socket", "network_use_mtproto"}));
  EXPECT_EQ(p.value["x"], 1);
  EXPECT_EQ(p.value["network_standalone_reflectors"], false);
  p = parse_custom_parameters("");
  EXPECT_TRUE(p.valid);
  EXPECT_EQ(p.value, json::object());
  EXPECT_TRUE(p.unknown_true.empty());
  for (const char* bad : {"{", "[true]", "true", "\"network_use_mtproto\": true"}) {
    p = parse_custom_parameters(bad);
    EXPECT_FALSE(p.valid) << bad;
    EXPECT_EQ(p.value, bad);
    EXPECT_TRUE(p.unknown_true.empty());
  }
}

}  // namespace
}  // namespace esg::telegram::calls
