#include "telegram/calls/connection.hpp"

#include <algorithm>

namespace esg::telegram::calls {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

void ConnectionRecord::begin(Clock::time_point now) {
  begun_ = true;
  started_ = now;
}

int64_t ConnectionRecord::since_start(Clock::time_point t) const {
  return std::max<int64_t>(0, duration_cast<milliseconds>(t - started_).count());
}

ConnectionRecord::Change ConnectionRecord::on_path(bool up, Clock::time_point now) {
  if (ended_) return Change::None;
  if (up) {
    if (state_ == State::Connecting) {
      state_ = State::Connected;
      connect_ms_ = since_start(now);
      return Change::Connected;
    }
    if (state_ != State::Reconnecting) return Change::None;
    state_ = State::Connected;
    const int64_t d = std::max<int64_t>(0, duration_cast<milliseconds>(now - lost_at_).count());
    total_ms_ += d;
    // The loss in progress is the newest one kept, unless more came than the list keeps and it
    // was pushed out (then only the total knows it).
    if (!recent_.empty() && recent_.back().duration_ms < 0) recent_.back().duration_ms = d;
    return Change::Reconnected;
  }
  if (state_ != State::Connected) return Change::None;  // not connected yet: still connecting
  state_ = State::Reconnecting;
  lost_at_ = now;
  ++count_;
  if (recent_.size() == kMaxReconnections) recent_.pop_front();
  recent_.push_back({since_start(now), -1});
  return Change::Reconnecting;
}

void ConnectionRecord::end(std::string_view ended_by, bool failed, Clock::time_point now) {
  if (ended_) return;
  ended_ = true;
  ended_at_ = now;
  ended_by_ = std::string(ended_by);
  if (state_ == State::Reconnecting)
    total_ms_ += std::max<int64_t>(0, duration_cast<milliseconds>(now - lost_at_).count());
  state_ = failed ? State::Failed : State::Ended;
}

int64_t ConnectionRecord::reconnecting_ms(Clock::time_point now) const {
  if (ended_ || state_ != State::Reconnecting) return total_ms_;
  return total_ms_ + std::max<int64_t>(0, duration_cast<milliseconds>(now - lost_at_).count());
}

const char* ConnectionRecord::name(State s) {
  switch (s) {
    case State::Connecting:
      return "connecting";
    case State::Connected:
      return "connected";
    case State::Reconnecting:
      return "reconnecting";
    case State::Failed:
      return "failed";
    case State::Ended:
      return "ended";
  }
  return "connecting";
}

nlohmann::json ConnectionRecord::to_json(Clock::time_point now) const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& r : recent_) {
    nlohmann::json one = {{"at_ms", r.at_ms}};
    if (r.duration_ms >= 0) one["duration_ms"] = r.duration_ms;
    list.push_back(std::move(one));
  }
  nlohmann::json j = {{"state", name(state_)},
                      {"reconnections", std::move(list)},
                      {"reconnection_count", count_},
                      {"reconnecting_ms", reconnecting_ms(now)}};
  if (connect_ms_ >= 0) j["connect_ms"] = connect_ms_;
  if (!ended_by_.empty()) j["ended_by"] = ended_by_;
  return j;
}

}  // namespace esg::telegram::calls
