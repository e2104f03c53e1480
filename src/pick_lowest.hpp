#pragma once

// The selection shared by the "lowest key wins" strategies (latency,
// least-busy, usage, cost): uniform among the eligible deployments whose
// key is within `band` (>= 1) times the lowest key.

#include "switchyard/random_source.hpp"
#include "switchyard/routing_strategy.hpp"

#include <algorithm>
#include <limits>
#include <vector>

namespace switchyard {

template <class Eligible, class Key>
pick_result pick_lowest(std::size_t n, Eligible&& eligible, Key&& key,
                        double band, random_source& rng,
                        std::vector<local_index>& scratch) {
  double lowest = std::numeric_limits<double>::infinity();
  bool any = false;
  for (local_index i = 0; i < n; ++i)
    if (eligible(i)) {
      lowest = std::min(lowest, static_cast<double>(key(i)));
      any = true;
    }
  if (!any)
    return {};
  // An infinite lowest key (e.g. no cost known anywhere) ties everything.
  const double limit = lowest * band;
  scratch.clear();
  for (local_index i = 0; i < n; ++i)
    if (eligible(i) && static_cast<double>(key(i)) <= limit)
      scratch.push_back(i);
  auto r = static_cast<std::size_t>(rng.next_unit() * static_cast<double>(scratch.size()));
  return {scratch[std::min(r, scratch.size() - 1)]};
}

/// Copies a cooldown snapshot into a strategy's own availability flags.
inline void copy_available(std::vector<bool>& into, const std::vector<bool>& from) {
  for (std::size_t i = 0; i < into.size(); ++i)
    into[i] = i < from.size() && from[i];
}

/// Whether `i` is in the (small, unsorted) exclusion list.
inline bool is_excluded(const exclusion_list& excluded, local_index i) {
  return std::find(excluded.begin(), excluded.end(), i) != excluded.end();
}

} // namespace switchyard
