#pragma once
// The Telegram lines of this instance (issue 8): one Line per enabled line in the store, each
// on a worker, all sharing one TDLib receive loop (td::Hub). Follows the store: a new or
// enabled line starts, a removed or disabled one closes, a change of its credentials restarts
// it. Each line's TDLib database lives in its own session folder under `telegram.sessions`.

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "telegram/line.hpp"
#include "telegram/line_config.hpp"
#include "telegram/sessions.hpp"
#include "telegram/td/tdjson.hpp"

namespace esg::telegram {

struct LinesOptions {
  std::string tdjson;    // path to libtdjson.so
  std::string sessions;  // the session store root
  // The worker a line lives on (by its id).
  std::function<boost::asio::io_context&(int64_t id)> worker;
  BridgeOptions bridge;  // where the lines' calls go into esg (its UDP SIP listener)
  PublishLine publish;   // each line's SIP side, for the B2BUA
  // `telegram.session_store: store` (issue 23): the lines' sessions also kept in the store,
  // restored before a line opens here; null: the folders only (`files`).
  std::shared_ptr<SessionStore> session_store;
  std::chrono::seconds session_snapshot{60};
  // The monitoring's `srvidx` of each line: this instance's for the lines it runs, and for the
  // others (standby here) the instance that runs them (0: none now), when `runner` is given.
  int64_t srvidx = 0;
  std::function<int64_t(int64_t id)> runner;
};

class Lines {
 public:
  explicit Lines(LinesOptions options);
  ~Lines();

  // The lines as stored now (Collection::stored()); with `run_only`, only those ids run (the
  // others another instance serves: they stay idle here, their sessions kept).
  void sync(const std::vector<nlohmann::json>& stored, const std::set<int64_t>* run_only = nullptr);
  // Closes every line (TDLib saves its state), waiting up to `timeout_ms` in all.
  void stop(int timeout_ms = 3000);
  std::shared_ptr<Line> find(int64_t id) const;
  // GET /api/monitor/v1/telegram/lines.
  nlohmann::json status() const;
  // The library's TDLib version (td_execute getOption "version"), or why it is not loaded.
  nlohmann::json library() const;

 private:
  std::shared_ptr<td::Hub> hub();        // loads the library and starts the loop on first use
  std::string folder(int64_t id) const;  // the line's session folder

  LinesOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<td::Hub> hub_;
  std::string load_error_;
  std::string version_;
  std::map<int64_t, std::shared_ptr<Line>> lines_;
  std::map<int64_t, LineConfig> idle_;  // disabled lines, or lines that could not start
  std::set<int64_t> standby_;           // of those: enabled, run by another instance
};

}  // namespace esg::telegram
