#pragma once
// `esg telegram login CODE [--config FILE] [--http HOST:PORT]`: logs a Telegram line in from the
// command line, through the running esg's REST API (the instance that holds the line's TDLib
// session), prompting for each step Telegram asks for: phone, code, two-step password.

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace esg::app {

// Exit status: 0 logged in, 1 Telegram or esg refused (said on `err`), 2 bad arguments.
int run_telegram(const std::vector<std::string>& args, std::istream& in, std::ostream& out,
                 std::ostream& err);
// A line from `in`, with echo off when it is a terminal and `secret` (passwords).
std::optional<std::string> read_line(std::istream& in, bool secret);

}  // namespace esg::app
