#pragma once

#include "switchyard/routing_strategy.hpp"

#include <array>
#include <optional>

namespace switchyard {

/// latency-based-routing: lowest average of the last 10 samples (unseen
/// deployments count 0), random among those within
/// lowest * (1 + lowest_latency_buffer). Two windows per deployment, as
/// LiteLLM keeps them: whole-call latency (every success; a timeout records
/// a large penalty) and time to first token (streamed successes). A
/// streamed request ranks a deployment by its first-token window when that
/// has samples, else by its latency window; any other request by latency.
/// O(n) per pick.
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
  void record_first_token(local_index i, double first_token_ms);
  /// Average of the recent whole-call samples; 0 for an unseen deployment.
  double average_ms(local_index i) const;
  /// Average of the recent first-token samples, or nullopt without any.
  std::optional<double> first_token_average_ms(local_index i) const;
  /// What a pick ranks deployment `i` by, for a streamed request or not.
  double rank_ms(local_index i, bool stream) const;

private:
  struct samples {
    std::array<double, window> ms{};
    std::uint8_t count = 0;
    std::uint8_t next = 0;
    double sum = 0;

    void add(double value);
    double average() const { return count == 0 ? 0.0 : sum / count; }
  };
  std::vector<samples> latency_;
  std::vector<samples> first_token_;
  std::vector<bool> available_;
  double buffer_;
  std::vector<local_index> scratch_;
};

} // namespace switchyard
