#include "dialog/session_timer.hpp"

#include <algorithm>

#include "base/text.hpp"
#include "dialog/reliable.hpp"

namespace esg::dialog {

namespace {

std::optional<uint32_t> min_se_of(const sip::Message& m) {
  const sip::HeaderField* h = m.header("Min-SE");
  if (!h) return std::nullopt;
  // Min-SE = delta-seconds *( SEMI generic-param )
  std::string_view v = h->value.substr(0, h->value.find(';'));
  auto n = text::parse_uint(text::trim(v), 0xffffffffu);
  if (!n) return std::nullopt;
  return uint32_t(*n);
}

}  // namespace

Result<SessionExpires, sip::ValueError> parse_session_expires(std::string_view value) {
  const size_t semi = value.find(';');
  auto n = text::parse_uint(text::trim(value.substr(0, semi)), 0xffffffffu);
  if (!n || *n == 0) return unexpected(sip::ValueError{"Session-Expires needs delta-seconds"});
  SessionExpires se{uint32_t(*n), Refresher::None};
  std::string_view params = semi == std::string_view::npos ? "" : value.substr(semi);
  while (!params.empty()) {
    params.remove_prefix(1);  // ';'
    const size_t next = params.find(';');
    std::string_view p = text::trim(params.substr(0, next));
    params = next == std::string_view::npos ? "" : params.substr(next);
    const size_t eq = p.find('=');
    if (!text::iequals(text::trim(p.substr(0, eq)), "refresher")) continue;
    if (eq == std::string_view::npos) return unexpected(sip::ValueError{"refresher needs a value"});
    std::string_view who = text::trim(p.substr(eq + 1));
    if (text::iequals(who, "uac")) {
      se.refresher = Refresher::Uac;
    } else if (text::iequals(who, "uas")) {
      se.refresher = Refresher::Uas;
    } else {
      return unexpected(sip::ValueError{"refresher must be uac or uas"});
    }
  }
  return se;
}

std::string format_session_expires(const SessionExpires& se) {
  std::string out = std::to_string(se.seconds);
  if (se.refresher == Refresher::Uac) out += ";refresher=uac";
  if (se.refresher == Refresher::Uas) out += ";refresher=uas";
  return out;
}

std::string UasSessionDecision::headers() const {
  if (reject) return "Min-SE: " + std::to_string(min_se) + "\r\n";
  std::string out;
  if (session) out += "Session-Expires: " + format_session_expires(*session) + "\r\n";
  if (require_timer) out += "Require: timer\r\n";
  return out;
}

UasSessionDecision uas_session(const sip::Message& request, const SessionTimerPolicy& policy) {
  UasSessionDecision d;
  const bool supports = has_option(request, sip::HeaderId::Supported, "timer");
  const uint32_t floor = std::max(policy.min_se, min_se_of(request).value_or(0));
  d.min_se = floor;
  const sip::HeaderField* h = request.header(sip::HeaderId::SessionExpires);
  std::optional<SessionExpires> asked;
  if (h) {
    if (auto se = parse_session_expires(h->value)) asked = *se;
  }
  if (asked) {
    // §9: "If the Session-Expires ... is lower than the Min-SE ... the UAS MUST reject with 422".
    if (asked->seconds < policy.min_se) {
      d.reject = 422;
      d.min_se = policy.min_se;
      return d;
    }
    SessionExpires answer = *asked;
    // The UAS may shorten the interval, never below the Min-SE in force.
    answer.seconds = std::max(floor, std::min(asked->seconds, policy.session_expires));
    // §9: a UAC that supports timers picks the refresher, or leaves it to us: uac is what it
    // can take; without support, only we can refresh.
    if (!supports) {
      answer.refresher = Refresher::Uas;
    } else if (answer.refresher == Refresher::None) {
      answer.refresher = Refresher::Uac;
    }
    d.session = answer;
    d.require_timer = supports;
    return d;
  }
  // No Session-Expires asked for: §9 lets the UAS insert one; we do, and refresh ourselves when
  // the UAC does not understand the extension, so a dead call still ends.
  d.session = SessionExpires{std::max(floor, policy.session_expires),
                             supports ? Refresher::Uac : Refresher::Uas};
  d.require_timer = supports;
  return d;
}

std::optional<SessionExpires> uac_session(const sip::Message& response,
                                          std::optional<uint32_t> requested) {
  const sip::HeaderField* h = response.header(sip::HeaderId::SessionExpires);
  if (h) {
    auto se = parse_session_expires(h->value);
    if (se) {
      // §7.2: no refresher in the answer means the UAC refreshes.
      if (se->refresher == Refresher::None) se->refresher = Refresher::Uac;
      return *se;
    }
  }
  // §7.2: when the 2xx has no Session-Expires, the UAS does not support the extension; a UAC
  // that wanted one runs it alone, as the refresher.
  if (requested) return SessionExpires{*requested, Refresher::Uac};
  return std::nullopt;
}

std::optional<uint32_t> retry_interval(const sip::Message& response_422, uint32_t requested) {
  auto min_se = min_se_of(response_422);
  if (!min_se) return std::nullopt;  // a 422 without Min-SE: nothing to retry with
  return std::max(*min_se, requested);
}

bool takes_update(const sip::Message& m, bool unknown) {
  if (!m.header(sip::HeaderId::Allow)) return unknown;
  return has_option(m, sip::HeaderId::Allow, "UPDATE");
}

std::string build_refresh(Dialog& d, std::string_view via, uint32_t seconds, bool update,
                          std::string_view sdp, std::string_view content_type) {
  const std::string extra =
      "Session-Expires: " + std::to_string(seconds) + ";refresher=uac\r\nSupported: timer\r\n";
  if (update) return d.build_request("UPDATE", via, 0, extra);
  return d.build_request("INVITE", via, 0, extra, sdp, content_type);
}

SessionTimer::SessionTimer(txn::Timers& timers, std::function<void()> on_refresh,
                           std::function<void()> on_expired)
    : timers_(timers), on_refresh_(std::move(on_refresh)), on_expired_(std::move(on_expired)) {}

SessionTimer::~SessionTimer() {
  stop();
}

void SessionTimer::start(uint32_t seconds, bool we_refresh) {
  stop();
  const txn::Millis interval = std::chrono::seconds(seconds);
  const txn::Millis margin = std::min<txn::Millis>(std::chrono::seconds(32), interval / 3);
  expiry_ = timers_.start(interval - margin, [this] {
    expiry_ = 0;
    if (timer_) timers_.stop(timer_);
    timer_ = 0;
    if (on_expired_) on_expired_();
  });
  if (we_refresh) {
    timer_ = timers_.start(interval / 2, [this] {
      timer_ = 0;
      if (on_refresh_) on_refresh_();
    });
  }
}

void SessionTimer::stop() {
  if (timer_) timers_.stop(timer_);
  if (expiry_) timers_.stop(expiry_);
  timer_ = expiry_ = 0;
}

}  // namespace esg::dialog
