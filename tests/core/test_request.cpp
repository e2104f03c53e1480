#include "switchyard/request.hpp"

#include "switchyard/config.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace switchyard;
using nlohmann::json;

namespace {

// The error message parse_chat_request gives (fails the test if it accepts).
std::string error_of(const json& body, const std::string& prefix = "body") {
  const auto parsed = parse_chat_request(body, prefix);
  if (parsed.request) {
    FAIL("expected an error for: " << body.dump());
    return {};
  }
  CHECK(parsed.error.kind == error_kind::bad_request);
  CHECK(parsed.error.status == 400);
  return parsed.error.message;
}

json user_says(const char* text) {
  return json::array({{{"role", "user"}, {"content", text}}});
}

} // namespace

TEST_CASE("request: a minimal body gets the defaults") {
  const auto parsed = parse_chat_request({{"model", "gpt-4o"}, {"messages", user_says("hi")}});
  REQUIRE(parsed.request);
  const auto& r = *parsed.request;
  CHECK(r.model == "gpt-4o");
  CHECK(r.messages == user_says("hi"));
  CHECK_FALSE(r.mock.is_set());
  CHECK_FALSE(r.mock_testing_context_fallbacks);
  CHECK_FALSE(r.num_retries);
  CHECK_FALSE(r.disable_fallbacks);
  CHECK_FALSE(r.timeout_s);
  CHECK_FALSE(r.stream);
  CHECK_FALSE(r.cooldown_time_s);
}

TEST_CASE("request: every optional field is read, unknown keys are ignored") {
  const auto parsed = parse_chat_request(json::parse(R"({
    "model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}],
    "mock_response": "litellm.RateLimitError", "mock_testing_context_fallbacks": true,
    "num_retries": 0, "disable_fallbacks": true, "timeout": 12.5, "stream": true, "cooldown_time": 0,
    "temperature": 0.2, "max_tokens": 10, "user": "u1"})"));
  REQUIRE(parsed.request);
  const auto& r = *parsed.request;
  CHECK(r.timeout_s == 12.5);
  CHECK(r.stream);
  CHECK(r.cooldown_time_s == 0.0);
  CHECK(r.mock.kind == mock_spec::mode::fail);
  CHECK(r.mock.error.kind == error_kind::rate_limit);
  CHECK(r.mock_testing_context_fallbacks);
  CHECK(r.num_retries == 0);
  CHECK(r.disable_fallbacks);
}

TEST_CASE("request: a mock_response reply and null optional fields") {
  const auto parsed = parse_chat_request(json::parse(R"({
    "model": "g", "messages": [{"role": "user", "content": "hi"}], "mock_response": "hello",
    "num_retries": null, "disable_fallbacks": null, "mock_testing_context_fallbacks": null,
    "timeout": null, "stream": null, "cooldown_time": null})"));
  REQUIRE(parsed.request);
  CHECK_FALSE(parsed.request->timeout_s);
  CHECK_FALSE(parsed.request->stream);
  CHECK_FALSE(parsed.request->cooldown_time_s);
  CHECK(parsed.request->mock.kind == mock_spec::mode::reply);
  CHECK(parsed.request->mock.content == "hello");
  CHECK_FALSE(parsed.request->num_retries);
}

TEST_CASE("request: content may be parts, or null on an assistant's tool call") {
  const auto parsed = parse_chat_request(json::parse(R"({"model": "g", "messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "u"}}]},
    {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function"}]},
    {"role": "assistant", "tool_calls": [{"id": "c2", "type": "function"}]},
    {"role": "tool", "tool_call_id": "c1", "content": "42"}]})"));
  CHECK(parsed.request);
}

