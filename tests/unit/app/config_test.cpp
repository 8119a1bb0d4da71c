#include "app/config.hpp"

#include <gtest/gtest.h>

namespace esg::app {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_config(text);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EmptyObjectGivesContractDefaults) {
  Config c = parse_config("{}");
  ASSERT_EQ(c.listen.size(), 2u);
  EXPECT_EQ(c.listen[0].proto, "udp");
  EXPECT_EQ(c.listen[0].port, 5080);
  EXPECT_EQ(c.listen[1].proto, "tcp");
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.store.sqlite, "var/esg.db");
  EXPECT_TRUE(c.store.cdrs);
  EXPECT_TRUE(c.media.relay);
  EXPECT_EQ(c.media.port_min, 20000);
  EXPECT_EQ(c.media.timeout, 60);
  EXPECT_EQ(c.security.default_action, "allow");
  EXPECT_EQ(c.security.ban_failures, 5);
  EXPECT_EQ(c.security.ban_window, 60);
  EXPECT_EQ(c.security.ban_duration, 3600);
  EXPECT_FALSE(c.log.log_trn);
  EXPECT_TRUE(c.stun_server.empty());  // no default STUN server
}

TEST(Config, FirewallListFields) {
  Config c = parse_config("{}");
  EXPECT_FALSE(c.http.public_fw);  // the token, unless the operator opens it
  EXPECT_TRUE(c.instance.fwaddrs.empty());
  c = parse_config(R"({"http": {"public_fw": true},
                      "instance": {"fwaddrs": ["198.51.100.7/28", "2001:DB8::1"]}})");
  EXPECT_TRUE(c.http.public_fw);
  // Canonical: host bits cleared, IPv6 in its short lower-case form.
  EXPECT_EQ(c.instance.fwaddrs, (std::vector<std::string>{"198.51.100.0/28", "2001:db8::1"}));
  EXPECT_EQ(to_json(c)["instance"]["fwaddrs"][0], "198.51.100.0/28");
  EXPECT_EQ(to_json(c)["http"]["public_fw"], true);
  EXPECT_NE(error_of(R"({"instance": {"fwaddrs": ["10.0.0.0/8", "pbx.example.com"]}})")
                .find("instance.fwaddrs[1]: must be an IP address or a CIDR"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"instance": {"fwaddrs": ["10.0.0.0/40"]}})").find("instance.fwaddrs[0]"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"http": {"public_fw": "yes"}})").find("http.public_fw"),
            std::string::npos);
}

TEST(Config, SampleConfigLoads) {
  Config c = load_config(std::string(ESG_SOURCE_DIR) + "/config/esg.json");
  EXPECT_EQ(c.instance.srvidx, 1);
  EXPECT_TRUE(c.log.log_trn);
  EXPECT_TRUE(c.providers.empty());
}

TEST(Config, TlsListenerDefaultsTo5061AndNeedsCert) {
  Config c = parse_config(
      R"({"listen": [{"proto": "tls", "addr": "127.0.0.1", "cert": "c.pem", "key": "k.pem"}]})");
  EXPECT_EQ(c.listen[0].port, 5061);
  EXPECT_NE(error_of(R"({"listen": [{"proto": "tls"}]})").find("listen[0]"), std::string::npos);
}

TEST(Config, CallRecordsCanBeTurnedOffForMeasurements) {
  EXPECT_FALSE(parse_config(R"({"store": {"cdrs": false}})").store.cdrs);
  EXPECT_EQ(error_of(R"({"store": {"cdrs": "no"}})"), "store.cdrs: must be true or false");
}

