#include "asio_loop_host.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <mutex>
#include <optional>

namespace switchyard::server {

namespace net = boost::asio;
using clock_type = std::chrono::steady_clock;

/// Shared with the handlers in flight, so a handler that runs after the
/// host is gone finds its state and does nothing. Every member is touched
/// under `m` only.
struct asio_loop_host::state : std::enable_shared_from_this<state> {
  std::mutex m;
  http_loop_host::loop client;
  bool attached = false;
  net::io_context* ioc = nullptr;
  std::optional<net::posix::stream_descriptor> fd;
  std::optional<net::steady_timer> timer;
  bool fd_wait_pending = false;
  bool turn_posted = false;
  /// When the pending timer fires (max: none pending).
  clock_type::time_point timer_at = clock_type::time_point::max();

  /// Attached and bound: the descriptor exists exactly then.
  bool live() const { return fd.has_value(); }

  // Both attached and bound: the descriptor joins the reactor, and a first
  // turn takes whatever was queued before.
  void start_locked() {
    if (!attached || !ioc || fd)
      return;
    fd.emplace(*ioc, client.fd);
    timer.emplace(*ioc);
    post_turn_locked();
  }

  void post_turn_locked() {
    if (turn_posted)
      return;
    turn_posted = true;
    net::post(*ioc, [self = shared_from_this()] {
      std::lock_guard lock(self->m);
      self->turn_posted = false;
      self->turn_locked();
    });
  }

  void turn_locked() {
    if (!live())
      return;
    const int next_ms = client.turn();
    if (!live())
      return;
    // Asio's reactor watches the descriptor edge-triggered, but a wait it
    // queues re-arms it (EPOLL_CTL_MOD, epoll_reactor::start_op), and the
    // kernel then reports a descriptor that is readable already: work that
    // came during the turn is not missed.
    if (!fd_wait_pending) {
      fd_wait_pending = true;
      fd->async_wait(net::posix::descriptor_base::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       std::lock_guard lock(self->m);
                       self->fd_wait_pending = false;
                       if (!ec)
                         self->turn_locked();
                     });
    }
    if (next_ms >= 0) {
      // Only an earlier deadline moves the timer: a turn that runs early
      // does nothing harmful, and re-arming costs a timerfd update.
      const auto at = clock_type::now() + std::chrono::milliseconds(next_ms);
      if (at < timer_at) {
        timer_at = at;
        timer->expires_at(at);
        timer->async_wait([self = shared_from_this(), at](const boost::system::error_code& ec) {
          std::lock_guard lock(self->m);
          if (ec || self->timer_at != at)
            return; // moved earlier (a newer wait owns it) or cancelled
          self->timer_at = clock_type::time_point::max();
          self->turn_locked();
        });
      }
    }
  }

  void stop_locked() noexcept {
    if (fd) {
      boost::system::error_code ec;
      fd->cancel(ec);
      fd->release(); // the descriptor is the client's to close
      fd.reset();
    }
    if (timer) {
      timer->cancel();
      timer.reset();
    }
    timer_at = clock_type::time_point::max();
  }
};

asio_loop_host::asio_loop_host() : state_(std::make_shared<state>()) {}

asio_loop_host::~asio_loop_host() {
  std::lock_guard lock(state_->m);
  state_->stop_locked();
}

void asio_loop_host::attach(loop l) {
  std::lock_guard lock(state_->m);
  state_->client = std::move(l);
  state_->attached = true;
  state_->start_locked();
}

void asio_loop_host::detach() noexcept {
  std::lock_guard lock(state_->m);
  // A turn runs under the lock: none runs now, and none will.
  state_->attached = false;
  state_->stop_locked();
  state_->client = {};
}

void asio_loop_host::bind(net::io_context& ioc) {
  std::lock_guard lock(state_->m);
  state_->ioc = &ioc;
  state_->start_locked();
}

void asio_loop_host::unbind() noexcept {
  std::lock_guard lock(state_->m);
  state_->stop_locked();
  state_->ioc = nullptr;
}

} // namespace switchyard::server
