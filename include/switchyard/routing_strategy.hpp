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

/// Request-level exclusions: local indices, small (one per failed hop).
using exclusion_list = std::vector<local_index>;

/// The outcome of a pick: a deployment, or none (nothing healthy and not
/// excluded is left), as a value.
struct pick_result {
  std::optional<local_index> chosen;
  bool ok() const noexcept { return chosen.has_value(); }
};

/// A routing strategy for one model group. Owned by that group's picker
/// actor (single-threaded use); pure: no clock or randomness of its own, no
/// I/O. `set_available` is called when the cooldown set changes (rare);
/// `pick` on every request, so it must be cheap.
class routing_strategy {
public:
  virtual ~routing_strategy() = default;
  virtual const char* name() const noexcept = 0;
  /// available[i] == false: deployment i is cooling down.
  virtual void set_available(const std::vector<bool>& available) = 0;
  /// Picks among available deployments not in `excluded` (which may hold
  /// indices of unavailable deployments too). Empty result when none remain;
  /// never falls back to the excluded ones.
  virtual pick_result pick(const exclusion_list& excluded,
                           random_source& rng) = 0;
  /// Feedback from a finished call (latency strategies use it).
  virtual void record_latency(local_index, double /*latency_ms*/, bool /*timed_out*/) {}
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

/// The exclusion filter (twin of LiteLLM's
/// `_get_excluded_filtered_deployments`): the ids not in `excluded`, in
/// order. Empty `excluded` returns all; excluding everything returns an empty
/// list (never the unfiltered one).
std::vector<std::string>
filter_excluded(const std::vector<std::string>& deployment_ids,
                const std::vector<std::string>& excluded);

} // namespace switchyard
