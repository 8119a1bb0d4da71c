#include "sip/name_addr.hpp"

#include <gtest/gtest.h>

namespace esg::sip {
namespace {

TEST(NameAddr, QuotedDisplayNameAndParams) {
  auto na = parse_name_addr("\"Alice \\\"A\\\" Smith\" <sip:alice@127.0.0.1;lr> ;tag=88 ;x");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->display_name_unquoted(), "Alice \"A\" Smith");
  EXPECT_TRUE(na->angle_brackets);
  EXPECT_TRUE(na->uri.has_param("lr"));
  EXPECT_EQ(na->tag(), "88");
  EXPECT_TRUE(na->param("x").has_value());
}

TEST(NameAddr, TokenDisplayName) {
  auto na = parse_name_addr("Bob Jones <sip:bob@h>");
  ASSERT_TRUE(na);
  EXPECT_EQ(na->display_name, "Bob Jones");
}

TEST(NameAddr, AddrSpecParamsBelongToTheHeader) {
  auto na = parse_name_addr("sip:carol@h;tag=5");
  ASSERT_TRUE(na);
  EXPECT_FALSE(na->angle_brackets);
  EXPECT_EQ(na->tag(), "5");
  EXPECT_TRUE(na->uri.params.empty());
}

TEST(NameAddr, Errors) {
  EXPECT_FALSE(parse_name_addr(""));
  EXPECT_FALSE(parse_name_addr("\"open <sip:a@b>"));
  EXPECT_FALSE(parse_name_addr("<sip:a@b"));
  EXPECT_FALSE(parse_name_addr("Smith, John <sip:a@b>"));
  EXPECT_FALSE(parse_name_addr("< sip:a@b >"));
  EXPECT_FALSE(parse_name_addr("<sip:a@b> junk"));
  EXPECT_FALSE(parse_name_addr("sip:a@b?h=1"));
  // Fuzzer finding: a comma in an addr-spec (it must be in <>, RFC 3261 §20.10).
  EXPECT_FALSE(parse_name_addr("sip:j.user,@example.com"));
  EXPECT_FALSE(parse_name_addr("<sip:a@b>;;"));
}

TEST(Contacts, StarListAndCommasInsideQuotes) {
  auto star = parse_contacts(" * ");
  ASSERT_TRUE(star);
  EXPECT_TRUE(star->star);
  auto list =
      parse_contacts("\"Doe, John\" <sip:j@h1>;expires=60, <sip:k@h2;a=b>;q=0.5 , sip:l@h3");
  ASSERT_TRUE(list);
  ASSERT_EQ(list->items.size(), 3u);
  EXPECT_EQ(list->items[0].display_name_unquoted(), "Doe, John");
  EXPECT_EQ(list->items[0].param("expires"), "60");
  EXPECT_EQ(list->items[1].param("q"), "0.5");
  EXPECT_EQ(list->items[2].uri.host, "h3");
  EXPECT_FALSE(parse_contacts("<sip:a@b>,,<sip:c@d>"));
  EXPECT_FALSE(parse_contacts("\"unterminated <sip:a@b>"));
}

TEST(Contacts, ExpiresAndQParameters) {
  auto c = parse_name_addr("<sip:a@h>;expires=280297596632815;q=0.25");
  ASSERT_TRUE(c);
  EXPECT_EQ(**c->expires(), UINT32_MAX);  // saturates, never wraps
  EXPECT_EQ(**c->q(), 250);
  auto one = parse_name_addr("<sip:a@h>;q=1.000;expires=60");
  EXPECT_EQ(**one->q(), 1000);
  EXPECT_EQ(**one->expires(), 60u);
  EXPECT_FALSE(parse_name_addr("<sip:a@h>")->q());
  for (const char* bad : {"<sip:a@h>;q=1.5", "<sip:a@h>;q=2", "<sip:a@h>;q=0.1234",
                          "<sip:a@h>;q=.5", "<sip:a@h>;q=0,5"}) {
    auto na = parse_name_addr(bad);
    if (!na) continue;  // rejected already by the parameter syntax
    ASSERT_TRUE(na->q()) << bad;
    EXPECT_FALSE(*na->q()) << bad;
  }
  EXPECT_FALSE(*parse_name_addr("<sip:a@h>;expires=soon")->expires());
}

TEST(NameAddrList, RouteSet) {
  auto routes = parse_name_addr_list("<sip:p1.example;lr>,<sip:p2.example;lr>");
  ASSERT_TRUE(routes);
  ASSERT_EQ(routes->size(), 2u);
  EXPECT_EQ((*routes)[1].uri.host, "p2.example");
  EXPECT_FALSE(parse_name_addr_list("*"));
}

}  // namespace
}  // namespace esg::sip