TEST(Config, ErrorsNameTheFieldPath) {
  EXPECT_EQ(error_of(R"({"listen": [{"proto": "udp"}, {"port": 70000}]})"),
            "listen[1].port: must be between 0 and 65535");
  EXPECT_EQ(error_of(R"({"listen": [{"proto": "sctp"}]})"),
            "listen[0].proto: must be udp, tcp or tls");
  EXPECT_EQ(error_of(R"({"instance": {"srvidx": "one"}})"), "instance.srvidx: must be an integer");
  EXPECT_EQ(error_of(R"({"instance": {"sip_alg": [{"gray": "10.0.0.1", "white": "x"}]}})"),
            "instance.sip_alg[0].white: must be an IP address");
  EXPECT_EQ(error_of(R"({"security": {"ban": {"failures": 0}}})"),
            "security.ban.failures: must be between 1 and 1000000");
  EXPECT_EQ(error_of(R"({"media": {"ports": [30000, 20000]}})"),
            "media.ports: must be a range within 1024-65535, first < last");
  EXPECT_EQ(error_of(R"({"log": {"level": "loud"}})"),
            "log.level: must be trace, debug, info, warn, error or off");
  EXPECT_EQ(error_of(R"({"log": {"modules": {"b2bua": "loud"}}})"),
            "log.modules.b2bua: must be trace, debug, info, warn, error or off");
  EXPECT_EQ(error_of(R"({"log": {"modules": {"sip": "debug"}}})")
                .rfind("log.modules.sip: no such module (app, transport", 0),
            0u);
  EXPECT_EQ(error_of(R"({"log": {"to": "syslog"}})"), "log.to: must be stderr or file");
  EXPECT_EQ(error_of(R"({"hep": {"address": "homer:9060"}})"),
            "hep.address: 'homer' is not an IP address");
  EXPECT_EQ(error_of(R"({"hep": {"address": "127.0.0.1:0"}})"),
            "hep.address: the port must be 1 to 65535");
  EXPECT_EQ(error_of(R"({"listen": [{"addr": "localhost"}]})"),
            "listen[0].addr: must be an IPv4 or IPv6 address");
  EXPECT_EQ(error_of(R"({"listen": [{}, {}]})"), "listen[1]: duplicate listener udp 0.0.0.0:5080");
  EXPECT_EQ(error_of(R"({"instance": {"call_id_header": "X-Call ID:"}})"),
            "instance.call_id_header: must be a header name (letters, digits, '-', '_', '.') or "
            "empty");
}

// Issue 23: the lines' sessions go into the store by default where instances share one.
TEST(Config, TelegramSessionsGoIntoASharedStoreByDefault) {
  EXPECT_EQ(parse_config("{}").telegram.session_store, "files");
  EXPECT_EQ(parse_config(R"({"store": {"postgres": "postgresql://x/esg"}})").telegram.session_store,
            "store");
  EXPECT_EQ(parse_config(R"({"store": {"postgres": "postgresql://x/esg"},
                             "telegram": {"session_store": "files"}})")
                .telegram.session_store,
            "files");
  EXPECT_EQ(error_of(R"({"telegram": {"session_store": "store"}})"),
            "telegram.session_store: \"store\" needs store.postgres (the instances' shared store)");
  EXPECT_EQ(error_of(R"({"telegram": {"session_store": "disk"}})"),
            "telegram.session_store: must be \"store\" or \"files\"");
  EXPECT_EQ(error_of(R"({"telegram": {"session_snapshot": 1}})"),
            "telegram.session_snapshot: must be between 5 and 3600");
}

TEST(Config, TheCallIdHeaderIsConfigurable) {
  EXPECT_EQ(parse_config("{}").instance.call_id_header, "X-Call-ID");
  EXPECT_EQ(
      parse_config(R"({"instance": {"call_id_header": "X-Orig-Call"}})").instance.call_id_header,
      "X-Orig-Call");
  EXPECT_EQ(parse_config(R"({"instance": {"call_id_header": ""}})").instance.call_id_header, "");
}

