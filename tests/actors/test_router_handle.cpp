// The router as an actor: its CAF handle, joining an application's actor
// system, and unknown models. Asserts on what callers receive.

#include "switchyard/actor_protocol.hpp"
#include "support/router_test.hpp"

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

using namespace std::chrono_literals;
using nlohmann::json;
using switchyard::error_kind;

namespace {

using switchyard::test::config_from;
using switchyard::test::hi;

switchyard::request_ptr shared(switchyard::chat_request r) {
  return std::make_shared<const switchyard::chat_request>(std::move(r));
}

switchyard::router_options seeded(std::size_t threads = 2) {
  return switchyard::test::seeded_options(99, threads);
}

// One healthy group, and a slow one (5 s per call) that is everyone's
// default fallback: a request that reached any deployment of it could not
// answer quickly.
const char* const two_groups = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "ok from A"},
     "model_info": {"id": "A"}},
    {"model_name": "slow-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "slow",
                        "mock_latency_ms": 5000},
     "model_info": {"id": "slow"}}
  ],
  "router_settings": {"num_retries": 0, "default_fallbacks": ["slow-model"]}
})json";

// A request to `model` whose mock fails with `e`, no fallbacks.
switchyard::request_ptr failing(const std::string& model, switchyard::router_error e) {
  auto request = hi(model);
  request.mock.kind = switchyard::mock_spec::mode::fail;
  request.mock.error = std::move(e);
  request.disable_fallbacks = true;
  return shared(std::move(request));
}

// Sends one route request from a scoped actor and waits (bounded) for the
// answer; nullopt when an error came instead of a route_result.
std::optional<switchyard::route_result>
route_via_handle(caf::actor_system& system, const caf::actor& handle,
                 switchyard::request_ptr request, caf::error* err_out = nullptr,
                 std::chrono::milliseconds timeout = 10s) {
  caf::scoped_actor self{system};
  std::optional<switchyard::route_result> out;
  self->request(handle, timeout, switchyard::route_atom::value, std::move(request))
    .receive([&](switchyard::route_result& r) { out = std::move(r); },
             [&](caf::error& e) {
               if (err_out)
                 *err_out = e;
             });
  return out;
}

} // namespace

TEST_CASE("the router's handle answers (route_atom, request_ptr) with a route_result") {
  switchyard::router router(config_from(two_groups), seeded());
  caf::actor handle = router.handle();
  REQUIRE(handle);
  caf::error err;
  auto result = route_via_handle(handle.home_system(), handle, shared(hi("test-model")), &err);
  INFO("error: " << handle.home_system().render(err));
  REQUIRE(result.has_value());
  CHECK(result->ok);
  CHECK(result->deployment_id == "A");
  CHECK(result->model_group == "test-model");
  CHECK(result->content == "ok from A");
  CHECK(result->fallback_depth == 0);
  REQUIRE(result->attempts.size() == 1);
  CHECK(result->attempts[0].deployment_id == "A");

  SECTION("a failure is a route_result too, not a CAF error") {
    auto failed = route_via_handle(
      handle.home_system(), handle,
      failing("test-model", switchyard::router_error::make(error_kind::not_found, "gone")));
    REQUIRE(failed.has_value());
    CHECK_FALSE(failed->ok);
    CHECK(failed->error.kind == error_kind::not_found);
    CHECK(failed->error.status == 404);
    CHECK(failed->error.message == "gone");
    CHECK(failed->error.deployment_id == "A");
  }

  SECTION("the callback form (route_atom, request_ptr, completion_handler)") {
    std::mutex m;
    std::condition_variable cv;
    int calls = 0;
    switchyard::route_result got;
    switchyard::completion_handler done = [&](switchyard::route_result r) {
      std::lock_guard<std::mutex> lock(m);
      ++calls;
      got = std::move(r);
      cv.notify_all();
    };
    caf::anon_send(handle, switchyard::route_atom::value, shared(hi("test-model")), done);
    std::unique_lock<std::mutex> lock(m);
    REQUIRE(cv.wait_for(lock, 10s, [&] { return calls > 0; }));
    CHECK(calls == 1);
    CHECK(got.ok);
    CHECK(got.deployment_id == "A");
  }
}

