// What the router sends upstream for each dialect, and what it gives back:
// the real router, its HTTP transport and the test upstream over loopback.

#include "transport/transport_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;

namespace {

/// A body with router keys, an unknown key and a value that overrides a
/// litellm_params default.
json rich_body(const std::string& group) {
  return {{"model", group},
          {"messages", {{{"role", "system"}, {"content", "be brief"}},
                        {{"role", "user"}, {"content", "hi"}}}},
          {"temperature", 0.7},
          {"stop", {"END"}},
          {"seed", 42},
          {"x_unknown_key", {{"nested", true}}},
          {"num_retries", 0},
          {"timeout", 30},
          {"cooldown_time", 3},
          {"disable_fallbacks", true},
          {"mock_testing_context_fallbacks", false},
          {"metadata", {{"user_tag", "t"}}}};
}

void check_router_keys_stripped(const json& sent) {
  for (const char* k : {"num_retries", "timeout", "cooldown_time", "disable_fallbacks",
                        "mock_testing_context_fallbacks", "metadata", "api_key", "api_base",
                        "weight", "mock_response"}) {
    INFO(k);
    CHECK_FALSE(sent.contains(k));
  }
}

/// Sends rich_body("chat") and returns the answer (which must succeed)
/// and the one call the upstream received for it.
std::pair<route_result, json> answer_and_call(router& r, const upstream_process& up) {
  auto res = r.complete(request_of(rich_body("chat")));
  INFO(res.error.message);
  REQUIRE(res.ok);
  auto calls = up.calls();
  REQUIRE(calls.size() == 1);
  return {std::move(res), calls[0]};
}

} // namespace

