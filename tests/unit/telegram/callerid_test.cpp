#include "telegram/callerid.hpp"

#include <gtest/gtest.h>

namespace {

using esg::telegram::caller_id;
using esg::telegram::caller_name;
using esg::telegram::DialTarget;
using esg::telegram::LineConfig;
using esg::telegram::parse_dialled;
using esg::telegram::TgUser;
using esg::telegram::transliterate;

TgUser ivan() {
  return {123456789, "Иван", "Петров", "ivanp", "79991234567"};
}

TEST(CallerId, EachModeFallsBackToTheUserId) {
  LineConfig line;
  EXPECT_EQ(caller_id(line, ivan()), "*123456789");
  line.callerid_prefix = "tg";
  line.callerid_suffix = "#";
  EXPECT_EQ(caller_id(line, ivan()), "tg123456789#");
  line.callerid = "username";
  EXPECT_EQ(caller_id(line, ivan()), "ivanp");
  TgUser hidden = ivan();
  hidden.username.clear();
  hidden.phone.clear();
  EXPECT_EQ(caller_id(line, hidden), "tg123456789#");
  line.callerid = "phone";
  EXPECT_EQ(caller_id(line, ivan()), "+79991234567");
  EXPECT_EQ(caller_id(line, hidden), "tg123456789#");
}

TEST(CallerId, EveryCallerIdDialsBackToTheSameUser) {
  for (const char* mode : {"userid", "username", "phone"}) {
    LineConfig line;
    line.callerid = mode;
    const std::string shown = caller_id(line, ivan());
    auto back = parse_dialled(line, shown);
    ASSERT_TRUE(back) << mode << ": " << back.error();
    if (back->kind == DialTarget::Kind::UserId) {
      EXPECT_EQ(back->user_id, 123456789);
    } else if (back->kind == DialTarget::Kind::Phone) {
      EXPECT_EQ(back->text, "+79991234567");
    } else {
      EXPECT_EQ(back->text, "ivanp");
    }
  }
}

TEST(CallerName, FieldsInOrderTheRestInParentheses) {
  LineConfig line;
  line.callername = {"name", "username", "phone"};
  EXPECT_EQ(caller_name(line, ivan()), "Иван Петров (@ivanp, +79991234567)");
  line.callername_ascii = true;
  EXPECT_EQ(caller_name(line, ivan()), "Ivan Petrov (@ivanp, +79991234567)");
  line.callername = {"phone", "name"};
  TgUser hidden = ivan();
  hidden.phone.clear();
  EXPECT_EQ(caller_name(line, hidden), "Ivan Petrov");
  line.callername = {"username"};
  hidden.username.clear();
  EXPECT_EQ(caller_name(line, hidden), "");
}

TEST(Transliterate, ScriptsBecomeAscii) {
  EXPECT_EQ(transliterate("Щукин Юрий Ёлкин"), "Shchukin Iurii Elkin");
  EXPECT_EQ(transliterate("Ωμέγα"), "Omega");
  EXPECT_EQ(transliterate("Łódź Müller Ærø"), "Lodz Muller AEro");
  EXPECT_EQ(transliterate("Anna 🙂"), "Anna ");
  EXPECT_EQ(transliterate(std::string("bad \xC3")), "bad ");
}

TEST(ParseDialled, TheThreeFormsAndA484ForTheRest) {
  LineConfig line;
  auto id = parse_dialled(line, "*5551234");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->kind, DialTarget::Kind::UserId);
  EXPECT_EQ(id->user_id, 5551234);
  auto phone = parse_dialled(line, "+79991234567");
  ASSERT_TRUE(phone);
  EXPECT_EQ(phone->kind, DialTarget::Kind::Phone);
  auto digits = parse_dialled(line, "79991234567");
  ASSERT_TRUE(digits);
  EXPECT_EQ(digits->kind, DialTarget::Kind::Phone);
  EXPECT_EQ(digits->text, "+79991234567");
  auto name = parse_dialled(line, "ivan_p2");
  ASSERT_TRUE(name);
  EXPECT_EQ(name->kind, DialTarget::Kind::Username);
  for (const char* bad :
       {"*1234", "1234", "@ivanp", "ivan", "9ivanp", "*123456789012345678901", "ivan-p", "", "+"}) {
    auto r = parse_dialled(line, bad);
    EXPECT_FALSE(r) << bad;
    if (!r) {
      EXPECT_NE(r.error().find("Not a Telegram user"), std::string::npos);
    }
  }
}

}  // namespace
