#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

/// group_picker::pick (the whole candidate pipeline the picker actor runs)
/// for `strategy` (a routing_strategy name), over `deployments` weighted
/// deployments of one group, with 1 in 8 cooling down (set_available) and
/// each pick excluding two deployments (a request on its third hop); each
/// pick is followed by on_finished for the chosen one, as the router does,
/// so stateful strategies (least-busy, latency, usage) see traffic. Both
/// are timed together; ~`seconds` in all, in 7 rounds.
pick_figures measure_group_pick(const std::string& strategy, std::size_t deployments,
                                double seconds, std::uint64_t seed);

} // namespace switchyard::bench
