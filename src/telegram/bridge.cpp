#include "telegram/bridge.hpp"

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <optional>

#include "base/json_text.hpp"
#include "base/random.hpp"
#include "base/time.hpp"
#include "dialog/dialog.hpp"
#include "dialog/retransmitter.hpp"
#include "edge/b2bua/text.hpp"
#include "edge/context.hpp"
#include "log/log.hpp"
#include "sdp/session.hpp"
#include "sip/response.hpp"
#include "telegram/bridge_call.hpp"
#include "telegram/calls/engine.hpp"
#include "telegram/media.hpp"

namespace esg::telegram {

using namespace bridge_detail;

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
  if (!c->rtp || !c->ready || !c->media || c->media_started) return;
  std::string offered;
  if (!calls::choose_version(c->ready->value("protocol", json::object()), &offered)) {
    // §1.2 of the fact sheet: a version esg does not implement cannot carry audio; both sides
    // are told why at once rather than after a silent 20 s.
    ++version_refused_;
    const std::string why =
        "Telegram: call protocol " + offered + " is not supported (esg speaks 9.0.0, 8.0.0)";
    log::call("telegram", spdlog::level::warn, c->call_id, "line {}: {}", config_.code, why);
    c->disconnected = true;
    if (c->to_telegram && c->server)
      fail_sip(c, {488, why, 0, false});
    else
      end(c, 488, why, true);
    return;
  }
  std::string error;
  // A callback's Telegram call is esg's outgoing call, as one the PBX makes.
  if (!c->media->start(*c->ready, c->to_telegram || c->callback, &error)) {
    c->disconnected = true;
    if (c->to_telegram && c->server)
      fail_sip(c, {503, "Telegram: " + error, 0, false});
    else
      end(c, 503, "Telegram: " + error, true);
    return;
  }
  c->media_started = true;
  c->ready.reset();
  auto early = std::move(c->early_signaling);
  for (const auto& blob : early)
    c->media->signaling(blob);
  if (!showing_media_ && options_.board) {
    showing_media_ = true;
    show_media();
  }
}

std::unique_ptr<TelegramMedia> CallBridge::make_media(const std::shared_ptr<Call>& c) {
  calls::CallEngine::Options o;
  o.call_id = c->call_id;
  o.ports = options_.ports;
  boost::system::error_code ec;
  const auto bind = asio::ip::make_address(options_.media_address, ec);
  if (!ec && !bind.is_unspecified()) o.addresses.push_back(bind);
  auto m = std::make_unique<calls::CallEngine>(io_, std::move(o));
  std::weak_ptr<Call> weak = c;
  m->on_signaling = [this, weak](std::string blob) {
    auto c = weak.lock();
    if (!c || c->ended) return;
    td_({{"@type", "sendCallSignalingData"}, {"call_id", c->tg_id}, {"data", to_base64(blob)}}, {});
  };
  m->on_failed = [this, weak](const std::string& why) {
    auto c = weak.lock();
    if (!c || c->ended) return;
    c->disconnected = true;
    // 480 (Temporarily Unavailable): the user's network is gone, not esg or the PBX; the text
    // says so first, then the engine's detail (issue 22).
    end(c, 480, "Telegram call lost its connection: " + why, true);
  };
  m->on_event = [this, weak](std::string_view event, const json& detail) {
    if (auto c = weak.lock()) on_media_event(c, event, detail);
  };
  return m;
}

void CallBridge::on_signaling(const json& u) {
  auto it = by_tg_.find(u.value("call_id", int64_t(0)));
  if (it == by_tg_.end() || it->second->ended) return;
  auto& c = it->second;
  std::string blob = from_base64(u.value("data", ""));
  if (blob.empty()) return;
  if (c->media && c->media_started) {
    c->media->signaling(blob);
  } else if (c->early_signaling.size() < kMaxEarlySignaling) {
    c->early_signaling.push_back(std::move(blob));
  }
}

void CallBridge::show_media() {
  if (stopped_ || !options_.board) {
    showing_media_ = false;
    return;
  }
  bool any = false;
  for (const auto& [id, c] : by_call_id_) {
    if (c->ended || !c->media || !c->media_started) continue;
    any = true;
    options_.board->annotate(c->call_id, "telegram", board_note(*c));
  }
  if (!any) {
    showing_media_ = false;
    return;
  }
  std::weak_ptr<CallBridge> weak = shared_from_this();
  timers_.start(std::chrono::seconds(1), [weak] {
    if (auto self = weak.lock()) self->show_media();
  });
}

