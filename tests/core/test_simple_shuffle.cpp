#include "switchyard/simple_shuffle.hpp"

#include "support/excluded_picks.hpp"
#include "support/scripted_random.hpp"
#include "support/strategy_picks.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <optional>
#include <vector>

using namespace switchyard;
using switchyard::test::scripted_random;

namespace {

using opt = std::optional<double>;
using column = std::vector<opt>;

const opt unset = std::nullopt;

/// A strategy over deployments whose metrics are given column by column;
/// an omitted column is "set by nobody".
simple_shuffle shuffle(column weight, column rpm = {}, column tpm = {}) {
  const auto n = weight.size();
  rpm.resize(n);
  tpm.resize(n);
  return simple_shuffle({std::move(weight), std::move(rpm), std::move(tpm)});
}

using switchyard::test::pick_at;
using switchyard::test::tally_picks;

/// The draw that lands in the middle of remaining-space offset `target`.
double draw_for(double target, double total) { return target / total; }

} // namespace

TEST_CASE("simple-shuffle: weight decides when any candidate sets it, unset counts 0",
          "[simple_shuffle]") {
  // rpm would favour deployment 1, but weight comes first.
  auto s = shuffle({1.0, unset, 3.0}, {100.0, 900.0, 100.0});
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.24) == 0);
  CHECK(pick_at(s, 0.25) == 2); // target 1.0: the start of deployment 2
  CHECK(pick_at(s, 0.999) == 2);
}

TEST_CASE("simple-shuffle: rpm decides when no candidate sets weight", "[simple_shuffle]") {
  auto s = shuffle({unset, unset, unset}, {unset, 10.0, 30.0}, {1000.0, 1.0, 1.0});
  CHECK(pick_at(s, 0.0) == 1); // deployment 0 has no rpm: counts 0
  CHECK(pick_at(s, 0.24) == 1);
  CHECK(pick_at(s, 0.25) == 2);
  CHECK(pick_at(s, 0.999) == 2);
}

TEST_CASE("simple-shuffle: tpm decides when neither weight nor rpm is set", "[simple_shuffle]") {
  auto s = shuffle({unset, unset}, {unset, unset}, {300.0, 100.0});
  CHECK(pick_at(s, 0.74) == 0);
  CHECK(pick_at(s, 0.75) == 1);
}

TEST_CASE("simple-shuffle: a zero weight total falls through to rpm", "[simple_shuffle]") {
  auto s = shuffle({0.0, 0.0}, {1.0, 3.0});
  CHECK(pick_at(s, 0.24) == 0);
  CHECK(pick_at(s, 0.25) == 1);
}

TEST_CASE("simple-shuffle: exclusion leaving only zero weights lets rpm decide",
          "[simple_shuffle]") {
  // The PR's fix: after failover excludes the weighted primary, the
  // zero-weight backups are chosen by rpm, not uniformly.
  auto s = shuffle({5.0, 0.0, 0.0}, {unset, 1.0, 3.0});
  CHECK(pick_at(s, 0.999) == 0); // all healthy: weight decides, only 0 has any
  CHECK(pick_at(s, 0.2, {0}) == 1);
  CHECK(pick_at(s, 0.24, {0}) == 1);
  CHECK(pick_at(s, 0.25, {0}) == 2);
  CHECK(pick_at(s, 0.999, {0}) == 2);
}

TEST_CASE("simple-shuffle: no positive metric picks uniformly", "[simple_shuffle]") {
  SECTION("all weights zero") {
    auto s = shuffle({0.0, 0.0, 0.0});
    CHECK(pick_at(s, 0.0) == 0);
    CHECK(pick_at(s, 0.33) == 0);
    CHECK(pick_at(s, 0.34) == 1);
    CHECK(pick_at(s, 0.66) == 1);
    CHECK(pick_at(s, 0.67) == 2);
    CHECK(pick_at(s, 0.999) == 2);
  }
  SECTION("no metric set at all") {
    auto s = shuffle({unset, unset, unset});
    CHECK(pick_at(s, 0.0) == 0);
    CHECK(pick_at(s, 0.5) == 1);
    CHECK(pick_at(s, 0.9) == 2);
  }
  SECTION("uniform over the remaining after exclusion") {
    auto s = shuffle({0.0, 0.0, 0.0}, {0.0, 0.0, 0.0});
    CHECK(pick_at(s, 0.49, {1}) == 0);
    CHECK(pick_at(s, 0.5, {1}) == 2);
    CHECK(pick_at(s, 0.0, {0}) == 1);
    CHECK(pick_at(s, 0.999, {0}) == 2);
    CHECK(pick_at(s, 0.999, {0, 2}) == 1);
  }
}

