#include "switchyard/retry.hpp"

#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <optional>
#include <vector>

using namespace switchyard;

namespace {

/// The delay with `u` as the one draw it may make (none scripted: it
/// must not draw).
double delay_s(std::size_t group_size, std::size_t healthy,
               std::optional<double> retry_after_s, int attempt,
               std::optional<double> u = std::nullopt) {
  switchyard::test::scripted_random rng;
  if (u)
    rng.push(*u);
  const double d = retry_delay(group_size, healthy, retry_after_s, attempt, rng).count();
  CHECK(rng.remaining() == 0); // a scripted draw was made
  return d;
}

} // namespace

TEST_CASE("num_retries: request > deployment > router", "[retry]") {
  router_settings settings;
  settings.num_retries = 4;
  deployment_config plain;
  deployment_config with_own;
  with_own.num_retries = 3;
  chat_request no_override;
  chat_request asks_one;
  asks_one.num_retries = 1;
  chat_request asks_none;
  asks_none.num_retries = 0;

  CHECK(effective_num_retries(settings, plain, no_override) == 4);
  CHECK(effective_num_retries(settings, with_own, no_override) == 3);
  CHECK(effective_num_retries(settings, with_own, asks_one) == 1);
  CHECK(effective_num_retries(settings, plain, asks_one) == 1);
  CHECK(effective_num_retries(settings, with_own, asks_none) == 0);
  CHECK(effective_num_retries(router_settings{}, plain, no_override) == 2); // the default
}

TEST_CASE("should_retry for every error kind, group size, health and fallbacks", "[retry]") {
  // never: not retried at all; healthy: retried while a deployment is
  // healthy; multi: like healthy, but only in a group of more than one.
  enum class rule { never, healthy, multi };
  struct row {
    error_kind kind;
    rule r;
  };
  const std::vector<row> table = {
    {error_kind::bad_request, rule::never},
    {error_kind::context_window_exceeded, rule::never},
    {error_kind::content_policy_violation, rule::never},
    {error_kind::authentication, rule::multi},
    {error_kind::permission_denied, rule::multi},
    {error_kind::not_found, rule::never},
    {error_kind::timeout, rule::healthy},
    {error_kind::unprocessable_entity, rule::never},
    {error_kind::rate_limit, rule::healthy},
    {error_kind::internal_server, rule::healthy},
    {error_kind::api_connection, rule::healthy},
    {error_kind::bad_gateway, rule::healthy},
    {error_kind::service_unavailable, rule::healthy},
    {error_kind::no_deployments_available, rule::never},
    {error_kind::overloaded, rule::never},
    {error_kind::shutdown, rule::never},
    {error_kind::cancelled, rule::never},
  };
  REQUIRE(table.size() == static_cast<std::size_t>(error_kind_count));

  struct situation {
    std::size_t group_size;
    std::size_t healthy;
  };
  for (const auto& r : table)
    for (auto s : {situation{1, 0}, situation{1, 1}, situation{2, 0}, situation{2, 1}})
      for (bool fallbacks : {false, true}) {
        const bool expected = r.r == rule::never     ? false
                              : r.r == rule::healthy ? s.healthy > 0
                                                     : s.group_size > 1 && s.healthy > 0;
        INFO(name_of(r.kind) << " group " << s.group_size << " healthy " << s.healthy
                             << " fallbacks " << fallbacks);
        CHECK(should_retry(router_error::make(r.kind, "x"), s.group_size, s.healthy,
                           fallbacks)
              == expected);
      }
}

TEST_CASE("should_retry: the RateLimit rows spelled out", "[retry]") {
  const auto e = router_error::make(error_kind::rate_limit, "slow down", 2.0);
  CHECK_FALSE(should_retry(e, 2, 0, true));  // none healthy, fallbacks exist
  CHECK_FALSE(should_retry(e, 2, 0, false)); // none healthy
  CHECK(should_retry(e, 2, 1, true));
  CHECK(should_retry(e, 1, 1, false));
}

