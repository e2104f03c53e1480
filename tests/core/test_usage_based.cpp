#include "switchyard/usage_based.hpp"

#include "support/scripted_random.hpp"
#include "support/strategy_picks.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>

using namespace switchyard;
using switchyard::test::check_even_shares;
using switchyard::test::deployment;
using switchyard::test::group_deployments;
using switchyard::test::make_config;
using switchyard::test::scripted_random;
using switchyard::test::tally_picks;

namespace {

/// The fake clock: whole minutes start at multiples of 60 s.
time_point at(int seconds) { return time_point{} + std::chrono::seconds(seconds); }

const exclusion_list none_excluded;

/// The pick for one scripted draw `u` of a request of `tokens` estimated
/// tokens at `now`: it must pick and draw exactly once.
local_index pick_at(routing_strategy& s, double u, std::uint32_t tokens = 0,
                    time_point now = at(0), const exclusion_list& excluded = {}) {
  scripted_random rng{u};
  auto r = s.pick(pick_context{excluded, tokens, now}, rng);
  INFO("u = " << u << ", tokens = " << tokens);
  REQUIRE(r.ok());
  CHECK(rng.consumed() == 1);
  return *r.chosen;
}

/// No deployment fits: the pick is empty and draws nothing.
bool picks_none(routing_strategy& s, std::uint32_t tokens = 0, time_point now = at(0),
                const exclusion_list& excluded = {}) {
  scripted_random no_draws;
  auto r = s.pick(pick_context{excluded, tokens, now}, no_draws);
  CHECK(no_draws.consumed() == 0);
  return !r.ok();
}

/// A call to `i` that ends at `now` having used `tokens`.
void finish(routing_strategy& s, local_index i, std::uint64_t tokens, time_point now) {
  call_feedback f;
  f.ok = true;
  f.tokens = tokens;
  s.on_finished(i, f, now);
}

void start(routing_strategy& s, local_index i, time_point now) {
  s.on_picked(i, pick_context{none_excluded, 0, now});
}

} // namespace

// --- usage-based-routing-v2 -----------------------------------------------------

TEST_CASE("usage-based: the lowest tpm used this minute", "[usage_based]") {
  auto config = make_config({deployment("g", "A"), deployment("g", "B"), deployment("g", "C")});
  usage_based s(group_deployments(config, 0));
  finish(s, 0, 100, at(1));
  finish(s, 1, 50, at(2));
  CHECK(pick_at(s, 0.0, 0, at(3)) == 2);
  CHECK(pick_at(s, 0.999, 0, at(3)) == 2);
  finish(s, 2, 70, at(4));
  CHECK(pick_at(s, 0.999, 0, at(5)) == 1);
  finish(s, 1, 30, at(6)); // 1 now has 80
  CHECK(pick_at(s, 0.0, 0, at(7)) == 2);
}

TEST_CASE("usage-based: ties are uniform, by the scripted value", "[usage_based]") {
  auto config = make_config({deployment("g", "A"), deployment("g", "B"), deployment("g", "C"),
                             deployment("g", "D")});
  usage_based s(group_deployments(config, 0));
  finish(s, 1, 10, at(0));
  // 0, 2 and 3 have used none.
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.33) == 0);
  CHECK(pick_at(s, 0.34) == 2);
  CHECK(pick_at(s, 0.66) == 2);
  CHECK(pick_at(s, 0.67) == 3);
  CHECK(pick_at(s, 0.999) == 3);
}

TEST_CASE("usage-based: tokens count when the call ends, not when it is picked",
          "[usage_based]") {
  auto config = make_config({deployment("g", "A"), deployment("g", "B")});
  usage_based s(group_deployments(config, 0));
  start(s, 0, at(0));
  start(s, 0, at(0));
  // Two calls in flight on A, no tokens yet: A and B still tie.
  CHECK(pick_at(s, 0.0, 500, at(1)) == 0);
  CHECK(pick_at(s, 0.5, 500, at(1)) == 1);
  finish(s, 0, 20, at(2));
  CHECK(pick_at(s, 0.0, 500, at(3)) == 1);
}

TEST_CASE("usage-based: a deployment at its rpm for the minute is skipped", "[usage_based]") {
  auto config = make_config({deployment("g", "A").rpm(2), deployment("g", "B")});
  usage_based s(group_deployments(config, 0));
  finish(s, 1, 1000, at(0)); // B is far busier by tokens
  CHECK(pick_at(s, 0.5, 0, at(1)) == 0);
  start(s, 0, at(1));
  CHECK(pick_at(s, 0.5, 0, at(2)) == 0);
  start(s, 0, at(2));
  // A's two requests of the minute are used: B, whatever its tokens.
  CHECK(pick_at(s, 0.5, 0, at(3)) == 1);
  CHECK(pick_at(s, 0.0, 0, at(59)) == 1);
  // The next minute frees A (and B's tokens).
  CHECK(pick_at(s, 0.0, 0, at(60)) == 0);
  CHECK(pick_at(s, 0.5, 0, at(60)) == 1);
}

