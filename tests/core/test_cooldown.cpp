#include "switchyard/cooldown.hpp"

#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::make_config;

namespace {

/// The fake clock: `at(n)` is n seconds after an arbitrary epoch.
time_point at(int seconds) { return time_point{} + std::chrono::seconds(seconds); }
time_point at_ms(int ms) { return time_point{} + std::chrono::milliseconds(ms); }

router_error error_of(error_kind k, std::optional<double> retry_after_s = std::nullopt) {
  return router_error::make(k, "test", retry_after_s);
}

router_settings settings_with_cooldown(double seconds) {
  router_settings s;
  s.cooldown_time_s = seconds;
  return s;
}

/// A config with one group "g" of `size` deployments d0, d1, ...
router_config group_of_size(std::size_t size, router_settings settings = {}) {
  std::vector<deployment_config> ds;
  for (std::size_t i = 0; i < size; ++i)
    ds.push_back(deployment("g", "d" + std::to_string(i)));
  return make_config(std::move(ds), std::move(settings));
}

std::optional<double> seconds_of(std::optional<seconds_d> d) {
  return d ? std::optional<double>(d->count()) : std::nullopt;
}

} // namespace

// --- cooldown_length -------------------------------------------------------

TEST_CASE("cooldown length: deployment cooldown_time > Retry-After > router cooldown_time",
          "[cooldown]") {
  const auto s = settings_with_cooldown(5);
  CHECK(seconds_of(cooldown_length(s, 3.0, error_of(error_kind::rate_limit, 7.0))) == 3.0);
  CHECK(seconds_of(cooldown_length(s, std::nullopt, error_of(error_kind::rate_limit, 7.0))) == 7.0);
  CHECK(seconds_of(cooldown_length(s, std::nullopt, error_of(error_kind::rate_limit))) == 5.0);
  CHECK(seconds_of(cooldown_length(router_settings{}, std::nullopt,
                                   error_of(error_kind::rate_limit))) == 5.0); // the default
}

TEST_CASE("cooldown length: none when cooldowns are disabled", "[cooldown]") {
  auto s = settings_with_cooldown(5);
  s.disable_cooldowns = true;
  CHECK_FALSE(cooldown_length(s, 3.0, error_of(error_kind::rate_limit, 7.0)));
  CHECK_FALSE(cooldown_length(s, std::nullopt, error_of(error_kind::internal_server)));
}

TEST_CASE("cooldown length: none when the length is 0", "[cooldown]") {
  const auto s = settings_with_cooldown(5);
  CHECK_FALSE(cooldown_length(s, 0.0, error_of(error_kind::rate_limit, 7.0)));
  CHECK_FALSE(cooldown_length(s, std::nullopt, error_of(error_kind::rate_limit, 0.0)));
  CHECK_FALSE(cooldown_length(settings_with_cooldown(0), std::nullopt,
                              error_of(error_kind::rate_limit)));
}

TEST_CASE("cooldown length: which error kinds can cool a deployment down", "[cooldown]") {
  const auto s = settings_with_cooldown(5);
  struct row {
    error_kind kind;
    bool cools;
  };
  const std::vector<row> table = {
    {error_kind::bad_request, false},
    {error_kind::context_window_exceeded, false},
    {error_kind::content_policy_violation, false},
    {error_kind::authentication, true},       // 401
    {error_kind::permission_denied, false},   // 403
    {error_kind::not_found, true},            // 404
    {error_kind::timeout, true},              // 408
    {error_kind::unprocessable_entity, false},// 422
    {error_kind::rate_limit, true},           // 429
    {error_kind::internal_server, true},
    {error_kind::api_connection, false},
    {error_kind::bad_gateway, true},
    {error_kind::service_unavailable, true},
    // The router's own verdicts say nothing about a deployment.
    {error_kind::no_deployments_available, false},
    {error_kind::overloaded, false},
    {error_kind::shutdown, false},
    {error_kind::cancelled, false},
  };
  REQUIRE(table.size() == static_cast<std::size_t>(error_kind_count));
  for (const auto& r : table) {
    INFO(name_of(r.kind));
    auto length = cooldown_length(s, std::nullopt, error_of(r.kind));
    CHECK(length.has_value() == r.cools);
    if (r.cools)
      CHECK(length->count() == 5.0);
  }
}

