#include "switchyard/usage_limits.hpp"
#include "switchyard/usage_window.hpp"

#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <chrono>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::group_deployments;
using switchyard::test::make_config;

namespace {

/// The fake clock: `at(s)` is s seconds after the clock's epoch, so whole
/// minutes start at multiples of 60.
time_point at(int seconds) { return time_point{} + std::chrono::seconds(seconds); }
time_point at_ms(long long ms) { return time_point{} + std::chrono::milliseconds(ms); }

} // namespace

// --- usage_window ------------------------------------------------------------

TEST_CASE("usage window: counts start at zero", "[usage_window]") {
  usage_window w(2);
  CHECK(w.requests(0, at(0)) == 0);
  CHECK(w.tokens(1, at(0)) == 0);
  CHECK(w.requests(1, at(3600)) == 0);
}

TEST_CASE("usage window: requests and tokens add up within the minute", "[usage_window]") {
  usage_window w(2);
  w.add_request(0, at(60));
  w.add_request(0, at(61));
  w.add_tokens(0, 100, at(62));
  w.add_tokens(0, 23, at(119));
  w.add_request(0, at_ms(119999));
  CHECK(w.requests(0, at_ms(119999)) == 3);
  CHECK(w.tokens(0, at_ms(119999)) == 123);
  // Deployments count separately.
  CHECK(w.requests(1, at(62)) == 0);
  CHECK(w.tokens(1, at(62)) == 0);
  w.add_tokens(1, 5, at(70));
  CHECK(w.tokens(1, at(70)) == 5);
  CHECK(w.tokens(0, at(70)) == 123);
}

TEST_CASE("usage window: a new minute of the clock starts from zero", "[usage_window]") {
  usage_window w(1);
  w.add_request(0, at(50));
  w.add_tokens(0, 40, at(59));
  CHECK(w.requests(0, at_ms(59999)) == 1);
  CHECK(w.tokens(0, at_ms(59999)) == 40);
  // Windows are whole minutes of the clock, not 60 s from the first use:
  // ten seconds after the first request, the minute is over.
  CHECK(w.requests(0, at(60)) == 0);
  CHECK(w.tokens(0, at(60)) == 0);
  CHECK(w.tokens(0, at(600)) == 0);
}

TEST_CASE("usage window: reading does not reset, writing in a new minute does",
          "[usage_window]") {
  usage_window w(1);
  w.add_request(0, at(10));
  w.add_tokens(0, 7, at(10));
  CHECK(w.requests(0, at(70)) == 0); // a read in the next minute...
  CHECK(w.requests(0, at(20)) == 1); // ...leaves the old minute's counts alone

  // Tokens arriving in the next minute (a call that ends after the
  // rollover) count there, and restart the request count too.
  w.add_tokens(0, 3, at(65));
  CHECK(w.tokens(0, at(65)) == 3);
  CHECK(w.requests(0, at(65)) == 0);
  w.add_request(0, at(66));
  CHECK(w.requests(0, at(66)) == 1);
  CHECK(w.tokens(0, at(66)) == 3);
}

// --- usage_limits --------------------------------------------------------------

TEST_CASE("usage limits: at_rpm_limit once the minute's requests reach rpm", "[usage_limits]") {
  auto config = make_config({deployment("g", "A").rpm(2), deployment("g", "B")});
  usage_limits limits(group_deployments(config, 0));
  CHECK_FALSE(limits.at_rpm_limit(0, at(0)));
  limits.on_picked(0, at(0));
  CHECK_FALSE(limits.at_rpm_limit(0, at(1)));
  CHECK(limits.within(0, 0, at(1)));
  limits.on_picked(0, at(2));
  CHECK(limits.at_rpm_limit(0, at(2)));
  CHECK_FALSE(limits.within(0, 0, at(2)));
  CHECK(limits.usage().requests(0, at(2)) == 2);

  // No rpm: never at a limit.
  for (int k = 0; k < 100; ++k)
    limits.on_picked(1, at(3));
  CHECK_FALSE(limits.at_rpm_limit(1, at(3)));
  CHECK(limits.within(1, 0, at(3)));

  // The next minute frees it.
  CHECK(limits.at_rpm_limit(0, at_ms(59999)));
  CHECK_FALSE(limits.at_rpm_limit(0, at(60)));
  CHECK(limits.within(0, 0, at(60)));
}

