#pragma once

#include "switchyard/routing_strategy.hpp"

namespace switchyard {

/// least-busy: the deployment with the fewest calls in flight (counted from
/// its pick to its call's terminal outcome, timeouts and cancellations
/// included), uniform among ties. O(n) per pick.
class least_busy final : public routing_strategy {
public:
  explicit least_busy(std::size_t deployments);

  const char* name() const noexcept override { return "least-busy"; }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_picked(local_index i, const pick_context&) override;
  void on_finished(local_index i, const call_feedback&, time_point) override;
  std::uint32_t in_flight(local_index i) const { return in_flight_.at(i); }

private:
  std::vector<std::uint32_t> in_flight_;
  std::vector<bool> available_;
  std::vector<local_index> scratch_;
};

} // namespace switchyard