// --- default_cooldown_rule -------------------------------------------------

TEST_CASE("default cooldown rule", "[cooldown]") {
  SECTION("429 cools only in a group of more than one") {
    CHECK(default_cooldown_rule(429, 1, 1, 2));
    CHECK_FALSE(default_cooldown_rule(429, 1, 1, 1));
  }
  SECTION("401 and 404 always cool") {
    CHECK(default_cooldown_rule(401, 1, 1, 1));
    CHECK(default_cooldown_rule(404, 1, 1, 1));
    CHECK(default_cooldown_rule(401, 1, 100, 3));
  }
  SECTION("more than half failed, at least 5 requests, group of more than one") {
    CHECK(default_cooldown_rule(500, 3, 5, 2));
    CHECK_FALSE(default_cooldown_rule(500, 3, 6, 2)); // exactly half
    CHECK_FALSE(default_cooldown_rule(500, 4, 4, 2)); // fewer than 5 requests
    CHECK_FALSE(default_cooldown_rule(500, 3, 5, 1)); // group of one
    CHECK_FALSE(default_cooldown_rule(408, 1, 1, 2));
  }
  SECTION("all failed with at least 1000 requests, whatever the group") {
    CHECK(default_cooldown_rule(500, 1000, 1000, 1));
    CHECK_FALSE(default_cooldown_rule(500, 999, 999, 1));
    CHECK_FALSE(default_cooldown_rule(500, 999, 1000, 1));
  }
}

// --- deployment_health -----------------------------------------------------

TEST_CASE("health: allowed_fails 2 cools on the third failure in the minute", "[cooldown]") {
  router_settings s;
  s.allowed_fails = 2;
  auto config = group_of_size(1, s);
  deployment_health h(config, 0);
  const auto boom = error_of(error_kind::internal_server);

  SECTION("three failures within the minute") {
    CHECK_FALSE(h.record_failure(0, boom, at(0)));
    CHECK_FALSE(h.record_failure(0, boom, at(10)));
    CHECK(seconds_of(h.record_failure(0, boom, at(59))) == 5.0);
    CHECK(seconds_of(h.record_failure(0, boom, at(59))) == 5.0); // and after
    CHECK(h.failures(0, at(59)) == 4);
  }
  SECTION("the window resets 60 s after it started") {
    CHECK_FALSE(h.record_failure(0, boom, at(0)));
    CHECK_FALSE(h.record_failure(0, boom, at(10)));
    CHECK(h.failures(0, at_ms(59999)) == 2);
    CHECK(h.failures(0, at(60)) == 0);
    CHECK_FALSE(h.record_failure(0, boom, at(60))); // first of a new window
    CHECK_FALSE(h.record_failure(0, boom, at(61)));
    CHECK(seconds_of(h.record_failure(0, boom, at(62))) == 5.0);
  }
  SECTION("successes do not count as failures") {
    h.record_success(0, at(0));
    CHECK_FALSE(h.record_failure(0, boom, at(1)));
    h.record_success(0, at(2));
    CHECK_FALSE(h.record_failure(0, boom, at(3)));
    CHECK(h.requests(0, at(3)) == 4);
    CHECK(h.failures(0, at(3)) == 2);
    CHECK(seconds_of(h.record_failure(0, boom, at(4))) == 5.0);
  }
  SECTION("a failure that never cools does not start one past the allowance") {
    const auto bad = error_of(error_kind::bad_request);
    for (int i = 0; i < 5; ++i)
      CHECK_FALSE(h.record_failure(0, bad, at(i)));
  }
}

TEST_CASE("health: allowed_fails 0 cools on the first failure", "[cooldown]") {
  router_settings s;
  s.allowed_fails = 0;
  auto config = group_of_size(2, s);
  deployment_health h(config, 0);
  CHECK(seconds_of(h.record_failure(1, error_of(error_kind::timeout), at(0))) == 5.0);
  CHECK(h.failures(0, at(0)) == 0);
}

