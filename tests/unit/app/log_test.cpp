// Log levels per module: what the REST API and SIGHUP change at run time.
#include "log/log.hpp"

#include <gtest/gtest.h>

namespace {

using nlohmann::json;

TEST(Log, LevelsPerModuleAllOrNothing) {
  esg::log::init({"info", {{"b2bua", "debug"}}, ""});
  EXPECT_EQ(esg::log::levels()["modules"]["b2bua"], "debug");
  EXPECT_EQ(esg::log::levels()["modules"]["media"], "info");
  EXPECT_TRUE(esg::log::get("b2bua").should_log(spdlog::level::debug));
  EXPECT_FALSE(esg::log::get("media").should_log(spdlog::level::debug));
  std::string field;
  EXPECT_EQ(esg::log::set_levels({{"level", "warn"}, {"modules", {{"media", "trace"}}}}, &field),
            "");
  EXPECT_EQ(esg::log::levels()["modules"]["b2bua"], "warn");
  EXPECT_EQ(esg::log::levels()["modules"]["media"], "trace");
  // A wrong value refuses the whole change.
  EXPECT_NE(esg::log::set_levels({{"modules", {{"edge", "error"}, {"nope", "info"}}}}, &field), "");
  EXPECT_EQ(field, "modules.nope");
  EXPECT_EQ(esg::log::levels()["modules"]["edge"], "warn");
  EXPECT_NE(esg::log::set_levels({{"level", "loud"}}, &field), "");
  EXPECT_EQ(field, "level");
  EXPECT_NE(esg::log::set_levels(json::array(), &field), "");
  EXPECT_THROW(esg::log::init({"info", {{"nope", "info"}}, ""}), std::runtime_error);
  esg::log::init({"warn", {}, ""});
}

}  // namespace
