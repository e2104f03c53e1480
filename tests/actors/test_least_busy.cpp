// least-busy through the real actors on simulated time
// (tests/support/sim_router.hpp): calls stay open until the test answers
// them, so each pick sees exactly the calls in flight. Replaces the e2e
// test that measured a busy/idle split under real concurrency.

#include "support/router_test.hpp"
#include "support/sim_router.hpp"

#include "switchyard/config.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using switchyard::test::config_from;
using switchyard::test::hi;
using switchyard::test::real_group;
using switchyard::test::sim_router;

TEST_CASE("least-busy: with one deployment's call held open, every request goes to the idle one") {
  sim_router sim(config_from(real_group("busy", {"a", "b"},
                                        R"({"routing_strategy": "least-busy", "num_retries": 0})")),
                 3);
  auto& up = sim.upstream();
  auto held = sim.send(hi("busy"));
  sim.run();
  REQUIRE(up.calls().size() == 1);
  const std::string busy = up.calls()[0].deployment_id;
  const std::string idle = busy == "a" ? "b" : "a";

  // Each request is answered before the next is sent: the idle deployment
  // has 0 in flight at every pick, the busy one 1.
  for (std::size_t i = 1; i <= 20; ++i) {
    INFO("request " << i);
    auto answer = sim.send(hi("busy"));
    sim.run();
    REQUIRE(up.calls().size() == i + 1);
    CHECK(up.calls()[i].deployment_id == idle);
    up.answer(i, "from " + idle);
    sim.run();
    REQUIRE(answer->has_value());
    CHECK((*answer)->deployment_id == idle);
  }
  CHECK_FALSE(held->has_value());

  // One more held on the idle one: now each has one in flight.
  auto second = sim.send(hi("busy"));
  sim.run();
  REQUIRE(up.calls().size() == 22);
  CHECK(up.calls()[21].deployment_id == idle);

  // The first call ends: its deployment has none in flight and wins.
  up.answer(0, "from " + busy);
  sim.run();
  REQUIRE(held->has_value());
  CHECK((*held)->deployment_id == busy);
  auto third = sim.send(hi("busy"));
  sim.run();
  REQUIRE(up.calls().size() == 23);
  CHECK(up.calls()[22].deployment_id == busy);
  CHECK(up.open_calls() == std::vector<std::size_t>{21, 22});
}
