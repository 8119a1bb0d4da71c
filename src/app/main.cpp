// esg: the command line. `run` and `check` load the instance config; `parse` checks messages.

#include <malloc.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/core.h>
#ifdef ESG_MIMALLOC
#include <mimalloc.h>
#endif

#include "api/ui.hpp"
#include "app/config.hpp"
#include "app/first_start.hpp"
#include "app/parse_command.hpp"
#include "app/server.hpp"
#include "app/telegram_command.hpp"
#include "edge/context.hpp"
#include "log/log.hpp"
#include "store/store.hpp"
#include "transport/dns.hpp"

namespace {

constexpr const char* kVersion = "0.1.0";

void usage(std::ostream& out) {
  out << "usage: esg <command> [options]\n"
         "  run [--config FILE]      run until SIGTERM (default config/esg.json)\n"
         "  check --config FILE      validate a config and print the effective one\n"
         "  parse [--stream] FILE... parse SIP messages, one JSON line each\n"
         "  resolve [--dns IP[:PORT]]... [--config FILE] URI...\n"
         "                           RFC 3263: the targets to try for each SIP URI\n"
         "  normalize [--config FILE] --account CODE --direction in|out --from USER --to USER\n"
         "            [--ruri USER] [--display NAME]\n"
         "                           the substitution test: each normalization rule applied\n"
         "  telegram login CODE [--config FILE] [--http HOST:PORT]\n"
         "                           log a Telegram line in through the running esg, step by\n"
         "                           step (phone, code, two-step password)\n"
         "  hash-password            read a password, print its hash for http.admin\n"
         "  version                  print the version\n";
}

std::string config_arg(const std::vector<std::string>& args, bool required, bool& ok) {
  ok = true;
  std::string path = "config/esg.json";
  bool given = false;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      path = args[++i];
      given = true;
    } else if (args[i].rfind("--config=", 0) == 0) {
      path = args[i].substr(9);
      given = true;
    } else {
      std::cerr << "esg: unknown argument " << args[i] << "\n";
      ok = false;
    }
  }
  if (required && !given) {
    std::cerr << "esg: --config FILE is required\n";
    ok = false;
  }
  return path;
}

int cmd_check(const std::vector<std::string>& args) {
  bool ok = false;
  const std::string path = config_arg(args, true, ok);
  if (!ok) return 2;
  try {
    auto config = esg::app::load_config(path);
    std::cout << esg::app::to_json(config).dump(2) << "\n";
    // On stderr: stdout stays the effective config, for tools that read it.
    if (const auto url = esg::app::web_page_url(config); !url.empty())
      std::cerr << "esg: web page at " << url << " (sign in as \"" << config.http.admin_user
                << "\")\n";
    for (const auto& w : esg::app::sample_credential_warnings(config))
      std::cerr << "esg: warning: " << w << "\n";
    return 0;
  } catch (const esg::app::ConfigError& e) {
    std::cerr << "esg: config error: " << e.what() << "\n";
    return 2;
  }
}

volatile std::sig_atomic_t g_stop = 0;
volatile std::sig_atomic_t g_reload = 0;
void on_signal(int sig) {
  if (sig == SIGHUP)
    g_reload = 1;
  else
    g_stop = 1;
}

