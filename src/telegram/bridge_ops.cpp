// CallBridge: what the operator is shown of a Telegram call (issue 22): the Telegram lane of
// the call's diagram (TDLib's call states and the media engine's events) and the counters of
// /metrics.
#include <algorithm>
#include <string>

#include "base/json_text.hpp"
#include "telegram/bridge.hpp"
#include "telegram/bridge_call.hpp"

namespace esg::telegram {

using namespace bridge_detail;

namespace {

// A call's events on its diagram: the packet index keeps a call's last 200 packets, and a call
// that loses its path again and again must not push its SIP packets out with its events.
constexpr int kMaxLaneEvents = 48;

// Bounds of the connect time histogram, in seconds (the last one is +Inf).
constexpr double kConnectBucketsS[] = {0.1, 0.25, 0.5, 1, 2, 5, 10, 20};

std::string text_of(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.is_null() ? std::string() : json_text(j);
}

// TDLib's call state as the lane shows it; empty for a state it does not know.
std::string state_text(const json& call) {
  const json st = call.value("state", json::object());
  std::string type = st.is_object() ? st.value("@type", "") : "";
  if (type == "callStatePending") {
    // is_received: the call reached the other side (an outgoing call rings there).
    if (st.value("is_received", false)) return "pending, ringing (is_received)";
    return st.value("is_created", false) ? "pending (is_created)" : "pending";
  }
  if (type == "callStateExchangingKeys") return "exchanging keys";
  if (type == "callStateReady") return "ready";
  if (type == "callStateHangingUp") return "hanging up";
  if (type == "callStateDiscarded") {
    const json reason = st.value("reason", json::object());
    return "discarded: " + (reason.is_object() ? reason.value("@type", "") : std::string());
  }
  if (type == "callStateError") {
    const json e = st.value("error", json::object());
    return "error: " + (e.is_object() ? e.value("message", "") : std::string());
  }
  return type;
}

}  // namespace

void CallBridge::lane(Call& c, const std::string& text) {
  if (!options_.lane || c.call_id.empty() || c.lane_events > kMaxLaneEvents) return;
  ++c.lane_events;
  options_.lane(c.call_id, c.lane_events > kMaxLaneEvents
                               ? "(more events of this call are not shown)"
                               : one_line(text));
}

void CallBridge::on_call_lane(Call& c, const json& call) {
  std::string s = state_text(call);
  if (s.empty() || s == c.lane_state) return;  // TDLib repeats a state when other fields change
  c.lane_state = s;
  lane(c, "updateCall " + s);
}

void CallBridge::on_media_event(const std::shared_ptr<Call>& c, std::string_view event,
                                const json& d) {
  std::string text = "engine " + std::string(event);
  auto& m = media_counters_;
  if (event == "signaling") {
    text += ": " + text_of(d.value("step", json()));
  } else if (event == "connected") {
    const std::string path = text_of(d.value("path", json()));
    const std::string version = text_of(d.value("version", json()));
    const int64_t ms = d.value("connect_ms", int64_t(0));
    text += ": path " + path;
    if (d.contains("reflector_id") && !d["reflector_id"].is_null())
      text += " (reflector " + text_of(d["reflector_id"]) + ")";
    text += ", version " + version + ", " + std::to_string(ms) + " ms after the start";
    // Bounded: the path names and versions are the engine's own few words.
    if (m.connected.size() < 64 || m.connected.count({path, version}))
      ++m.connected[{path, version}];
    size_t b = 0;
    while (b < std::size(kConnectBucketsS) && double(ms) / 1000.0 > kConnectBucketsS[b])
      ++b;
    ++m.connect_buckets[b];
    m.connect_ms_sum += ms;
  } else if (event == "reconnecting") {
    text += ": the path is lost";
    ++m.reconnections;
  } else if (event == "reconnected") {
    text += ": after " + std::to_string(d.value("duration_ms", int64_t(0))) + " ms, path " +
            text_of(d.value("path", json()));
  } else if (event == "failed") {
    const std::string by = text_of(d.value("ended_by", json()));
    text += ": " + text_of(d.value("why", json())) + " (" + by + ")";
    if (by == "no_path_20s") ++m.no_path_20s;
  }
  lane(*c, text);
  publish_status();
}

void CallBridge::count_ended_media(const json& status) {
  const json sig = status.value("signaling", json::object());
  if (sig.is_object()) media_counters_.undecryptable += sig.value("undecryptable", uint64_t(0));
  const json skipped = status.value("skipped_tcp_reflectors", json());
  if (skipped.is_number_unsigned())
    media_counters_.skipped_tcp_reflectors += skipped.get<uint64_t>();
  // Or the list of the reflectors skipped, one each.
  if (skipped.is_array()) media_counters_.skipped_tcp_reflectors += skipped.size();
}

json CallBridge::media_counters() const {
  const auto& m = media_counters_;
  json connected = json::array();
  for (const auto& [k, n] : m.connected)
    connected.push_back({{"path", k.first}, {"version", k.second}, {"calls", n}});
  return {{"connected", connected},
          {"connect_buckets", m.connect_buckets},
          {"connect_ms_sum", m.connect_ms_sum},
          {"reconnections", m.reconnections},
          {"no_path_20s", m.no_path_20s},
          {"signaling_undecryptable", m.undecryptable},
          {"skipped_tcp_reflectors", m.skipped_tcp_reflectors}};
}

}  // namespace esg::telegram
