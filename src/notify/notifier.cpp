#include "notify/notifier.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <future>
#include <map>
#include <thread>

#include "base/random.hpp"
#include "base/time.hpp"
#include "log/log.hpp"
#include "notify/disk_queue.hpp"
#include "notify/event.hpp"
#include "notify/sign.hpp"

namespace esg::notify {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// One POST: resolve, connect, write, read the answer, all under one deadline. `done` gets the
// HTTP status (0: no answer) and what went wrong.
class Attempt : public std::enable_shared_from_this<Attempt> {
 public:
  using Done = std::function<void(int status, std::string error)>;
  Attempt(asio::io_context& io, std::chrono::milliseconds timeout, Done done)
      : resolver_(io), stream_(io), deadline_(io), timeout_(timeout), done_(std::move(done)) {}

  void run(const Url& url, http::request<http::string_body> req) {
    req_ = std::move(req);
    deadline_.expires_after(timeout_);
    deadline_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->timed_out_ = true;
      self->resolver_.cancel();
      beast::error_code ignored;
      self->stream_.socket().close(ignored);
    });
    resolver_.async_resolve(
        url.host, url.port,
        [self = shared_from_this()](const beast::error_code& ec, tcp::resolver::results_type r) {
          if (ec) return self->finish(0, "cannot resolve: " + ec.message());
          self->stream_.async_connect(r, [self](const beast::error_code& ec, const tcp::endpoint&) {
            if (ec) return self->finish(0, "cannot connect: " + ec.message());
            http::async_write(self->stream_, self->req_,
                              [self](const beast::error_code& ec, size_t) {
                                if (ec) return self->finish(0, "cannot send: " + ec.message());
                                self->read();
                              });
          });
        });
  }

 private:
  void read() {
    parser_.body_limit(64 * 1024);  // a receiver's page of text is not ours to keep
    http::async_read(stream_, buffer_, parser_,
                     [self = shared_from_this()](const beast::error_code& ec, size_t) {
                       if (ec) return self->finish(0, "no answer: " + ec.message());
                       self->finish(int(self->parser_.get().result_int()), "");
                     });
  }

  void finish(int status, std::string error) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
    if (timed_out_ && status == 0)
      error = "no answer within " + std::to_string(timeout_.count()) + " ms";
    done_(status, std::move(error));
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  std::chrono::milliseconds timeout_;
  Done done_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
  bool timed_out_ = false, finished_ = false;
};

int event_index(std::string_view event) {
  for (size_t i = 0; i < kEvents.size(); ++i)
    if (kEvents[i] == event) return int(i);
  return -1;
}

}  // namespace

struct Notifier::Impl {
  struct Hook {
    Webhook config;
    Url url;
    bool busy = false;     // an attempt is out
    bool waiting = false;  // the backoff timer runs
    int attempts = 0;      // of the delivery at the front
    std::unique_ptr<asio::steady_timer> timer;
  };

  Impl(Notifier& n, const NotifierOptions& o) : owner(n), queue(o.dir, o.max_queue) {}

  Notifier& owner;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread thread;
  DiskQueue queue;
  std::map<int64_t, Hook> hooks;
  // What status() shows of each webhook (read by the HTTP thread).
  struct View {
    std::string url;
    size_t queued = 0;
    int attempts = 0;  // failed attempts of the delivery at the front
    std::string last_error;
    int64_t last_error_ms = 0, last_delivered_ms = 0;
  };
  mutable std::mutex view_mu;
  std::map<int64_t, View> views;

  void depth() {
    owner.counters_.queue_depth = queue.size();
    std::lock_guard lock(view_mu);
    for (auto it = views.begin(); it != views.end();) {
      auto h = hooks.find(it->first);
      if (h == hooks.end()) {
        it = views.erase(it);
        continue;
      }
      it->second.url = h->second.config.url;
      it->second.queued = queue.queued(it->first);
      it->second.attempts = h->second.attempts;
      ++it;
    }
    for (const auto& [id, h] : hooks)
      if (!views.count(id)) views[id] = {h.config.url, queue.queued(id), h.attempts, {}, 0, 0};
  }

  void note(int64_t id, const std::string& error) {
    std::lock_guard lock(view_mu);
    View& v = views[id];
    if (error.empty()) {
      v.last_delivered_ms = timeutil::unix_ms();
    } else {
      v.last_error = error;
      v.last_error_ms = timeutil::unix_ms();
    }
  }

