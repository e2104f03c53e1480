#pragma once

// Picks of a routing strategy in strategy unit tests: one exact pick for a
// scripted draw, and the tally of many seeded picks for the statistical
// tests.

#include "switchyard/routing_strategy.hpp"

#include "support/scripted_random.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <cstddef>

namespace switchyard::test {

/// The pick of strategy `s` for the single scripted draw `u`: it must pick
/// something and draw exactly once.
template <class Strategy>
local_index pick_at(Strategy& s, double u, const exclusion_list& excluded = {}) {
  scripted_random rng{u};
  auto r = s.pick(excluded, rng);
  INFO("u = " << u);
  REQUIRE(r.ok());
  CHECK(rng.consumed() == 1);
  return *r.chosen;
}

/// How often `n` calls of `pick` (a pick_result each) chose each local
/// index below N, and how many chose none (or an index out of range).
template <std::size_t N>
struct pick_tally {
  std::array<int, N> counts{};
  int none = 0;
};

template <std::size_t N, class Pick>
pick_tally<N> tally_picks(int n, Pick&& pick) {
  pick_tally<N> tally;
  for (int k = 0; k < n; ++k) {
    auto r = pick();
    if (r.ok() && *r.chosen < tally.counts.size())
      ++tally.counts[*r.chosen];
    else
      ++tally.none;
  }
  return tally;
}

/// The statistical tests' verdict on `n` tallied picks: none empty, the
/// first `k` indices chosen in equal shares (within 1.5 points: the
/// standard deviation of a share is ~0.2% at 60,000 picks, so > 7 sigma),
/// the others never.
template <std::size_t N>
void check_even_shares(const pick_tally<N>& tally, int n, std::size_t k) {
  CHECK(tally.none == 0);
  for (std::size_t i = 0; i < N; ++i) {
    INFO("index " << i);
    if (i < k)
      CHECK(static_cast<double>(tally.counts[i]) / n == Approx(1.0 / k).margin(0.015));
    else
      CHECK(tally.counts[i] == 0);
  }
}

} // namespace switchyard::test
