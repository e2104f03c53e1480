// Non-streamed answers and errors of each dialect, on recorded bodies
// (TRANSPORT.md sections 3-4).

#include "support/provider_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using nlohmann::json;

namespace {

std::shared_ptr<const provider_endpoint> openai_ep() {
  return endpoint_for({{"model", "openai/gpt-4o"}, {"api_key", "sk-live-0123456789abcdef"}});
}
std::shared_ptr<const provider_endpoint> azure_ep() {
  return endpoint_for({{"model", "azure/d"}, {"api_base", "https://r.openai.azure.com"},
                       {"api_key", "azure-key-0123456789"}});
}
std::shared_ptr<const provider_endpoint> anthropic_ep() {
  return endpoint_for({{"model", "anthropic/claude"}, {"api_key", "sk-ant-0123456789"}});
}

router_error error_of(const provider_endpoint& ep, long status, const std::string& body,
                      const http_headers& headers = {}) {
  const auto answer = decode_response(ep, status, headers, body, fixed_now());
  REQUIRE_FALSE(answer.ok);
  return answer.error;
}

} // namespace

TEST_CASE("provider response: an openai chat.completion keeps every choice, tool_calls, "
          "usage, id, created, model and system_fingerprint") {
  const std::string body = recorded("openai_completion.json");
  const auto answer = decode_response(*openai_ep(), 200, {}, body, fixed_now());
  REQUIRE(answer.ok);
  CHECK(answer.completion.value() == json::parse(body));
  CHECK(answer.completion["choices"].size() == 2);
  CHECK(answer.completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        == "{\"location\":\"Paris, France\"}");
  CHECK(answer.completion["system_fingerprint"] == "fp_fc9f1d7035");
  CHECK(answer.content.empty());
  CHECK(answer.finish_reason == "tool_calls");
  CHECK(answer.prompt_tokens == 1117u);
  CHECK(answer.completion_tokens == 46u);
}

