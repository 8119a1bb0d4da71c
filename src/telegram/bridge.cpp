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
#include "telegram/media.hpp"

namespace esg::telegram {

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

namespace {

constexpr int64_t kDayMs = 24 * 3600 * 1000;
constexpr uint8_t kOpusPt = 111, kEventPt = 101;
constexpr int kKeyMs = 160;               // a chat digit as a key press this long
constexpr size_t kDialledSweepAt = 1024;  // digits of this many users: drop the stale ones

// A header value on one line (names come from Telegram users).
std::string one_line(std::string_view s) {
  std::string out;
  for (char c : s)
    out += (c == '\r' || c == '\n') ? ' ' : c;
  return out;
}

TgUser user_of(const json& u) {
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

bool is_digits_message(const std::string& s) {
  return !s.empty() && s.size() <= 32 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
  });
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
    ++i;
  return s.substr(i);
}

// TDLib's protocol for calls: reflectors and peer-to-peer, the layers current apps speak.
json call_protocol() {
  return {{"@type", "callProtocol"}, {"udp_p2p", true}, {"udp_reflector", true},
          {"min_layer", 65},         {"max_layer", 92}, {"library_versions", json::array({"esg"})}};
}

}  // namespace

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
  std::optional<json> ready;  // callStateReady, kept until the media starts
  std::optional<udp::endpoint> peer;
  uint8_t opus_pt = kOpusPt, event_pt = kEventPt;
  std::unique_ptr<dialog::Retransmitter> ok;  // our 2xx until its ACK
  txn::Timers::Id ring_timer = 0;
  std::string dialled;  // what the PBX dialled
  std::string keys;     // chat digits still to send to the PBX
};

CallBridge::CallBridge(asio::io_context& io, const LineConfig& config, TdSend td,
                       BridgeOptions options)
    : io_(io),
      config_(config),
      td_(std::move(td)),
      options_(std::move(options)),
      sock_(io),
      timers_(io) {
  load_counts();
}

CallBridge::~CallBridge() {
  boost::system::error_code ec;
  sock_.close(ec);
}

bool CallBridge::open(std::string* error) {
  if (!options_.sip_port) {
    *error = "esg has no UDP listener: the line's calls enter esg through one";
    return false;
  }
  boost::system::error_code ec;
  const auto esg_addr = asio::ip::make_address(
      options_.sip_host == "0.0.0.0" || options_.sip_host.empty() ? "127.0.0.1" : options_.sip_host,
      ec);
  if (ec) {
    *error = "esg's UDP listener address " + options_.sip_host + " is not an address";
    return false;
  }
  esg_ = udp::endpoint(esg_addr, options_.sip_port);
  sock_.open(udp::v4(), ec);
  if (!ec) sock_.bind(udp::endpoint(asio::ip::make_address("127.0.0.1"), 0), ec);
  if (ec) {
    *error = "cannot bind the line's SIP side on 127.0.0.1: " + ec.message();
    return false;
  }
  port_ = sock_.local_endpoint().port();
  channel_.reliable = false;
  channel_.send = [this](std::string_view b) {
    send(b);
    return true;
  };
  txn::Layer::User user;
  user.on_request = [this](txn::TxnId server, const sip::Message& req, const txn::Channel&) {
    on_request(server, req);
  };
  user.on_cancel = [this](txn::TxnId invite, const sip::Message& cancel) {
    on_cancel(invite, cancel);
  };
  user.on_stray_response = [this](const sip::Message& r) { on_stray(r); };
  layer_ = std::make_unique<txn::Layer>(timers_, timer_config_, std::move(user));
  receive();
  publish_status();
  return true;
}

void CallBridge::send(std::string_view bytes) {
  boost::system::error_code ec;
  sock_.send_to(asio::buffer(bytes.data(), bytes.size()), esg_, 0, ec);
}

std::string CallBridge::via() const {
  return "SIP/2.0/UDP 127.0.0.1:" + std::to_string(port_) + ";branch=" + new_branch() + ";rport";
}

