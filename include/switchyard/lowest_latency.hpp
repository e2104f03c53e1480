#pragma once

#include "switchyard/routing_strategy.hpp"

#include <array>

namespace switchyard {

/// latency-based-routing: lowest average of the last 10 latencies (unseen
/// deployments count 0, a timeout records a large penalty; a streamed
/// request records its time to first token), random among those within
/// lowest * (1 + lowest_latency_buffer). O(n) per pick.
class lowest_latency final : public routing_strategy {
public:
  static constexpr std::size_t window = 10;
  static constexpr double timeout_penalty_ms = 1.0e6;

  lowest_latency(std::size_t deployments, double buffer);

  const char* name() const noexcept override {
    return "latency-based-routing";
  }
  void set_available(const std::vector<bool>& available) override;
  using routing_strategy::pick;
  pick_result pick(const pick_context& ctx, random_source& rng) override;
  void on_finished(local_index i, const call_feedback& f, time_point) override;
  void record_latency(local_index i, double latency_ms, bool timed_out);
  /// Average of the recent samples; 0 for an unseen deployment.
  double average_ms(local_index i) const;

private:
  struct samples {
    std::array<double, window> ms{};
    std::uint8_t count = 0;
    std::uint8_t next = 0;
    double sum = 0;
  };
  std::vector<samples> samples_;
  std::vector<bool> available_;
  double buffer_;
  std::vector<local_index> scratch_;
};

} // namespace switchyard
