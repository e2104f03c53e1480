// `switchyard serve` in front of real HTTP deployments: the test upstream
// (tests/upstream/upstream.mjs) as the provider, over loopback.

#include "gateway_support.hpp"
#include "support/upstream_process.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

using namespace switchyard::test;
using nlohmann::json;

namespace {

const std::string key = "sk-gateway-upstream-test";
const std::string upstream_key = "sk-provider-secret-0123";
const header_map auth = {{"Authorization", "Bearer " + key}};

// A group served by the upstream in `scenario` (empty: a plain 200).
json upstream_deployment(const upstream_process& up, const std::string& group,
                         const std::string& scenario) {
  const std::string base =
    up.base_url() + (scenario.empty() ? "" : "/scenario/" + scenario) + "/v1";
  return {{"model_name", group},
          {"litellm_params",
           {{"model", "openai/gpt-up"}, {"api_base", base}, {"api_key", upstream_key}}},
          {"model_info", {{"id", group + "-1"}}}};
}

json config_for(const upstream_process& up) {
  return {{"model_list", json::array({
                           upstream_deployment(up, "ok", ""),
                           upstream_deployment(up, "limited", "error=rate_limit,retry_after=5"),
                           upstream_deployment(up, "down", "status=503"),
                           upstream_deployment(up, "cut", "cut_after=2,chunks=6"),
                           upstream_deployment(up, "inband", "stream_error_after=1,chunks=4"),
                           upstream_deployment(up, "hang", "hang"),
                         })},
          {"router_settings", {{"num_retries", 0}, {"disable_cooldowns", true}}},
          {"general_settings", {{"master_key", key}}}};
}

http_reply post(const serve_process& s, const json& body) {
  return http_request(s.port(), "POST", "/v1/chat/completions", body.dump(), auth);
}

std::string streamed_content(const std::vector<std::string>& events) {
  std::string content;
  for (const auto& e : events) {
    if (e == "[DONE]")
      continue;
    const auto chunk = json::parse(e);
    if (!chunk.contains("choices") || chunk["choices"].empty())
      continue;
    const auto& delta = chunk["choices"][0]["delta"];
    if (delta.contains("content") && delta["content"].is_string())
      content += delta["content"].get<std::string>();
  }
  return content;
}

} // namespace

TEST_CASE("upstream: a chat completion and a stream through a real deployment") {
  upstream_process up;
  serve_process s(config_for(up));
  const auto r = post(s, chat("ok"));
  INFO(r.body << r.error);
  REQUIRE(r.status == 200);
  CHECK(r.json()["choices"][0]["message"]["content"] == "Hello from the test upstream");
  CHECK(r.header("x-switchyard-deployment-id") == "ok-1");

  const auto st = post(s, chat("ok", true));
  REQUIRE(st.status == 200);
  CHECK(st.header("content-type") == "text/event-stream");
  const auto events = sse_data(st.body);
  REQUIRE(events.size() >= 2);
  CHECK(events.back() == "[DONE]");
  CHECK(streamed_content(events) == "Hello from the test upstream");
  // The provider's key went upstream, and nowhere else.
  CHECK(up.calls()[0]["headers"]["authorization"] == "Bearer " + upstream_key);
  CHECK(r.body.find(upstream_key) == std::string::npos);
  CHECK(s.stop(SIGTERM) == 0);
  CHECK(s.log().find(upstream_key) == std::string::npos);
}

TEST_CASE("upstream: a stream failing before its first chunk gets the real status") {
  upstream_process up;
  serve_process s(config_for(up));
  const auto limited = post(s, chat("limited", true));
  INFO(limited.body);
  CHECK(limited.status == 429);
  CHECK(limited.header("content-type") == "application/json");
  CHECK(limited.header("retry-after") == "5");
  CHECK(limited.json()["error"]["type"] == "RateLimitError");
  const auto down = post(s, chat("down", true));
  CHECK(down.status == 503);
  CHECK(down.json()["error"]["code"] == "503");
}

TEST_CASE("upstream: a stream broken after the commit ends with an error event, no [DONE]") {
  upstream_process up;
  serve_process s(config_for(up));
  for (const std::string group : {"cut", "inband"}) {
    INFO(group);
    const auto r = post(s, chat(group, true));
    INFO(r.body);
    REQUIRE(r.status == 200);
    const auto events = sse_data(r.body);
    REQUIRE(events.size() >= 2);
    // Content was streamed before the break.
    CHECK_FALSE(streamed_content({events.begin(), events.end() - 1}).empty());
    const auto last = json::parse(events.back());
    REQUIRE(last.contains("error"));
    CHECK(last["error"]["message"].is_string());
    for (const auto& e : events)
      CHECK(e != "[DONE]");
  }
}

TEST_CASE("upstream: a client that disconnects closes the upstream connection") {
  upstream_process up;
  serve_process s(config_for(up));
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    up.reset();
    {
      raw_connection c(s.port());
      const std::string body = chat("hang", stream).dump();
      c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: " + key
             + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
      // The call reached the upstream, which never answers.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
      while (up.calls().empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      REQUIRE(up.calls().size() == 1);
    } // the client hangs up
    const auto stats =
      up.stats_when([](const json& st) { return st["connections_closed_by_client"] >= 1; }, 60);
    CHECK(stats["connections_closed_by_client"] == 1);
    CHECK(stats["connections_open"] == 0);
  }
  const auto text = http_request(s.port(), "GET", "/metrics").body;
  CHECK(metric_value(text, "switchyard_requests_total{model_group=\"hang\",outcome=\"CancelledError\"}")
        == 2);
  CHECK(metric_value(text, "switchyard_in_flight") == 0);
}

