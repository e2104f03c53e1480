#pragma once

#include "switchyard/config.hpp"
#include "switchyard/routing_strategy.hpp"
#include "switchyard/shared_state.hpp"

#include <chrono>
#include <optional>
#include <vector>

namespace switchyard {

using seconds_d = std::chrono::duration<double>;

/// LiteLLM's `allowed_fails` when a router sets none (litellm.allowed_fails):
/// what a kind that an allowed_fails_policy leaves out is allowed.
constexpr int default_allowed_fails = 3;

/// Per-deployment outcome counts over the current one-minute window, and the
/// cooldown rules of ROUTER_SEMANTICS.md section 5 applied to them.
/// Owned by one group's health actor; time comes in as an argument.
class deployment_health {
public:
  deployment_health(const router_config& config, std::uint32_t group);

  void record_success(local_index i, time_point now);
  /// Records a failure and returns the cooldown it starts, if any.
  /// Resilience rules (off by default): a failure on probation (after a
  /// cooldown ended, before a success; cooldown_probe) cools at once; a
  /// cooldown that follows another with no success in between is
  /// cooldown_multiplier times the one before; max_cooldown_time caps it.
  /// `request_cooldown_s`: the failing request's own `cooldown_time`.
  std::optional<seconds_d> record_failure(local_index i, const router_error& e,
                                          time_point now,
                                          std::optional<double> request_cooldown_s = std::nullopt);

  /// The counts the rules see: this replica's window plus the other
  /// replicas' counts (set_remote) while they are fresh.
  std::uint32_t failures(local_index i, time_point now) const;
  std::uint32_t requests(local_index i, time_point now) const;

  /// The other replicas' calls and failures of deployment `i` in the
  /// current minute (fleet_outcomes::others_*), replacing the previous
  /// ones. They count toward allowed_fails and the failure-rate rule for
  /// one window length after they came (so that they age out when Redis
  /// goes quiet). Without them the rules are exactly the local ones.
  void set_remote(local_index i, std::uint64_t requests, std::uint64_t failures,
                  time_point now);

private:
  struct window {
    time_point start{};
    std::uint32_t requests = 0;
    std::uint32_t failures = 0;
  };
  window& current(local_index i, time_point now);
  const window* remote(local_index i, time_point now) const;

  const router_settings& settings_;
  std::vector<std::optional<double>> cooldown_time_s_; ///< per deployment
  /// Cooldowns started since the deployment's last success
  /// (cooldown_multiplier, cooldown_probe), and when the latest one ends.
  std::vector<std::uint32_t> streak_;
  std::vector<time_point> cooled_until_;
  std::vector<window> windows_;
  std::vector<window> remote_; ///< start: when they came
};

/// The cooldown length for a failure (the request's cooldown_time >
/// deployment cooldown_time > the error's Retry-After > router
/// cooldown_time), or nullopt when this failure never cools a deployment
/// down (cooldowns disabled, length 0, APIConnectionError, a 4xx other than
/// 401, 404, 408, 429). Pure.
std::optional<seconds_d> cooldown_length(const router_settings& settings,
                                         std::optional<double> deployment_cooldown_s,
                                         const router_error& e,
                                         std::optional<double> request_cooldown_s = std::nullopt);

/// The default rule set (no allowed_fails): should this failure start a
/// cooldown, given the window counts including it? Pure.
bool default_cooldown_rule(int status, std::uint32_t failures,
                           std::uint32_t requests, std::size_t group_size);

/// Envoy's healthy_panic_threshold: true when fewer than `threshold_percent`
/// of a group's `total` deployments are `available` (0: never). Pure.
bool panic_mode(std::size_t available, std::size_t total, double threshold_percent);

/// A cooldown of length `base` that is the `streak`-th in a row with no
/// success in between (0: the first): base x multiplier^streak, capped at
/// `max_s` when set. Pure.
seconds_d escalated_cooldown(seconds_d base, std::uint32_t streak, double multiplier,
                             std::optional<double> max_s);

/// The local steady-clock time of a shared wall-clock deadline, given both
/// clocks' `now` read together: steady_now + (deadline - wall_now). Pure.
time_point steady_deadline(wall_ms deadline, wall_ms wall_now, time_point steady_now);

/// The wall-clock deadline to share for a local cooldown end. Pure.
wall_ms wall_deadline(time_point until, time_point steady_now, wall_ms wall_now);

/// Which deployments of a group are cooling down, until when.
/// Owned by one group's cooldown actor; time comes in as an argument.
class cooldown_state {
public:
  explicit cooldown_state(std::size_t deployments);

  /// Starts (or extends) a cooldown. Returns true when the deployment was
  /// not cooling down at `now` (the available set changed).
  bool start(local_index i, time_point now, time_point until);
  /// Applies a cooldown heard from another replica (`until` from
  /// steady_deadline): the later end wins, it never shortens one. Returns
  /// true when anything changed: the deployment started cooling down, or
  /// its end moved later (the "try again in" changed). One already over at
  /// `now` changes nothing.
  bool apply_remote(local_index i, time_point now, time_point until);
  /// Ends every cooldown whose time has come. Returns true when any ended.
  bool expire(time_point now);
  /// The same, appending the deployments whose cooldown ended to `ended`.
  bool expire(time_point now, std::vector<local_index>& ended);
  bool cooling(local_index i, time_point now) const;
  /// available[i] == !cooling(i, now).
  std::vector<bool> available(time_point now) const;
  std::size_t available_count(time_point now) const;
  /// max_cooldown_percent: may deployment `i` start cooling now without
  /// more than `max_percent` of the group cooling at once? (One already
  /// cooling may always be extended.)
  bool within_cap(local_index i, time_point now, double max_percent) const;
  /// The shortest remaining cooldown, for "try again in N seconds".
  std::optional<seconds_d> shortest_remaining(time_point now) const;
  /// The earliest `until` still pending (for the expiry timer).
  std::optional<time_point> next_expiry() const;

private:
  std::vector<std::optional<time_point>> until_;
};

} // namespace switchyard
