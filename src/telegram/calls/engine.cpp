#include "telegram/calls/engine.hpp"

#include <boost/asio/post.hpp>

#include <openssl/rand.h>
#include <opus/opus.h>

#include <algorithm>

#include "base/base64.hpp"
#include "log/log.hpp"
#include "media/codec.hpp"
#include "media/webrtc/ice/candidate.hpp"
#include "media/webrtc/leg.hpp"
#include "telegram/calls/json_fields.hpp"
#include "telegram/calls/messages.hpp"
#include "telegram/calls/servers.hpp"
#include "telegram/calls/signaling.hpp"

namespace esg::telegram::calls {

namespace asio = boost::asio;
using nlohmann::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr size_t kMaxEarlyCandidates = 64;
constexpr uint32_t kOpusClock = 48000;
// Opus' own 20 ms of silence (a CELT frame that decodes to zeros): what the relay gets while
// the Telegram user is muted (tgcalls sends no RTP then) or the path is briefly lost, so
// neither the PBX nor esg's media timeout takes muting for a dead call.
constexpr char kOpusSilence[] = {char(0xF8), char(0xFF), char(0xFE)};
constexpr milliseconds kSilenceAfter{300};
constexpr milliseconds kReportEvery{5000};

using fields::flag;
using fields::member;
using fields::text;

uint32_t random_u32() {
  uint32_t v = 0;
  while (v == 0)
    RAND_bytes(reinterpret_cast<unsigned char*>(&v), sizeof v);
  return v;
}

void put16(std::string& s, uint16_t v) {
  s += char(v >> 8);
  s += char(v);
}
void put32(std::string& s, uint32_t v) {
  put16(s, uint16_t(v >> 16));
  put16(s, uint16_t(v));
}

// The one content esg sends and takes: Opus at 48 kHz as tgcalls offers it (§4.4), no header
// extensions (the answer then lists none, and the peer sends none: §4.5).
PayloadType opus_payload_type(uint32_t id) {
  PayloadType p;
  p.id = id;
  p.name = "opus";
  p.clockrate = kOpusClock;
  p.channels = 2;
  p.parameters = {{"minptime", "10"}, {"useinbandfec", "1"}};
  return p;
}

bool is_opus(const PayloadType& p) {
  std::string name = p.name;
  for (char& c : name)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return name == "opus" && p.clockrate == kOpusClock;
}

}  // namespace

const std::vector<std::string>& versions() {
  static const std::vector<std::string> v = {"9.0.0", "8.0.0"};
  return v;
}

json call_protocol() {
  return {{"@type", "callProtocol"}, {"udp_p2p", true}, {"udp_reflector", true},
          {"min_layer", 65},         {"max_layer", 92}, {"library_versions", versions()}};
}

std::optional<std::string> choose_version(const json& protocol, std::string* offered) {
  const json& list = member(protocol, "library_versions");
  std::string names;
  for (const auto& v : list) {
    if (!v.is_string()) continue;
    if (!names.empty()) names += ", ";
    names += v.get<std::string>();
  }
  if (offered) *offered = names.empty() ? "none" : names;
  for (const auto& mine : versions()) {
    for (const auto& v : list)
      if (v.is_string() && v.get<std::string>() == mine) return mine;
  }
  return std::nullopt;
}

CallEngine::CallEngine(asio::io_context& io, Options options)
    : io_(io),
      options_(std::move(options)),
      signaling_timer_(io),
      second_timer_(io),
      silence_timer_(io),
      playout_timer_(io) {}

CallEngine::~CallEngine() {
  stop();
}

void CallEngine::read_custom_parameters(const std::string& text) {
  // §8: esg knows none of the experiments, so every key set to true gets a warning.
  CustomParameters p = parse_custom_parameters(text);
  if (!p.valid)
    log::call("telegram", spdlog::level::warn, options_.call_id,
              "custom_parameters is not a JSON object: {}", text);
  for (const auto& key : p.unknown_true)
    log::call("telegram", spdlog::level::warn, options_.call_id,
              "custom_parameters sets {} to true: an experiment esg does not know", key);
  custom_parameters_ = std::move(p.value);
}