TEST_CASE("health: default rules per deployment over the minute", "[cooldown]") {
  SECTION("429 in a group of two cools at once") {
    auto config = group_of_size(2);
    deployment_health h(config, 0);
    CHECK(seconds_of(h.record_failure(0, error_of(error_kind::rate_limit), at(0))) == 5.0);
  }
  SECTION("429 alone in its group does not") {
    auto config = group_of_size(1);
    deployment_health h(config, 0);
    CHECK_FALSE(h.record_failure(0, error_of(error_kind::rate_limit), at(0)));
  }
  SECTION("401 cools even alone in its group") {
    auto config = group_of_size(1);
    deployment_health h(config, 0);
    CHECK(seconds_of(h.record_failure(0, error_of(error_kind::authentication), at(0))) == 5.0);
  }
  SECTION("500s cool once more than half of at least 5 requests failed") {
    auto config = group_of_size(2);
    deployment_health h(config, 0);
    const auto boom = error_of(error_kind::internal_server);
    h.record_success(1, at(0)); // the other deployment's counts are its own
    h.record_success(0, at(0));
    h.record_success(0, at(1));
    CHECK_FALSE(h.record_failure(0, boom, at(2))); // 1/3
    CHECK_FALSE(h.record_failure(0, boom, at(3))); // 2/4
    CHECK(seconds_of(h.record_failure(0, boom, at(4))) == 5.0); // 3/5
    CHECK_FALSE(h.record_failure(1, boom, at(5))); // 1/2 for deployment 1
  }
  SECTION("500s alone in a group cool only at 100% of 1000 requests") {
    auto config = group_of_size(1);
    deployment_health h(config, 0);
    const auto boom = error_of(error_kind::internal_server);
    int cooled = 0;
    for (int i = 0; i < 999; ++i)
      cooled += h.record_failure(0, boom, at(0)) ? 1 : 0;
    CHECK(cooled == 0);
    CHECK(seconds_of(h.record_failure(0, boom, at(1))) == 5.0);
  }
  SECTION("the deployment's cooldown_time and the error's Retry-After set the length") {
    auto config = make_config({deployment("g", "A").cooldown_time(10), deployment("g", "B")});
    deployment_health h(config, 0);
    CHECK(seconds_of(h.record_failure(0, error_of(error_kind::rate_limit, 30.0), at(0))) == 10.0);
    CHECK(seconds_of(h.record_failure(1, error_of(error_kind::rate_limit, 30.0), at(0))) == 30.0);
  }
  SECTION("APIConnectionError never cools, whatever the counts") {
    auto config = group_of_size(2);
    deployment_health h(config, 0);
    for (int i = 0; i < 10; ++i)
      CHECK_FALSE(h.record_failure(0, error_of(error_kind::api_connection), at(i)));
    CHECK(h.failures(0, at(9)) == 10);
  }
}

TEST_CASE("health: the group size is that of the health's own group", "[cooldown]") {
  auto config = make_config({deployment("a", "A1"), deployment("b", "B1"), deployment("b", "B2")});
  deployment_health b(config, 1);
  // Group b has two deployments: a 429 cools by the default rule.
  CHECK(seconds_of(b.record_failure(1, error_of(error_kind::rate_limit), at(0))) == 5.0);
  deployment_health a(config, 0);
  CHECK_FALSE(a.record_failure(0, error_of(error_kind::rate_limit), at(0)));
}

// --- cooldown_state --------------------------------------------------------

