#pragma once

// An http_client whose loop runs on an Asio io_context through
// server::asio_loop_host, as `switchyard serve` runs its transport. The
// hosted test binary (tests/CMakeLists.txt, switchyard-http-hosted-tests)
// compiles test_http_client.cpp again with every `http_client` being this
// one, so each of those cases also runs the hosted loop.

#include "server/asio_loop_host.hpp"

#include "switchyard/http_client.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace switchyard::test {

/// An io_context run by `threads` threads, with an asio_loop_host bound to
/// it: at once, or at run_threads() (as serve binds after the router is
/// built). stop_threads() (also the destructor's) stops the threads, then
/// unbinds. (Not start/stop: hosted_http_client derives from this and
/// from http_client, whose start() is a call's.)
class asio_host_thread {
public:
  explicit asio_host_thread(int threads = 1, bool start_now = true) : threads_(threads) {
    if (start_now)
      run_threads();
  }
  ~asio_host_thread() { stop_threads(); }
  asio_host_thread(const asio_host_thread&) = delete;
  asio_host_thread& operator=(const asio_host_thread&) = delete;

  void run_threads() {
    work_.emplace(ioc_.get_executor());
    host_->bind(ioc_);
    for (int i = 0; i < threads_; ++i)
      running_.emplace_back([this] { ioc_.run(); });
  }
  void stop_threads() {
    if (running_.empty())
      return;
    work_.reset();
    ioc_.stop();
    for (auto& t : running_)
      t.join();
    running_.clear();
    host_->unbind();
  }

  http_client_options hosted(http_client_options o) const {
    o.host = host_;
    return o;
  }
  /// The first of the threads.
  std::thread::id thread_id() const { return running_.front().get_id(); }

private:
  int threads_;
  boost::asio::io_context ioc_{threads_};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::shared_ptr<server::asio_loop_host> host_ = std::make_shared<server::asio_loop_host>();
  std::vector<std::thread> running_;
};

/// The host's thread is made first and stopped last.
class hosted_http_client : private asio_host_thread, public http_client {
public:
  explicit hosted_http_client(http_client_options o = {})
      : asio_host_thread(), http_client(hosted(std::move(o))) {}
  using asio_host_thread::thread_id;
};

} // namespace switchyard::test
