// RFC 4475 torture messages: every one is handled as MANIFEST.tsv says, and none crashes.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sip/message.hpp"
#include "test_util.hpp"

namespace esg::sip {
namespace {

using test::torture;

struct Expect {
  int status;  // -1: parses; 0: silently discarded; else the status a server answers
  // The fault is in a header parsed on first use (Contact): the message parses, and the element
  // that reads the header (a registrar, the dialog layer) answers `status`.
  bool in_lazy_contact = false;
};

// What each message must produce. Invalid messages a liberal element "may" accept are rejected
// here: esg is at the edge and never guesses at ambiguous framing or request lines.
const std::map<std::string, Expect> kExpected = {
    {"wsinv", {-1}},     {"intmeth", {-1}},         {"esc01", {-1}},       {"escnull", {-1}},
    {"esc02", {-1}},     {"lwsdisp", {-1}},         {"longreq", {-1}},     {"dblreq", {-1}},
    {"semiuri", {-1}},   {"transports", {-1}},      {"mpart01", {-1}},     {"unreason", {-1}},
    {"noreason", {-1}},  {"badinv01", {400}},       {"clerr", {400}},      {"ncl", {400}},
    {"scalar02", {400}}, {"scalarlg", {0}},         {"quotbal", {400}},    {"ltgtruri", {400}},
    {"lwsruri", {400}},  {"lwsstart", {400}},       {"trws", {400}},       {"escruri", {400}},
    {"baddate", {-1}},   {"regbadct", {400, true}}, {"badaspec", {400}},   {"baddn", {400}},
    {"badvers", {505}},  {"mismatch01", {400}},     {"mismatch02", {501}}, {"bigcode", {0}},
    {"badbranch", {-1}}, {"insuf", {400}},          {"unkscm", {416}},     {"novelsc", {416}},
    {"unksm2", {-1}},    {"bext01", {-1}},          {"invut", {-1}},       {"regaut01", {-1}},
    {"multi01", {400}},  {"mcl01", {400}},          {"bcast", {-1}},       {"zeromf", {-1}},
    {"cparam01", {-1}},  {"cparam02", {-1}},        {"regescrt", {-1}},    {"sdp01", {-1}},
    {"inv2543", {-1}},   {"test", {400}},
};

TEST(Torture, ManifestListsExactlyTheMessagesWeCheck) {
  std::string manifest = test::read_file(std::string(ESG_TEST_DATA) + "/rfc4475/MANIFEST.tsv");
  ASSERT_FALSE(manifest.empty());
  std::set<std::string> names;
  size_t pos = manifest.find('\n') + 1;  // skip the header row
  while (pos < manifest.size()) {
    size_t eol = manifest.find('\n', pos);
    std::string row = manifest.substr(pos, eol - pos);
    if (!row.empty()) names.insert(row.substr(0, row.find('\t')));
    pos = eol == std::string::npos ? manifest.size() : eol + 1;
  }
  EXPECT_EQ(names.size(), kExpected.size());
  for (const auto& n : names)
    EXPECT_TRUE(kExpected.count(n)) << n;
}

class TortureCase : public ::testing::TestWithParam<std::string> {};

TEST_P(TortureCase, HandledAsTheManifestSays) {
  const std::string name = GetParam();
  const std::string bytes = torture(name);
  ASSERT_FALSE(bytes.empty()) << name;
  auto m = parse_message(bytes);
  const Expect e = kExpected.at(name);
  if (e.in_lazy_contact) {
    ASSERT_TRUE(m.has_value()) << name;
    auto contacts = m->contacts();
    EXPECT_FALSE(contacts.has_value()) << name << " must fail when its Contact is read";
  } else if (e.status < 0) {
    ASSERT_TRUE(m.has_value()) << name << ": " << m.error().reason << " (" << m.error().detail
                               << ")";
  } else {
    ASSERT_FALSE(m.has_value()) << name << " must be rejected";
    EXPECT_EQ(m.error().status, e.status) << name << ": " << m.error().reason;
    EXPECT_FALSE(m.error().reason.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Rfc4475, TortureCase, ::testing::ValuesIn([] {
                           std::vector<std::string> v;
                           for (const auto& [k, _] : kExpected)
                             v.push_back(k);
                           return v;
                         }()),
                         [](const auto& info) { return info.param; });

// The values RFC 4475 points out, message by message.

TEST(Torture, WsinvFoldingAndCompactForms_3_1_1_1) {
  auto m = parse_message(torture("wsinv"));
  ASSERT_TRUE(m);
  auto vias = m->vias();
  ASSERT_TRUE(vias);
  ASSERT_EQ(vias->size(), 3u);
  EXPECT_EQ((*vias)[0].host, "192.0.2.2");
  EXPECT_EQ((*vias)[0].transport, "UDP");
  EXPECT_EQ((*vias)[0].branch, "390skdjuw");
  EXPECT_EQ((*vias)[1].host, "spindle.example.com");
  EXPECT_EQ((*vias)[1].transport, "TCP");
  EXPECT_EQ((*vias)[1].branch, "z9hG4bK9ikj8");
  EXPECT_EQ((*vias)[2].host, "192.168.255.111");
  EXPECT_EQ((*vias)[2].branch, "z9hG4bK30239");
  EXPECT_EQ(m->max_forwards(), 68);
  EXPECT_EQ(m->cseq().number, 9u);
  EXPECT_EQ(m->cseq().method, "INVITE");
  EXPECT_EQ(m->to().tag(), "1918181833n");
  EXPECT_EQ(m->from().tag(), "98asjd8");
  EXPECT_EQ(m->from().display_name_unquoted(), "J Rosenberg \\\"");
  const HeaderField* subject = m->header(HeaderId::Subject);
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->value, "");
  const HeaderField* unusual = m->header("UnknownHeaderWithUnusualValue");
  ASSERT_NE(unusual, nullptr);
  EXPECT_EQ(unusual->value, ";;,,;;,;");
  const HeaderField* newfangled = m->header("NewFangledHeader");
  ASSERT_NE(newfangled, nullptr);
  EXPECT_EQ(newfangled->value, "newfangled value continued newfangled value");
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts);
  ASSERT_EQ(contacts->items.size(), 1u);
  EXPECT_EQ(contacts->items[0].param("newparam"), "newvalue");
  EXPECT_EQ(contacts->items[0].param("q"), "0.33");
  EXPECT_TRUE(contacts->items[0].param("secondparam").has_value());
  EXPECT_EQ(m->body().size(), 150u);
}

TEST(Torture, IntmethUnknownMethodWithOddCharacters_3_1_1_2) {
  auto m = parse_message(torture("intmeth"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::Unknown);
  EXPECT_EQ(m->method_text(), "!interesting-Method0123456789_*+`.%indeed'~");
}

TEST(Torture, Esc01EscapesDecodedOnlyInUris_3_1_1_3) {
  auto m = parse_message(torture("esc01"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->request_uri().user_unescaped(), "sips:user@example.com");
  EXPECT_EQ(m->to().uri.user_unescaped(), "user");
  EXPECT_EQ(m->from().uri.user_unescaped(), "I have spaces");
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts);
  // name=value%25%34%31 decodes once to "value%41", not to "valueA".
  auto p = contacts->items[0].uri.param("n%61me");
  ASSERT_TRUE(p);
  EXPECT_EQ(unescape(*p), "value%41");
}

TEST(Torture, EscnullKeepsNulInUser_3_1_1_4) {
  auto m = parse_message(torture("escnull"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->to().uri.user_unescaped(), std::string("null-\0-null", 11));
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts);
  ASSERT_EQ(contacts->items.size(), 2u);
  EXPECT_NE(contacts->items[0].uri.user_unescaped(), contacts->items[1].uri.user_unescaped());
}

TEST(Torture, Esc02PercentInMethodIsNotAnEscape_3_1_1_5) {
  auto m = parse_message(torture("esc02"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::Unknown);
  EXPECT_EQ(m->method_text(), "RE%47IST%45R");
  EXPECT_EQ(m->to().display_name_unquoted(), "%Z%45");
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts);
  EXPECT_EQ(contacts->items.size(), 2u);  // C%6Fntact is an extension header
  EXPECT_NE(m->header("C%6Fntact"), nullptr);
}

TEST(Torture, LwsdispDisplayNameWithoutSpace_3_1_1_6) {
  auto m = parse_message(torture("lwsdisp"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->from().display_name, "caller");
  EXPECT_EQ(m->from().uri.user, "caller");
}

TEST(Torture, LongreqLongValuesAnd34Vias_3_1_1_7) {
  auto m = parse_message(torture("longreq"));
  ASSERT_TRUE(m);
  auto vias = m->vias();
  ASSERT_TRUE(vias);
  EXPECT_EQ(vias->size(), 34u);
  EXPECT_GT(m->to().display_name.size(), 90u);
  EXPECT_GT(m->call_id().size(), 100u);
}

TEST(Torture, DblreqIgnoresTrailingOctets_3_1_1_8) {
  const std::string bytes = torture("dblreq");
  auto m = parse_message(bytes);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->method(), Method::Register);
  EXPECT_TRUE(m->body().empty());
  EXPECT_LT(m->bytes().size(), bytes.size());
  EXPECT_EQ(m->bytes().find("INVITE"), std::string_view::npos);
}

TEST(Torture, SemiuriUserWithSemicolon_3_1_1_9) {
  auto m = parse_message(torture("semiuri"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->request_uri().user_unescaped(), "user;par=u@example.net");
  EXPECT_EQ(m->request_uri().host, "example.com");
}

TEST(Torture, TransportsUnknownTransportAccepted_3_1_1_10) {
  auto m = parse_message(torture("transports"));
  ASSERT_TRUE(m);
  auto vias = m->vias();
  ASSERT_TRUE(vias);
  ASSERT_EQ(vias->size(), 5u);
  EXPECT_EQ((*vias)[0].transport, "UDP");
  EXPECT_EQ((*vias)[1].transport, "SCTP");
  EXPECT_EQ((*vias)[2].transport, "TLS");
  EXPECT_EQ((*vias)[3].transport, "UNKNOWN");
  EXPECT_EQ((*vias)[4].transport, "TCP");
}

TEST(Torture, Mpart01BodyWithNulFramedByContentLength_3_1_1_11) {
  auto m = parse_message(torture("mpart01"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body().size(), 553u);
  EXPECT_NE(m->body().find('\0'), std::string_view::npos);
}

TEST(Torture, UnreasonAndNoreasonPhrases_3_1_1_12) {
  auto m = parse_message(torture("unreason"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->status(), 200);
  EXPECT_NE(m->reason().find("="), std::string_view::npos);
  auto n = parse_message(torture("noreason"));
  ASSERT_TRUE(n);
  EXPECT_EQ(n->status(), 100);
  EXPECT_EQ(n->reason(), "");
}

TEST(Torture, BadbranchFallsBackToRfc2543Matching_3_2_1) {
  auto m = parse_message(torture("badbranch"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->top_via().branch, "z9hG4bK");
  EXPECT_FALSE(m->top_via().rfc3261_branch());
}

TEST(Torture, Unksm2OtherSchemesInHeaders_3_3_4) {
  auto m = parse_message(torture("unksm2"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->to().uri.scheme, Scheme::Other);
  EXPECT_EQ(m->to().uri.scheme_text, "isbn");
  EXPECT_EQ(m->from().uri.scheme_text, "http");
}

TEST(Torture, Bext01ExposesRequireAndProxyRequire_3_3_5) {
  auto m = parse_message(torture("bext01"));
  ASSERT_TRUE(m);
  auto require = m->tokens(HeaderId::Require);
  ASSERT_TRUE(require);
  EXPECT_FALSE(require->empty());
  auto proxy_require = m->tokens(HeaderId::ProxyRequire);
  ASSERT_TRUE(proxy_require);
  EXPECT_FALSE(proxy_require->empty());
}

TEST(Torture, BcastSecondViaIsBroadcast_3_3_10) {
  auto m = parse_message(torture("bcast"));
  ASSERT_TRUE(m);
  auto vias = m->vias();
  ASSERT_TRUE(vias);
  ASSERT_GE(vias->size(), 2u);
  EXPECT_EQ((*vias)[1].host, "255.255.255.255");
}

TEST(Torture, ZeromfMaxForwardsZero_3_3_11) {
  auto m = parse_message(torture("zeromf"));
  ASSERT_TRUE(m);
  EXPECT_EQ(m->max_forwards(), 0);
}

TEST(Torture, Cparam01ContactParamIsNotUriParam_3_3_12) {
  auto m = parse_message(torture("cparam01"));
  ASSERT_TRUE(m);
  auto c = m->contacts();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->items[0].param("unknownparam").has_value());
  EXPECT_FALSE(c->items[0].uri.has_param("unknownparam"));
  auto m2 = parse_message(torture("cparam02"));
  ASSERT_TRUE(m2);
  auto c2 = m2->contacts();
  ASSERT_TRUE(c2);
  EXPECT_TRUE(c2->items[0].uri.has_param("unknownparam"));
  EXPECT_FALSE(c2->items[0].param("unknownparam").has_value());
}

TEST(Torture, RegescrtEscapedHeaderStaysInContactUri_3_3_14) {
  auto m = parse_message(torture("regescrt"));
  ASSERT_TRUE(m);
  auto c = m->contacts();
  ASSERT_TRUE(c);
  EXPECT_EQ(c->items[0].uri.headers, "Route=%3Csip:sip.example.com%3E");
}

TEST(Torture, Inv2543NoContentLengthBodyIsRestOfDatagram_3_4_1) {
  const std::string bytes = torture("inv2543");
  auto m = parse_message(bytes);
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->has_content_length());
  EXPECT_FALSE(m->max_forwards().has_value());
  EXPECT_EQ(m->from().tag(), "");
  EXPECT_EQ(m->body().size(), bytes.size() - bytes.find("\r\n\r\n") - 4);
}

TEST(Torture, Scalar02ExpiresOverflowSaturates_3_1_2_4) {
  // The message is rejected for its CSeq; its Expires alone must not wrap either.
  auto e = parse_delta_seconds(
      "10000000000000000000000000000000000000000000000000000000000000000000000000000");
  ASSERT_TRUE(e);
  EXPECT_EQ(*e, UINT32_MAX);
}

TEST(Torture, BadinvRejectsEmptyParameters_3_1_2_1) {
  auto m = parse_message(torture("badinv01"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::BadHeaderValue);
}

TEST(Torture, InsufNamesTheMissingHeader_3_3_1) {
  auto m = parse_message(torture("insuf"));
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::MissingHeader);
  EXPECT_EQ(m.error().reason.rfind("Missing ", 0), 0u);
}

}  // namespace
}  // namespace esg::sip
