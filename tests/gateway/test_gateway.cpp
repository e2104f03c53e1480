// `switchyard serve` over real sockets: each test starts the server as a
// process on a free loopback port and stops it (GATEWAY.md).

#include "gateway_support.hpp"

#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>
#include <tuple>

using namespace switchyard::test;
using nlohmann::json;

namespace {

const std::string key = "sk-gateway-test-key";
const header_map auth = {{"Authorization", "Bearer " + key}};

json deployment(const std::string& group, const std::string& id, json params) {
  params["model"] = "openai/" + id;
  return {{"model_name", group}, {"litellm_params", std::move(params)}, {"model_info", {{"id", id}}}};
}

// Groups the tests share: a reply, failures of several kinds, a slow one
// and streams whose first chunk comes late or whose end never comes.
json base_config(bool with_key = true) {
  json c{{"model_list",
          json::array({
            deployment("solo", "solo-1", {{"mock_response", "solo reply"}}),
            deployment("limited", "limited-1",
                       {{"mock_response",
                         {{"error", "RateLimitError"}, {"message", "slow down"}, {"retry_after", 7}}}}),
            deployment("broken", "broken-1", {{"mock_response", "litellm.InternalServerError"}}),
            deployment("slow", "slow-1", {{"mock_response", "slow reply"}, {"mock_latency_ms", 1500}}),
            deployment("late", "late-1",
                       {{"mock_response", "late reply"},
                        {"mock_first_token_ms", 1500},
                        {"mock_latency_ms", 1600}}),
            deployment("streamy", "streamy-1",
                       {{"mock_response", "streamed reply"},
                        {"mock_first_token_ms", 10},
                        {"mock_latency_ms", 30}}),
            // Commits at 10 ms, then no chunk within its 0.3 s stream_timeout.
            deployment("cut", "cut-1",
                       {{"mock_response", "never finished"},
                        {"mock_first_token_ms", 10},
                        {"mock_latency_ms", 5000},
                        {"stream_timeout", 0.3}}),
          })},
         {"router_settings",
          {{"num_retries", 0}, {"disable_cooldowns", true}, {"model_group_alias", {{"gpt-4o", "solo"}}}}}};
  if (with_key)
    c["general_settings"] = {{"master_key", key}};
  return c;
}

http_reply post_chat(const serve_process& s, const json& body, const header_map& h = auth,
                     const std::string& path = "/v1/chat/completions") {
  return http_request(s.port(), "POST", path, body.dump(), h);
}

void check_openai_error(const http_reply& r, int status, const std::string& type) {
  INFO(r.body << r.error);
  CHECK(r.status == status);
  CHECK(r.header("content-type") == "application/json");
  const auto e = r.json().at("error");
  CHECK(e.at("type") == type);
  CHECK(e.at("code") == std::to_string(status));
  CHECK(e.at("message").is_string());
  CHECK(e.contains("param"));
}

} // namespace

TEST_CASE("a chat completion answers a chat.completion with the routing headers") {
  serve_process s(base_config());
  for (const std::string path : {"/v1/chat/completions", "/chat/completions"}) {
    INFO(path);
    const auto r = post_chat(s, chat("solo"), auth, path);
    REQUIRE(r.status == 200);
    const auto body = r.json();
    CHECK(body["object"] == "chat.completion");
    CHECK(body["choices"][0]["message"]["content"] == "solo reply");
    CHECK(body["choices"][0]["message"]["role"] == "assistant");
    CHECK(body["choices"][0]["finish_reason"] == "stop");
    CHECK(body["usage"]["total_tokens"].is_number());
    CHECK(r.header("x-switchyard-deployment-id") == "solo-1");
    CHECK(r.header("x-litellm-model-id") == "solo-1");
    CHECK(r.header("x-switchyard-model-group") == "solo");
    CHECK(r.header("x-litellm-model-group") == "solo");
    CHECK(r.header("x-switchyard-attempts") == "1");
    CHECK(r.header("x-switchyard-fallback-depth") == "0");
    CHECK(r.header("x-litellm-attempted-retries") == "0");
    CHECK(r.header("x-litellm-attempted-fallbacks") == "0");
    CHECK_FALSE(r.header("x-switchyard-overhead-ms").empty());
    CHECK_FALSE(r.header("x-litellm-response-duration-ms").empty());
    CHECK_FALSE(r.header("x-litellm-overhead-duration-ms").empty());
  }
  // An alias routes to its group.
  const auto aliased = post_chat(s, chat("gpt-4o"));
  CHECK(aliased.status == 200);
  CHECK(aliased.header("x-switchyard-model-group") == "solo");
  CHECK(s.stop(SIGTERM) == 0);
}