  void apply(std::vector<Webhook> list) {
    std::vector<int64_t> keep;
    std::map<int64_t, Hook> next;
    for (auto& w : list) {
      auto url = parse_url(w.url);
      if (!url) continue;  // validated when stored; a newer esg's row is skipped
      keep.push_back(w.id);
      auto old = hooks.find(w.id);
      Hook h;
      if (old != hooks.end()) h = std::move(old->second);
      if (!h.timer) h.timer = std::make_unique<asio::steady_timer>(io);
      h.config = std::move(w);
      h.url = std::move(*url);
      next[h.config.id] = std::move(h);
    }
    for (auto& [id, h] : hooks) {
      if (!next.count(id) && h.timer) h.timer->cancel();
    }
    // An attempt in flight for a removed webhook finishes against `hooks` and finds nothing.
    hooks = std::move(next);
    if (const size_t n = queue.retain(keep); n > 0) {
      owner.counters_.dropped_deleted += n;
      log::get("notify").warn("{} queued webhook deliveries dropped: their webhook is gone", n);
    }
    depth();
    for (auto& [id, h] : hooks)
      kick(id);
  }

  void enqueue(const std::string& event, const nlohmann::json& call) {
    const int64_t now = timeutil::unix_ms();
    std::string body;
    std::vector<int64_t> to;
    for (auto& [id, h] : hooks)
      if (h.config.wants(event)) to.push_back(id);
    if (to.empty()) return;
    body = event_body(event, random::hex(32), now, owner.options_.srvidx, call);
    for (int64_t id : to) {
      // A full queue drops one delivery per event from now on: logged once per thousand.
      if (queue.push(id, now, body) > 0 && owner.counters_.dropped_full++ % 1000 == 0) {
        log::get("notify").warn(
            "webhook queue full ({} deliveries): the oldest dropped to queue {} for webhook {}",
            queue.max(), event, id);
      }
    }
    depth();
    for (int64_t id : to)
      kick(id);
  }

  void kick(int64_t id) {
    auto it = hooks.find(id);
    if (it == hooks.end()) return;
    Hook& h = it->second;
    if (h.busy || h.waiting) return;
    const DiskQueue::Item* item = queue.front(id);
    // Expired deliveries go first, without an attempt.
    while (item && timeutil::unix_ms() - item->created_ms > int64_t(h.config.retry_for_s) * 1000) {
      ++owner.counters_.dropped_expired;
      log::get("notify").error(
          "webhook {} ({}): event dropped after {} attempt(s), undelivered for {} s", id,
          h.config.url, h.attempts, h.config.retry_for_s);
      queue.pop(id);
      h.attempts = 0;
      item = queue.front(id);
    }
    depth();
    if (!item) return;
    http::request<http::string_body> req{http::verb::post, h.url.target, 11};
    const bool v6 = h.url.host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + h.url.host + "]" : h.url.host;
    req.set(http::field::host, h.url.port == "80" ? host : host + ":" + h.url.port);
    req.set(http::field::user_agent, owner.options_.user_agent);
    req.set(http::field::content_type, "application/json");
    req.set(http::field::connection, "close");
    auto parsed = nlohmann::json::parse(item->body, nullptr, false);
    if (parsed.is_object()) {
      req.set("X-Esg-Event", parsed.value("event", std::string()));
      req.set("X-Esg-Event-Id", parsed.value("id", std::string()));
    }
    req.set("X-Esg-Attempt", std::to_string(h.attempts + 1));
    if (!h.config.secret.empty()) req.set(kSignatureHeader, signature(h.config.secret, item->body));
    req.body() = item->body;
    req.prepare_payload();
    h.busy = true;
    const uint64_t seq = item->seq;
    auto a = std::make_shared<Attempt>(
        io, std::chrono::milliseconds(h.config.timeout_ms),
        [this, id, seq](int status, std::string error) { done(id, seq, status, error); });
    a->run(h.url, std::move(req));
  }

