#include "edge/pattern.hpp"

#include <gtest/gtest.h>

using esg::edge::glob_match;
using esg::edge::Pattern;

TEST(Pattern, MasksMatchWholeValues) {
  EXPECT_TRUE(glob_match("44.55.6?.*", "44.55.66.77"));
  EXPECT_FALSE(glob_match("44.55.6?.*", "44.55.666.77"));
  EXPECT_TRUE(glob_match("prov-*", "PROV-1"));
  EXPECT_FALSE(glob_match("prov-*", "xprov-1"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_TRUE(glob_match("a*b*c", "aXXbYYc"));
  EXPECT_FALSE(glob_match("a*b*c", "aXXbYY"));
}

TEST(Pattern, ExactIsCaseInsensitive) {
  EXPECT_TRUE(Pattern("Example.COM").matches("example.com"));
  EXPECT_FALSE(Pattern("example.com").matches("example.co"));
}

TEST(Pattern, RegexMatchesTheWholeValue) {
  Pattern p("/reg/10\\.0\\.0\\.[0-9]+");
  EXPECT_TRUE(p.matches("10.0.0.15"));
  EXPECT_FALSE(p.matches("110.0.0.15"));
  std::string error;
  Pattern broken("/reg/(", false, &error);
  EXPECT_TRUE(broken.empty());
  EXPECT_NE(error.find("bad regular expression"), std::string::npos);
  EXPECT_FALSE(broken.matches("("));
}

TEST(Pattern, CidrForAddresses) {
  Pattern p("10.1.0.0/16", true);
  EXPECT_TRUE(p.matches("10.1.200.3"));
  EXPECT_FALSE(p.matches("10.2.0.1"));
  EXPECT_FALSE(p.matches("not-an-ip"));
  Pattern v6("2001:db8::/32", true);
  EXPECT_TRUE(v6.matches("2001:db8::1"));
  EXPECT_FALSE(v6.matches("2001:db9::1"));
  Pattern odd("192.168.1.128/25", true);
  EXPECT_TRUE(odd.matches("192.168.1.200"));
  EXPECT_FALSE(odd.matches("192.168.1.100"));
}