TEST_CASE("OpenAI request as sent and its answer", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "",
                                {{"temperature", 0.1}, {"max_tokens", 50},
                                 {"extra_headers", {{"X-Extra", "extra-value"}}}})}));
  auto [res, c] = answer_and_call(r, up);
  CHECK(c["dialect"] == "openai");
  CHECK(c["path"] == "/v1/chat/completions");
  CHECK(c["headers"]["authorization"] == "Bearer sk-test-oa-secret");
  CHECK(c["headers"]["x-extra"] == "extra-value");
  auto& b = c["body"];
  CHECK(b["model"] == "gpt-4o-mini");
  CHECK(b["temperature"] == 0.7); // the request's value over litellm_params
  CHECK(b["max_tokens"] == 50);   // the litellm_params default
  CHECK(b["seed"] == 42);
  CHECK(b["stop"] == json::array({"END"}));
  CHECK(b["x_unknown_key"] == json{{"nested", true}});
  CHECK(b["messages"].size() == 2);
  CHECK_FALSE(b.contains("stream"));
  check_router_keys_stripped(b);

  CHECK(res.content == "Hello from the test upstream");
  CHECK(res.deployment_id == "oa");
  CHECK(res.usage_estimated == false);
  CHECK(res.prompt_tokens == 10);
  CHECK(res.completion_tokens == 3);
  CHECK(res.response["object"] == "chat.completion");
  CHECK(res.response["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  CHECK(res.response["model"] == "gpt-4o-mini");
  CHECK(res.response["system_fingerprint"] == "fp_test");
  CHECK(res.response["usage"]["total_tokens"] == 13);
}

TEST_CASE("Azure request as sent, api-key and azure_ad_token", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  ojson ad = azure_at(up, "ad", "az2");
  ad["litellm_params"].erase("api_key");
  ad["litellm_params"]["azure_ad_token"] = "ad-token-secret";
  router r(config_of({azure_at(up, "chat", "az", "", {{"extra_headers", {{"X-Extra", "e"}}}}),
                      ad}));
  auto res = r.complete(request_of(rich_body("chat")));
  INFO(res.error.message);
  REQUIRE(res.ok);
  auto res2 = r.complete(ask("ad"));
  REQUIRE(res2.ok);

  auto calls = up.calls();
  REQUIRE(calls.size() == 2);
  auto& c = calls[0];
  CHECK(c["dialect"] == "azure");
  CHECK(c["path"] == "/openai/deployments/dep-az/chat/completions?api-version=2024-10-21");
  CHECK(c["headers"]["api-key"] == "sk-test-az-secret");
  CHECK_FALSE(c["headers"].contains("authorization"));
  CHECK(c["headers"]["x-extra"] == "e");
  CHECK(c["body"]["model"] == "dep-az");
  CHECK(c["body"]["x_unknown_key"] == json{{"nested", true}});
  check_router_keys_stripped(c["body"]);
  CHECK(calls[1]["headers"]["authorization"] == "Bearer ad-token-secret");
  CHECK_FALSE(calls[1]["headers"].contains("api-key"));

  CHECK(res.usage_estimated == false);
  CHECK(res.response["object"] == "chat.completion");
  CHECK(res.response["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  CHECK(res.content == "Hello from the test upstream");
}

TEST_CASE("Anthropic request as sent, translated both ways", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({anthropic_at(up, "chat", "an", "prompt_tokens=7,cache_read_tokens=5",
                                   {{"extra_headers", {{"X-Extra", "e"}}}})}));
  auto [res, c] = answer_and_call(r, up);
  CHECK(c["dialect"] == "anthropic");
  CHECK(c["path"].get<std::string>().find("/v1/messages") != std::string::npos);
  CHECK(c["headers"]["x-api-key"] == "sk-test-an-secret");
  CHECK(c["headers"]["anthropic-version"] == "2023-06-01");
  CHECK_FALSE(c["headers"].contains("authorization"));
  CHECK(c["headers"]["x-extra"] == "e");
  auto& b = c["body"];
  CHECK(b["model"] == "claude-3-5-haiku");
  CHECK(b["system"].dump().find("be brief") != std::string::npos);
  CHECK(b["messages"].size() == 1);
  CHECK(b["max_tokens"] == 4096);
  CHECK(b["stop_sequences"] == json::array({"END"}));
  CHECK_FALSE(b.contains("stop"));
  CHECK(b["temperature"] == 0.7);
  check_router_keys_stripped(b);

  CHECK(res.content == "Hello from the test upstream");
  CHECK(res.finish_reason == "stop");
  CHECK(res.usage_estimated == false);
  CHECK(res.prompt_tokens == 12); // input plus cache reads
  CHECK(res.completion_tokens == 3);
  CHECK(res.response["object"] == "chat.completion");
  CHECK(res.response["id"].get<std::string>().rfind("msg_", 0) == 0);
  CHECK(res.response["model"] == "claude-3-5-haiku");
}

TEST_CASE("tool calls come back from each dialect", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of(three_dialects(up, "tool_call")));
  const json tools = weather_tool();
  for (const char* g : {"o", "a", "n"}) {
    INFO(g);
    json body = {{"model", g},
                 {"messages", {{{"role", "user"}, {"content", "weather tool please"}}}},
                 {"tools", tools}};
    auto res = r.complete(request_of(body));
    INFO(res.error.message);
    REQUIRE(res.ok);
    CHECK(res.finish_reason == "tool_calls");
    auto& tc = res.response["choices"][0]["message"]["tool_calls"];
    REQUIRE(tc.size() == 1);
    CHECK(tc[0]["function"]["name"] == "get_weather");
    CHECK(json::parse(tc[0]["function"]["arguments"].get<std::string>())["location"] == "Paris");
    CHECK(res.usage_estimated == false);
  }
  auto an = calls_to(up, "/v1/messages");
  REQUIRE(an.size() == 1);
  CHECK(an[0]["body"]["tools"][0]["name"] == "get_weather"); // Anthropic's form
  CHECK(an[0]["body"]["tools"][0].contains("input_schema"));
}

TEST_CASE("a streamed OpenAI call asks for usage, which the caller sees only if it asked",
          "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "chunks=4")}));
  for (bool asked : {false, true}) {
    INFO("asked for usage: " << asked);
    up.reset();
    json body = {{"model", "chat"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                 {"stream", true}};
    if (asked)
      body["stream_options"] = {{"include_usage", true}};
    stream_capture cap;
    r.async_stream(request_of(body), cap.on_chunk(), cap.on_done());
    auto res = cap.wait();
    INFO(res.error.message);
    REQUIRE(res.ok);
    auto calls = up.calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0]["body"]["stream"] == true);
    CHECK(calls[0]["body"]["stream_options"]["include_usage"] == true);
    bool usage_chunk = false;
    for (auto c : cap.chunks)
      usage_chunk = usage_chunk || (c.contains("usage") && c["usage"].is_object());
    CHECK(usage_chunk == asked);
    CHECK(res.usage_estimated == false);
    CHECK(res.completion_tokens == 4);
    CHECK(cap.text() == "Hello from the test upstream");
  }
}

TEST_CASE("an Azure api_base that names its deployment is used as it is", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  ojson full = azure_at(up, "chat", "az");
  full["litellm_params"]["api_base"] =
    up.base_url() + "/openai/deployments/named-dep/chat/completions?api-version=2024-02-01";
  router r(config_of({full}));
  auto res = r.complete(ask("chat"));
  INFO(res.error.message);
  REQUIRE(res.ok);
  auto calls = up.calls();
  REQUIRE(calls.size() == 1);
  INFO(calls[0]["path"]);
  CHECK(calls[0]["path"].get<std::string>().rfind(
          "/openai/deployments/named-dep/chat/completions?api-version=", 0) == 0);
  CHECK(calls[0]["headers"]["api-key"] == "sk-test-az-secret");
}