bool CallEngine::start(const json& ready, bool outgoing, std::string* error) {
  if (started_) return true;
  outgoing_ = outgoing;
  std::string offered;
  auto version = choose_version(member(ready, "protocol"), &offered);
  if (!version) {
    *error = "Telegram call protocol " + offered + " is not supported (esg speaks 9.0.0, 8.0.0)";
    return false;
  }
  version_ = *version;
  const std::string key = base64::decode(text(ready, "encryption_key"));
  if (key.size() != 256) {
    *error = "callStateReady has no 256-byte encryption_key";
    return false;
  }
  for (const auto& e : member(ready, "emojis"))
    if (e.is_string()) emojis_.push_back(e.get<std::string>());
  const bool allow_p2p = flag(ready, "allow_p2p", true);

  media::WebRtcLeg::Options lo;
  lo.controlling = outgoing;
  lo.channel_opener = outgoing;  // §4.6: the caller opens "data"
  lo.relay_only = !allow_p2p;
  lo.addresses = options_.addresses;
  lo.ports = options_.ports;
  CallServers servers = parse_call_servers(member(ready, "servers"));
  for (const auto& s : servers.skipped) {
    log::call("telegram", spdlog::level::info, options_.call_id, "call server {} ({}) skipped: {}",
              s.id, s.address, s.why);
  }
  skipped_servers_ = servers.skipped.size();
  skipped_tcp_reflectors_ = servers.skipped_tcp_reflectors;
  for (const auto& r : servers.reflectors) {
    log::call("telegram", spdlog::level::info, options_.call_id, "reflector {} at {}:{}", int(r.id),
              r.address.address().to_string(), r.address.port());
  }
  lo.servers = std::move(servers.ice);
  lo.reflectors = std::move(servers.reflectors);
  if (lo.relay_only && lo.reflectors.empty() &&
      std::none_of(lo.servers.begin(), lo.servers.end(), [](const auto& s) { return s.turn; })) {
    log::call("telegram", spdlog::level::warn, options_.call_id,
              "peer to peer is not allowed and there is no TURN server or reflector: the call "
              "cannot connect");
  }
  // §8: what the server passes to tgcalls; V2 reads none of `config`, but an experiment in
  // custom_parameters would change the wire, so it is always in the log.
  log::call("telegram", spdlog::level::info, options_.call_id,
            "Telegram call media: version {}, {}, p2p {}, {} server(s), custom_parameters {}",
            version_, outgoing ? "outgoing" : "incoming", allow_p2p, lo.servers.size(),
            text(ready, "custom_parameters"));
  read_custom_parameters(text(ready, "custom_parameters"));

  signaling_ = std::make_unique<SignalingChannel>(key, outgoing);
  signaling_->send = [this](std::string blob) {
    if (on_signaling) on_signaling(std::move(blob));
  };
  signaling_->on_message = [this](std::string text) { on_message(text); };

  leg_ = std::make_unique<media::WebRtcLeg>(io_, std::move(lo));
  leg_->on_candidate = [this](const media::ice::Candidate& c) { on_candidate(c.to_sdp()); };
  leg_->on_state = [this](media::WebRtcLeg::State) { on_leg_state(); };
  leg_->on_rtp = [this](std::string_view p) { on_rtp(p); };
  leg_->on_rtcp = [this](std::string_view p) { on_rtcp(p); };
  leg_->on_channel_open = [this] { send_media_state(); };
  leg_->on_text = [this](std::string_view t) { on_message(std::string(t)); };
  ssrc_ = random_u32();
  seq_ = uint16_t(random_u32());
  ts_ = random_u32();
  started_ = true;
  started_at_ = Clock::now();
  lost_since_ = started_at_;
  if (!leg_->start(error)) return false;
  // §3.2: the caller speaks first; the callee answers the caller's InitialSetup with its own.
  if (outgoing_) send_initial_setup();
  second_tick();
  return true;
}

void CallEngine::signaling(std::string_view data) {
  if (!signaling_ || stopped_) return;
  signaling_->on_blob(data, Clock::now());
  arm_signaling_timer();
}

void CallEngine::send_message(const std::string& json) {
  if (!signaling_ || stopped_) return;
  if (!signaling_->send_message(json, Clock::now()))
    log::call("telegram", spdlog::level::warn, options_.call_id,
              "signaling message not sent (too big or too many unacknowledged)");
  arm_signaling_timer();
}

