// Retries never call a deployment that already failed for the request while
// another healthy candidate remains (docs/reliability.md section 2), through
// the real picker, cooldowns and mock calls (tests/support/flow_driver.hpp).

#include "support/flow_driver.hpp"
#include "support/router_test.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;

namespace {

using ids = std::vector<std::string>;

ids attempted(const route_result& r) {
  ids out;
  for (const auto& a : r.attempts)
    out.push_back(a.deployment_id);
  return out;
}

router_settings retries(int n, bool failover = false) {
  router_settings s;
  s.num_retries = n;
  s.enable_weighted_failover = failover;
  s.disable_cooldowns = true; // every deployment stays a candidate
  return s;
}

} // namespace

TEST_CASE("retry exclusion: three failing deployments, num_retries 2: each is tried once",
          "[retry_exclusion]") {
  const auto kind = error_kind::internal_server;
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("g", "A").fails(kind), deployment("g", "B").fails(kind),
     deployment("g", "C").fails(kind)},
    retries(2)));
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    auto r = d.run(switchyard::test::hi("g"));
    CHECK_FALSE(r.ok);
    const auto tried = attempted(r);
    REQUIRE(tried.size() == 3);
    CHECK(std::set<std::string>(tried.begin(), tried.end()).size() == 3);
  }
}

TEST_CASE("retry exclusion: the one healthy deployment that has not failed yet is found",
          "[retry_exclusion]") {
  // A (weight 1000) and B (weight 1000) fail, C (weight 1) answers: without
  // the exclusion, two retries would almost always go to A or B again.
  const auto kind = error_kind::service_unavailable;
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("g", "A").weight(1000).fails(kind), deployment("g", "B").weight(1000).fails(kind),
     deployment("g", "C").weight(1).reply("from C")},
    retries(2)));
  for (int k = 0; k < 50; ++k) {
    auto r = d.run(switchyard::test::hi("g"));
    REQUIRE(r.ok);
    CHECK(r.deployment_id == "C");
    const auto tried = attempted(r);
    CHECK(tried.size() == 3);
    CHECK(tried.back() == "C");
  }
  CHECK(d.calls("A") == 50);
  CHECK(d.calls("B") == 50);
}

TEST_CASE("retry exclusion: two failing deployments, num_retries 3: they alternate",
          "[retry_exclusion]") {
  const auto kind = error_kind::internal_server;
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("g", "A").fails(kind), deployment("g", "B").fails(kind)}, retries(3)));
  for (int k = 0; k < 20; ++k) {
    const auto tried = attempted(d.run(switchyard::test::hi("g")));
    REQUIRE(tried.size() == 4);
    // A, B, A, B or B, A, B, A: never the same deployment twice in a row.
    CHECK(tried[0] != tried[1]);
    CHECK(tried[2] == tried[0]);
    CHECK(tried[3] == tried[1]);
  }
}

TEST_CASE("retry exclusion: a group of one retries its deployment", "[retry_exclusion]") {
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("g", "S").fails(error_kind::internal_server)}, retries(2)));
  auto r = d.run(switchyard::test::hi("g"));
  CHECK(attempted(r) == ids{"S", "S", "S"});
  CHECK(r.error.deployment_id == "S");
}

TEST_CASE("retry exclusion: failover hops exclude every deployment that failed before",
          "[retry_exclusion][failover]") {
  // Four failing deployments, num_retries 1, weighted failover: hop 0 tries
  // two, the failover hop the other two; none is tried twice.
  const auto kind = error_kind::internal_server;
  switchyard::test::flow_driver d(switchyard::test::make_config(
    {deployment("g", "A").fails(kind), deployment("g", "B").fails(kind),
     deployment("g", "C").fails(kind), deployment("g", "D").fails(kind)},
    retries(1, true)));
  for (int k = 0; k < 20; ++k) {
    auto r = d.run(switchyard::test::hi("g"));
    const auto tried = attempted(r);
    REQUIRE(tried.size() == 4);
    CHECK(std::set<std::string>(tried.begin(), tried.end()).size() == 4);
    CHECK(r.fallback_depth == 1);
    // The original error: the first hop's, after its retry (its latest).
    CHECK(r.error.deployment_id == tried[1]);
  }
}