TEST_CASE("usage-based: a deployment this request's tokens would push over tpm is skipped",
          "[usage_based]") {
  auto config = make_config({deployment("g", "A").tpm(100), deployment("g", "B").tpm(1000)});
  usage_based s(group_deployments(config, 0));
  finish(s, 1, 500, at(0));
  CHECK(pick_at(s, 0.999, 100, at(1)) == 0); // 0 + 100 <= 100
  CHECK(pick_at(s, 0.0, 101, at(1)) == 1);   // 0 + 101 > 100
  finish(s, 0, 60, at(2));
  CHECK(pick_at(s, 0.999, 40, at(3)) == 0);  // 60 + 40 <= 100, and fewer tokens than B
  CHECK(pick_at(s, 0.0, 41, at(3)) == 1);
  CHECK(pick_at(s, 0.0, 500, at(3)) == 1);   // 500 + 500 <= 1000
  CHECK(picks_none(s, 501, at(3)));          // over both
}

TEST_CASE("usage-based: the minute rollover frees the tokens", "[usage_based]") {
  auto config = make_config({deployment("g", "A").tpm(100), deployment("g", "B")});
  usage_based s(group_deployments(config, 0));
  finish(s, 0, 100, at(10));
  finish(s, 1, 5000, at(10));
  CHECK(pick_at(s, 0.0, 1, at(59)) == 1); // A is full for this minute
  // At 60 s both start over at 0 tokens: a tie again, and A fits.
  CHECK(pick_at(s, 0.0, 1, at(60)) == 0);
  CHECK(pick_at(s, 0.5, 1, at(60)) == 1);
  CHECK(pick_at(s, 0.0, 100, at(60)) == 0);
}

TEST_CASE("usage-based: none left under the limits gives an empty pick", "[usage_based]") {
  auto config = make_config({deployment("g", "A").rpm(1), deployment("g", "B").tpm(10)});
  usage_based s(group_deployments(config, 0));
  start(s, 0, at(0));
  CHECK(picks_none(s, 11, at(1)));
  CHECK(pick_at(s, 0.0, 10, at(1)) == 1);
  // The next minute frees A; B still cannot take 11 tokens.
  CHECK(pick_at(s, 0.999, 11, at(60)) == 0);
}

TEST_CASE("usage-based: exclusions and cooldowns remove candidates", "[usage_based]") {
  auto config = make_config({deployment("g", "A"), deployment("g", "B"), deployment("g", "C")});
  usage_based s(group_deployments(config, 0));
  finish(s, 1, 10, at(0));
  finish(s, 2, 20, at(0));
  CHECK(pick_at(s, 0.5, 0, at(1), {0}) == 1);
  CHECK(pick_at(s, 0.5, 0, at(1), {0, 1}) == 2);
  CHECK(picks_none(s, 0, at(1), {0, 1, 2}));
  s.set_available({false, true, false});
  CHECK(pick_at(s, 0.5, 0, at(1)) == 1);
  CHECK(picks_none(s, 0, at(1), {1}));
  s.set_available({true, true, true});
  CHECK(pick_at(s, 0.5, 0, at(1)) == 0);
}

TEST_CASE("usage-based: the registry builds it by name", "[usage_based]") {
  auto config = make_config({deployment("g", "A").tpm(5), deployment("g", "B")});
  auto s = strategy_registry::builtin().make("usage-based-routing-v2",
                                             group_deployments(config, 0), config.settings);
  REQUIRE(s);
  CHECK(std::string(s->name()) == "usage-based-routing-v2");
  CHECK(pick_at(*s, 0.0, 6) == 1); // the limits come from the config
}

TEST_CASE("usage-based: ties spread evenly, a full deployment is never picked (statistical)",
          "[usage_based][statistical]") {
  auto config = make_config({deployment("g", "A"), deployment("g", "B"), deployment("g", "C"),
                             deployment("g", "D").tpm(10)});
  usage_based s(group_deployments(config, 0));
  finish(s, 3, 10, at(0)); // D is full; A, B, C have used none
  seeded_random rng(99);
  const int n = 60000;
  const auto tally =
    tally_picks<4>(n, [&] { return s.pick(pick_context{none_excluded, 1, at(1)}, rng); });
  check_even_shares(tally, n, 3);
}

// --- cost-based-routing ------------------------------------------------------------

TEST_CASE("cost-based: the cheapest input + output cost per token", "[cost_based]") {
  auto config = make_config({deployment("g", "A").costs(0.01, 0.03),  // 0.04
                             deployment("g", "B").costs(0.02, 0.01),  // 0.03
                             deployment("g", "C").costs(0.001, 0.05)}); // 0.051
  cost_based s(group_deployments(config, 0));
  CHECK(pick_at(s, 0.0) == 1);
  CHECK(pick_at(s, 0.999) == 1);
  CHECK(pick_at(s, 0.5, 0, at(0), {1}) == 0);
  CHECK(pick_at(s, 0.5, 0, at(0), {0, 1}) == 2);
}

