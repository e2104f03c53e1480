// Twins of LiteLLM's weighted-routing failover tests
// (shared/reference/litellm_weighted_failover_pr.txt): every Python test has
// a Catch2 test case of the same name and meaning.
//
// Mapping:
// - `_get_excluded_filtered_deployments` -> group_picker::pick with the
//   request's exclusions, on deployments loaded from a config: the ids it
//   can choose (tests/support/excluded_picks.hpp);
// - `_set_failed_deployment_id_on_exception` -> router_error::stamp;
// - `_maybe_run_weighted_failover` -> switchyard::request_flow driven by
//   hand, its picks made by the group's real strategy (the monkeypatched
//   cooldown list becomes a cooldown_state fed to set_available, and
//   `run_async_fallback` being called becomes "the flow asks for a call of
//   another deployment of the group");
// - `Router.acompletion` -> switchyard::router::complete on a real router
//   (with its own actor system), except where the Python test patches the
//   cooldown list: there the flow runs on tests/support/flow_driver.hpp with
//   B put into cooldown, plus a router variant where B is cooled for real.
//
// Python's `Exception("A down")` mock is a 500 MockException in LiteLLM: here
// `{"error": "InternalServerError", "message": "A down"}`.

#include "support/excluded_picks.hpp"
#include "support/flow_driver.hpp"
#include "support/router_test.hpp"
#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/error.hpp"
#include "switchyard/fallback.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"
#include "switchyard/request_flow.hpp"
#include "switchyard/router.hpp"
#include "switchyard/routing_strategy.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;
using switchyard::error_kind;
using switchyard::flow_action;

namespace {

// --- helpers ---------------------------------------------------------------

using switchyard::test::attempt_ids;
using switchyard::test::config_from;
using switchyard::test::hi;
using switchyard::test::scripted_random;

std::shared_ptr<const switchyard::router_config> shared_config(const std::string& text) {
  return std::make_shared<const switchyard::router_config>(config_from(text));
}

// The Python suite's `_make_dep`.
json make_dep(const std::string& id, std::optional<int> weight = std::nullopt) {
  json params = {{"model", "gpt-4o"}, {"api_key", "key"}};
  if (weight)
    params["weight"] = *weight;
  return {{"model_name", "test-model"},
          {"litellm_params", params},
          {"model_info", {{"id", id}}}};
}

// The ids of a model list's deployments, as load_config assigns them.
std::vector<std::string> loaded_ids(const json& model_list) {
  auto config = switchyard::load_config(nlohmann::ordered_json{{"model_list", model_list}});
  std::vector<std::string> ids;
  for (const auto& d : config.deployments)
    ids.push_back(d.id);
  return ids;
}

switchyard::router_options seeded(std::uint64_t seed = 20240611) {
  return switchyard::test::seeded_options(seed);
}

// The group's strategy from the registry, as the picker actor builds it.
std::unique_ptr<switchyard::routing_strategy>
make_strategy(const switchyard::router_config& config, std::uint32_t group) {
  auto s = switchyard::strategy_registry::builtin().make(
    config.settings.routing_strategy, switchyard::test::group_deployments(config, group),
    config.settings);
  REQUIRE(s != nullptr);
  return s;
}

switchyard::call_outcome failure(error_kind kind, const std::string& message) {
  switchyard::call_outcome o;
  o.error = switchyard::router_error::make(kind, message);
  return o;
}

switchyard::call_outcome success(const std::string& content) {
  switchyard::call_outcome o;
  o.ok = true;
  o.content = content;
  return o;
}

// Ids of the flow's excluded local indices in `group`.
std::vector<std::string> excluded_ids(const switchyard::request_flow& flow,
                                      std::uint32_t group) {
  const auto& config = flow.config();
  std::vector<std::string> ids;
  for (auto i : flow.excluded())
    ids.push_back(config.deployments[config.groups.at(group).deployments.at(i)].id);
  return ids;
}

// Three weight-1 deployments A, B, C of "test-model" with weighted failover,
// as in the cooldown unit tests. num_retries 0: the hop's failure goes
// straight to `_maybe_run_weighted_failover`, which those tests call directly.
const char* const three_deployments = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "k", "weight": 1},
     "model_info": {"id": "A"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "k", "weight": 1},
     "model_info": {"id": "B"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "k", "weight": 1},
     "model_info": {"id": "C"}}
  ],
  "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                      "enable_weighted_failover": true}
})json";

} // namespace

