#pragma once
// JSON text for anything that may carry bytes from the wire.

#include <nlohmann/json.hpp>
#include <string>

namespace esg {

// `j` as JSON text. Strings from the network (a caller's user part or display name, a reason
// phrase, a header a PBX or provider sent) are bytes, not always UTF-8, and nlohmann's plain
// dump() throws on a byte that is not: one INVITE with a Latin-1 From user ended the process
// (the throw left the worker's handler). Such bytes become U+FFFD here; valid text is unchanged.
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace esg