void CallEngine::arm_signaling_timer() {
  if (!signaling_) return;
  auto at = signaling_->next_tick();
  if (!at) return;
  signaling_timer_.expires_at(*at);
  std::weak_ptr<bool> alive = alive_;
  signaling_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (ec || alive.expired() || stopped_) return;
    signaling_->tick(Clock::now());
    arm_signaling_timer();
  });
}

void CallEngine::send_initial_setup() {
  InitialSetup s;
  s.ufrag = leg_->ufrag();
  s.pwd = leg_->pwd();
  s.renomination = false;  // §4.1: regular nomination (USE-CANDIDATE) only
  s.fingerprints.push_back({"sha-256", outgoing_ ? "actpass" : "passive", leg_->fingerprint()});
  send_message(serialize(s));
  setup_sent_ = true;
  on_setup_exchanged();
  for (const auto& c : local_candidates_)
    send_message(serialize(Candidates{{c}}));
  local_candidates_.clear();
}

void CallEngine::send_offer() {
  if (offer_sent_) return;
  offer_sent_ = true;
  NegotiateChannels o;
  offer_id_ = random_u32();
  o.exchange_id = offer_id_;
  MediaContent audio;
  audio.type = "audio";
  audio.ssrc = ssrc_;
  audio.payload_types.push_back(opus_payload_type(111));
  o.contents.push_back(std::move(audio));
  send_message(serialize(o));
}

void CallEngine::send_media_state() {
  // §4.6: on the data channel once it opens; esg never mutes.
  MediaState m;
  if (leg_ && leg_->send_text(serialize(m))) media_state_sent_ = true;
}

void CallEngine::on_candidate(const std::string& sdp) {
  if (!setup_sent_) {
    if (local_candidates_.size() < kMaxEarlyCandidates) local_candidates_.push_back(sdp);
    return;
  }
  send_message(serialize(Candidates{{sdp}}));
}

void CallEngine::on_message(const std::string& text) {
  if (stopped_) return;
  auto m = parse_message(text);
  if (!m) {
    ++ignored_messages_;
    log::call("telegram", spdlog::level::debug, options_.call_id, "signaling message ignored: {}",
              m.error());
    return;
  }
  if (auto* s = std::get_if<InitialSetup>(&*m)) {
    on_initial_setup(*s);
  } else if (auto* c = std::get_if<Candidates>(&*m)) {
    for (const auto& sdp : c->sdp_strings) {
      if (!remote_setup_) {
        if (remote_candidates_.size() < kMaxEarlyCandidates) remote_candidates_.push_back(sdp);
        continue;
      }
      if (auto cand = media::ice::Candidate::parse(sdp)) leg_->add_remote_candidate(*cand);
    }
  } else if (auto* n = std::get_if<NegotiateChannels>(&*m)) {
    on_negotiate(*n);
  } else if (auto* st = std::get_if<MediaState>(&*m)) {
    if (st->muted != remote_muted_)
      log::call("telegram", spdlog::level::info, options_.call_id, "the Telegram user {}",
                st->muted ? "muted the microphone" : "unmuted the microphone");
    remote_muted_ = st->muted;
  }
}

void CallEngine::on_initial_setup(const InitialSetup& m) {
  if (remote_setup_) return;  // tgcalls sends it once; no ICE restart is used (§4.1)
  if (m.fingerprints.empty()) {
    ++ignored_messages_;
    return;
  }
  const auto& fp = m.fingerprints.front();
  if (!leg_->set_remote(m.ufrag, m.pwd, fp.hash, fp.fingerprint, fp.setup)) {
    ++ignored_messages_;
    log::call("telegram", spdlog::level::warn, options_.call_id,
              "InitialSetup refused (setup '{}')", fp.setup);
    return;
  }
  remote_setup_ = true;
  on_setup_exchanged();
  for (const auto& sdp : remote_candidates_)
    if (auto cand = media::ice::Candidate::parse(sdp)) leg_->add_remote_candidate(*cand);
  remote_candidates_.clear();
  if (!outgoing_) {
    send_initial_setup();
  } else {
    send_offer();
  }
}