// ---------------------------------------------------------------------------
// Unit tests for _get_excluded_filtered_deployments -> the group picker's
// pick with exclusions (the production path a failover hop takes)
// ---------------------------------------------------------------------------

namespace {

using ids = std::vector<std::string>;

// What the picker of "test-model" can choose from `model_list`, excluding
// `excluded`.
ids pickable(const json& model_list, const ids& excluded) {
  const auto config = switchyard::load_config(nlohmann::ordered_json(json{{"model_list", model_list}}));
  return switchyard::test::pickable_ids(config, "test-model", excluded);
}

} // namespace

TEST_CASE("TestGetExcludedFilteredDeployments.test_no_excluded_returns_all") {
  auto list = json::array({make_dep("a"), make_dep("b")});
  REQUIRE(loaded_ids(list) == ids{"a", "b"});
  // Python passes None; C++ has only the empty list for "no exclusions".
  auto result = pickable(list, {});
  CHECK(result.size() == 2);
  CHECK(result == ids{"a", "b"});
}

TEST_CASE("TestGetExcludedFilteredDeployments.test_empty_excluded_returns_all") {
  auto result = pickable(json::array({make_dep("a"), make_dep("b")}), ids{});
  CHECK(result.size() == 2);
  CHECK(result == ids{"a", "b"});
}

TEST_CASE("TestGetExcludedFilteredDeployments.test_drops_excluded") {
  auto result = pickable(json::array({make_dep("a"), make_dep("b"), make_dep("c")}), {"b"});
  std::sort(result.begin(), result.end());
  CHECK(result == ids{"a", "c"});
}

TEST_CASE("TestGetExcludedFilteredDeployments.test_all_excluded_returns_empty") {
  // Excluding every deployment gives an empty list (the caller then raises
  // NoDeploymentsAvailable), never the unfiltered list.
  auto result = pickable(json::array({make_dep("a"), make_dep("b")}), {"a", "b"});
  CHECK(result.empty());
}

TEST_CASE("TestGetExcludedFilteredDeployments.test_excluded_set_with_unknown_ids") {
  auto result = pickable(json::array({make_dep("a"), make_dep("b")}), {"zzz"});
  CHECK(result.size() == 2);
  CHECK(result == ids{"a", "b"});
}

TEST_CASE("TestGetExcludedFilteredDeployments.test_handles_missing_model_info") {
  // A deployment without model_info gets LiteLLM's generated id.
  auto list = json::array(
    {json{{"model_name", "test-model"}, {"litellm_params", {{"model", "gpt-4o"}, {"api_key", "k"}}}},
     make_dep("b")});
  auto loaded = loaded_ids(list);
  REQUIRE(loaded.size() == 2);
  const auto generated =
    switchyard::litellm_deployment_id(
    "test-model", nlohmann::ordered_json{{"api_key", "k"}, {"model", "gpt-4o"}}); // json keeps keys sorted
  CHECK(loaded[0] == generated);
  CHECK(loaded[0].size() == 64);
  CHECK(loaded[1] == "b");
  auto result = pickable(list, {"b"});
  CHECK(result.size() == 1);
  CHECK(result == ids{generated});
}

// ---------------------------------------------------------------------------
// Router helpers
// ---------------------------------------------------------------------------

TEST_CASE("test_set_failed_deployment_id_on_exception") {
  auto config = config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "key"},
       "model_info": {"id": "dep-a"}}
    ]})json");
  REQUIRE(config.deployments.size() == 1);
  const auto& dep_a = config.deployments[0];

  auto exc = switchyard::router_error::make(error_kind::internal_server, "fail");
  CHECK(exc.deployment_id.empty());
  exc.stamp(dep_a.id);
  CHECK(exc.deployment_id == "dep-a");
  exc.stamp("dep-b");
  CHECK(exc.deployment_id == "dep-a");
  // Only the id changes: the error stays what it was.
  CHECK(exc.kind == error_kind::internal_server);
  CHECK(exc.status == 500);
  CHECK(exc.message == "fail");
}