TEST_CASE("usage limits: within counts this request's tokens against tpm", "[usage_limits]") {
  auto config = make_config({deployment("g", "A").tpm(100), deployment("g", "B")});
  usage_limits limits(group_deployments(config, 0));
  CHECK(limits.within(0, 100, at(0)));     // exactly at the limit is within
  CHECK_FALSE(limits.within(0, 101, at(0)));
  limits.on_finished(0, 60, at(1));
  CHECK(limits.usage().tokens(0, at(1)) == 60);
  CHECK(limits.within(0, 40, at(1)));
  CHECK_FALSE(limits.within(0, 41, at(1)));
  // A pick counts a request, never tokens.
  limits.on_picked(0, at(2));
  CHECK(limits.usage().tokens(0, at(2)) == 60);
  CHECK(limits.within(0, 40, at(2)));
  // tpm alone never makes an rpm limit.
  CHECK_FALSE(limits.at_rpm_limit(0, at(2)));
  // The next minute frees the tokens.
  CHECK(limits.within(0, 100, at(60)));
  // No tpm: any number of tokens is within.
  limits.on_finished(1, 1000000, at(3));
  CHECK(limits.within(1, 1000000, at(3)));
}

TEST_CASE("usage limits: rpm and tpm together", "[usage_limits]") {
  auto config = make_config({deployment("g", "A").rpm(1).tpm(50)});
  usage_limits limits(group_deployments(config, 0));
  CHECK(limits.within(0, 50, at(0)));
  limits.on_picked(0, at(0));
  // Under tpm, but the minute's one request is used.
  CHECK_FALSE(limits.within(0, 1, at(0)));
  CHECK(limits.at_rpm_limit(0, at(0)));
  limits.on_finished(0, 30, at(5));
  CHECK(limits.within(0, 20, at(60)));
}

// --- fleet usage from the shared state (SHARED_STATE.md) ------------------------

TEST_CASE("usage window: other replicas' usage adds to the local counts", "[shared_state]") {
  usage_window w(2);
  w.add_request(0, at(60));
  w.add_tokens(0, 100, at(60));
  w.set_remote(0, 7, 700, at(61));
  CHECK(w.requests(0, at(62)) == 8);
  CHECK(w.tokens(0, at(62)) == 800);
  CHECK(w.requests(1, at(62)) == 0);
  // Replaced, not added.
  w.set_remote(0, 9, 900, at(63));
  CHECK(w.requests(0, at(63)) == 10);
  // A new local minute: the local counts restart, the remote ones stand
  // until replaced or a minute old.
  CHECK(w.requests(0, at(120)) == 9);
  CHECK(w.requests(0, at_ms(122'999)) == 9);
  CHECK(w.requests(0, at(123)) == 0);
  CHECK(w.tokens(0, at(123)) == 0);
}

TEST_CASE("usage limits: rpm and tpm hold across the fleet", "[shared_state]") {
  auto config = make_config({deployment("g", "A").rpm(10).tpm(1000), deployment("g", "B")});
  usage_limits limits(group_deployments(config, 0));
  limits.on_picked(0, at(0));
  CHECK_FALSE(limits.at_rpm_limit(0, at(0)));
  limits.set_remote(0, 9, 0, at(0)); // 9 + 1 = 10: no room for an 11th
  CHECK(limits.at_rpm_limit(0, at(1)));
  CHECK_FALSE(limits.within(0, 0, at(1)));
  limits.set_remote(0, 8, 950, at(2)); // 8 + 1 = 9 requests, 950 tokens
  CHECK_FALSE(limits.at_rpm_limit(0, at(2)));
  CHECK(limits.within(0, 50, at(2)));
  CHECK_FALSE(limits.within(0, 51, at(2)));
  // No limits on B: fleet usage never blocks it.
  limits.set_remote(1, 1'000'000, 1'000'000, at(2));
  CHECK(limits.within(1, 1'000'000, at(2)));
}
