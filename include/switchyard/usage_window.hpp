#pragma once

#include "switchyard/routing_strategy.hpp"

#include <vector>

namespace switchyard {

/// Requests and tokens per deployment in the current minute (windows start
/// on whole minutes of the injected clock, as LiteLLM keys its usage by
/// minute). Owned by one picker; O(1) per update and read.
class usage_window {
public:
  explicit usage_window(std::size_t deployments);

  void add_request(local_index i, time_point now);
  void add_tokens(local_index i, std::uint64_t tokens, time_point now);
  /// This replica's counts plus the other replicas' (set_remote) while
  /// those are fresh.
  std::uint64_t requests(local_index i, time_point now) const;
  std::uint64_t tokens(local_index i, time_point now) const;

  /// The other replicas' requests and tokens of deployment `i` in the
  /// current wall-clock minute (fleet_usage::others_*), replacing the
  /// previous ones. They count for one minute after they came, so that they
  /// age out when Redis goes quiet (while it is up, each new minute brings
  /// new totals). Without them the counts are exactly the local ones.
  void set_remote(local_index i, std::uint64_t requests, std::uint64_t tokens,
                  time_point now);

private:
  struct counts {
    std::int64_t minute = -1;
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
  };
  struct remote_counts {
    time_point received{};
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
  };
  static std::int64_t minute_of(time_point now);
  counts& current(local_index i, time_point now);
  const remote_counts* remote(local_index i, time_point now) const;

  std::vector<counts> counts_;
  std::vector<remote_counts> remote_;
};

} // namespace switchyard