// ---------------------------------------------------------------------------
// _maybe_run_weighted_failover -> request_flow driven by hand
// ---------------------------------------------------------------------------

TEST_CASE("test_maybe_run_weighted_failover_returns_none_without_failed_id") {
  // The only errors without a failed deployment id are the router's own:
  // here NoDeploymentsAvailable, because A and B are both cooling down. Such
  // an error must not start a failover hop: the flow goes to the fallbacks
  // (none configured) and finishes without another pick.
  auto config = shared_config(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "key", "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "key", "weight": 1},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle",
                        "enable_weighted_failover": true}})json");
  auto strategy = make_strategy(*config, 0);
  const auto now = switchyard::time_point(1h);
  switchyard::cooldown_state cooling(2);
  cooling.start(0, now, now + 10s);
  cooling.start(1, now, now + 10s);
  strategy->set_available(cooling.available(now));

  switchyard::request_flow flow(config,
                                std::make_shared<const switchyard::chat_request>(hi("test-model")));
  auto a = flow.start();
  REQUIRE(a.what == flow_action::kind::pick);
  scripted_random rng({0.5});
  auto picked = strategy->pick(flow.excluded(), rng);
  REQUIRE_FALSE(picked.ok());

  a = flow.on_picked(switchyard::group_pick{picked.chosen}, cooling.shortest_remaining(now));
  // No failover hop: straight to the fallback lookup, nothing excluded.
  REQUIRE(a.what == flow_action::kind::resolve_fallbacks);
  CHECK(a.group == 0);
  CHECK(a.error == error_kind::no_deployments_available);
  CHECK(flow.excluded().empty());

  a = flow.on_fallbacks(switchyard::resolve_fallbacks(*config, a.group, a.error));
  REQUIRE(a.what == flow_action::kind::finish);
  auto result = flow.take_result();
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::no_deployments_available);
  CHECK(result.error.status == 429);
  CHECK(result.error.deployment_id.empty());
  CHECK(result.error.message.find("Try again in 10 seconds") != std::string::npos);
  CHECK(result.error.message.find("test-model") != std::string::npos);
  CHECK(result.fallback_depth == 0);
  CHECK(result.attempts.empty());
}