TEST_CASE("provider response: usage is absent when the provider reported none") {
  const auto answer = decode_response(
    *openai_ep(), 200, {},
    R"({"id":"x","object":"chat.completion","created":1,"model":"m","choices":[
        {"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]})",
    fixed_now());
  REQUIRE(answer.ok);
  CHECK(answer.content == "hi");
  CHECK(answer.finish_reason == "stop");
  CHECK_FALSE(answer.prompt_tokens);
  CHECK_FALSE(answer.completion_tokens);
}

TEST_CASE("provider response: an azure 200 with finish_reason content_filter is a success") {
  const auto answer =
    decode_response(*azure_ep(), 200, {}, recorded("azure_completion_content_filter.json"),
                    fixed_now());
  REQUIRE(answer.ok);
  CHECK(answer.finish_reason == "content_filter");
  CHECK(answer.content == "I can");
  CHECK(answer.prompt_tokens == 20u);
}

TEST_CASE("provider response: an anthropic message becomes a chat.completion") {
  const auto answer =
    decode_response(*anthropic_ep(), 200, {}, recorded("anthropic_message.json"), fixed_now());
  REQUIRE(answer.ok);
  const json expected = json::parse(R"({
    "id": "msg_01Aq9w938a90dw8q", "object": "chat.completion", "created": 1767225600,
    "model": "claude-3-5-sonnet-20241022",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
      "role": "assistant", "content": "I'll check the weather.",
      "tool_calls": [{"id": "toolu_01A09q90qw90lq917835lq9", "type": "function",
        "function": {"name": "get_weather",
                     "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}}]}}],
    "usage": {"prompt_tokens": 572, "completion_tokens": 89, "total_tokens": 661,
              "prompt_tokens_details": {"cached_tokens": 100},
              "cache_creation_input_tokens": 0, "cache_read_input_tokens": 100}})");
  CHECK(answer.completion == expected);
  CHECK(answer.content == "I'll check the weather.");
  CHECK(answer.finish_reason == "tool_calls");
  CHECK(answer.prompt_tokens == 572u);
  CHECK(answer.completion_tokens == 89u);
}

TEST_CASE("provider response: anthropic thinking blocks become reasoning_content") {
  const auto answer = decode_response(*anthropic_ep(), 200, {}, R"({
    "id": "msg_t", "type": "message", "role": "assistant", "model": "claude-3-7-sonnet",
    "content": [{"type": "thinking", "thinking": "Let me add.", "signature": "sig"},
                {"type": "text", "text": "4"}],
    "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 7}})",
                                      fixed_now());
  REQUIRE(answer.ok);
  CHECK(answer.completion["choices"][0]["message"]
        == json({{"role", "assistant"}, {"content", "4"}, {"reasoning_content", "Let me add."}}));
}

TEST_CASE("provider response: anthropic stop_reason map") {
  for (auto [stop, finish] : {std::pair{"end_turn", "stop"}, {"stop_sequence", "stop"},
                              {"max_tokens", "length"}, {"tool_use", "tool_calls"},
                              {"refusal", "content_filter"}}) {
    INFO(stop);
    const json msg = {{"id", "m"}, {"type", "message"}, {"role", "assistant"},
                      {"model", "c"}, {"content", {{{"type", "text"}, {"text", "t"}}}},
                      {"stop_reason", stop}};
    const auto answer = decode_response(*anthropic_ep(), 200, {}, msg.dump(), fixed_now());
    REQUIRE(answer.ok);
    CHECK(answer.finish_reason == finish);
  }
}

TEST_CASE("provider response: a 2xx that is not JSON is an InternalServerError naming the host") {
  const auto e = error_of(*openai_ep(), 200, "<html>gateway</html>");
  CHECK(e.kind == error_kind::internal_server);
  CHECK(e.message == "the answer of https://api.openai.com (HTTP 200) is not a JSON object");
}

TEST_CASE("provider errors: the openai table, message checks before the status") {
  const auto ep_ptr = openai_ep();
  const auto& ep = *ep_ptr;
  struct row {
    long status;
    std::string body;
    error_kind kind;
    int status_out;
  };
  const std::vector<row> rows = {
    {400, recorded("openai_error_context.json"), error_kind::context_window_exceeded, 400},
    {400, recorded("openai_error_content_policy.json"), error_kind::content_policy_violation, 400},
    {400, R"({"error":{"message":"Invalid 'temperature'","type":"invalid_request_error"}})",
     error_kind::bad_request, 400},
    {422, R"({"error":{"message":"unprocessable"}})", error_kind::unprocessable_entity, 422},
    {401, recorded("openai_error_invalid_key.json"), error_kind::authentication, 401},
    {403, R"({"error":{"message":"Country not supported"}})", error_kind::permission_denied, 403},
    {404, recorded("openai_error_model_not_found.json"), error_kind::not_found, 404},
    {408, R"({"error":{"message":"request timed out"}})", error_kind::timeout, 408},
    {504, "upstream timed out", error_kind::timeout, 408},
    {429, recorded("openai_error_rate_limit.json"), error_kind::rate_limit, 429},
    {500, R"({"error":{"message":"The server had an error"}})", error_kind::internal_server, 500},
    {502, "<html>Bad gateway</html>", error_kind::bad_gateway, 502},
    {503, R"({"error":{"message":"engine overloaded"}})", error_kind::service_unavailable, 503},
    {418, "I'm a teapot", error_kind::internal_server, 418},
    // A rate-limit message with no conflicting status.
    {500, R"({"error":{"message":"Rate limit exceeded, slow down"}})", error_kind::rate_limit, 429},
    // ... and with one: the 400 stands.
    {400, R"({"error":{"message":"bad value for rate_limit param"}})", error_kind::bad_request, 400},
    // A context-window message wins over a 500.
    {500, R"({"error":{"message":"This model's maximum context length is 8192 tokens"}})",
     error_kind::context_window_exceeded, 400},
  };
  for (const auto& r : rows) {
    INFO(r.status << " " << r.body);
    const auto e = error_of(ep, r.status, r.body);
    CHECK(e.kind == r.kind);
    CHECK(e.status == r.status_out);
    CHECK(e.message.rfind("OpenAIException - " + std::to_string(r.status) + ": ", 0) == 0);
  }
  CHECK(error_of(ep, 400, recorded("openai_error_context.json")).message
        == "OpenAIException - 400: This model's maximum context length is 128000 tokens. "
           "However, your messages resulted in 130412 tokens. Please reduce the length of "
           "the messages.");
}

TEST_CASE("provider errors: a key the provider echoes is redacted") {
  const auto e = error_of(*openai_ep(), 401, recorded("openai_error_invalid_key.json"));
  CHECK(e.message == "OpenAIException - 401: Incorrect API key provided: sk-<redacted>. You can "
                     "find your API key at https://platform.openai.com/account/api-keys.");
  // Our own key, however it is echoed, and bearer tokens.
  const auto own = error_of(*azure_ep(), 401,
                            R"({"error":{"message":"key azure-key-0123456789 is bad; got Bearer abc.def"}})");
  CHECK(own.message == "AzureException - 401: key <redacted> is bad; got Bearer <redacted>");
}

TEST_CASE("provider errors: azure content policy in innererror, and its rate limit") {
  const auto policy = error_of(*azure_ep(), 400, recorded("azure_error_content_filter.json"));
  CHECK(policy.kind == error_kind::content_policy_violation);
  CHECK(policy.status == 400);
  CHECK(policy.message.rfind("AzureException - 400: The response was filtered due to the "
                             "prompt triggering Azure OpenAI's content management policy.",
                             0) == 0);
  const auto innererror_only = error_of(
    *azure_ep(), 400,
    R"({"error":{"message":"blocked","innererror":{"code":"ResponsibleAIPolicyViolation"}}})");
  CHECK(innererror_only.kind == error_kind::content_policy_violation);
  const auto limited = error_of(*azure_ep(), 429, recorded("azure_error_rate_limit.json"),
                                {{"retry-after", "6"}, {"x-ms-retry-after-ms", "6000"}});
  CHECK(limited.kind == error_kind::rate_limit);
  CHECK(limited.retry_after_s == Approx(6.0));
}

TEST_CASE("provider errors: the anthropic table") {
  const auto ep_ptr = anthropic_ep();
  const auto& ep = *ep_ptr;
  struct row {
    long status;
    std::string body;
    error_kind kind;
  };
  const std::vector<row> rows = {
    {400, recorded("anthropic_error_prompt_too_long.json"), error_kind::context_window_exceeded},
    {400, recorded("anthropic_error_content_filter.json"), error_kind::content_policy_violation},
    {400, R"({"type":"error","error":{"type":"invalid_request_error","message":"messages: required"}})",
     error_kind::bad_request},
    {413, R"({"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum size"}})",
     error_kind::bad_request},
    {401, recorded("anthropic_error_auth.json"), error_kind::authentication},
    {403, R"({"type":"error","error":{"type":"permission_error","message":"no access"}})",
     error_kind::permission_denied},
    {404, R"({"type":"error","error":{"type":"not_found_error","message":"model: claude-x"}})",
     error_kind::not_found},
    {429, R"({"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}})",
     error_kind::rate_limit},
    {500, R"({"type":"error","error":{"type":"api_error","message":"Internal server error"}})",
     error_kind::internal_server},
    {529, recorded("anthropic_error_overloaded.json"), error_kind::internal_server},
    {503, "upstream connect error", error_kind::service_unavailable},
    {504, "gateway timeout", error_kind::timeout},
  };
  for (const auto& r : rows) {
    INFO(r.status << " " << r.body);
    const auto e = error_of(ep, r.status, r.body);
    CHECK(e.kind == r.kind);
    CHECK(e.status == status_of(r.kind));
    CHECK(e.message.rfind("AnthropicException - " + std::to_string(r.status) + ": ", 0) == 0);
  }
  CHECK(error_of(ep, 529, recorded("anthropic_error_overloaded.json")).message
        == "AnthropicException - 529: Overloaded");
}