void CallBridge::receive() {
  sock_.async_receive_from(asio::buffer(buf_), from_,
                           [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                             if (ec || self->stopped_) return;
                             auto m = sip::parse_message(std::string_view(self->buf_.data(), n));
                             if (m) {
                               m->set_source(self->from_.address().to_string(), self->from_.port());
                               self->layer_->receive(std::move(*m), self->channel_);
                             }
                             self->receive();
                           });
}

// --- SIP requests from esg -------------------------------------------------------------

void CallBridge::on_request(txn::TxnId server, const sip::Message& req) {
  if (req.to_tag().empty()) {
    if (req.method() == sip::Method::Invite) {
      outgoing_invite(server, req);
    } else if (req.method() == sip::Method::Options) {
      layer_->respond(server, 200, sip::build_response(req, 200, {}, random::hex(8)));
    } else if (server) {
      layer_->respond(server, 481, sip::build_response(req, 481, {}, random::hex(8)));
    }
    return;
  }
  auto it = by_call_id_.find(std::string(req.call_id()));
  if (it == by_call_id_.end() || !it->second->dialog) {
    if (server) layer_->respond(server, 481, sip::build_response(req, 481));
    return;
  }
  auto c = it->second;
  if (req.method() == sip::Method::Ack) {
    if (c->ok) c->ok->stop();
    return;
  }
  if (auto r = c->dialog->on_request(req); !r) {
    layer_->respond(server, 500, sip::build_response(req, 500, "CSeq Out Of Order"));
    return;
  }
  switch (req.method()) {
    case sip::Method::Bye:
      layer_->respond(server, 200, sip::build_response(req, 200));
      c->dialog->terminate();
      end(c, 0, "the PBX side hung up", true);
      return;
    case sip::Method::Invite: {
      // A re-INVITE (hold, resume, a new relay address): the same stream, the direction
      // mirrored, so the Telegram user hears the PBX's music or silence.
      std::string direction = "sendrecv";
      if (has_sdp(req) && !read_peer_sdp(*c, req.body(), &direction)) {
        layer_->respond(server, 488, sip::build_response(req, 488));
        return;
      }
      const std::string mirrored = direction == "sendonly"   ? "recvonly"
                                   : direction == "recvonly" ? "sendonly"
                                                             : direction;
      std::string ok = with_body(
          sip::build_response(req, 200, {}, {},
                              "Contact: <sip:tg@127.0.0.1:" + std::to_string(port_) + ">\r\n"),
          "application/sdp", sdp(*c, mirrored));
      layer_->respond(server, 200, ok);
      c->ok = std::make_unique<dialog::Retransmitter>(timers_, timer_config_, false, channel_.send,
                                                      [] {});
      c->ok->start(ok, false);
      return;
    }
    default:
      // INFO (keys towards Telegram have no way there), UPDATE, OPTIONS: taken.
      layer_->respond(server, 200, sip::build_response(req, 200));
      return;
  }
}

void CallBridge::on_cancel(txn::TxnId invite, const sip::Message&) {
  for (auto& [id, c] : by_call_id_) {
    if (c->server != invite) continue;
    auto keep = c;
    fail_sip(keep, {487, "Cancelled by the caller", 0, false});
    return;
  }
}

void CallBridge::on_stray(const sip::Message& r) {
  // Our 2xx's retransmission after its transaction ended: the ACK again.
  auto it = by_call_id_.find(std::string(r.call_id()));
  if (it != by_call_id_.end() && !it->second->ack.empty() && r.status() >= 200 && r.status() < 300)
    send(it->second->ack);
}

// --- descriptions ----------------------------------------------------------------------

