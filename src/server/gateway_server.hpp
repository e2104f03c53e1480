#pragma once

// `switchyard serve`'s HTTP server (GATEWAY.md): OpenAI-compatible
// endpoints over the embedding API. No Beast or CAF in this header: the
// Beast code lives in gateway_server.cpp alone, which keeps its slow
// compile in one translation unit.

#include "switchyard/metrics.hpp"
#include "switchyard/router.hpp"
#include "switchyard/secret.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace switchyard::server {

class asio_loop_host;

struct gateway_options {
  /// An IP address (or "localhost"); binding is the caller's policy.
  std::string host = "127.0.0.1";
  /// 0: any free port (start() returns the one bound).
  std::uint16_t port = 4000;
  /// I/O threads; 0: default_io_threads().
  std::size_t threads = 0;
  std::size_t max_body_bytes = 32u << 20;
  /// The request line and headers must arrive within this.
  std::chrono::milliseconds header_timeout{10'000};
  /// A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{5'000};
  /// The body, once the headers are in, must arrive within this.
  std::chrono::milliseconds body_timeout{60'000};
  /// Connections at once; past it a new one gets 503 and is closed.
  std::size_t max_connections = 4096;
  /// A stream's SSE bytes queued for a client that reads slower than the
  /// upstream writes; past it the request is cancelled and the connection
  /// closed (the transport cannot pause a call).
  std::size_t max_stream_buffer_bytes = 1u << 20;
  /// Empty: no authentication.
  secret master_key;
  /// The transport's HTTP client loop to run on the I/O threads (the
  /// router's http_client_options::host); null: none. Bound in start(),
  /// unbound in stop() once the I/O threads have stopped.
  std::shared_ptr<asio_loop_host> transport_loop;
};

/// The number of cores (GATEWAY.md), at least one. One Asio thread
/// parses and writes well over 10,000 requests/s; where the cores are
/// shared with the router's workers, the transport and a load generator,
/// `--threads 1` saves context switches (see bench/README.md).
std::size_t default_io_threads();

/// The server: an Asio io_context run by `threads` I/O threads, one strand
/// per connection. Router completions arrive on CAF worker threads and are
/// posted to their connection's strand; nothing here blocks a worker.
///
/// Threading: start(), begin_shutdown(), stop() and the destructor are
/// called from one controlling thread (the serve command's main thread);
/// in_flight() and draining() from any thread. The router and the metrics
/// must outlive the server's I/O threads (stop() joins them); callbacks
/// the router still holds after that keep what they need alive.
class gateway_server {
public:
  gateway_server(router& r, std::shared_ptr<metrics> m, gateway_options options);
  ~gateway_server();

  gateway_server(const gateway_server&) = delete;
  gateway_server& operator=(const gateway_server&) = delete;

  /// Binds, listens and starts the I/O threads. Returns the bound port.
  /// Throws std::runtime_error saying what failed (address, port, errno).
  std::uint16_t start();
  /// Stops accepting and turns readiness and liveness to 503. Requests in
  /// flight go on; every connection closes after its next answer, and a
  /// chat request that arrives now gets 503 (ShutdownError).
  void begin_shutdown();
  /// Requests dispatched and not yet fully answered (streams included).
  std::size_t in_flight() const noexcept;
  /// Closes every connection and joins the I/O threads.
  void stop();

  /// Opaque: what the connections share (gateway_server.cpp).
  struct state;

private:
  std::shared_ptr<state> state_;
};

} // namespace switchyard::server
