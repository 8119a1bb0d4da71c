// The web page's sign-in: password hashes and sessions.
#include "api/ui.hpp"

#include <gtest/gtest.h>

namespace {

using esg::api::hash_password;
using esg::api::UiSessions;
using esg::api::verify_password;

TEST(Password, HashesVerifyAndRefuseWhatIsNotTheirs) {
  const std::string h = hash_password("correct horse", 1000);
  EXPECT_EQ(h.rfind("pbkdf2-sha256$1000$", 0), 0u) << h;
  EXPECT_TRUE(verify_password("correct horse", h));
  EXPECT_FALSE(verify_password("correct horse ", h));
  EXPECT_FALSE(verify_password("", h));
  EXPECT_NE(hash_password("correct horse", 1000), h) << "a new salt each time";
  for (const char* bad : {"", "plain", "pbkdf2-sha256$", "pbkdf2-sha256$x$AAAA$AAAA",
                          "pbkdf2-sha256$1000$!!!!$AAAA", "md5$1$2$3"})
    EXPECT_FALSE(verify_password("correct horse", bad)) << bad;
}

TEST(UiSessions, SignInOutAndTheCookie) {
  UiSessions s({"admin", hash_password("pw", 1000), std::chrono::hours(1), 2});
  EXPECT_FALSE(s.sign_in("admin", "nope"));
  EXPECT_FALSE(s.sign_in("root", "pw"));
  auto id = s.sign_in("admin", "pw");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->size(), 64u);
  EXPECT_EQ(s.user_of("theme=dark; esg_session=" + *id), "admin");
  EXPECT_FALSE(s.user_of("esg_session=" + std::string(64, '0')));
  EXPECT_FALSE(s.user_of("other_session=" + *id));
  s.sign_out("esg_session=" + *id);
  EXPECT_FALSE(s.user_of("esg_session=" + *id));
  // Past max_sessions the least recently used session goes.
  auto a = s.sign_in("admin", "pw"), b = s.sign_in("admin", "pw");
  EXPECT_TRUE(s.user_of("esg_session=" + *a));
  auto c = s.sign_in("admin", "pw");
  EXPECT_TRUE(s.user_of("esg_session=" + *c));
  EXPECT_TRUE(s.user_of("esg_session=" + *a));
  EXPECT_FALSE(s.user_of("esg_session=" + *b));
  UiSessions off({"admin", "", std::chrono::hours(1), 10});
  EXPECT_EQ(off.sign_in("admin", "").error(),
            "sign-in is not configured (http.admin.password_hash)");
}

}  // namespace
