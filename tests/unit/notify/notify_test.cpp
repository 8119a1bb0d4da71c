// CRM webhooks (issue 23): signing, the retry schedule, the disk queue, the event's shape, and
// what a webhook may be.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/random.hpp"
#include "notify/disk_queue.hpp"
#include "notify/event.hpp"
#include "notify/sign.hpp"
#include "notify/webhook.hpp"

namespace esg::notify {
namespace {

namespace fs = std::filesystem;

TEST(Sign, HmacSha256MatchesRfc4231TestCase2) {
  EXPECT_EQ(hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Backoff, DoublesFromRetryMinUpToRetryMax) {
  Webhook w;
  w.retry_min_ms = 1000;
  w.retry_max_ms = 60000;
  const int64_t expected[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000};
  for (int i = 0; i < 8; ++i)
    EXPECT_EQ(backoff(w, i + 1).count(), expected[i]) << "retry " << i + 1;
  EXPECT_EQ(backoff(w, 1000).count(), 60000);  // no overflow after many retries
}

class QueueTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("esg-queue-" + random::hex(12))).string();
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

TEST_F(QueueTest, DeliveriesSurviveReopeningInOrderPerWebhook) {
  {
    DiskQueue q(dir_, 10);
    q.push(1, 1000, "a1");
    q.push(2, 1001, "b1");
    q.push(1, 1002, "a2");
    q.pop(2);
    EXPECT_EQ(q.size(), 2u);
  }
  DiskQueue q(dir_, 10);
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q.hooks(), std::vector<int64_t>{1});
  ASSERT_NE(q.front(1), nullptr);
  EXPECT_EQ(q.front(1)->body, "a1");
  EXPECT_EQ(q.front(1)->created_ms, 1000);
  q.pop(1);
  EXPECT_EQ(q.front(1)->body, "a2");
  // New deliveries after a reopen come after the old ones.
  q.push(1, 2000, "a3");
  q.pop(1);
  EXPECT_EQ(q.front(1)->body, "a3");
}

TEST_F(QueueTest, AFullQueueDropsTheOldestDelivery) {
  DiskQueue q(dir_, 3);
  EXPECT_EQ(q.push(1, 1, "one"), 0u);
  EXPECT_EQ(q.push(2, 2, "two"), 0u);
  EXPECT_EQ(q.push(1, 3, "three"), 0u);
  EXPECT_EQ(q.push(2, 4, "four"), 1u);  // "one" goes
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.front(1)->body, "three");
  EXPECT_EQ(q.front(2)->body, "two");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_))
    ++files;
  EXPECT_EQ(files, 3u);
  // Reopened with a smaller bound: the oldest go first.
  DiskQueue small(dir_, 2);
  EXPECT_EQ(small.size(), 2u);
  EXPECT_EQ(small.front(1)->body, "three");
  EXPECT_EQ(small.front(2)->body, "four");
}

TEST_F(QueueTest, DeliveriesOfADeletedWebhookAreDropped) {
  DiskQueue q(dir_, 10);
  q.push(1, 1, "x");
  q.push(2, 2, "y");
  q.push(2, 3, "z");
  EXPECT_EQ(q.retain({1}), 2u);
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(q.front(2), nullptr);
  DiskQueue again(dir_, 10);
  EXPECT_EQ(again.size(), 1u);
}

TEST_F(QueueTest, AHalfWrittenFileFromACrashIsIgnored) {
  fs::create_directories(dir_);
  { std::ofstream(dir_ + "/00000000000000000001-1-5.ev.tmp") << "half"; }
  { std::ofstream(dir_ + "/notes.txt") << "not ours"; }
  DiskQueue q(dir_, 10);
  EXPECT_EQ(q.size(), 0u);
  EXPECT_FALSE(fs::exists(dir_ + "/00000000000000000001-1-5.ev.tmp"));
  EXPECT_TRUE(fs::exists(dir_ + "/notes.txt"));
}

TEST(Event, HasIdTypeTimestampInstanceAndTheCall) {
  const nlohmann::json call = {{"call_id", "abc"}, {"direction", "in"}};
  const std::string body = event_body("call.answered", "0123abcd", 1796644556123, 3, call);
  const auto j = nlohmann::json::parse(body);
  EXPECT_EQ(j["id"], "0123abcd");
  EXPECT_EQ(j["event"], "call.answered");
  EXPECT_EQ(j["timestamp"], "2026-12-07T11:55:56.123Z");
  EXPECT_EQ(j["instance"], 3);
  EXPECT_EQ(j["call"], call);
  // Bytes that are not UTF-8 (a peer's header) do not lose the event.
  const std::string bad = event_body("call.ended", "1", 0, 1, {{"caller", "\xff\xfe"}});
  EXPECT_FALSE(nlohmann::json::parse(bad, nullptr, false).is_discarded());
}

TEST(WebhookConfig, ValidatesEveryFieldByName) {
  auto ok = webhook_from_json(
      {{"url", "http://127.0.0.1:8099/hook?x=1"}, {"events", {"call.ended"}}, {"secret", "s"}});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_TRUE(ok->wants("call.ended"));
  EXPECT_FALSE(ok->wants("call.ringing"));
  auto all = webhook_from_json({{"url", "http://crm.example/in"}});
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->wants("call.ringing"));
  auto field_of = [](const nlohmann::json& j) {
    auto r = webhook_from_json(j);
    return r ? std::string("ok") : r.error().field;
  };
  EXPECT_EQ(field_of({{"events", nlohmann::json::array()}}), "url");
  EXPECT_EQ(field_of({{"url", "ftp://x/"}}), "url");
  EXPECT_EQ(field_of({{"url", "http://:80/"}}), "url");
  EXPECT_EQ(field_of({{"url", "http://h:99999/"}}), "url");
  EXPECT_EQ(field_of({{"url", "http://h/"}, {"events", {"call.started"}}}), "events[0]");
  EXPECT_EQ(field_of({{"url", "http://h/"}, {"retry_min_ms", 5}}), "retry_min_ms");
  EXPECT_EQ(field_of({{"url", "http://h/"}, {"retry_min_ms", 500}, {"retry_max_ms", 100}}),
            "retry_max_ms");
  EXPECT_EQ(field_of({{"url", "http://h/"}, {"colour", "red"}}), "colour");
}

TEST(WebhookConfig, UrlParts) {
  auto u = parse_url("http://[::1]:8080/a/b?c=d");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "8080");
  EXPECT_EQ(u->target, "/a/b?c=d");
  auto d = parse_url("http://crm.example");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->port, "80");
  EXPECT_EQ(d->target, "/");
}

}  // namespace
}  // namespace esg::notify
