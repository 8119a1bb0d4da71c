#pragma once
// The JSON of one call event as a webhook receives it:
//   {"id": "<32 hex>", "event": "call.answered", "timestamp": "2026-12-07T11:45:56.123Z",
//    "instance": 1, "call": {...}}
// `id` is the same for every webhook the event goes to and for every retry, so a receiver
// dedupes by it; `call` is what the B2BUA says of the call (edge::B2bua's event record).

#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace esg::notify {

// "2026-12-07T11:45:56.123Z" for Unix milliseconds.
std::string iso_ms(int64_t unix_ms);
std::string event_body(std::string_view event, const std::string& id, int64_t unix_ms,
                       int64_t srvidx, const nlohmann::json& call);

}  // namespace esg::notify
