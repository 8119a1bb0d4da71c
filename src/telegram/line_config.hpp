#pragma once
// A Telegram line as provisioned (issue 8, `/rest/v1/telegram/lines`): a Telegram account
// connected to esg and used like a trunk. Validation names the field, as for providers.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "accounts/account.hpp"
#include "base/result.hpp"
#include "telegram/chat.hpp"

namespace esg::telegram {

struct LineConfig {
  int64_t id = 0;
  std::string code;
  int64_t api_id = 0;    // the Telegram application's credentials (my.telegram.org)
  std::string api_hash;  // write-only, like passwords
  std::string phone;     // the account's number, "+" and digits
  bool enabled = true;
  std::string pbx;     // the PBX connection (code) that gets this line's incoming calls
  std::string number;  // the number to call on that PBX (optional)
  std::string callerid = "userid";  // userid | username | phone
  std::string callerid_prefix = "*";
  std::string callerid_suffix;
  std::vector<std::string> callername = {"name"};  // of name, username, phone, in order
  bool callername_ascii = false;
  int ring_timeout = 15;  // seconds
  int noncontact_calls_per_day = 30;
  int trunks = 0;  // concurrent calls; 0: no limit
  // Several instances: the srvidx values of the instances that may run the line (its leases,
  // failover and failback as for a provider account); empty: any.
  std::vector<int> serveridxs;
  bool accept_elsewhere = false;
  // Autoanswer (issue 23): the Telegram call is accepted at once, before the PBX answers, so
  // the user hears what the PBX plays early (183 with SDP), else a ringback tone (`ringback`:
  // a WAV file instead of 425 Hz 1 s on / 4 s off); a PBX that refuses or has not answered
  // within `answer_timeout` seconds gives a busy tone (`busy`: a WAV file) for 3 s.
  bool autoanswer = false;
  std::string ringback, busy;
  int answer_timeout = 60;
  // Chat features (issue 23). The menu of lines: a key sent before a call picks the entry.
  std::vector<MenuEntry> menu;
  std::string menu_text = "{menu}; send a digit, then call";
  int menu_interval = 3600;      // seconds: the menu reply at most once per user in this time
  std::string callback_keyword;  // empty: off; "callback" or "callback 205" asks a call back
  std::string missed_message;    // empty: off; written after a call the PBX did not answer
  int missed_interval = 3600;    // seconds: at most one missed-call message per user
  // An autoanswered call takes the menu key first (Telegram calls have no keypad: the user
  // sends it as a chat message while the call is up and hears `menu_prompt`, a WAV file, or
  // short beeps), then the PBX leg starts to that entry; no key within `menu_timeout` seconds:
  // the line's own number.
  bool menu_dtmf = false;
  std::string menu_prompt;
  int menu_timeout = 20;
};

Result<LineConfig, accounts::FieldError> line_from_json(const nlohmann::json& j);
// What the store keeps (with api_hash); public_view() drops the secret.
nlohmann::json to_stored_json(const LineConfig& l);
nlohmann::json public_view(const nlohmann::json& stored);

}  // namespace esg::telegram