TEST_CASE("/v1/models and /models list every group and alias") {
  serve_process s(base_config());
  for (const std::string path : {"/v1/models", "/models"}) {
    const auto r = http_request(s.port(), "GET", path, "", auth);
    REQUIRE(r.status == 200);
    const auto body = r.json();
    CHECK(body["object"] == "list");
    std::vector<std::string> ids;
    for (const auto& m : body["data"]) {
      ids.push_back(m["id"]);
      CHECK(m["object"] == "model");
      CHECK(m["created"] == 0);
      CHECK(m["owned_by"] == "switchyard");
    }
    CHECK(ids == std::vector<std::string>{"solo", "limited", "broken", "slow", "late",
                                          "streamy", "cut", "gpt-4o"});
  }
}

TEST_CASE("health endpoints answer without a key") {
  serve_process s(base_config());
  for (const std::string path : {"/health/liveliness", "/health/liveness"}) {
    const auto r = http_request(s.port(), "GET", path);
    CHECK(r.status == 200);
  }
  const auto ready = http_request(s.port(), "GET", "/health/readiness");
  REQUIRE(ready.status == 200);
  const auto body = ready.json();
  CHECK(body["status"] == "healthy");
  CHECK(body["shared_state"] == "none");
  CHECK(body["deployments_cooling"] == json::array());
  CHECK(body["model_groups"].size() == 7);
  CHECK(body["model_groups"][0]["name"] == "solo");
}

TEST_CASE("authentication with each header, none and a wrong one") {
  serve_process s(base_config());
  CHECK(post_chat(s, chat("solo"), {{"Authorization", "Bearer " + key}}).status == 200);
  CHECK(post_chat(s, chat("solo"), {{"Authorization", "bearer " + key}}).status == 200);
  CHECK(post_chat(s, chat("solo"), {{"api-key", key}}).status == 200);
  CHECK(post_chat(s, chat("solo"), {{"x-api-key", key}}).status == 200);

  const auto none = post_chat(s, chat("solo"), {});
  check_openai_error(none, 401, "AuthenticationError");
  const auto wrong = post_chat(s, chat("solo"), {{"Authorization", "Bearer sk-wrong"}});
  check_openai_error(wrong, 401, "AuthenticationError");
  CHECK(wrong.body.find("sk-wrong") == std::string::npos);
  CHECK(wrong.body.find(key) == std::string::npos);
  check_openai_error(post_chat(s, chat("solo"), {{"x-api-key", key + "x"}}), 401,
                     "AuthenticationError");
  check_openai_error(post_chat(s, chat("solo"), {{"Authorization", key}}), 401,
                     "AuthenticationError"); // no Bearer scheme
  check_openai_error(http_request(s.port(), "GET", "/v1/models"), 401, "AuthenticationError");
  // The key never reaches the log.
  CHECK(s.stop(SIGTERM) == 0);
  CHECK(s.log().find(key) == std::string::npos);
  CHECK(s.log().find("sk-wrong") == std::string::npos);
}

TEST_CASE("without a master key, loopback needs no key") {
  serve_process s(base_config(false));
  CHECK(post_chat(s, chat("solo"), {}).status == 200);
}

TEST_CASE("binding 0.0.0.0 without a master key is refused") {
  const auto [status, output] = run_switchyard(
    {"serve", "--config", "{config}", "--host", "0.0.0.0", "--port", "0"},
    base_config(false).dump());
  CHECK(status == 1);
  CHECK(output.find("refusing to listen on 0.0.0.0 without general_settings.master_key")
        != std::string::npos);
  CHECK(output.find("--allow-unauthenticated") != std::string::npos);
  CHECK(output.find("listening on") == std::string::npos);
}

