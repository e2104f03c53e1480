#pragma once

#include "switchyard/config.hpp"
#include "switchyard/http_client.hpp"
#include "switchyard/request.hpp"
#include "switchyard/shared_state.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

namespace caf {
class actor;
class actor_system;
} // namespace caf

namespace switchyard {

/// Called once per request with its answer, on one of the actor system's
/// worker threads: keep it short and never block in it.
using completion_handler = std::function<void(route_result)>;

/// Called for each OpenAI `chat.completion.chunk` of a streamed request
/// once the router has committed it to a deployment (the first-chunk
/// gate, TRANSPORT.md section 5), in order, on a worker thread, and never
/// concurrently with itself or with the request's completion_handler,
/// which comes last.
using chunk_handler = std::function<void(const nlohmann::json& chunk)>;

/// Called once for a streamed request, when the router commits it to a
/// deployment (the first-chunk gate) and before that first chunk reaches
/// the chunk_handler: the deployment, attempts, fallback depth and time
/// spent on providers so far, for headers that must leave with the first
/// chunk. Same thread rules as chunk_handler; never called for a request
/// that fails before any chunk (or whose answer came whole, unstreamed).
using commit_handler = std::function<void(const stream_commit& commit)>;

class router_observer;
class timer_service;
class transport;

/// Cancels one request: its upstream call is cancelled and its
/// completion_handler gets a CancelledError (unless it already had its
/// answer). Cheap to copy; safe from any thread, more than once, and after
/// the request finished. A default-constructed handle does nothing.
class request_handle {
public:
  struct canceller {
    virtual ~canceller() = default;
    virtual void cancel() noexcept = 0;
  };
  request_handle() = default;
  explicit request_handle(std::shared_ptr<canceller> c) : c_(std::move(c)) {}
  void cancel() const noexcept {
    if (c_)
      c_->cancel();
  }

private:
  std::shared_ptr<canceller> c_;
};

struct router_options {
  /// Seed for every random draw (picks, mock failures, jitter). nullopt: a
  /// fresh seed from std::random_device at start-up.
  std::optional<std::uint64_t> seed;
  /// Scheduler threads when the router owns its actor system (0: CAF's
  /// default, one per core).
  std::size_t threads = 0;
  /// Requests in flight at most (0: no cap). Past it a request is answered
  /// at once with OverloadedError (429), so memory stays bounded under
  /// overload; admission resumes as soon as answers go out.
  std::size_t max_in_flight = 0;
  /// Receives typed events (requests, attempts, cooldowns, refusals); may
  /// be null. Must outlive the router.
  std::shared_ptr<router_observer> observer;
  /// The transport for deployments that are not mocks; null: the built-in
  /// HTTP transport (libcurl, its own I/O thread), started only when the
  /// config has a real deployment.
  std::shared_ptr<transport> http;
  /// The built-in HTTP transport's connection pool: keep-alive
  /// connections per host (a cap; calls past it queue), HTTP/2.
  http_client_options http_client;
  /// Runs retry waits and total_timeout deadlines; null: a timer thread of
  /// the router's own. Tests pass one driven by a simulated clock.
  std::shared_ptr<timer_service> timers;
  /// How the owned actor system's idle workers wait for work. `poll`:
  /// CAF's default, spinning briefly, then checking every 50 us for about
  /// 25 ms, then sleeping; quick to pick work up when cores are to spare.
  /// `sleep`: an idle worker sleeps at once until work is handed to it (a
  /// futex wake-up). Where the cores are shared with other busy threads (a
  /// gateway's I/O threads and the transport's), polling takes CPU from
  /// them: `switchyard serve` sleeps (measured there on 2 cores: ~20 % less
  /// CPU per request, ~20-40 % more requests/s).
  enum class idle_policy { poll, sleep };
  idle_policy idle_workers = idle_policy::poll;
};

/// The embedding API: a router built from a validated config.
///
/// Either it owns its caf::actor_system (the first constructor) or it joins
/// one the application already runs (the second). Every member function is
/// safe to call from any thread at once. Destroying the router stops its
/// actors; a router that owns its system also waits for them to finish.
class router {
public:
  /// Starts a private actor system and the router's actors.
  explicit router(router_config config, router_options options = {});
  /// Spawns the router's actors in `system`, which must outlive the router.
  router(caf::actor_system& system, router_config config,
         router_options options = {});
  ~router();

  router(const router&) = delete;
  router& operator=(const router&) = delete;

  /// Routes a request; `done` gets its one answer. Never blocks. For a
  /// request with `stream: true` the answer holds the assembled reply.
  request_handle async_complete(chat_request request, completion_handler done);
  /// Routes a streamed request (`stream` is set on it): chunks go to
  /// `on_chunk` as they arrive once committed, then `done` gets the one
  /// answer (an error after the commit ends the stream with it).
  request_handle async_stream(chat_request request, chunk_handler on_chunk,
                              completion_handler done);
  /// The same, and `on_commit` hears where the stream committed just
  /// before its first chunk.
  request_handle async_stream(chat_request request, commit_handler on_commit,
                              chunk_handler on_chunk, completion_handler done);
  /// Routes a request and waits for its answer.
  route_result complete(chat_request request);

  /// The router actor, for applications that are actor systems themselves:
  /// send it `(switchyard::route_atom, switchyard::request_ptr)` and get a
  /// `route_result` back (see switchyard/actor_protocol.hpp).
  caf::actor handle() const;

  const router_config& config() const noexcept;
  std::shared_ptr<const router_config> shared_config() const noexcept;

  /// The connection to the state shared with other replicas (Redis):
  /// `none` without one configured, `connected`, or `down` (serving with
  /// local state only; `reason` says why, never with the password). For
  /// readiness checks and metrics; a short mutex, no I/O.
  switchyard::shared_state_status shared_state_status() const;
  /// Its counters (calls, batches, cooldowns sent and heard, connects).
  switchyard::shared_state_stats shared_state_stats() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace switchyard
