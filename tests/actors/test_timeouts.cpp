// Call timeouts through the real actors on simulated time
// (tests/support/sim_router.hpp): the router hands each call its timeout
// (request > deployment > router), a deployment that does not answer by
// then fails with Timeout (408), and the request goes on (retry or
// failover) without waiting for the late reply. The deadline is the
// transport's (TRANSPORT.md), so the scripted transport enforces it on the
// simulated clock; the mock transport's own deadline is checked last.

#include "support/router_test.hpp"
#include "support/sim_router.hpp"

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

using switchyard::error_kind;
using switchyard::seconds_d;
using switchyard::test::config_from;
using switchyard::test::hi;
using switchyard::test::real_group;
using switchyard::test::scripted_transport;
using switchyard::test::sim_router;

namespace {

// One attempt on `id`, which timed out: the request's error is its Timeout.
void check_timed_out_once(const switchyard::route_result& r, const std::string& id) {
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::timeout);
  CHECK(r.error.status == 408);
  CHECK(r.error.deployment_id == id);
  REQUIRE(r.attempts.size() == 1);
  CHECK(r.attempts[0].deployment_id == id);
  CHECK(r.attempts[0].outcome == error_kind::timeout);
}

} // namespace

TEST_CASE("a deployment slower than its timeout fails with Timeout") {
  sim_router sim(config_from(real_group("g", {"slow"}, R"({"num_retries": 0})",
                                        {R"("timeout": 0.05)"})),
                 11);
  auto answer = sim.send(hi("g"));
  sim.run();
  REQUIRE(sim.upstream().calls().size() == 1);
  CHECK(sim.upstream().calls()[0].timeout == seconds_d(0.05));

  sim.advance(seconds_d(0.05) - std::chrono::nanoseconds(1));
  CHECK_FALSE(answer->has_value());
  sim.advance(std::chrono::nanoseconds(1));
  REQUIRE(answer->has_value());
  const auto& r = **answer;
  check_timed_out_once(r, "slow");
  // The latency is the actor clock's: exactly the timeout.
  CHECK(r.attempts[0].latency_ms == Approx(50).margin(1e-6));
}

TEST_CASE("the request's timeout wins over the deployment's") {
  sim_router sim(config_from(real_group("g", {"d"}, R"({"num_retries": 0, "timeout": 0.01})",
                                        {R"("timeout": 0.01)"})),
                 11);
  auto req = hi("g");
  req.timeout_s = 5;
  auto answer = sim.send(req);
  sim.run();
  REQUIRE(sim.upstream().calls().size() == 1);
  CHECK(sim.upstream().calls()[0].timeout == seconds_d(5));
  // Well past the deployment's and the router's 0.01 s: still waiting.
  sim.advance(seconds_d(0.1));
  CHECK_FALSE(answer->has_value());
  sim.upstream().answer(0, "in time");
  sim.run();
  REQUIRE(answer->has_value());
  CHECK((*answer)->ok);
  CHECK((*answer)->content == "in time");
  CHECK((*answer)->attempts[0].latency_ms == Approx(100).margin(1e-6));
}

TEST_CASE("a timed-out deployment is failed over inside the same request") {
  sim_router sim(
    config_from(real_group("g", {"hanging", "fast"},
                           R"({"num_retries": 0, "enable_weighted_failover": true})",
                           {R"("weight": 1000000, "timeout": 0.05)", R"("weight": 1)"})),
    11);
  sim.upstream().respond_with([](const scripted_transport::call& c) -> std::optional<switchyard::call_outcome> {
    if (c.deployment_id == "fast")
      return scripted_transport::success("fast");
    return std::nullopt; // hangs
  });
  auto answer = sim.send(hi("g"));
  sim.run();
  CHECK(sim.upstream().called() == std::vector<std::string>{"hanging"});
  CHECK_FALSE(answer->has_value());
  sim.advance(seconds_d(0.05));
  CHECK(sim.upstream().called() == std::vector<std::string>{"hanging", "fast"});
  REQUIRE(answer->has_value());
  const auto& r = **answer;
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "fast");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].deployment_id == "hanging");
  CHECK(r.attempts[0].outcome == error_kind::timeout);
  CHECK(r.fallback_depth == 1);
}

TEST_CASE("total_timeout ends the request at its deadline and cancels the call in flight") {
  sim_router sim(config_from(real_group("g", {"held"}, R"({"total_timeout": 0.2})")), 11);
  auto answer = sim.send(hi("g"));
  sim.run();
  REQUIRE(sim.upstream().calls().size() == 1);
  sim.advance(seconds_d(0.2) - std::chrono::nanoseconds(1));
  CHECK_FALSE(answer->has_value());
  CHECK(sim.upstream().open_calls() == std::vector<std::size_t>{0});
  sim.advance(std::chrono::nanoseconds(1));
  REQUIRE(answer->has_value());
  CHECK_FALSE((*answer)->ok);
  CHECK((*answer)->error.kind == error_kind::timeout);
  CHECK((*answer)->error.message.find("total_timeout of 0.2 s") != std::string::npos);
  CHECK(sim.upstream().calls()[0].cancelled);
}

TEST_CASE("the mock transport answers a call slower than its timeout with Timeout") {
  // The mock's own deadline, on its timer thread: 2 s of mock latency
  // against a 0.05 s timeout. Only the outcome is asserted.
  switchyard::router router{config_from(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m",
      "mock_response": "late", "mock_latency_ms": 2000, "timeout": 0.05},
      "model_info": {"id": "slow"}}],
    "router_settings": {"num_retries": 0}})"),
                            switchyard::router_options{11}};
  auto r = router.complete(hi("g"));
  check_timed_out_once(r, "slow");
}