TEST_CASE("cooldown state: start, cooling and expiry exactly at the fake time", "[cooldown]") {
  cooldown_state c(3);
  CHECK(c.available(at(0)) == std::vector<bool>{true, true, true});
  CHECK_FALSE(c.next_expiry());
  CHECK_FALSE(c.shortest_remaining(at(0)));

  CHECK(c.start(1, at(0), at(5)));
  CHECK(c.cooling(1, at(0)));
  CHECK(c.cooling(1, at_ms(4999)));
  CHECK_FALSE(c.cooling(1, at(5))); // over exactly at its end
  CHECK(c.available(at(0)) == std::vector<bool>{true, false, true});
  CHECK(c.available(at(5)) == std::vector<bool>{true, true, true});
  CHECK(c.available_count(at(0)) == 2);
  CHECK(c.available_count(at(5)) == 3);
  CHECK(c.next_expiry() == at(5));

  CHECK_FALSE(c.expire(at_ms(4999)));
  CHECK(c.next_expiry() == at(5));
  CHECK(c.expire(at(5)));
  CHECK_FALSE(c.next_expiry());
  CHECK_FALSE(c.expire(at(6)));
  CHECK(c.start(1, at(6), at(20))); // available again before this start
}

TEST_CASE("cooldown state: a second start extends, never shortens", "[cooldown]") {
  cooldown_state c(2);
  CHECK(c.start(0, at(0), at(5)));
  CHECK_FALSE(c.start(0, at(1), at(8))); // already cooling: the set did not change
  CHECK(c.next_expiry() == at(8));
  CHECK(c.cooling(0, at(7)));
  CHECK_FALSE(c.start(0, at(2), at(6)));
  CHECK(c.next_expiry() == at(8));
  CHECK_FALSE(c.expire(at(7)));
  CHECK(c.expire(at(8)));
  CHECK_FALSE(c.cooling(0, at(8)));
}

TEST_CASE("cooldown state: a cooldown that ran out counts as available before expire()",
          "[cooldown]") {
  cooldown_state c(1);
  CHECK(c.start(0, at(0), at(5)));
  // expire() has not run, but at 6 s the deployment is available again, so
  // this start changes the available set.
  CHECK(c.start(0, at(6), at(7)));
  CHECK(c.next_expiry() == at(7));
}

TEST_CASE("cooldown state: shortest remaining and next expiry across deployments",
          "[cooldown]") {
  cooldown_state c(4);
  c.start(0, at(0), at(10));
  c.start(2, at(0), at(4));
  c.start(3, at(0), at(7));
  CHECK(c.next_expiry() == at(4));
  REQUIRE(c.shortest_remaining(at(1)));
  CHECK(c.shortest_remaining(at(1))->count() == 3.0);
  // At 4 s deployment 2 is over even before expire() runs.
  CHECK(c.shortest_remaining(at(4))->count() == 3.0);
  CHECK(c.available_count(at(4)) == 2);

  CHECK(c.expire(at(4)));
  CHECK(c.next_expiry() == at(7));
  CHECK(c.expire(at(9)));
  CHECK(c.next_expiry() == at(10));
  CHECK(c.available(at(9)) == std::vector<bool>{false, true, true, true});
  CHECK(c.shortest_remaining(at(9))->count() == 1.0);
  CHECK_FALSE(c.shortest_remaining(at(10)));
  CHECK(c.expire(at(10)));
  CHECK_FALSE(c.next_expiry());
}

// --- the request's cooldown_time ------------------------------------------------

TEST_CASE("cooldown length: the request's cooldown_time wins over every other",
          "[cooldown]") {
  const auto s = settings_with_cooldown(5);
  const auto limited = error_of(error_kind::rate_limit, 7.0);
  CHECK(seconds_of(cooldown_length(s, 3.0, limited, 1.5)) == 1.5);          // over the deployment's
  CHECK(seconds_of(cooldown_length(s, std::nullopt, limited, 30.0)) == 30.0); // over Retry-After
  CHECK(seconds_of(cooldown_length(s, std::nullopt, error_of(error_kind::internal_server), 2.0))
        == 2.0);                                                              // over the router's
  // Without one, the usual order.
  CHECK(seconds_of(cooldown_length(s, 3.0, limited, std::nullopt)) == 3.0);
  // A request's 0 means no cooldown for its failures.
  CHECK_FALSE(cooldown_length(s, 3.0, limited, 0.0));
  // It does not make a failure that never cools cool.
  CHECK_FALSE(cooldown_length(s, std::nullopt, error_of(error_kind::bad_request), 10.0));
  CHECK_FALSE(cooldown_length(s, std::nullopt, error_of(error_kind::api_connection), 10.0));
  auto disabled = s;
  disabled.disable_cooldowns = true;
  CHECK_FALSE(cooldown_length(disabled, std::nullopt, limited, 10.0));
}