TEST_CASE("cost-based: a missing half of the price counts 0", "[cost_based]") {
  auto config = make_config({deployment("g", "A").costs(0.01, 0.01),  // 0.02
                             deployment("g", "B").input_cost(0.015),  // 0.015
                             deployment("g", "C").output_cost(0.018)}); // 0.018
  cost_based s(group_deployments(config, 0));
  CHECK(pick_at(s, 0.5) == 1);
  CHECK(pick_at(s, 0.5, 0, at(0), {1}) == 2);
  CHECK(pick_at(s, 0.5, 0, at(0), {1, 2}) == 0);
}

TEST_CASE("cost-based: unpriced deployments sort after every priced one", "[cost_based]") {
  auto config = make_config({deployment("g", "U1"),                    // no costs
                             deployment("g", "P").costs(5.0, 5.0),     // expensive, but priced
                             deployment("g", "U2"),
                             deployment("g", "Z").costs(0.0, 0.0)});   // priced at 0
  cost_based s(group_deployments(config, 0));
  CHECK(pick_at(s, 0.0) == 3);
  CHECK(pick_at(s, 0.999) == 3);
  CHECK(pick_at(s, 0.999, 0, at(0), {3}) == 1);
  // Only unpriced ones left: they tie.
  CHECK(pick_at(s, 0.0, 0, at(0), {1, 3}) == 0);
  CHECK(pick_at(s, 0.5, 0, at(0), {1, 3}) == 2);

  SECTION("none priced at all: uniform among them all") {
    auto unpriced = make_config({deployment("g", "A"), deployment("g", "B"),
                                 deployment("g", "C")});
    cost_based u(group_deployments(unpriced, 0));
    CHECK(pick_at(u, 0.0) == 0);
    CHECK(pick_at(u, 0.34) == 1);
    CHECK(pick_at(u, 0.67) == 2);
  }
}

TEST_CASE("cost-based: ties are uniform, by the scripted value", "[cost_based]") {
  auto config = make_config({deployment("g", "A").costs(0.01, 0.02),
                             deployment("g", "B").costs(0.1, 0.2),
                             deployment("g", "C").costs(0.02, 0.01)});
  cost_based s(group_deployments(config, 0));
  // A and C both cost 0.03.
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.49) == 0);
  CHECK(pick_at(s, 0.5) == 2);
  CHECK(pick_at(s, 0.999) == 2);
}

TEST_CASE("cost-based: only deployments under their rpm and tpm", "[cost_based]") {
  auto config = make_config({deployment("g", "Cheap").costs(0.001, 0.001).rpm(1),
                             deployment("g", "Mid").costs(0.01, 0.01).tpm(100),
                             deployment("g", "Dear").costs(1.0, 1.0)});
  cost_based s(group_deployments(config, 0));
  CHECK(pick_at(s, 0.5, 0, at(0)) == 0);
  start(s, 0, at(0)); // Cheap's one request of the minute
  CHECK(pick_at(s, 0.5, 0, at(1)) == 1);
  start(s, 1, at(1));
  finish(s, 1, 90, at(2));
  CHECK(pick_at(s, 0.5, 10, at(3)) == 1); // 90 + 10 <= 100
  CHECK(pick_at(s, 0.5, 11, at(3)) == 2); // over Mid's tpm: the dear one
  s.set_available({true, true, false});
  CHECK(picks_none(s, 11, at(3)));
  // The next minute frees Cheap again.
  CHECK(pick_at(s, 0.5, 11, at(60)) == 0);
}

TEST_CASE("cost-based: the registry builds it by name", "[cost_based]") {
  auto config = make_config({deployment("g", "A").costs(2, 2), deployment("g", "B").costs(1, 1)});
  auto s = strategy_registry::builtin().make("cost-based-routing", group_deployments(config, 0),
                                             config.settings);
  REQUIRE(s);
  CHECK(std::string(s->name()) == "cost-based-routing");
  CHECK(pick_at(*s, 0.0) == 1);
}

TEST_CASE("cost-based: ties among the cheapest spread evenly (statistical)",
          "[cost_based][statistical]") {
  // A and B both cost exactly 0.75 (sums of binary fractions).
  auto config = make_config({deployment("g", "A").costs(0.25, 0.5),
                             deployment("g", "B").costs(0.5, 0.25),
                             deployment("g", "C").costs(0.5, 0.5),
                             deployment("g", "D")});
  cost_based s(group_deployments(config, 0));
  seeded_random rng(31337);
  const int n = 60000;
  const auto tally = tally_picks<4>(n, [&] { return s.pick(none_excluded, rng); });
  check_even_shares(tally, n, 2);
}