TEST_CASE("test_maybe_run_weighted_failover_persists_excluded_ids_to_kwargs") {
  // LiteLLM's regression: the exclusions written on one hop must be seen by
  // the next. Here they live in the flow's own state (never in the caller's
  // chat_request, which is shared read-only) and persist across hops.
  SECTION("A fails: A is excluded on the failover hop, which lands on B") {
    auto config = shared_config(R"json({
      "model_list": [
        {"model_name": "test-model",
         "litellm_params": {"model": "gpt-4o", "api_key": "k", "weight": 1},
         "model_info": {"id": "A"}},
        {"model_name": "test-model",
         "litellm_params": {"model": "gpt-4o", "api_key": "k", "weight": 1},
         "model_info": {"id": "B"}}
      ],
      "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                          "enable_weighted_failover": true}})json");
    auto strategy = make_strategy(*config, 0);
    auto request = std::make_shared<const switchyard::chat_request>(hi("test-model"));
    const switchyard::chat_request before = *request;
    switchyard::request_flow flow(config, request);
    switchyard::seeded_random jitter(7);

    auto a = flow.start();
    REQUIRE(a.what == flow_action::kind::pick);
    CHECK(flow.excluded().empty());
    scripted_random first({0.0}); // the bottom of the range: A
    auto picked = strategy->pick(flow.excluded(), first);
    REQUIRE(picked.chosen == std::optional<switchyard::local_index>(0));
    a = flow.on_picked(switchyard::group_pick{picked.chosen}, std::nullopt);
    REQUIRE(a.what == flow_action::kind::call);
    CHECK(a.deployment == 0);

    a = flow.on_call(failure(error_kind::internal_server, "fail"));
    REQUIRE(a.what == flow_action::kind::report_failure);
    CHECK(flow.last_error().deployment_id == "A");
    a = flow.on_failure_reported(2, jitter);
    REQUIRE(a.what == flow_action::kind::pick);
    CHECK(a.group == 0);
    CHECK(excluded_ids(flow, 0) == std::vector<std::string>{"A"});

    // Whatever the draw, the exclusion holds: B.
    for (double u : {0.0, 0.25, 0.5, 0.999999}) {
      scripted_random r({u});
      CHECK(strategy->pick(flow.excluded(), r).chosen
            == std::optional<switchyard::local_index>(1));
    }
    scripted_random second({0.0});
    a = flow.on_picked(switchyard::group_pick{strategy->pick(flow.excluded(), second).chosen}, std::nullopt);
    REQUIRE(a.what == flow_action::kind::call);
    CHECK(a.deployment == 1);
    // The stubbed run_async_fallback answered "ok".
    a = flow.on_call(success("ok"));
    REQUIRE(a.what == flow_action::kind::finish);
    auto result = flow.take_result();
    CHECK(result.ok);
    CHECK(result.content == "ok");
    CHECK(result.deployment_id == "B");
    CHECK(result.fallback_depth == 1);
    CHECK(attempt_ids(result) == std::vector<std::string>{"A", "B"});

    // The caller's request object is the one the flow holds, untouched.
    CHECK(flow.shared_request().get() == request.get());
    CHECK(request->model == before.model);
    CHECK(request->messages == before.messages);
    CHECK(request->mock.kind == before.mock.kind);
    CHECK(request->num_retries == before.num_retries);
    CHECK(request->disable_fallbacks == before.disable_fallbacks);
    CHECK(request->mock_testing_context_fallbacks == before.mock_testing_context_fallbacks);
  }

  SECTION("A then B fail: both stay excluded on the second failover hop") {
    auto config = shared_config(three_deployments);
    auto strategy = make_strategy(*config, 0);
    switchyard::request_flow flow(config,
                                  std::make_shared<const switchyard::chat_request>(hi("test-model")));
    switchyard::seeded_random jitter(7);

    auto a = flow.start();
    REQUIRE(a.what == flow_action::kind::pick);
    scripted_random first({0.0});
    a = flow.on_picked(switchyard::group_pick{strategy->pick(flow.excluded(), first).chosen}, std::nullopt);
    REQUIRE(a.what == flow_action::kind::call);
    REQUIRE(a.deployment == 0);
    a = flow.on_call(failure(error_kind::internal_server, "A down"));
    REQUIRE(a.what == flow_action::kind::report_failure);
    a = flow.on_failure_reported(3, jitter);
    REQUIRE(a.what == flow_action::kind::pick);
    CHECK(excluded_ids(flow, 0) == std::vector<std::string>{"A"});

    scripted_random second({0.0}); // bottom of B + C: B
    a = flow.on_picked(switchyard::group_pick{strategy->pick(flow.excluded(), second).chosen}, std::nullopt);
    REQUIRE(a.what == flow_action::kind::call);
    REQUIRE(a.deployment == 1);
    a = flow.on_call(failure(error_kind::internal_server, "B down"));
    REQUIRE(a.what == flow_action::kind::report_failure);
    CHECK(flow.last_error().deployment_id == "B");
    a = flow.on_failure_reported(3, jitter);
    REQUIRE(a.what == flow_action::kind::pick);
    CHECK(excluded_ids(flow, 0) == std::vector<std::string>{"A", "B"});

    scripted_random third({0.0});
    a = flow.on_picked(switchyard::group_pick{strategy->pick(flow.excluded(), third).chosen}, std::nullopt);
    REQUIRE(a.what == flow_action::kind::call);
    CHECK(a.deployment == 2);
    a = flow.on_call(success("ok from C"));
    REQUIRE(a.what == flow_action::kind::finish);
    auto result = flow.take_result();
    CHECK(result.ok);
    CHECK(result.deployment_id == "C");
    CHECK(result.fallback_depth == 2);
    CHECK(attempt_ids(result) == std::vector<std::string>{"A", "B", "C"});
  }
}

// ---------------------------------------------------------------------------
// Integration tests for weighted failover end-to-end via the router
// ---------------------------------------------------------------------------

TEST_CASE("test_no_failover_when_flag_off") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError",
                                            "message": "region-A failed"},
                          "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from B", "weight": 0},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0}
  })json"), seeded());

  auto result = router.complete(hi("test-model"));
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::internal_server);
  CHECK(result.error.status == 500);
  CHECK(result.error.message == "region-A failed");
  CHECK(result.error.deployment_id == "A");
  CHECK(result.fallback_depth == 0);
  REQUIRE(result.attempts.size() == 1);
  CHECK(result.attempts[0].deployment_id == "A");
  CHECK(result.attempts[0].outcome == std::optional<error_kind>(error_kind::internal_server));
}

