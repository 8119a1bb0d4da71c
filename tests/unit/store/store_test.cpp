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

}  // namespace
}  // namespace esg::store
