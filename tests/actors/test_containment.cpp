// Failure containment: a bug in an actor never kills a model group for the
// life of the process, a null request is a BadRequestError, and a router
// built from a broken hand-made config throws config_error at once.

#include "support/router_test.hpp"

#include "messages.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;

namespace {

const char* two_groups = R"({"model_list": [
    {"model_name": "g", "litellm_params": {"model": "openai/a", "mock_response": "from a",
       "mock_latency_ms": 1}, "model_info": {"id": "a"}},
    {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "litellm.RateLimitError",
       "mock_latency_ms": 1}, "model_info": {"id": "b"}},
    {"model_name": "other", "litellm_params": {"model": "openai/c", "mock_response": "from c"},
     "model_info": {"id": "c"}}],
  "router_settings": {"num_retries": 0, "disable_cooldowns": true}})";

void inject(router& rt, const std::string& group, const std::string& role) {
  caf::anon_send(rt.handle(), fault_atom::value, group, role);
}

// Routes until a request succeeds again (the group's actors restarted).
route_result served_again(router& rt, const std::string& group) {
  route_result r;
  for (int i = 0; i < 500; ++i) {
    r = rt.complete(hi(group));
    if (r.ok)
      return r;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return r;
}

} // namespace

TEST_CASE("an exception in a group's picker answers the request with an internal error, "
          "and the group is restarted", "[actors][containment]") {
  router rt(config_from(two_groups), seeded_options(3));
  REQUIRE(rt.complete(hi("other")).ok);
  inject(rt, "g", "picker");
  // The fault message and the next pick reach the picker in this order
  // from this thread... through different senders, so route until it
  // fails or give up.
  route_result failed;
  for (int i = 0; i < 100; ++i) {
    failed = rt.complete(hi("g"));
    if (!failed.ok && failed.error.kind != error_kind::rate_limit)
      break;
  }
  REQUIRE_FALSE(failed.ok);
  CHECK(failed.error.kind == error_kind::internal_server);
  CHECK(failed.error.kind != error_kind::shutdown);
  CHECK(failed.error.message.find("model group 'g'") != std::string::npos);
  // Served again, and the other group was never affected.
  CHECK(served_again(rt, "g").ok);
  CHECK(rt.complete(hi("other")).ok);
}

TEST_CASE("an exception in a group's health or cooldown actor does not stop the group",
          "[actors][containment]") {
  for (const char* role : {"health", "cooldown"}) {
    INFO(role);
    router rt(config_from(two_groups), seeded_options(4));
    inject(rt, "g", role);
    // Failures go through health (and cooldown): some request meets the fault.
    bool internal_seen = false;
    for (int i = 0; i < 200 && !internal_seen; ++i) {
      auto r = rt.complete(hi("g"));
      internal_seen = !r.ok && r.error.kind == error_kind::internal_server;
      CHECK(r.error.kind != error_kind::shutdown);
    }
    CHECK(internal_seen);
    CHECK(served_again(rt, "g").ok);
  }
}

TEST_CASE("a null request_ptr sent to handle() gets a BadRequestError", "[actors][containment]") {
  router rt(config_from(two_groups), seeded_options(5));
  caf::actor_system_config cfg;
  caf::actor_system sys(cfg);
  caf::scoped_actor self(sys);
  route_result r;
  self->request(rt.handle(), caf::infinite, route_atom::value, request_ptr{})
    .receive([&](route_result& x) { r = std::move(x); },
             [&](caf::error&) { FAIL("the router did not answer"); });
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::bad_request);
  CHECK(r.error.message.find("null") != std::string::npos);
}

TEST_CASE("a router built from a broken hand-made config throws config_error",
          "[actors][containment]") {
  router_config cfg;
  deployment_config d;
  d.id = "x";
  d.model_name = "g";
  d.model = "openai/x";
  d.weight = -1;
  cfg.deployments.push_back(d);
  cfg.settings.routing_strategy = "no-such-strategy";
  try {
    router rt(cfg);
    FAIL("no config_error");
  } catch (const config_error& e) {
    std::string what = e.what();
    CHECK(what.find("model_list[0].litellm_params.weight") != std::string::npos);
    CHECK(what.find("router_settings.routing_strategy") != std::string::npos);
  }
  // Not indexed by hand: the router indexes it.
  router_config fine;
  d.weight = 1;
  d.mock.kind = mock_spec::mode::reply;
  d.mock.content = "ok";
  fine.deployments.push_back(d);
  router rt(fine);
  CHECK(rt.complete(hi("g")).ok);
}