std::string CallBridge::sdp(const Call& c, const std::string& direction) const {
  const uint16_t rtp = c.rtp ? c.rtp->port() : 0;
  const std::string id = std::to_string(uint64_t(port_) * 100000 + uint64_t(c.tg_id % 100000));
  std::string s = "v=0\r\no=esg-tg " + id + " 1 IN IP4 127.0.0.1\r\ns=-\r\n";
  s += "c=IN IP4 127.0.0.1\r\nt=0 0\r\n";
  s += "m=audio " + std::to_string(rtp) + " RTP/AVP " + std::to_string(c.opus_pt);
  if (c.event_pt) s += " " + std::to_string(c.event_pt);
  s += "\r\na=rtpmap:" + std::to_string(c.opus_pt) + " opus/48000/2\r\n";
  s += "a=fmtp:" + std::to_string(c.opus_pt) + " useinbandfec=1\r\n";
  if (c.event_pt) {
    s += "a=rtpmap:" + std::to_string(c.event_pt) + " telephone-event/48000\r\n";
    s += "a=fmtp:" + std::to_string(c.event_pt) + " 0-16\r\n";
  }
  s += "a=ptime:20\r\na=" + direction + "\r\n";
  return s;
}

// The relay's address and the formats it offers or answers. False: no Opus (the relay always
// offers it on this leg; anything else is a mistake).
bool CallBridge::read_peer_sdp(Call& c, std::string_view body, std::string* direction) {
  auto s = sdp::parse(body);
  if (!s) return false;
  for (const auto& m : s->media) {
    if (m.media != "audio" || m.port == 0) continue;
    const auto& conn = m.connection ? m.connection : s->connection;
    if (!conn) return false;
    boost::system::error_code ec;
    const auto addr = asio::ip::make_address(conn->address, ec);
    int opus = -1, event = -1;
    for (const auto& f : m.formats) {
      const int pt = std::atoi(f.c_str());
      auto map = m.rtpmap(pt);
      if (!map) continue;
      std::string enc = map->encoding;
      for (char& ch : enc)
        ch = char(std::tolower(static_cast<unsigned char>(ch)));
      if (enc == "opus" && opus < 0) opus = pt;
      if (enc == "telephone-event" && map->clock_rate == 48000 && event < 0) event = pt;
    }
    if (opus < 0) return false;
    c.opus_pt = uint8_t(opus);
    c.event_pt = event < 0 ? 0 : uint8_t(event);
    if (!ec && !addr.is_unspecified()) c.peer = udp::endpoint(addr, m.port);
    if (direction) *direction = std::string(sdp::direction_name(s->direction(m)));
    if (c.rtp && c.peer) c.rtp->set_peer(*c.peer);
    if (c.rtp) c.rtp->set_payload_types(c.opus_pt, c.event_pt);
    return true;
  }
  return false;
}

void CallBridge::start_media(const std::shared_ptr<Call>& c) {
  if (!c->rtp || !c->ready || !c->media) return;
  if (!c->media->start(*c->ready)) {
    end(c, 503, "Telegram: no media server this engine can use", true);
    return;
  }
  c->ready.reset();
}

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
        self->send_invite(c, u);
      });
}

void CallBridge::send_invite(const std::shared_ptr<Call>& c, const TgUser& u) {
  c->media = make_reflector_media(io_);
  c->rtp = std::make_unique<RtpBridge>(io_, *c->media, kOpusPt, kEventPt);
  // The number on the PBX: digits the user sent just before calling, else the line's number,
  // else the line's own phone number (as a DID).
  std::string called = config_.number;
  if (auto d = dialled_.find(c->user_id); d != dialled_.end()) {
    if (steady_ms() - d->second.second <= int64_t(options_.digits_valid_s) * 1000)
      called = d->second.first;
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
  m += "X-TG-ID: " + std::to_string(u.id) + "\r\n";
  if (!u.username.empty()) m += "X-TG-Username: " + one_line(u.username) + "\r\n";
  if (!u.phone.empty())
    m += "X-TG-Phone: " + std::string(u.phone[0] == '+' ? "" : "+") + one_line(u.phone) + "\r\n";
  std::string full = u.first_name + (u.last_name.empty() ? "" : " " + u.last_name);
  if (!full.empty()) m += "X-TG-Name: " + one_line(full) + "\r\n";
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
            "line {}: Telegram call {} from user {} ({}) to '{}' on the PBX", config_.code,
            c->tg_id, u.id, name, called);
  txn::ClientUser cu;
  std::weak_ptr<Call> weak = c;
  cu.on_response = [this, weak](const sip::Message& r) {
    if (auto c = weak.lock()) on_invite_response(c, r);
  };
  cu.on_failure = [this, weak](uint16_t) {
    auto c = weak.lock();
    if (!c || c->ended) return;
    c->client = 0;
    end(c, 0, "no answer from esg", true);
  };
  c->client = layer_->send_request(std::move(*parsed), channel_, std::move(cu));
}

