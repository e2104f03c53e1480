#pragma once

#include "switchyard/error.hpp"
#include "switchyard/shared_state.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace switchyard {

/// A request got its one answer.
struct request_event {
  std::string_view model_group; ///< the group asked for (after aliases)
  std::optional<error_kind> error; ///< nullopt: success
  double duration_ms = 0;
  /// Time spent waiting on deployments (sum of attempt latencies).
  double upstream_ms = 0;
  int attempts = 0;
  int retries = 0;     ///< calls after the first within a hop
  int failovers = 0;   ///< weighted-failover hops
  int fallbacks = 0;   ///< cross-group fallback hops
  bool stream = false;
  /// Extra calls (retries, failover hops) the group's retry budget refused.
  int budget_refused = 0;
};

/// One deployment call ended.
struct attempt_event {
  std::string_view deployment_id;
  std::string_view model_group;
  std::optional<error_kind> outcome; ///< nullopt: success
  double latency_ms = 0;
  std::optional<double> first_token_ms;
  std::uint64_t prompt_tokens = 0;
  std::uint64_t completion_tokens = 0;
  bool hedge = false;
};

/// A deployment started or ended a cooldown.
struct cooldown_event {
  std::string_view deployment_id;
  std::string_view model_group;
  bool started = true; ///< false: the cooldown ended
  double seconds = 0;  ///< started: its length
};

/// A model group entered or left panic (panic_threshold): its picks
/// ignore cooldowns while too few deployments are available.
struct panic_event {
  std::string_view model_group;
  bool entered = true; ///< false: it left panic
  std::size_t available = 0;
  std::size_t total = 0;
};

/// A request refused at admission (max_in_flight).
struct admission_event {
  std::size_t in_flight = 0;
  std::size_t max_in_flight = 0;
};

/// Receives the router's typed events (set through router_options). Called
/// on the router's worker threads, concurrently: an implementation is
/// thread-safe, cheap and never blocks (count, then return). Views are
/// valid only during the call. Labels are names and ids, never secrets.
class router_observer {
public:
  virtual ~router_observer() = default;
  virtual void on_request(const request_event&) {}
  virtual void on_attempt(const attempt_event&) {}
  virtual void on_cooldown(const cooldown_event&) {}
  virtual void on_panic(const panic_event&) {}
  virtual void on_admission_refused(const admission_event&) {}
  /// The connection to the shared state (Redis) changed: connected, or
  /// down and serving with local state only (`reason` says why; never a
  /// password). Called on the shared state's I/O thread.
  virtual void on_shared_state(const shared_state_status&) {}
};

} // namespace switchyard
