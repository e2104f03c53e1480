// Cooldowns and retry delays through the real actors on simulated time
// (tests/support/sim_router.hpp): the cooldown's end and a retry's wait are
// timers on the actor clock, so the test moves that clock and asserts the
// exact calls and answers at each point.

#include "support/router_test.hpp"
#include "support/sim_router.hpp"

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using switchyard::error_kind;
using switchyard::seconds_d;
using switchyard::test::config_from;
using switchyard::test::hi;
using switchyard::test::real_group;
using switchyard::test::scripted_transport;
using switchyard::test::sim_router;
using switchyard::test::touches;

namespace {

// "bad" answers 429, "good" answers; a 429 in a group of two cools "bad"
// down for the router's 0.2 s.
std::string cooldown_config() {
  return real_group("test-model", {"bad", "good"},
                    R"({"cooldown_time": 0.2, "num_retries": 1})");
}

// One deployment that always answers 429 with Retry-After 0.1 s: a retry in
// a single-deployment group waits Retry-After (+ up to 0.75 s jitter).
std::string retry_config() {
  return real_group("solo-model", {"solo"}, R"({"num_retries": 1})");
}

void answer_by_id(scripted_transport& upstream) {
  upstream.respond_with([](const scripted_transport::call& c) -> std::optional<switchyard::call_outcome> {
    if (c.deployment_id == "bad")
      return scripted_transport::failure(error_kind::rate_limit, "slow down");
    if (c.deployment_id == "solo")
      return scripted_transport::failure(error_kind::rate_limit, "busy", 0.1);
    return scripted_transport::success("ok from " + c.deployment_id);
  });
}

void check_retried_once(const switchyard::route_result& r) {
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::rate_limit);
  CHECK(r.error.status == 429);
  CHECK(r.error.deployment_id == "solo");
  CHECK(r.error.retry_after_s == std::optional<double>(0.1));
  REQUIRE(r.attempts.size() == 2);
  for (const auto& a : r.attempts) {
    CHECK(a.deployment_id == "solo");
    CHECK(a.outcome == std::optional<error_kind>(error_kind::rate_limit));
  }
  CHECK(r.fallback_depth == 0);
}

double seconds_between(switchyard::time_point a, switchyard::time_point b) {
  return seconds_d(b - a).count();
}

} // namespace

TEST_CASE("a rate-limited deployment is cooled down, then picked again") {
  sim_router sim(config_from(cooldown_config()), 3);
  answer_by_id(sim.upstream());

  // Until a pick lands on "bad": its 429 cools it down and the retry (no
  // wait: "good" is healthy) lands on "good".
  int sent = 0;
  for (; sent < 100; ++sent) {
    auto r = sim.complete(hi("test-model"));
    REQUIRE(r.ok);
    CHECK(r.deployment_id == "good");
    if (touches(r, "bad")) {
      REQUIRE(r.attempts.size() == 2);
      CHECK(r.attempts[0].deployment_id == "bad");
      CHECK(r.attempts[0].outcome == std::optional<error_kind>(error_kind::rate_limit));
      CHECK(r.attempts[1].deployment_id == "good");
      CHECK_FALSE(r.attempts[1].outcome.has_value());
      break;
    }
  }
  REQUIRE(sent < 100);

  // Until the cooldown ends, to the last nanosecond, no request reaches it.
  auto inside = [&] {
    for (int i = 0; i < 20; ++i) {
      auto r = sim.complete(hi("test-model"));
      REQUIRE(r.ok);
      CHECK(switchyard::test::attempt_ids(r) == std::vector<std::string>{"good"});
    }
  };
  inside();
  sim.advance(seconds_d(0.1));
  inside();
  sim.advance(seconds_d(0.1) - std::chrono::nanoseconds(1));
  inside();

  // At 0.2 s the cooldown's timer fires and "bad" is a candidate again.
  sim.advance(std::chrono::nanoseconds(1));
  bool again = false;
  for (int i = 0; i < 100 && !again; ++i) {
    auto r = sim.complete(hi("test-model"));
    REQUIRE(r.ok);
    again = touches(r, "bad");
    if (again)
      CHECK(switchyard::test::attempt_ids(r) == std::vector<std::string>{"bad", "good"});
  }
  CHECK(again);
}

TEST_CASE("a retry in a single-deployment group waits Retry-After on a timer") {
  SECTION("one request: the second attempt starts 0.1 to 0.85 s after the first") {
    sim_router sim(config_from(retry_config()), 3);
    answer_by_id(sim.upstream());
    auto answer = sim.send(hi("solo-model"));
    sim.run();
    REQUIRE(sim.upstream().calls().size() == 1);
    CHECK_FALSE(answer->has_value());

    // Nothing happens before Retry-After.
    sim.advance(seconds_d(0.1) - std::chrono::nanoseconds(1));
    CHECK(sim.upstream().calls().size() == 1);
    CHECK_FALSE(answer->has_value());

    // Retry-After + the jitter (at most 0.75 s).
    sim.advance(seconds_d(0.75) + std::chrono::nanoseconds(1));
    const auto& calls = sim.upstream().calls();
    REQUIRE(calls.size() == 2);
    const double waited = seconds_between(calls[0].started, calls[1].started);
    CHECK(waited >= 0.1);
    CHECK(waited <= 0.85);
    REQUIRE(answer->has_value());
    check_retried_once(**answer);
  }

  SECTION("40 waiting requests wait at once") {
    // A wait that held the actor would serialise them (40 * 0.1 s at
    // least); on timers every retry has started within one wait's bound.
    sim_router sim(config_from(retry_config()), 3);
    answer_by_id(sim.upstream());
    constexpr std::size_t n = 40;
    std::vector<std::shared_ptr<std::optional<switchyard::route_result>>> answers;
    for (std::size_t i = 0; i < n; ++i)
      answers.push_back(sim.send(hi("solo-model")));
    sim.run();
    CHECK(sim.upstream().calls().size() == n);
    sim.advance(seconds_d(0.85));
    CHECK(sim.upstream().calls().size() == 2 * n);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("request " << i);
      REQUIRE(answers[i]->has_value());
      check_retried_once(**answers[i]);
    }
  }
}
