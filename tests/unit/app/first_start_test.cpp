// What esg says at start-up about the web page and the sample config's credentials.
#include "app/first_start.hpp"

#include <gtest/gtest.h>

#include "api/ui.hpp"
#include "app/config.hpp"

namespace {

using esg::app::Config;
using esg::app::load_config;
using esg::app::sample_credential_warnings;
using esg::app::web_page_url;

TEST(FirstStart, TheSampleConfigNamesThePageAndWarnsOfBothSampleCredentials) {
  const Config c = load_config(std::string(ESG_SOURCE_DIR) + "/config/esg.json");
  EXPECT_EQ(web_page_url(c), "http://127.0.0.1:8080/ui/");
  const auto w = sample_credential_warnings(c);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("http.token"), std::string::npos) << w[0];
  EXPECT_NE(w[0].find("change-me"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("http.admin.password_hash"), std::string::npos) << w[1];
  EXPECT_NE(w[1].find("esg hash-password"), std::string::npos) << w[1];
  EXPECT_NE(w[1].find("\"admin\""), std::string::npos) << w[1];
}

TEST(FirstStart, OwnCredentialsGiveNoWarning) {
  Config c;
  c.http.token = "a-secret-of-our-own";
  c.http.admin_password_hash = esg::api::hash_password("not the sample", 1000);
  EXPECT_TRUE(sample_credential_warnings(c).empty());
  c.http.admin_password_hash = esg::api::hash_password("change-me", 1000);
  ASSERT_EQ(sample_credential_warnings(c).size(), 1u);
  c.http.admin_password_hash.clear();  // no sign-in at all: nothing to guess
  EXPECT_TRUE(sample_credential_warnings(c).empty());
}

TEST(FirstStart, ThePageAddressFollowsTheListenAddressAndTheBoundPort) {
  Config c;
  c.http.listen = "0.0.0.0:8080";
  EXPECT_EQ(web_page_url(c, 18080), "http://127.0.0.1:18080/ui/")
      << "a wildcard is reached locally";
  c.http.listen = "192.0.2.7:80";
  EXPECT_EQ(web_page_url(c), "http://192.0.2.7:80/ui/");
  c.http.listen = "[::]:8080";
  EXPECT_EQ(web_page_url(c), "http://[::1]:8080/ui/");
  c.http.listen = "[2001:db8::1]:8443";
  EXPECT_EQ(web_page_url(c), "http://[2001:db8::1]:8443/ui/");
  c.http.ui_dir.clear();
  EXPECT_EQ(web_page_url(c), "") << "no page served";
}

}  // namespace
