// The record of a call: what the monitoring API shows of it and its CDR.
#include "base/json_writer.hpp"
#include "edge/b2bua/call.hpp"
#include "edge/b2bua/text.hpp"

namespace esg::edge {

using nlohmann::json;

namespace {
// Call::State as the calls API names it, and as a CDR counts it.
const char* const kStates[] = {"routing", "calling", "early", "answered", "confirmed", "ended"};
const char* const kCdrStates[] = {"active", "active", "active", "answered", "answered", "ended"};
}  // namespace

// A Telegram call's fields that matter once it is over (the calls API has the rest): what
// carried it, how long it took to connect, how often and how long it lost its path, how it
// ended ("no_path_20s": the 20 s rule). The Telegram side ended by the SIP side's hangup has
// not said so yet when the record is written: then it ended by hangup.
json telegram_cdr_fields(const json& t) {
  static const char* kKeys[] = {"version",
                                "path",
                                "reflector_id",
                                "local_candidate",
                                "remote_candidate",
                                "connect_ms",
                                "reconnection_count",
                                "reconnecting_ms",
                                "loss",
                                "remote_loss",
                                "rtt_ms",
                                "jitter_ms",
                                "late",
                                "concealed",
                                "silenced",
                                "state",
                                "ended_by",
                                "custom_parameters",
                                "autoanswer",
                                "gateway_answered_at",
                                "pbx_answered_at",

                                "chat_sent"};
  json out = json::object();
  if (!t.is_object()) return out;
  for (const char* k : kKeys) {
    auto it = t.find(k);
    if (it != t.end() && !it->is_null()) out[k] = *it;
  }
  if (!out.contains("ended_by")) out["ended_by"] = "hangup";
  return out;
}

// Written directly as text (JsonWriter), not built as a tree and dumped: a record is written
// seven times a call (four for the board, three CDRs), and the trees were a fifth of esg's CPU
// at 1,500 calls/s (issue 24). Members sorted as a nlohmann object sorts them. The CDR (`cdr`)
// has the end's members too, and its state as the CDR counts it.
std::string B2bua::record_text(const Call& c, size_t worker, bool decisions, bool cdr,
                               const json* telegram) {
  std::string out;
  out.reserve(768);
  JsonWriter w(out);
  auto leg = [&](const Leg& l) {
    w.begin_object().key("call_id").value(l.call_id).key("code").value(l.code);
    w.key("session_timer");
    if (l.session && l.session->running()) {
      w.begin_object().key("refresher").value(l.esg_refreshes ? "esg" : "peer");
      w.key("seconds").value(l.session_seconds).end_object();
    } else {
      w.null();
    }
    w.end_object();
  };
  auto pair = [&](const std::string& received, const std::string& sent) {
    w.begin_object().key("received").value(received).key("sent").value(sent).end_object();
  };
  w.begin_object();
  w.key("a");
  leg(c.a);
  w.key("answered").value(c.answered);
  w.key("b");
  leg(c.b);
  w.key("called");
  pair(c.received.ruri_user, c.normalized.ruri_user);
  w.key("caller");
  pair(c.received.from_user, c.normalized.from_user);
  w.key("decisions").begin_array();
  if (decisions) {
    for (const auto& d : c.decisions)
      w.value(d);
  }
  w.end_array();
  w.key("direction").value(c.out ? "out" : "in");
  if (cdr) {
    w.key("duration").value(c.answered && c.ended ? double(c.ended - c.answered) / 1000.0 : 0.0);
    w.key("ended").value(c.ended);
    w.key("hangup_by").value(c.hangup_by);
  }
  w.key("id").value(c.id);
  w.key("media");
  if (c.media) {
    w.value(c.media->stats());
  } else {
    w.null();
  }
  w.key("pbx").value(c.out ? c.a.code : c.target_code);
  w.key("provider").value(c.out ? c.target_code : c.a.code);
  if (cdr) w.key("reason").value(c.end_reason);
  w.key("started").value(c.started);
  w.key("state").value((cdr ? kCdrStates : kStates)[size_t(c.state)]);
  if (cdr) {
    w.key("status").value(c.final_status);
    if (telegram) w.key("telegram").value(telegram_cdr_fields(*telegram));
  }
  w.key("to_domain").value(c.received.to_domain);
  w.key("worker").value(worker);
  w.end_object();
  return out;
}

store::Cdr B2bua::cdr_of(const Call& c, size_t worker, bool last, const json* telegram) {
  store::Cdr cdr;
  cdr.call_id = c.id;
  cdr.started_ms = c.started;
  cdr.state = kCdrStates[size_t(c.state)];
  cdr.caller = c.received.from_user + " " + c.normalized.from_user;
  cdr.called = c.received.ruri_user + " " + c.normalized.ruri_user;
  cdr.data = record_text(c, worker, last, true, telegram);
  return cdr;
}

json B2bua::event_of(const Call& c) {
  const bool answered = c.answered != 0;
  const bool to_telegram = c.target_kind == "telegram";
  json j = {{"call_id", c.id},
            {"direction", c.out ? "out" : "in"},
            {"caller", {{"received", c.received.from_user}, {"sent", c.normalized.from_user}}},
            {"called", {{"received", c.received.ruri_user}, {"sent", c.normalized.ruri_user}}},
            {"started", c.started},
            {"answered", answered ? json(c.answered) : json()},
            {"ended", c.ended ? json(c.ended) : json()}};
  // Which external line carries the call: a provider account or a Telegram line.
  const std::string line = c.out ? c.target_code : c.a.code;
  if (c.from_telegram || to_telegram) {
    j["line"] = line;
    j["provider"] = nullptr;
  } else {
    j["provider"] = line;
    j["line"] = nullptr;
  }
  j["pbx"] = c.out ? c.a.code : c.target_code;
  if (c.tg_user.is_object() || c.from_telegram || to_telegram) {
    json user = c.tg_user.is_object() ? c.tg_user : json::object();
    // A Telegram user id is a number; the header carries it as text.
    if (auto it = user.find("id"); it != user.end() && it->is_string()) {
      const std::string s = it->get<std::string>();
      if (!s.empty() && s.size() < 19 && s.find_first_not_of("0123456789") == std::string::npos)
        *it = std::stoll(s);
    }
    j["telegram"] = {{"user", user}};
  } else {
    j["telegram"] = nullptr;
  }
  if (c.state == Call::State::Ended) {
    const int64_t rang_until = answered ? c.answered : c.ended;
    j["ring_duration"] = double(rang_until - c.started) / 1000.0;
    j["duration"] = answered ? double(c.ended - c.answered) / 1000.0 : 0.0;
    std::string result = "failed";
    const uint16_t s = c.final_status;
    if (answered) {
      result = "answered";
    } else if (c.cancelled) {
      result = "cancelled";
    } else if (s == 486 || s == 600) {
      result = "busy";
    } else if (s == 408 || s == 480 || s == 487) {
      result = "no_answer";
    } else if (s >= 400 && s < 700) {
      result = "rejected";
    }
    j["result"] = result;
    j["status"] = s;
    j["hangup_by"] = c.hangup_by;
    j["reason"] = c.end_reason;
    // The Reason header (RFC 3326) of the failure the caller was given, when there was one.
    std::string header;
    for (size_t at = 0; at < c.last_headers.size();) {
      size_t eol = c.last_headers.find("\r\n", at);
      if (eol == std::string::npos) eol = c.last_headers.size();
      const std::string_view l(c.last_headers.data() + at, eol - at);
      if (l.size() > 7 && b2bua_text::lower(l.substr(0, 7)) == "reason:") {
        const size_t v = l.find_first_not_of(' ', 7);
        header = std::string(l.substr(v == std::string_view::npos ? l.size() : v));
      }
      at = eol + 2;
    }
    j["sip_reason"] = header.empty() ? json() : json(header);
  } else if (answered) {
    j["ring_duration"] = double(c.answered - c.started) / 1000.0;
    j["status"] = c.final_status;
  }
  return j;
}

}  // namespace esg::edge
