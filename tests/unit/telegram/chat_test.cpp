#include "telegram/chat.hpp"

#include <gtest/gtest.h>

namespace {

using esg::telegram::ChatCommand;
using esg::telegram::MenuEntry;
using esg::telegram::parse_chat;
using esg::telegram::PerUserInterval;
using esg::telegram::render_menu;
using Kind = ChatCommand::Kind;

const std::vector<MenuEntry> kMenu = {{"1", "Sales", "", ""}, {"2", "Support", "pbx2", "300"}};

TEST(ChatMenu, TheTemplateGetsTheLabelsInOrder) {
  EXPECT_EQ(render_menu("{menu}; send a digit, then call", kMenu),
            "1 \u2014 Sales, 2 \u2014 Support; send a digit, then call");
  EXPECT_EQ(render_menu("Lines: {menu}. Again: {menu}", {{"9", "Desk", "", ""}}),
            "Lines: 9 \u2014 Desk. Again: 9 \u2014 Desk");
  EXPECT_EQ(render_menu("No placeholder", kMenu), "No placeholder");
  EXPECT_EQ(render_menu("{menu", kMenu), "{menu");
}

TEST(ChatCommand, TheCallbackKeywordAloneOrWithANumberInAnyCase) {
  auto c = parse_chat("callback", kMenu, "callback");
  EXPECT_EQ(c.kind, Kind::Callback);
  EXPECT_EQ(c.number, "");
  c = parse_chat("  CallBack   205 ", kMenu, "callback");
  EXPECT_EQ(c.kind, Kind::Callback);
  EXPECT_EQ(c.number, "205");
  // Other words that begin with it, or a text after it, are not a request.
  EXPECT_EQ(parse_chat("callbacks", kMenu, "callback").kind, Kind::Other);
  EXPECT_EQ(parse_chat("callback me now", kMenu, "callback").kind, Kind::Other);
  // No keyword configured: the word is just a message.
  EXPECT_EQ(parse_chat("callback", kMenu, "").kind, Kind::Other);
}

TEST(ChatCommand, AKeyOfTheMenuThenDigitsThenAnythingElse) {
  auto c = parse_chat(" 2 ", kMenu, "callback");
  EXPECT_EQ(c.kind, Kind::MenuKey);
  EXPECT_EQ(c.entry, 1u);
  c = parse_chat("205", kMenu, "callback");
  EXPECT_EQ(c.kind, Kind::Digits);
  EXPECT_EQ(c.number, "205");
  EXPECT_EQ(parse_chat("1", {}, "").kind, Kind::Digits);  // no menu: an internal number
  EXPECT_EQ(parse_chat("Hello", kMenu, "callback").kind, Kind::Other);
  EXPECT_EQ(parse_chat("", kMenu, "callback").kind, Kind::Other);
  EXPECT_EQ(parse_chat(std::string(33, '1'), kMenu, "").kind, Kind::Other);
}

TEST(ChatInterval, OncePerIntervalPerUser) {
  PerUserInterval p;
  EXPECT_TRUE(p.allow(7, 1000, 3600000));
  EXPECT_FALSE(p.allow(7, 1000 + 3599999, 3600000));
  EXPECT_TRUE(p.allow(8, 2000, 3600000));  // another user has an interval of its own
  EXPECT_TRUE(p.allow(7, 1000 + 3600000, 3600000));
  EXPECT_FALSE(p.allow(7, 1000 + 3600001, 3600000));  // the new one counts from the last reply
}

TEST(ChatInterval, BoundedExpiredFirstThenTheOldest) {
  PerUserInterval p(3);
  EXPECT_TRUE(p.allow(1, 0, 100));
  EXPECT_TRUE(p.allow(2, 50, 100));
  EXPECT_TRUE(p.allow(3, 60, 100));
  // Full: user 1's time is over, it goes.
  EXPECT_TRUE(p.allow(4, 120, 100));
  EXPECT_EQ(p.size(), 3u);
  EXPECT_FALSE(p.allow(2, 121, 100));  // still within its interval: kept
  // Full and all fresh: the oldest (user 2, at 50) is forgotten and may get a reply early.
  EXPECT_TRUE(p.allow(5, 130, 100));
  EXPECT_EQ(p.size(), 3u);
  EXPECT_FALSE(p.allow(3, 131, 100));
  EXPECT_TRUE(p.allow(2, 132, 100));
}

}  // namespace
