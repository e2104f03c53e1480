#include "switchyard/cooldown.hpp"

#include <algorithm>
#include <cmath>

namespace switchyard {

namespace {

constexpr auto window_length = std::chrono::seconds(60);

} // namespace

std::optional<seconds_d> cooldown_length(const router_settings& settings,
                                         std::optional<double> deployment_cooldown_s,
                                         const router_error& e,
                                         std::optional<double> request_cooldown_s) {
  if (settings.disable_cooldowns)
    return std::nullopt;
  if (e.kind == error_kind::api_connection)
    return std::nullopt;
  // The router's own verdicts say nothing about a deployment's health.
  if (e.kind == error_kind::no_deployments_available
      || e.kind == error_kind::overloaded || e.kind == error_kind::shutdown
      || e.kind == error_kind::cancelled)
    return std::nullopt;
  const int s = e.status;
  if (s >= 400 && s < 500 && s != 401 && s != 404 && s != 408 && s != 429)
    return std::nullopt;
  double length = settings.cooldown_time_s;
  if (request_cooldown_s)
    length = *request_cooldown_s;
  else if (deployment_cooldown_s)
    length = *deployment_cooldown_s;
  else if (e.retry_after_s)
    length = *e.retry_after_s;
  if (!(length > 0))
    return std::nullopt;
  return seconds_d(length);
}

bool default_cooldown_rule(int status, std::uint32_t failures,
                           std::uint32_t requests, std::size_t group_size) {
  if (status == 429 && group_size > 1)
    return true;
  if (status == 401 || status == 404)
    return true;
  if (group_size > 1 && requests >= 5
      && static_cast<double>(failures) / requests > 0.5)
    return true;
  return requests >= 1000 && failures == requests;
}

deployment_health::deployment_health(const router_config& config,
                                     std::uint32_t group)
  : settings_(config.settings) {
  for (auto d : config.groups.at(group).deployments)
    cooldown_time_s_.push_back(config.deployments[d].cooldown_time_s);
  windows_.resize(cooldown_time_s_.size());
  streak_.resize(cooldown_time_s_.size());
  cooled_until_.resize(cooldown_time_s_.size());
  remote_.resize(cooldown_time_s_.size());
}

const deployment_health::window* deployment_health::remote(local_index i,
                                                           time_point now) const {
  const auto& r = remote_.at(i);
  return r.requests > 0 && now - r.start < window_length ? &r : nullptr;
}

void deployment_health::set_remote(local_index i, std::uint64_t requests,
                                   std::uint64_t failures, time_point now) {
  const auto clamp = [](std::uint64_t x) {
    return static_cast<std::uint32_t>(std::min<std::uint64_t>(x, UINT32_MAX / 2));
  };
  remote_.at(i) = window{now, clamp(requests), clamp(std::min(failures, requests))};
}

deployment_health::window& deployment_health::current(local_index i,
                                                      time_point now) {
  auto& w = windows_.at(i);
  if (w.requests == 0 || now - w.start >= window_length)
    w = window{now, 0, 0};
  return w;
}

void deployment_health::record_success(local_index i, time_point now) {
  ++current(i, now).requests;
  streak_.at(i) = 0;
}

std::optional<seconds_d>
deployment_health::record_failure(local_index i, const router_error& e,
                                  time_point now,
                                  std::optional<double> request_cooldown_s) {
  auto& w = current(i, now);
  ++w.requests;
  ++w.failures;
  const auto* r = remote(i, now);
  const std::uint32_t fleet_failures = w.failures + (r ? r->failures : 0);
  const std::uint32_t fleet_requests = w.requests + (r ? r->requests : 0);
  auto length = cooldown_length(settings_, cooldown_time_s_.at(i), e, request_cooldown_s);
  if (!length)
    return std::nullopt;
  // allowed_fails_policy (per kind) over allowed_fails; either one replaces
  // the default rules. With a policy, a kind it leaves out gets
  // allowed_fails or LiteLLM's default 3 (should_cooldown_based_on_
  // allowed_fails_policy), never the default rules.
  std::optional<int> allowed = settings_.allowed_fails;
  if (const auto& policy = settings_.allowed_fails_policy; policy.is_set())
    allowed = policy.for_kind(e.kind).value_or(
      settings_.allowed_fails.value_or(default_allowed_fails));
  // Still cooling (a call that started before the cooldown): no
  // escalation, and no probation yet.
  const bool cooling = streak_.at(i) > 0 && now < cooled_until_.at(i);
  const bool probation = settings_.cooldown_probe && streak_.at(i) > 0 && !cooling;
  bool cool;
  if (probation)
    cool = true; // a failure on probation cools again at once
  else if (allowed)
    cool = fleet_failures > static_cast<std::uint32_t>(*allowed);
  else
    cool = default_cooldown_rule(e.status, fleet_failures, fleet_requests,
                                 windows_.size());
  if (!cool)
    return std::nullopt;
  if (cooling)
    return escalated_cooldown(*length, streak_[i] - 1, settings_.cooldown_multiplier,
                              settings_.max_cooldown_time_s);
  length = escalated_cooldown(*length, streak_[i], settings_.cooldown_multiplier,
                              settings_.max_cooldown_time_s);
  ++streak_[i];
  cooled_until_[i] = now + std::chrono::duration_cast<clock_type::duration>(*length);
  return length;
}

bool panic_mode(std::size_t available, std::size_t total, double threshold_percent) {
  return threshold_percent > 0 && total > 0
         && static_cast<double>(available) * 100.0
              < threshold_percent * static_cast<double>(total);
}

seconds_d escalated_cooldown(seconds_d base, std::uint32_t streak, double multiplier,
                             std::optional<double> max_s) {
  double s = base.count();
  // Stop multiplying once past the cap (or past anything finite).
  for (std::uint32_t k = 0; k < streak && std::isfinite(s); ++k) {
    s *= multiplier;
    if (max_s && s >= *max_s)
      break;
  }
  if (max_s)
    s = std::min(s, *max_s);
  return seconds_d(s);
}

bool cooldown_state::within_cap(local_index i, time_point now, double max_percent) const {
  if (cooling(i, now))
    return true;
  const auto n = until_.size();
  const auto cooling_now = n - available_count(now);
  return static_cast<double>(cooling_now + 1) * 100.0
         <= max_percent * static_cast<double>(n);
}

std::uint32_t deployment_health::failures(local_index i, time_point now) const {
  const auto& w = windows_.at(i);
  const auto* r = remote(i, now);
  return (now - w.start >= window_length ? 0 : w.failures) + (r ? r->failures : 0);
}

std::uint32_t deployment_health::requests(local_index i, time_point now) const {
  const auto& w = windows_.at(i);
  const auto* r = remote(i, now);
  return (now - w.start >= window_length ? 0 : w.requests) + (r ? r->requests : 0);
}

cooldown_state::cooldown_state(std::size_t deployments) : until_(deployments) {
}

bool cooldown_state::start(local_index i, time_point now, time_point until) {
  const bool was_available = !cooling(i, now);
  auto& u = until_.at(i);
  if (was_available)
    u.reset(); // a cooldown that ran out but was not expired yet
  if (!u || *u < until)
    u = until;
  return was_available;
}

bool cooldown_state::apply_remote(local_index i, time_point now, time_point until) {
  if (until <= now)
    return false;
  const auto& u = until_.at(i);
  if (cooling(i, now) && *u >= until)
    return false;
  start(i, now, until);
  return true;
}

time_point steady_deadline(wall_ms deadline, wall_ms wall_now, time_point steady_now) {
  return steady_now + std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::milliseconds(deadline - wall_now));
}

