// CallBridge: a Telegram user calls the line, an INVITE goes to the PBX.
#include "telegram/bridge.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
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
#include "telegram/tones.hpp"

namespace esg::telegram {

using namespace bridge_detail;

// --- from Telegram to the PBX ----------------------------------------------------------

void CallBridge::incoming_call(const json& call) {
  auto c = std::make_shared<Call>();
  c->tg_id = call.value("id", int64_t(0));
  c->user_id = call.value("user_id", int64_t(0));
  c->call_id = random::hex(16) + "@tg-" + config_.code;
  c->local_tag = "tg" + random::hex(8);
  by_tg_[c->tg_id] = c;
  by_call_id_[c->call_id] = c;
  publish_status();
  // Who is calling: the name and username for the caller ID and the CRM headers.
  td_({{"@type", "getUser"}, {"user_id", c->user_id}},
      [self = shared_from_this(), c](Result<json, td::TdError> r) {
        if (c->ended) return;
        TgUser u;
        u.id = c->user_id;
        if (r) u = user_of(*r);
        const auto& l = self->config_;
        if (l.autoanswer && l.menu_dtmf && !l.menu.empty()) {
          self->ask_menu_key(c, u);
          return;
        }
        self->send_invite(c, u);
      });
}

void CallBridge::send_invite(const std::shared_ptr<Call>& c, const TgUser& u) {
  if (!c->media) {  // (a call that took its menu key first has them)
    c->media = make_media(c);
    c->rtp = std::make_unique<RtpBridge>(io_, *c->media, kOpusPt, kEventPt);
  }
  // The number on the PBX: digits the user sent just before calling, else the line's number,
  // else the line's own phone number (as a DID).
  // A menu key picks its entry's PBX connection and number (its number empty: the line's).
  // A callback calls the number the user gave, or the line's.
  std::string called = config_.number;
  if (c->callback) {
    if (!c->dialled.empty()) called = c->dialled;
    if (called.empty()) called = config_.phone[0] == '+' ? config_.phone.substr(1) : config_.phone;
    c->dialled = called;
  } else if (auto d = dialled_.find(c->user_id); d != dialled_.end()) {
    if (steady_ms() - d->second.at_ms <= int64_t(options_.digits_valid_s) * 1000) {
      if (!d->second.number.empty()) called = d->second.number;
      c->pbx = d->second.pbx;
    }
    dialled_.erase(d);
  }
  if (called.empty()) called = config_.phone[0] == '+' ? config_.phone.substr(1) : config_.phone;
  const std::string esg_host = esg_.address().to_string() + ":" + std::to_string(esg_.port());
  const std::string name = caller_name(config_, u);
  std::string m = "INVITE sip:" + escaped_user(called) + "@" + esg_host + " SIP/2.0\r\n";
  m += "Via: " + via() + "\r\n";
  m += "Max-Forwards: 70\r\n";
  m += "From: " + (name.empty() ? std::string() : edge::b2bua_text::quoted(one_line(name)) + " ") +
       "<sip:" + escaped_user(caller_id(config_, u)) + "@127.0.0.1>;tag=" + c->local_tag + "\r\n";
  m += "To: <sip:" + escaped_user(called) + "@" + esg_host + ">\r\n";
  m += "Call-ID: " + c->call_id + "\r\n";
  m += "CSeq: 1 INVITE\r\n";
  m += "Contact: <sip:tg@127.0.0.1:" + std::to_string(port_) + ">\r\n";
  m += "Allow: INVITE, ACK, CANCEL, BYE, INFO, OPTIONS\r\n";
  if (!c->pbx.empty()) m += "X-ESG-PBX: " + c->pbx + "\r\n";  // for esg's B2BUA only
  m += tg_header_lines(u);
  const std::string body = sdp(*c, "sendrecv");
  m += "Content-Type: application/sdp\r\nContent-Length: " + std::to_string(body.size()) +
       "\r\n\r\n" + body;
  auto parsed = sip::parse_message(m);
  if (!parsed) {
    end(c, 500, "cannot build the INVITE", true);
    return;
  }
  c->invite = m;
  log::call("telegram", spdlog::level::info, c->call_id,
            "line {}: {} user {} ({}) to '{}' on the PBX{}", config_.code,
            c->callback ? std::string("callback for")
                        : "Telegram call " + std::to_string(c->tg_id) + " from",
            u.id, name, called, c->pbx.empty() ? std::string() : " " + c->pbx);
  txn::ClientUser cu;
  std::weak_ptr<Call> weak = c;
  cu.on_response = [this, weak](const sip::Message& r) {
    if (auto c = weak.lock()) on_invite_response(c, r);
  };
  cu.on_failure = [this, weak](uint16_t) {
    auto c = weak.lock();
    if (!c || c->ended) return;
    c->client = 0;
    missed_call(c, "no answer from esg");
    end(c, 0, "no answer from esg", true);
  };
  c->client = layer_->send_request(std::move(*parsed), channel_, std::move(cu));
  if (config_.autoanswer && !c->callback) autoanswer(c);  // a callback's user is called later
}

// The Telegram call accepted by the gateway itself, `tone` played to the user meanwhile.
void CallBridge::accept_early(const std::shared_ptr<Call>& c, std::shared_ptr<const Pcm48> tone) {
  if (!c->autoanswered) {
    c->autoanswered = true;
    c->accepted = true;
    c->gateway_answered_ms = unix_ms();
    lane(*c, "acceptCall (autoanswer, before the PBX)");
    td_({{"@type", "acceptCall"}, {"call_id", c->tg_id}, {"protocol", calls::call_protocol()}},
        [self = shared_from_this(), c](Result<json, td::TdError> res) {
          if (!res && !c->ended)
            self->end(c, 480, "Telegram: acceptCall failed: " + res.error().message, true);
        });
    // Until the PBX's own audio comes (early media or the answer): the relay's first frame
    // towards Telegram stops the tone, so the two never mix.
    std::weak_ptr<Call> weak = c;
    c->tone = std::make_unique<TonePlayer>(io_, [weak](std::string_view opus) {
      auto c = weak.lock();
      if (!c || c->ended || !c->media) return;
      if (!c->refused && c->rtp && c->rtp->frames_out() > 0) {
        c->tone->stop();
        return;
      }
      c->media->send(opus);
    });
  }
  c->tone->play(std::move(tone));
}

void CallBridge::ask_menu_key(const std::shared_ptr<Call>& c, const TgUser& u) {
  c->awaiting_key = true;
  c->caller = u;
  c->media = make_media(c);
  c->rtp = std::make_unique<RtpBridge>(io_, *c->media, kOpusPt, kEventPt);
  std::shared_ptr<const Pcm48> prompt;
  if (!config_.menu_prompt.empty()) prompt = tone_pcm(config_.menu_prompt, false);
  if (!prompt || prompt->empty()) {
    // No prompt of the line's own: two short beeps every 3 s, "say something".
    auto beeps = std::make_shared<Pcm48>(cadence_pcm(kMenuBeep));
    const Pcm48 second = cadence_pcm({kMenuBeep.freq_hz, kMenuBeep.on_ms, 2600});
    beeps->resize(size_t(kMenuBeep.on_ms + 150) * 48, 0);
    beeps->insert(beeps->end(), second.begin(), second.end());
    prompt = std::move(beeps);
  }
  accept_early(c, prompt);
  lane(*c, "menu: waiting for the key");
  log::call("telegram", spdlog::level::info, c->call_id,
            "line {}: Telegram call {} from user {}: answered, waiting for a menu key",
            config_.code, c->tg_id, u.id);
  // The keys in the chat too: the user reads them there and answers there.
  say(u.id, render_menu(config_.menu_text, config_.menu), "menu", c->call_id);
  std::weak_ptr<CallBridge> self = shared_from_this();
  std::weak_ptr<Call> weak = c;
  c->key_timer = timers_.start(std::chrono::seconds(config_.menu_timeout), [self, weak] {
    auto me = self.lock();
    auto c = weak.lock();
    if (!me || !c || c->ended || !c->awaiting_key) return;
    c->key_timer = 0;
    c->awaiting_key = false;
    me->lane(*c, "menu: no key, the line's number");
    me->send_invite(c, c->caller);
  });
}

// A chat message while the user's call waits for its menu key: a key starts the PBX leg to
// that entry (anything else is left to the chat's other uses).
bool CallBridge::take_menu_key(int64_t user, const std::string& text) {
  for (auto& [id, c] : by_call_id_) {
    if (c->user_id != user || c->ended || !c->awaiting_key) continue;
    const ChatCommand cmd = parse_chat(text, config_.menu, config_.callback_keyword);
    if (cmd.kind != ChatCommand::Kind::MenuKey) return false;
    const MenuEntry& e = config_.menu[cmd.entry];
    auto keep = c;
    keep->awaiting_key = false;
    if (keep->key_timer) timers_.stop(keep->key_timer);
    keep->key_timer = 0;
    lane(*keep, "menu: key " + e.key + " (" + e.label + ")");
    log::call("telegram", spdlog::level::info, keep->call_id, "line {}: user {} picked {} ({})",
              config_.code, user, e.key, e.label);
    dialled_[user] = {e.number, e.pbx, steady_ms()};
    send_invite(keep, keep->caller);
    return true;
  }
  return false;
}

void CallBridge::autoanswer(const std::shared_ptr<Call>& c) {
  accept_early(c, tone_pcm(config_.ringback, false));
  std::weak_ptr<Call> weak = c;
  std::weak_ptr<CallBridge> self = shared_from_this();
  c->answer_timer =
      timers_.start(std::chrono::seconds(std::max(5, config_.answer_timeout)), [self, weak] {
        auto me = self.lock();
        auto c = weak.lock();
        if (!me || !c || c->ended || c->answered || c->refused) return;
        c->answer_timer = 0;
        me->send_cancel(*c, reason_line(408, "no answer from the PBX"));
        me->missed_call(c, "no answer from the PBX");
        me->refuse(
            c, 408,
            "the PBX did not answer within " + std::to_string(me->config_.answer_timeout) + " s");
      });
}

// The PBX will not take the autoanswered call: the user, already connected, hears the busy
// tone for 3 s (rather than a call that just drops), then the call ends.
void CallBridge::refuse(const std::shared_ptr<Call>& c, uint16_t status, const std::string& why) {
  c->refused = true;
  c->client = 0;
  lane(*c, "busy tone (" + why + ")");
  log::call("telegram", spdlog::level::info, c->call_id,
            "line {}: Telegram call {}: {}, busy tone for 3 s", config_.code, c->tg_id, why);
  if (c->tone) c->tone->play(tone_pcm(config_.busy, true));
  std::weak_ptr<CallBridge> self = shared_from_this();
  std::weak_ptr<Call> weak = c;
  c->busy_timer = timers_.start(std::chrono::seconds(3), [self, weak, status, why] {
    auto me = self.lock();
    auto c = weak.lock();
    if (!me || !c || c->ended) return;
    c->busy_timer = 0;
    me->end(c, status, why, true);
  });
}

std::shared_ptr<const Pcm48> CallBridge::tone_pcm(const std::string& wav, bool busy) {
  // A file by its path and time: one replaced under the same name is read again.
  std::string key = busy ? "cadence:busy" : "cadence:ringback";
  if (!wav.empty()) {
    std::error_code ec;
    const auto t = std::filesystem::last_write_time(wav, ec);
    key = wav + "@" + std::to_string(ec ? 0 : t.time_since_epoch().count());
  }
  if (auto it = tones_.find(key); it != tones_.end()) return it->second;
  std::shared_ptr<const Pcm48> pcm;
  if (!wav.empty()) {
    auto loaded = load_wav(wav);
    if (loaded) {
      pcm = std::make_shared<const Pcm48>(std::move(*loaded));
    } else {
      // Checked when configured; gone or changed since: the cadence, and a word in the log.
      log::get("telegram")
          .warn("line {}: {} tone: {}; playing the 425 Hz cadence", config_.code,
                busy ? "busy" : "ringback", loaded.error());
      return tone_pcm("", busy);
    }
  } else {
    pcm = std::make_shared<const Pcm48>(cadence_pcm(busy ? kBusy : kRingback));
  }
  if (tones_.size() >= 8) tones_.clear();  // files of earlier settings
  tones_[key] = pcm;
  return pcm;
}

void CallBridge::on_invite_response(const std::shared_ptr<Call>& c, const sip::Message& r) {
  const uint16_t s = r.status();
  if (s > 100 && s < 200) c->pbx_rang = true;
  // Early media (183 with SDP): where the relay's audio comes from, and where an autoanswered
  // user's goes.
  if (s > 100 && s < 200 && has_sdp(r)) read_peer_sdp(*c, r.body(), nullptr);
  if (s < 200) return;
  if (c->answer_timer) {
    timers_.stop(c->answer_timer);
    c->answer_timer = 0;
  }
  if (s < 300 && !c->ack.empty()) {
    // The 2xx again (its sender repeats it until our ACK arrives; the transaction layer passes
    // each one up, RFC 6026): the ACK again, and nothing else (acceptCall went once).
    send(c->ack);
    return;
  }
  c->client = 0;
  if (s >= 300) {
    // Rejected, busy, no answer: the Telegram call is discarded (the user sees it declined),
    // and the user may get the missed-call message; an autoanswered one hears the busy tone
    // first (the 487 to our CANCEL is already that). A callback's PBX side did not answer: the
    // user is not called.
    if (c->refused) return;
    if (!c->ended) missed_call(c, "the PBX answered " + std::to_string(s));
    if (c->autoanswered && !c->ended) {
      refuse(c, 0, "the PBX answered " + std::to_string(s));
      return;
    }
    end(c, 0, "the PBX answered " + std::to_string(s), !c->callback);
    return;
  }
  auto inv = sip::parse_message(c->invite);
  if (!inv) return;
  auto d = dialog::Dialog::as_uac(*inv, r, "<sip:tg@127.0.0.1:" + std::to_string(port_) + ">");
  if (!d) return;
  d->confirm();
  c->ack = d->build_request("ACK", via(), inv->cseq().number);
  send(c->ack);
  c->dialog = std::move(*d);
  if (c->ended || c->refused) {
    // Telegram's side went away while the PBX was answering: take the answer down.
    auto bye = sip::parse_message(c->dialog->build_request(
        "BYE", via(), 0, reason_line(487, "Telegram: the caller hung up"), {}, {}));
    if (bye) layer_->send_request(std::move(*bye), channel_, {});
    return;
  }
  c->answered = true;
  c->pbx_answered_ms = unix_ms();
  if (has_sdp(r)) read_peer_sdp(*c, r.body(), nullptr);
  if (c->tone) c->tone->stop();
  if (c->callback) {
    callback_answered(c);
    return;
  }
  if (c->autoanswered) return;  // accepted already
  c->accepted = true;
  lane(*c, "acceptCall (the PBX answered)");
  td_({{"@type", "acceptCall"}, {"call_id", c->tg_id}, {"protocol", calls::call_protocol()}},
      [self = shared_from_this(), c](Result<json, td::TdError> res) {
        if (!res && !c->ended)
          self->end(c, 480, "Telegram: acceptCall failed: " + res.error().message, false);
      });
}

}  // namespace esg::telegram
