#pragma once

#include "switchyard/config.hpp"

#include <chrono>
#include <cstdint>
#include <deque>

namespace switchyard {

/// A model group's retry budget (Finagle RetryBudget, Envoy retry_budget):
/// the extra calls (retries, failover hops, hedges) made in the last
/// `window_s` may not exceed ratio x that window's first attempts +
/// min_per_second x window_s. The window slides exactly: every call is
/// kept with its time until it is older than the window.
/// Owned by one group's picker; time comes in as an argument. Cost: O(1)
/// amortised per call; memory: the calls of one window.
class retry_budget {
public:
  using time_point = std::chrono::steady_clock::time_point;

  explicit retry_budget(const retry_budget_settings& settings);

  /// A first attempt starts now.
  void record_first(time_point now);
  /// Would one more extra call now stay within the budget? Counts a
  /// refusal when not.
  bool allows_extra(time_point now);
  /// An extra call starts now (after allows_extra said yes).
  void record_extra(time_point now);

  /// Extra calls the window allows now, and those it holds.
  double allowance(time_point now);
  std::size_t extras(time_point now);
  /// Extra calls refused so far.
  std::uint64_t refused() const noexcept { return refused_; }

private:
  void prune(time_point now);

  retry_budget_settings settings_;
  std::deque<time_point> firsts_;
  std::deque<time_point> extras_;
  std::uint64_t refused_ = 0;
};

} // namespace switchyard
