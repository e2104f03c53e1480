// The plain values of the shared-state interface (SHARED_STATE.md).

#include "switchyard/shared_state.hpp"

#include <catch2/catch.hpp>

using namespace switchyard;

TEST_CASE("shared state: wall_minute floors milliseconds to minutes", "[shared_state]") {
  CHECK(wall_minute(0) == 0);
  CHECK(wall_minute(59'999) == 0);
  CHECK(wall_minute(60'000) == 1);
  CHECK(wall_minute(1'764'619'200'000) == 29'410'320);
  CHECK(wall_minute(-1) == -1);
}

TEST_CASE("shared state: fleet counts split into own and others", "[shared_state]") {
  fleet_usage u{"d", 5, 30, 300, 10, 100};
  CHECK(u.others_requests() == 20);
  CHECK(u.others_tokens() == 200);
  // Own counts ahead of a read never make others negative.
  fleet_outcomes o{"d", 5, 3, 1, 4, 2};
  CHECK(o.others_requests() == 0);
  CHECK(o.others_failures() == 0);
}
