#pragma once

// An http_client's loop on an Asio io_context (switchyard/http_client.hpp,
// http_loop_host): `switchyard serve` hands the transport's client to the
// gateway's I/O threads, so each request's upstream bytes are read and
// written on the threads that serve the caller, not on a thread of the
// transport's own (bench/README.md: one hand-over fewer per request).

#include "switchyard/http_client.hpp"

#include <memory>

namespace boost::asio {
class io_context;
}

namespace switchyard::server {

/// The client's epoll descriptor is watched by the io_context's reactor,
/// and its next deadline is a steady_timer; each turn runs on whichever of
/// the io_context's threads is free, one at a time.
///
/// Either order works: attach() (by the client's constructor) before or
/// after bind() (by gateway_server::start()). Calls started before both
/// wait for them. unbind() must come after the io_context's threads have
/// stopped and before the io_context is destroyed; turns stop then, and a
/// client destroyed later drops its calls as it would without a host.
class asio_loop_host final : public http_loop_host {
public:
  asio_loop_host();
  ~asio_loop_host() override;
  asio_loop_host(const asio_loop_host&) = delete;
  asio_loop_host& operator=(const asio_loop_host&) = delete;

  void attach(loop l) override;
  void detach() noexcept override;

  /// Starts watching on `ioc`, which must outlive unbind().
  void bind(boost::asio::io_context& ioc);
  /// Stops watching and lets go of `ioc`'s objects (see above).
  void unbind() noexcept;

  struct state;

private:
  std::shared_ptr<state> state_;
};

} // namespace switchyard::server
