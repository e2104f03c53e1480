// The test upstream itself (tests/upstream/upstream.mjs): each dialect's
// answers, errors, streams and scenarios, as the transport and gateway
// tests rely on them. Driven through http_client.

#include "http/recorded_call.hpp"
#include "support/upstream_process.hpp"

#include "switchyard/http_client.hpp"

#include <catch2/catch.hpp>

#include <ctime>
#include <map>

using namespace switchyard;
using namespace switchyard::test;
using nlohmann::json;

namespace {

enum class dialect { openai, azure, anthropic };

std::string path_of(dialect d) {
  switch (d) {
    case dialect::openai: return "/v1/chat/completions";
    case dialect::azure: return "/openai/deployments/my-gpt4/chat/completions?api-version=2024-02-01";
    case dialect::anthropic: return "/v1/messages";
  }
  return {};
}

std::string url_of(const upstream_process& up, dialect d, const std::string& scenario = "") {
  return up.base_url() + (scenario.empty() ? "" : "/scenario/" + scenario) + path_of(d);
}

struct sse_event {
  std::string event; // empty for OpenAI-style data-only events
  std::string data;
};

std::vector<sse_event> parse_sse(const std::string& body) {
  std::vector<sse_event> out;
  std::size_t from = 0;
  while (from < body.size()) {
    auto end = body.find("\n\n", from);
    if (end == std::string::npos)
      end = body.size();
    sse_event ev;
    std::size_t line_from = from;
    while (line_from < end) {
      auto nl = body.find('\n', line_from);
      if (nl == std::string::npos || nl > end)
        nl = end;
      std::string line = body.substr(line_from, nl - line_from);
      if (line.rfind("event: ", 0) == 0)
        ev.event = line.substr(7);
      else if (line.rfind("data: ", 0) == 0)
        ev.data = line.substr(6);
      line_from = nl + 1;
    }
    if (!ev.event.empty() || !ev.data.empty())
      out.push_back(ev);
    from = end + 2;
  }
  return out;
}

std::vector<std::string> event_types(const std::vector<sse_event>& events) {
  std::vector<std::string> out;
  for (auto& e : events)
    out.push_back(e.event);
  return out;
}

json tools_json() {
  return json::array({{{"type", "function"},
                       {"function", {{"name", "get_weather"},
                                     {"parameters", {{"type", "object"}}}}}}});
}

} // namespace

TEST_CASE("upstream: OpenAI stream with the usage chunk when include_usage", "[upstream]") {
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(url_of(up, dialect::openai), true,
                                           {{"stream_options", {{"include_usage", true}}}}));
  REQUIRE(rec->result.status == 200);
  CHECK(find_header(rec->headers, "content-type") == std::optional<std::string_view>("text/event-stream"));
  auto events = parse_sse(rec->body);
  REQUIRE(events.size() == 7); // role, 3 content, finish, usage, [DONE]
  auto first = json::parse(events[0].data);
  CHECK(first["object"] == "chat.completion.chunk");
  CHECK(first["choices"][0]["delta"]["role"] == "assistant");
  std::string text;
  for (int i = 1; i <= 3; ++i)
    text += json::parse(events[i].data)["choices"][0]["delta"]["content"].get<std::string>();
  CHECK(text == "Hello from the test upstream");
  CHECK(json::parse(events[4].data)["choices"][0]["finish_reason"] == "stop");
  auto usage = json::parse(events[5].data);
  CHECK(usage["choices"].empty());
  CHECK(usage["usage"]["total_tokens"] == 13);
  CHECK(events[6].data == "[DONE]");

  auto plain = run_call(client, chat_request(url_of(up, dialect::openai), true));
  CHECK(parse_sse(plain->body).size() == 6); // no usage chunk unless asked
}

