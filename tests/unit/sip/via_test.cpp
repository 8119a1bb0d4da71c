#include "sip/via.hpp"

#include <gtest/gtest.h>

namespace esg::sip {
namespace {

TEST(Via, AllKnownParameters) {
  auto v = parse_via(
      "SIP/2.0/TLS [2001:db8::9]:5061;branch=z9hG4bKabc;received=192.0.2.1;rport=4000;"
      "maddr=224.0.0.1;ttl=16;x=y");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->protocol, "SIP");
  EXPECT_EQ(v->version, "2.0");
  EXPECT_EQ(v->transport, "TLS");
  EXPECT_EQ(v->host, "[2001:db8::9]");
  EXPECT_EQ(v->port, 5061);
  EXPECT_EQ(v->branch, "z9hG4bKabc");
  EXPECT_EQ(v->received, "192.0.2.1");
  EXPECT_TRUE(v->rport);
  EXPECT_EQ(v->rport_value, 4000);
  EXPECT_EQ(v->maddr, "224.0.0.1");
  EXPECT_EQ(v->ttl, 16);
  EXPECT_EQ(v->param("x"), "y");
}

TEST(Via, EmptyRportAndNoPort) {
  auto v = parse_via("SIP/2.0/UDP host.example;rport;branch=z9hG4bK1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->port, 0);
  EXPECT_TRUE(v->rport);
  EXPECT_FALSE(v->rport_value);
}

TEST(Via, Errors) {
  EXPECT_FALSE(parse_via("SIP/2.0 host"));
  EXPECT_FALSE(parse_via("SIP/2.0/UDP"));
  EXPECT_FALSE(parse_via("SIP/2.0/UDP host:99999"));
  EXPECT_FALSE(parse_via("SIP/2.0/UDP host;;"));
  EXPECT_FALSE(parse_via("SIP/2.0/UDP host;ttl=300"));
  EXPECT_FALSE(parse_via("SIP/2.0/UDP host;branch="));
  EXPECT_FALSE(parse_via_list("SIP/2.0/UDP a, ,SIP/2.0/UDP b"));
}

TEST(Via, ListOfValues) {
  auto list = parse_via_list("SIP/2.0/UDP a;branch=z9hG4bK1 , SIP / 2.0 / TCP b:5070");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].transport, "TCP");
  EXPECT_EQ((*list)[1].port, 5070);
}

}  // namespace
}  // namespace esg::sip
