// libtdjson_sim.so: the Telegram simulator's stand-in for TDLib's libtdjson.so (issue 8). It
// exports the same JSON interface (td_create_client_id, td_send, td_receive, td_execute), so
// esg loads it through its production code path from another `telegram.tdjson`. Requests go
// to the simulator process (tgsim.py) over the Unix socket named by $TGSIM_SOCKET, one JSON
// object per line; what the simulator sends back (answers and updates, each carrying its
// "@client_id") waits in a queue for td_receive. It is not TDLib and reaches no network.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

namespace {

class Link {
 public:
  static Link& get() {
    static Link* link = new Link();  // never destroyed: TDLib's library is never unloaded either
    return *link;
  }

  void send_line(const std::string& line) {
    std::lock_guard lock(send_mu_);
    if (!connect_once()) {
      push(
          "{\"@type\":\"error\",\"code\":500,\"message\":\"tgsim: no simulator at "
          "$TGSIM_SOCKET\"}");
      return;
    }
    std::string out = line + "\n";
    size_t at = 0;
    while (at < out.size()) {
      const ssize_t n = ::send(fd_, out.data() + at, out.size() - at, MSG_NOSIGNAL);
      if (n <= 0) return;
      at += size_t(n);
    }
  }

  const char* receive(double timeout) {
    std::unique_lock lock(mu_);
    const auto until =
        std::chrono::steady_clock::now() + std::chrono::microseconds(int64_t(timeout * 1e6));
    if (!cv_.wait_until(lock, until, [this] { return !queue_.empty(); })) return nullptr;
    static std::string current;  // valid until the next call, as TDLib's
    current = std::move(queue_.front());
    queue_.pop_front();
    return current.c_str();
  }

  int next_client() { return ++clients_; }

 private:
  bool connect_once() {
    if (fd_ >= 0) return true;
    const char* path = std::getenv("TGSIM_SOCKET");
    if (!path) return false;
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(fd);
      return false;
    }
    fd_ = fd;
    std::thread([this, fd] { read_loop(fd); }).detach();
    return true;
  }

  void read_loop(int fd) {
    std::string buf;
    char chunk[65536];
    while (true) {
      const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) return;
      buf.append(chunk, size_t(n));
      size_t eol;
      while ((eol = buf.find('\n')) != std::string::npos) {
        push(buf.substr(0, eol));
        buf.erase(0, eol + 1);
      }
    }
  }

  void push(std::string line) {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(line));
    }
    cv_.notify_one();
  }

  std::mutex send_mu_, mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::atomic<int> clients_{0};
  int fd_ = -1;
};

// The request's JSON text as one line (TDLib accepts pretty-printed requests too).
std::string one_line(const char* request) {
  std::string s = request ? request : "";
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int td_create_client_id() {
  const int id = Link::get().next_client();
  Link::get().send_line("{\"op\":\"create\",\"client_id\":" + std::to_string(id) + "}");
  return id;
}

__attribute__((visibility("default"))) void td_send(int client_id, const char* request) {
  Link::get().send_line("{\"op\":\"send\",\"client_id\":" + std::to_string(client_id) +
                        ",\"request\":" + one_line(request) + "}");
}

__attribute__((visibility("default"))) const char* td_receive(double timeout) {
  return Link::get().receive(timeout);
}

// Synchronous methods, answered here without the simulator: the version, and the log level.
__attribute__((visibility("default"))) const char* td_execute(const char* request) {
  static thread_local std::string answer;
  const std::string r = request ? request : "";
  const auto extra_at = r.find("\"@extra\"");
  std::string extra;
  if (extra_at != std::string::npos) {
    // Echo "@extra" as TDLib does (a string or a number up to the next ',' or '}').
    const size_t colon = r.find(':', extra_at);
    size_t end = colon + 1;
    if (end < r.size() && r[r.find_first_not_of(' ', end)] == '"') {
      end = r.find('"', r.find('"', end) + 1) + 1;
    } else {
      end = r.find_first_of(",}", end);
    }
    extra = ",\"@extra\":" + r.substr(colon + 1, end - colon - 1);
  }
  if (r.find("\"getOption\"") != std::string::npos && r.find("\"version\"") != std::string::npos) {
    answer = "{\"@type\":\"optionValueString\",\"value\":\"1.8.67-tgsim\"" + extra + "}";
  } else if (r.find("\"setLogVerbosityLevel\"") != std::string::npos ||
             r.find("\"setLogStream\"") != std::string::npos) {
    answer = "{\"@type\":\"ok\"" + extra + "}";
  } else {
    answer =
        "{\"@type\":\"error\",\"code\":400,\"message\":\"tgsim executes only getOption "
        "version and setLogVerbosityLevel\"" +
        extra + "}";
  }
  return answer.c_str();
}

}  // extern "C"
