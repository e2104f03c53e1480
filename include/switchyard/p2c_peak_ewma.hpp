#pragma once

#include "switchyard/routing_strategy.hpp"

#include <array>

namespace switchyard {

/// p2c-peak-ewma (Finagle's P2C with peak EWMA, Linkerd's default): two
/// candidates drawn at random, weighted as simple-shuffle weighs (the
/// first of weight, rpm, tpm with a positive total; else uniform), the
/// second without the first; the one with the lower cost wins, cost =
/// peak-EWMA latency (ms) x (calls in flight + 1). Ties go to the first
/// draw. Peak EWMA: a sample above the average replaces it at once; one
/// below decays it with weight exp(-dt / decay_seconds). Unseen
/// deployments cost 0, so each is tried early. Timeouts count as samples
/// of their latency; other failures and cancelled calls are not samples.
/// Owned by one picker; not thread-safe. Cost: O(n) per pick.
class p2c_peak_ewma final : public routing_strategy {
public:
  using metric_values = std::array<std::vector<std::optional<double>>, 3>;

  p2c_peak_ewma(metric_values values, double decay_seconds);
  static std::unique_ptr<routing_strategy>
  from_config(const std::vector<const deployment_config*>& deployments,
              double decay_seconds);

  const char* name() const noexcept override { return "p2c-peak-ewma"; }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_picked(local_index i, const pick_context&) override;
  void on_finished(local_index i, const call_feedback& f, time_point now) override;

  double cost(local_index i) const;
  double ewma_ms(local_index i) const { return ewma_.at(i); }
  std::uint32_t in_flight(local_index i) const { return in_flight_.at(i); }

private:
  /// A weighted draw among `candidates`, without `skip`.
  local_index draw(const std::vector<local_index>& candidates,
                   std::optional<local_index> skip, random_source& rng) const;

  metric_values values_;
  double decay_s_;
  std::vector<bool> available_;
  std::vector<double> ewma_;
  std::vector<std::optional<time_point>> stamp_;
  std::vector<std::uint32_t> in_flight_;
  std::vector<local_index> scratch_;
};

} // namespace switchyard
