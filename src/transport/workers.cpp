#include "transport/workers.hpp"

namespace esg::transport {

namespace {
thread_local int t_current_worker = -1;
}  // namespace

int Workers::current() {
  return t_current_worker;
}

Workers::Workers(size_t count) {
  if (count == 0) count = std::max(1u, std::thread::hardware_concurrency());
  for (size_t i = 0; i < count; ++i) {
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

Workers::~Workers() {
  stop();
}

size_t Workers::worker_for(std::string_view call_id) const {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : call_id)
    h = (h ^ c) * 1099511628211ull;
  return size_t(h % contexts_.size());
}

void Workers::start() {
  for (size_t i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([c = contexts_[i].get(), i] {
      t_current_worker = int(i);
      c->run();
    });
  }
}

void Workers::stop() {
  guards_.clear();
  for (auto& ctx : contexts_)
    ctx->stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

}  // namespace esg::transport