TEST_CASE("request: each invalid field is reported with its path") {
  const json ok_messages = user_says("hi");
  const auto body = [&](json extra) {
    json b = {{"model", "g"}, {"messages", ok_messages}};
    for (auto& [k, v] : extra.items())
      b[k] = v;
    return b;
  };
  const auto with_message = [&](json message) {
    return body({{"messages", json::array({ok_messages[0], message})}});
  };
  CHECK(error_of(json::array()) == "body: expected a JSON object");
  CHECK(error_of("text") == "body: expected a JSON object");
  CHECK(error_of(nullptr) == "body: expected a JSON object");
  CHECK(error_of({{"messages", ok_messages}}) == "body.model: is required");
  CHECK(error_of(body({{"model", ""}})) == "body.model: expected a non-empty string");
  CHECK(error_of(body({{"model", 5}})) == "body.model: expected a non-empty string");
  CHECK(error_of({{"model", "g"}}) == "body.messages: is required");
  CHECK(error_of(body({{"messages", json::array()}})) == "body.messages: expected a non-empty array");
  CHECK(error_of(body({{"messages", "hi"}})) == "body.messages: expected a non-empty array");
  CHECK(error_of(with_message(5)) == "body.messages[1]: expected an object");
  CHECK(error_of(with_message({{"role", 3}, {"content", "x"}}))
        == "body.messages[1].role: expected a string");
  CHECK(error_of(with_message({{"content", "x"}})) == "body.messages[1].role: is required");
  CHECK(error_of(with_message({{"role", "user"}})) == "body.messages[1].content: is required");
  CHECK(error_of(with_message({{"role", "user"}, {"content", nullptr}}))
        == "body.messages[1].content: expected a string or an array of content parts");
  CHECK(error_of(with_message({{"role", "assistant"}, {"content", nullptr}}))
        == "body.messages[1].content: expected a string or an array of content parts");
  CHECK(error_of(with_message({{"role", "user"}, {"content", 5}}))
        == "body.messages[1].content: expected a string or an array of content parts");
  CHECK(error_of(with_message({{"role", "user"}, {"content", {5}}}))
        == "body.messages[1].content[0]: expected an object");
  CHECK(error_of(with_message({{"role", "user"}, {"content", {{{"text", "x"}}}}}))
        == "body.messages[1].content[0].type: is required");
  CHECK(error_of(body({{"mock_response", 5}}))
        == "body.mock_response: expected a string, an {\"error\": ...} or a {\"content\": ...} object");
  CHECK(error_of(body({{"mock_response", "litellm.TeapotError"}}))
        == "body.mock_response: unknown error kind; expected one of: " + error_kind_names());
  CHECK(error_of(body({{"mock_response", {{"error", "RateLimitError"}, {"retry_after", "2"}}}}))
        == "body.mock_response.retry_after: expected a number >= 0");
  CHECK(error_of(body({{"mock_testing_context_fallbacks", "yes"}}))
        == "body.mock_testing_context_fallbacks: expected true or false");
  CHECK(error_of(body({{"num_retries", -1}})) == "body.num_retries: expected an integer >= 0");
  CHECK(error_of(body({{"num_retries", 1.5}})) == "body.num_retries: expected an integer >= 0");
  CHECK(error_of(body({{"num_retries", "2"}})) == "body.num_retries: expected an integer >= 0");
  CHECK(error_of(body({{"disable_fallbacks", 1}})) == "body.disable_fallbacks: expected true or false");
  CHECK(error_of(body({{"timeout", 0}})) == "body.timeout: expected a number > 0");
  CHECK(error_of(body({{"timeout", -1}})) == "body.timeout: expected a number > 0");
  CHECK(error_of(body({{"timeout", "30"}})) == "body.timeout: expected a number > 0");
  CHECK(error_of(body({{"stream", "true"}})) == "body.stream: expected true or false");
  CHECK(error_of(body({{"stream", 1}})) == "body.stream: expected true or false");
  CHECK(error_of(body({{"cooldown_time", -0.5}})) == "body.cooldown_time: expected a number >= 0");
  CHECK(error_of(body({{"cooldown_time", false}})) == "body.cooldown_time: expected a number >= 0");
}

TEST_CASE("request: num_retries is capped at max_num_retries") {
  const json base = {{"model", "g"}, {"messages", user_says("hi")}};
  json at_cap = base;
  at_cap["num_retries"] = max_num_retries;
  const auto parsed = parse_chat_request(at_cap);
  REQUIRE(parsed.request);
  CHECK(parsed.request->num_retries == max_num_retries);
  json over = base;
  over["num_retries"] = 1000000;
  CHECK(error_of(over) == "body.num_retries: expected an integer <= " + std::to_string(max_num_retries));
}