void CallEngine::on_negotiate(const NegotiateChannels& m) {
  if (offer_sent_ && !answered_ && m.exchange_id == offer_id_) {
    // The answer to our offer: we send as it says (§3.3).
    answered_ = true;
    for (const auto& c : m.contents) {
      if (c.type != "audio") continue;
      for (const auto& p : c.payload_types)
        if (is_opus(p) && p.id < 128) {
          out_pt_ = int(p.id);
          break;
        }
    }
    if (out_pt_ < 0)
      log::call("telegram", spdlog::level::warn, options_.call_id,
                "the peer's answer has no Opus: esg sends no audio");
    emit("signaling", {{"step", "offer/answer done"}, {"opus_pt", out_pt_}});
    return;
  }
  if (outgoing_ && offer_sent_ && !answered_) return;  // a collision: the caller wins (§3.3)
  // The peer's offer: answer with its audio content, Opus only, no extensions.
  NegotiateChannels a;
  a.exchange_id = m.exchange_id;
  for (const auto& c : m.contents) {
    if (c.type != "audio") continue;
    MediaContent r;
    r.type = "audio";
    r.ssrc = c.ssrc;  // the offerer's (§9 item 6)
    for (const auto& p : c.payload_types) {
      if (!is_opus(p) || p.id >= 128) continue;
      r.payload_types.push_back(p);
      r.payload_types.back().feedback_types.clear();
      if (std::find(in_pts_.begin(), in_pts_.end(), uint8_t(p.id)) == in_pts_.end())
        in_pts_.push_back(uint8_t(p.id));
      break;
    }
    a.contents.push_back(std::move(r));
    break;
  }
  send_message(serialize(a));
  if (!outgoing_) send_offer();  // §3.2 step 5: the callee offers after answering
}

void CallEngine::on_leg_state() {
  const auto now = Clock::now();
  if (!connection_.begun()) connection_.begin(started_at_);
  if (leg_->connected()) {
    if (lost_since_) {
      log::call("telegram", spdlog::level::info, options_.call_id,
                "Telegram call media connected ({} ms)",
                std::chrono::duration_cast<milliseconds>(now - *lost_since_).count());
    }
    lost_since_.reset();
    if (!connected_at_) connected_at_ = now;
  } else if (!lost_since_) {
    // The path was lost when the peer was last heard, not when ICE noticed (its consent gives
    // up kConsentTimeout after the last answer): the 20 s rule counts from the loss itself, so
    // an outage of 21 s ends the call and one of 19 s does not, however late the loss showed
    // (issue 22). Heard: the latest of its last SRTP packet (to within a frame while the user
    // talks) and the last consent answer (a muted user sends no RTP).
    lost_since_ = now;
    if (connected_at_) {
      lost_since_ = std::clamp(std::max(last_heard_, now - media::ice::Agent::kConsentTimeout),
                               *connected_at_, now);
    }
    log::call("telegram", spdlog::level::info, options_.call_id, "Telegram call media path lost");
  }
  const auto change = connection_.on_path(leg_->connected(), now);
  if (change != ConnectionRecord::Change::None) {
    const json l = leg_->status();
    const json path = l.value("path", json());
    if (change == ConnectionRecord::Change::Connected) {
      emit("connected", {{"path", path},
                         {"version", version_},
                         {"connect_ms", connection_.connect_ms()},
                         {"reflector_id", l.value("reflector_id", json())},
                         {"local_candidate", l.value("local_candidate", json())},
                         {"remote_candidate", l.value("remote_candidate", json())}});
    } else if (change == ConnectionRecord::Change::Reconnecting) {
      emit("reconnecting", {{"at_ms", connection_.recent().back().at_ms}});
    } else {
      const int64_t d = connection_.recent().empty() ? -1 : connection_.recent().back().duration_ms;
      emit("reconnected", {{"duration_ms", d}, {"path", path}});
    }
  }
  if (leg_->state() == media::WebRtcLeg::State::Failed) {
    connection_.end("transport_failed", true, now);
    fail("media transport failed");
  }
}

void CallEngine::on_setup_exchanged() {
  if (setup_exchanged_ || !setup_sent_ || !remote_setup_) return;
  setup_exchanged_ = true;
  emit("signaling", {{"step", "InitialSetup both ways"}});
}

void CallEngine::emit(std::string_view event, const json& detail) {
  if (on_event) on_event(event, detail);
}