TEST_CASE("health: record_failure uses the request's cooldown_time", "[cooldown]") {
  auto config = make_config({deployment("g", "A").cooldown_time(10), deployment("g", "B")});
  deployment_health h(config, 0);
  const auto limited = error_of(error_kind::rate_limit, 30.0);
  CHECK(seconds_of(h.record_failure(0, limited, at(0), 2.0)) == 2.0);
  CHECK(seconds_of(h.record_failure(1, limited, at(0), 4.0)) == 4.0);
  CHECK(seconds_of(h.record_failure(0, limited, at(1))) == 10.0);
  CHECK(seconds_of(h.record_failure(1, limited, at(1))) == 30.0);
  // 0 from the request: the failure is counted, but cools nothing.
  CHECK_FALSE(h.record_failure(0, limited, at(2), 0.0));
  CHECK(h.failures(0, at(2)) == 3);
}

// --- allowed_fails_policy -------------------------------------------------------------

TEST_CASE("health: allowed_fails_policy per kind overrides allowed_fails", "[cooldown]") {
  router_settings s;
  s.allowed_fails = 5;
  s.allowed_fails_policy.rate_limit = 0;
  const auto boom = error_of(error_kind::internal_server);
  const auto limited = error_of(error_kind::rate_limit);

  SECTION("RateLimitErrorAllowedFails 0: the first 429 cools down") {
    auto config = group_of_size(2, s);
    deployment_health h(config, 0);
    CHECK(seconds_of(h.record_failure(0, limited, at(0))) == 5.0);
  }
  SECTION("allowed_fails 5 still applies to 500s: the sixth cools down") {
    auto config = group_of_size(2, s);
    deployment_health h(config, 0);
    for (int i = 0; i < 5; ++i)
      CHECK_FALSE(h.record_failure(0, boom, at(i)));
    CHECK(seconds_of(h.record_failure(0, boom, at(5))) == 5.0);
  }
  SECTION("a group of one: the policy, not the default rules, decides") {
    // The default rules never cool a lone deployment on a 429.
    auto config = group_of_size(1, s);
    deployment_health h(config, 0);
    CHECK(seconds_of(h.record_failure(0, limited, at(0))) == 5.0);
  }
  SECTION("the policy counts every failure of the minute, as LiteLLM does") {
    auto policy = s;
    policy.allowed_fails_policy.rate_limit = 2;
    auto config = group_of_size(1, policy);
    deployment_health h(config, 0);
    CHECK_FALSE(h.record_failure(0, boom, at(0)));
    CHECK_FALSE(h.record_failure(0, boom, at(1)));
    // The third failure, a 429, exceeds RateLimitErrorAllowedFails 2.
    CHECK(seconds_of(h.record_failure(0, limited, at(2))) == 5.0);
  }
}

TEST_CASE("health: an empty allowed_fails_policy still replaces the default rules",
          "[cooldown]") {
  // `allowed_fails_policy: {}` is a policy (LiteLLM: not None): every kind
  // gets allowed_fails, by default 3.
  router_settings s;
  s.allowed_fails_policy.present = true;
  REQUIRE(s.allowed_fails_policy.is_set());
  auto config = group_of_size(2, s);
  deployment_health h(config, 0);
  // A 404 cools at once under the default rules.
  for (int i = 0; i < 3; ++i)
    CHECK_FALSE(h.record_failure(0, error_of(error_kind::not_found), at(i)));
  CHECK(seconds_of(h.record_failure(0, error_of(error_kind::not_found), at(3))) == 5.0);
  SECTION("with allowed_fails set, that instead") {
    auto one = s;
    one.allowed_fails = 1;
    auto c = group_of_size(2, one);
    deployment_health g(c, 0);
    CHECK_FALSE(g.record_failure(0, error_of(error_kind::not_found), at(0)));
    CHECK(seconds_of(g.record_failure(0, error_of(error_kind::not_found), at(1))) == 5.0);
  }
}

