#pragma once
// callStateReady.servers (TDLib's callServer list) as esg's media leg takes them: STUN and TURN
// servers of callServerTypeWebrtc, and Telegram's UDP reflectors with the server ids both peers
// compute alike (TELEGRAM-CALLS.md §5.1). Pure: JSON in, values out, nothing thrown.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "media/webrtc/ice/ice.hpp"
#include "media/webrtc/ice/reflector.hpp"

namespace esg::telegram::calls {

struct CallServers {
  std::vector<media::ice::Server> ice;                  // STUN and TURN (UDP)
  std::vector<media::ice::ReflectorServer> reflectors;  // one entry per address family
  // What was left out, with the server's id and address for the log.
  struct Skipped {
    std::string id, address, why;
  };
  std::vector<Skipped> skipped;
  uint64_t skipped_tcp_reflectors = 0;
};

// The §5.1 numbering: the distinct callServer.id values of every reflector (UDP and TCP alike:
// the peer counts them too), ascending, id = rank + 1. More than 255 distinct ids cannot be
// numbered in a uint8; those past it are skipped.
CallServers parse_call_servers(const nlohmann::json& servers);

// callStateReady.custom_parameters (§8): a JSON object of tgcalls experiments, as a string that
// may be empty or not JSON at all. esg implements none of the experiments (it speaks the plain V2
// wire of 8.0.0/9.0.0), so every key set to true is one it does not know, and may change the
// wire (network_use_mtproto, network_standalone_reflectors...).
struct CustomParameters {
  nlohmann::json value = nlohmann::json::object();  // the object; the text itself if not one
  bool valid = true;                                // empty or a JSON object
  std::vector<std::string> unknown_true;            // the keys set to true, in order
};
CustomParameters parse_custom_parameters(const std::string& text);

}  // namespace esg::telegram::calls