TEST_CASE("a broken config or an unset master key env exits 1 naming the path") {
  auto c = base_config();
  c["general_settings"]["master_key"] = "os.environ/SWITCHYARD_GW_TEST_UNSET";
  c["model_list"][0]["litellm_params"]["weight"] = -1;
  const auto [status, output] = run_switchyard({"serve", "--config", "{config}", "--port", "0"},
                                               c.dump());
  CHECK(status == 1);
  CHECK(output.find("model_list[0].litellm_params.weight") != std::string::npos);
  CHECK(output.find("general_settings.master_key: environment variable "
                    "SWITCHYARD_GW_TEST_UNSET is not set")
        != std::string::npos);
  CHECK(output.find("listening on") == std::string::npos);
}

TEST_CASE("the master key may come from os.environ/") {
  auto c = base_config();
  c["general_settings"]["master_key"] = "os.environ/SWITCHYARD_GW_TEST_KEY";
  serve_process s(c, {}, {"SWITCHYARD_GW_TEST_KEY=sk-from-env"});
  CHECK(post_chat(s, chat("solo"), {{"api-key", "sk-from-env"}}).status == 200);
  CHECK(post_chat(s, chat("solo"), {{"api-key", "os.environ/SWITCHYARD_GW_TEST_KEY"}}).status
        == 401);
}

TEST_CASE("unknown paths get 404 and wrong methods 405, OpenAI-shaped") {
  serve_process s(base_config());
  check_openai_error(http_request(s.port(), "GET", "/v1/embeddings", "", auth), 404,
                     "NotFoundError");
  const auto r = http_request(s.port(), "GET", "/v1/chat/completions", "", auth);
  check_openai_error(r, 405, "BadRequestError");
  CHECK(r.header("allow") == "POST");
  check_openai_error(http_request(s.port(), "POST", "/v1/models", "{}", auth), 405,
                     "BadRequestError");
}

TEST_CASE("malformed requests get a 400 that names the problem") {
  serve_process s(base_config());
  const auto bad_json = http_request(s.port(), "POST", "/v1/chat/completions",
                                     "{\"model\": \"solo\", \"messages\": [", auth);
  check_openai_error(bad_json, 400, "BadRequestError");
  CHECK(bad_json.json()["error"]["message"].get<std::string>().find("not valid JSON: line 1")
        != std::string::npos);

  const auto no_messages = post_chat(s, json{{"model", "solo"}});
  check_openai_error(no_messages, 400, "BadRequestError");
  CHECK(no_messages.json()["error"]["message"] == "body.messages: is required");
  CHECK(no_messages.json()["error"]["param"] == "messages");

  auto wrong_type = chat("solo");
  wrong_type["num_retries"] = "three";
  const auto typed = post_chat(s, wrong_type);
  check_openai_error(typed, 400, "BadRequestError");
  CHECK(typed.json()["error"]["param"] == "num_retries");

  const auto unknown = post_chat(s, chat("no-such-group"));
  check_openai_error(unknown, 400, "BadRequestError");
  CHECK(unknown.json()["error"]["message"].get<std::string>().find("no-such-group")
        != std::string::npos);

  const auto not_object = http_request(s.port(), "POST", "/v1/chat/completions", "[1]", auth);
  check_openai_error(not_object, 400, "BadRequestError");
}

TEST_CASE("router errors keep their status, and a 429 its Retry-After") {
  serve_process s(base_config());
  const auto limited = post_chat(s, chat("limited"));
  check_openai_error(limited, 429, "RateLimitError");
  CHECK(limited.json()["error"]["message"] == "slow down");
  CHECK(limited.header("retry-after") == "7");
  CHECK(limited.header("x-switchyard-deployment-id") == "limited-1");
  CHECK(limited.header("x-switchyard-model-group") == "limited");

  const auto broken = post_chat(s, chat("broken"));
  check_openai_error(broken, 500, "InternalServerError");
  CHECK(broken.header("retry-after").empty());
}

TEST_CASE("a body past --max-body-bytes gets 413") {
  serve_process s(base_config(), {"--max-body-bytes", "2000"});
  auto big = chat("solo");
  big["messages"][0]["content"] = std::string(5000, 'x');
  check_openai_error(post_chat(s, big), 413, "BadRequestError");
  // Within the limit still works.
  CHECK(post_chat(s, chat("solo")).status == 200);
}