int cmd_run(const std::vector<std::string>& args) {
  bool ok = false;
  const std::string path = config_arg(args, false, ok);
  if (!ok) return 2;
  esg::app::Config config;
  try {
    config = esg::app::load_config(path);
  } catch (const esg::app::ConfigError& e) {
    std::cerr << "esg: config error: " << e.what() << "\n";
    return 2;
  }
  // Block SIGTERM/SIGINT before saying "ready" so a signal sent right after is not lost, then
  // wait for one with sigsuspend (no busy loop, no race between the check and the wait).
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  sigset_t stop_signals, previous;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  sigprocmask(SIG_BLOCK, &stop_signals, &previous);
  esg::app::Server server(config);
  try {
    server.start();
  } catch (const std::exception& e) {
    std::cerr << "esg: " << e.what() << "\n";
    return 2;
  }
  // The accounts the file declared are in the store now; their JSON (kilobytes per account with
  // thousands of them) is not needed any more, nor what parsing and importing left behind.
  config.providers = nlohmann::json::array();
  malloc_trim(0);
  fmt::print("esg {} instance srvidx={} roleid={} node={} domain={}\n", kVersion,
             config.instance.srvidx, config.instance.roleid, config.instance.node,
             config.instance.domain);
  for (size_t i = 0; i < config.listen.size(); ++i) {
    const auto& l = config.listen[i];
    fmt::print("listening on {} {}:{}\n", l.proto, l.addr, server.port(i));
  }
  if (config.log.log_trn) fmt::print("transaction log in {}\n", config.log.dir);
  {
    const std::string host = config.http.listen.substr(0, config.http.listen.rfind(':'));
    fmt::print("listening on http {}:{}\n", host, server.http_port());
  }
  if (const auto url = esg::app::web_page_url(config, server.http_port()); !url.empty()) {
    fmt::print("web page at {} (sign in as \"{}\")\n", url, config.http.admin_user);
  }
  for (const auto& w : esg::app::sample_credential_warnings(config)) {
    fmt::print("warning: {}\n", w);
    esg::log::get("app").warn("{}", w);
  }
  fmt::print("store {}\n", config.store.postgres.empty() ? "sqlite " + config.store.sqlite
                                                         : std::string("postgres"));
  fmt::print("ready; stop with SIGTERM or Ctrl-C, reload the config file with SIGHUP\n");
  std::fflush(stdout);
  sigset_t wait_mask = previous;
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGHUP);
  while (!g_stop) {
    sigsuspend(&wait_mask);
    if (!g_reload) continue;
    g_reload = 0;
    // The file again: a broken one changes nothing (the running configuration stays).
    try {
      const auto fresh = esg::app::load_config(path);
      server.reload(fresh);
    } catch (const esg::app::ConfigError& e) {
      esg::log::get("app").error("reload refused, the running configuration stays: {}", e.what());
    }
  }
  fmt::print("stopping\n");
  std::fflush(stdout);
  server.stop();
  return 0;
}

int cmd_resolve(const std::vector<std::string>& args) {
  std::vector<std::string> servers, uris;
  std::string config_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--dns" && i + 1 < args.size()) {
      servers.push_back(args[++i]);
    } else if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (!args[i].empty() && args[i][0] == '-') {
      std::cerr << "esg resolve: unknown option " << args[i] << "\n";
      return 2;
    } else {
      uris.push_back(args[i]);
    }
  }
  if (uris.empty()) {
    std::cerr << "usage: esg resolve [--dns IP[:PORT]]... [--config FILE] URI...\n";
    return 2;
  }
  if (servers.empty() && !config_path.empty()) {
    try {
      servers = esg::app::load_config(config_path).dns_servers;
    } catch (const esg::app::ConfigError& e) {
      std::cerr << "esg: config error: " << e.what() << "\n";
      return 2;
    }
  }
  esg::transport::Resolver resolver({servers});
  int rc = 0;
  for (const auto& uri : uris) {
    auto targets = resolver.resolve_sync(uri);
    if (targets.empty()) rc = 1;
    nlohmann::json j = {{"uri", uri}, {"targets", nlohmann::json::array()}};
    for (const auto& t : targets) {
      j["targets"].push_back({{"transport", std::string(esg::transport::proto_name(t.proto))},
                              {"host", t.host},
                              {"addr", t.addr},
                              {"port", t.port},
                              {"priority", t.priority},
                              {"weight", t.weight}});
    }
    std::cout << j.dump() << "\n";
  }
  return rc;
}

