#include "sip/params.hpp"

#include <gtest/gtest.h>

namespace esg::sip {
namespace {

TEST(Params, CursorReadsFlagsValuesAndQuotedStrings) {
  ParamCursor c(" ; a = 1 ;flag; text=\"x;y\"");
  Param p;
  ASSERT_TRUE(c.next(p));
  EXPECT_EQ(p.name, "a");
  EXPECT_EQ(p.value, "1");
  ASSERT_TRUE(c.next(p));
  EXPECT_EQ(p.name, "flag");
  EXPECT_FALSE(p.has_value);
  ASSERT_TRUE(c.next(p));
  EXPECT_EQ(p.value, "\"x;y\"");
  EXPECT_FALSE(c.next(p));
  EXPECT_TRUE(c.ok());
}

TEST(Params, Validity) {
  EXPECT_TRUE(params_valid(""));
  EXPECT_TRUE(params_valid(";a;b=c"));
  EXPECT_FALSE(params_valid(";"));
  EXPECT_FALSE(params_valid(";a="));
  EXPECT_FALSE(params_valid("a"));
  EXPECT_FALSE(params_valid(";a=\"open"));
}

TEST(Params, FindIsCaseInsensitive) {
  EXPECT_EQ(find_param(";Tag=abc", "tag"), "abc");
  EXPECT_FALSE(find_param(";tagx=1", "tag"));
}

TEST(Params, Unquote) {
  EXPECT_EQ(unquote("\"a\\\"b\""), "a\"b");
  EXPECT_EQ(unquote("plain"), "plain");
}

}  // namespace
}  // namespace esg::sip