TEST_CASE("test_failover_lands_on_other_deployment_when_flag_on") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError",
                                            "message": "region-A down"},
                          "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from B", "weight": 0},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  auto result = router.complete(hi("test-model"));
  REQUIRE(result.ok);
  CHECK(result.deployment_id == "B");
  CHECK(result.content == "ok from B");
  CHECK(result.model_group == "test-model");
  CHECK(result.fallback_depth == 1);
  REQUIRE(result.attempts.size() == 2);
  CHECK(result.attempts[0].deployment_id == "A");
  CHECK(result.attempts[0].outcome == std::optional<error_kind>(error_kind::internal_server));
  CHECK(result.attempts[1].deployment_id == "B");
  CHECK_FALSE(result.attempts[1].outcome.has_value());
}

TEST_CASE("test_failover_chain_three_deployments") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "A down"},
                          "weight": 1000000},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "B down"},
                          "weight": 1},
       "model_info": {"id": "B"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from C", "weight": 0},
       "model_info": {"id": "C"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  auto result = router.complete(hi("test-model"));
  REQUIRE(result.ok);
  CHECK(result.deployment_id == "C");
  CHECK(result.content == "ok from C");
  CHECK(result.fallback_depth == 2);
  // Seeded: A (weight 10^6) is picked first, then B, then C (weight 0).
  CHECK(attempt_ids(result) == std::vector<std::string>{"A", "B", "C"});
}

TEST_CASE("test_failover_exhausted_raises_original_error_class") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "A down"},
                          "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "B down"},
                          "weight": 1},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  auto result = router.complete(hi("test-model")); // answers: does not hang
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::internal_server);
  CHECK(result.error.status == 500);
  REQUIRE(result.attempts.size() == 2);
  // The original error: the first hop's, from the first deployment tried.
  const auto& first = result.attempts[0].deployment_id;
  CHECK(result.error.deployment_id == first);
  CHECK(result.error.message == first + " down");
  auto ids = attempt_ids(result);
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"A", "B"});
  CHECK(result.fallback_depth == 1);
}

TEST_CASE("test_failover_falls_through_to_external_fallback") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "A down"},
                          "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "B down"},
                          "weight": 1},
       "model_info": {"id": "B"}},
      {"model_name": "fallback-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from fallback"},
       "model_info": {"id": "fallback"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true,
                        "fallbacks": [{"test-model": ["fallback-model"]}]}
  })json"), seeded());

  auto result = router.complete(hi("test-model"));
  REQUIRE(result.ok);
  CHECK(result.deployment_id == "fallback");
  CHECK(result.model_group == "fallback-model");
  CHECK(result.content == "ok from fallback");
  // A and B (weighted failover inside the group), then the fallback group.
  REQUIRE(result.attempts.size() == 3);
  std::vector<std::string> in_group{result.attempts[0].deployment_id,
                                    result.attempts[1].deployment_id};
  std::sort(in_group.begin(), in_group.end());
  CHECK(in_group == std::vector<std::string>{"A", "B"});
  CHECK(result.attempts[2].deployment_id == "fallback");
  CHECK(result.fallback_depth == 2);
}

TEST_CASE("test_weights_respected_when_all_healthy") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "from A", "weight": 80},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "from B", "weight": 20},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  std::map<std::string, int> counts;
  int failovers = 0;
  for (int i = 0; i < 1000; ++i) {
    auto r = router.complete(hi("test-model"));
    REQUIRE(r.ok);
    REQUIRE(r.attempts.size() == 1);
    failovers += r.fallback_depth;
    ++counts[r.deployment_id];
  }
  CHECK(counts.size() == 2);
  CHECK(counts["A"] + counts["B"] == 1000);
  CHECK(failovers == 0);
  // The original's loose bounds.
  CHECK(counts["A"] > counts["B"] * 2);
  CHECK(counts["B"] > 50);
  // Tighter: B ~ Binomial(1000, 0.2), sd ~12.6; +-5 sd.
  CHECK(counts["B"] >= 137);
  CHECK(counts["B"] <= 263);
}