TEST_CASE("retry delay: none when another deployment of the group is healthy", "[retry]") {
  // No draw either: the scripted source fails the test if one is made.
  CHECK(delay_s(2, 1, std::nullopt, 0) == 0.0);
  CHECK(delay_s(2, 1, 3.0, 4) == 0.0);
  CHECK(delay_s(5, 3, 120.0, 0) == 0.0);
}

TEST_CASE("retry delay: a Retry-After over 0 and at most 60 s is waited exactly, without jitter",
          "[retry]") {
  CHECK(delay_s(1, 1, 3.0, 0) == 3.0);
  CHECK(delay_s(1, 1, 3.0, 5) == 3.0); // the attempt does not matter
  CHECK(delay_s(2, 0, 3.0, 0) == 3.0); // a group with none healthy
  CHECK(delay_s(1, 1, 0.25, 2) == 0.25);
  CHECK(delay_s(1, 1, 60.0, 0) == 60.0);
}

TEST_CASE("retry delay: min(0.5 * 2^n, 8) s times a factor over 0.75 and at most 1 otherwise",
          "[retry]") {
  // Factor 1 - 0.25 * u (LiteLLM's _calculate_retry_after): u = 0 gives 1.
  CHECK(delay_s(1, 1, std::nullopt, 0, 0.0) == 0.5);
  CHECK(delay_s(1, 1, std::nullopt, 1, 0.0) == 1.0);
  CHECK(delay_s(1, 1, std::nullopt, 2, 0.0) == 2.0);
  CHECK(delay_s(1, 1, std::nullopt, 3, 0.0) == 4.0);
  CHECK(delay_s(1, 1, std::nullopt, 4, 0.0) == 8.0);
  CHECK(delay_s(1, 1, std::nullopt, 5, 0.0) == 8.0);
  CHECK(delay_s(1, 1, std::nullopt, 0, 0.5) == 0.4375); // 0.5 * 0.875
  CHECK(delay_s(1, 1, std::nullopt, 2, 0.5) == 1.75);
  CHECK(delay_s(1, 1, std::nullopt, 5, 0.5) == 7.0);
  // The factor tends to 0.75 (reached only by rounding, for u within an
  // ulp of 1) and never exceeds 1.
  const double almost_one = std::nextafter(1.0, 0.0);
  CHECK(delay_s(1, 1, std::nullopt, 4, almost_one) >= 6.0);
  CHECK(delay_s(1, 1, std::nullopt, 4, almost_one) < 6.0 + 1e-9);
  CHECK(delay_s(1, 1, std::nullopt, 4, 0.999) > 6.0);
  // A Retry-After of 0 (or below) says nothing: plain backoff.
  CHECK(delay_s(1, 1, 0.0, 1, 0.0) == 1.0);
  CHECK(delay_s(1, 1, -2.0, 1, 0.0) == 1.0);
}

TEST_CASE("retry delay: a Retry-After over 60 s is ignored for the backoff", "[retry]") {
  CHECK(delay_s(1, 1, 120.0, 0, 0.0) == 0.5);
  CHECK(delay_s(1, 1, 120.0, 3, 0.5) == 3.5);
  CHECK(delay_s(1, 1, 60.5, 4, 0.0) == 8.0);
}

// --- retry policies ------------------------------------------------------------

namespace {

int allowed(const router_settings& s, const std::string& group, error_kind k,
            const deployment_config& d = {}, const chat_request& req = {}) {
  return retries_allowed(s, group, d, req, k);
}

} // namespace

TEST_CASE("retries_allowed: without policies, num_retries (request > deployment > router)",
          "[retry][retry_policy]") {
  router_settings s;
  s.num_retries = 4;
  deployment_config with_own;
  with_own.num_retries = 3;
  chat_request asks_one;
  asks_one.num_retries = 1;
  for (auto k : {error_kind::internal_server, error_kind::rate_limit, error_kind::timeout,
                 error_kind::bad_request}) {
    INFO(name_of(k));
    CHECK(allowed(s, "g", k) == 4);
    CHECK(allowed(s, "g", k, with_own) == 3);
    CHECK(allowed(s, "g", k, with_own, asks_one) == 1);
  }
}

