#include <gtest/gtest.h>

#include "edge/b2bua/b2bua.hpp"
#include "edge/context.hpp"

namespace esg::edge {
namespace {

using nlohmann::json;

TEST(TelegramCdr, KeepsWhatMattersAfterTheCallAndMarksThe20SRule) {
  const json status = {{"version", "9.0.0"},
                       {"path", "reflector"},
                       {"reflector_id", 2},
                       {"state", "failed"},
                       {"connect_ms", 412},
                       {"reconnections", json::array({{{"at_ms", 9000}}})},
                       {"reconnection_count", 1},
                       {"reconnecting_ms", 20400},
                       {"loss", 0.02},
                       {"ended_by", "no_path_20s"},
                       {"emojis", {"a", "b", "c", "d"}},
                       {"frames_in", 100}};
  const json cdr = telegram_cdr_fields(status);
  EXPECT_EQ(cdr["version"], "9.0.0");
  EXPECT_EQ(cdr["path"], "reflector");
  EXPECT_EQ(cdr["reflector_id"], 2);
  EXPECT_EQ(cdr["connect_ms"], 412);
  EXPECT_EQ(cdr["reconnection_count"], 1);
  EXPECT_EQ(cdr["reconnecting_ms"], 20400);
  EXPECT_EQ(cdr["loss"], 0.02);
  EXPECT_EQ(cdr["ended_by"], "no_path_20s");
  // The live view's details stay out of the record.
  EXPECT_FALSE(cdr.contains("emojis"));
  EXPECT_FALSE(cdr.contains("frames_in"));
  EXPECT_FALSE(cdr.contains("reconnections"));
}

TEST(TelegramCdr, ASideThatHasNotSaidHowItEndedEndedByHangup) {
  // The SIP side hung up: the record is written before the Telegram side hears of it.
  const json cdr = telegram_cdr_fields({{"version", "8.0.0"}, {"state", "connected"}});
  EXPECT_EQ(cdr["ended_by"], "hangup");
  EXPECT_EQ(cdr["state"], "connected");
}

TEST(CallBoardNote, ALegsAnnotationStaysReadableAfterItsCallLeftTheBoard) {
  CallBoard board;
  board.put("a-leg", R"({"id":"a-leg","a":{"call_id":"a-leg"},"b":{"call_id":"tg-leg"}})", "a-leg",
            "tg-leg");
  auto shown = board.get("a-leg");
  ASSERT_TRUE(shown);
  EXPECT_FALSE(shown->contains("telegram"));
  board.annotate("tg-leg", "telegram", {{"ended_by", "hangup"}});
  // Shown on the call whose B leg it is, in the list and alone.
  shown = board.get("a-leg");
  ASSERT_TRUE(shown);
  EXPECT_EQ((*shown)["telegram"]["ended_by"], "hangup");
  EXPECT_EQ((*shown)["b"]["call_id"], "tg-leg");
  const auto all = board.list();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], *shown);
  board.erase("a-leg");
  auto n = board.note("tg-leg", "telegram");
  ASSERT_TRUE(n);
  EXPECT_EQ((*n)["ended_by"], "hangup");
  EXPECT_FALSE(board.note("tg-leg", "other"));
  EXPECT_FALSE(board.note("a-leg", "telegram"));
}

}  // namespace
}  // namespace esg::edge