wall_ms wall_deadline(time_point until, time_point steady_now, wall_ms wall_now) {
  // Rounded up: the shared deadline never ends before the local one.
  return wall_now + std::chrono::ceil<std::chrono::milliseconds>(until - steady_now).count();
}

bool cooldown_state::expire(time_point now) {
  std::vector<local_index> ended;
  return expire(now, ended);
}

bool cooldown_state::expire(time_point now, std::vector<local_index>& ended) {
  for (local_index i = 0; i < until_.size(); ++i)
    if (until_[i] && *until_[i] <= now) {
      until_[i].reset();
      ended.push_back(i);
    }
  return !ended.empty();
}

bool cooldown_state::cooling(local_index i, time_point now) const {
  const auto& u = until_.at(i);
  return u && *u > now;
}

std::vector<bool> cooldown_state::available(time_point now) const {
  std::vector<bool> out(until_.size());
  for (std::size_t i = 0; i < until_.size(); ++i)
    out[i] = !cooling(static_cast<local_index>(i), now);
  return out;
}

std::size_t cooldown_state::available_count(time_point now) const {
  std::size_t n = 0;
  for (std::size_t i = 0; i < until_.size(); ++i)
    n += cooling(static_cast<local_index>(i), now) ? 0 : 1;
  return n;
}

std::optional<seconds_d> cooldown_state::shortest_remaining(time_point now) const {
  std::optional<seconds_d> best;
  for (const auto& u : until_)
    if (u && *u > now) {
      seconds_d left = *u - now;
      if (!best || left < *best)
        best = left;
    }
  return best;
}

std::optional<time_point> cooldown_state::next_expiry() const {
  std::optional<time_point> best;
  for (const auto& u : until_)
    if (u && (!best || *u < *best))
      best = *u;
  return best;
}

} // namespace switchyard