TEST_CASE("upstream: Anthropic answers and its event stream", "[upstream]") {
  upstream_process up;
  http_client client;
  SECTION("non-streamed") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::anthropic, "cache_read_tokens=4"),
                                             false, {{"model", "claude-3-5-sonnet"}}));
    auto body = json::parse(rec->body);
    CHECK(body["type"] == "message");
    CHECK(body["model"] == "claude-3-5-sonnet");
    CHECK(body["content"][0] == json({{"type", "text"}, {"text", "Hello from the test upstream"}}));
    CHECK(body["stop_reason"] == "end_turn");
    CHECK(body["usage"]["input_tokens"] == 10);
    CHECK(body["usage"]["cache_read_input_tokens"] == 4);
    CHECK(find_header(rec->headers, "request-id").has_value());
  }
  SECTION("streamed text") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::anthropic), true));
    auto events = parse_sse(rec->body);
    CHECK(event_types(events) ==
          std::vector<std::string>{"message_start", "content_block_start", "ping", "content_block_delta",
                                   "content_block_delta", "content_block_delta", "content_block_stop",
                                   "message_delta", "message_stop"});
    CHECK(json::parse(events[3].data)["delta"]["type"] == "text_delta");
    CHECK(json::parse(events[7].data)["delta"]["stop_reason"] == "end_turn");
  }
  SECTION("a tool call streamed as input_json_delta when the user asks for the tool") {
    json anthropic_tools = json::array({{{"name", "get_weather"}, {"input_schema", {{"type", "object"}}}}});
    auto req = chat_request(url_of(up, dialect::anthropic), true,
                            {{"tools", anthropic_tools},
                             {"messages", {{{"role", "user"}, {"content", "Use the tool please"}}}}});
    auto rec = run_call(client, req);
    auto events = parse_sse(rec->body);
    auto start = json::parse(events[1].data);
    CHECK(start["content_block"]["type"] == "tool_use");
    CHECK(start["content_block"]["name"] == "get_weather");
    std::string args;
    for (auto& e : events)
      if (e.event == "content_block_delta") {
        auto d = json::parse(e.data)["delta"];
        CHECK(d["type"] == "input_json_delta");
        args += d["partial_json"].get<std::string>();
      }
    CHECK(json::parse(args) == json({{"location", "Paris"}, {"unit", "celsius"}}));
    CHECK(json::parse(events[events.size() - 2].data)["delta"]["stop_reason"] == "tool_use");
  }
}