// --- ending ----------------------------------------------------------------------------

void CallBridge::fail_sip(const std::shared_ptr<Call>& c, const SipAnswer& a) {
  if (c->callback) {
    // The PBX answered a callback and Telegram refused the call to the user: the PBX hears
    // why in the BYE's Reason, the user in the chat.
    log::call("telegram", spdlog::level::info, c->call_id, "line {}: callback to user {}: {} {}",
              config_.code, c->user_id, a.status, a.reason);
    callback_refused(c, a);
    end(c, uint16_t(a.status), a.reason, true);
    return;
  }
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
  lane(*c, c->disconnected ? "discardCall (is_disconnected)" : "discardCall");
  td_({{"@type", "discardCall"},
       {"call_id", c->tg_id},
       {"is_disconnected", c->disconnected},
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
  for (auto* t : {&c->ring_timer, &c->answer_timer, &c->busy_timer, &c->key_timer}) {
    if (*t) timers_.stop(*t);
    *t = 0;
  }
  if (c->tone) c->tone->stop();
  if (c->ok) c->ok->stop();
  if (c->media) {
    // Stopped, and its last values (state ended or failed, ended_by) on the board, before the
    // SIP side hears of the end: the B2BUA writes the CDR, with the board's Telegram fields,
    // when our BYE or CANCEL reaches it.
    c->media->stop();
    if (c->media_started) count_ended_media(c->media->status());
  }
  if (options_.board && (c->media_started || !c->chat_sent.empty()))
    options_.board->annotate(c->call_id, "telegram", board_note(*c));
  const std::string reason = reason_line(cause ? cause : 487, why);
  if (c->client && !c->answered) {
    send_cancel(*c, reason);
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

// Our INVITE is still ringing: CANCEL it (RFC 3326 Reason: "Call completed elsewhere"...).
void CallBridge::send_cancel(const Call& c, const std::string& reason) {
  auto inv = sip::parse_message(c.invite);
  if (!inv) return;
  std::string m = "CANCEL " + std::string(inv->request_uri().text) + " SIP/2.0\r\n";
  m += "Via: " + std::string(inv->top_via().text) + "\r\n";
  m += "Max-Forwards: 70\r\n";
  m += "From: " + std::string(inv->from().text) + "\r\n";
  m += "To: " + std::string(inv->to().text) + "\r\n";
  m += "Call-ID: " + c.call_id + "\r\n";
  m += "CSeq: 1 CANCEL\r\n" + reason + "Content-Length: 0\r\n\r\n";
  if (auto p = sip::parse_message(m)) layer_->send_request(std::move(*p), channel_, {});
}

json CallBridge::media_status(const Call& c) const {
  json j = c.media && c.media_started ? c.media->status() : json::object();
  if (!j.is_object()) j = json::object();
  if (c.autoanswered) {
    j["autoanswer"] = true;
    j["gateway_answered_at"] = iso_time(c.gateway_answered_ms);
    if (c.pbx_answered_ms) j["pbx_answered_at"] = iso_time(c.pbx_answered_ms);
    if (c.tone) j["tone_frames"] = c.tone->frames();
  }
  return j;
}

void CallBridge::forget(const std::shared_ptr<Call>& c) {
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
    out << json_text(json{{"calls", noncontact_}}) << "\n";
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
      {"calls_refused_version", version_refused_},
      {"media", media_counters()},
      {"restricted_since", restricted_ms_ ? json(iso_time(restricted_ms_)) : json()},
      {"chat",
       {{"sent", chat_counters_.sent},
        {"dropped_flood", chat_counters_.dropped_flood},
        {"dropped_busy", chat_counters_.dropped_busy},
        {"failed", chat_counters_.failed},
        {"recent", json(chat_recent_)}}},
      {"sip", port_ ? json("127.0.0.1:" + std::to_string(port_)) : json()}};
}

json CallBridge::status() const {
  std::lock_guard lock(status_mu_);
  return status_;
}

}  // namespace esg::telegram
