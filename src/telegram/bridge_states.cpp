// CallBridge: Telegram's call states and chat digits.
#include "telegram/bridge.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>

#include "base/random.hpp"
#include "base/time.hpp"
#include "dialog/dialog.hpp"
#include "dialog/retransmitter.hpp"
#include "edge/b2bua/text.hpp"
#include "log/log.hpp"
#include "sdp/session.hpp"
#include "sip/response.hpp"
#include "telegram/bridge_call.hpp"
#include "telegram/chat.hpp"
#include "telegram/media.hpp"

namespace esg::telegram {

using namespace bridge_detail;

// --- Telegram's call states ------------------------------------------------------------

void CallBridge::on_update(const json& u) {
  const std::string type = u.value("@type", "");
  if (type == "updateCall" && u.contains("call")) {
    const json& call = u["call"];
    const int64_t id = call.value("id", int64_t(0));
    auto it = by_tg_.find(id);
    if (it != by_tg_.end()) {
      auto c = it->second;
      on_call_lane(*c, call);
      on_call_state(c, call);
      return;
    }
    const std::string state = call.value(json::json_pointer("/state/@type"), "");
    if (state == "callStatePending" && !call.value("is_outgoing", false)) {
      if (!self_id_ || stopped_) {
        td_({{"@type", "discardCall"}, {"call_id", id}}, {});
        return;
      }
      incoming_call(call);
      if (auto in = by_tg_.find(id); in != by_tg_.end()) on_call_lane(*in->second, call);
    }
    return;
  }
  if (type == "updateNewCallSignalingData") {
    on_signaling(u);
    return;
  }
  if (type == "updateNewMessage" && u.contains("message")) on_message(u["message"]);
  if (type == "updateMessageSendSucceeded" || type == "updateMessageSendFailed") on_message_sent(u);
}

void CallBridge::on_call_state(const std::shared_ptr<Call>& c, const json& call) {
  const json& st = call.value("state", json::object());
  const std::string type = st.value("@type", "");
  if (c->ended) {
    if (type == "callStateDiscarded" || type == "callStateError") by_tg_.erase(c->tg_id);
    return;
  }
  if (type == "callStatePending") {
    if (c->to_telegram && st.value("is_received", false) && !c->ringing && c->server) {
      c->ringing = true;
      if (const sip::Message* req = layer_->request(c->server))
        layer_->respond(c->server, 180,
                        sip::build_response(*req, 180, {}, c->local_tag, c->tg_headers));
    }
    return;
  }
  if (type == "callStateReady") {
    c->tg_up = true;
    c->ready = st;
    if (c->callback && c->ring_timer) {
      timers_.stop(c->ring_timer);
      c->ring_timer = 0;
    }
    start_media(c);
    if (c->to_telegram && c->server && !c->ended) {
      // The user answered: 200 with our description, re-sent until the ACK.
      const sip::Message* req = layer_->request(c->server);
      if (!req) return;
      if (c->ring_timer) {
        timers_.stop(c->ring_timer);
        c->ring_timer = 0;
      }
      std::string ok =
          with_body(sip::build_response(*req, 200, {}, c->local_tag,
                                        "Contact: <sip:tg@127.0.0.1:" + std::to_string(port_) +
                                            ">\r\n" + c->tg_headers),
                    "application/sdp", sdp(*c, "sendrecv"));
      layer_->respond(c->server, 200, ok);
      c->server = 0;
      c->answered = true;
      c->dialog->confirm();
      std::weak_ptr<Call> weak = c;
      c->ok = std::make_unique<dialog::Retransmitter>(timers_, timer_config_, false, channel_.send,
                                                      [this, weak] {
                                                        if (auto c = weak.lock(); c && !c->ended)
                                                          end(c, 408, "no ACK from esg", true);
                                                      });
      c->ok->start(ok, false);
    }
    return;
  }
  if (type == "callStateDiscarded" || type == "callStateError") {
    by_tg_.erase(c->tg_id);
    if (c->callback && !c->tg_up) {
      // The user did not take the callback, or Telegram refused it: the PBX's employee is
      // told by the BYE's Reason, the user (for a refusal) in the chat.
      SipAnswer a = type == "callStateError"
                        ? answer_for_error(td::error_of(st.value("error", json::object())))
                        : answer_for_discard(st.value(json::json_pointer("/reason/@type"), ""));
      if (a.restricted) restricted_ms_ = unix_ms();
      if (type == "callStateError" && st.value(json::json_pointer("/error/code"), 0) != 4005000)
        callback_refused(c, a);
      end(c, uint16_t(a.status), a.reason, false);
      return;
    }
    if (c->to_telegram && !c->answered) {
      SipAnswer a = type == "callStateError"
                        ? answer_for_error(td::error_of(st.value("error", json::object())))
                        : answer_for_discard(st.value(json::json_pointer("/reason/@type"), ""));
      if (a.restricted) restricted_ms_ = unix_ms();
      fail_sip(c, a);
      return;
    }
    const std::string reason = st.value(json::json_pointer("/reason/@type"), "");
    if (!c->to_telegram && !c->answered && reason == "callDiscardReasonEmpty" && !c->accepted) {
      // Taken on another device of the account first.
      end(c, 200, "Call completed elsewhere", false);
      return;
    }
    // The caller gave up while the PBX rang: a missed call (not when it hung up at once).
    if (!c->answered && c->pbx_rang) missed_call(c, "the caller hung up while the PBX rang");
    end(c, 0, c->answered ? "Telegram: the user hung up" : "Telegram: the caller hung up", false);
  }
}

void CallBridge::on_message(const json& message) {
  if (message.value("is_outgoing", false)) return;
  const int64_t from = message.value(json::json_pointer("/sender_id/user_id"), int64_t(0));
  if (!from) return;
  const json& content = message.value("content", json::object());
  if (content.value("@type", "") != "messageText") return;
  const std::string text = trim(content.value(json::json_pointer("/text/text"), ""));
  if (take_menu_key(from, text)) return;  // menu_dtmf: the key of a call that waits for it
  if (is_digits_message(text)) {
    for (auto& [id, c] : by_call_id_) {
      if (c->user_id != from || c->ended || !c->answered || !c->dialog) continue;
      // In a call: the digits are key presses towards the PBX, each an INFO that esg's relay
      // turns into what the PBX connection takes (RFC 4733 events in its own clock and
      // timestamps, INFO, or in-band tones).
      const bool idle = c->keys.empty();
      c->keys += text;
      if (idle) send_key(c);
      return;
    }
  }
  // Replies go to private chats only (a private chat's id is its user's id): never to a group
  // the account is in.
  const int64_t chat = message.value("chat_id", from);
  const ChatCommand cmd = parse_chat(text, config_.menu, config_.callback_keyword);
  if (cmd.kind == ChatCommand::Kind::Callback) {
    if (chat == from) request_callback(from, cmd.number);
    return;
  }
  if (cmd.kind == ChatCommand::Kind::Other) {
    if (chat == from && !config_.menu.empty() &&
        menu_sent_.allow(from, steady_ms(), int64_t(config_.menu_interval) * 1000))
      say(from, render_menu(config_.menu_text, config_.menu), "menu", {});
    return;
  }
  // Kept for the window only: a chat full of users who send digits and never call must not
  // grow the table without bound.
  const int64_t now = steady_ms();
  if (dialled_.size() >= kDialledSweepAt) {
    std::erase_if(dialled_, [&](const auto& d) {
      return now - d.second.at_ms > int64_t(options_.digits_valid_s) * 1000;
    });
  }
  if (cmd.kind == ChatCommand::Kind::MenuKey) {
    const MenuEntry& e = config_.menu[cmd.entry];
    log::get("telegram")
        .info("line {}: user {} picked menu entry {} ({})", config_.code, from, e.key, e.label);
    dialled_[from] = {e.number, e.pbx, now};
    return;
  }
  dialled_[from] = {text, {}, now};
}

void CallBridge::send_key(const std::shared_ptr<Call>& c) {
  if (c->ended || c->keys.empty() || !c->dialog) return;
  const std::string body = "Signal=" + std::string(1, c->keys.front()) +
                           "\r\nDuration=" + std::to_string(kKeyMs) + "\r\n";
  c->keys.erase(0, 1);
  auto info = sip::parse_message(
      c->dialog->build_request("INFO", via(), 0, {}, body, "application/dtmf-relay"));
  if (info) layer_->send_request(std::move(*info), channel_, {});
  if (c->keys.empty()) return;
  // One key at a time, with a pause between them as a keypad would.
  std::weak_ptr<Call> weak = c;
  timers_.start(std::chrono::milliseconds(kKeyMs + 100), [this, weak] {
    if (auto c = weak.lock()) send_key(c);
  });
}

}  // namespace esg::telegram
