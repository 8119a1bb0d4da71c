#pragma once
// A PBX connection (the inside): where calls from providers go and where outgoing calls come
// from. Three ways to connect (`mode`):
//   register-in   the PBX registers to esg (esg is its registrar: `username`/`pwd` are the PBX's);
//   register-out  esg registers to the PBX at `domain` like to a provider (`username`/`pwd` ours);
//   ip            point-to-point: `address`, `port`, `transport` of the PBX.
// Field names as in CONTRACTS.md "Field shapes and values".

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "base/result.hpp"

namespace esg::accounts {

struct PbxConnection {
  int64_t id = 0;
  std::string code;
  std::string mode = "ip";  // register-in | register-out | ip
  std::string address;      // ip: the PBX
  uint16_t port = 5060;
  std::string transport = "udp";
  std::string username;
  std::string pwd;     // write-only
  std::string domain;  // register-out: the PBX registrar
  int expires = 3600;  // register-out
  std::string number;  // what to call on the PBX for incoming calls (optional)
  std::vector<std::pair<std::string, std::string>> headers;  // added towards the PBX
  std::vector<std::string> codecs{"PCMA", "PCMU"};
  std::string dtmf = "rfc2833";
  std::string srtp = "off";
  int trunks = 0;  // 0 = no limit
  std::vector<std::string> passheaders;
  bool media = false;
  bool reinvite = true;
  bool enabled = true;

  // The provider-account form of a register-out connection, for the registration client: id
  // -id, code "pbx:<code>".
  Account as_account() const;
};

Result<PbxConnection, FieldError> pbx_from_json(const nlohmann::json& j);
nlohmann::json to_json(const PbxConnection& p);         // without pwd
nlohmann::json to_stored_json(const PbxConnection& p);  // with pwd

}  // namespace esg::accounts