  void done(int64_t id, uint64_t seq, int status, const std::string& error) {
    auto it = hooks.find(id);
    if (it == hooks.end()) return;
    Hook& h = it->second;
    h.busy = false;
    const DiskQueue::Item* front = queue.front(id);
    if (!front || front->seq != seq) {  // dropped meanwhile (queue full)
      h.attempts = 0;
      kick(id);
      return;
    }
    if (status >= 200 && status < 300) {
      ++owner.counters_.delivered;
      note(id, "");
      if (h.attempts > 0)
        log::get("notify").info("webhook {} ({}): delivered after {} retries", id, h.config.url,
                                h.attempts);
      queue.pop(id);
      h.attempts = 0;
      depth();
      kick(id);
      return;
    }
    ++owner.counters_.failed_attempts;
    ++h.attempts;
    note(id, status ? "HTTP " + std::to_string(status) : error);
    depth();
    const auto pause = backoff(h.config, h.attempts);
    auto& l = log::get("notify");
    // The first failure of a delivery says so; the retries are quieter.
    l.log(h.attempts == 1 ? spdlog::level::warn : spdlog::level::debug,
          "webhook {} ({}): attempt {} failed ({}); next in {} ms", id, h.config.url, h.attempts,
          status ? "HTTP " + std::to_string(status) : error, pause.count());
    h.waiting = true;
    h.timer->expires_after(pause);
    h.timer->async_wait([this, id](const boost::system::error_code& ec) {
      if (ec) return;
      auto it = hooks.find(id);
      if (it == hooks.end()) return;
      it->second.waiting = false;
      kick(id);
    });
  }
};

Notifier::Notifier(NotifierOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(*this, options_)) {
  counters_.queue_depth = impl_->queue.size();
  if (impl_->queue.size() > 0)
    log::get("notify").info("{} webhook deliveries left by the previous run", impl_->queue.size());
}

Notifier::~Notifier() {
  stop();
}

void Notifier::start() {
  if (impl_->thread.joinable()) return;
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

void Notifier::stop() {
  if (!impl_->thread.joinable()) return;
  // The events handed over so far (the calls ended at shutdown among them) go to disk first:
  // they were posted before this, so they are queued when it runs. Bounded by a timer.
  auto written = std::make_shared<std::promise<void>>();
  auto done = written->get_future();
  asio::post(impl_->io, [written] { written->set_value(); });
  if (done.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    log::get("notify").warn("stopping: webhook events still waiting to be queued are lost");
  // What is on disk stays for the next run; attempts in flight are abandoned.
  impl_->io.stop();
  impl_->thread.join();
}

void Notifier::set_webhooks(std::vector<Webhook> hooks) {
  uint32_t bits = 0;
  for (const auto& w : hooks)
    for (size_t i = 0; i < kEvents.size(); ++i)
      if (w.wants(kEvents[i])) bits |= 1u << i;
  wanted_ = bits;
  asio::post(impl_->io,
             [this, hooks = std::move(hooks)]() mutable { impl_->apply(std::move(hooks)); });
}

bool Notifier::wants(std::string_view event) const {
  const int i = event_index(event);
  return i >= 0 && (wanted_.load() & (1u << i));
}

void Notifier::publish(std::string_view event, nlohmann::json call) {
  if (!wants(event)) return;
  if (pending_.fetch_add(1) >= options_.max_pending) {
    pending_.fetch_sub(1);
    if (counters_.dropped_overload++ % 1000 == 0)
      log::get("notify").error("webhook events dropped: {} waiting to be queued",
                               options_.max_pending);
    return;
  }
  ++counters_.events;
  asio::post(impl_->io, [this, e = std::string(event), call = std::move(call)] {
    pending_.fetch_sub(1);
    impl_->enqueue(e, call);
  });
}

nlohmann::json Notifier::status() const {
  nlohmann::json hooks = nlohmann::json::array();
  {
    std::lock_guard lock(impl_->view_mu);
    for (const auto& [id, v] : impl_->views) {
      hooks.push_back(
          {{"id", id},
           {"url", v.url},
           {"queued", v.queued},
           {"failed_attempts", v.attempts},
           {"last_error", v.last_error.empty() ? nlohmann::json() : nlohmann::json(v.last_error)},
           {"last_error_at",
            v.last_error_ms ? nlohmann::json(iso_ms(v.last_error_ms)) : nlohmann::json()},
           {"last_delivered_at",
            v.last_delivered_ms ? nlohmann::json(iso_ms(v.last_delivered_ms)) : nlohmann::json()}});
    }
  }
  return {{"webhooks", hooks},
          {"events", counters_.events.load()},
          {"delivered", counters_.delivered.load()},
          {"failed_attempts", counters_.failed_attempts.load()},
          {"dropped",
           {{"queue_full", counters_.dropped_full.load()},
            {"expired", counters_.dropped_expired.load()},
            {"overload", counters_.dropped_overload.load()},
            {"deleted", counters_.dropped_deleted.load()}}},
          {"queue_depth", counters_.queue_depth.load()},
          {"queue_max", options_.max_queue}};
}

}  // namespace esg::notify