TEST_CASE("simple-shuffle: weight 0 is never picked while another weight is > 0",
          "[simple_shuffle]") {
  const double almost_one = std::nextafter(1.0, 0.0);
  SECTION("zero weight first") {
    auto s = shuffle({0.0, 5.0});
    CHECK(pick_at(s, 0.0) == 1);
    CHECK(pick_at(s, almost_one) == 1);
  }
  SECTION("zero weight last") {
    auto s = shuffle({2.0, 0.0, 0.0});
    CHECK(pick_at(s, 0.0) == 0);
    CHECK(pick_at(s, almost_one) == 0);
  }
  SECTION("zero weights around a positive one") {
    auto s = shuffle({0.0, 1.0, 0.0});
    CHECK(pick_at(s, 0.0) == 1);
    CHECK(pick_at(s, almost_one) == 1);
  }
  SECTION("inexact sums near the end") {
    auto s = shuffle({0.1, 0.2, 0.0});
    CHECK(pick_at(s, almost_one) == 1);
    CHECK(pick_at(s, almost_one, {1}) == 0);
  }
  SECTION("zero weight left beside an excluded positive one") {
    auto s = shuffle({3.0, 0.0, 1.0});
    CHECK(pick_at(s, 0.0, {0}) == 2);
    CHECK(pick_at(s, almost_one, {0}) == 2);
    CHECK(pick_at(s, almost_one, {2}) == 0);
  }
}

TEST_CASE("simple-shuffle: exclusions give exact picks over the remaining intervals",
          "[simple_shuffle]") {
  // Weights 1, 2, 3, 4 (cumulative 1, 3, 6, 10).
  auto s = shuffle({1.0, 2.0, 3.0, 4.0});

  SECTION("excluding 1: remaining [0,1) -> 0, [1,4) -> 2, [4,8) -> 3 of 8") {
    CHECK(pick_at(s, 0.0, {1}) == 0);
    CHECK(pick_at(s, 0.124, {1}) == 0);
    CHECK(pick_at(s, 0.125, {1}) == 2);
    CHECK(pick_at(s, 0.126, {1}) == 2);
    CHECK(pick_at(s, 0.49, {1}) == 2);
    CHECK(pick_at(s, 0.5, {1}) == 3);
    CHECK(pick_at(s, 0.999, {1}) == 3);
  }
  SECTION("excluding 0 and 2: remaining [0,2) -> 1, [2,6) -> 3 of 6") {
    CHECK(pick_at(s, 0.0, {0, 2}) == 1);
    CHECK(pick_at(s, 0.33, {0, 2}) == 1);
    CHECK(pick_at(s, 0.34, {0, 2}) == 3);
    CHECK(pick_at(s, 0.999, {0, 2}) == 3);
  }
  SECTION("unsorted exclusions with duplicates mean the same") {
    CHECK(pick_at(s, 0.33, {2, 0, 2}) == 1);
    CHECK(pick_at(s, 0.34, {2, 0, 2}) == 3);
  }
  SECTION("excluding the last: remaining [0,1) -> 0, [1,3) -> 1, [3,6) -> 2 of 6") {
    CHECK(pick_at(s, 0.16, {3}) == 0);
    CHECK(pick_at(s, 0.17, {3}) == 1);
    CHECK(pick_at(s, 0.49, {3}) == 1);
    CHECK(pick_at(s, 0.5, {3}) == 2);
    CHECK(pick_at(s, 0.999, {3}) == 2);
  }
  SECTION("without exclusions, the full intervals of 10") {
    CHECK(pick_at(s, 0.09) == 0);
    CHECK(pick_at(s, 0.1) == 1);
    CHECK(pick_at(s, 0.29) == 1);
    CHECK(pick_at(s, 0.3) == 2);
    CHECK(pick_at(s, 0.59) == 2);
    CHECK(pick_at(s, 0.6) == 3);
  }
}

