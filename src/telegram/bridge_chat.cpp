// CallBridge: what the line writes in its chat and the callback a user asks for (issue 23).
#include <chrono>
#include <string>

#include "base/random.hpp"
#include "edge/context.hpp"
#include "log/log.hpp"
#include "telegram/bridge.hpp"
#include "telegram/bridge_call.hpp"
#include "telegram/calls/engine.hpp"

namespace esg::telegram {

using namespace bridge_detail;

namespace {

constexpr size_t kMaxChatSentPerCall = 8;
constexpr int kChatConfirmS = 60;    // a message TDLib queued: its result within this long
constexpr size_t kRecentText = 256;  // of each recent message's text, in monitoring

json text_message(int64_t chat, const std::string& text) {
  return {{"@type", "sendMessage"},
          {"chat_id", chat},
          {"input_message_content",
           {{"@type", "inputMessageText"},
            {"text", {{"@type", "formattedText"}, {"text", text}, {"entities", json::array()}}},
            {"clear_draft", false}}}};
}

// A message's text as monitoring keeps it: at most kRecentText bytes, cut before a UTF-8
// character, not inside one.
std::string shown_text(const std::string& text) {
  if (text.size() <= kRecentText) return text;
  size_t n = kRecentText;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
    --n;
  return text.substr(0, n) + "\u2026";
}

}  // namespace

// --- writing to a user -----------------------------------------------------------------

void CallBridge::say(int64_t user, const std::string& text, const std::string& kind,
                     const std::string& call_id) {
  if (stopped_ || !self_id_ || text.empty()) return;
  ChatText m{user, user, text, kind, call_id, 0};
  if (chat_pending_ >= kMaxChatPending) {
    ++chat_counters_.dropped_busy;
    chat_done(m, "dropped: too many messages on their way");
    return;
  }
  ++chat_pending_;
  // The private chat with the user (TDLib knows the user: they wrote or called first).
  td_({{"@type", "createPrivateChat"}, {"user_id", user}, {"force", false}},
      [self = shared_from_this(), m](Result<json, td::TdError> r) mutable {
        if (r) m.chat = r->value("id", m.user);
        self->send_text(std::move(m));
      });
}

void CallBridge::send_text(ChatText m) {
  const json request = text_message(m.chat, m.text);
  td_(request, [self = shared_from_this(), m](Result<json, td::TdError> r) mutable {
    if (r && r->contains("sending_state") && (*r)["sending_state"].is_object() &&
        (*r)["sending_state"].value("@type", "") == "messageSendingStatePending") {
      // TDLib has queued it: the result comes as an update (a flood wait too).
      const int64_t id = r->value("id", int64_t(0));
      self->chat_queued_[id] = m;
      std::weak_ptr<CallBridge> weak = self;
      self->timers_.start(std::chrono::seconds(kChatConfirmS), [weak, id] {
        auto self = weak.lock();
        if (!self) return;
        auto it = self->chat_queued_.find(id);
        if (it == self->chat_queued_.end()) return;
        ChatText late = std::move(it->second);
        self->chat_queued_.erase(it);
        self->chat_result(std::move(late),
                          unexpected(td::TdError{504, "no confirmation from TDLib", 0}));
      });
      return;
    }
    self->chat_result(std::move(m), r);
  });
}

void CallBridge::on_message_sent(const json& u) {
  const int64_t id = u.value("old_message_id", int64_t(0));
  auto it = chat_queued_.find(id);
  if (it == chat_queued_.end()) return;
  ChatText m = std::move(it->second);
  chat_queued_.erase(it);
  if (u.value("@type", "") == "updateMessageSendSucceeded") {
    chat_result(std::move(m), json(u.value("message", json::object())));
    return;
  }
  // TDLib 1.8.67: `error` (an error object); older ones: error_code and error_message.
  td::TdError e;
  if (u.contains("error") && u["error"].is_object()) {
    e = td::error_of(u["error"]);
  } else {
    e = td::error_of(
        {{"code", u.value("error_code", 0)}, {"message", u.value("error_message", std::string())}});
  }
  chat_result(std::move(m), unexpected(e));
}

void CallBridge::chat_result(ChatText m, const Result<json, td::TdError>& r) {
  if (r) {
    --chat_pending_;
    ++chat_counters_.sent;
    chat_done(m, "sent");
    return;
  }
  const auto& e = r.error();
  if (e.flood() && e.retry_after <= options_.flood_retry_up_to && m.tries < 3 && !stopped_) {
    // A short flood wait: waited out, then sent again.
    std::weak_ptr<CallBridge> weak = shared_from_this();
    ++m.tries;
    timers_.start(std::chrono::seconds(std::max(1, e.retry_after)), [weak, m] {
      if (auto self = weak.lock()) self->send_text(m);
    });
    return;
  }
  --chat_pending_;
  if (e.flood()) {
    ++chat_counters_.dropped_flood;
    chat_done(m, "dropped: flood wait of " + std::to_string(e.retry_after) + " s");
  } else {
    ++chat_counters_.failed;
    chat_done(m, "failed: " + e.message);
  }
}

void CallBridge::chat_done(const ChatText& m, const std::string& result) {
  const bool sent = result == "sent";
  const std::string call = m.call_id.empty() ? std::string() : " (call " + m.call_id + ")";
  auto& lg = log::get("telegram");
  if (sent) {
    lg.info("line {}: {} message to user {}{}: sent", config_.code, m.kind, m.user, call);
  } else {
    lg.warn("line {}: {} message to user {}{}: {}", config_.code, m.kind, m.user, call, result);
  }
  json entry = {{"at", iso_time(unix_ms())},  {"user_id", m.user}, {"kind", m.kind},
                {"text", shown_text(m.text)}, {"result", result},  {"call_id", m.call_id}};
  if (m.call_id.empty()) entry["call_id"] = nullptr;
  chat_recent_.push_back(std::move(entry));
  while (chat_recent_.size() > kChatRecent)
    chat_recent_.pop_front();
  publish_status();
}

json CallBridge::board_note(const Call& c) const {
  json t = media_status(c);  // the engine's, and the autoanswer times
  if (!c.chat_sent.empty()) t["chat_sent"] = c.chat_sent;
  return t;
}

// --- the missed-call message -----------------------------------------------------------

// A call from a Telegram user that the PBX did not answer: rejected, busy, no answer (the
// PBX's final answer or esg's timeout), or the caller gave up while the PBX rang. Never for an
// answered call, a callback or a call the PBX makes; at most once per user per interval.
void CallBridge::missed_call(const std::shared_ptr<Call>& c, const std::string& why) {
  if (c->callback || c->to_telegram || c->answered || !c->user_id) return;
  if (config_.missed_message.empty()) return;
  if (!missed_sent_.allow(c->user_id, steady_ms(), int64_t(config_.missed_interval) * 1000)) {
    log::call("telegram", spdlog::level::debug, c->call_id,
              "line {}: missed call of user {} ({}): a missed-call message went within {} s",
              config_.code, c->user_id, why, config_.missed_interval);
    return;
  }
  log::call("telegram", spdlog::level::info, c->call_id,
            "line {}: missed call of user {} ({}): the missed-call message", config_.code,
            c->user_id, why);
  note_chat(*c, config_.missed_message);
  say(c->user_id, config_.missed_message, "missed", c->call_id);
}

// On the board while the SIP side's call lives (the B2BUA's final CDR takes it from there),
// and as an amend of the CDR: the PBX's reject has usually ended the record before the line
// hears of it. The amend adds a text only once, so both ways never show it twice.
void CallBridge::note_chat(Call& c, const std::string& text) {
  if (c.chat_sent.size() >= kMaxChatSentPerCall) return;
  c.chat_sent.push_back(text);
  if (options_.board) options_.board->annotate(c.call_id, "telegram", board_note(c));
  if (options_.cdrs) {
    options_.cdrs->amend(c.call_id, [text](json& data) {
      json& t = data["telegram"];
      if (!t.is_object()) t = json::object();
      json& sent = t["chat_sent"];
      if (!sent.is_array()) sent = json::array();
      for (const auto& s : sent)
        if (s == text) return;
      sent.push_back(text);
    });
  }
}

// --- callback on request ---------------------------------------------------------------

void CallBridge::request_callback(int64_t user, const std::string& number) {
  if (stopped_ || !self_id_) return;
  auto refuse = [&](const std::string& why, const std::string& text) {
    log::get("telegram").info("line {}: callback for user {} refused: {}", config_.code, user, why);
    say(user, text, "callback", {});
  };
  for (const auto& [id, c] : by_call_id_) {
    if (c->user_id == user && !c->ended) {
      refuse("already in a call", "You are already in a call with us.");
      return;
    }
  }
  if (const int64_t now = unix_ms(); flood_until_ms_ > now) {
    const int64_t s = (flood_until_ms_ - now + 999) / 1000;
    refuse("flood wait " + std::to_string(s) + " s",
           "We cannot call you back right now: Telegram limits our calls for " + std::to_string(s) +
               " s. Please try again later, or call us.");
    return;
  }
  // One request per user a minute: a user repeating the keyword must not ring the PBX on and on.
  if (!callback_asked_.allow(user, steady_ms(), int64_t(options_.callback_gap_s) * 1000)) {
    refuse("asked again within " + std::to_string(options_.callback_gap_s) + " s",
           "Your callback request is being handled; please wait a moment.");
    return;
  }
  td_({{"@type", "getUser"}, {"user_id", user}},
      [self = shared_from_this(), user, number](Result<json, td::TdError> r) {
        TgUser u;
        u.id = user;
        if (r) u = user_of(*r);
        self->start_callback(user, r && r->value("is_contact", false), u, number);
      });
}

void CallBridge::start_callback(int64_t user, bool contact, const TgUser& u,
                                const std::string& number) {
  if (stopped_ || !self_id_) return;
  if (!contact) {
    if (const int wait = noncontact_wait_s(); wait > 0) {
      log::get("telegram")
          .info("line {}: callback for user {} refused: the daily limit", config_.code, user);
      say(user,
          "We cannot call you back today: our daily limit of calls is reached. Please call us.",
          "callback", {});
      return;
    }
  }
  auto c = std::make_shared<Call>();
  c->callback = true;
  c->user_id = user;
  c->contact = contact;
  c->dialled = number;
  c->call_id = random::hex(16) + "@tg-" + config_.code;
  c->local_tag = "tg" + random::hex(8);
  by_call_id_[c->call_id] = c;
  publish_status();
  send_invite(c, u);
}

// The PBX's employee took the callback: now the user is called on Telegram.
void CallBridge::callback_answered(const std::shared_ptr<Call>& c) {
  lane(*c, "the PBX answered the callback: createCall");
  start_ring_timer(c, [this](const std::shared_ptr<Call>& c) {
    end(c, 480,
        "Telegram: the user did not answer the callback within the ring timeout (" +
            std::to_string(config_.ring_timeout) + " s)",
        true);
  });
  place_call(c, c->user_id, c->contact, 0);
}

// Telegram refused the call to the user (privacy, block, a limit, a flood wait): the user
// hears why in the chat. Kept on the call's record too.
void CallBridge::callback_refused(const std::shared_ptr<Call>& c, const SipAnswer& a) {
  std::string text;
  if (a.status == 403) {
    text =
        "We could not call you back: your Telegram privacy settings do not allow calls from "
        "us. Please allow calls from this account, or call us.";
  } else if (a.retry_after > 0 || a.restricted || a.status == 503) {
    text = "We cannot call you back right now: Telegram limits our calls. Please call us.";
  } else if (a.status == 480 && a.reason.find("VERSION") != std::string::npos) {
    text = "We could not call you back: your Telegram app is too old for calls with us.";
  } else {
    text = "We could not call you back (" + a.reason + "). Please call us.";
  }
  note_chat(*c, text);
  say(c->user_id, text, "callback", c->call_id);
}

}  // namespace esg::telegram
