#pragma once
// The signature of a webhook delivery: HMAC-SHA256 of the exact body under the webhook's
// secret, as the header value "sha256=<64 lowercase hex digits>" (X-Esg-Signature).

#include <string>
#include <string_view>

namespace esg::notify {

inline constexpr const char* kSignatureHeader = "X-Esg-Signature";

std::string hmac_sha256_hex(std::string_view key, std::string_view data);
inline std::string signature(std::string_view secret, std::string_view body) {
  return "sha256=" + hmac_sha256_hex(secret, body);
}

}  // namespace esg::notify