TEST_CASE("retries_allowed: retry_policy per kind over every num_retries",
          "[retry][retry_policy]") {
  router_settings s;
  s.num_retries = 4;
  s.retry_policy.rate_limit = 0;
  s.retry_policy.timeout = 6;
  s.retry_policy.internal_server = 1;
  s.retry_policy.authentication = 2;
  deployment_config with_own;
  with_own.num_retries = 3;
  chat_request asks_five;
  asks_five.num_retries = 5;
  CHECK(allowed(s, "g", error_kind::rate_limit, with_own, asks_five) == 0);
  CHECK(allowed(s, "g", error_kind::timeout, with_own, asks_five) == 6);
  CHECK(allowed(s, "g", error_kind::internal_server, with_own, asks_five) == 1);
  CHECK(allowed(s, "g", error_kind::authentication) == 2);
  // Kinds the policy does not name fall back to num_retries.
  CHECK(allowed(s, "g", error_kind::service_unavailable, with_own, asks_five) == 5);
  CHECK(allowed(s, "g", error_kind::bad_gateway, with_own) == 3);
  CHECK(allowed(s, "g", error_kind::api_connection) == 4);
}

TEST_CASE("retries_allowed: model_group_retry_policy over retry_policy, for its group only",
          "[retry][retry_policy]") {
  router_settings s;
  s.num_retries = 4;
  s.retry_policy.rate_limit = 1;
  s.retry_policy.timeout = 1;
  s.model_group_retry_policy["gpt-4o"].rate_limit = 3;
  s.model_group_retry_policy["gpt-4o"].timeout = 0;
  chat_request asks_five;
  asks_five.num_retries = 5;
  CHECK(allowed(s, "gpt-4o", error_kind::rate_limit) == 3);
  CHECK(allowed(s, "gpt-4o", error_kind::timeout, {}, asks_five) == 0);
  // Another group: the router-wide policy.
  CHECK(allowed(s, "gpt-4o-mini", error_kind::rate_limit) == 1);
  CHECK(allowed(s, "gpt-4o-mini", error_kind::timeout) == 1);
  CHECK(allowed(s, "gpt-4o-mini", error_kind::internal_server, {}, asks_five) == 5);
}

TEST_CASE("retries_allowed: a group's policy replaces retry_policy, as LiteLLM's does",
          "[retry][retry_policy]") {
  // LiteLLM's get_num_retries_from_retry_policy swaps in
  // model_group_retry_policy[group] for retry_policy as a whole: a kind the
  // group's policy leaves unset gets None, i.e. num_retries, not the
  // router-wide policy's entry (ROUTER_SEMANTICS.md is silent: LiteLLM rules).
  router_settings s;
  s.num_retries = 4;
  s.retry_policy.internal_server = 1;
  s.model_group_retry_policy["gpt-4o"].rate_limit = 3;
  CHECK(allowed(s, "gpt-4o", error_kind::internal_server) == 4);
  CHECK(allowed(s, "gpt-4o-mini", error_kind::internal_server) == 1);
}

TEST_CASE("retries_allowed: the BadRequest family reads BadRequestErrorRetries unless its own entry is set",
          "[retry][retry_policy]") {
  router_settings s;
  s.num_retries = 4;
  s.retry_policy.bad_request = 2;
  CHECK(allowed(s, "g", error_kind::bad_request) == 2);
  CHECK(allowed(s, "g", error_kind::context_window_exceeded) == 2);
  CHECK(allowed(s, "g", error_kind::content_policy_violation) == 2);
  s.retry_policy.content_policy_violation = 5;
  CHECK(allowed(s, "g", error_kind::content_policy_violation) == 5);
  CHECK(allowed(s, "g", error_kind::bad_request) == 2);
}

TEST_CASE("should_retry: a 400 is never retried, whatever a policy allows",
          "[retry][retry_policy]") {
  router_settings s;
  s.retry_policy.bad_request = 3;
  s.retry_policy.content_policy_violation = 3;
  for (auto k : {error_kind::bad_request, error_kind::context_window_exceeded,
                 error_kind::content_policy_violation}) {
    INFO(name_of(k));
    REQUIRE(allowed(s, "g", k) == 3);
    CHECK_FALSE(should_retry(router_error::make(k, "x"), 3, 3, false));
  }
}
