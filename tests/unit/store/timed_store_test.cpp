#include "store/timed_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace esg::store {
namespace {

uint64_t count(const StoreTimings::Histogram& h) {
  uint64_t n = 0;
  for (const auto& b : h.buckets)
    n += b.load();
  return n;
}

TEST(TimedStore, TimesReadsAndWritesAndPassesResultsThrough) {
  const std::string dir = ::testing::TempDir() + "esg-timed-store";
  std::filesystem::remove_all(dir);
  TimedStore s(open_sqlite(dir + "/esg.db"));
  auto id = s.insert(Table::Pbx, "pbx1", "{}");
  ASSERT_TRUE(id);
  EXPECT_TRUE(s.update(Table::Pbx, *id, "pbx1", "{\"x\":1}"));
  auto row = s.get(Table::Pbx, *id);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->data, "{\"x\":1}");
  EXPECT_FALSE(s.find_code(Table::Pbx, "none")) << "errors pass through too";
  EXPECT_EQ(s.insert(Table::Pbx, "pbx1", "{}").error().code, Errc::Conflict);
  EXPECT_EQ(count(s.timings().write), 3u);
  EXPECT_EQ(count(s.timings().read), 2u);
  EXPECT_EQ(s.schema_version(), int(migrations().size()));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace esg::store
