#pragma once
// esg's log (issue 10): lines to stderr or a file, one logger per module (the folders of src/)
// with a level of its own that the REST API changes at run time. Lines about a call carry its
// Call-ID in brackets, so `grep` finds a call's story in the log as in the trn log:
//
//   2026-12-02 20:26:29.558 info  b2bua     [7c4ec8dd27ea819d@esg] ended after 12 s (200) by
//   caller: BYE
//
// Before init() (unit tests, the command line tools) everything at warn and above goes to
// stderr.

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace esg::log {

// The modules that log, in the order the API lists them.
const std::vector<std::string>& modules();

struct Options {
  std::string level = "info";  // every module's, unless `levels` names it
  std::vector<std::pair<std::string, std::string>> levels;  // module -> level
  std::string file;  // empty: stderr; else this file, rotated by size
};
// Throws std::runtime_error naming what is wrong (an unknown module or level, a file that
// cannot be opened).
void init(const Options& options);

// The logger of `module` (one of modules(); any other name gets the "app" logger).
spdlog::logger& get(std::string_view module);

// Run-time levels: {"modules": {"b2bua": "debug", ...}}. set_levels() takes
// {"level": L} (every module) and/or {"modules": {M: L}}; an error names the field.
nlohmann::json levels();
std::string set_levels(const nlohmann::json& body, std::string* field);
bool valid_level(std::string_view level);

// A line about a call: "[Call-ID] " before the text.
template <class... A>
void call(std::string_view module, spdlog::level::level_enum level, std::string_view call_id,
          fmt::format_string<A...> f, A&&... args) {
  spdlog::logger& l = get(module);
  if (!l.should_log(level)) return;
  l.log(level, "[{}] {}", call_id, fmt::format(f, std::forward<A>(args)...));
}

}  // namespace esg::log