TEST_CASE("provider errors: Retry-After in each form, capped at one hour") {
  const auto now = fixed_now();
  CHECK_FALSE(retry_after_seconds({}, now));
  CHECK(*retry_after_seconds({{"retry-after-ms", "1500"}}, now) == Approx(1.5));
  CHECK(*retry_after_seconds({{"x-ms-retry-after-ms", "250"}}, now) == Approx(0.25));
  CHECK(*retry_after_seconds({{"Retry-After", "7"}}, now) == Approx(7));
  CHECK(*retry_after_seconds({{"retry-after", "2.5"}}, now) == Approx(2.5));
  // retry-after-ms first, as openai-python reads it.
  CHECK(*retry_after_seconds({{"retry-after", "9"}, {"retry-after-ms", "100"}}, now)
        == Approx(0.1));
  // An HTTP date: fixed_now() is Thu, 01 Jan 2026 00:00:00 GMT.
  CHECK(*retry_after_seconds({{"retry-after", "Thu, 01 Jan 2026 00:00:30 GMT"}}, now)
        == Approx(30));
  CHECK(*retry_after_seconds({{"retry-after", "Thursday, 01-Jan-26 00:01:00 GMT"}}, now)
        == Approx(60));
  CHECK(*retry_after_seconds({{"retry-after", "Thu Jan  1 00:00:10 2026"}}, now) == Approx(10));
  CHECK(*retry_after_seconds({{"retry-after", "Wed, 31 Dec 2025 23:00:00 GMT"}}, now) == 0);
  CHECK(*retry_after_seconds({{"retry-after", "86400"}}, now) == 3600);
  CHECK(*retry_after_seconds({{"retry-after-ms", "99999999"}}, now) == 3600);
  CHECK(*retry_after_seconds({{"retry-after", "Fri, 02 Jan 2026 00:00:00 GMT"}}, now) == 3600);
  CHECK_FALSE(retry_after_seconds({{"retry-after", "soon"}}, now));
  CHECK_FALSE(retry_after_seconds({{"retry-after", "-5"}}, now));
  // Unusable ms falls through to retry-after.
  CHECK(*retry_after_seconds({{"retry-after-ms", "x"}, {"retry-after", "3"}}, now) == Approx(3));
  // The error carries it.
  const auto e = error_of(*openai_ep(), 429, recorded("openai_error_rate_limit.json"),
                          {{"retry-after", "20"}});
  CHECK(e.retry_after_s == Approx(20));
}

