#pragma once

#include "switchyard/config.hpp"
#include "switchyard/routing_strategy.hpp"

#include <chrono>
#include <optional>
#include <vector>

namespace switchyard {

using seconds_d = std::chrono::duration<double>;

/// Per-deployment outcome counts over the current one-minute window, and the
/// cooldown rules of ROUTER_SEMANTICS.md section 5 applied to them.
/// Owned by one group's health actor; time comes in as an argument.
class deployment_health {
public:
  deployment_health(const router_config& config, std::uint32_t group);

  void record_success(local_index i, time_point now);
  /// Records a failure and returns the cooldown it starts, if any.
  /// `request_cooldown_s`: the failing request's own `cooldown_time`.
  std::optional<seconds_d> record_failure(local_index i, const router_error& e,
                                          time_point now,
                                          std::optional<double> request_cooldown_s = std::nullopt);

  std::uint32_t failures(local_index i, time_point now) const;
  std::uint32_t requests(local_index i, time_point now) const;

private:
  struct window {
    time_point start{};
    std::uint32_t requests = 0;
    std::uint32_t failures = 0;
  };
  window& current(local_index i, time_point now);

  const router_settings& settings_;
  std::vector<std::optional<double>> cooldown_time_s_; ///< per deployment
  std::vector<window> windows_;
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

/// Which deployments of a group are cooling down, until when.
/// Owned by one group's cooldown actor; time comes in as an argument.
class cooldown_state {
public:
  explicit cooldown_state(std::size_t deployments);

  /// Starts (or extends) a cooldown. Returns true when the deployment was
  /// not cooling down at `now` (the available set changed).
  bool start(local_index i, time_point now, time_point until);
  /// Ends every cooldown whose time has come. Returns true when any ended.
  bool expire(time_point now);
  /// The same, appending the deployments whose cooldown ended to `ended`.
  bool expire(time_point now, std::vector<local_index>& ended);
  bool cooling(local_index i, time_point now) const;
  /// available[i] == !cooling(i, now).
  std::vector<bool> available(time_point now) const;
  std::size_t available_count(time_point now) const;
  /// The shortest remaining cooldown, for "try again in N seconds".
  std::optional<seconds_d> shortest_remaining(time_point now) const;
  /// The earliest `until` still pending (for the expiry timer).
  std::optional<time_point> next_expiry() const;

private:
  std::vector<std::optional<time_point>> until_;
};

} // namespace switchyard