void CallBridge::on_invite_response(const std::shared_ptr<Call>& c, const sip::Message& r) {
  const uint16_t s = r.status();
  if (s < 200) return;
  c->client = 0;
  if (s >= 300) {
    // Rejected, busy, no answer: the Telegram call is discarded (the user sees it declined).
    end(c, 0, "the PBX answered " + std::to_string(s), true);
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
  if (c->ended) {
    // Telegram's side went away while the PBX was answering: take the answer down.
    auto bye = sip::parse_message(c->dialog->build_request(
        "BYE", via(), 0, reason_line(487, "Telegram: the caller hung up"), {}, {}));
    if (bye) layer_->send_request(std::move(*bye), channel_, {});
    return;
  }
  c->answered = true;
  if (has_sdp(r)) read_peer_sdp(*c, r.body(), nullptr);
  c->accepted = true;
  td_({{"@type", "acceptCall"}, {"call_id", c->tg_id}, {"protocol", call_protocol()}},
      [self = shared_from_this(), c](Result<json, td::TdError> res) {
        if (!res && !c->ended)
          self->end(c, 480, "Telegram: acceptCall failed: " + res.error().message, false);
      });
}

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
  c->media = make_reflector_media(io_);
  if (!has_sdp(req) || !read_peer_sdp(*c, req.body(), nullptr)) {
    refuse({488, "the offer has no Opus (the relay transcodes for Telegram lines)", 0, false});
    return;
  }
  c->rtp = std::make_unique<RtpBridge>(io_, *c->media, c->opus_pt, c->event_pt);
  if (c->peer) c->rtp->set_peer(*c->peer);
  by_call_id_[c->call_id] = c;
  publish_status();
  // No answer within the line's ring timeout (a push may never wake the phone): 480.
  std::weak_ptr<Call> weak = c;
  c->ring_timer =
      timers_.start(std::chrono::seconds(std::max(1, config_.ring_timeout)), [this, weak] {
        auto c = weak.lock();
        if (!c || c->ended) return;
        c->ring_timer = 0;
        fail_sip(c, {480,
                     "Telegram: no answer within the ring timeout (" +
                         std::to_string(config_.ring_timeout) + " s)",
                     0, false});
      });
  find_user(c, *target, 0);
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
                  self->place_call(c, id, u && u->value("is_contact", false), 0);
                });
      return;
    }
    self->place_call(c, r->value("id", int64_t(0)), r->value("is_contact", false), 0);
  });
}

void CallBridge::place_call(const std::shared_ptr<Call>& c, int64_t user_id, bool contact,
                            int tries) {
  c->user_id = user_id;
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
  td_({{"@type", "createCall"},
       {"user_id", user_id},
       {"protocol", call_protocol()},
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
        log::call("telegram", spdlog::level::info, c->call_id,
                  "line {}: '{}' is user {}{}: Telegram call {}", self->config_.code, c->dialled,
                  user_id, contact ? " (a contact)" : "", c->tg_id);
        if (!contact) self->count_noncontact();
        self->publish_status();
      });
}

// --- Telegram's call states ------------------------------------------------------------