TEST_CASE("health: allowed_fails_policy without allowed_fails", "[cooldown]") {
  router_settings s;
  s.allowed_fails_policy.timeout = 1;
  s.allowed_fails_policy.authentication = 2;
  auto config = group_of_size(2, s);
  deployment_health h(config, 0);
  SECTION("a named kind uses its threshold instead of the default rules") {
    // Default rules would cool a 401 at once.
    CHECK_FALSE(h.record_failure(0, error_of(error_kind::authentication), at(0)));
    CHECK_FALSE(h.record_failure(0, error_of(error_kind::authentication), at(1)));
    CHECK(seconds_of(h.record_failure(0, error_of(error_kind::authentication), at(2))) == 5.0);
    CHECK_FALSE(h.record_failure(1, error_of(error_kind::timeout), at(0)));
    CHECK(seconds_of(h.record_failure(1, error_of(error_kind::timeout), at(1))) == 5.0);
  }
  SECTION("a kind the policy leaves out gets allowed_fails' default 3, not the default rules") {
    // The default rules would cool a 429 in a group of two at once.
    for (int i = 0; i < 3; ++i)
      CHECK_FALSE(h.record_failure(0, error_of(error_kind::rate_limit), at(i)));
    CHECK(seconds_of(h.record_failure(0, error_of(error_kind::rate_limit), at(3))) == 5.0);
    // A 500: the fourth failure too (the default rules would wait for 5
    // requests).
    for (int i = 0; i < 3; ++i)
      CHECK_FALSE(h.record_failure(1, error_of(error_kind::internal_server), at(i)));
    CHECK(seconds_of(h.record_failure(1, error_of(error_kind::internal_server), at(3))) == 5.0);
  }
  SECTION("the policy does not make a failure that never cools cool") {
    auto bad = s;
    bad.allowed_fails_policy.bad_request = 0;
    auto c = group_of_size(2, bad);
    deployment_health b(c, 0);
    CHECK_FALSE(b.record_failure(0, error_of(error_kind::bad_request), at(0)));
    CHECK_FALSE(b.record_failure(0, error_of(error_kind::content_policy_violation), at(1)));
  }
}

// --- shared state hooks (SHARED_STATE.md) -----------------------------------

