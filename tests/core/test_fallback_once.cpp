// A fallback group is attempted at most once per request however it is
// reached, and ContextWindowExceeded / ContentPolicyViolation without a list
// of their own go on to the generic fallbacks: whole requests through the
// real resolve_fallbacks, picker and mock calls (tests/support/flow_driver.hpp).

#include "support/flow_driver.hpp"
#include "support/router_test.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;

namespace {

std::vector<std::string> trace(const route_result& r) {
  std::vector<std::string> out;
  for (const auto& a : r.attempts)
    out.push_back(a.deployment_id + (a.outcome ? " " + std::string(name_of(*a.outcome)) : " ok"));
  return out;
}

router_settings no_retries() {
  router_settings s;
  s.num_retries = 0;
  return s;
}

} // namespace

TEST_CASE("fallback once: a list naming a group twice tries it once, then the next",
          "[fallback_once]") {
  auto s = no_retries();
  s.fallbacks = {{"primary", {"fb", "fb", "other"}}};
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("primary", "p").fails(error_kind::internal_server),
     deployment("fb", "f").fails(error_kind::internal_server),
     deployment("other", "o").reply("from other")},
    s));
  auto r = d.run(switchyard::test::hi("primary"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "o");
  CHECK(r.fallback_depth == 2);
  CHECK(trace(r) == std::vector<std::string>{"p InternalServerError", "f InternalServerError",
                                             "o ok"});
  CHECK(d.calls("f") == 1);
}

TEST_CASE("fallback once: a group reached through nested fallbacks is not tried again, so "
          "a later target is reached within max_fallbacks", "[fallback_once]") {
  // primary -> [f1, f2, f3], f1 -> [f2]; max_fallbacks 3: f1, f2 (as f1's
  // fallback), then f3 (f2 again is skipped without a hop).
  auto s = no_retries();
  s.max_fallbacks = 3;
  s.fallbacks = {{"primary", {"f1", "f2", "f3"}}, {"f1", {"f2"}}};
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("primary", "p").fails(error_kind::service_unavailable),
     deployment("f1", "one").fails(error_kind::internal_server),
     deployment("f2", "two").fails(error_kind::bad_gateway),
     deployment("f3", "three").reply("from f3")},
    s));
  auto r = d.run(switchyard::test::hi("primary"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "three");
  CHECK(r.fallback_depth == 3);
  CHECK(trace(r) == std::vector<std::string>{"p ServiceUnavailableError",
                                             "one InternalServerError", "two BadGatewayError",
                                             "three ok"});
  CHECK(d.calls("two") == 1);
}

TEST_CASE("fallback once: ContextWindowExceeded with no context_window_fallbacks goes to the "
          "generic fallbacks, '*' included", "[fallback_once]") {
  auto s = no_retries();
  s.fallbacks = {{"*", {"big"}}};
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("small", "s").fails(error_kind::context_window_exceeded),
     deployment("big", "b").reply("roomy")},
    s));
  auto r = d.run(switchyard::test::hi("small"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "b");
  CHECK(trace(r) == std::vector<std::string>{"s ContextWindowExceededError", "b ok"});
  SECTION("a non-empty list without the group's entry raises it") {
    auto with_list = s;
    with_list.context_window_fallbacks = {{"big", {"small"}}};
    switchyard::test::flow_driver e(switchyard::test::make_config(
      {deployment("small", "s").fails(error_kind::context_window_exceeded),
       deployment("big", "b").reply("roomy")},
      with_list));
    auto raised = e.run(switchyard::test::hi("small"));
    CHECK_FALSE(raised.ok);
    CHECK(raised.error.kind == error_kind::context_window_exceeded);
    CHECK(trace(raised) == std::vector<std::string>{"s ContextWindowExceededError"});
  }
}
