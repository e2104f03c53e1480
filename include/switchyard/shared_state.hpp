#pragma once

// State shared across router replicas (docs SHARED_STATE.md): cooldowns,
// per-minute usage and per-minute call outcomes. The actors write through
// `shared_state` and hear of the rest of the fleet through a
// `shared_state_listener`. CAF-free: the actors turn listener calls into
// messages.

#include "switchyard/error.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

struct router_config;

/// Wall-clock milliseconds since the Unix epoch (shared deadlines are
/// wall-clock times: every replica reads its own clock).
using wall_ms = std::int64_t;

/// The wall-clock minute a wall-clock time falls in (ms / 60000, floored),
/// the unit of the per-minute counters.
constexpr std::int64_t wall_minute(wall_ms t) noexcept {
  return (t >= 0 ? t : t - 59'999) / 60'000;
}

/// A cooldown, as published and as heard from another replica.
struct shared_cooldown {
  std::string deployment_id;
  wall_ms deadline_ms = 0; ///< cooling until this wall-clock time
  error_kind kind = error_kind::internal_server;
  int status = 0;          ///< the HTTP status of the failure behind it
};

/// Requests (rpm) and tokens (tpm) of one deployment in one wall-clock
/// minute, across the fleet. `own_*` is the part of the totals that this
/// replica wrote; `others_*()` is what the local counts lack.
struct fleet_usage {
  std::string deployment_id;
  std::int64_t minute = 0;
  std::uint64_t requests = 0;
  std::uint64_t tokens = 0;
  std::uint64_t own_requests = 0;
  std::uint64_t own_tokens = 0;
  std::uint64_t others_requests() const noexcept {
    return requests > own_requests ? requests - own_requests : 0;
  }
  std::uint64_t others_tokens() const noexcept {
    return tokens > own_tokens ? tokens - own_tokens : 0;
  }
};

/// Finished calls and failed calls of one deployment in one wall-clock
/// minute, across the fleet (the counts behind allowed_fails and the
/// failure-rate rule); `own_*` as in fleet_usage.
struct fleet_outcomes {
  std::string deployment_id;
  std::int64_t minute = 0;
  std::uint64_t requests = 0;
  std::uint64_t failures = 0;
  std::uint64_t own_requests = 0;
  std::uint64_t own_failures = 0;
  std::uint64_t others_requests() const noexcept {
    return requests > own_requests ? requests - own_requests : 0;
  }
  std::uint64_t others_failures() const noexcept {
    return failures > own_failures ? failures - own_failures : 0;
  }
};

/// The connection to the shared store, for readiness and metrics.
struct shared_state_status {
  enum class state : std::uint8_t {
    none,      ///< no shared store configured: local state only (the default)
    connected, ///< both connections up, authenticated and subscribed
    down,      ///< configured but unusable right now: local state only
  };
  state value = state::none;
  /// Why it is down ("connection refused", "authentication failed: ...");
  /// empty otherwise. Never contains the password.
  std::string reason;
};

/// "none", "connected" or "down".
std::string_view name_of(shared_state_status::state s) noexcept;

/// Counters of a shared_state since it started, for metrics and tests.
struct shared_state_stats {
  std::uint64_t calls = 0;            ///< publish_cooldown/add_usage/add_outcome calls
  std::uint64_t batches_acked = 0;    ///< counter batches Redis confirmed
  std::uint64_t batches_resent = 0;   ///< sent again after a reply never came
  std::uint64_t batches_duplicate = 0;///< resends Redis had applied already
  std::uint64_t counts_dropped = 0;  ///< older than the key TTL when sent: dropped
  std::uint64_t cooldowns_sent = 0;   ///< cooldown scripts Redis confirmed
  std::uint64_t cooldowns_heard = 0;  ///< remote cooldowns given to the listener
  std::uint64_t connects = 0;         ///< times status became connected
};

/// Remote events, as plain values. Called on the shared state's own I/O
/// thread, one call at a time, never with a lock held: an implementation
/// must not block (an actor turns each call into a message and returns).
/// It must stay alive until the shared_state that calls it is destroyed.
class shared_state_listener {
public:
  virtual ~shared_state_listener() = default;
  /// Another replica cooled a deployment down (heard on the channel, or
  /// found by the periodic re-read); only deadlines later than any this
  /// replica already knows of for that deployment.
  virtual void on_cooldown(const shared_cooldown& c) = 0;
  /// Fleet usage for the current wall-clock minute, for the entries that
  /// changed since the previous call (about every totals_interval).
  virtual void on_usage(const std::vector<fleet_usage>& usage) = 0;
  /// Fleet call outcomes for the current wall-clock minute, likewise.
  virtual void on_outcomes(const std::vector<fleet_outcomes>& outcomes) = 0;
  /// The connection status changed.
  virtual void on_status(const shared_state_status& s) = 0;
};

/// What the actors call to share state. Every call is thread-safe and
/// never blocks on I/O: it is a short-mutex enqueue (O(1) amortised, one
/// hash lookup; counts for the same deployment and minute are merged until
/// sent), plus a non-blocking eventfd write to wake the I/O thread (every
/// cooldown; the first count of each batch). The I/O happens later on the
/// implementation's own thread.
/// Nothing is reported back per call: a store that is down only means the
/// fleet hears of it later (cooldowns) or not at all (old minutes).
class shared_state {
public:
  virtual ~shared_state() = default;

  /// Shares a cooldown this replica started. Never shortens one already
  /// shared: the store keeps the later deadline.
  virtual void publish_cooldown(const shared_cooldown& c) = 0;
  /// Adds this replica's usage of a deployment in wall-clock `minute`.
  virtual void add_usage(std::string_view deployment_id, std::int64_t minute,
                         std::uint64_t requests, std::uint64_t tokens) = 0;
  /// Adds one finished call of a deployment in wall-clock `minute`.
  virtual void add_outcome(std::string_view deployment_id, std::int64_t minute,
                           bool failed) = 0;

  virtual shared_state_status status() const = 0;
  virtual shared_state_stats stats() const = 0;
  /// The cooldowns this replica knows of whose deadline is still ahead at
  /// `now` (its own, published, and those heard from the fleet), the latest
  /// per deployment. From memory: no I/O, whether the store is up or not.
  /// For actors started afresh (a restarted group) so that they begin with
  /// the fleet's cooldowns instead of none.
  virtual std::vector<shared_cooldown> cooldowns(wall_ms now) const = 0;
};

/// Today's behaviour: nothing leaves the process, the listener is never
/// called, status is `none`. Stateless: share freely.
class local_shared_state final : public shared_state {
public:
  void publish_cooldown(const shared_cooldown&) override {}
  void add_usage(std::string_view, std::int64_t, std::uint64_t, std::uint64_t) override {}
  void add_outcome(std::string_view, std::int64_t, bool) override {}
  shared_state_status status() const override { return {}; }
  shared_state_stats stats() const override { return {}; }
  std::vector<shared_cooldown> cooldowns(wall_ms) const override { return {}; }
};

/// The shared state `config` asks for: Redis when router_settings names one
/// (redis_host or redis_url), else a local_shared_state. Connecting happens
/// in the background; this never blocks and never throws for an
/// unreachable or refusing store (status says so instead). Defined in the
/// switchyard_shared_state library.
std::unique_ptr<shared_state> make_shared_state(const router_config& config,
                                                std::shared_ptr<shared_state_listener> listener);

} // namespace switchyard