TEST_CASE("/metrics counts move with the requests") {
  serve_process s(base_config());
  const std::string ok = "switchyard_requests_total{model_group=\"solo\",outcome=\"ok\"}";
  const std::string limited =
    "switchyard_requests_total{model_group=\"limited\",outcome=\"RateLimitError\"}";
  const auto before = metrics_text(s);
  CHECK(metric_value(before, ok) == -1);
  for (int i = 0; i < 3; ++i)
    CHECK(post_chat(s, chat("solo")).status == 200);
  CHECK(post_chat(s, chat("limited")).status == 429);
  const auto r = http_request(s.port(), "GET", "/metrics");
  REQUIRE(r.status == 200);
  CHECK(r.header("content-type") == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(metric_value(r.body, ok) == 3);
  CHECK(metric_value(r.body, limited) == 1);
  CHECK(metric_value(r.body, "switchyard_deployment_calls_total{deployment=\"solo-1\",outcome=\"ok\"}")
        == 3);
  CHECK(metric_value(r.body, "switchyard_request_duration_seconds_count{model_group=\"solo\"}")
        == 3);
  // A request leaves in_flight when its answer's write completes, which
  // may be just after the client read the answer.
  CHECK(wait_for_metric(s, "switchyard_in_flight", 0));
  CHECK(metric_value(r.body, "switchyard_deployment_cooling{deployment=\"solo-1\"}") == 0);
  CHECK(r.body.find("# TYPE switchyard_requests_total counter") != std::string::npos);
}

TEST_CASE("streaming sends SSE chunks, then [DONE]") {
  serve_process s(base_config());
  SECTION("a deployment that streams") {
    const auto r = post_chat(s, chat("streamy", true));
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") == "text/event-stream");
    CHECK(r.header("x-switchyard-model-group") == "streamy");
    const auto events = sse_data(r.body);
    REQUIRE(events.size() >= 3);
    CHECK(events.back() == "[DONE]");
    std::string content;
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
      const auto chunk = json::parse(events[i]);
      CHECK(chunk["object"] == "chat.completion.chunk");
      const auto& delta = chunk["choices"][0]["delta"];
      if (delta.contains("content") && delta["content"].is_string())
        content += delta["content"].get<std::string>();
    }
    CHECK(content == "streamed reply");
    CHECK(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"] == "stop");
    // Every event is `data: <json>` and a blank line.
    CHECK(r.body.rfind("data: ", 0) == 0);
    CHECK(r.body.size() >= 2);
    CHECK(r.body.substr(r.body.size() - 2) == "\n\n");
  }
  SECTION("a reply that came whole is replayed as a stream") {
    const auto r = post_chat(s, chat("solo", true));
    REQUIRE(r.status == 200);
    CHECK(r.header("content-type") == "text/event-stream");
    const auto events = sse_data(r.body);
    REQUIRE(events.size() == 3);
    CHECK(json::parse(events[0])["choices"][0]["delta"]["content"] == "solo reply");
    CHECK(json::parse(events[1])["choices"][0]["finish_reason"] == "stop");
    CHECK(events[2] == "[DONE]");
  }
}

TEST_CASE("a stream failing before its first chunk gets a real error status") {
  serve_process s(base_config());
  const auto r = post_chat(s, chat("broken", true));
  check_openai_error(r, 500, "InternalServerError");
  const auto limited = post_chat(s, chat("limited", true));
  check_openai_error(limited, 429, "RateLimitError");
  CHECK(limited.header("retry-after") == "7");
}

TEST_CASE("a failure after the commit sends an error event and no [DONE]") {
  serve_process s(base_config());
  const auto r = post_chat(s, chat("cut", true));
  REQUIRE(r.status == 200);
  const auto events = sse_data(r.body);
  REQUIRE(events.size() >= 2);
  CHECK(json::parse(events.front())["choices"][0]["delta"]["content"] == "never finished");
  const auto last = json::parse(events.back());
  CHECK(last["error"]["type"] == "Timeout");
  CHECK(last["error"]["code"] == "408");
  for (const auto& e : events)
    CHECK(e != "[DONE]");
}

TEST_CASE("the status line of a stream waits for its first chunk") {
  serve_process s(base_config());
  raw_connection c(s.port());
  const std::string body = chat("late", true).dump();
  c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key
         + "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size())
         + "\r\n\r\n" + body);
  // The first chunk comes after 1.5 s: nothing, not even the status, before.
  CHECK_FALSE(c.receive(std::chrono::milliseconds(500)).has_value());
  const auto first = c.receive(std::chrono::seconds(60));
  REQUIRE(first.has_value());
  CHECK(first->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("a client that disconnects cancels its request") {
  serve_process s(base_config());
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    {
      raw_connection c(s.port());
      const std::string body = chat("slow", stream).dump();
      c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: " + key
             + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
      REQUIRE(wait_for_metric(s, "switchyard_in_flight", 1));
    } // hangs up 1.5 s before the answer
    CHECK(wait_for_metric(s, "switchyard_in_flight", 0));
  }
  const auto text = metrics_text(s);
  CHECK(metric_value(text, "switchyard_requests_total{model_group=\"slow\",outcome=\"CancelledError\"}")
        == 2);
  CHECK(metric_value(text, "switchyard_requests_total{model_group=\"slow\",outcome=\"ok\"}") == -1);
  // Access lines leave in batches, within a second once the server is idle.
  CHECK(s.log_contains("POST /v1/chat/completions 499"));
}

TEST_CASE("a client sending its headers too slowly is cut off") {
  serve_process s(base_config(), {"--header-timeout-ms", "300"});
  raw_connection slow(s.port());
  slow.send("GET /health/liveness HTTP/1.1\r\nHo");
  // Closed by the server (""), long before this generous limit.
  const auto got = slow.receive(std::chrono::seconds(30));
  REQUIRE(got.has_value());
  CHECK(got->empty());
  // A prompt client on another connection is answered.
  CHECK(http_request(s.port(), "GET", "/health/liveness").status == 200);
}

TEST_CASE("keep-alive serves several requests on one connection") {
  serve_process s(base_config());
  raw_connection c(s.port());
  for (int i = 0; i < 3; ++i) {
    c.send("GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto got = c.receive(std::chrono::seconds(30));
    REQUIRE(got.has_value());
    CHECK(got->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
}

TEST_CASE("past --max-in-flight a request gets 429 at once with Retry-After") {
  serve_process s(base_config(), {"--max-in-flight", "2"});
  std::vector<http_reply> slow;
  std::thread t([&] { slow = http_concurrent(s.port(), 2, "/v1/chat/completions",
                                             {chat("slow").dump()}, auth); });
  REQUIRE(wait_for_metric(s, "switchyard_in_flight", 2));
  const auto refused = post_chat(s, chat("solo"));
  check_openai_error(refused, 429, "OverloadedError");
  CHECK(refused.header("retry-after") == "1");
  // The server stays responsive meanwhile.
  CHECK(http_request(s.port(), "GET", "/health/readiness").status == 200);
  t.join();
  REQUIRE(slow.size() == 2);
  CHECK(slow[0].status == 200);
  CHECK(slow[1].status == 200);
  CHECK(metric_value(metrics_text(s), "switchyard_overload_rejections_total") == 1);
}

TEST_CASE("a thousand concurrent connections each get their answer") {
  auto c = base_config();
  c["model_list"].push_back(
    deployment("busy", "busy-1", {{"mock_response", "busy reply"}, {"mock_latency_ms", 200}}));
  serve_process s(c);
  const auto replies =
    http_concurrent(s.port(), 1000, "/v1/chat/completions", {chat("busy").dump()}, auth);
  std::size_t ok = 0;
  for (const auto& r : replies) {
    if (r.status == 200 && r.json()["choices"][0]["message"]["content"] == "busy reply")
      ++ok;
    else
      INFO(r.status << " " << r.error << " " << r.body);
  }
  CHECK(ok == 1000);
  CHECK(metric_value(metrics_text(s), "switchyard_requests_total{model_group=\"busy\",outcome=\"ok\"}")
        == 1000);
}

TEST_CASE("SIGTERM with 200 requests in flight finishes every one and exits 0") {
  auto c = base_config();
  c["model_list"].push_back(deployment(
    "drain", "drain-1", {{"mock_response", "drained"}, {"mock_latency_ms", 1500}}));
  c["model_list"].push_back(deployment("drain-stream", "drain-stream-1",
                                       {{"mock_response", "drained stream"},
                                        {"mock_first_token_ms", 200},
                                        {"mock_latency_ms", 1500}}));
  serve_process s(c);
  std::vector<http_reply> replies;
  std::thread t([&] {
    replies = http_concurrent(s.port(), 200, "/v1/chat/completions",
                              {chat("drain").dump(), chat("drain-stream", true).dump()}, auth);
  });
  REQUIRE(wait_for_metric(s, "switchyard_in_flight", 200));
  const int status = s.stop(SIGTERM);
  t.join();
  CHECK(status == 0);
  REQUIRE(replies.size() == 200);
  std::size_t ok = 0;
  for (std::size_t i = 0; i < replies.size(); ++i) {
    const auto& r = replies[i];
    INFO(i << ": " << r.status << " " << r.error << " " << r.body);
    if (i % 2 == 0) {
      CHECK(r.status == 200);
      ok += r.status == 200 && r.json()["choices"][0]["message"]["content"] == "drained";
    } else {
      const auto events = sse_data(r.body);
      CHECK(r.status == 200);
      ok += r.status == 200 && !events.empty() && events.back() == "[DONE]";
    }
  }
  CHECK(ok == 200);
}

TEST_CASE("an idle keep-alive connection is closed after its timeout") {
  serve_process s(base_config(), {"--keep-alive-timeout-ms", "200"});
  raw_connection c(s.port());
  c.send("GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n");
  const auto reply = c.receive(std::chrono::seconds(30));
  REQUIRE(reply.has_value());
  CHECK(reply->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  const auto after = c.receive(std::chrono::seconds(30));
  REQUIRE(after.has_value());
  CHECK(after->empty()); // closed by the server
}

TEST_CASE("past --max-connections a new connection gets 503 and is closed") {
  serve_process s(base_config(), {"--max-connections", "2"});
  raw_connection a(s.port());
  raw_connection b(s.port());
  // Both are open (and idle) once the server answers on them.
  for (auto* c : {&a, &b}) {
    c->send("GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto got = c->receive(std::chrono::seconds(30));
    REQUIRE(got.has_value());
    CHECK(got->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  const auto refused = http_request(s.port(), "GET", "/health/liveness");
  check_openai_error(refused, 503, "ServiceUnavailableError");
  a.close();
  b.close();
  // Places free up as connections close.
  bool answered = false;
  for (int i = 0; i < 500 && !answered; ++i) {
    answered = http_request(s.port(), "GET", "/health/liveness").status == 200;
    if (!answered)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(answered);
}

TEST_CASE("the --allow-unauthenticated switch starts a server without a key") {
  serve_process s(base_config(false), {"--allow-unauthenticated", "--threads", "1"});
  CHECK(post_chat(s, chat("solo"), {}).status == 200);
  CHECK(s.stop(SIGINT) == 0);
}

TEST_CASE("while draining, open connections see readiness and liveness 503 and new chats 503") {
  serve_process s(base_config());
  // Three keep-alive connections, open before the signal.
  std::vector<std::unique_ptr<raw_connection>> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(std::make_unique<raw_connection>(s.port()));
    open.back()->send("GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n");
    const auto got = open.back()->receive(std::chrono::seconds(30));
    REQUIRE(got.has_value());
    REQUIRE(got->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  }
  std::vector<http_reply> slow;
  std::thread t([&] {
    slow = http_concurrent(s.port(), 1, "/v1/chat/completions", {chat("slow").dump()}, auth);
  });
  REQUIRE(wait_for_metric(s, "switchyard_in_flight", 1));
  s.signal(SIGTERM);
  // Wait until the drain has begun: new connections are refused then.
  for (int i = 0; i < 3000; ++i) {
    try {
      raw_connection probe(s.port());
    } catch (const std::exception&) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto ask = [](raw_connection& c, const std::string& request) {
    c.send(request);
    std::string all;
    for (;;) {
      auto got = c.receive(std::chrono::seconds(30));
      if (!got || got->empty())
        return all;
      all += *got;
    }
  };
  const auto ready = ask(*open[0], "GET /health/readiness HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(ready.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(ready.find("\"status\":\"draining\"") != std::string::npos);
  CHECK(ready.find("Connection: close") != std::string::npos);
  CHECK(ask(*open[1], "GET /health/liveness HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 503 ", 0)
        == 0);
  const std::string body = chat("solo").dump();
  const auto refused =
    ask(*open[2], "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nx-api-key: " + key
                    + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  CHECK(refused.rfind("HTTP/1.1 503 ", 0) == 0);
  CHECK(refused.find("ShutdownError") != std::string::npos);
  t.join();
  REQUIRE(slow.size() == 1);
  CHECK(slow[0].status == 200);
  CHECK(s.stop(SIGTERM) == 0);
}

TEST_CASE("a request that is not HTTP gets 400, headers past 64 KiB get 431") {
  serve_process s(base_config());
  {
    raw_connection c(s.port());
    c.send("THIS IS NOT HTTP\r\n\r\n");
    const auto got = c.receive(std::chrono::seconds(30));
    REQUIRE(got.has_value());
    CHECK(got->rfind("HTTP/1.1 400 Bad Request\r\n", 0) == 0);
    CHECK(got->find("malformed HTTP request") != std::string::npos);
  }
  {
    raw_connection c(s.port());
    c.send("GET /health/liveness HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(70 * 1024, 'a')
           + "\r\n\r\n");
    const auto got = c.receive(std::chrono::seconds(30));
    REQUIRE(got.has_value());
    CHECK(got->rfind("HTTP/1.1 431 ", 0) == 0);
  }
  CHECK(http_request(s.port(), "GET", "/health/liveness").status == 200);
}

TEST_CASE("serve's thread and stream-buffer flags: bad values are refused, good ones serve") {
  for (const auto& [flag, value, says] : std::vector<std::tuple<std::string, std::string, std::string>>{
         {"--router-threads", "0", "--router-threads: expected a whole number >= 1"},
         {"--threads", "x", "--threads: expected a whole number >= 1"},
         {"--max-stream-buffer-bytes", "100", "--max-stream-buffer-bytes: expected a whole number from 1024"}}) {
    INFO(flag << " " << value);
    const auto [status, output] =
      run_switchyard({"serve", "--config", "{config}", "--port", "0", flag, value}, base_config().dump());
    CHECK(status != 0);
    CHECK(output.find(says) != std::string::npos);
    CHECK(output.find("listening on") == std::string::npos);
  }
  serve_process s(base_config(), {"--threads", "2", "--router-threads", "2",
                                  "--max-stream-buffer-bytes", "4096"});
  CHECK(post_chat(s, chat("solo")).status == 200);
  CHECK(post_chat(s, chat("streamy", true)).status == 200);
  CHECK(s.stop(SIGTERM) == 0);
}

TEST_CASE("an answer larger than the socket's send buffer arrives whole, and the connection "
          "serves the next request") {
  // 12 MB: the first send takes what the socket's buffer holds, the rest
  // goes asynchronously (write_answer).
  const std::string big(12u << 20, 'b');
  json c{{"model_list", json::array({deployment("big", "big-1", {{"mock_response", big}}),
                                     deployment("solo", "solo-1", {{"mock_response", "solo reply"}})})},
         {"general_settings", {{"master_key", key}}}};
  serve_process s(c);
  raw_connection conn(s.port());
  const std::string body = chat("big").dump();
  const std::string small = chat("solo").dump();
  // Two requests on one keep-alive connection; the first answer is read
  // slowly, so most of it waits for the socket.
  conn.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: " + key
            + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body
            + "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\napi-key: " + key
            + "\r\nContent-Length: " + std::to_string(small.size()) + "\r\n\r\n" + small);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::string received;
  while (received.find("solo reply") == std::string::npos) {
    const auto bytes = conn.receive(std::chrono::seconds(30));
    REQUIRE(bytes.has_value());
    REQUIRE_FALSE(bytes->empty());
    received += *bytes;
  }
  const auto first_body = received.find("\r\n\r\n") + 4;
  const auto second = received.find("HTTP/1.1 200 OK", first_body);
  REQUIRE(second != std::string::npos);
  const auto reply = json::parse(received.substr(first_body, second - first_body));
  CHECK(reply["choices"][0]["message"]["content"] == big);
  CHECK(received.compare(0, 15, "HTTP/1.1 200 OK") == 0);
  CHECK(s.stop(SIGTERM) == 0);
}
