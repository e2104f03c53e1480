#pragma once

#include "switchyard/routing_strategy.hpp"

#include <array>

namespace switchyard {

/// latency-based-routing: lowest average of the last 10 latencies (unseen
/// deployments count 0, a timeout records a large penalty), random among
/// those within lowest * (1 + lowest_latency_buffer). O(n) per pick.
class lowest_latency final : public routing_strategy {
public:
  static constexpr std::size_t window = 10;
  static constexpr double timeout_penalty_ms = 1.0e6;

  lowest_latency(std::size_t deployments, double buffer);

  const char* name() const noexcept override {
    return "latency-based-routing";
  }
  void set_available(const std::vector<bool>& available) override;
  pick_result pick(const exclusion_list& excluded, random_source& rng) override;
  void record_latency(local_index i, double latency_ms, bool timed_out) override;
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
