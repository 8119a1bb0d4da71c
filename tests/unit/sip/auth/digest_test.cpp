#include "sip/auth/digest.hpp"

#include <gtest/gtest.h>

namespace esg::sip::auth {
namespace {

// RFC 2617 §3.5 (MD5, qop=auth).
TEST(DigestResponse, Rfc2617Example) {
  EXPECT_EQ(digest_response(Algorithm::Md5, Qop::Auth, "Mufasa", "testrealm@host.com",
                            "Circle Of Life", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
                            "0a4f113b", "GET", "/dir/index.html", ""),
            "6629fae49393a05397450978507c4ef1");
}

// RFC 7616 §3.9.1, MD5 and SHA-256 answers to the same challenge.
TEST(DigestResponse, Rfc7616ExamplesMd5AndSha256) {
  const char* nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
  const char* cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
  EXPECT_EQ(
      digest_response(Algorithm::Md5, Qop::Auth, "Mufasa", "http-auth@example.org",
                      "Circle of Life", nonce, "00000001", cnonce, "GET", "/dir/index.html", ""),
      "8ca523f5e9506fed4657c9700eebdbec");
  EXPECT_EQ(
      digest_response(Algorithm::Sha256, Qop::Auth, "Mufasa", "http-auth@example.org",
                      "Circle of Life", nonce, "00000001", cnonce, "GET", "/dir/index.html", ""),
      "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

TEST(DigestResponse, Rfc2069FormWithoutQop) {
  // response = H(H(A1):nonce:H(A2)) when no qop is offered.
  const std::string ha1 = hash_hex(Algorithm::Md5, "bob:sip.example:secret");
  const std::string ha2 = hash_hex(Algorithm::Md5, "REGISTER:sip:sip.example");
  EXPECT_EQ(digest_response(Algorithm::Md5, Qop::None, "bob", "sip.example", "secret", "abc", "",
                            "", "REGISTER", "sip:sip.example", ""),
            hash_hex(Algorithm::Md5, ha1 + ":abc:" + ha2));
}

TEST(DigestResponse, SessAndAuthIntChangeTheAnswer) {
  auto base = digest_response(Algorithm::Sha256, Qop::Auth, "u", "r", "p", "n", "00000001", "c",
                              "INVITE", "sip:x", "body");
  EXPECT_NE(base, digest_response(Algorithm::Sha256Sess, Qop::Auth, "u", "r", "p", "n", "00000001",
                                  "c", "INVITE", "sip:x", "body"));
  auto with_int = digest_response(Algorithm::Sha256, Qop::AuthInt, "u", "r", "p", "n", "00000001",
                                  "c", "INVITE", "sip:x", "body");
  EXPECT_NE(base, with_int);
  EXPECT_NE(with_int, digest_response(Algorithm::Sha256, Qop::AuthInt, "u", "r", "p", "n",
                                      "00000001", "c", "INVITE", "sip:x", "other body"));
}

TEST(DigestHash, Sha512Trunc256OfRfc8760) {
  // SHA-512/256("abc") from FIPS 180-4 examples.
  EXPECT_EQ(hash_hex(Algorithm::Sha512Trunc256, "abc"),
            "53048e2681941ef99b2e29b76b4c7dabe4c2d0c634fc6d46e0e2f13107e7af23");
}

TEST(ParseChallenge, ReadsEveryField) {
  auto c = parse_challenge(
      "Digest realm=\"sip.example\", nonce=\"abc\", opaque=\"xyz\", algorithm=SHA-256-sess, "
      "qop=\"auth,auth-int\", stale=TRUE");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->realm, "sip.example");
  EXPECT_EQ(c->nonce, "abc");
  EXPECT_TRUE(c->has_opaque);
  EXPECT_EQ(c->opaque, "xyz");
  EXPECT_EQ(c->algorithm, Algorithm::Sha256Sess);
  EXPECT_TRUE(c->qop_auth);
  EXPECT_TRUE(c->qop_auth_int);
  EXPECT_TRUE(c->stale);
}

TEST(ParseChallenge, RejectsOtherSchemesAndUnknownAlgorithms) {
  EXPECT_FALSE(parse_challenge("Basic realm=\"x\""));
  EXPECT_FALSE(parse_challenge("Digest realm=\"x\", nonce=\"n\", algorithm=SHA3"));
  EXPECT_FALSE(parse_challenge("Digest realm=\"x\""));  // no nonce
  EXPECT_FALSE(parse_challenge("Digest realm=\"x, nonce=\"n\""));
}

TEST(ParseCredentials, ReadsEveryField) {
  auto c = parse_credentials(
      "Digest username=\"bob\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"abc\", "
      "algorithm=MD5, cnonce=\"cn\", opaque=\"o\", qop=auth, nc=0000000a");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->username, "bob");
  EXPECT_EQ(c->uri, "sip:r");
  EXPECT_EQ(c->qop, Qop::Auth);
  EXPECT_EQ(c->nc, 10u);
  EXPECT_EQ(c->cnonce, "cn");
  EXPECT_FALSE(parse_credentials("Digest username=\"bob\", nonce=\"n\", response=\"r\", nc=12"));
  EXPECT_FALSE(parse_credentials("NoOneKnowsThisScheme opaque-data=here"));
}

TEST(DigestClient, AnswersAChallengeTheServerAccepts) {
  int64_t now = 1000;
  DigestServer server(
      {"esg.example", "secret", 300, 100, Algorithm::Md5, Qop::Auth, [&] { return now; }});
  DigestClient client([] { return std::string("0a4f113b"); });
  auto challenge = parse_challenge(server.challenge());
  ASSERT_TRUE(challenge);
  auto answer = client.answer(*challenge, {"pbx1", "pw", "REGISTER", "sip:esg.example", ""});
  ASSERT_TRUE(answer);
  EXPECT_NE(answer->find("nc=00000001"), std::string::npos);
  auto creds = parse_credentials(*answer);
  ASSERT_TRUE(creds);
  EXPECT_EQ(server.verify(*creds, "REGISTER", "pw"), Verdict::Ok);
  // The next request on the same nonce counts up.
  auto again = client.answer(*challenge, {"pbx1", "pw", "REGISTER", "sip:esg.example", ""});
  ASSERT_TRUE(again);
  EXPECT_NE(again->find("nc=00000002"), std::string::npos);
  EXPECT_EQ(server.verify(*parse_credentials(*again), "REGISTER", "pw"), Verdict::Ok);
}

TEST(DigestServer, DetectsReplayedNonceCount) {
  int64_t now = 1000;
  DigestServer server({"r", "k", 300, 100, Algorithm::Md5, Qop::Auth, [&] { return now; }});
  DigestClient client;
  auto ch = parse_challenge(server.challenge());
  auto creds = parse_credentials(*client.answer(*ch, {"u", "p", "INVITE", "sip:r", ""}));
  ASSERT_TRUE(creds);
  EXPECT_EQ(server.verify(*creds, "INVITE", "p"), Verdict::Ok);
  EXPECT_EQ(server.verify(*creds, "INVITE", "p"), Verdict::Replay);
}

TEST(DigestServer, WrongPasswordTamperedNonceAndOtherRealm) {
  int64_t now = 1000;
  DigestServer server({"r", "k", 300, 100, Algorithm::Sha256, Qop::Auth, [&] { return now; }});
  DigestClient client;
  auto ch = parse_challenge(server.challenge());
  ASSERT_TRUE(ch);
  EXPECT_EQ(ch->algorithm, Algorithm::Sha256);
  auto wrong = parse_credentials(*client.answer(*ch, {"u", "guess", "INVITE", "sip:r", ""}));
  EXPECT_EQ(server.verify(*wrong, "INVITE", "p"), Verdict::BadResponse);

  Challenge forged = *ch;
  forged.nonce[0] = forged.nonce[0] == '0' ? '1' : '0';  // move the issue time
  auto tampered = parse_credentials(*client.answer(forged, {"u", "p", "INVITE", "sip:r", ""}));
  EXPECT_EQ(server.verify(*tampered, "INVITE", "p"), Verdict::BadNonce);

  DigestServer other(
      {"r", "another-secret", 300, 100, Algorithm::Sha256, Qop::Auth, [&] { return now; }});
  auto good = parse_credentials(*client.answer(*ch, {"u", "p", "INVITE", "sip:r", ""}));
  EXPECT_EQ(other.verify(*good, "INVITE", "p"), Verdict::BadNonce);

  Challenge elsewhere = *ch;
  elsewhere.realm = "elsewhere";
  auto realm = parse_credentials(*client.answer(elsewhere, {"u", "p", "INVITE", "sip:r", ""}));
  EXPECT_EQ(server.verify(*realm, "INVITE", "p"), Verdict::WrongRealm);
}

TEST(DigestServer, ExpiredNonceIsStaleOnlyWithTheRightPassword) {
  int64_t now = 1000;
  DigestServer server({"r", "k", 300, 100, Algorithm::Md5, Qop::Auth, [&] { return now; }});
  DigestClient client;
  auto ch = parse_challenge(server.challenge());
  now += 301;
  auto creds = parse_credentials(*client.answer(*ch, {"u", "p", "REGISTER", "sip:r", ""}));
  EXPECT_EQ(server.verify(*creds, "REGISTER", "p"), Verdict::Stale);
  auto wrong = parse_credentials(*client.answer(*ch, {"u", "x", "REGISTER", "sip:r", ""}));
  EXPECT_EQ(server.verify(*wrong, "REGISTER", "p"), Verdict::BadResponse);
  auto fresh = parse_challenge(server.challenge(/*stale=*/true));
  ASSERT_TRUE(fresh);
  EXPECT_TRUE(fresh->stale);
}

TEST(DigestServer, AuthIntCoversTheBody) {
  int64_t now = 1000;
  DigestServer server({"r", "k", 300, 100, Algorithm::Md5, Qop::AuthInt, [&] { return now; }});
  auto ch = parse_challenge(server.challenge());
  ASSERT_TRUE(ch);
  Challenge only_int = *ch;
  only_int.qop_auth = false;  // make the client pick auth-int
  DigestClient client;
  auto creds =
      parse_credentials(*client.answer(only_int, {"u", "p", "INVITE", "sip:r", "v=0\r\n"}));
  ASSERT_TRUE(creds);
  EXPECT_EQ(creds->qop, Qop::AuthInt);
  EXPECT_EQ(server.verify(*creds, "INVITE", "p", "v=0\r\n"), Verdict::Ok);
  auto creds2 =
      parse_credentials(*client.answer(only_int, {"u", "p", "INVITE", "sip:r", "v=0\r\n"}));
  EXPECT_EQ(server.verify(*creds2, "INVITE", "p", "v=1\r\n"), Verdict::BadResponse);
}

TEST(DigestServer, ReplayTableStaysBounded) {
  int64_t now = 1000;
  DigestServer server({"r", "k", 300, 4, Algorithm::Md5, Qop::Auth, [&] { return now; }});
  DigestClient client;
  for (int i = 0; i < 20; ++i) {
    auto ch = parse_challenge(server.challenge());
    auto creds = parse_credentials(*client.answer(*ch, {"u", "p", "OPTIONS", "sip:r", ""}));
    EXPECT_EQ(server.verify(*creds, "OPTIONS", "p"), Verdict::Ok);
    now += 100;  // older nonces expire and are forgotten first
  }
}

}  // namespace
}  // namespace esg::sip::auth
