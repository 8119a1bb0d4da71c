#include <gtest/gtest.h>

#include <filesystem>

#include "edge/context.hpp"

namespace esg::edge {
namespace {

using nlohmann::json;

struct CdrWriterTest : ::testing::Test {
  std::string dir = ::testing::TempDir() + "esg-cdrs-" +
                    std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::unique_ptr<store::Store> db;
  void SetUp() override {
    std::filesystem::remove_all(dir);
    db = store::open_sqlite(dir + "/esg.db");
    ASSERT_TRUE(db);
  }
  void TearDown() override {
    db.reset();
    std::filesystem::remove_all(dir);
  }

  static store::Cdr record(const std::string& call_id, const std::string& state, json data) {
    store::Cdr c;
    c.call_id = call_id;
    c.started_ms = 1000;
    c.state = state;
    data["state"] = state;
    c.data = data.dump();
    return c;
  }
  json data_of(const std::string& call_id) {
    auto rows = db->cdr_query({});
    EXPECT_TRUE(rows);
    for (const auto& r : *rows)
      if (r.call_id == call_id) return json::parse(r.data);
    return json();
  }
  static CdrWriter::Edit add(std::string text) {
    return [text](json& d) {
      json& sent = d["telegram"]["chat_sent"];
      if (!sent.is_array()) sent = json::array();
      for (const auto& s : sent)
        if (s == text) return;
      sent.push_back(text);
    };
  }
};

TEST_F(CdrWriterTest, AnAmendAfterTheLastWriteChangesTheEndedRecord) {
  CdrWriter w(*db, 1);
  w.write("a#1", record("a", "active", {{"status", 0}}), false);
  w.write("a#1", record("a", "ended", {{"status", 486}}), true);
  w.flush();
  w.amend("a", add("Sorry, we missed your call"));
  w.flush();
  const json d = data_of("a");
  EXPECT_EQ(d["status"], 486);
  EXPECT_EQ(d["telegram"]["chat_sent"], json::array({"Sorry, we missed your call"}));
  // Once only, however often it comes.
  w.amend("a", add("Sorry, we missed your call"));
  w.flush();
  EXPECT_EQ(data_of("a")["telegram"]["chat_sent"].size(), 1u);
  EXPECT_EQ(db->cdr_query({})->size(), 1u);  // amended in place, no second record
}

TEST_F(CdrWriterTest, AnAmendOfACallInProgressGoesIntoItsLaterWrites) {
  CdrWriter w(*db, 1);
  w.write("b#1", record("b", "active", {{"status", 0}}), false);
  w.amend("b", add("text"));
  // The B2BUA's next writes know nothing of the amend: they keep it anyway.
  w.write("b#1", record("b", "answered", {{"status", 200}}), false);
  w.flush();
  EXPECT_EQ(data_of("b")["telegram"]["chat_sent"], json::array({"text"}));
  w.write("b#1", record("b", "ended", {{"status", 200}}), true);
  w.flush();
  EXPECT_EQ(data_of("b")["state"], "ended");
  EXPECT_EQ(data_of("b")["telegram"]["chat_sent"], json::array({"text"}));
}

TEST_F(CdrWriterTest, AnAmendBeforeTheFirstWriteWaitsForIt) {
  CdrWriter w(*db, 1);
  w.amend("c", add("early"));
  w.flush();
  EXPECT_TRUE(db->cdr_query({})->empty());  // nothing to amend: no record made up
  w.write("c#1", record("c", "ended", {{"status", 603}}), true);
  w.flush();
  EXPECT_EQ(data_of("c")["telegram"]["chat_sent"], json::array({"early"}));
  EXPECT_EQ(data_of("c")["status"], 603);
}

TEST_F(CdrWriterTest, AnAmendTouchesOnlyItsCall) {
  CdrWriter w(*db, 1);
  w.write("d#1", record("d", "ended", {{"status", 486}}), true);
  w.write("e#1", record("e", "ended", {{"status", 486}}), true);
  w.amend("d", add("x"));
  w.flush();
  EXPECT_TRUE(data_of("d").contains("telegram"));
  EXPECT_FALSE(data_of("e").contains("telegram"));
}

}  // namespace
}  // namespace esg::edge