void CallBridge::on_update(const json& u) {
  const std::string type = u.value("@type", "");
  if (type == "updateCall" && u.contains("call")) {
    const json& call = u["call"];
    const int64_t id = call.value("id", int64_t(0));
    auto it = by_tg_.find(id);
    if (it != by_tg_.end()) {
      auto c = it->second;
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
    }
    return;
  }
  if (type == "updateNewMessage" && u.contains("message")) on_message(u["message"]);
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
        layer_->respond(c->server, 180, sip::build_response(*req, 180, {}, c->local_tag));
    }
    return;
  }
  if (type == "callStateReady") {
    c->tg_up = true;
    c->ready = st;
    start_media(c);
    if (c->to_telegram && c->server && !c->ended) {
      // The user answered: 200 with our description, re-sent until the ACK.
      const sip::Message* req = layer_->request(c->server);
      if (!req) return;
      if (c->ring_timer) {
        timers_.stop(c->ring_timer);
        c->ring_timer = 0;
      }
      std::string ok = with_body(
          sip::build_response(*req, 200, {}, c->local_tag,
                              "Contact: <sip:tg@127.0.0.1:" + std::to_string(port_) + ">\r\n"),
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
  if (!is_digits_message(text)) return;
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
  // Kept for the window only: a chat full of users who send digits and never call must not
  // grow the table without bound.
  const int64_t now = steady_ms();
  if (dialled_.size() >= kDialledSweepAt) {
    std::erase_if(dialled_, [&](const auto& d) {
      return now - d.second.second > int64_t(options_.digits_valid_s) * 1000;
    });
  }
  dialled_[from] = {text, now};
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

// --- ending ----------------------------------------------------------------------------

void CallBridge::fail_sip(const std::shared_ptr<Call>& c, const SipAnswer& a) {
  log::call("telegram", spdlog::level::info, c->call_id, "line {}: {} to '{}': {}{}", config_.code,
            a.status, c->dialled, a.reason,
            a.retry_after ? ", Retry-After " + std::to_string(a.retry_after) : "");
  if (c->server) {
    if (const sip::Message* req = layer_->request(c->server)) {
      std::string extra = reason_line(a.status, a.reason);
      if (a.retry_after > 0) extra += "Retry-After: " + std::to_string(a.retry_after) + "\r\n";
      layer_->respond(c->server, uint16_t(a.status),
                      sip::build_response(*req, uint16_t(a.status), {}, c->local_tag, extra));
    }
    c->server = 0;
  }
  end(c, 0, a.reason, true);
}

void CallBridge::discard_telegram(const std::shared_ptr<Call>& c) {
  if (!c->tg_id || !by_tg_.count(c->tg_id)) return;
  td_({{"@type", "discardCall"},
       {"call_id", c->tg_id},
       {"is_disconnected", false},
       {"invite_link", ""},
       {"duration", 0},
       {"is_video", false},
       {"connection_id", 0}},
      {});
}

// `cause`: the Reason of the CANCEL or BYE towards esg (0: none given).
void CallBridge::end(const std::shared_ptr<Call>& c, uint16_t cause, const std::string& why,
                     bool discard) {
  if (c->ended) return;
  c->ended = true;
  log::call("telegram", spdlog::level::info, c->call_id, "line {}: Telegram call {} ends: {}",
            config_.code, c->tg_id, why);
  if (c->ring_timer) {
    timers_.stop(c->ring_timer);
    c->ring_timer = 0;
  }
  if (c->ok) c->ok->stop();
  const std::string reason = reason_line(cause ? cause : 487, why);
  if (c->client && !c->answered) {
    // Our INVITE is still ringing: CANCEL it (RFC 3326 Reason: "Call completed elsewhere"...).
    if (auto inv = sip::parse_message(c->invite)) {
      std::string m = "CANCEL " + std::string(inv->request_uri().text) + " SIP/2.0\r\n";
      m += "Via: " + std::string(inv->top_via().text) + "\r\n";
      m += "Max-Forwards: 70\r\n";
      m += "From: " + std::string(inv->from().text) + "\r\n";
      m += "To: " + std::string(inv->to().text) + "\r\n";
      m += "Call-ID: " + c->call_id + "\r\n";
      m += "CSeq: 1 CANCEL\r\n" + reason + "Content-Length: 0\r\n\r\n";
      if (auto p = sip::parse_message(m)) layer_->send_request(std::move(*p), channel_, {});
    }
  } else if (c->server) {
    if (const sip::Message* req = layer_->request(c->server))
      layer_->respond(c->server, 480,
                      sip::build_response(*req, 480, {}, c->local_tag, reason_line(480, why)));
    c->server = 0;
  } else if (c->answered && c->dialog && c->dialog->state() != dialog::DialogState::Terminated) {
    auto bye = sip::parse_message(c->dialog->build_request("BYE", via(), 0, reason, {}, {}));
    if (bye) layer_->send_request(std::move(*bye), channel_, {});
    c->dialog->terminate();
  }
  if (discard) discard_telegram(c);
  forget(c);
}

void CallBridge::forget(const std::shared_ptr<Call>& c) {
  if (c->media) c->media->stop();
  // A CANCEL's final answer (487) or a late 2xx still reaches us: keep the Call-ID a while.
  std::weak_ptr<CallBridge> weak = shared_from_this();
  const std::string id = c->call_id;
  timers_.start(std::chrono::seconds(32), [weak, id] {
    if (auto self = weak.lock()) {
      self->by_call_id_.erase(id);
      self->publish_status();
    }
  });
  c->rtp.reset();
  publish_status();
}

void CallBridge::shutdown(const std::string& why) {
  std::vector<std::shared_ptr<Call>> all;
  for (auto& [id, c] : by_call_id_)
    all.push_back(c);
  for (auto& c : all)
    end(c, 503, why, true);
  stopped_ = true;
  boost::system::error_code ec;
  sock_.close(ec);
}

// --- limits ----------------------------------------------------------------------------

int CallBridge::noncontact_wait_s() {
  const int64_t now = unix_ms();
  while (!noncontact_.empty() && noncontact_.front() <= now - kDayMs)
    noncontact_.pop_front();
  const int limit = config_.noncontact_calls_per_day;
  if (limit <= 0 || int(noncontact_.size()) < limit) return 0;
  // The slot of the oldest call counted frees first.
  const int64_t frees = noncontact_[noncontact_.size() - size_t(limit)] + kDayMs;
  return int(std::max<int64_t>(1, (frees - now + 999) / 1000));
}

void CallBridge::count_noncontact() {
  noncontact_.push_back(unix_ms());
  save_counts();
}

void CallBridge::load_counts() {
  if (options_.dir.empty()) return;
  std::ifstream in(options_.dir + "/esg-noncontact.json");
  if (!in) return;
  try {
    const json j = json::parse(in);
    const int64_t now = unix_ms();
    for (const auto& t : j.value("calls", json::array())) {
      if (t.is_number_integer() && t.get<int64_t>() > now - kDayMs)
        noncontact_.push_back(t.get<int64_t>());
    }
  } catch (const json::exception&) {
    // A damaged file counts nothing; the next call rewrites it.
  }
}

void CallBridge::save_counts() const {
  if (options_.dir.empty()) return;
  const std::string path = options_.dir + "/esg-noncontact.json";
  {
    std::ofstream out(path + ".tmp", std::ios::trunc);
    out << json{{"calls", noncontact_}}.dump() << "\n";
    if (!out) return;
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

void CallBridge::publish_status() {
  const int64_t now = unix_ms();
  int calls = 0;
  for (const auto& [id, c] : by_call_id_)
    calls += c->ended ? 0 : 1;
  int64_t today = 0;
  for (int64_t t : noncontact_)
    today += t > now - kDayMs ? 1 : 0;
  std::lock_guard lock(status_mu_);
  status_ = {
      {"calls_in_progress", calls},
      {"noncontact_calls_today", today},
      {"calls_flood_until", flood_until_ms_ > now ? json(iso_time(flood_until_ms_)) : json()},
      {"restricted", restricted_ms_ != 0},
      {"restricted_since", restricted_ms_ ? json(iso_time(restricted_ms_)) : json()},
      {"sip", port_ ? json("127.0.0.1:" + std::to_string(port_)) : json()}};
}

json CallBridge::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

}  // namespace esg::telegram
