#include "log/log.hpp"

#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace esg::log {

namespace {

constexpr const char* kPattern = "%Y-%m-%d %H:%M:%S.%e %-5l %-9n %v";

struct Registry {
  std::vector<std::shared_ptr<spdlog::logger>> loggers;
  Registry() {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    for (const auto& m : modules()) {
      auto l = std::make_shared<spdlog::logger>(m, sink);
      l->set_pattern(kPattern);
      l->set_level(spdlog::level::warn);
      loggers.push_back(std::move(l));
    }
  }
};

Registry& registry() {
  static Registry r;
  return r;
}

std::mutex init_mu;

spdlog::level::level_enum level_of(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  return spdlog::level::off;
}

std::string name_of(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
      return "error";
    default:
      return "off";
  }
}

int index_of(std::string_view module) {
  const auto& m = modules();
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] == module) return int(i);
  }
  return -1;
}

}  // namespace

const std::vector<std::string>& modules() {
  static const std::vector<std::string> kModules = {
      "app",   "transport", "txn", "dialog", "accounts", "edge",  "b2bua",
      "media", "telegram",  "api", "store",  "cluster",  "notify"};
  return kModules;
}

bool valid_level(std::string_view level) {
  return level == "trace" || level == "debug" || level == "info" || level == "warn" ||
         level == "error" || level == "off";
}

void init(const Options& o) {
  std::lock_guard lock(init_mu);
  if (!valid_level(o.level)) throw std::runtime_error("log.level: unknown level " + o.level);
  for (const auto& [m, l] : o.levels) {
    if (index_of(m) < 0) throw std::runtime_error("log.modules." + m + ": no such module");
    if (!valid_level(l)) throw std::runtime_error("log.modules." + m + ": unknown level " + l);
  }
  spdlog::sink_ptr sink;
  if (o.file.empty()) {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  } else {
    try {
      sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(o.file, 50u << 20, 5);
    } catch (const spdlog::spdlog_ex& e) {
      throw std::runtime_error("log: cannot open " + o.file + ": " + e.what());
    }
  }
  for (auto& l : registry().loggers) {
    l->sinks().clear();
    l->sinks().push_back(sink);
    l->set_pattern(kPattern);
    l->set_level(level_of(o.level));
    l->flush_on(spdlog::level::info);
  }
  for (const auto& [m, l] : o.levels)
    registry().loggers[size_t(index_of(m))]->set_level(level_of(l));
}

spdlog::logger& get(std::string_view module) {
  auto& r = registry();
  const int i = index_of(module);
  return *r.loggers[size_t(i < 0 ? 0 : i)];
}

nlohmann::json levels() {
  nlohmann::json m = nlohmann::json::object();
  for (const auto& l : registry().loggers)
    m[l->name()] = name_of(l->level());
  return {{"modules", m}, {"levels", {"trace", "debug", "info", "warn", "error", "off"}}};
}

std::string set_levels(const nlohmann::json& body, std::string* field) {
  if (!body.is_object()) return "the body must be a JSON object";
  for (auto it = body.begin(); it != body.end(); ++it) {
    if (it.key() != "level" && it.key() != "modules") {
      *field = it.key();
      return "unknown field";
    }
  }
  std::vector<std::pair<int, spdlog::level::level_enum>> changes;
  if (body.contains("level")) {
    if (!body["level"].is_string() || !valid_level(body["level"].get<std::string>())) {
      *field = "level";
      return "must be trace, debug, info, warn, error or off";
    }
    for (size_t i = 0; i < modules().size(); ++i)
      changes.emplace_back(int(i), level_of(body["level"].get<std::string>()));
  }
  if (body.contains("modules")) {
    const auto& m = body["modules"];
    if (!m.is_object()) {
      *field = "modules";
      return "must be an object of module: level";
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      const int i = index_of(it.key());
      if (i < 0) {
        *field = "modules." + it.key();
        return "no such module";
      }
      if (!it->is_string() || !valid_level(it->get<std::string>())) {
        *field = "modules." + it.key();
        return "must be trace, debug, info, warn, error or off";
      }
      changes.emplace_back(i, level_of(it->get<std::string>()));
    }
  }
  // All or nothing: applied once every value was checked.
  for (const auto& [i, l] : changes)
    registry().loggers[size_t(i)]->set_level(l);
  return {};
}

}  // namespace esg::log
