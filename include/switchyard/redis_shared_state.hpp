#pragma once

#include "switchyard/config.hpp"
#include "switchyard/shared_state.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace switchyard {

/// How a redis_shared_state connects and how often it talks to Redis.
struct redis_shared_state_options {
  redis_settings server;
  /// The deployments whose cooldowns and fleet totals are read back (every
  /// deployment id of the config).
  std::vector<std::string> deployment_ids;
  /// Counter increments wait this long to be sent together.
  std::chrono::milliseconds flush_interval{10};
  /// How often the fleet totals of the current minute are read.
  std::chrono::milliseconds totals_interval{100};
  /// How often the cooldowns are re-read (the backstop for missed messages).
  std::chrono::milliseconds cooldown_reread_interval{1000};
  /// A connection not ready (connected, authenticated, subscribed) by then
  /// is dropped and tried again.
  std::chrono::milliseconds connect_timeout{1000};
  /// A command connection with a reply outstanding this long is dropped
  /// (Redis is stalled) and tried again.
  std::chrono::milliseconds reply_timeout{2000};
  /// Reconnection backoff: doubles from min to max after each failure.
  std::chrono::milliseconds backoff_min{100};
  std::chrono::milliseconds backoff_max{5000};
  /// The wall clock (ms since the epoch); unset: std::chrono::system_clock.
  std::function<wall_ms()> wall_clock;
  /// Names this replica in published messages and its batch sequence key;
  /// unset: random. Unique per process run.
  std::string instance_id;
};

/// Shared state in Redis, through hiredis's async API on a thread of its
/// own (a poll() loop with hiredis's five event hooks), with a second
/// connection for SUBSCRIBE.
///
/// Threading: every public member may be called from any thread; each call
/// takes a short mutex to enqueue and returns (no I/O, no wait on Redis).
/// The listener is called on the I/O thread. The destructor stops the
/// thread (it waits for the loop, never for Redis).
///
/// Keys (P = key_prefix, default "switchyard:"):
/// - `P cooldown:<id>`: "<deadline_ms> <status> <kind>", TTL = the time
///   left until the deadline (PX), written by a Lua script only when it
///   extends the stored deadline, which then PUBLISHes on `P cooldowns`
///   "<deadline_ms> <status> <kind> <instance> <id>".
/// - `P counts:<id>:<minute>`: a hash, fields rpm, tpm, calls, fails; TTL
///   120 s after its last write.
/// - `P batch:<instance>`: the sequence number of this replica's last
///   counter batch applied, TTL 1 h, so that a batch sent again after a
///   lost reply is applied once.
class redis_shared_state final : public shared_state {
public:
  redis_shared_state(redis_shared_state_options options,
                     std::shared_ptr<shared_state_listener> listener);
  ~redis_shared_state() override;
  redis_shared_state(const redis_shared_state&) = delete;
  redis_shared_state& operator=(const redis_shared_state&) = delete;

  void publish_cooldown(const shared_cooldown& c) override;
  void add_usage(std::string_view deployment_id, std::int64_t minute,
                 std::uint64_t requests, std::uint64_t tokens) override;
  void add_outcome(std::string_view deployment_id, std::int64_t minute,
                   bool failed) override;
  shared_state_status status() const override;
  shared_state_stats stats() const override;
  std::vector<shared_cooldown> cooldowns(wall_ms now) const override;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace switchyard
