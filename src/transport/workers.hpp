#pragma once
// The worker threads: one io_context each, shared nothing (DESIGN.md "Threads and memory"). A
// call belongs to the worker its Call-ID hashes to; work crosses threads only as posted jobs.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <memory>
#include <string_view>
#include <thread>
#include <vector>

namespace esg::transport {

class Workers {
 public:
  explicit Workers(size_t count);  // 0: one per core
  ~Workers();
  Workers(const Workers&) = delete;
  Workers& operator=(const Workers&) = delete;

  size_t size() const { return contexts_.size(); }
  boost::asio::io_context& context(size_t worker) { return *contexts_.at(worker); }
  // FNV-1a of the Call-ID: the same call always lands on the same worker.
  size_t worker_for(std::string_view call_id) const;

  // The worker the calling thread runs, or -1 outside the workers.
  static int current();

  void start();  // one thread per io_context
  void stop();   // stops the loops and joins the threads

  template <typename F>
  void post(size_t worker, F&& f) {
    boost::asio::post(*contexts_.at(worker), std::forward<F>(f));
  }

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
};

}  // namespace esg::transport