void CallEngine::send(std::string_view opus) {
  if (stopped_ || !leg_ || !leg_->connected() || out_pt_ < 0 || opus.empty()) return;
  std::string p;
  p.reserve(12 + opus.size() + 16);
  p += char(0x80);
  p += char((first_packet_ ? 0x80 : 0) | out_pt_);
  put16(p, seq_);
  put32(p, ts_);
  put32(p, ssrc_);
  p.append(opus);
  const int samples =
      opus_packet_get_nb_samples(reinterpret_cast<const unsigned char*>(opus.data()),
                                 opus_int32(opus.size()), opus_int32(kOpusClock));
  if (leg_->send_rtp(p)) {
    first_packet_ = false;
    ++packets_out_;
    octets_out_ += opus.size();
  }
  ++seq_;
  ts_ += uint32_t(samples > 0 ? samples : 960);
}

void CallEngine::on_rtp(std::string_view p) {
  auto h = media::parse_rtp(p);
  if (!h) return;
  if (!in_pts_.empty() &&
      std::find(in_pts_.begin(), in_pts_.end(), h->payload_type) == in_pts_.end())
    return;
  const auto* b = reinterpret_cast<const uint8_t*>(p.data());
  size_t at = 12 + size_t(b[0] & 0x0F) * 4;
  if (b[0] & 0x10) {  // header extensions (abs-send-time, transport-cc): skipped
    if (at + 4 > p.size()) return;
    at += 4 + size_t(b[at + 2] << 8 | b[at + 3]) * 4;
  }
  size_t end = p.size();
  if (b[0] & 0x20) {  // padding
    if (end == 0 || b[end - 1] > end - at) return;
    end -= b[end - 1];
  }
  if (at >= end) return;
  const auto now = Clock::now();
  const uint32_t arrival =
      uint32_t(std::chrono::duration_cast<milliseconds>(now - started_at_).count() * 48);
  rx_.on_packet(*h, arrival);
  last_rtp_ = last_heard_ = now;
  if (frames_in_++ == 0 && connected_at_)
    first_audio_ms_ = std::chrono::duration_cast<milliseconds>(now - *connected_at_);
  // Through the jitter buffer: the frames go on at the pace of its slots (playout_tick).
  const std::string_view payload = p.substr(at, end - at);
  const int samples =
      opus_packet_get_nb_samples(reinterpret_cast<const unsigned char*>(payload.data()),
                                 opus_int32(payload.size()), opus_int32(kOpusClock));
  jitter_.push({h->seq, h->timestamp, h->ssrc, samples > 0 ? uint32_t(samples) : 0, payload}, now);
  arm_playout();
}

void CallEngine::arm_playout() {
  if (playout_armed_ || stopped_) return;
  const auto at = jitter_.next_due();
  if (!at) return;
  playout_armed_ = true;
  playout_timer_.expires_at(*at);
  std::weak_ptr<bool> alive = alive_;
  playout_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (ec || alive.expired()) return;
    playout_armed_ = false;
    playout_tick();
  });
}

void CallEngine::playout_tick() {
  if (stopped_) return;
  const auto now = Clock::now();
  jitter_.poll(now, [this, now](const JitterBuffer::Frame& f) { play(f, now); });
  arm_playout();
}

void CallEngine::play(const JitterBuffer::Frame& f, Clock::time_point now) {
  // Nothing from Telegram for a while (muted, or the path is down): the missing slots become
  // Opus silence, so the PBX leg keeps a stream; a missing frame mid-speech is left to the
  // relay's concealment (FEC or PLC).
  if (f.missing() && now - last_rtp_ > kSilenceAfter) {
    send_silence(f.timestamp, f.samples);
    return;
  }
  if (!f.missing()) {
    missing_run_ = 0;
  } else if (missing_run_ + f.samples > kOpusClock * media::kMaxConcealMs / 1000) {
    // Packets come but late (the path's delay jumped beyond the buffer's ceiling), or many are
    // lost in a row: the relay conceals only the first media::kMaxConcealMs of a gap and jumps
    // over the rest without packets, so the rest goes as silence and the PBX's stream keeps
    // its pace (PLC would have faded to silence by then too).
    missing_run_ += f.samples;
    ++silenced_;
    send_silence(f.timestamp, f.samples);
    return;
  } else {
    missing_run_ += f.samples;
    ++concealed_;
  }
  if (on_frame) on_frame(AudioFrame{f.timestamp, f.samples, f.payload});
}