TEST_CASE("upstream: OpenAI and Azure tool calls", "[upstream]") {
  upstream_process up;
  http_client client;
  auto ask = json{{"tools", tools_json()},
                  {"messages", {{{"role", "user"}, {"content", "what is the weather? call get_weather"}}}}};
  auto rec = run_call(client, chat_request(url_of(up, dialect::openai), false, ask));
  auto choice = json::parse(rec->body)["choices"][0];
  CHECK(choice["finish_reason"] == "tool_calls");
  CHECK(choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather");
  CHECK(json::parse(choice["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>())["location"] ==
        "Paris");

  auto streamed = run_call(client, chat_request(url_of(up, dialect::azure, "tool_call"), true));
  auto events = parse_sse(streamed->body);
  CHECK(json::parse(events[0].data).contains("prompt_filter_results")); // Azure's first chunk
  auto first = json::parse(events[1].data)["choices"][0]["delta"];
  CHECK(first["tool_calls"][0]["id"].get<std::string>().rfind("call_", 0) == 0);
  CHECK(first["tool_calls"][0]["function"]["name"] == "get_weather");
  std::string args;
  for (std::size_t i = 2; i + 2 < events.size(); ++i)
    args += json::parse(events[i].data)["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].get<std::string>();
  CHECK(json::parse(args)["unit"] == "celsius");

  auto no_tool = run_call(client, chat_request(url_of(up, dialect::openai), false, {{"tools", tools_json()}}));
  CHECK(json::parse(no_tool->body)["choices"][0]["finish_reason"] == "stop");
}

TEST_CASE("upstream: every error status in each dialect's real shape", "[upstream]") {
  upstream_process up;
  http_client client;
  const std::map<int, std::string> anthropic_types = {
      {400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
      {404, "not_found_error"},       {408, "timeout_error"},        {422, "invalid_request_error"},
      {429, "rate_limit_error"},      {500, "api_error"},            {502, "api_error"},
      {503, "api_error"},             {504, "timeout_error"},        {529, "overloaded_error"},
      {418, "api_error"}};
  for (auto& [status, type] : anthropic_types) {
    auto scenario = "status=" + std::to_string(status);
    for (auto d : {dialect::openai, dialect::azure, dialect::anthropic}) {
      CAPTURE(status, static_cast<int>(d));
      auto rec = run_call(client, chat_request(url_of(up, d, scenario)));
      CHECK(rec->result.status == status);
      auto body = json::parse(rec->body);
      if (d == dialect::anthropic) {
        CHECK(body["type"] == "error");
        CHECK(body["error"]["type"] == type);
        CHECK(body["error"]["message"].is_string());
      } else {
        CHECK(body["error"]["message"].is_string());
        CHECK(body["error"].contains("code"));
      }
    }
  }
}

TEST_CASE("upstream: context window, content policy and overload errors", "[upstream]") {
  upstream_process up;
  http_client client;
  auto body_of = [&](dialect d, const std::string& scenario) {
    auto rec = run_call(client, chat_request(url_of(up, d, scenario)));
    return std::make_pair(rec->result.status, json::parse(rec->body));
  };
  auto [s1, openai_ctx] = body_of(dialect::openai, "error=context_length");
  CHECK(s1 == 400);
  CHECK(openai_ctx["error"]["code"] == "context_length_exceeded");
  CHECK(openai_ctx["error"]["message"].get<std::string>().find("maximum context length") != std::string::npos);
  auto [s2, anthropic_ctx] = body_of(dialect::anthropic, "error=context_length");
  CHECK(s2 == 400);
  CHECK(anthropic_ctx["error"]["message"].get<std::string>().rfind("prompt is too long", 0) == 0);
  auto [s3, openai_cp] = body_of(dialect::openai, "error=content_policy");
  CHECK(s3 == 400);
  CHECK(openai_cp["error"]["code"] == "content_policy_violation");
  auto [s4, azure_cp] = body_of(dialect::azure, "error=content_policy");
  CHECK(s4 == 400);
  CHECK(azure_cp["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation");
  auto [s5, anthropic_cp] = body_of(dialect::anthropic, "error=content_policy");
  CHECK(s5 == 400);
  CHECK(anthropic_cp["error"]["message"].get<std::string>().find("content filtering policy") != std::string::npos);
  auto [s6, anthropic_over] = body_of(dialect::anthropic, "error=overloaded");
  CHECK(s6 == 529);
  CHECK(anthropic_over["error"]["type"] == "overloaded_error");
  auto [s7, anthropic_rl] = body_of(dialect::anthropic, "error=rate_limit");
  CHECK(s7 == 429);
  CHECK(anthropic_rl["error"]["type"] == "rate_limit_error");
}

TEST_CASE("upstream: Retry-After in each form", "[upstream]") {
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(url_of(up, dialect::azure,
                                                  "status=429,retry_after=5,retry_after_ms=1500,x_ms_retry_after_ms=2500")));
  CHECK(find_header(rec->headers, "retry-after") == std::optional<std::string_view>("5"));
  CHECK(find_header(rec->headers, "retry-after-ms") == std::optional<std::string_view>("1500"));
  CHECK(find_header(rec->headers, "x-ms-retry-after-ms") == std::optional<std::string_view>("2500"));

  auto dated = run_call(client, chat_request(url_of(up, dialect::openai, "status=503,retry_after_date=30")));
  auto value = find_header(dated->headers, "retry-after");
  REQUIRE(value.has_value());
  std::tm tm{};
  REQUIRE(strptime(std::string(*value).c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm) != nullptr);
  auto when = timegm(&tm);
  auto now = std::time(nullptr);
  CHECK(when > now);
  CHECK(when <= now + 31);
}

TEST_CASE("upstream: in-band stream errors, empty streams and content_filter", "[upstream]") {
  upstream_process up;
  http_client client;
  SECTION("OpenAI in-band error after one chunk, no [DONE]") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::openai, "stream_error_after=1"), true));
    CHECK(rec->result.transport_ok);
    auto events = parse_sse(rec->body);
    REQUIRE(events.size() == 3);
    CHECK(json::parse(events[1].data)["choices"][0]["delta"]["content"] == "Hello from ");
    CHECK(json::parse(events[2].data)["error"]["type"] == "server_error");
  }
  SECTION("Anthropic error event, no message_stop") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::anthropic, "stream_error_after=0"), true));
    auto events = parse_sse(rec->body);
    CHECK(event_types(events) == std::vector<std::string>{"message_start", "content_block_start", "ping", "error"});
    CHECK(json::parse(events.back().data)["error"]["type"] == "overloaded_error");
  }
  SECTION("a stream that ends empty") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::openai, "empty"), true));
    CHECK(rec->result.transport_ok);
    CHECK(rec->result.status == 200);
    CHECK(rec->body.empty());
  }
  SECTION("finish_reason content_filter") {
    auto rec = run_call(client, chat_request(url_of(up, dialect::azure, "finish=content_filter")));
    auto choice = json::parse(rec->body)["choices"][0];
    CHECK(choice["finish_reason"] == "content_filter");
    CHECK(choice["content_filter_results"]["hate"]["filtered"] == true);
    auto streamed = run_call(client, chat_request(url_of(up, dialect::openai, "finish=content_filter"), true));
    auto events = parse_sse(streamed->body);
    CHECK(json::parse(events[events.size() - 2].data)["choices"][0]["finish_reason"] == "content_filter");
    auto refusal = run_call(client, chat_request(url_of(up, dialect::anthropic, "finish=content_filter")));
    CHECK(json::parse(refusal->body)["stop_reason"] == "refusal");
  }
}

