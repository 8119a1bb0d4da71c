#include "base/json_writer.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace esg {
namespace {

using nlohmann::json;

// What nlohmann writes for the same tree (with U+FFFD for bytes that are not UTF-8): the
// records written with JsonWriter read back as they did when they were trees.
std::string nlohmann_text(const json& j) {
  return json_text(j);
}

TEST(JsonWriter, WritesWhatNlohmannWritesForTheSameTree) {
  std::string out;
  JsonWriter w(out);
  w.begin_object();
  w.key("a").begin_object().key("call_id").value("x@h").key("n").null().end_object();
  w.key("b").begin_array().end_array();
  w.key("c").begin_array().value("one").value(std::string("two")).begin_object().end_object();
  w.end_array();
  w.key("d").value(int64_t(-5)).key("e").value(uint16_t(200)).key("f").value(size_t(3));
  w.key("g").value(true).key("h").value(false);
  w.key("i").value(json{{"x", 1}, {"y", {1, 2}}});
  w.end_object();
  const json tree = {{"a", {{"call_id", "x@h"}, {"n", nullptr}}},
                     {"b", json::array()},
                     {"c", {"one", "two", json::object()}},
                     {"d", -5},
                     {"e", 200},
                     {"f", 3},
                     {"g", true},
                     {"h", false},
                     {"i", {{"x", 1}, {"y", {1, 2}}}}};
  EXPECT_EQ(out, nlohmann_text(tree));
}

TEST(JsonWriter, DoublesAsNlohmannWritesThem) {
  for (double d : {0.0, 1.0, 1.5, 0.1, 2.345, 1234567.25, 1e21, 1e-7, -3.0}) {
    std::string out;
    JsonWriter(out).value(d);
    EXPECT_EQ(out, nlohmann_text(json(d))) << d;
    EXPECT_EQ(json::parse(out).get<double>(), d);
  }
  std::string out;
  JsonWriter(out).value(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(out, "null");
}

TEST(JsonWriter, StringsEscapedAsNlohmannEscapesThem) {
  std::string all;
  for (int c = 1; c < 0x80; ++c)
    all += char(c);
  for (const std::string& s :
       {all, std::string("quote \" back \\ slash"),
        std::string("\xD0\x96\xE2\x82\xAC\xF0\x9F\x98\x80"), std::string("\0nul", 4)}) {
    std::string out;
    JsonWriter(out).value(s);
    EXPECT_EQ(out, nlohmann_text(json(s))) << s;
    EXPECT_EQ(json::parse(out).get<std::string>(), s);
  }
}

// Bytes from the wire that are not UTF-8 become U+FFFD, one for each byte that starts no valid
// sequence; what is valid around them stays.
TEST(JsonWriter, BytesThatAreNotUtf8BecomeReplacementCharacters) {
  const std::string fffd = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {"\xFF\xFE"
       "42",
       fffd + fffd + "42"},
      {"J\xF6rg", "J" + fffd + "rg"},
      {"\xC0\xAF", fffd + fffd},                        // overlong '/'
      {"\xED\xA0\x80", fffd + fffd + fffd},             // a UTF-16 surrogate
      {"\xF4\x90\x80\x80", fffd + fffd + fffd + fffd},  // above U+10FFFF
      {"ok\xE2\x82", "ok" + fffd + fffd},               // cut short
      {"\xD0\x96", "\xD0\x96"}};
  for (const auto& [in, want] : cases) {
    std::string out;
    JsonWriter(out).value(in);
    EXPECT_EQ(out, "\"" + want + "\"") << in;
    EXPECT_NO_THROW(json::parse(out));
  }
}

}  // namespace
}  // namespace esg