TEST_CASE("test_failover_skipped_for_non_simple_shuffle") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "A down"}},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                          "mock_response": {"error": "InternalServerError", "message": "B down"}},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "latency-based-routing", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  auto result = router.complete(hi("test-model"));
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::internal_server);
  // Exactly one deployment was called: no silent failover to the other.
  REQUIRE(result.attempts.size() == 1);
  CHECK(result.error.deployment_id == result.attempts[0].deployment_id);
  CHECK(result.error.message == result.attempts[0].deployment_id + " down");
  CHECK(result.fallback_depth == 0);
}

TEST_CASE("test_failover_skipped_for_context_window_error") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from A", "weight": 1},
       "model_info": {"id": "A"}},
      {"model_name": "test-model",
       "litellm_params": {"model": "gpt-4o", "api_key": "good",
                          "mock_response": "ok from B", "weight": 1},
       "model_info": {"id": "B"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                        "enable_weighted_failover": true}
  })json"), seeded());

  auto request = hi("test-model");
  request.mock_testing_context_fallbacks = true;
  auto result = router.complete(request);
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::context_window_exceeded);
  CHECK(result.error.status == 400);
  REQUIRE(result.attempts.size() == 1);
  CHECK(result.attempts[0].outcome
        == std::optional<error_kind>(error_kind::context_window_exceeded));
  CHECK(result.fallback_depth == 0);
}

TEST_CASE("test_user_config_two_region_failover") {
  switchyard::router router(config_from(R"json({
    "model_list": [
      {"model_name": "gpt-5.4-mini",
       "litellm_params": {"model": "azure/deployment-eastus2", "api_key": "bad",
                          "api_base": "https://eastus2.example",
                          "mock_response": {"error": "InternalServerError",
                                            "message": "eastus2 5xx"},
                          "weight": 50},
       "model_info": {"id": "eastus2"}},
      {"model_name": "gpt-5.4-mini",
       "litellm_params": {"model": "azure/deployment-northcentralus", "api_key": "good",
                          "api_base": "https://northcentralus.example",
                          "mock_response": "ok from northcentralus",
                          "weight": 50},
       "model_info": {"id": "northcentralus"}}
    ],
    "router_settings": {"routing_strategy": "simple-shuffle", "cooldown_time": 120,
                        "num_retries": 0, "enable_pre_call_checks": true,
                        "disable_cooldowns": false, "allowed_fails": 5,
                        "enable_weighted_failover": true}
  })json"), seeded());

  std::map<std::string, int> successes;
  int failed = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = router.complete(hi("gpt-5.4-mini"));
    if (!r.ok) {
      ++failed;
      continue;
    }
    ++successes[r.deployment_id];
    CHECK(r.content == "ok from northcentralus");
    CHECK(r.model == "deployment-northcentralus"); // without "azure/", as LiteLLM's reply
  }
  CHECK(failed == 0);
  CHECK(successes["northcentralus"] == 20);
  CHECK(successes["eastus2"] == 0);
}

// ---------------------------------------------------------------------------
// Healthy-deployment-only check: remaining = group - cooling - excluded
// ---------------------------------------------------------------------------

