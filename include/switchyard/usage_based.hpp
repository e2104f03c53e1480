#pragma once

#include "switchyard/routing_strategy.hpp"
#include "switchyard/usage_limits.hpp"

namespace switchyard {

/// usage-based-routing-v2: skips deployments whose rpm or tpm for the
/// current minute this request would exceed, then the lowest tpm used this
/// minute, uniform among ties. Tokens: the request's estimate at pick time
/// for the check, the exchange's tokens when the call ends. O(n) per pick.
class usage_based final : public routing_strategy {
public:
  explicit usage_based(const std::vector<const deployment_config*>& deployments);

  const char* name() const noexcept override { return "usage-based-routing-v2"; }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_picked(local_index i, const pick_context& ctx) override;
  void on_finished(local_index i, const call_feedback& f, time_point now) override;

private:
  usage_limits limits_;
  std::vector<bool> available_;
  std::vector<local_index> scratch_;
};

/// cost-based-routing: the cheapest input_cost_per_token +
/// output_cost_per_token among deployments under their rpm/tpm limits,
/// uniform among ties; a deployment without costs sorts after every priced
/// one. O(n) per pick.
class cost_based final : public routing_strategy {
public:
  explicit cost_based(const std::vector<const deployment_config*>& deployments);

  const char* name() const noexcept override { return "cost-based-routing"; }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_picked(local_index i, const pick_context& ctx) override;
  void on_finished(local_index i, const call_feedback& f, time_point now) override;

private:
  usage_limits limits_;
  std::vector<double> cost_;
  std::vector<bool> available_;
  std::vector<local_index> scratch_;
};

} // namespace switchyard