namespace {

// Two tiers of one group (the first down), and a group that falls back to
// another: each stream commits on its second call.
json failover_config(const upstream_process& up) {
  auto first = upstream_deployment(up, "tiered", "status=503");
  first["model_info"]["id"] = "tiered-a";
  first["litellm_params"]["order"] = 1;
  auto second = upstream_deployment(up, "tiered", "");
  second["model_info"]["id"] = "tiered-b";
  second["litellm_params"]["order"] = 2;
  return {{"model_list", json::array({first, second, upstream_deployment(up, "primary", "status=503"),
                                      upstream_deployment(up, "ok", "")})},
          {"router_settings",
           {{"num_retries", 0},
            {"disable_cooldowns", true},
            {"fallbacks", json::array({{{"primary", json::array({"ok"})}}})}}},
          {"general_settings", {{"master_key", key}}}};
}

// serve is built with the same flags as this test. AddressSanitizer keeps
// freed chunks in its quarantine (256 MiB) and ThreadSanitizer's shadow
// memory grows with every byte touched: RSS says little under either.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool rss_is_meaningful = false;
#else
constexpr bool rss_is_meaningful = true;
#endif

} // namespace

TEST_CASE("upstream: a stream that failed over carries the committed deployment's headers") {
  upstream_process up;
  serve_process s(failover_config(up));
  for (const auto& [group, expected] :
       std::vector<std::pair<std::string, std::string>>{{"tiered", "tiered-b"}, {"primary", "ok-1"}}) {
    INFO(group);
    const auto st = post(s, chat(group, true));
    INFO(st.body);
    REQUIRE(st.status == 200);
    CHECK(st.header("content-type") == "text/event-stream");
    CHECK(sse_data(st.body).back() == "[DONE]");
    CHECK(st.header("x-switchyard-deployment-id") == expected);
    CHECK(st.header("x-litellm-model-id") == expected);
    CHECK(st.header("x-switchyard-attempts") == "2");
    // The same counts as the unstreamed answer of the same route.
    const auto whole = post(s, chat(group));
    REQUIRE(whole.status == 200);
    CHECK(whole.header("x-switchyard-deployment-id") == expected);
    for (const char* h : {"x-switchyard-attempts", "x-switchyard-fallback-depth",
                          "x-litellm-attempted-retries", "x-litellm-attempted-fallbacks",
                          "x-switchyard-model-group", "x-litellm-model-group"})
      CHECK(st.header(h) == whole.header(h));
    // Measured at the commit: the overhead is part of the duration.
    const double overhead = std::stod(st.header("x-switchyard-overhead-ms"));
    CHECK(overhead >= 0);
    CHECK(std::stod(st.header("x-litellm-response-duration-ms")) >= overhead);
    CHECK(st.header("x-litellm-overhead-duration-ms") == st.header("x-switchyard-overhead-ms"));
  }
  CHECK(post(s, chat("primary", true)).header("x-switchyard-fallback-depth") == "1");
  CHECK(post(s, chat("primary", true)).header("x-litellm-attempted-fallbacks") == "1");
}

TEST_CASE("upstream: a client that reads a stream too slowly is cut off, memory stays bounded") {
  upstream_process up;
  // About 64 MiB of SSE: 32,000 chunks of 2,000 bytes of content each.
  const std::string scenario = "chunks=32000,content=" + std::string(2000, 'x');
  json config{{"model_list", json::array({upstream_deployment(up, "flood", scenario),
                                          upstream_deployment(up, "ok", "")})},
              {"router_settings", {{"num_retries", 0}, {"disable_cooldowns", true}}},
              {"general_settings", {{"master_key", key}}}};
  serve_process s(config, {"--max-stream-buffer-bytes", "262144"});
  REQUIRE(post(s, chat("ok", true)).status == 200);
  const long base_kb = s.status_kb("VmRSS");
  REQUIRE(base_kb > 0);

  raw_connection slow(s.port());
  const std::string body = chat("flood", true).dump();
  slow.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: " + key
            + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  // The client reads nothing; serve gives up on it and cancels the call.
  const auto stats =
    up.stats_when([](const json& st) { return st["connections_closed_by_client"] >= 1; }, 60);
  CHECK(stats["connections_closed_by_client"] == 1);
  // Meanwhile, and after, other clients are served.
  const auto other = post(s, chat("ok", true));
  CHECK(other.status == 200);
  CHECK(streamed_content(sse_data(other.body)) == "Hello from the test upstream");
  // Far below the 64 MiB the upstream sent: the queue was bounded. Under
  // the sanitizers (above) the cancel and the bytes received below still
  // prove it.
  const long peak_kb = s.status_kb("VmHWM");
  INFO("rss before " << base_kb << " kB, peak " << peak_kb << " kB");
  if (rss_is_meaningful)
    CHECK(peak_kb - base_kb < 32 * 1024);
  // The slow client finds its connection closed once it reads.
  std::size_t received = 0;
  for (;;) {
    const auto bytes = slow.receive(std::chrono::seconds(30));
    REQUIRE(bytes.has_value());
    if (bytes->empty())
      break;
    received += bytes->size();
  }
  CHECK(received > 0);
  CHECK(received < 32u << 20);
  CHECK(wait_for_metric(s, "switchyard_in_flight", 0));
  CHECK(metric_value(metrics_text(s), "switchyard_requests_total{model_group=\"flood\",outcome=\"CancelledError\"}")
        == 1);
  CHECK(s.stop(SIGTERM) == 0);
  CHECK(s.log().find("the client reads too slowly") != std::string::npos);
}