TEST_CASE("test_maybe_run_weighted_failover_skips_when_remaining_all_in_cooldown") {
  // A just failed; B and C are cooling down: no failover hop, no call of
  // another deployment; the flow goes to the (cross-group) fallbacks.
  auto config = shared_config(three_deployments);
  auto strategy = make_strategy(*config, 0);
  const auto now = switchyard::time_point(1h);
  switchyard::cooldown_state cooling(3);
  cooling.start(1, now, now + 30s);
  cooling.start(2, now, now + 20s);
  strategy->set_available(cooling.available(now));

  switchyard::request_flow flow(config,
                                std::make_shared<const switchyard::chat_request>(hi("test-model")));
  switchyard::seeded_random jitter(7);
  auto a = flow.start();
  REQUIRE(a.what == flow_action::kind::pick);
  scripted_random first({0.5});
  auto picked = strategy->pick(flow.excluded(), first);
  REQUIRE(picked.chosen == std::optional<switchyard::local_index>(0)); // only A is up
  a = flow.on_picked(switchyard::group_pick{picked.chosen}, std::nullopt);
  REQUIRE(a.what == flow_action::kind::call);
  REQUIRE(a.deployment == 0);
  a = flow.on_call(failure(error_kind::internal_server, "A down"));
  REQUIRE(a.what == flow_action::kind::report_failure);
  CHECK(flow.last_error().deployment_id == "A");
  a = flow.on_failure_reported(cooling.available_count(now), jitter);
  REQUIRE(a.what == flow_action::kind::pick);
  CHECK(excluded_ids(flow, 0) == std::vector<std::string>{"A"});

  scripted_random second({0.5});
  picked = strategy->pick(flow.excluded(), second);
  CHECK_FALSE(picked.ok());
  a = flow.on_picked(switchyard::group_pick{picked.chosen}, cooling.shortest_remaining(now));
  // Not a call: the failover was skipped.
  REQUIRE(a.what == flow_action::kind::resolve_fallbacks);
  CHECK(a.error == error_kind::internal_server);
  a = flow.on_fallbacks(switchyard::resolve_fallbacks(*config, a.group, a.error));
  REQUIRE(a.what == flow_action::kind::finish);

  auto result = flow.take_result();
  CHECK_FALSE(result.ok);
  CHECK(result.error.kind == error_kind::internal_server);
  CHECK(result.error.deployment_id == "A");
  CHECK(result.error.message == "A down");
  CHECK(result.fallback_depth == 0); // no hop spent
  CHECK(attempt_ids(result) == std::vector<std::string>{"A"});
}

TEST_CASE("test_maybe_run_weighted_failover_proceeds_when_one_healthy_remains") {
  // A just failed; B is cooling down; C is healthy: the failover hop calls C.
  auto config = shared_config(three_deployments);
  auto strategy = make_strategy(*config, 0);
  const auto now = switchyard::time_point(1h);
  switchyard::cooldown_state cooling(3);
  cooling.start(1, now, now + 30s);
  strategy->set_available(cooling.available(now));

  switchyard::request_flow flow(config,
                                std::make_shared<const switchyard::chat_request>(hi("test-model")));
  switchyard::seeded_random jitter(7);
  auto a = flow.start();
  REQUIRE(a.what == flow_action::kind::pick);
  scripted_random first({0.0}); // bottom of A + C: A
  auto picked = strategy->pick(flow.excluded(), first);
  REQUIRE(picked.chosen == std::optional<switchyard::local_index>(0));
  a = flow.on_picked(switchyard::group_pick{picked.chosen}, std::nullopt);
  REQUIRE(a.what == flow_action::kind::call);
  a = flow.on_call(failure(error_kind::internal_server, "A down"));
  REQUIRE(a.what == flow_action::kind::report_failure);
  a = flow.on_failure_reported(cooling.available_count(now), jitter);
  REQUIRE(a.what == flow_action::kind::pick);
  CHECK(excluded_ids(flow, 0) == std::vector<std::string>{"A"});

  scripted_random second({0.0});
  picked = strategy->pick(flow.excluded(), second);
  REQUIRE(picked.chosen == std::optional<switchyard::local_index>(2)); // C
  a = flow.on_picked(switchyard::group_pick{picked.chosen}, std::nullopt);
  REQUIRE(a.what == flow_action::kind::call); // the failover hop runs
  CHECK(a.group == 0);
  CHECK(a.deployment == 2);
  a = flow.on_call(success("ok from C"));
  REQUIRE(a.what == flow_action::kind::finish);

  auto result = flow.take_result();
  REQUIRE(result.ok);
  CHECK(result.content == "ok from C");
  CHECK(result.deployment_id == "C");
  CHECK(result.fallback_depth == 1);
  CHECK(attempt_ids(result) == std::vector<std::string>{"A", "C"});
}

namespace {

// The Python end-to-end cooldown test's config.
const char* const cooldown_fallthrough = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                        "mock_response": {"error": "InternalServerError", "message": "A down"},
                        "weight": 1000000},
     "model_info": {"id": "A"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "bad",
                        "mock_response": {"error": "InternalServerError", "message": "B down"},
                        "weight": 1},
     "model_info": {"id": "B"}},
    {"model_name": "fallback-model",
     "litellm_params": {"model": "gpt-4o", "api_key": "good",
                        "mock_response": "ok from fallback"},
     "model_info": {"id": "fallback"}}
  ],
  "router_settings": {"routing_strategy": "simple-shuffle", "num_retries": 0,
                      "enable_weighted_failover": true,
                      "fallbacks": [{"test-model": ["fallback-model"]}]}
})json";

