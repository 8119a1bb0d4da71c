// CallBridge: what the line writes in its chat and the callback a user asks for (issue 23).
#include <chrono>
#include <string>

#include "base/random.hpp"
#include "log/log.hpp"
#include "telegram/bridge.hpp"
#include "telegram/bridge_call.hpp"
#include "telegram/calls/engine.hpp"

namespace esg::telegram {

using namespace bridge_detail;

namespace {

constexpr size_t kMaxChatSentPerCall = 8;

json text_message(int64_t chat, const std::string& text) {
  return {{"@type", "sendMessage"},
          {"chat_id", chat},
          {"input_message_content",
           {{"@type", "inputMessageText"},
            {"text", {{"@type", "formattedText"}, {"text", text}, {"entities", json::array()}}},
            {"clear_draft", false}}}};
}

}  // namespace

// --- writing to a user -----------------------------------------------------------------

void CallBridge::say(int64_t user, const std::string& text, const std::string& kind,
                     const std::string& call_id) {
  if (stopped_ || !self_id_ || text.empty()) return;
  if (chat_pending_ >= kMaxChatPending) {
    ++chat_counters_.dropped_busy;
    chat_done(user, text, kind, call_id, "dropped: too many messages on their way");
    return;
  }
  ++chat_pending_;
  // The private chat with the user (TDLib knows the user: they wrote or called first).
  td_({{"@type", "createPrivateChat"}, {"user_id", user}, {"force", false}},
      [self = shared_from_this(), user, text, kind, call_id](Result<json, td::TdError> r) {
        const int64_t chat = r ? r->value("id", user) : user;
        self->send_text(user, chat, text, kind, call_id, 0);
      });
}

void CallBridge::send_text(int64_t user, int64_t chat, const std::string& text,
                           const std::string& kind, const std::string& call_id, int tries) {
  td_(text_message(chat, text), [self = shared_from_this(), user, chat, text, kind, call_id,
                                 tries](Result<json, td::TdError> r) {
    if (r) {
      --self->chat_pending_;
      ++self->chat_counters_.sent;
      self->chat_done(user, text, kind, call_id, "sent");
      return;
    }
    const auto& e = r.error();
    if (e.flood() && e.retry_after <= self->options_.flood_retry_up_to && tries < 3 &&
        !self->stopped_) {
      // A short flood wait: waited out, then sent again.
      std::weak_ptr<CallBridge> weak = self;
      self->timers_.start(std::chrono::seconds(std::max(1, e.retry_after)),
                          [weak, user, chat, text, kind, call_id, tries] {
                            if (auto self = weak.lock())
                              self->send_text(user, chat, text, kind, call_id, tries + 1);
                          });
      return;
    }
    --self->chat_pending_;
    if (e.flood()) {
      ++self->chat_counters_.dropped_flood;
      self->chat_done(user, text, kind, call_id,
                      "dropped: flood wait of " + std::to_string(e.retry_after) + " s");
    } else {
      ++self->chat_counters_.failed;
      self->chat_done(user, text, kind, call_id, "failed: " + e.message);
    }
  });
}

void CallBridge::chat_done(int64_t user, const std::string& text, const std::string& kind,
                           const std::string& call_id, const std::string& result) {
  const bool sent = result == "sent";
  auto& lg = log::get("telegram");
  if (sent) {
    lg.info("line {}: {} message to user {}{}: sent", config_.code, kind, user,
            call_id.empty() ? std::string() : " (call " + call_id + ")");
  } else {
    lg.warn("line {}: {} message to user {}{}: {}", config_.code, kind, user,
            call_id.empty() ? std::string() : " (call " + call_id + ")", result);
  }
  json entry = {{"at", iso_time(unix_ms())}, {"user_id", user},   {"kind", kind}, {"text", text},
                {"result", result},          {"call_id", call_id}};
  if (call_id.empty()) entry["call_id"] = nullptr;
  chat_recent_.push_back(std::move(entry));
  while (chat_recent_.size() > kChatRecent)
    chat_recent_.pop_front();
  publish_status();
}

json CallBridge::board_note(const Call& c) const {
  json t = c.media && c.media_started ? c.media->status() : json::object();
  if (!t.is_object()) t = json::object();
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
  say(c->user_id, config_.missed_message, "missed", c->call_id);
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
  std::weak_ptr<Call> weak = c;
  c->ring_timer =
      timers_.start(std::chrono::seconds(std::max(1, config_.ring_timeout)), [this, weak] {
        auto c = weak.lock();
        if (!c || c->ended) return;
        c->ring_timer = 0;
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
  if (c->chat_sent.size() < kMaxChatSentPerCall) c->chat_sent.push_back(text);
  say(c->user_id, text, "callback", c->call_id);
}

}  // namespace esg::telegram
