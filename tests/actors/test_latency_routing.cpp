// latency-based-routing through the real actors: streamed requests are
// ranked by time to first token, others by the whole reply's latency.

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>

namespace {

// "early" starts streaming at once but finishes late; "steady" answers in
// one piece, sooner.
constexpr const char* config_json = R"({
  "model_list": [
    {"model_name": "g", "litellm_params": {"model": "m", "mock_response": "e",
      "mock_latency_ms": 40, "mock_first_token_ms": 1}, "model_info": {"id": "early"}},
    {"model_name": "g", "litellm_params": {"model": "m", "mock_response": "s",
      "mock_latency_ms": 10}, "model_info": {"id": "steady"}}],
  "router_settings": {"routing_strategy": "latency-based-routing", "num_retries": 0}
})";

std::map<std::string, int> serve(switchyard::router& router, bool stream, int n) {
  std::map<std::string, int> served;
  for (int i = 0; i < n; ++i) {
    switchyard::chat_request r;
    r.model = "g";
    r.stream = stream;
    r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
    auto result = router.complete(r);
    REQUIRE(result.ok);
    ++served[result.deployment_id];
  }
  return served;
}

} // namespace

TEST_CASE("latency routing ranks streamed requests by time to first token") {
  switchyard::router router{switchyard::load_config(nlohmann::ordered_json::parse(config_json)),
                            switchyard::router_options{5}};
  // Unseen deployments count 0, so both get tried first; after that every
  // streamed request goes to the one whose first token comes sooner.
  serve(router, true, 4);
  auto streamed = serve(router, true, 20);
  CHECK(streamed["early"] == 20);
}

TEST_CASE("latency routing ranks plain requests by the whole reply") {
  switchyard::router router{switchyard::load_config(nlohmann::ordered_json::parse(config_json)),
                            switchyard::router_options{5}};
  serve(router, false, 4);
  auto plain = serve(router, false, 20);
  CHECK(plain["steady"] == 20);
}

TEST_CASE("latency routing keeps the two windows apart: streamed calls do not make plain "
          "requests see their first-token time") {
  switchyard::router router{switchyard::load_config(nlohmann::ordered_json::parse(config_json)),
                            switchyard::router_options{5}};
  // Only streamed calls so far: "early" has the sooner first token, but its
  // whole calls take 40 ms against "steady"'s 10.
  serve(router, true, 4);
  auto plain = serve(router, false, 20);
  CHECK(plain["steady"] == 20);
  // And the plain calls leave the streamed ranking as it was.
  auto streamed = serve(router, true, 10);
  CHECK(streamed["early"] == 10);
}
