#pragma once
// TDLib through its JSON interface (issue 8): the four functions of libtdjson.so, loaded at run
// time with dlopen from a configured path (the npm package's prebuilt library in production,
// the simulator's library in tests: the code under test is the same). Never unloaded: TDLib
// registers exit handlers, and unloading it crashes the process at exit.
//
// The Hub is the one receive loop for all of esg's TDLib clients: a thread of its own calls
// td_receive, matches answers to requests by "@extra", and hands updates and answers to each
// client's executor (the worker its line lives on). TDLib errors become TdError values.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace esg::telegram::td {

// {"@type": "error", "code": 429, "message": "Too Many Requests: retry after 30"}.
struct TdError {
  int code = 0;
  std::string message;
  int retry_after = 0;  // seconds, from "retry after N" or "FLOOD_WAIT_N"; 0: not a flood wait
  bool flood() const { return retry_after > 0; }
};
TdError error_of(const nlohmann::json& j);
bool is_error(const nlohmann::json& j);

class TdJson {
 public:
  // The library at `path`, loaded once per process (later calls get the same one). Errors
  // name the path and dlerror()'s reason.
  static Result<TdJson*, std::string> load(const std::string& path);

  int create_client_id() const { return create_(); }
  void send(int client_id, const std::string& request) const { send_(client_id, request.c_str()); }
  // The next answer or update of any client (JSON text, valid until the next call), or null
  // after `timeout` seconds. One thread only.
  const char* receive(double timeout) const { return receive_(timeout); }
  // A synchronous method (only those TDLib marks "can be called synchronously").
  nlohmann::json execute(const nlohmann::json& request) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int (*create_)() = nullptr;
  void (*send_)(int, const char*) = nullptr;
  const char* (*receive_)(double) = nullptr;
  const char* (*execute_)(const char*) = nullptr;
};

class Hub {
 public:
  using Update = std::function<void(const nlohmann::json&)>;
  using Answer = std::function<void(Result<nlohmann::json, TdError>)>;

  explicit Hub(const TdJson& td);
  ~Hub();  // stops the receive loop
  Hub(const Hub&) = delete;
  Hub& operator=(const Hub&) = delete;

  // A new TDLib client whose updates go to `on_update` on `io`. TDLib starts it with the
  // first request sent to it.
  int create_client(boost::asio::io_context& io, Update on_update);
  // No more updates or answers for `client` (after it closed).
  void forget_client(int client);
  // No more for anyone: before the workers' io_contexts go away.
  void forget_all();
  // forget_all(), and the receive loop ends now (joined), not when the last owner lets go: a
  // line still closing when esg stops holds the hub, and the loop must not outlive main().
  void shutdown();
  // `request` to `client`; its answer (or error) to `on_answer` on the client's io_context.
  // Without on_answer, the answer is dropped.
  void send(int client, nlohmann::json request, Answer on_answer = {});
  const TdJson& td() const { return td_; }

 private:
  void loop();
  struct Client {
    boost::asio::io_context* io;
    Update on_update;
  };
  struct Pending {
    int client;
    Answer on_answer;
  };
  const TdJson& td_;
  std::mutex mu_;
  std::unordered_map<int, Client> clients_;
  std::unordered_map<uint64_t, Pending> pending_;
  uint64_t next_extra_ = 1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace esg::telegram::td
