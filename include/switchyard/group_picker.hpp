#pragma once

#include "switchyard/config.hpp"
#include "switchyard/retry_budget.hpp"
#include "switchyard/routing_strategy.hpp"
#include "switchyard/usage_limits.hpp"

#include <climits>
#include <memory>
#include <optional>
#include <vector>

namespace switchyard {

/// What an orchestrator asks a group's picker.
struct pick_request {
  /// The request's excluded deployments (group-local indices).
  exclusion_list excluded;
  /// Only `order` tiers at or above this one (the flow moves up a tier when
  /// one is exhausted); nullopt: all.
  std::optional<int> min_order;
  /// The request's estimated prompt tokens (pre-call checks, usage limits).
  std::uint32_t estimated_tokens = 0;
  /// A streamed request (latency-based-routing ranks it by first token).
  bool stream = false;
  /// A retry, failover hop or hedge: spends the group's retry budget.
  bool extra = false;
};

/// A pick's outcome as a value.
struct group_pick {
  /// Deployments without `order` form the last tier.
  static constexpr int unordered = INT_MAX;

  std::optional<local_index> chosen; ///< group-local
  /// The tier picked from, or the tier whose candidates were all excluded.
  int order = unordered;
  /// Nothing left, and the pre-call checks removed some candidates for
  /// their context window: the request is too long for this group.
  bool context_window = false;
  /// An extra call the group's retry budget refused (nothing picked).
  bool budget_refused = false;
  /// The chosen deployment is on probation (cooldown_probe): this is its
  /// one call at a time.
  bool probe = false;
};

/// One model group's candidate pipeline (ROUTER_SEMANTICS.md section 4):
/// deployments -> minus cooling down -> pre-call checks (if enabled:
/// max_input_tokens vs. the request's estimate, rpm limit) -> the lowest
/// `order` tier with a candidate -> minus the request's exclusions -> the
/// tier's routing strategy. Switchyard's resilience rules apply here too
/// (each off unless configured): the retry budget refuses extra calls; in
/// panic (panic_mode) cooldowns are ignored; a deployment on probation
/// (cooldown_probe) takes one call at a time until one succeeds.
/// Owned by the group's picker actor; time and randomness are arguments.
/// Cost: without pre-call checks, the strategy's pick (O(k log n) for
/// simple-shuffle) plus O(tiers); with them, O(n).
class group_picker {
public:
  group_picker(const router_config& config, std::uint32_t group,
               const strategy_registry& registry = strategy_registry::builtin());

  /// available[i] == false: deployment i is cooling down.
  void set_available(const std::vector<bool>& available);
  group_pick pick(const pick_request& request, time_point now, random_source& rng);
  /// A call to deployment `i` ended, whatever its outcome (cancelled too).
  void on_finished(local_index i, const call_feedback& feedback, time_point now);
  /// The other replicas' usage of deployment `i` this minute
  /// (fleet_usage::others_*): to the pre-call rpm check and to the tier's
  /// strategy, so that both hold across the fleet.
  void set_remote_usage(local_index i, std::uint64_t requests, std::uint64_t tokens,
                        time_point now);
  /// Whether picks and finished calls feed usage counts (a usage-keeping
  /// strategy or the pre-call checks): only then is usage worth sharing.
  bool counts_usage() const noexcept { return counts_usage_; }

  /// Picks ignore cooldowns: too few deployments are available.
  bool in_panic() const noexcept { return panic_; }
  bool on_probation(local_index i) const { return probation_.at(i); }
  /// Extra calls the retry budget refused (0 without a budget).
  std::uint64_t budget_refused() const noexcept { return budget_ ? budget_->refused() : 0; }

private:
  struct tier {
    int order = group_pick::unordered;
    std::vector<local_index> members; ///< group-local, ascending
    std::unique_ptr<routing_strategy> strategy;
    std::size_t available = 0;
  };

  bool passes_pre_call(local_index i, std::uint32_t tokens, time_point now,
                       bool& context_window) const;

  std::vector<tier> tiers_; ///< ascending order
  std::vector<std::uint32_t> tier_of_;   ///< group-local -> tier
  std::vector<local_index> pos_in_tier_; ///< group-local -> tier-local
  std::vector<bool> available_;  ///< not cooling down
  std::vector<bool> effective_;  ///< what picks see (all, in panic)
  bool pre_call_checks_;
  double panic_threshold_;
  bool panic_ = false;
  bool probe_;
  std::vector<bool> probation_;  ///< cooled, no success since
  std::vector<bool> probe_busy_; ///< its one call is in flight
  std::optional<retry_budget> budget_;
  bool counts_usage_;
  std::vector<std::optional<std::int64_t>> max_input_tokens_;
  usage_limits usage_; ///< for the pre-call rpm check
  exclusion_list scratch_;
};

/// The `order` of the group's next tier above `order` (deployments without
/// one form the last tier, group_pick::unordered), or nullopt. Pure.
std::optional<int> next_order(const router_config& config, std::uint32_t group,
                              int order);

} // namespace switchyard