// Opus silence of any length in 2.5 ms steps: code 3 packets (RFC 6716 §3.2.5) of CELT frames
// that decode to zeros, up to 120 ms each.
void CallEngine::send_silence(uint32_t timestamp, uint32_t samples) {
  while (samples > 0 && on_frame) {
    const uint32_t chunk = std::min<uint32_t>(samples, 5760);
    uint32_t frame = 960;
    int config = 31;  // CELT fullband 20 ms; then 10, 5, 2.5 ms
    while (frame > 120 && (chunk % frame != 0 || chunk / frame > 48)) {
      frame /= 2;
      --config;
    }
    const uint32_t count = chunk / frame;
    if (count == 0) break;
    char packet[2 + 2 * 48];
    size_t size = 0;
    if (count == 1) {
      packet[size++] = char(config << 3);  // one frame: code 0, as kOpusSilence
    } else {
      packet[size++] = char(config << 3 | 3);
      packet[size++] = char(count);
    }
    for (uint32_t i = 0; i < count; ++i) {
      packet[size++] = char(0xFF);
      packet[size++] = char(0xFE);
    }
    on_frame(AudioFrame{timestamp, count * frame, std::string_view(packet, size)});
    timestamp += count * frame;
    samples -= count * frame;
  }
}

void CallEngine::on_rtcp(std::string_view p) {
  last_heard_ = Clock::now();  // authenticated by SRTCP: the path works
  if (auto r = media::parse_report(p)) remote_report_ = r;
}

// RFC 3550 §6.4.1: a sender report with one block about what the peer sends, every 5 s.
void CallEngine::send_report() {
  if (!leg_ || !leg_->connected()) return;
  const bool have_rx = rx_.expected() > 0;
  std::string r;
  r += char(0x80 | (have_rx ? 1 : 0));
  r += char(200);
  put16(r, uint16_t(have_rx ? 12 : 6));
  put32(r, ssrc_);
  const auto wall = std::chrono::system_clock::now().time_since_epoch();
  const uint64_t us = uint64_t(std::chrono::duration_cast<std::chrono::microseconds>(wall).count());
  const uint64_t secs = us / 1000000 + 2208988800ULL;
  put32(r, uint32_t(secs));
  put32(r, uint32_t((us % 1000000) * 4294967296ULL / 1000000));
  put32(r, ts_);
  put32(r, uint32_t(packets_out_));
  put32(r, uint32_t(octets_out_));
  if (have_rx) {
    put32(r, rx_.ssrc());
    const int64_t lost = std::max<int64_t>(0, rx_.lost());
    const uint8_t fraction = uint8_t(
        std::min<int64_t>(255, lost * 256 / int64_t(std::max<uint64_t>(1, rx_.expected()))));
    put32(r, uint32_t(fraction) << 24 | uint32_t(std::min<int64_t>(lost, 0x7FFFFF)));
    put32(r, uint32_t(rx_.expected()));  // extended highest sequence (approximately)
    put32(r, uint32_t(rx_.jitter_units()));
    put32(r, 0);  // LSR: we keep no peer SR times; RTT comes from ICE
    put32(r, 0);
  }
  leg_->send_rtcp(r);
}

void CallEngine::second_tick() {
  if (stopped_) return;
  const auto now = Clock::now();
  if (lost_since_ && now - *lost_since_ > options_.connect_timeout) {
    // The 20 s rule, marked as such for the CDR and the metrics (issue 22).
    connection_.end("no_path_20s", true, now);
    fail("no media path for " +
         std::to_string(
             std::chrono::duration_cast<std::chrono::seconds>(options_.connect_timeout).count()) +
         " s");
    return;
  }
  // Silence towards the PBX while Telegram sends nothing (muted, or a short loss of the path).
  // Once audio has come, the jitter buffer's slots carry the silence (play()).
  if (!silence_on_ && connected_at_ && !jitter_.started() && now - last_rtp_ > kSilenceAfter) {
    silence_on_ = true;
    silence_at_ = now;
    silence_tick();
  }
  if (connected_at_ && (now - *connected_at_) % kReportEvery < std::chrono::seconds(1))
    send_report();
  second_timer_.expires_after(std::chrono::seconds(1));
  std::weak_ptr<bool> alive = alive_;
  second_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (!ec && !alive.expired()) second_tick();
  });
}