TEST_CASE("simple-shuffle: excluding every candidate gives none, never the unfiltered list",
          "[simple_shuffle]") {
  auto s = shuffle({1.0, 2.0, 3.0});
  scripted_random no_draws; // drawing would fail the test
  CHECK_FALSE(s.pick({0, 1, 2}, no_draws).ok());
  CHECK_FALSE(s.pick({2, 1, 0, 7}, no_draws).ok());

  // Excluding the only available one, while the others cool down.
  s.set_available({false, true, false});
  CHECK_FALSE(s.pick({1}, no_draws).ok());
  CHECK(no_draws.consumed() == 0);
}

TEST_CASE("simple-shuffle: excluded indices that are unavailable or unknown are ignored",
          "[simple_shuffle]") {
  auto s = shuffle({1.0, 2.0, 3.0, 4.0});
  s.set_available({true, false, true, true});
  // Available: 0 [0,1), 2 [1,4), 3 [4,8) of 8, whatever the exclusions say
  // about 1 (cooling down) and 99 (no such deployment).
  for (const exclusion_list& ex : {exclusion_list{}, exclusion_list{1}, exclusion_list{99},
                                   exclusion_list{1, 99}}) {
    CHECK(pick_at(s, 0.124, ex) == 0);
    CHECK(pick_at(s, 0.126, ex) == 2);
    CHECK(pick_at(s, 0.49, ex) == 2);
    CHECK(pick_at(s, 0.5, ex) == 3);
  }
}

TEST_CASE("simple-shuffle: set_available removes and restores deployments",
          "[simple_shuffle]") {
  auto s = shuffle({1.0, 2.0, 3.0, 4.0});

  s.set_available({false, true, true, false});
  // Available: 1 [0,2), 2 [2,5) of 5.
  CHECK(pick_at(s, 0.0) == 1);
  CHECK(pick_at(s, 0.39) == 1);
  CHECK(pick_at(s, 0.4) == 2);
  CHECK(pick_at(s, 0.999) == 2);
  CHECK(pick_at(s, 0.0, {1}) == 2);

  s.set_available({false, false, false, false});
  scripted_random no_draws;
  CHECK_FALSE(s.pick({}, no_draws).ok());

  s.set_available({true, true, true, true});
  CHECK(pick_at(s, 0.09) == 0);
  CHECK(pick_at(s, 0.6) == 3);

  // A shorter vector: the missing tail counts as unavailable.
  s.set_available({true, true});
  CHECK(pick_at(s, 0.999) == 1);
}

TEST_CASE("simple-shuffle: 'any candidate sets it' counts available candidates only",
          "[simple_shuffle]") {
  // Only deployment 0 sets a weight; once it cools down (or is excluded),
  // rpm decides among the rest.
  auto s = shuffle({5.0, unset, unset}, {unset, 1.0, 3.0});
  CHECK(pick_at(s, 0.25, {0}) == 2);
  CHECK(pick_at(s, 0.24, {0}) == 1);
  s.set_available({false, true, true});
  CHECK(pick_at(s, 0.25) == 2);
  CHECK(pick_at(s, 0.24) == 1);
}

TEST_CASE("simple-shuffle: exact picks among 1000 deployments", "[simple_shuffle]") {
  // Weight of deployment i is i + 1: it spans [i(i+1)/2, (i+1)(i+2)/2).
  column w;
  for (int i = 0; i < 1000; ++i)
    w.push_back(i + 1.0);
  auto s = shuffle(w);
  const double total = 1000.0 * 1001.0 / 2.0;
  auto start = [](double i) { return i * (i + 1) / 2; };

  for (local_index k : {0u, 1u, 2u, 499u, 500u, 998u, 999u})
    CHECK(pick_at(s, draw_for(start(k) + 0.5, total)) == k);

  SECTION("excluding deployment 500 shifts everything after it by 501") {
    const double rest = total - 501.0;
    CHECK(pick_at(s, draw_for(start(499) + 0.5, rest), {500}) == 499);
    CHECK(pick_at(s, draw_for(start(500) + 0.5, rest), {500}) == 501);
    CHECK(pick_at(s, draw_for(start(999) - 501.0 + 0.5, rest), {500}) == 999);
  }
  SECTION("excluding every even deployment") {
    // Odd deployment 2j+1 (weight 2j+2) spans [j(j+1), (j+1)(j+2)) of 250500.
    exclusion_list evens;
    for (local_index i = 0; i < 1000; i += 2)
      evens.push_back(i);
    const double rest = 250500.0;
    for (double j : {0.0, 1.0, 250.0, 498.0, 499.0})
      CHECK(pick_at(s, draw_for(j * (j + 1) + 0.5, rest), evens)
            == static_cast<local_index>(2 * j + 1));
  }
  SECTION("with a cooling deployment and an exclusion together") {
    std::vector<bool> available(1000, true);
    available[10] = false;
    s.set_available(available);
    const double rest = total - 11.0 - 21.0; // 10 cooling, 20 excluded
    CHECK(pick_at(s, draw_for(start(10) + 0.5, rest), {20}) == 11);
    CHECK(pick_at(s, draw_for(start(20) - 11.0 + 0.5, rest), {20}) == 21);
  }
}

