// Call timeouts through the real actors: request > deployment > router, a
// deployment that does not answer in time fails with Timeout (408), and the
// request goes on (retry or failover) without waiting for the late reply.

#include "support/router_test.hpp"

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>

namespace {

using switchyard::test::hi;

switchyard::router make_router(const char* json) {
  return switchyard::router{switchyard::test::config_from(json), switchyard::router_options{11}};
}

double elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
    .count();
}

} // namespace

TEST_CASE("a deployment slower than its timeout fails with Timeout") {
  auto router = make_router(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m",
      "mock_response": "late", "mock_latency_ms": 2000, "timeout": 0.05},
      "model_info": {"id": "slow"}}],
    "router_settings": {"num_retries": 0}})");
  auto start = std::chrono::steady_clock::now();
  auto r = router.complete(hi("g"));
  CHECK(elapsed_ms(start) < 1500); // answered at the timeout, not the reply
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == switchyard::error_kind::timeout);
  CHECK(r.error.status == 408);
  CHECK(r.error.deployment_id == "slow");
  REQUIRE(r.attempts.size() == 1);
  CHECK(r.attempts[0].outcome == switchyard::error_kind::timeout);
  CHECK(r.attempts[0].latency_ms >= 50);
}

TEST_CASE("the request's timeout wins over the deployment's") {
  auto router = make_router(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m",
      "mock_response": "in time", "mock_latency_ms": 100, "timeout": 0.01},
      "model_info": {"id": "d"}}],
    "router_settings": {"num_retries": 0, "timeout": 0.01}})");
  auto req = hi("g");
  req.timeout_s = 5;
  auto r = router.complete(req);
  CHECK(r.ok);
  CHECK(r.content == "in time");
}

TEST_CASE("a timed-out deployment is failed over inside the same request") {
  auto router = make_router(R"({
    "model_list": [
      {"model_name": "g", "litellm_params": {"model": "m", "weight": 1000000,
        "mock_response": "late", "mock_latency_ms": 2000, "timeout": 0.05},
       "model_info": {"id": "hanging"}},
      {"model_name": "g", "litellm_params": {"model": "m", "weight": 1,
        "mock_response": "fast"}, "model_info": {"id": "fast"}}],
    "router_settings": {"num_retries": 0, "enable_weighted_failover": true}})");
  auto r = router.complete(hi("g"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "fast");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].deployment_id == "hanging");
  CHECK(r.attempts[0].outcome == switchyard::error_kind::timeout);
  CHECK(r.fallback_depth == 1);
}