std::vector<flow_action::kind> kinds_of(const std::vector<flow_action>& actions) {
  std::vector<flow_action::kind> out;
  for (const auto& a : actions)
    out.push_back(a.what);
  return out;
}

} // namespace

TEST_CASE("test_failover_falls_through_to_external_fallback_when_remaining_in_cooldown") {
  switchyard::test::flow_driver driver(config_from(cooldown_fallthrough), 11);
  // Put B in cooldown so weighted failover cannot use it after A fails.
  driver.cool_down("B", 60s);
  REQUIRE(driver.cooling("B"));

  auto result = driver.run(hi("test-model"));
  REQUIRE(result.ok);
  CHECK(result.deployment_id == "fallback");
  CHECK(result.model_group == "fallback-model");
  CHECK(result.content == "ok from fallback");
  CHECK(attempt_ids(result) == std::vector<std::string>{"A", "fallback"});
  CHECK(result.fallback_depth == 1); // the skipped failover spent no hop
  CHECK(driver.calls("B") == 0);
  using k = flow_action::kind;
  CHECK(kinds_of(driver.actions())
        == std::vector<k>{k::pick, k::call, k::report_failure,
                          k::pick, // failover probe: nothing healthy left
                          k::resolve_fallbacks, k::pick, k::call, k::finish});

  SECTION("once B's cooldown is over, failover tries B again") {
    driver.advance(61s);
    REQUIRE_FALSE(driver.cooling("B"));
    auto again = driver.run(hi("test-model"));
    REQUIRE(again.ok);
    CHECK(again.deployment_id == "fallback");
    CHECK(attempt_ids(again) == std::vector<std::string>{"A", "B", "fallback"});
    CHECK(again.fallback_depth == 2);
  }
}

TEST_CASE("test_failover_falls_through_to_external_fallback_when_remaining_in_cooldown "
          "(router, B cooled down by a real 401)") {
  // B answers AuthenticationError (401), which always cools a deployment
  // down (cooldown_time 60 s here). The first request goes A (500, weight
  // 10^6 so always first) -> B (401: cooled down) -> fallback. The second
  // finds B cooling: A -> fallback, B never called.
  auto text = nlohmann::ordered_json::parse(cooldown_fallthrough);
  text["model_list"][1]["litellm_params"]["mock_response"] =
    json{{"error", "AuthenticationError"}, {"message", "B down"}};
  text["model_list"][1]["litellm_params"]["cooldown_time"] = 60;
  switchyard::router router(switchyard::load_config(text), seeded());

  auto warm_up = router.complete(hi("test-model"));
  REQUIRE(warm_up.ok);
  CHECK(warm_up.deployment_id == "fallback");
  REQUIRE(attempt_ids(warm_up) == std::vector<std::string>{"A", "B", "fallback"});
  CHECK(warm_up.attempts[1].outcome == std::optional<error_kind>(error_kind::authentication));
  CHECK(warm_up.fallback_depth == 2);

  // Three more: A's own default cooldown (more than half of >= 5 requests
  // failed) would start at its fifth failure.
  for (int i = 0; i < 3; ++i) {
    auto result = router.complete(hi("test-model"));
    REQUIRE(result.ok);
    CHECK(result.deployment_id == "fallback");
    CHECK(attempt_ids(result) == std::vector<std::string>{"A", "fallback"});
    CHECK(result.fallback_depth == 1);
  }

  SECTION("the same through the flow driver") {
    switchyard::test::flow_driver driver(switchyard::load_config(text), 11);
    auto first = driver.run(hi("test-model"));
    REQUIRE(first.ok);
    CHECK(attempt_ids(first) == std::vector<std::string>{"A", "B", "fallback"});
    CHECK(driver.cooling("B"));
    auto second = driver.run(hi("test-model"));
    REQUIRE(second.ok);
    CHECK(attempt_ids(second) == std::vector<std::string>{"A", "fallback"});
    CHECK(driver.calls("B") == 1);
  }
}