TEST_CASE("upstream: a scripted sequence fails the first calls of a key then recovers", "[upstream]") {
  upstream_process up;
  http_client client;
  auto status_of = [&](const std::string& scenario) {
    return run_call(client, chat_request(url_of(up, dialect::openai, scenario)))->result.status;
  };
  CHECK(status_of("status=503,fail_first=2,key=dep-a") == 503);
  CHECK(status_of("status=429,fail_first=1,key=dep-b") == 429);
  CHECK(status_of("status=503,fail_first=2,key=dep-a") == 503);
  CHECK(status_of("status=503,fail_first=2,key=dep-a") == 200);
  CHECK(status_of("status=429,fail_first=1,key=dep-b") == 200);
  // Failures of other kinds script the same way. (A fresh client: curl
  // silently sends a request again on a new connection when a reused one
  // dies before any answer, which would hide the first reset.)
  http_client fresh;
  auto reset = run_call(fresh, chat_request(url_of(up, dialect::openai, "reset,fail_first=1,key=dep-c")));
  CHECK_FALSE(reset->result.transport_ok);
  CHECK(status_of("reset,fail_first=1,key=dep-c") == 200);
  up.reset();
  CHECK(status_of("status=503,fail_first=2,key=dep-a") == 503);
  CHECK(up.calls().size() == 1);
}

TEST_CASE("upstream: Azure path, query and deployment are captured", "[upstream]") {
  upstream_process up;
  http_client client;
  auto req = chat_request(url_of(up, dialect::azure, "slow,delay_ms=10"));
  req.headers.push_back({"api-key", "azure-key-1", true});
  auto rec = run_call(client, req);
  auto body = json::parse(rec->body);
  CHECK(body["prompt_filter_results"][0]["prompt_index"] == 0);
  auto calls = up.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0]["dialect"] == "azure");
  CHECK(calls[0]["path"] == "/scenario/slow,delay_ms=10/openai/deployments/my-gpt4/chat/completions?api-version=2024-02-01");
  CHECK(calls[0]["headers"]["api-key"] == "azure-key-1");
  CHECK(calls[0]["scenario"] == json({{"slow", true}, {"delay_ms", "10"}}));
}

TEST_CASE("upstream: an unknown path is a 404 in OpenAI's shape", "[upstream]") {
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(up.base_url() + "/v1/embeddingz"));
  CHECK(rec->result.status == 404);
  CHECK(json::parse(rec->body)["error"]["code"] == "unknown_url");
}
