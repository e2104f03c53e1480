// The gateway's HTTP rules without sockets (src/server/gateway_http.hpp).

#include "server/gateway_http.hpp"

#include <catch2/catch.hpp>

using namespace switchyard;
using namespace switchyard::server;
using nlohmann::json;

TEST_CASE("http rules: the key check takes the key from each header") {
  const key_check k(secret("sk-abc"));
  CHECK(k.required());
  CHECK(k.accepts("Bearer sk-abc", std::nullopt, std::nullopt));
  CHECK(k.accepts("bearer  sk-abc ", std::nullopt, std::nullopt));
  CHECK(k.accepts(std::nullopt, "sk-abc", std::nullopt));
  CHECK(k.accepts(std::nullopt, std::nullopt, "sk-abc"));
  // A wrong Authorization does not hide a right api-key.
  CHECK(k.accepts("Bearer nope", "sk-abc", std::nullopt));
  CHECK_FALSE(k.accepts(std::nullopt, std::nullopt, std::nullopt));
  CHECK_FALSE(k.accepts("sk-abc", std::nullopt, std::nullopt)); // no scheme
  CHECK_FALSE(k.accepts("Basic sk-abc", std::nullopt, std::nullopt));
  CHECK_FALSE(k.accepts("Bearer sk-ab", "sk-abcd", "SK-ABC"));
  CHECK_FALSE(k.accepts("Bearer ", "", ""));
  const key_check open{secret()};
  CHECK_FALSE(open.required());
  CHECK(open.accepts(std::nullopt, std::nullopt, std::nullopt));
}

TEST_CASE("http rules: errors have OpenAI's shape; 429 carries Retry-After rounded up") {
  auto e = router_error::make(error_kind::rate_limit, "slow down", 2.2);
  const auto a = error_answer(e);
  CHECK(a.status == 429);
  CHECK(json::parse(a.body)
        == json{{"error",
                 {{"message", "slow down"},
                  {"type", "RateLimitError"},
                  {"param", nullptr},
                  {"code", "429"}}}});
  REQUIRE(a.headers.size() == 1);
  CHECK(a.headers[0] == std::pair<std::string, std::string>("retry-after", "3"));
  e.retry_after_s = 0.01;
  CHECK(error_answer(e).headers[0].second == "1");
  // Not a 429, or no time known: no header.
  CHECK(error_answer(router_error::make(error_kind::internal_server, "x", 5.0)).headers.empty());
  CHECK(error_answer(router_error::make(error_kind::rate_limit, "x")).headers.empty());
}

TEST_CASE("http rules: bodies are parsed and bad ones named") {
  const auto good = parse_body(R"({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                   "stream": true, "temperature": 0.5})");
  REQUIRE(good.request);
  CHECK(good.request->model == "m");
  CHECK(good.request->stream);

  const auto syntax = parse_body(R"({"model": "m", "secret-ish": "abc)");
  REQUIRE(syntax.error);
  CHECK(syntax.error->status == 400);
  const auto msg = json::parse(syntax.error->body)["error"]["message"].get<std::string>();
  CHECK(msg.rfind("body: not valid JSON: line 1, column ", 0) == 0);
  CHECK(msg.find("abc") == std::string::npos); // the input is not echoed

  const auto field = parse_body(R"({"model": "m", "messages": [{"role": 5, "content": "x"}]})");
  REQUIRE(field.error);
  const auto err = json::parse(field.error->body)["error"];
  CHECK(err["param"] == "messages[0].role");
  CHECK(err["message"].get<std::string>().rfind("body.messages[0].role: ", 0) == 0);

  const auto deep = parse_body(std::string(10000, '[') + std::string(10000, ']'));
  REQUIRE(deep.error);
  CHECK(json::parse(deep.error->body)["error"]["message"].get<std::string>().find("nested too deeply")
        != std::string::npos);
  // Brackets inside strings (escaped quotes too) are text, not nesting.
  const auto text = parse_body(R"({"model": "m", "messages": [{"role": "user", "content": "\"[)"
                               + std::string(500, '[') + R"("}]})");
  CHECK(text.request);
  // 128 levels pass the byte scan, and parse_chat_request then judges the
  // tree (its own limit is the same); 129 do not.
  const auto nested = [](std::size_t levels) {
    return R"({"model": "m", "messages": [{"role": "user", "content": "x"}], "metadata": )"
           + std::string(levels, '[') + std::string(levels, ']') + "}";
  };
  const auto at_limit = parse_body(nested(126));
  CHECK(at_limit.request);
  const auto past = parse_body(nested(128));
  REQUIRE(past.error);
  CHECK(json::parse(past.error->body)["error"]["message"].get<std::string>().rfind(
          "body: nested too deeply", 0) == 0);
}

namespace {

// One header's value, or "<none>".
std::string header_in(const header_list& h, const std::string& name) {
  for (const auto& [n, v] : h)
    if (n == name)
      return v;
  return "<none>";
}

} // namespace