void CallEngine::silence_tick() {
  if (stopped_) return;
  if (jitter_.started()) {
    silence_on_ = false;
    return;
  }
  if (on_frame)
    on_frame(AudioFrame{silence_ts_, 960, std::string_view(kOpusSilence, sizeof kOpusSilence)});
  silence_ts_ += 960;
  // Paced from the start, not from each wake-up: 50 frames a second, not fewer.
  silence_at_ += milliseconds(20);
  silence_timer_.expires_at(silence_at_);
  std::weak_ptr<bool> alive = alive_;
  silence_timer_.async_wait([this, alive](boost::system::error_code ec) {
    if (!ec && !alive.expired()) silence_tick();
  });
}

void CallEngine::fail(const std::string& why) {
  if (stopped_ || failing_) return;
  failing_ = true;
  log::call("telegram", spdlog::level::warn, options_.call_id, "Telegram call media: {}", why);
  connection_.end("failed", true, Clock::now());  // unless a more precise reason came first
  emit("failed", {{"why", why}, {"ended_by", connection_.ended_by()}});
  // Later, not here: a failure may be reported from deep inside the leg (a DTLS alert while it
  // handles a datagram), and stopping destroys the leg.
  std::weak_ptr<bool> alive = alive_;
  asio::post(io_, [this, alive, why] {
    if (alive.expired() || stopped_) return;
    auto cb = on_failed;
    stop();
    if (cb) cb(why);
  });
}

void CallEngine::stop() {
  if (stopped_) return;
  stopped_ = true;
  *alive_ = false;
  boost::system::error_code ec;
  signaling_timer_.cancel();
  second_timer_.cancel();
  silence_timer_.cancel();
  playout_timer_.cancel();
  connection_.end("hangup", false, Clock::now());  // unless it failed first
  if (leg_) last_leg_status_ = leg_->status();
  leg_.reset();
}

json CallEngine::status() const {
  json j = {{"version", version_},
            {"emojis", emojis_},
            {"remote_muted", remote_muted_},
            {"frames_in", frames_in_},
            {"packets_out", packets_out_}};
  if (leg_) {
    const json l = leg_->status();
    for (auto it = l.begin(); it != l.end(); ++it)
      j[it.key()] = it.value();
  } else if (last_leg_status_.is_object()) {
    for (auto it = last_leg_status_.begin(); it != last_leg_status_.end(); ++it)
      j[it.key()] = it.value();
  }
  // The leg's own word (new, connecting, disconnected...) gives way to the call's: connecting
  // (never connected yet), connected, reconnecting, failed, ended (issue 22).
  if (started_) {
    j.update(connection_.to_json(Clock::now()));
  } else {
    j["state"] = stopped_ ? "ended" : "new";
  }
  if (rx_.expected() > 0)
    j["loss"] = double(std::max<int64_t>(0, rx_.lost())) / double(rx_.expected());
  // The received audio (issue 22): RFC 3550 interarrival jitter, the jitter buffer's target
  // delay, packets too late for it, frames the relay concealed (lost or late).
  const auto& jb = jitter_.counters();
  j["jitter_ms"] = rx_.jitter_units() / double(kOpusClock / 1000);
  j["jitter_buffer_ms"] = jitter_.target().count();
  j["late"] = jb.late;
  j["concealed"] = concealed_;
  j["silenced"] = silenced_;
  j["jitter_buffer"] = {{"delay_ms", jitter_.delay().count()},
                        {"duplicates", jb.duplicates},
                        {"skipped", jb.skipped},
                        {"inserted", jb.inserted},
                        {"restarts", jb.restarts},
                        {"early", jb.early}};
  if (remote_report_) j["remote_loss"] = double(remote_report_->fraction_lost) / 256.0;
  if (first_audio_ms_.count() >= 0) j["first_audio_ms"] = first_audio_ms_.count();
  if (signaling_) {
    const auto& c = signaling_->counters();
    j["signaling"] = {{"sent", c.sent},
                      {"received", c.received},
                      {"resent", c.resent},
                      {"dropped", c.undecryptable + c.malformed + c.replayed + c.oversized},
                      {"undecryptable", c.undecryptable},
                      {"ignored", ignored_messages_}};
  }
  j["skipped_tcp_reflectors"] = skipped_tcp_reflectors_;
  if (started_) j["custom_parameters"] = custom_parameters_;
  return j;
}

}  // namespace esg::telegram::calls
