#include "switchyard/least_busy.hpp"

#include "support/scripted_random.hpp"
#include "support/strategy_picks.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace switchyard;
using switchyard::test::scripted_random;

namespace {

const exclusion_list none_excluded;

using switchyard::test::check_even_shares;
using switchyard::test::pick_at;
using switchyard::test::tally_picks;

/// Starts `n` calls on deployment `i`.
void start_calls(least_busy& s, local_index i, int n) {
  for (int k = 0; k < n; ++k)
    s.on_picked(i, pick_context{none_excluded});
}

call_feedback finished_ok() {
  call_feedback f;
  f.ok = true;
  return f;
}

call_feedback timed_out() {
  call_feedback f;
  f.timed_out = true;
  return f;
}

} // namespace

TEST_CASE("least-busy: the deployment with the fewest calls in flight", "[least_busy]") {
  least_busy s(3);
  start_calls(s, 0, 2);
  start_calls(s, 1, 1);
  start_calls(s, 2, 3);
  CHECK(pick_at(s, 0.0) == 1);
  CHECK(pick_at(s, 0.999) == 1);
}

TEST_CASE("least-busy: ties are uniform, by the scripted value", "[least_busy]") {
  SECTION("all idle") {
    least_busy s(3);
    CHECK(pick_at(s, 0.0) == 0);
    CHECK(pick_at(s, 0.33) == 0);
    CHECK(pick_at(s, 0.34) == 1);
    CHECK(pick_at(s, 0.66) == 1);
    CHECK(pick_at(s, 0.67) == 2);
    CHECK(pick_at(s, 0.999) == 2);
  }
  SECTION("only the tied lowest share the draw") {
    least_busy s(4);
    start_calls(s, 0, 1);
    start_calls(s, 2, 1);
    // 1 and 3 are idle: [0, 0.5) -> 1, [0.5, 1) -> 3.
    CHECK(pick_at(s, 0.0) == 1);
    CHECK(pick_at(s, 0.49) == 1);
    CHECK(pick_at(s, 0.5) == 3);
    CHECK(pick_at(s, 0.999) == 3);
  }
}

TEST_CASE("least-busy: a pick alone changes no count, on_picked and on_finished do",
          "[least_busy]") {
  least_busy s(2);
  pick_at(s, 0.0);
  CHECK(s.in_flight(0) == 0);
  CHECK(s.in_flight(1) == 0);

  start_calls(s, 0, 1);
  CHECK(s.in_flight(0) == 1);
  CHECK(pick_at(s, 0.0) == 1);
  start_calls(s, 1, 1);
  start_calls(s, 1, 1);
  CHECK(s.in_flight(1) == 2);
  CHECK(pick_at(s, 0.999) == 0);

  s.on_finished(1, finished_ok(), time_point{});
  CHECK(s.in_flight(1) == 1);
  // 0 and 1 tie again.
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.5) == 1);
}

TEST_CASE("least-busy: every terminal outcome ends a call, timeouts included",
          "[least_busy]") {
  least_busy s(2);
  start_calls(s, 0, 3);
  s.on_finished(0, timed_out(), time_point{});
  CHECK(s.in_flight(0) == 2);
  call_feedback failed; // a failure that was not a timeout
  s.on_finished(0, failed, time_point{});
  CHECK(s.in_flight(0) == 1);
  s.on_finished(0, finished_ok(), time_point{});
  CHECK(s.in_flight(0) == 0);
  CHECK(s.in_flight(1) == 0);
}

TEST_CASE("least-busy: the count never goes below 0", "[least_busy]") {
  least_busy s(2);
  s.on_finished(0, finished_ok(), time_point{});
  s.on_finished(0, timed_out(), time_point{});
  CHECK(s.in_flight(0) == 0);
  // Stray finishes did not make deployment 0 "less than idle": it ties
  // with 1, and one call makes it the busier.
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.5) == 1);
  start_calls(s, 0, 1);
  CHECK(s.in_flight(0) == 1);
  CHECK(pick_at(s, 0.0) == 1);
}

TEST_CASE("least-busy: exclusions and cooldowns remove candidates", "[least_busy]") {
  least_busy s(3);
  start_calls(s, 1, 1);
  start_calls(s, 2, 2);
  CHECK(pick_at(s, 0.5) == 0);
  CHECK(pick_at(s, 0.5, {0}) == 1);       // the busier ones remain
  CHECK(pick_at(s, 0.5, {0, 1}) == 2);
  CHECK(pick_at(s, 0.5, {42}) == 0);      // unknown index: ignored

  scripted_random no_draws;
  CHECK_FALSE(s.pick({0, 1, 2}, no_draws).ok()); // never widened to the excluded

  s.set_available({false, true, true});
  CHECK(pick_at(s, 0.5) == 1);
  CHECK_FALSE(s.pick({1, 2}, no_draws).ok());
  s.set_available({false, false, false});
  CHECK_FALSE(s.pick({}, no_draws).ok());
  CHECK(no_draws.consumed() == 0);
  s.set_available({true, true, true});
  CHECK(pick_at(s, 0.5) == 0);
}

TEST_CASE("least-busy: the registry builds it by name", "[least_busy]") {
  auto config = switchyard::test::make_config(
    {switchyard::test::deployment("g", "A"), switchyard::test::deployment("g", "B")});
  auto s = strategy_registry::builtin().make(
    "least-busy", switchyard::test::group_deployments(config, 0), config.settings);
  REQUIRE(s);
  CHECK(std::string(s->name()) == "least-busy");
  s->on_picked(0, pick_context{none_excluded});
  scripted_random rng{0.0};
  CHECK(s->pick(none_excluded, rng).chosen == local_index{1});
}

TEST_CASE("least-busy: ties spread evenly, the busy one is never picked (statistical)",
          "[least_busy][statistical]") {
  least_busy s(4);
  start_calls(s, 3, 1); // 0, 1 and 2 idle
  seeded_random rng(4242);
  const int n = 60000;
  const auto tally = tally_picks<4>(n, [&] { return s.pick({}, rng); });
  check_even_shares(tally, n, 3);
}