// The substitution test without a running esg: the store of --config, an account, a direction
// and the numbers; prints what each rule did, as JSON.
int cmd_normalize(const std::vector<std::string>& args) {
  std::string config_path = "config/esg.json";
  nlohmann::json body = nlohmann::json::object();
  static const std::map<std::string, std::string> kOptions = {
      {"--account", "account"}, {"--direction", "direction"}, {"--from", "from_user"},
      {"--to", "to_user"},      {"--ruri", "ruri_user"},      {"--display", "from_display"}};
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--config" && i + 1 < args.size()) {
      config_path = args[++i];
    } else if (kOptions.count(args[i]) && i + 1 < args.size()) {
      body[kOptions.at(args[i])] = args[i + 1];
      ++i;
    } else {
      std::cerr << "esg normalize: unknown option " << args[i] << "\n"
                << "usage: esg normalize [--config FILE] --account CODE --direction in|out "
                   "--from USER --to USER [--ruri USER] [--display NAME]\n";
      return 2;
    }
  }
  esg::app::Config config;
  try {
    config = esg::app::load_config(config_path);
  } catch (const esg::app::ConfigError& e) {
    std::cerr << "esg: config error: " << e.what() << "\n";
    return 2;
  }
  std::unique_ptr<esg::store::Store> store;
  try {
    store = config.store.postgres.empty() ? esg::store::open_sqlite(config.store.sqlite)
                                          : esg::store::open_postgres(config.store.postgres);
  } catch (const esg::store::StoreError& e) {
    std::cerr << "esg: " << e.what() << "\n";
    return 2;
  }
  auto cfg =
      esg::edge::edge_config_from_store(*store, config.instance.domain, config.instance.extaddrs);
  auto r = esg::edge::substitution_test(*cfg, body);
  if (!r) {
    std::cerr << "esg normalize: " << (r.error().field.empty() ? "" : r.error().field + ": ")
              << r.error().message << "\n";
    return 2;
  }
  std::cout << r->dump(2) << "\n";
  return 0;
}

int dispatch(std::vector<std::string> args) {
  if (args.empty()) {
    usage(std::cerr);
    return 2;
  }
  const std::string cmd = args.front();
  args.erase(args.begin());
  if (cmd == "run") return cmd_run(args);
  if (cmd == "check") return cmd_check(args);
  if (cmd == "parse") return esg::app::run_parse(args, std::cout, std::cerr);
  if (cmd == "resolve") return cmd_resolve(args);
  if (cmd == "normalize") return cmd_normalize(args);
  if (cmd == "telegram") return esg::app::run_telegram(args, std::cin, std::cout, std::cerr);
  if (cmd == "hash-password") {
    // The web page's admin password, as http.admin.password_hash takes it.
    if (isatty(STDIN_FILENO)) std::cerr << "password: ";
    const auto pw = esg::app::read_line(std::cin, true);
    if (!pw || pw->empty()) {
      std::cerr << "esg: no password given\n";
      return 2;
    }
    std::cout << esg::api::hash_password(*pw) << "\n";
    return 0;
  }
  if (cmd == "version" || cmd == "--version") {
    std::cout << "esg " << kVersion << "\n";
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "esg: unknown command " << cmd << "\n";
  usage(std::cerr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
#ifdef ESG_MIMALLOC
  // Freed pages go back to the system at once instead of 25 ms later: under a burst of calls
  // the delay kept every worker's transient pages resident (bench/b2bua_vs_kamailio.py
  // --memory: 38.7 KiB per call in progress with the delay, 29.4 without; glibc 29.6).
  // MIMALLOC_DECOMMIT_DELAY in the environment still says otherwise (mimalloc reads it).
  if (!std::getenv("MIMALLOC_DECOMMIT_DELAY")) mi_option_set(mi_option_decommit_delay, 0);
#endif
  try {
    return dispatch(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const std::exception& e) {
    // Start-up only: the per-message path returns errors as values.
    std::cerr << "esg: " << e.what() << "\n";
    return 2;
  }
}