TEST_CASE("http rules: routing headers under both names") {
  route_result r;
  r.ok = true;
  r.deployment_id = "d-2";
  r.model_group = "g";
  r.fallback_depth = 1;
  r.attempts = {{"d-1", "g", error_kind::internal_server, 100},
                {"d-1", "g", error_kind::internal_server, 100},
                {"d-2", "g2", std::nullopt, 250}};
  const auto h = route_headers(r, "asked", 500);
  const auto get = [&h](const std::string& name) { return header_in(h, name); };
  CHECK(get("x-switchyard-deployment-id") == "d-2");
  CHECK(get("x-litellm-model-id") == "d-2");
  CHECK(get("x-switchyard-model-group") == "g");
  CHECK(get("x-switchyard-attempts") == "3");
  CHECK(get("x-switchyard-fallback-depth") == "1");
  CHECK(get("x-litellm-attempted-fallbacks") == "1");
  CHECK(get("x-litellm-attempted-retries") == "1");
  CHECK(get("x-litellm-response-duration-ms") == "500.000");
  CHECK(get("x-switchyard-overhead-ms") == "50.000");
  CHECK(get("x-litellm-overhead-duration-ms") == "50.000");
  // A failure names the group asked for, and the failing deployment.
  route_result f;
  f.error = router_error::make(error_kind::rate_limit, "x");
  f.error.deployment_id = "d-9";
  const auto fh = route_headers(f, "asked", 1);
  CHECK(fh[0] == std::pair<std::string, std::string>("x-switchyard-deployment-id", "d-9"));
  CHECK(fh[2] == std::pair<std::string, std::string>("x-switchyard-model-group", "asked"));
}

TEST_CASE("http rules: a stream's headers come from its commit") {
  stream_commit c;
  c.deployment_id = "d-2";
  c.model_group = "g";
  c.attempts = 3;
  c.fallback_depth = 1;
  c.upstream_ms = 40;
  const auto h = commit_headers(c, "asked", 45.5);
  const auto get = [&h](const std::string& name) { return header_in(h, name); };
  CHECK(get("x-switchyard-deployment-id") == "d-2");
  CHECK(get("x-litellm-model-id") == "d-2");
  CHECK(get("x-litellm-model-group") == "g");
  CHECK(get("x-switchyard-attempts") == "3");
  CHECK(get("x-switchyard-fallback-depth") == "1");
  CHECK(get("x-litellm-attempted-retries") == "1");
  CHECK(get("x-litellm-attempted-fallbacks") == "1");
  CHECK(get("x-litellm-response-duration-ms") == "45.500");
  CHECK(get("x-switchyard-overhead-ms") == "5.500");
  // No group in the commit: the one asked for.
  c.model_group.clear();
  CHECK(commit_headers(c, "asked", 1)[2]
        == std::pair<std::string, std::string>("x-switchyard-model-group", "asked"));
}

TEST_CASE("http rules: a whole answer replays as chunks, tool calls included") {
  route_result r;
  r.ok = true;
  r.response = json::parse(R"({"id": "c1", "object": "chat.completion", "created": 5, "model": "m",
    "choices": [{"index": 0, "finish_reason": "tool_calls",
      "message": {"role": "assistant", "content": null,
        "tool_calls": [{"id": "t1", "type": "function",
                        "function": {"name": "f", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}})");
  const auto chunks = replay_chunks(r);
  REQUIRE(chunks.size() == 2);
  CHECK(chunks[0]["object"] == "chat.completion.chunk");
  CHECK(chunks[0]["id"] == "c1");
  CHECK(chunks[0]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0);
  CHECK(chunks[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "f");
  CHECK(chunks[1]["choices"][0]["finish_reason"] == "tool_calls");
  CHECK(chunks[1]["usage"]["total_tokens"] == 3);
  CHECK(sse_event(json{{"a", 1}}) == "data: {\"a\":1}\n\n");
}

TEST_CASE("http rules: loopback hosts") {
  CHECK(is_loopback_host("127.0.0.1") == true);
  CHECK(is_loopback_host("127.8.9.10") == true);
  CHECK(is_loopback_host("localhost") == true);
  CHECK(is_loopback_host("::1") == true);
  CHECK(is_loopback_host("::ffff:127.0.0.1") == true);
  CHECK(is_loopback_host("0.0.0.0") == false);
  CHECK(is_loopback_host("::") == false);
  CHECK(is_loopback_host("10.1.2.3") == false);
  CHECK_FALSE(is_loopback_host("example.com").has_value());
}

TEST_CASE("http rules: a completion nobody read goes out as the upstream's text") {
  const std::string text = R"({"object":"chat.completion", "id":"c-1","choices":[]})";
  route_result r;
  r.ok = true;
  r.response = lazy_json::from_text(text);
  CHECK(completion_body(r) == text);
  // Once read (an embedder's hook, say), it is the tree that is sent.
  CHECK(r.response["id"] == "c-1");
  CHECK(completion_body(r) == json::parse(text).dump());
}

TEST_CASE("http rules: durations have three decimals, as printf's %.3f") {
  CHECK(milliseconds_text(0) == "0.000");
  CHECK(milliseconds_text(0.0004) == "0.000");
  CHECK(milliseconds_text(0.0006) == "0.001");
  CHECK(milliseconds_text(12.3456) == "12.346");
  CHECK(milliseconds_text(999.9996) == "1000.000");
  CHECK(milliseconds_text(86400000.25) == "86400000.250");
  CHECK(milliseconds_text(-1.5) == "-1.500");
  CHECK(milliseconds_text(1e13) == "10000000000000.000");
}
