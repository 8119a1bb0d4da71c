#pragma once
// `esg parse [--stream] FILE...`: checks captured messages and prints one JSON object per
// message (operators check a capture with it; tests use it too).

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace esg::app {

// The JSON description of one message (the bytes of one datagram or one framed message).
nlohmann::json describe_message(std::string_view bytes, bool stream);

// Returns the exit status: 0 when every message parsed, 1 when one did not, 2 for bad use.
int run_parse(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace esg::app