TEST_CASE("request: a request built in code is validated as a parsed one is") {
  chat_request ok;
  ok.model = "g";
  ok.messages = user_says("hi");
  CHECK_FALSE(validate_chat_request(ok));

  const auto error_for = [&](auto change) {
    chat_request r = ok;
    change(r);
    const auto e = validate_chat_request(r);
    if (!e) {
      FAIL("expected an error");
      return std::string();
    }
    CHECK(e->kind == error_kind::bad_request);
    CHECK(e->status == 400);
    return e->message;
  };
  CHECK(error_for([](chat_request& r) { r.model.clear(); })
        == "request.model: expected a non-empty string");
  CHECK(error_for([](chat_request& r) { r.messages = json::array(); })
        == "request.messages: expected a non-empty array");
  CHECK(error_for([](chat_request& r) { r.messages = json::object(); })
        == "request.messages: expected a non-empty array");
  CHECK(error_for([](chat_request& r) { r.messages = json::array({{{"role", "user"}}}); })
        == "request.messages[0].content: is required");
  CHECK(error_for([](chat_request& r) { r.num_retries = -1; })
        == "request.num_retries: expected an integer >= 0");
  CHECK(error_for([](chat_request& r) { r.num_retries = max_num_retries + 1; })
        == "request.num_retries: expected an integer <= " + std::to_string(max_num_retries));
  CHECK(error_for([](chat_request& r) { r.timeout_s = 0.0; })
        == "request.timeout: expected a number > 0");
  CHECK(error_for([](chat_request& r) { r.timeout_s = std::nan(""); })
        == "request.timeout: expected a number > 0");
  CHECK(error_for([](chat_request& r) { r.cooldown_time_s = -1.0; })
        == "request.cooldown_time: expected a number >= 0");
  CHECK(error_for([](chat_request& r) {
          r.cooldown_time_s = std::numeric_limits<double>::infinity();
        }) == "request.cooldown_time: expected a number >= 0");
  // Nested deeper than a request body may be: refused before it is walked.
  CHECK(error_for([](chat_request& r) {
          json deep = "x";
          for (int i = 0; i < 10000; ++i)
            deep = json::array({std::move(deep)});
          r.messages = json::array({{{"role", "user"}, {"content", std::move(deep)}}});
        }).find("request.messages: nested too deeply") == 0);
  // Plain messages (string role and content, plain values) pass without
  // the full walk; anything else is still checked in full.
  chat_request plain = ok;
  plain.messages = json::array({{{"role", "system"}, {"content", "be brief"}, {"name", "s"}},
                                {{"role", "user"}, {"content", ""}, {"weight", 1}}});
  CHECK_FALSE(validate_chat_request(plain));
  CHECK(error_for([](chat_request& r) {
          r.messages = json::array({{{"role", 7}, {"content", "hi"}}});
        }) == "request.messages[0].role: expected a string");
  CHECK(error_for([](chat_request& r) {
          r.messages = json::array({{{"role", "user"}, {"content", "hi"}},
                                    {{"content", "hi"}}});
        }) == "request.messages[1].role: is required");
  CHECK(error_for([](chat_request& r) {
          r.messages = json::array({{{"role", "user"}, {"content", "hi"}}, "hi"});
        }) == "request.messages[1]: expected an object");
  CHECK(error_for([](chat_request& r) {
          r.messages = json::array(
            {{{"role", "user"}, {"content", json::array({{{"text", "hi"}}})}}});
        }) == "request.messages[0].content[0].type: is required");
  CHECK(error_for([](chat_request& r) {
          json deep = "x";
          for (int i = 0; i < 10000; ++i)
            deep = json::array({std::move(deep)});
          r.messages = json::array({{{"role", "user"}, {"content", "hi"}, {"extra", std::move(deep)}}});
        }).find("request.messages: nested too deeply") == 0);
  // The first problem in field order.
  CHECK(error_for([](chat_request& r) {
          r.model.clear();
          r.num_retries = -1;
        }) == "request.model: expected a non-empty string");
}

TEST_CASE("request: stream false, an integer timeout and a fractional cooldown_time") {
  const auto parsed = parse_chat_request(json::parse(R"({
    "model": "g", "messages": [{"role": "user", "content": "hi"}],
    "stream": false, "timeout": 30, "cooldown_time": 0.25})"));
  REQUIRE(parsed.request);
  CHECK_FALSE(parsed.request->stream);
  CHECK(parsed.request->timeout_s == 30.0);
  CHECK(parsed.request->cooldown_time_s == 0.25);
}

TEST_CASE("request: the first problem is reported, under the given prefix") {
  CHECK(error_of({{"model", 1}, {"messages", 2}}, "request") == "request.model: expected a non-empty string");
}

TEST_CASE("request: bad input never throws") {
  const json bodies[] = {
    json::parse(R"({"model": ["x"], "messages": {"role": "user"}})"),
    json::parse(R"({"model": "g", "messages": [[], null, 1, "x", {"role": null, "content": {}}]})"),
    json::parse(R"({"model": "g", "messages": [{"role": "user", "content": [null, [], {"type": 1}]}]})"),
    json::parse(R"({"model": "g", "messages": [{"role": "user", "content": "x"}], "mock_response": {"error": null}})"),
    json::parse(R"({"model": "g", "messages": [{"role": "user", "content": "x"}], "num_retries": 1e300})"),
    json::parse(R"({"model": "g", "messages": [{"role": "user", "content": "x"}], "num_retries": 18446744073709551615})"),
    json::parse(R"({"model": "g", "messages": [{"role": "user", "content": "x"}], "num_retries": -9223372036854775808})"),
  };
  for (const auto& b : bodies) {
    INFO(b.dump());
    parsed_request parsed;
    REQUIRE_NOTHROW(parsed = parse_chat_request(b));
    CHECK_FALSE(parsed.request);
  }
}
