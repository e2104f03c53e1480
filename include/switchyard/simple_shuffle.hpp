#pragma once

#include "switchyard/routing_strategy.hpp"

#include <array>

namespace switchyard {

/// LiteLLM's default strategy (ROUTER_SEMANTICS.md section 4): a weighted
/// random pick by the first of weight, rpm, tpm that any candidate sets (a
/// candidate without it counts 0); a metric whose total is 0 passes to the
/// next; no positive metric at all: uniform.
///
/// Cost: set_available O(n); pick O(k log n + k log k) for k exclusions
/// (prefix sums over the available deployments, with excluded intervals
/// skipped arithmetically), so it stays flat at 1000 deployments.
/// Owned by one picker actor; not thread-safe.
class simple_shuffle final : public routing_strategy {
public:
  /// values[m][i]: metric m (0 weight, 1 rpm, 2 tpm) of deployment i;
  /// nullopt when the deployment does not set it.
  using metric_values = std::array<std::vector<std::optional<double>>, 3>;

  explicit simple_shuffle(metric_values values);
  static std::unique_ptr<routing_strategy>
  from_config(const std::vector<const deployment_config*>& deployments);

  const char* name() const noexcept override { return "simple-shuffle"; }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;

private:
  struct metric_index {
    std::vector<double> cumulative; ///< prefix sums over available_
    double total = 0;
    std::uint32_t setters = 0; ///< available deployments that set it
  };

  metric_values values_;
  std::size_t size_;
  std::vector<local_index> available_;      ///< ascending
  std::vector<std::int32_t> position_;      ///< local -> pos in available_, -1
  std::array<metric_index, 3> metrics_;
  std::vector<std::uint32_t> scratch_;      ///< excluded positions, reused
};

} // namespace switchyard
