#pragma once
// What the parts of CallBridge share (bridge.cpp, bridge_in.cpp, bridge_out.cpp,
// bridge_states.cpp): a call's state and a few text helpers. Private to those files.

#include <boost/asio/ip/udp.hpp>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/base64.hpp"
#include "base/time.hpp"
#include "dialog/dialog.hpp"
#include "dialog/retransmitter.hpp"
#include "edge/b2bua/text.hpp"
#include "telegram/bridge.hpp"
#include "telegram/media.hpp"
#include "telegram/tones.hpp"

namespace esg::telegram {

// The names every part uses, brought in by `using namespace bridge_detail`.
namespace bridge_detail {

using timeutil::iso_time;
using timeutil::steady_ms;
using timeutil::unix_ms;

namespace asio = boost::asio;
using asio::ip::udp;
using edge::b2bua_text::escaped_user;
using edge::b2bua_text::has_sdp;
using edge::b2bua_text::new_branch;
using edge::b2bua_text::reason_line;
using edge::b2bua_text::with_body;
using nlohmann::json;

constexpr size_t kMaxEarlySignaling = 64;  // blobs kept before the engine starts
inline std::string to_base64(std::string_view b) {
  return base64::encode(b);
}
inline std::string from_base64(std::string_view t) {
  return base64::decode(t);
}

constexpr int64_t kDayMs = 24 * 3600 * 1000;
constexpr uint8_t kOpusPt = 111, kEventPt = 101;
constexpr int kKeyMs = 160;               // a chat digit as a key press this long
constexpr size_t kDialledSweepAt = 1024;  // digits of this many users: drop the stale ones

// A header value on one line (names come from Telegram users).
inline std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s)
    out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

inline TgUser user_of(const json& u) {
  TgUser t;
  t.id = u.value("id", int64_t(0));
  t.first_name = u.value("first_name", "");
  t.last_name = u.value("last_name", "");
  t.phone = u.value("phone_number", "");
  if (u.contains("usernames") && u["usernames"].is_object()) {
    const json& names = u["usernames"];
    if (names.contains("active_usernames") && !names["active_usernames"].empty())
      t.username = names["active_usernames"][0].get<std::string>();
  }
  return t;
}

// Who the Telegram user is, as X-TG-* header lines: on the INVITE to the PBX of a call from
// Telegram, and on the answers (180, 200) to a call the PBX placed to a Telegram user. The CRM
// events read them (issue 23).
inline std::string tg_header_lines(const TgUser& u) {
  std::string m = "X-TG-ID: " + std::to_string(u.id) + "\r\n";
  if (!u.username.empty()) m += "X-TG-Username: " + one_line(u.username) + "\r\n";
  if (!u.phone.empty())
    m += "X-TG-Phone: " + std::string(u.phone[0] == '+' ? "" : "+") + one_line(u.phone) + "\r\n";
  std::string full = u.first_name + (u.last_name.empty() ? "" : " " + u.last_name);
  if (!full.empty()) m += "X-TG-Name: " + one_line(full) + "\r\n";
  return m;
}

inline bool is_digits_message(const std::string& s) {
  return is_keypad_text(s);
}

constexpr int kMaxChatPending = 256;  // chat messages on their way at once
constexpr size_t kChatRecent = 50;    // the line's recent chat messages shown in monitoring

inline std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
    ++i;
  return s.substr(i);
}

}  // namespace bridge_detail

struct CallBridge::Call {
  bool to_telegram = false;  // the PBX calls a Telegram user
  int64_t tg_id = 0, user_id = 0;
  bool contact = false;
  std::string call_id, local_tag;
  std::optional<dialog::Dialog> dialog;
  txn::TxnId server = 0;  // the PBX's INVITE (to_telegram), until answered
  txn::TxnId client = 0;  // our INVITE (from Telegram), until its final response
  std::string invite;     // our INVITE as sent
  std::string ack;        // our ACK to its 2xx (re-sent on retransmissions)
  bool answered = false;  // the SIP side is up (2xx sent or received)
  bool ringing = false;
  bool accepted = false;  // acceptCall sent (from Telegram)
  bool tg_up = false;     // Telegram's callStateReady
  bool ended = false;
  std::unique_ptr<TelegramMedia> media;  // before rtp: rtp refers to it
  std::unique_ptr<RtpBridge> rtp;
  // Autoanswer (issue 23): the ringback or busy tone the gateway plays the user (before the
  // media it feeds, after it in destruction); when the gateway and the PBX answered (unix ms).
  std::unique_ptr<TonePlayer> tone;
  bool autoanswered = false;
  bool refused = false;  // the PBX refused or did not answer: the busy tone, then the end
  int64_t gateway_answered_ms = 0, pbx_answered_ms = 0;
  txn::Timers::Id answer_timer = 0, busy_timer = 0;
  // menu_dtmf: the call is up and waits for the user's menu key before the PBX leg starts.
  bool awaiting_key = false;
  TgUser caller;
  txn::Timers::Id key_timer = 0;
  bool media_started = false;
  // Signaling blobs that came before the media engine started (the peer's side may be ready
  // first: the fact sheet §9 item 10).
  std::vector<std::string> early_signaling;
  bool disconnected = false;  // ends for a network reason: discardCall says is_disconnected
  std::optional<nlohmann::json> ready;  // callStateReady, kept until the media starts
  std::optional<boost::asio::ip::udp::endpoint> peer;
  uint8_t opus_pt = bridge_detail::kOpusPt, event_pt = bridge_detail::kEventPt;
  std::unique_ptr<dialog::Retransmitter> ok;  // our 2xx until its ACK
  txn::Timers::Id ring_timer = 0;
  std::string dialled;     // what the PBX dialled
  std::string tg_headers;  // X-TG-* lines of the user called (to_telegram), on 180 and 200
  std::string keys;        // chat digits still to send to the PBX
  bool callback = false;   // a callback the user asked for: the PBX first, then Telegram
  bool pbx_rang = false;   // the PBX's side rang (1xx) before the call ended unanswered
  std::string pbx;         // a menu entry's PBX connection (X-ESG-PBX), empty: the line's
  std::vector<std::string> chat_sent;  // what esg wrote to the user about this call
  std::string lane_state;  // TDLib's last call state on the diagram's lane (repeats skipped)
  int lane_events = 0;     // on the lane so far (bounded: kMaxLaneEvents)
};

}  // namespace esg::telegram
