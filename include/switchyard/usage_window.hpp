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
  std::uint64_t requests(local_index i, time_point now) const;
  std::uint64_t tokens(local_index i, time_point now) const;

private:
  struct counts {
    std::int64_t minute = -1;
    std::uint64_t requests = 0;
    std::uint64_t tokens = 0;
  };
  static std::int64_t minute_of(time_point now);
  counts& current(local_index i, time_point now);

  std::vector<counts> counts_;
};

} // namespace switchyard
