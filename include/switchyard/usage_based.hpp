#pragma once

#include "switchyard/routing_strategy.hpp"
#include "switchyard/usage_limits.hpp"

namespace switchyard {

/// The shared shape of usage-based and cost-based routing: among the
/// available, non-excluded deployments this request keeps within their rpm
/// and tpm for the current minute, the lowest `key`, uniform among ties.
/// Tokens: the request's estimate at pick time for the check, the
/// exchange's tokens when the call ends. O(n) per pick.
class limited_lowest : public routing_strategy {
public:
  explicit limited_lowest(const std::vector<const deployment_config*>& deployments);

  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_picked(local_index i, const pick_context& ctx) override;
  void on_finished(local_index i, const call_feedback& f, time_point now) override;
  void set_remote_usage(local_index i, std::uint64_t requests, std::uint64_t tokens,
                        time_point now) override;
  bool keeps_usage() const noexcept override { return true; }

protected:
  virtual double key(local_index i, time_point now) const = 0;
  const usage_limits& limits() const noexcept { return limits_; }

private:
  usage_limits limits_;
  std::vector<bool> available_;
  std::vector<local_index> scratch_;
};

/// usage-based-routing-v2: skips deployments whose rpm or tpm for the
/// current minute this request would exceed, then the lowest tpm used this
/// minute.
class usage_based final : public limited_lowest {
public:
  using limited_lowest::limited_lowest;
  const char* name() const noexcept override { return "usage-based-routing-v2"; }

private:
  double key(local_index i, time_point now) const override;
};

/// cost-based-routing: the cheapest input_cost_per_token +
/// output_cost_per_token among deployments under their limits; a deployment
/// without costs sorts after every priced one.
class cost_based final : public limited_lowest {
public:
  explicit cost_based(const std::vector<const deployment_config*>& deployments);
  const char* name() const noexcept override { return "cost-based-routing"; }

private:
  double key(local_index i, time_point now) const override;
  std::vector<double> cost_;
};

} // namespace switchyard
