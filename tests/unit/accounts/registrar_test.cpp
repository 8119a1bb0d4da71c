#include "accounts/registrar.hpp"

#include <gtest/gtest.h>

#include "test_support/parse.hpp"

namespace esg::accounts {
namespace {

using std::chrono::seconds;
using std::chrono::steady_clock;

std::shared_ptr<const PbxConnection> pbx(std::string code, std::string user, std::string pwd) {
  auto p = std::make_shared<PbxConnection>();
  p->code = std::move(code);
  p->mode = "register-in";
  p->username = std::move(user);
  p->pwd = std::move(pwd);
  return p;
}

struct RegistrarTest : ::testing::Test {
  steady_clock::time_point now = steady_clock::now();
  Registrar registrar{options()};
  sip::auth::DigestClient client{[] { return std::string("c0ffee"); }};

  Registrar::Options options() {
    Registrar::Options o;
    o.realm = "esg.test";
    o.now = [this] { return now; };
    return o;
  }
  void SetUp() override { registrar.set_connections({pbx("pbx1", "alice", "secret")}); }

  std::string request(const std::string& extra,
                      const std::string& contact = "<sip:alice@10.0.0.5:5070>",
                      const std::string& method = "REGISTER") {
    return method +
           " sip:esg.test SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKr1\r\n"
           "From: <sip:alice@esg.test>;tag=1\r\nTo: <sip:alice@esg.test>\r\n"
           "Call-ID: reg-1\r\nCSeq: 1 " +
           method + "\r\nContact: " + contact + "\r\n" + extra + "Content-Length: 0\r\n\r\n";
  }
  // Challenge, then answer with `password`.
  Registrar::Answer register_with(const std::string& password, const std::string& extra = {},
                                  const std::string& contact = "<sip:alice@10.0.0.5:5070>") {
    auto first =
        registrar.on_register(test::parse(request(extra, contact)), "udp", "10.0.0.5", 5070);
    EXPECT_EQ(first.status, 401);
    const std::string www = first.extra.substr(first.extra.find(':') + 2);
    auto challenge = sip::auth::parse_challenge(www.substr(0, www.size() - 2));
    EXPECT_TRUE(challenge);
    auto auth = client.answer(*challenge, {"alice", password, "REGISTER", "sip:esg.test", {}});
    EXPECT_TRUE(auth);
    return registrar.on_register(
        test::parse(request("Authorization: " + *auth + "\r\n" + extra, contact)), "udp",
        "10.0.0.5", 5070);
  }
};

TEST_F(RegistrarTest, DigestThenBindingUntilItExpires) {
  auto ok = register_with("secret", "Expires: 120\r\n");
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.extra.find("expires=120"), std::string::npos);
  auto b = registrar.binding("pbx1");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->addr, "10.0.0.5");
  EXPECT_EQ(b->port, 5070);
  EXPECT_EQ(registrar.pbx_at("10.0.0.5"), "pbx1");
  now += seconds(121);
  EXPECT_FALSE(registrar.binding("pbx1"));
  EXPECT_FALSE(registrar.pbx_at("10.0.0.5"));
}

TEST_F(RegistrarTest, WrongPasswordIsAnAuthFailure) {
  auto r = register_with("guess");
  EXPECT_EQ(r.status, 403);
  EXPECT_TRUE(r.auth_failure);
  EXPECT_FALSE(registrar.binding("pbx1"));
}

TEST_F(RegistrarTest, TooShortIs423AndStarWithZeroRemoves) {
  EXPECT_EQ(register_with("secret", "Expires: 10\r\n").status, 423);
  EXPECT_EQ(register_with("secret").status, 200);
  EXPECT_EQ(register_with("secret", "Expires: 0\r\n", "*").status, 200);
  EXPECT_FALSE(registrar.binding("pbx1"));
  EXPECT_EQ(register_with("secret", "Expires: 60\r\n", "*").status, 400);  // * needs 0
}

TEST_F(RegistrarTest, ChangedCredentialsDropTheBinding) {
  ASSERT_EQ(register_with("secret").status, 200);
  registrar.set_connections({pbx("pbx1", "alice", "secret")});  // unchanged: kept
  EXPECT_TRUE(registrar.binding("pbx1"));
  registrar.set_connections({pbx("pbx1", "alice", "other")});
  EXPECT_FALSE(registrar.binding("pbx1"));
}

TEST_F(RegistrarTest, AnInviteWithOurNonceAuthenticatesThePbx) {
  auto first = registrar.on_register(test::parse(request({})), "udp", "10.0.0.5", 5070);
  const std::string www = first.extra.substr(first.extra.find(':') + 2);
  auto challenge = sip::auth::parse_challenge(www.substr(0, www.size() - 2));
  ASSERT_TRUE(challenge);
  auto auth = client.answer(*challenge, {"alice", "secret", "INVITE", "sip:esg.test", {}});
  ASSERT_TRUE(auth);
  bool failed = true;
  auto code = registrar.authenticate(test::parse(request("Proxy-Authorization: " + *auth + "\r\n",
                                                         "<sip:alice@10.0.0.5>", "INVITE")),
                                     &failed);
  EXPECT_EQ(code, "pbx1");
  EXPECT_FALSE(failed);
  auto wrong = client.answer(*challenge, {"alice", "guess", "INVITE", "sip:esg.test", {}});
  EXPECT_FALSE(registrar.authenticate(test::parse(request("Proxy-Authorization: " + *wrong + "\r\n",
                                                          "<sip:alice@10.0.0.5>", "INVITE")),
                                      &failed));
  EXPECT_TRUE(failed);
}

}  // namespace
}  // namespace esg::accounts