TEST_CASE("shared state: wall-clock deadlines convert to the steady clock and back",
          "[shared_state]") {
  const wall_ms wall_now = 1'764'619'200'123;
  const time_point steady_now = at(1000);
  CHECK(steady_deadline(wall_now + 5000, wall_now, steady_now) == at(1005));
  CHECK(steady_deadline(wall_now - 250, wall_now, steady_now) == at_ms(999'750));
  CHECK(wall_deadline(at(1005), steady_now, wall_now) == wall_now + 5000);
  // Rounded up to the next millisecond: never ends earlier when shared.
  CHECK(wall_deadline(at(1005) + std::chrono::microseconds(1), steady_now, wall_now)
        == wall_now + 5001);
  const auto back = steady_deadline(wall_deadline(at(1007), steady_now, wall_now), wall_now,
                                    steady_now);
  CHECK(back == at(1007));
}

TEST_CASE("cooldown state: a remote cooldown, the later end wins", "[shared_state]") {
  cooldown_state c(2);
  SECTION("it starts a cooldown on an available deployment") {
    CHECK(c.apply_remote(1, at(0), at(10)));
    CHECK(c.cooling(1, at(9)));
    CHECK_FALSE(c.cooling(1, at(10)));
    CHECK_FALSE(c.cooling(0, at(5)));
    CHECK(c.next_expiry() == at(10));
  }
  SECTION("a later one extends a local cooldown") {
    CHECK(c.start(0, at(0), at(5)));
    CHECK(c.apply_remote(0, at(1), at(8)));
    CHECK(c.cooling(0, at(7)));
    CHECK(c.shortest_remaining(at(1))->count() == 7.0);
  }
  SECTION("an earlier or equal one never shortens it, and changes nothing") {
    CHECK(c.start(0, at(0), at(10)));
    CHECK_FALSE(c.apply_remote(0, at(1), at(4)));
    CHECK_FALSE(c.apply_remote(0, at(1), at(10)));
    CHECK(c.cooling(0, at(9)));
    CHECK(c.next_expiry() == at(10));
  }
  SECTION("one already over changes nothing") {
    CHECK_FALSE(c.apply_remote(0, at(10), at(10)));
    CHECK_FALSE(c.apply_remote(0, at(10), at(3)));
    CHECK_FALSE(c.cooling(0, at(10)));
    CHECK_FALSE(c.next_expiry());
  }
  SECTION("after a local cooldown ran out, a remote one starts afresh") {
    CHECK(c.start(0, at(0), at(5)));
    CHECK(c.apply_remote(0, at(6), at(9)));
    CHECK(c.cooling(0, at(8)));
    CHECK(c.expire(at(9)));
    CHECK(c.available_count(at(9)) == 2);
  }
}

TEST_CASE("health: other replicas' failures count toward allowed_fails", "[shared_state]") {
  router_settings s;
  s.allowed_fails = 2;
  auto config = group_of_size(1, s);
  deployment_health h(config, 0);
  const auto boom = error_of(error_kind::internal_server);
  SECTION("two failures elsewhere: the first one here exceeds the allowance") {
    h.set_remote(0, 2, 2, at(0));
    CHECK(h.failures(0, at(1)) == 2);
    CHECK(h.record_failure(0, boom, at(1)));
    CHECK(h.failures(0, at(1)) == 3);
  }
  SECTION("one elsewhere: the second here") {
    h.set_remote(0, 5, 1, at(0));
    CHECK_FALSE(h.record_failure(0, boom, at(1)));
    CHECK(h.record_failure(0, boom, at(2)));
  }
  SECTION("a newer read replaces the older one") {
    h.set_remote(0, 2, 2, at(0));
    h.set_remote(0, 0, 0, at(1)); // the fleet's new minute
    CHECK(h.failures(0, at(1)) == 0);
    CHECK_FALSE(h.record_failure(0, boom, at(2)));
  }
  SECTION("they age out a window length after they came") {
    h.set_remote(0, 2, 2, at(0));
    CHECK(h.failures(0, at_ms(59'999)) == 2);
    CHECK(h.failures(0, at(60)) == 0);
    CHECK_FALSE(h.record_failure(0, boom, at(60)));
  }
}

TEST_CASE("health: the failure-rate rule sees the fleet's requests", "[shared_state]") {
  auto config = group_of_size(2);
  deployment_health h(config, 0);
  const auto boom = error_of(error_kind::internal_server);
  SECTION("alone, one failure in one request never cools (fewer than 5 requests)") {
    CHECK_FALSE(h.record_failure(0, boom, at(0)));
  }
  SECTION("with 4 calls and 2 failures elsewhere: 3 of 5 failed cools") {
    h.set_remote(0, 4, 2, at(0));
    CHECK(h.requests(0, at(0)) == 4);
    CHECK(h.record_failure(0, boom, at(1)));
  }
  SECTION("with 9 successful calls elsewhere: 1 of 10 does not") {
    h.set_remote(0, 9, 0, at(0));
    CHECK_FALSE(h.record_failure(0, boom, at(1)));
  }
  SECTION("100% failed with >= 1000 requests, single deployment") {
    auto single = group_of_size(1);
    deployment_health one(single, 0);
    one.set_remote(0, 999, 999, at(0));
    CHECK(one.record_failure(0, boom, at(1)));
  }
  SECTION("the other deployment is untouched") {
    h.set_remote(0, 4, 2, at(0));
    CHECK(h.requests(1, at(0)) == 0);
    CHECK_FALSE(h.record_failure(1, boom, at(1)));
  }
}
