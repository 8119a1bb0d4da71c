// The real libtdjson.so from the npm package, through esg's own loader and receive loop. Never
// setTdlibParameters here: TDLib would start connecting to Telegram.
#include "telegram/td/tdjson.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using esg::telegram::td::error_of;
using esg::telegram::td::Hub;
using esg::telegram::td::TdJson;
using nlohmann::json;

TdJson& real_tdlib() {
  auto td = TdJson::load(ESG_TDJSON_PATH);
  if (!td) {
    ADD_FAILURE() << td.error() << " (scripts/test installs TDLib from the npm registry)";
    std::abort();
  }
  return **td;
}

TEST(TdJson, ReportsWhatIsMissing) {
  auto none = TdJson::load("/nonexistent/libtdjson.so");
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().find("/nonexistent/libtdjson.so"), std::string::npos);
  auto unset = TdJson::load("");
  ASSERT_FALSE(unset);
  EXPECT_NE(unset.error().find("telegram.tdjson"), std::string::npos);
}

TEST(TdJson, TheRealLibraryExecutesSynchronousMethods) {
  TdJson& td = real_tdlib();
  EXPECT_EQ(&td, &real_tdlib()) << "loaded once";
  td.execute({{"@type", "setLogVerbosityLevel"}, {"new_verbosity_level", 0}});
  const json v = td.execute({{"@type", "getOption"}, {"name", "version"}});
  EXPECT_EQ(v.value("@type", ""), "optionValueString") << v;
  EXPECT_EQ(v.value("value", "").rfind("1.8.", 0), 0u) << v;
  const json entities =
      td.execute({{"@type", "getTextEntities"}, {"text", "@esg_line calls +79991234567"}});
  ASSERT_EQ(entities.value("@type", ""), "textEntities") << entities;
  EXPECT_GE(entities["entities"].size(), 1u);
  const json bad = td.execute({{"@type", "noSuchMethod"}});
  EXPECT_EQ(bad.value("@type", ""), "error");
}

TEST(TdJson, ARealClientAsksForItsParametersAndCloses) {
  TdJson& td = real_tdlib();
  td.execute({{"@type", "setLogVerbosityLevel"}, {"new_verbosity_level", 0}});
  boost::asio::io_context io;
  std::vector<std::string> states;
  std::vector<json> answers;
  Hub hub(td);
  const int client = hub.create_client(io, [&](const json& u) {
    if (u.value("@type", "") == "updateAuthorizationState")
      states.push_back(u["authorization_state"].value("@type", ""));
  });
  // The first request starts the client; answers come back matched by @extra.
  hub.send(client, {{"@type", "getOption"}, {"name", "version"}},
           [&](esg::Result<json, esg::telegram::td::TdError> r) {
             ASSERT_TRUE(r);
             answers.push_back(*r);
           });
  hub.send(client, {{"@type", "getMe"}}, [&](esg::Result<json, esg::telegram::td::TdError> r) {
    ASSERT_FALSE(r) << "getMe before the parameters";
    EXPECT_EQ(r.error().code, 400);
    EXPECT_NE(r.error().message.find("setTdlibParameters"), std::string::npos);
    answers.push_back(json{{"error", r.error().message}});
    hub.send(client, {{"@type", "close"}});
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline &&
         (states.empty() || states.back() != "authorizationStateClosed")) {
    io.run_for(std::chrono::milliseconds(50));
    io.restart();
  }
  ASSERT_FALSE(states.empty());
  EXPECT_EQ(states.front(), "authorizationStateWaitTdlibParameters");
  EXPECT_EQ(states.back(), "authorizationStateClosed");
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].value("@type", ""), "optionValueString");
  hub.forget_client(client);
}

TEST(TdError, ReadsFloodWaits) {
  auto e = error_of(
      {{"@type", "error"}, {"code", 429}, {"message", "Too Many Requests: retry after 30"}});
  EXPECT_EQ(e.code, 429);
  EXPECT_EQ(e.retry_after, 30);
  EXPECT_TRUE(e.flood());
  e = error_of({{"@type", "error"}, {"code", 420}, {"message", "FLOOD_WAIT_7"}});
  EXPECT_EQ(e.retry_after, 7);
  e = error_of({{"@type", "error"}, {"code", 400}, {"message", "PHONE_CODE_INVALID"}});
  EXPECT_FALSE(e.flood());
  EXPECT_EQ(e.message, "PHONE_CODE_INVALID");
}

}  // namespace
