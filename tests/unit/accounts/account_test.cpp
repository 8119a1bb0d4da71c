#include "accounts/account.hpp"

#include <gtest/gtest.h>

namespace esg::accounts {
namespace {

using nlohmann::json;

json minimal() {
  return {{"code", "prov1"}, {"username", "100"}, {"pwd", "secret"}, {"domain", "sip.example.net"}};
}

FieldError error_of(const json& j) {
  auto a = account_from_json(j);
  EXPECT_FALSE(a) << j.dump();
  return a ? FieldError{} : a.error();
}

TEST(Account, DefaultsAsTheContractsSay) {
  auto a = account_from_json(minimal());
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->reg);
  EXPECT_EQ(a->proxyport, 5060);
  EXPECT_EQ(a->transport, "udp");
  EXPECT_EQ(a->pingmode, "off");
  EXPECT_EQ(a->expires, 3600);
  EXPECT_TRUE(a->reinvite);
  EXPECT_FALSE(a->media);
  EXPECT_TRUE(a->tls_verify);
  EXPECT_TRUE(a->enabled);
  EXPECT_EQ(a->next_hop_host(), "sip.example.net");
}

TEST(Account, ThePasswordIsWriteOnly) {
  auto a = account_from_json(minimal());
  ASSERT_TRUE(a);
  EXPECT_FALSE(to_json(*a).contains("pwd"));
  EXPECT_EQ(to_stored_json(*a)["pwd"], "secret");
  // What the API returns can be read back (round trip without the password).
  auto again = account_from_json(to_json(*a));
  ASSERT_TRUE(again);
  EXPECT_EQ(to_json(*again), to_json(*a));
}

TEST(Account, ErrorsNameTheField) {
  auto with = [](const char* k, json v) {
    json j = minimal();
    j[k] = v;
    return j;
  };
  EXPECT_EQ(error_of(with("proxyport", 70000)).field, "proxyport");
  EXPECT_EQ(error_of(with("proxyport", "5060")).field, "proxyport");
  EXPECT_EQ(error_of(with("transport", "sctp")).field, "transport");
  EXPECT_EQ(error_of(with("pingmode", "ping")).field, "pingmode");
  EXPECT_EQ(error_of(with("dtmf", "x")).field, "dtmf");
  EXPECT_EQ(error_of(with("srtp", true)).field, "srtp");
  EXPECT_EQ(error_of(with("codecs", json::array({"PCMA", "G729"}))).field, "codecs[1]");
  EXPECT_EQ(error_of(with("extaddrs", json::array({"10.0.0.0/8", "/reg/("}))).field, "extaddrs[1]");
  EXPECT_EQ(error_of(with("extaddrs", json::array({"10.0.0.0/33"}))).field, "extaddrs[0]");
  EXPECT_EQ(error_of(with("opts", json{{"extusernames", json::array({1})}})).field,
            "opts.extusernames[0]");
  EXPECT_EQ(error_of(with("opts", json{{"other", 1}})).field, "opts.other");
  EXPECT_EQ(error_of(with("serveridxs", json::array({"a"}))).field, "serveridxs[0]");
  EXPECT_EQ(error_of(with("domian", "x")).field, "domian");  // a typo is an unknown field
  EXPECT_EQ(error_of(with("domain", "bad host")).field, "domain");
  EXPECT_EQ(error_of(with("code", "has space")).field, "code");
  json both_off = minimal();
  both_off["media"] = false;
  both_off["reinvite"] = false;
  EXPECT_EQ(error_of(both_off).field, "reinvite");
  json no_user = minimal();
  no_user.erase("username");
  EXPECT_EQ(error_of(no_user).field, "username");
  no_user["reg"] = false;  // point-to-point needs no username
  EXPECT_TRUE(account_from_json(no_user));
  json no_code = minimal();
  no_code.erase("code");
  EXPECT_EQ(error_of(no_code).field, "code");
}

TEST(Account, FieldsOfFewValuesReadAndRoundTripAsTheirNames) {
  json j = minimal();
  j["transport"] = "tls";
  j["pingmode"] = "options";
  j["dtmf"] = "inband";
  j["srtp"] = "required";
  auto a = account_from_json(j);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->transport, "tls");
  EXPECT_NE(a->transport, "udp");
  const std::string& as_text = a->transport;  // reads where a string is wanted
  EXPECT_EQ(as_text, "tls");
  EXPECT_EQ(";transport=" + a->transport, ";transport=tls");
  EXPECT_EQ(a->pingmode, "options");
  EXPECT_EQ(a->dtmf, "inband");
  EXPECT_EQ(a->srtp, "required");
  const json back = to_json(*a);
  EXPECT_EQ(back["transport"], "tls");
  EXPECT_EQ(back["pingmode"], "options");
  EXPECT_EQ(back["dtmf"], "inband");
  EXPECT_EQ(back["srtp"], "required");
  j["srtp"] = "maybe";
  EXPECT_EQ(error_of(j).message, "must be one of off, optional, required");
  EXPECT_FALSE(Transport::parse("UDP")) << "names are exact, as the validation always had them";
  a->transport = "udp";
  EXPECT_EQ(to_json(*a)["transport"], "udp");
}

TEST(Account, CodecsKeepTheirOrderAndRefuseRepeatsAndUnknownNames) {
  auto a = account_from_json(minimal());
  ASSERT_TRUE(a);
  EXPECT_EQ(to_json(*a)["codecs"], json::array({"PCMA", "PCMU"})) << "the default";
  json j = minimal();
  j["codecs"] = json::array({"opus", "G722", "PCMU", "PCMA"});
  a = account_from_json(j);
  ASSERT_TRUE(a);
  ASSERT_EQ(a->codecs.size(), 4u);
  EXPECT_EQ(a->codecs[0], "opus");
  EXPECT_EQ(a->codecs[3], "PCMA");
  const std::vector<std::string> names = a->codecs;  // what a call leg's policy takes
  EXPECT_EQ(names, (std::vector<std::string>{"opus", "G722", "PCMU", "PCMA"}));
  EXPECT_EQ(to_json(*a)["codecs"], j["codecs"]);
  j["codecs"] = json::array();
  a = account_from_json(j);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->codecs.empty());
  j["codecs"] = json::array({"PCMU", "opus", "PCMU"});
  EXPECT_EQ(error_of(j).field, "codecs[2]");
  EXPECT_EQ(error_of(j).message, "is listed twice");
  j["codecs"] = json::array({"PCMU", "GSM"});
  EXPECT_EQ(error_of(j).message, "must be one of PCMA, PCMU, G722, opus");
  j["codecs"] = "PCMA";
  EXPECT_EQ(error_of(j).field, "codecs");
}

TEST(Account, AddressFiltersOfEveryKind) {
  for (const char* ok : {"192.168.0.112", "44.55.6?.*", "10.0.0.0/8", "2001:db8::/32",
                         "/reg/^44\\.55\\.66\\.[0-9]+$", "sip.example.net"}) {
    EXPECT_TRUE(valid_address_filter(ok)) << ok;
  }
  for (const char* bad : {"", "/reg/(", "1.2.3.4/40", "a b", "x/8"}) {
    EXPECT_FALSE(valid_address_filter(bad)) << bad;
  }
}

}  // namespace
}  // namespace esg::accounts
