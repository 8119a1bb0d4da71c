#pragma once
// A simulated network for the ICE and TURN tests: datagrams between endpoints with a delay, a
// drop rule, and NATs that rewrite an inside endpoint to an outside one; and a simulated clock
// that runs agents (anything with tick/next_tick) and deliveries in time order. No sockets.

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "media/webrtc/ice/ice.hpp"

namespace esg::media::ice::test {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

inline Endpoint ep(const char* ip, uint16_t port) {
  return Endpoint(boost::asio::ip::make_address(ip), port);
}

class FakeNet {
 public:
  using Receiver = std::function<void(const Endpoint& from, const Endpoint& to,
                                      std::string_view data, TimePoint now)>;
  // Traffic to `at` goes to `r`.
  void attach(const Endpoint& at, Receiver r) { hosts_[at] = std::move(r); }
  // Datagrams from `inside` leave as from `outside`; datagrams to `outside` reach `inside`.
  void nat(const Endpoint& inside, const Endpoint& outside) {
    out_[inside] = outside;
    in_[outside] = inside;
  }
  // true: the datagram (as seen on the wire, after NAT) is lost.
  std::function<bool(const Endpoint& from, const Endpoint& to)> drop;
  milliseconds delay = 10ms;
  uint64_t sent = 0, dropped = 0;

  void send(const Endpoint& from, const Endpoint& to, std::string_view data, TimePoint now) {
    ++sent;
    Endpoint src = from;
    if (auto it = out_.find(from); it != out_.end()) src = it->second;
    if (drop && drop(src, to)) {
      ++dropped;
      return;
    }
    queue_.push_back(Packet{now + delay, seq_++, src, to, std::string(data)});
  }

  TimePoint next_delivery() const {
    TimePoint t = TimePoint::max();
    for (const Packet& p : queue_)
      t = std::min(t, p.at);
    return t;
  }

  // Delivers every datagram due by `now`, in order.
  void deliver(TimePoint now) {
    for (;;) {
      auto it =
          std::min_element(queue_.begin(), queue_.end(), [](const Packet& a, const Packet& b) {
            return a.at != b.at ? a.at < b.at : a.seq < b.seq;
          });
      if (it == queue_.end() || it->at > now) return;
      Packet p = std::move(*it);
      queue_.erase(it);
      Endpoint to = p.to;
      if (auto n = in_.find(to); n != in_.end()) to = n->second;
      auto h = hosts_.find(to);
      if (h != hosts_.end()) h->second(p.from, to, p.bytes, now);
    }
  }

 private:
  struct Packet {
    TimePoint at;
    uint64_t seq;
    Endpoint from, to;
    std::string bytes;
  };
  std::vector<Packet> queue_;
  uint64_t seq_ = 0;
  std::map<Endpoint, Receiver> hosts_;
  std::map<Endpoint, Endpoint> out_, in_;
};

// An agent on the fake network with its sockets, what it signalled and what it received.
struct Peer {
  Agent agent;
  FakeNet& net;
  std::map<int, Endpoint> sockets;
  std::vector<Candidate> candidates;
  std::vector<State> states;
  std::vector<std::string> received;
  TimePoint* clock;
  Peer* other = nullptr;  // signalling: candidates trickle to it
  bool signal_candidates = true;

  Peer(FakeNet& n, TimePoint* now, Agent::Options o) : agent(std::move(o)), net(n), clock(now) {
    agent.send = [this](int socket, const Endpoint& to, std::string_view bytes) {
      net.send(sockets.at(socket), to, bytes, *clock);
    };
    agent.on_candidate = [this](const Candidate& c) {
      candidates.push_back(c);
      if (other && signal_candidates) other->agent.add_remote_candidate(c, *clock);
    };
    agent.on_state = [this](State s) { states.push_back(s); };
  }
  void add_socket(int id, const Endpoint& local) {
    sockets[id] = local;
    net.attach(local, [this, id](const Endpoint& from, const Endpoint&, std::string_view data,
                                 TimePoint now) {
      if (auto payload = agent.on_datagram(id, from, data, now)) {
        received.emplace_back(*payload);
      }
    });
    agent.add_socket(id, local, *clock);
  }
};

// Credentials both ways and the candidates gathered so far; later ones trickle.
inline void signal(Peer& a, Peer& b) {
  a.other = &b;
  b.other = &a;
  a.agent.set_remote_credentials(b.agent.ufrag(), b.agent.pwd(), *a.clock);
  b.agent.set_remote_credentials(a.agent.ufrag(), a.agent.pwd(), *b.clock);
  if (a.signal_candidates) {
    for (const Candidate& c : a.candidates)
      b.agent.add_remote_candidate(c, *b.clock);
  }
  if (b.signal_candidates) {
    for (const Candidate& c : b.candidates)
      a.agent.add_remote_candidate(c, *a.clock);
  }
}

// Runs the clock from *now to `until`, delivering datagrams and ticking whatever is due.
class Sim {
 public:
  explicit Sim(FakeNet& net) : net_(net) {}
  TimePoint now = TimePoint{} + std::chrono::hours(1);

  void add(std::function<void(TimePoint)> tick, std::function<TimePoint()> next) {
    tickers_.push_back({std::move(tick), std::move(next)});
  }
  void add(Agent& a) {
    add([&a](TimePoint t) { a.tick(t); }, [&a] { return a.next_tick(); });
  }

  void run_for(milliseconds d) { run_until(now + d); }
  void run_until(TimePoint end) {
    for (;;) {
      TimePoint next = net_.next_delivery();
      for (auto& t : tickers_)
        next = std::min(next, t.next());
      if (next > end) break;
      // Time moves on by at least a millisecond, so a tick that leaves work for "now" cannot
      // spin the loop.
      now = std::max(next, now + 1ms);
      if (now > end) break;
      net_.deliver(now);
      for (auto& t : tickers_) {
        if (t.next() <= now) t.tick(now);
      }
    }
    now = end;
    net_.deliver(now);
  }
  // Runs until `done` holds (checked after every step) or `limit` passes; whether it held.
  bool run_until_true(const std::function<bool()>& done, milliseconds limit) {
    const TimePoint end = now + limit;
    while (now < end) {
      if (done()) return true;
      run_for(5ms);
    }
    return done();
  }

 private:
  struct Ticker {
    std::function<void(TimePoint)> tick;
    std::function<TimePoint()> next;
  };
  FakeNet& net_;
  std::vector<Ticker> tickers_;
};

}  // namespace esg::media::ice::test