TEST_CASE("simple-shuffle: from_config reads weight, rpm and tpm", "[simple_shuffle]") {
  using switchyard::test::deployment;
  auto config = switchyard::test::make_config({
    deployment("g", "A").rpm(900),
    deployment("g", "B").weight(1).rpm(1),
    deployment("g", "C").weight(3),
  });
  auto s = simple_shuffle::from_config(switchyard::test::group_deployments(config, 0));
  CHECK(std::string(s->name()) == "simple-shuffle");
  scripted_random rng{0.0, 0.24, 0.25, 0.999};
  CHECK(s->pick({}, rng).chosen == local_index{1});
  CHECK(s->pick({}, rng).chosen == local_index{1});
  CHECK(s->pick({}, rng).chosen == local_index{2});
  CHECK(s->pick({}, rng).chosen == local_index{2});
  CHECK(rng.remaining() == 0);
}

TEST_CASE("simple-shuffle: the registry builds strategies by name", "[simple_shuffle]") {
  const auto& registry = strategy_registry::builtin();
  CHECK(registry.contains("simple-shuffle"));
  CHECK(registry.contains("latency-based-routing"));
  CHECK_FALSE(registry.contains("round-robin"));
  CHECK(registry.names()
        == "cost-based-routing, latency-based-routing, least-busy, p2c-peak-ewma, simple-shuffle, "
           "usage-based-routing-v2");

  auto config = switchyard::test::make_config(
    {switchyard::test::deployment("g", "A").weight(1)});
  auto deps = switchyard::test::group_deployments(config, 0);
  for (const char* name : {"simple-shuffle", "latency-based-routing", "least-busy",
                           "usage-based-routing-v2", "cost-based-routing"}) {
    auto s = registry.make(name, deps, config.settings);
    REQUIRE(s);
    CHECK(std::string(s->name()) == name);
  }
  CHECK(registry.make("round-robin", deps, config.settings) == nullptr);
}

TEST_CASE("exclusions twin LiteLLM's _get_excluded_filtered_deployments, through the group picker",
          "[simple_shuffle]") {
  using ids = std::vector<std::string>;
  using switchyard::test::deployment;
  const auto three = switchyard::test::make_config(
    {deployment("g", "a"), deployment("g", "b"), deployment("g", "c")});
  auto pickable = [&](const ids& excluded) {
    return switchyard::test::pickable_ids(three, "g", excluded);
  };
  CHECK(pickable({}) == ids{"a", "b", "c"});
  CHECK(pickable({"b"}) == ids{"a", "c"});
  CHECK(pickable({"a", "b", "c"}).empty()); // never the unfiltered list
  CHECK(pickable({"zzz"}) == ids{"a", "b", "c"});
  SECTION("weights decide among what is left, and weight 0 only when alone") {
    const auto weighted = switchyard::test::make_config(
      {deployment("g", "a").weight(3), deployment("g", "b").weight(1),
       deployment("g", "c").weight(0)});
    CHECK(switchyard::test::pickable_ids(weighted, "g", {}) == ids{"a", "b"});
    CHECK(switchyard::test::pickable_ids(weighted, "g", {"a"}) == ids{"b"});
    CHECK(switchyard::test::pickable_ids(weighted, "g", {"a", "b"}) == ids{"c"});
  }
}

TEST_CASE("simple-shuffle: picks follow 80/20 weights (statistical)", "[simple_shuffle][statistical]") {
  auto s = shuffle({80.0, 20.0});
  seeded_random rng(20240601);
  const int n = 100000;
  const auto [counts, none] = tally_picks<2>(n, [&] { return s.pick({}, rng); });
  const int first = counts[0];
  CHECK(none == 0);
  // Standard deviation of the share is ~0.13%; 1.5 points is > 10 sigma.
  CHECK(static_cast<double>(first) / n == Approx(0.8).margin(0.015));
}
