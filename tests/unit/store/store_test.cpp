#include "store/store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace esg::store {
namespace {

struct StoreTest : ::testing::Test {
  std::string dir = ::testing::TempDir() + "esg-store-" +
                    std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name();
  void SetUp() override { std::filesystem::remove_all(dir); }
  void TearDown() override { std::filesystem::remove_all(dir); }
};

TEST_F(StoreTest, CreatesTheFileAndMigratesToTheLatestVersion) {
  auto s = open_sqlite(dir + "/sub/esg.db");
  EXPECT_TRUE(std::filesystem::exists(dir + "/sub/esg.db"));
  EXPECT_EQ(s->schema_version(), int(migrations().size()));
  s.reset();
  // Opening again runs nothing twice.
  auto again = open_sqlite(dir + "/sub/esg.db");
  EXPECT_EQ(again->schema_version(), int(migrations().size()));
}

TEST_F(StoreTest, CrudWithUniqueCodes) {
  auto s = open_sqlite(dir + "/esg.db");
  auto id = s->insert(Table::Providers, "a", R"({"x":1})");
  ASSERT_TRUE(id);
  auto dup = s->insert(Table::Providers, "a", "{}");
  ASSERT_FALSE(dup);
  EXPECT_EQ(dup.error().code, Errc::Conflict);
  auto fixed = s->insert(Table::Providers, "b", "{}", 42);
  ASSERT_TRUE(fixed);
  EXPECT_EQ(*fixed, 42);
  auto row = s->get(Table::Providers, *id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->code, "a");
  EXPECT_EQ(row->data, R"({"x":1})");
  EXPECT_EQ(s->find_code(Table::Providers, "b")->id, 42);
  ASSERT_TRUE(s->update(Table::Providers, *id, "c", "{}"));
  EXPECT_EQ(s->get(Table::Providers, *id)->code, "c");
  EXPECT_EQ(s->update(Table::Providers, *id, "b", "{}").error().code, Errc::Conflict);
  EXPECT_EQ(s->update(Table::Providers, 999, "z", "{}").error().code, Errc::NotFound);
  EXPECT_EQ(s->list(Table::Providers)->size(), 2u);
  ASSERT_TRUE(s->remove(Table::Providers, *id));
  EXPECT_EQ(s->remove(Table::Providers, *id).error().code, Errc::NotFound);
  EXPECT_EQ(s->get(Table::Providers, *id).error().code, Errc::NotFound);
}

TEST_F(StoreTest, DataSurvivesAReopen) {
  {
    auto s = open_sqlite(dir + "/esg.db");
    ASSERT_TRUE(s->insert(Table::Providers, "keep", "{}"));
  }
  auto s = open_sqlite(dir + "/esg.db");
  EXPECT_TRUE(s->find_code(Table::Providers, "keep"));
}

TEST_F(StoreTest, AnUnusablePathIsAClearError) {
  std::filesystem::create_directories(dir);
  std::filesystem::create_directories(dir + "/a-folder.db");
  EXPECT_THROW(open_sqlite(dir + "/a-folder.db"), StoreError);
}

// An id names one object forever: a client holding the id of a deleted account must not reach
// its successor (and the account manager keys its clients by id).
TEST_F(StoreTest, IdsAreNeverReused) {
  auto s = open_sqlite(dir + "/esg.db");
  auto a = s->insert(Table::Providers, "a", "{}");
  ASSERT_TRUE(a);
  ASSERT_TRUE(s->remove(Table::Providers, *a));
  auto b = s->insert(Table::Providers, "b", "{}");
  ASSERT_TRUE(b);
  EXPECT_GT(*b, *a);
}

TEST_F(StoreTest, RulesWithoutCodesDoNotCollide) {
  auto s = open_sqlite(dir + "/esg.db");
  ASSERT_TRUE(s->insert(Table::Routes, "", R"({"a":1})"));
  ASSERT_TRUE(s->insert(Table::Routes, "", R"({"a":2})"));
  auto rows = s->list(Table::Routes);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].code, "");
}

TEST_F(StoreTest, CdrsAreQueriedByTimeAndNumberAndInterruptedAfterACrash) {
  auto s = open_sqlite(dir + "/esg.db");
  Cdr a{0, "call-a", 1000, "active", "+79161234567", "100", "{}"};
  Cdr b{0, "call-b", 2000, "ended", "200", "84951112233", "{}"};
  auto ida = s->cdr_insert(a);
  ASSERT_TRUE(ida);
  ASSERT_TRUE(s->cdr_insert(b));
  a.id = *ida;
  a.state = "answered";
  a.data = R"({"answered":true})";
  ASSERT_TRUE(s->cdr_update(a));
  auto all = s->cdr_query({});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].call_id, "call-b");  // newest first
  CdrQuery by_number;
  by_number.number = "9161";
  auto one = s->cdr_query(by_number);
  ASSERT_TRUE(one);
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].data, R"({"answered":true})");
  CdrQuery range;
  range.from_ms = 1500;
  EXPECT_EQ(s->cdr_query(range)->size(), 1u);
  auto n = s->cdr_interrupt_active(1);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1);
  EXPECT_EQ(s->cdr_query(by_number)->front().state, "interrupted");
}

// The CDR statements are prepared once and kept: each use starts from fresh bindings, also
// after a use that failed, and nothing is left of the previous record's values.
TEST_F(StoreTest, CdrWritesOneAfterAnotherEachWriteTheirOwnValues) {
  auto s = open_sqlite(dir + "/esg.db");
  std::vector<int64_t> ids;
  for (int i = 0; i < 20; ++i) {
    Cdr c{0,
          "call-" + std::to_string(i),
          1000 + i,
          "active",
          "caller" + std::to_string(i),
          "called" + std::to_string(i),
          "{\"n\":" + std::to_string(i) + "}"};
    auto id = s->cdr_insert(c);
    ASSERT_TRUE(id) << i;
    ids.push_back(*id);
    if (i % 2) {
      c.id = *id;
      c.state = "ended";
      c.data = "{\"n\":" + std::to_string(i) + ",\"ended\":true}";
      ASSERT_TRUE(s->cdr_update(c)) << i;
    }
    Cdr missing{ids.back() + 1000, "none", 0, "ended", "", "", "{}"};
    auto failed = s->cdr_update(missing);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, Errc::NotFound);
  }
  auto all = s->cdr_query({});
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 20u);
  for (const Cdr& c : *all) {
    const int n = int(c.started_ms - 1000);
    EXPECT_EQ(c.call_id, "call-" + std::to_string(n));
    EXPECT_EQ(c.caller, "caller" + std::to_string(n));
    EXPECT_EQ(c.state, n % 2 ? "ended" : "active");
    EXPECT_EQ(c.data, n % 2 ? "{\"n\":" + std::to_string(n) + ",\"ended\":true}"
                            : "{\"n\":" + std::to_string(n) + "}");
  }
}

}  // namespace
}  // namespace esg::store
