#include "sip/uri.hpp"

#include <gtest/gtest.h>

namespace esg::sip {
namespace {

TEST(Uri, SipWithEverything) {
  auto u = parse_uri("sips:alice:secret@[2001:db8::1]:5061;transport=tcp;lr?subject=hi&x=y");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->scheme, Scheme::Sips);
  EXPECT_EQ(u->user, "alice");
  EXPECT_TRUE(u->has_password);
  EXPECT_EQ(u->password, "secret");
  EXPECT_EQ(u->host, "[2001:db8::1]");
  EXPECT_EQ(u->host_type, HostType::IPv6);
  EXPECT_EQ(u->port, 5061);
  EXPECT_EQ(u->param("transport"), "tcp");
  EXPECT_EQ(u->param("lr"), "");
  EXPECT_FALSE(u->param("maddr"));
  EXPECT_EQ(u->headers, "subject=hi&x=y");
}

TEST(Uri, HostKinds) {
  EXPECT_EQ(parse_uri("sip:127.0.0.1")->host_type, HostType::IPv4);
  EXPECT_EQ(parse_uri("sip:pbx.example.com")->host_type, HostType::Name);
  EXPECT_FALSE(parse_uri("sip:1.2.3"));  // all digits but not a dotted quad
  EXPECT_FALSE(parse_uri("sip:300.1.1.1"));
  EXPECT_FALSE(parse_uri("sip:user@"));
  EXPECT_FALSE(parse_uri("sip:host:0"));
  EXPECT_FALSE(parse_uri("sip:host:65536"));
  EXPECT_FALSE(parse_uri("sip:[::1"));
}

TEST(Uri, TelAndOpaqueSchemes) {
  auto tel = parse_uri("tel:+1-201-555-0123;phone-context=example.com");
  ASSERT_TRUE(tel);
  EXPECT_EQ(tel->scheme, Scheme::Tel);
  EXPECT_EQ(tel->user, "+1-201-555-0123");
  EXPECT_EQ(tel->param("phone-context"), "example.com");
  auto other = parse_uri("urn:service:sos");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->scheme, Scheme::Other);
  EXPECT_EQ(other->opaque, "service:sos");
}

TEST(Uri, RejectsWhitespaceBracketsAndNoScheme) {
  EXPECT_FALSE(parse_uri("sip:a b@host"));
  EXPECT_FALSE(parse_uri("<sip:host>"));
  EXPECT_FALSE(parse_uri("host.example.com"));
  EXPECT_FALSE(parse_uri(""));
  EXPECT_FALSE(parse_uri("sip:host;"));
  EXPECT_FALSE(parse_uri("sip:host;=x"));
}

TEST(Uri, Unescape) {
  EXPECT_EQ(unescape("%41%42c"), "ABc");
  EXPECT_EQ(unescape("100%"), "100%");
  EXPECT_EQ(unescape("%zz"), "%zz");
  EXPECT_EQ(unescape("%4"), "%4");
}

bool eq(const char* a, const char* b) {
  return uri_equal(*parse_uri(a), *parse_uri(b));
}

// RFC 3261 §19.1.4's examples of equal and unequal URIs.
TEST(UriEqual, Rfc3261EquivalentPairs) {
  EXPECT_TRUE(eq("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"));
  EXPECT_TRUE(eq("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"));
  EXPECT_TRUE(eq("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"));
  EXPECT_TRUE(eq("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"));
  EXPECT_TRUE(eq("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                 "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"));
  EXPECT_TRUE(eq("sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                 "sip:alice@atlanta.com?priority=urgent&subject=project%20x"));
}

TEST(UriEqual, Rfc3261DifferentPairs) {
  EXPECT_FALSE(eq("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"));
  EXPECT_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"));
  EXPECT_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"));
  EXPECT_FALSE(eq("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"));
  EXPECT_FALSE(eq("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"));
  EXPECT_FALSE(eq("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"));
  EXPECT_FALSE(eq("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"));
  EXPECT_FALSE(eq("sip:alice@atlanta.com", "sips:alice@atlanta.com"));
}

}  // namespace
}  // namespace esg::sip