TEST_CASE("a router joins an application's existing actor system") {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system system{cfg};

  // An application actor that relays requests to the router.
  auto relay = [](caf::event_based_actor* self, caf::actor router_handle) -> caf::behavior {
    return {
      [self, router_handle](switchyard::route_atom, switchyard::request_ptr request) {
        return self->delegate(router_handle, switchyard::route_atom::value, std::move(request));
      },
    };
  };
  // An actor of the application that has nothing to do with the router.
  // It takes an argument: CAF 0.17's spawn of a function without arguments
  // binds a reference to a null std::tuple<> (init_fun_factory.hpp), which
  // UBSan reports.
  auto echo = [](caf::event_based_actor*, int step) -> caf::behavior {
    return {[step](int x) { return x + step; }};
  };
  auto app_actor = system.spawn(echo, 1);

  {
    switchyard::router router(system, config_from(two_groups), seeded());
    caf::actor handle = router.handle();
    REQUIRE(&handle.home_system() == &system);

    auto direct = router.complete(hi("test-model"));
    CHECK(direct.ok);
    CHECK(direct.deployment_id == "A");

    auto via_relay = route_via_handle(system, system.spawn(relay, handle),
                                      shared(hi("test-model")));
    REQUIRE(via_relay.has_value());
    CHECK(via_relay->ok);
    CHECK(via_relay->deployment_id == "A");
    CHECK(via_relay->content == "ok from A");
  }

  // The router is gone; the application's system and actors carry on.
  caf::scoped_actor self{system};
  std::optional<int> answer;
  self->request(app_actor, 10s, 41).receive([&](int x) { answer = x; },
                                             [&](caf::error&) {});
  CHECK(answer == std::optional<int>(42));
  caf::anon_send_exit(app_actor, caf::exit_reason::user_shutdown);
}

TEST_CASE("an unknown model is a BadRequestError naming it, answered at once") {
  switchyard::router router(config_from(two_groups), seeded());

  SECTION("through complete()") {
    auto started = std::chrono::steady_clock::now();
    auto result = router.complete(hi("no-such-model"));
    auto elapsed = std::chrono::steady_clock::now() - started;
    CHECK_FALSE(result.ok);
    CHECK(result.error.kind == error_kind::bad_request);
    CHECK(result.error.status == 400);
    CHECK(result.error.message.find("'no-such-model'") != std::string::npos);
    CHECK(result.error.deployment_id.empty());
    CHECK(result.attempts.empty());
    CHECK(result.fallback_depth == 0);
    // Not sent to the default fallback (a 5 s call): far quicker than that.
    CHECK(elapsed < 1s);
  }

  SECTION("through the handle, within a 1 s request timeout") {
    caf::actor handle = router.handle();
    caf::error err;
    auto result = route_via_handle(handle.home_system(), handle,
                                   shared(hi("no-such-model")), &err, 1000ms);
    INFO("error: " << handle.home_system().render(err));
    REQUIRE(result.has_value());
    CHECK_FALSE(result->ok);
    CHECK(result->error.kind == error_kind::bad_request);
    CHECK(result->error.message.find("no-such-model") != std::string::npos);
    CHECK(result->attempts.empty());
  }
}

TEST_CASE("a request built in code is validated: an invalid field is a BadRequestError naming it") {
  switchyard::router router(config_from(two_groups), seeded());
  auto empty = hi("test-model");
  empty.messages = nlohmann::json::array();

  SECTION("through complete()") {
    auto result = router.complete(empty);
    CHECK_FALSE(result.ok);
    CHECK(result.error.kind == error_kind::bad_request);
    CHECK(result.error.message == "request.messages: expected a non-empty array");
    CHECK(result.attempts.empty());
  }

  SECTION("through the handle") {
    caf::actor handle = router.handle();
    caf::error err;
    auto too_many = hi("test-model");
    too_many.num_retries = switchyard::max_num_retries + 1;
    auto result = route_via_handle(handle.home_system(), handle, shared(too_many), &err, 1000ms);
    INFO("error: " << handle.home_system().render(err));
    REQUIRE(result.has_value());
    CHECK_FALSE(result->ok);
    CHECK(result->error.kind == error_kind::bad_request);
    CHECK(result->error.message.rfind("request.num_retries: ", 0) == 0);
    CHECK(result->attempts.empty());
  }
}

// A mock call that waits on its timer parks its planned outcome (a success
// as its few fields, a failure whole): both arrive as planned.
TEST_CASE("a delayed mock reply and a delayed mock failure arrive whole") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "late-model",
       "litellm_params": {"model": "openai/gpt-4o",
                          "mock_response": "a reply longer than the inline buffer",
                          "mock_latency_ms": 20},
       "model_info": {"id": "late"}}
    ],
    "router_settings": {"num_retries": 0}
  })json"), seeded());
  caf::actor handle = router.handle();
  auto& system = handle.home_system();

  auto ok = route_via_handle(system, handle, shared(hi("late-model")));
  REQUIRE(ok.has_value());
  CHECK(ok->ok);
  CHECK(ok->content == "a reply longer than the inline buffer");
  CHECK(ok->finish_reason == "stop");
  CHECK(ok->deployment_id == "late");
  CHECK(ok->model == "gpt-4o");
  CHECK(ok->completion_tokens > 0);
  CHECK(ok->response["choices"][0]["message"]["content"]
        == "a reply longer than the inline buffer");

  auto failed = route_via_handle(
    system, handle,
    failing("late-model", switchyard::router_error::make(error_kind::rate_limit, "slow down", 2.5)));
  REQUIRE(failed.has_value());
  CHECK_FALSE(failed->ok);
  CHECK(failed->error.kind == error_kind::rate_limit);
  CHECK(failed->error.status == 429);
  CHECK(failed->error.message == "slow down");
  CHECK(failed->error.deployment_id == "late");
  REQUIRE(failed->error.retry_after_s);
  CHECK(*failed->error.retry_after_s == 2.5);
}
