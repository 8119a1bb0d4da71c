#pragma once
// The B2BUA's state of one call: its two legs (and a transfer's third), routing progress, the
// INVITE towards the B side, re-INVITE and REFER in progress, the media relay. Private to
// b2bua.cpp; only the worker that owns the call touches it.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dialog/dialog.hpp"
#include "dialog/retransmitter.hpp"
#include "dialog/session_timer.hpp"
#include "edge/b2bua/b2bua.hpp"
#include "edge/b2bua/target.hpp"
#include "edge/b2bua/text.hpp"
#include "sip/auth/digest.hpp"

namespace esg::edge {

using accounts::Account;
using accounts::Destination;
using accounts::PbxConnection;

struct B2bua::Leg {
  std::string call_id;
  std::string local_tag;
  std::optional<dialog::Dialog> dialog;
  txn::Channel channel;
  std::string transport = "udp";
  std::string via_host;       // host:port of our Via
  std::string contact;        // our Contact, a name-addr
  std::string sdp, sdp_type;  // the last session description this leg's peer sent
  // The last session description esg sent this leg's peer: a session refresh by re-INVITE
  // repeats it, o= version and all (RFC 4028 §7.4, RFC 3264 §8: nothing changed).
  std::string sent_sdp, sent_sdp_type;
  std::string code;        // the account or connection on this leg
  LegPolicy policy;        // from its account or connection
  std::string media_host;  // our address as this leg's peer sees it (for the relay's SDP)
  // RFC 4028 on this leg (sessions.*): its timer, interval, whether esg is the refresher, and
  // whether the peer takes UPDATE (esg refreshes with UPDATE, else with a re-INVITE).
  std::unique_ptr<dialog::SessionTimer> session;
  uint32_t session_seconds = 0;
  bool esg_refreshes = false;
  bool peer_takes_update = true;
  // esg's refresh re-INVITE on this leg: its CSeq while in progress (no other INVITE may start
  // on the dialog, RFC 3261 §14.1), and the ACK of its 2xx, sent again on retransmissions.
  uint32_t refresh_cseq = 0;
  uint32_t refresh_acked = 0;
  std::string refresh_ack;

  std::string via() const {
    std::string t = transport;
    for (char& c : t)
      c = char(std::toupper(static_cast<unsigned char>(c)));
    return "SIP/2.0/" + t + " " + via_host + ";branch=" + b2bua_text::new_branch() + ";rport";
  }
};

struct B2bua::Call {
  enum class State : uint8_t { Routing, Calling, Early, Answered, Confirmed, Ended };

  std::string id;  // the A leg's Call-ID
  std::shared_ptr<const EdgeConfig> config;
  Leg a, b;
  bool out = false;  // from a PBX towards a provider
  std::shared_ptr<const Account> source_account;
  std::shared_ptr<const PbxConnection> source_pbx;
  std::string target_code, target_kind;
  std::vector<std::string> trunks;  // keys held, released at the end
  std::string attempt_trunk;        // the current attempt's target, released on failover
  State state = State::Routing;
  txn::TxnId a_invite = 0;
  uint32_t a_cseq = 0;

  NormFields received, normalized;
  NormFields routed;  // what routing saw: each attempt normalizes from here
  std::vector<std::string> decisions;
  std::vector<const RouteRule*> candidates;
  bool from_telegram = false;           // A is a Telegram line's SIP side
  std::unique_ptr<RouteRule> own_rule;  // the route of a call from a Telegram line
  size_t next = 0;
  std::vector<std::string> skipped;
  uint16_t last_failure = 0;
  std::string last_reason;
  std::string last_headers;  // the last failure's Retry-After, Reason, Warning lines

  int attempt = 0;
  txn::TxnId b_invite = 0;
  std::string b_invite_bytes;
  uint32_t b_cseq = 1;
  int challenges = 0;
  sip::auth::DigestClient digest;
  std::shared_ptr<const Account> target_account;
  Destination b_dest;
  bool b_provisional = false;
  bool b_final = false;  // the current attempt's INVITE got its final answer
  txn::Timers::Id ring_timer = 0;
  bool cancel_pending = false;
  bool cancelled = false;
  std::string cancel_reason;  // the caller's CANCEL's Reason, passed on

  // Earlier targets' INVITEs, to take down a 2xx that comes after we moved on.
  struct Earlier {
    std::string invite;
    txn::Channel channel;
    std::string contact, via_host, transport;
  };
  std::vector<Earlier> earlier;
  std::unique_ptr<dialog::Retransmitter> ok_to_a;  // our 2xx to A until its ACK
  std::string b_ack;                               // re-sent on 2xx retransmissions
  // A re-INVITE in progress: relayed from leg `from_a ? a : b` with CSeq from_cseq to the
  // other leg's to_cseq (0: answered locally).
  struct Reinvite {
    bool from_a = true;
    uint32_t from_cseq = 0, to_cseq = 0;
    bool answered = false;
    std::unique_ptr<dialog::Retransmitter> ok;
  };
  std::optional<Reinvite> reinvite;
  // A REFER being carried out: a new leg towards the Refer-To target that replaces the
  // referring leg once it answers.
  struct Transfer {
    bool from_a = true;  // the referring leg
    Leg leg;
    std::vector<const RouteRule*> candidates;
    size_t next = 0;
    int attempt = 0;
    std::string invite_bytes;
    std::string trunk, code;
    NormFields routed;
    uint16_t last_failure = 0;
  };
  std::unique_ptr<Transfer> transfer;
  // The relay carrying this call's media (none: descriptions cross unchanged).
  std::unique_ptr<media::Session> media;
  txn::Timers::Id media_timer = 0;
  int64_t media_since = 0;  // steady ms: answered, or last seen on hold

  int64_t started = b2bua_text::now_ms(), answered = 0, ended = 0;
  uint16_t final_status = 0;
  std::string hangup_by, end_reason;
  bool ringing_told = false;  // call.ringing went out (once per call, whatever the target)
  // The Telegram user of a Telegram line's call (X-TG-* from the line's SIP side), for the
  // call events: {"id", "username", "phone", "name"}.
  nlohmann::json tg_user;
  int64_t cdr_started = 0;
};

}  // namespace esg::edge
