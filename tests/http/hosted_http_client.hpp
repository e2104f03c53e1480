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

namespace switchyard::test {

/// An io_context run by one thread, with an asio_loop_host bound to it.
class asio_host_thread {
public:
  asio_host_thread() : work_(ioc_.get_executor()) {
    host_->bind(ioc_);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~asio_host_thread() {
    work_.reset();
    ioc_.stop();
    thread_.join();
    host_->unbind();
  }
  asio_host_thread(const asio_host_thread&) = delete;
  asio_host_thread& operator=(const asio_host_thread&) = delete;

  http_client_options hosted(http_client_options o) const {
    o.host = host_;
    return o;
  }
  std::thread::id thread_id() const { return thread_.get_id(); }

private:
  boost::asio::io_context ioc_{1};
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::shared_ptr<server::asio_loop_host> host_ = std::make_shared<server::asio_loop_host>();
  std::thread thread_;
};

/// The host's thread is made first and stopped last.
class hosted_http_client : private asio_host_thread, public http_client {
public:
  explicit hosted_http_client(http_client_options o = {})
      : asio_host_thread(), http_client(hosted(std::move(o))) {}
  using asio_host_thread::thread_id;
};

} // namespace switchyard::test
