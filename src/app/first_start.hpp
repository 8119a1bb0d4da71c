#pragma once
// What a newcomer needs to hear when esg starts (and from `esg check`): where the admin web page
// is, and whether the sample config's well-known credentials are still in use.

#include <cstdint>
#include <string>
#include <vector>

#include "app/config.hpp"

namespace esg::app {

// The sample config's token and admin password (config/esg.json, README): known to everyone
// who read the README, so a running esg that still takes them is open to anyone who can reach
// its HTTP port.
inline constexpr const char* kSampleSecret = "change-me";

// The admin page's address for a browser, from `http.listen` and the port actually bound
// (`port` 0: the configured one). A wildcard listen address becomes 127.0.0.1, which reaches it
// from the same machine. Empty when no page is served (`http.ui_dir` empty).
std::string web_page_url(const Config& config, uint16_t port = 0);

// One warning per sample credential still in use: the token, the admin password (checked by
// verifying the sample password against `http.admin.password_hash`), each saying how to change
// it. Empty when neither is.
std::vector<std::string> sample_credential_warnings(const Config& config);

}  // namespace esg::app
