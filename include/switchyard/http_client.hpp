#pragma once

#include "switchyard/http_types.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace switchyard {

/// An event loop that runs an http_client's loop in place of a thread of
/// the client's own (http_client_options::host): `switchyard serve` runs
/// its transport on the Asio threads that serve its clients, so a request
/// crosses no thread of the transport's (server::asio_loop_host).
class http_loop_host {
public:
  /// The client's loop, one turn at a time.
  struct loop {
    /// Readable whenever the loop has work (an epoll descriptor, watched
    /// level-triggered: what a turn leaves keeps it readable).
    int fd = -1;
    /// Does what is ready without blocking; returns the milliseconds
    /// until it must run again even if `fd` stays quiet (-1: only then).
    std::function<int()> turn;
  };
  virtual ~http_loop_host() = default;
  /// Called once, by the client's constructor (on the constructing
  /// thread). From then on the host calls `turn` whenever `fd` is readable
  /// and when the time it returned has passed, on any of its threads but
  /// never two at once.
  virtual void attach(loop l) = 0;
  /// Called once, by the client's destructor. When it returns, `turn` is
  /// not running and never runs again. The host may have stopped already.
  virtual void detach() noexcept = 0;
};

/// Limits of one http_client's connection pool (one curl multi handle).
struct http_client_options {
  /// CURLMOPT_MAX_HOST_CONNECTIONS (0: no cap). Calls past it queue.
  std::size_t max_connections_per_host = 64;
  /// CURLMOPT_MAX_TOTAL_CONNECTIONS (0: no cap). Calls past it queue.
  std::size_t max_total_connections = 0;
  /// CURLMOPT_MAXCONNECTS: the most connections, in use or idle, kept
  /// open for reuse; past it the oldest idle one is closed (0: the
  /// default, max_total_connections when set and larger, else 1024).
  /// Not curl's own default (4 x the transfers in the multi handle at
  /// that moment), which closes kept connections whenever fewer calls run
  /// than before, so a bursty load opens new ones all the time.
  std::size_t connection_cache = 0;
  /// HTTP/2 over TLS where the server offers it in ALPN, 1.1 otherwise.
  bool http2 = true;
  /// Where the loop runs: null, a thread of the client's own; else this
  /// host's event loop (no thread of the client's).
  std::shared_ptr<http_loop_host> host;
};

/// Bounds and TLS settings of one call.
struct http_call_options {
  /// The whole call, from start() (0: none).
  std::chrono::milliseconds total_timeout{0};
  /// From start() to the first body byte, then each gap between body
  /// bytes (0: none). Queueing behind a connection cap counts.
  std::chrono::milliseconds idle_timeout{0};
  tls_settings tls;
};

/// How one call ended.
struct http_result {
  /// An HTTP answer arrived completely (any status).
  bool transport_ok = false;
  /// The total or the idle timeout fired (transport_ok is then false).
  bool timed_out = false;
  /// The answer's status, also when the body was then cut (0: no head).
  long status = 0;
  /// A transport failure: `scheme://host:port: cause`. Never a header
  /// value, a URL path or query, or a body.
  std::string error;
  /// From start() to the end, and to the first body byte (0: none came).
  double total_ms = 0;
  double first_byte_ms = 0;
  /// The answer came over a connection opened for an earlier call.
  bool reused_connection = false;
  /// The HTTP version the answer came in: 10, 11, 20 (0: no answer).
  int http_version = 0;
};

/// The callbacks of one call. All run on the client's I/O thread (or its
/// host's, http_client_options::host), in this
/// order, never concurrently; they must only forward (a queue, a mailbox)
/// and never block, nor destroy the client.
struct http_call_events {
  /// Once, when the response head is complete (not for 1xx heads). The
  /// headers are the receiver's to keep (moved, not copied).
  std::function<void(long status, http_headers headers)> on_head;
  /// Body bytes as they arrive, never buffered to the end.
  std::function<void(std::string_view bytes)> on_body;
  /// Exactly once and last, unless the call was cancelled first.
  std::function<void(http_result)> on_done;
  /// Held with the callbacks and released with them (after the call ended
  /// or was cancelled): callbacks may capture a plain pointer to it.
  std::shared_ptr<void> owner;
};

/// An HTTP/1.1 and HTTP/2 client over libcurl's multi interface, for many
/// concurrent calls (thousands) on one I/O thread of its own: an epoll loop
/// driving curl_multi_socket_action, with the total and idle timeouts on
/// its own timer heap. Connections are kept alive and reused per host.
///
/// Threading: start(), cancel() and snapshot() may be called from any
/// thread at once and never block on I/O (start() takes a short lock and
/// wakes the loop). Callbacks run on the I/O thread only. The destructor
/// stops the I/O thread; calls still running are dropped without
/// callbacks. Proxies come from the environment as curl reads them
/// (`http_proxy`, `HTTPS_PROXY`/`https_proxy`, `NO_PROXY`/`no_proxy`), and
/// `HTTP_PROXY` too when `http_proxy` is unset.
///
/// With a host (http_client_options::host), "the I/O thread" is whichever
/// of the host's threads runs the loop's turn at that moment, and the
/// client has no thread of its own.
///
/// Threads: the I/O thread only, whatever the number of calls; curl's
/// threaded resolver (Debian's libcurl has no c-ares) adds a short-lived
/// thread per lookup of a host name not in the multi handle's DNS cache
/// (60 s), never for an IP address.
class http_client {
public:
  explicit http_client(http_client_options options = {});
  ~http_client();
  http_client(const http_client&) = delete;
  http_client& operator=(const http_client&) = delete;

  /// Queues the call and returns its id (never 0). Bad input (an invalid
  /// URL, an unknown method) ends in on_done with an error.
  std::uint64_t start(http_request_spec request, http_call_options options,
                      http_call_events events);

  /// Once cancel() has returned, that call's callbacks never run again
  /// (it waits for one of them that is running on the I/O thread at that
  /// moment, unless called from the I/O thread itself). The transfer is
  /// removed from the multi handle on the loop's next turn, which the call
  /// wakes. Its connection is closed, unless it is an HTTP/2 connection
  /// that other calls still use: then only its stream is reset (curl 7.88
  /// sends that RST_STREAM with the connection's next write). A timeout
  /// does the same. Unknown or finished ids are ignored.
  void cancel(std::uint64_t id) noexcept;

  struct stats {
    std::uint64_t started = 0;
    /// on_done delivered.
    std::uint64_t completed = 0;
    /// Cancelled before on_done.
    std::uint64_t cancelled = 0;
    /// New connections made, summed over finished or cancelled calls.
    std::uint64_t connections_opened = 0;
    /// Started and neither completed nor cancelled.
    std::size_t active = 0;
  };
  stats snapshot() const;

  class impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace switchyard