TEST(Config, TransportLimits) {
  Config c =
      parse_config(R"({"transport": {"message_timeout": 0.5, "max_connections_per_address": 3}})");
  EXPECT_DOUBLE_EQ(c.transport.message_timeout, 0.5);
  EXPECT_EQ(c.transport.max_connections_per_address, 3);
  EXPECT_EQ(c.transport.max_message, 65535);
  EXPECT_DOUBLE_EQ(c.transport.connect_timeout, 10);
  EXPECT_DOUBLE_EQ(
      parse_config(R"({"transport": {"connect_timeout": 2.5}})").transport.connect_timeout, 2.5);
  EXPECT_EQ(error_of(R"({"transport": {"idle_timeout": "long"}})"),
            "transport.idle_timeout: must be a number");
  EXPECT_NE(error_of(R"({"transport": {"connect_timeout": 0}})").find("transport.connect_timeout"),
            std::string::npos);
}

TEST(Config, UnknownFieldsAreRejected) {
  EXPECT_EQ(error_of(R"({"instanse": {}})"), "instanse: unknown field");
  EXPECT_EQ(error_of(R"({"http": {"tokn": "x"}})"), "http.tokn: unknown field");
}

TEST(Config, SyntaxErrorsGiveLineAndColumn) {
  std::string e = error_of("{\n  \"instance\": {\n    \"srvidx\": 1,\n  }\n}");
  EXPECT_NE(e.find("line 4"), std::string::npos) << e;
}

TEST(Config, EffectiveConfigMasksSecrets) {
  Config c = parse_config(
      R"({"http": {"token": "t0ps3cret"}, "providers": [{"code": "p1", "pwd": "hunter2",
          "username": "u", "domain": "127.0.0.1"}]})");
  const std::string dumped = to_json(c).dump();
  EXPECT_EQ(dumped.find("t0ps3cret"), std::string::npos);
  EXPECT_EQ(dumped.find("hunter2"), std::string::npos);
  EXPECT_NE(dumped.find("\"code\":\"p1\""), std::string::npos);
  // The effective config is itself a valid config.
  EXPECT_NO_THROW(parse_config(to_json(c).dump()));
}

TEST(Config, WebhooksAreCheckedAndTheirSecretsMasked) {
  EXPECT_EQ(error_of(R"({"webhooks": {}})"), "webhooks: must be an array of webhooks");
  EXPECT_EQ(error_of(R"({"webhooks": [{"url": "http://h/"}, {"url": "mailto:x"}]})"),
            "webhooks[1].url: must start with http://");
  EXPECT_EQ(error_of(R"({"webhooks": [{"url": "http://h/", "events": ["call.x"]}]})"),
            "webhooks[0].events[0]: must be call.ringing, call.answered or call.ended");
  EXPECT_EQ(error_of(R"({"webhooks": [{"url": "http://h/"}, {"url": "http://h/"}]})"),
            "webhooks[1].url: is used twice");
  EXPECT_EQ(error_of(R"({"webhook_queue": {"max": 0}})"),
            "webhook_queue.max: must be between 1 and 10000000");
  Config c = parse_config(
      R"({"webhooks": [{"url": "http://10.0.0.20/e", "secret": "crm-s3cret"}],
          "webhook_queue": {"dir": "/var/lib/esg/webhooks"}})");
  EXPECT_EQ(c.webhook_queue.dir, "/var/lib/esg/webhooks");
  EXPECT_EQ(c.webhook_queue.max, 10000);
  const std::string dumped = to_json(c).dump();
  EXPECT_EQ(dumped.find("crm-s3cret"), std::string::npos);
  EXPECT_NO_THROW(parse_config(dumped));
}

TEST(Config, ProviderErrorsNameTheirPathInTheFile) {
  try {
    parse_config(R"({"providers": [{"code": "a", "username": "u", "domain": "127.0.0.1"},
                                   {"code": "b", "username": "u", "domain": "127.0.0.1",
                                    "proxyport": 0}]})");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "providers[1].proxyport");
  }
  try {
    parse_config(R"({"providers": [{"code": "a", "username": "u", "domain": "127.0.0.1"},
                                   {"code": "a", "username": "u", "domain": "127.0.0.1"}]})");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "providers[1].code");
  }
  try {
    parse_config(R"({"accounts": {"retry_min": 10, "retry_max": 5}})");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.field(), "accounts.retry_max");
  }
}

}  // namespace
}  // namespace esg::app
