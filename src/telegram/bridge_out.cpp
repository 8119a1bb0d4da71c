// CallBridge: the PBX calls a Telegram user (found by id, username or phone).
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
#include "telegram/calls/engine.hpp"
#include "telegram/media.hpp"

namespace esg::telegram {

using namespace bridge_detail;

// --- from the PBX to Telegram ----------------------------------------------------------

void CallBridge::outgoing_invite(txn::TxnId server, const sip::Message& req) {
  auto c = std::make_shared<Call>();
  c->to_telegram = true;
  c->server = server;
  c->call_id = std::string(req.call_id());
  c->local_tag = "tg" + random::hex(8);
  c->dialled = req.request_uri().user_unescaped();
  auto refuse = [&](const SipAnswer& a) {
    std::string extra = reason_line(a.status, a.reason);
    if (a.retry_after > 0) extra += "Retry-After: " + std::to_string(a.retry_after) + "\r\n";
    layer_->respond(server, uint16_t(a.status),
                    sip::build_response(req, uint16_t(a.status), {}, c->local_tag, extra));
  };
  if (by_call_id_.count(c->call_id)) {
    refuse({482, "Loop Detected", 0, false});
    return;
  }
  if (!self_id_) {
    refuse({503, "Telegram: the line is not logged in", 0, false});
    return;
  }
  if (const int64_t now = unix_ms(); flood_until_ms_ > now) {
    refuse({503,
            "Telegram: flood wait, the line may call again in " +
                std::to_string((flood_until_ms_ - now + 999) / 1000) + " s",
            int((flood_until_ms_ - now + 999) / 1000), false});
    return;
  }
  auto target = parse_dialled(config_, c->dialled);
  if (!target) {
    refuse({484, target.error(), 0, false});
    return;
  }
  auto d =
      dialog::Dialog::as_uas(req, c->local_tag, "<sip:tg@127.0.0.1:" + std::to_string(port_) + ">");
  if (!d) {
    refuse({400, "no Contact", 0, false});
    return;
  }
  c->dialog = std::move(*d);
  c->media = make_media(c);
  if (!has_sdp(req) || !read_peer_sdp(*c, req.body(), nullptr)) {
    refuse({488, "the offer has no Opus (the relay transcodes for Telegram lines)", 0, false});
    return;
  }
  c->rtp = std::make_unique<RtpBridge>(io_, *c->media, c->opus_pt, c->event_pt);
  if (c->peer) c->rtp->set_peer(*c->peer);
  by_call_id_[c->call_id] = c;
  publish_status();
  // No answer within the line's ring timeout (a push may never wake the phone): 480.
  start_ring_timer(c, [this](const std::shared_ptr<Call>& c) {
    fail_sip(c, {480,
                 "Telegram: no answer within the ring timeout (" +
                     std::to_string(config_.ring_timeout) + " s)",
                 0, false});
  });
  find_user(c, *target, 0);
}

void CallBridge::start_ring_timer(const std::shared_ptr<Call>& c,
                                  std::function<void(const std::shared_ptr<Call>&)> expired) {
  std::weak_ptr<Call> weak = c;
  c->ring_timer = timers_.start(std::chrono::seconds(std::max(1, config_.ring_timeout)),
                                [weak, expired = std::move(expired)] {
                                  auto c = weak.lock();
                                  if (!c || c->ended) return;
                                  c->ring_timer = 0;
                                  expired(c);
                                });
}

// The user id of the dialled user, then the call.
void CallBridge::find_user(const std::shared_ptr<Call>& c, const DialTarget& t, int tries) {
  json req;
  switch (t.kind) {
    case DialTarget::Kind::UserId:
      req = {{"@type", "getUser"}, {"user_id", t.user_id}};
      break;
    case DialTarget::Kind::Username:
      req = {{"@type", "searchPublicChat"}, {"username", t.text}};
      break;
    case DialTarget::Kind::Phone:
      req = {{"@type", "searchUserByPhoneNumber"}, {"phone_number", t.text}, {"only_local", false}};
      break;
  }
  td_(req, [self = shared_from_this(), c, t, tries](Result<json, td::TdError> r) {
    if (c->ended) return;
    if (!r) {
      const auto& e = r.error();
      if (e.flood() && e.retry_after <= self->options_.flood_retry_up_to && tries < 3) {
        // A short flood wait: waited out here, then asked again.
        std::weak_ptr<CallBridge> weak = self;
        self->timers_.start(std::chrono::seconds(e.retry_after), [weak, c, t, tries] {
          if (auto self = weak.lock(); self && !c->ended) self->find_user(c, t, tries + 1);
        });
        return;
      }
      if (t.kind == DialTarget::Kind::Phone && e.code == 404) {
        // Not visible by phone: importing the number as a contact finds any Telegram user.
        self->td_({{"@type", "importContacts"},
                   {"contacts", json::array({{{"@type", "contact"},
                                              {"phone_number", t.text},
                                              {"first_name", t.text},
                                              {"last_name", ""},
                                              {"vcard", ""},
                                              {"user_id", 0}}})}},
                  [self, c](Result<json, td::TdError> r) {
                    if (c->ended) return;
                    if (!r) {
                      self->fail_sip(c, answer_for_error(r.error()));
                      return;
                    }
                    const json ids = r->value("user_ids", json::array());
                    const int64_t id = ids.empty() ? 0 : ids[0].get<int64_t>();
                    if (!id) {
                      self->fail_sip(c, {404, "Telegram: the number is not on Telegram", 0, false});
                      return;
                    }
                    // Imported just now: not a contact of the user's choosing, so it counts.
                    self->place_call(c, id, false, 0);
                  });
        return;
      }
      SipAnswer a = answer_for_error(e);
      if (t.kind == DialTarget::Kind::UserId && a.status == 404)
        a.reason = "Telegram: user id " + std::to_string(t.user_id) +
                   " unknown to the line (no prior contact)";
      if (a.retry_after > 0 && !a.restricted)
        self->flood_until_ms_ = unix_ms() + a.retry_after * 1000LL;
      self->fail_sip(c, a);
      return;
    }
    if (t.kind == DialTarget::Kind::Username) {
      const int64_t id = r->value(json::json_pointer("/type/user_id"), int64_t(0));
      if (!id) {
        self->fail_sip(c, {404, "Telegram: " + t.text + " is not a user", 0, false});
        return;
      }
      // Whether the user is a contact decides the daily limit: ask.
      self->td_({{"@type", "getUser"}, {"user_id", id}},
                [self, c, id](Result<json, td::TdError> u) {
                  if (c->ended) return;
                  if (u) c->tg_headers = tg_header_lines(user_of(*u));
                  self->place_call(c, id, u && u->value("is_contact", false), 0);
                });
      return;
    }
    c->tg_headers = tg_header_lines(user_of(*r));
    self->place_call(c, r->value("id", int64_t(0)), r->value("is_contact", false), 0);
  });
}

void CallBridge::place_call(const std::shared_ptr<Call>& c, int64_t user_id, bool contact,
                            int tries) {
  c->user_id = user_id;
  if (c->tg_headers.empty()) c->tg_headers = "X-TG-ID: " + std::to_string(user_id) + "\r\n";
  c->contact = contact;
  for (const auto& [id, other] : by_call_id_) {
    if (other != c && other->user_id == user_id && !other->ended) {
      fail_sip(c, {486, "Telegram: the user is already in a call with this line", 0, false});
      return;
    }
  }
  if (!contact) {
    if (const int wait = noncontact_wait_s(); wait > 0) {
      fail_sip(c, {503,
                   "Telegram: the line's " + std::to_string(config_.noncontact_calls_per_day) +
                       " calls a day to non-contacts are spent",
                   wait, false});
      return;
    }
  }
  lane(*c, "createCall to user " + std::to_string(user_id) + (contact ? " (a contact)" : ""));
  td_({{"@type", "createCall"},
       {"user_id", user_id},
       {"protocol", calls::call_protocol()},
       {"is_video", false}},
      [self = shared_from_this(), c, user_id, contact, tries](Result<json, td::TdError> r) {
        if (c->ended) {
          if (r) {
            self->td_({{"@type", "discardCall"}, {"call_id", r->value("id", int64_t(0))}}, {});
          }
          return;
        }
        if (!r) {
          const auto& e = r.error();
          if (e.flood() && e.retry_after <= self->options_.flood_retry_up_to && tries < 3) {
            std::weak_ptr<CallBridge> weak = self;
            self->timers_.start(std::chrono::seconds(e.retry_after),
                                [weak, c, user_id, contact, tries] {
                                  if (auto self = weak.lock(); self && !c->ended)
                                    self->place_call(c, user_id, contact, tries + 1);
                                });
            return;
          }
          const SipAnswer a = answer_for_error(e);
          if (a.retry_after > 0 && !a.restricted)
            self->flood_until_ms_ = unix_ms() + a.retry_after * 1000LL;
          if (a.restricted) self->restricted_ms_ = unix_ms();
          self->fail_sip(c, a);
          return;
        }
        c->tg_id = r->value("id", int64_t(0));
        self->by_tg_[c->tg_id] = c;
        self->lane(*c, "createCall answered: Telegram call " + std::to_string(c->tg_id));
        log::call("telegram", spdlog::level::info, c->call_id,
                  "line {}: '{}' is user {}{}: Telegram call {}", self->config_.code, c->dialled,
                  user_id, contact ? " (a contact)" : "", c->tg_id);
        if (!contact) self->count_noncontact();
        self->publish_status();
      });
}

}  // namespace esg::telegram
