#pragma once

#include "switchyard/config.hpp"
#include "switchyard/random_source.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchyard {

using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

/// Positions inside a group (deployment_config::index_in_group).
using local_index = std::uint32_t;

/// Request-level exclusions: local indices, small (the deployments that
/// already failed for the request).
using exclusion_list = std::vector<local_index>;

/// The outcome of a pick: a deployment, or none (nothing healthy and not
/// excluded is left), as a value.
struct pick_result {
  std::optional<local_index> chosen;
  bool ok() const noexcept { return chosen.has_value(); }
};

/// What a pick knows besides the exclusions.
struct pick_context {
  const exclusion_list& excluded;
  /// The request's estimated prompt tokens (usage limits).
  std::uint32_t estimated_tokens = 0;
  time_point now{};
  /// A streamed request.
  bool stream = false;
};

/// What a finished call (any terminal outcome) tells the strategy.
struct call_feedback {
  bool ok = false;
  bool timed_out = false;
  /// The router cancelled the call (a hedge that lost): no sample.
  bool cancelled = false;
  /// The whole call, start to last byte.
  double latency_ms = 0;
  /// Time to first token: a streamed call's, when it got one.
  std::optional<double> first_token_ms;
  /// Tokens of the exchange (prompt + completion), for usage limits.
  std::uint64_t tokens = 0;
};

/// A routing strategy for a set of deployments (one model group, or one
/// `order` tier of it). Owned by that group's picker (single-threaded use);
/// pure: the clock and the randomness come in as arguments, no I/O.
/// `set_available` is called when the cooldown set changes (rare); `pick`
/// on every request, so it must be cheap.
class routing_strategy {
public:
  virtual ~routing_strategy() = default;
  virtual const char* name() const noexcept = 0;
  /// available[i] == false: deployment i is cooling down.
  virtual void set_available(const std::vector<bool>& available) = 0;
  /// Picks among available deployments not in `ctx.excluded` (which may
  /// hold indices of unavailable deployments too). Empty result when none
  /// remain; never falls back to the excluded ones.
  virtual pick_result pick(const pick_context& ctx, random_source& rng) = 0;
  /// Shorthand for a pick with no token estimate at time zero.
  pick_result pick(const exclusion_list& excluded, random_source& rng) {
    return pick(pick_context{excluded}, rng);
  }
  /// The picked deployment's call starts now.
  virtual void on_picked(local_index, const pick_context&) {}
  /// A call to deployment `i` ended (success, failure, timeout or
  /// cancellation): exactly once per on_picked.
  virtual void on_finished(local_index, const call_feedback&, time_point) {}
  /// The other replicas' requests and tokens of deployment `i` in the
  /// current minute (usage_window::set_remote), for strategies that keep
  /// usage; the rest ignore it.
  virtual void set_remote_usage(local_index, std::uint64_t /*requests*/,
                                std::uint64_t /*tokens*/, time_point) {}
  /// Whether it counts usage (and so wants set_remote_usage).
  virtual bool keeps_usage() const noexcept { return false; }
};

/// Builds a strategy for one group's deployments.
using strategy_factory = std::function<std::unique_ptr<routing_strategy>(
  const std::vector<const deployment_config*>& deployments,
  const router_settings& settings)>;

/// Strategies by name, built explicitly at start-up (no static registration).
class strategy_registry {
public:
  /// A registry holding every built-in strategy.
  static const strategy_registry& builtin();

  void add(std::string name, strategy_factory factory);
  bool contains(const std::string& name) const;
  /// The names, sorted, comma-separated: for error messages.
  std::string names() const;
  /// nullptr when the name is unknown.
  std::unique_ptr<routing_strategy>
  make(const std::string& name,
       const std::vector<const deployment_config*>& deployments,
       const router_settings& settings) const;

private:
  std::map<std::string, strategy_factory> factories_;
};

} // namespace switchyard
