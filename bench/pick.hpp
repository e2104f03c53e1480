#pragma once

#include <cstddef>
#include <cstdint>

namespace switchyard::bench {

struct pick_figures {
  std::size_t deployments = 0;
  double ns_per_pick = 0;   ///< median of the rounds
  double min_ns_per_pick = 0;
  std::uint64_t picks = 0;
};

/// switchyard::simple_shuffle::pick on its own (the pure core, no actors),
/// with a switchyard::seeded_random, over `deployments` weighted deployments
/// all available and no exclusions; ~`seconds` in all, in 7 rounds.
pick_figures measure_pick(std::size_t deployments, double seconds, std::uint64_t seed);

} // namespace switchyard::bench