TEST_CASE("provider errors: no HTTP answer is an APIConnectionError (or Timeout) naming the "
          "host and cause") {
  const auto ep = endpoint_for({{"model", "hosted_vllm/m"},
                                {"api_base", "https://user:pw@127.0.0.1:9443/v1"}});
  CHECK(ep->host == "https://127.0.0.1:9443");
  CHECK(ep->display_url == "https://127.0.0.1:9443/v1/chat/completions");
  const auto refused = connection_error(*ep, "connection refused", false);
  CHECK(refused.kind == error_kind::api_connection);
  CHECK(refused.status == 500);
  CHECK(refused.message == "APIConnectionError: cannot reach https://127.0.0.1:9443: "
                           "connection refused");
  const auto tls = connection_error(*ep, "certificate verify failed", false);
  CHECK(tls.message.find("certificate verify failed") != std::string::npos);
  const auto slow = connection_error(*ep, "operation timed out", true);
  CHECK(slow.kind == error_kind::timeout);
  CHECK(slow.message == "Timeout: no answer from https://127.0.0.1:9443 in time: "
                        "operation timed out");
}

TEST_CASE("provider response: an openai answer is read in one pass and kept as its text, "
          "with what the parsed tree would give") {
  struct expected {
    const char* body;
    std::string content, finish_reason;
    std::optional<std::uint32_t> prompt, completion;
    bool kept_as_text;
  };
  const std::vector<expected> cases = {
    {R"({"id":"a","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}})",
     "hi", "stop", 9u, 1u, true},
    // null values read as empty, as string_of reads them
    {R"({"choices":[{"message":{"content":null},"finish_reason":null}]})", "", "", {}, {}, true},
    // only the first choice, only the message's own content
    {R"({"choices":[{"message":{"tool_calls":[{"content":"x"}],"audio":{"content":"y"},"content":"real"},"logprobs":{"content":[{"t":1}]},"finish_reason":"length"},{"message":{"content":"second"},"finish_reason":"stop"}]})",
     "real", "length", {}, {}, true},
    // a first choice that is not an object: nothing read from the others
    {R"({"choices":[1,{"message":{"content":"second"},"finish_reason":"stop"}]})", "", "", {}, {}, true},
    {R"({"choices":[[],{"message":{"content":"second"}}]})", "", "", {}, {}, true},
    // choices and usage of the wrong type
    {R"({"choices":{"message":{"content":"x"}},"usage":[{"prompt_tokens":3}]})", "", "", {}, {}, true},
    // counts that are not unsigned integers; a count past 32 bits
    {R"({"usage":{"prompt_tokens":-1,"completion_tokens":2.5,"prompt_tokens_details":{"cached_tokens":7}}})", "", "", {}, {}, true},
    {R"({"usage":{"prompt_tokens":99999999999,"completion_tokens":0}})", "", "", 4294967295u, 0u, true},
    // a non-string content or finish_reason
    {R"({"choices":[{"message":{"content":["a"]},"finish_reason":7}]})", "", "", {}, {}, true},
    // keys given twice: the parsed tree keeps the last, and the full
    // decoder takes the text
    {R"({"usage":{"prompt_tokens":1},"usage":{"prompt_tokens":2}})", "", "", 2u, {}, false},
    {R"({"choices":[{"message":{"content":"a","content":"b"}}]})", "b", "", {}, {}, false},
    {R"({"usage":{"prompt_tokens":1,"prompt_tokens":-1}})", "", "", {}, {}, false},
  };
  for (const auto& c : cases) {
    INFO(c.body);
    const auto answer = decode_response(*openai_ep(), 200, {}, c.body, fixed_now());
    REQUIRE(answer.ok);
    CHECK(answer.content == c.content);
    CHECK(answer.finish_reason == c.finish_reason);
    CHECK(answer.prompt_tokens == c.prompt);
    CHECK(answer.completion_tokens == c.completion);
    if (c.kept_as_text) {
      REQUIRE(answer.completion.text() != nullptr);
      CHECK(*answer.completion.text() == c.body);
    } else {
      CHECK(answer.completion.text() == nullptr);
    }
    CHECK(answer.completion.value() == json::parse(c.body));
  }
}

TEST_CASE("provider response: an openai answer that is an error, not JSON or not an object "
          "takes the full decoder") {
  for (const char* body : {R"({"choices":[],"error":{"message":"overloaded","type":"server_error"}})",
                           R"({"choices":[{"message":{"content":"x"}}])", R"([{"choices":[]}])",
                           R"("text")", R"({"a":1} trailing)"}) {
    INFO(body);
    const auto answer = decode_response(*openai_ep(), 200, {}, body, fixed_now());
    CHECK_FALSE(answer.ok);
    CHECK_FALSE(answer.error.message.empty());
  }
}
