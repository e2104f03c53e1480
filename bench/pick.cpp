#include "pick.hpp"

#include "load.hpp"

#include "switchyard/random_source.hpp"
#include "switchyard/simple_shuffle.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

namespace switchyard::bench {

namespace {

// Keeps `value` alive as far as the optimiser can tell.
inline void keep(std::uint64_t& value) {
  asm volatile("" : "+r"(value) : : "memory");
}

volatile std::uint64_t pick_sink = 0;

// Runs `n` picks and returns the elapsed nanoseconds.
std::int64_t timed_picks(routing_strategy& strategy, random_source& rng,
                         std::uint64_t n, std::uint64_t& checksum) {
  const exclusion_list none;
  const auto t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = strategy.pick(none, rng);
    std::uint64_t chosen = r.chosen.value_or(0xffffffffu);
    keep(chosen);
    checksum += chosen;
  }
  return now_ns() - t0;
}

} // namespace

pick_figures measure_pick(std::size_t deployments, double seconds, std::uint64_t seed) {
  simple_shuffle::metric_values values;
  for (std::size_t i = 0; i < deployments; ++i) {
    values[0].push_back(static_cast<double>(1 + i % 7)); // weight: uneven
    values[1].push_back(std::nullopt);
    values[2].push_back(std::nullopt);
  }
  simple_shuffle strategy{std::move(values)};
  seeded_random rng{seed};
  std::uint64_t checksum = 0;

  // Calibrate: 10k picks, then rounds sized to `seconds` / 7 each.
  timed_picks(strategy, rng, 10'000, checksum);
  const auto probe = timed_picks(strategy, rng, 10'000, checksum);
  constexpr int rounds = 7;
  const double per_pick = std::max<double>(1.0, static_cast<double>(probe) / 10'000);
  const auto n = static_cast<std::uint64_t>(
    std::max(10'000.0, seconds / rounds * 1e9 / per_pick));

  std::vector<double> ns;
  const std::uint64_t before = checksum;
  for (int r = 0; r < rounds; ++r)
    ns.push_back(static_cast<double>(timed_picks(strategy, rng, n, checksum))
                 / static_cast<double>(n));
  // Every pick chose a deployment: the mean index lies inside the group.
  const double mean = static_cast<double>(checksum - before) / static_cast<double>(n * rounds);
  if (!(mean >= 0 && mean < static_cast<double>(deployments)))
    throw std::runtime_error("pick: a pick chose no deployment");
  pick_sink = checksum;

  std::sort(ns.begin(), ns.end());
  pick_figures f;
  f.deployments = deployments;
  f.ns_per_pick = ns[rounds / 2];
  f.min_ns_per_pick = ns.front();
  f.picks = n * rounds;
  return f;
}

} // namespace switchyard::bench
