#pragma once
// What the operator is shown of a Telegram call's connection (issue 22): its state as one word,
// the time it took to connect, each loss of the path and how long it lasted, and why it ended.
// Sans-IO: the engine reports the leg's "connected or not" with the time, and reads the record
// back for the calls API and the CDR; tested on a simulated clock.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace esg::telegram::calls {

class ConnectionRecord {
 public:
  using Clock = std::chrono::steady_clock;
  // The reconnections kept with their times (the count goes on past it): a call on a bad
  // network must not grow its status without bound.
  static constexpr size_t kMaxReconnections = 20;

  enum class State : uint8_t { Connecting, Connected, Reconnecting, Failed, Ended };
  // What a report of the path changed.
  enum class Change : uint8_t { None, Connected, Reconnecting, Reconnected };
  struct Reconnection {
    int64_t at_ms = 0;         // since the start, when the path was lost
    int64_t duration_ms = -1;  // -1: not back (yet)
  };

  // The call's media starts: the times are counted from here.
  void begin(Clock::time_point now);
  bool begun() const { return begun_; }
  // The leg's path is up or not (each time the leg's state changes). Ignored once ended.
  Change on_path(bool up, Clock::time_point now);
  // The call's media ends: `ended_by` says why ("hangup", "no_path_20s", "transport_failed");
  // the first reason given stays (a failure is followed by the stop it causes).
  void end(std::string_view ended_by, bool failed, Clock::time_point now);

  State state() const { return state_; }
  static const char* name(State s);
  int64_t connect_ms() const { return connect_ms_; }  // -1: never connected
  uint64_t reconnections() const { return count_; }
  // Time spent reconnecting over the call (the loss in progress up to `now` or the end).
  int64_t reconnecting_ms(Clock::time_point now) const;
  const std::deque<Reconnection>& recent() const { return recent_; }
  const std::string& ended_by() const { return ended_by_; }
  // The fields of the calls API: state, connect_ms, reconnections (the recent ones),
  // reconnection_count, reconnecting_ms, ended_by.
  nlohmann::json to_json(Clock::time_point now) const;

 private:
  int64_t since_start(Clock::time_point t) const;

  bool begun_ = false;
  State state_ = State::Connecting;
  Clock::time_point started_{}, lost_at_{}, ended_at_{};
  bool ended_ = false;
  int64_t connect_ms_ = -1;
  uint64_t count_ = 0;
  int64_t total_ms_ = 0;  // of the reconnections that ended
  std::deque<Reconnection> recent_;
  std::string ended_by_;
};

}  // namespace esg::telegram::calls
