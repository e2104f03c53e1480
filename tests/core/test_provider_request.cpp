// The request each dialect sends upstream (TRANSPORT.md sections 1-3).

#include "support/provider_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using nlohmann::json;

namespace {

json body_of(const upstream_request& r) {
  REQUIRE(r.ok);
  return json::parse(r.http.body);
}

} // namespace

TEST_CASE("provider request: openai gets the caller's body with the prefix removed, "
          "router keys stripped and defaults under the caller's keys") {
  const auto ep = endpoint_for({{"model", "openai/gpt-4o"},
                                {"api_key", "sk-test-openai-key"},
                                {"temperature", 0.2},
                                {"max_tokens", 100},
                                {"weight", 3},
                                {"rpm", 60},
                                {"num_retries", 1},
                                {"timeout", 10}});
  CHECK(ep->url == "https://api.openai.com/v1/chat/completions");
  CHECK(ep->host == "https://api.openai.com");
  CHECK(ep->param_defaults == json({{"temperature", 0.2}, {"max_tokens", 100}}));

  const json tools = json::parse(R"([{"type":"function","function":{"name":"f",
      "parameters":{"type":"object","properties":{}}}}])");
  const auto req = request_with(user_says("hi"),
                                {{"temperature", 0.7},
                                 {"tools", tools},
                                 {"tool_choice", "auto"},
                                 {"seed", 7},
                                 {"totally_new_key", {{"x", 1}}},
                                 {"mock_response", "never sent"},
                                 {"num_retries", 3},
                                 {"timeout", 5},
                                 {"metadata", {{"trace", "t"}}},
                                 {"api_key", "sk-caller-should-not-pass"},
                                 {"stream_options", {{"include_usage", true}}}});
  const auto built = build_upstream_request(*ep, req, false);
  CHECK(built.http.method == "POST");
  CHECK(built.http.url == "https://api.openai.com/v1/chat/completions");
  CHECK(header(built.http.headers, "authorization") == "Bearer sk-test-openai-key");
  CHECK(is_secret_header(built.http.headers, "authorization"));
  CHECK(header(built.http.headers, "content-type") == "application/json");
  CHECK_FALSE(is_secret_header(built.http.headers, "content-type"));
  CHECK(body_of(built) == json({{"model", "gpt-4o"},
                                {"messages", user_says("hi")},
                                {"temperature", 0.7},
                                {"max_tokens", 100},
                                {"tools", tools},
                                {"tool_choice", "auto"},
                                {"seed", 7},
                                {"totally_new_key", {{"x", 1}}}}));
}

TEST_CASE("provider request: a streamed openai call asks for include_usage and keeps the "
          "caller's other stream_options") {
  const auto ep = endpoint_for({{"model", "gpt-4o-mini"}}, {{"OPENAI_API_KEY", "sk-env-key"}});
  CHECK(ep->upstream_model == "gpt-4o-mini");
  CHECK(header(ep->headers, "authorization") == "Bearer sk-env-key");
  const auto req = request_with(user_says("hi"), {{"stream", true},
                                                  {"stream_options", {{"other", 1}}}});
  const json body = body_of(build_upstream_request(*ep, req, true));
  CHECK(body["stream"] == true);
  CHECK(body["stream_options"] == json({{"include_usage", true}, {"other", 1}}));
  // Non-streamed: neither stream nor stream_options go out.
  const json plain = body_of(build_upstream_request(*ep, req, false));
  CHECK_FALSE(plain.contains("stream"));
  CHECK_FALSE(plain.contains("stream_options"));
}

TEST_CASE("provider request: a request built in code (body null) sends model and messages") {
  const auto ep = endpoint_for({{"model", "openai/gpt-4o"}, {"api_key", "sk-k"}});
  chat_request req;
  req.model = "g";
  req.messages = user_says("x");
  CHECK(body_of(build_upstream_request(*ep, req, false))
        == json({{"model", "gpt-4o"}, {"messages", user_says("x")}}));
}

TEST_CASE("provider request: azure URL, api-version precedence and auth headers") {
  SECTION("api_version from params, api-key header") {
    const auto ep = endpoint_for({{"model", "azure/eastus-gpt4o"},
                                  {"api_base", "https://eastus.openai.azure.com/"},
                                  {"api_version", "2024-10-21"},
                                  {"api_key", "az-key-123456"}},
                                 {{"AZURE_API_VERSION", "2023-05-15"}});
    CHECK(ep->url == "https://eastus.openai.azure.com/openai/deployments/eastus-gpt4o"
                     "/chat/completions?api-version=2024-10-21");
    CHECK(ep->host == "https://eastus.openai.azure.com");
    CHECK(header(ep->headers, "api-key") == "az-key-123456");
    CHECK(is_secret_header(ep->headers, "api-key"));
    CHECK(header(ep->headers, "authorization") == "<absent>");
    const auto built = build_upstream_request(*ep, request_with(user_says("hi")), false);
    CHECK(built.http.url == ep->url);
    CHECK(body_of(built)["model"] == "eastus-gpt4o");
  }
  SECTION("AZURE_API_VERSION, then the default") {
    const json params = {{"model", "azure/d"}, {"api_base", "https://r.openai.azure.com"},
                         {"api_key", "k-123456"}};
    CHECK(endpoint_for(params, {{"AZURE_API_VERSION", "2023-05-15"}})->url
          == "https://r.openai.azure.com/openai/deployments/d/chat/completions"
             "?api-version=2023-05-15");
    CHECK(endpoint_for(params)->url
          == "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version="
               + std::string(azure_default_api_version));
  }
  SECTION("an api_base with /openai/deployments/ is used as it is") {
    const auto ep = endpoint_for(
      {{"model", "azure/ignored"},
       {"api_base", "https://r.openai.azure.com/openai/deployments/real/chat/completions"
                    "?api-version=2024-06-01"},
       {"api_key", "k-123456"}});
    CHECK(ep->url == "https://r.openai.azure.com/openai/deployments/real/chat/completions"
                     "?api-version=2024-06-01");
  }
  SECTION("azure_ad_token: Authorization Bearer; base and key from the environment") {
    const auto ep = endpoint_for({{"model", "azure/d"}, {"azure_ad_token", "ad-token-xyz"}},
                                 {{"AZURE_API_BASE", "https://env.openai.azure.com"}});
    CHECK(header(ep->headers, "authorization") == "Bearer ad-token-xyz");
    CHECK(is_secret_header(ep->headers, "authorization"));
    CHECK(header(ep->headers, "api-key") == "<absent>");
    CHECK(ep->url.rfind("https://env.openai.azure.com/openai/deployments/d/", 0) == 0);
    // A base from the environment is a secret: never in host or display_url.
    CHECK(ep->host == "<redacted api_base>");
    CHECK(ep->display_url.find("env.openai.azure.com") == std::string::npos);
  }
}

TEST_CASE("provider request: OpenAI-compatible providers use LiteLLM's bases and key "
          "variables") {
  struct row {
    const char* model;
    const char* env_name;
    const char* url;
  };
  for (const row& r : {row{"groq/llama-3.3-70b", "GROQ_API_KEY",
                           "https://api.groq.com/openai/v1/chat/completions"},
                       row{"together_ai/meta-llama/Llama-3-8b", "TOGETHER_AI_API_KEY",
                           "https://api.together.xyz/v1/chat/completions"},
                       row{"deepseek/deepseek-chat", "DEEPSEEK_API_KEY",
                           "https://api.deepseek.com/beta/chat/completions"},
                       row{"mistral/mistral-large", "MISTRAL_API_KEY",
                           "https://api.mistral.ai/v1/chat/completions"},
                       row{"fireworks_ai/accounts/f/models/m", "FIREWORKS_AI_API_KEY",
                           "https://api.fireworks.ai/inference/v1/chat/completions"},
                       row{"openrouter/anthropic/claude-3.5", "OPENROUTER_API_KEY",
                           "https://openrouter.ai/api/v1/chat/completions"},
                       row{"xai/grok-2", "XAI_API_KEY", "https://api.x.ai/v1/chat/completions"},
                       row{"perplexity/sonar", "PERPLEXITY_API_KEY",
                           "https://api.perplexity.ai/chat/completions"}}) {
    INFO(r.model);
    const auto ep = endpoint_for({{"model", r.model}}, {{r.env_name, "key-from-env"}});
    CHECK(ep->url == r.url);
    CHECK(header(ep->headers, "authorization") == "Bearer key-from-env");
    const std::string model = r.model;
    CHECK(ep->upstream_model == model.substr(model.find('/') + 1));
  }
}

TEST_CASE("provider request: hosted_vllm needs an api_base and no key") {
  const auto ep = endpoint_for({{"model", "hosted_vllm/meta-llama/Llama-3.1-8B"},
                                {"api_base", "http://127.0.0.1:8000/v1"}});
  CHECK(ep->url == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK(ep->host == "http://127.0.0.1:8000");
  CHECK(ep->upstream_model == "meta-llama/Llama-3.1-8B");
  CHECK(header(ep->headers, "authorization") == "<absent>");
}

TEST_CASE("provider request: extra_headers are sent, secret where from os.environ/, and "
          "ssl_verify sets TLS") {
  const json doc = json::parse(R"({"model_list": [{"model_name": "g", "litellm_params": {
      "model": "openai/m", "api_key": "sk-k",
      "extra_headers": {"X-Tenant": "blue", "X-Secret-Token": "os.environ/TENANT_TOKEN",
                        "Content-Type": "application/json; charset=utf-8"},
      "ssl_verify": "/etc/ssl/custom-ca.pem"}}]})");
  const auto cfg = load_config(nlohmann::ordered_json(doc), fake_env({{"TENANT_TOKEN", "tok-very-secret"}}));
  const auto& ep = *cfg.deployments[0].endpoint;
  CHECK(header(ep.headers, "x-tenant") == "blue");
  CHECK_FALSE(is_secret_header(ep.headers, "x-tenant"));
  CHECK(header(ep.headers, "x-secret-token") == "tok-very-secret");
  CHECK(is_secret_header(ep.headers, "x-secret-token"));
  // An extra header replaces a default of the same name.
  CHECK(header(ep.headers, "content-type") == "application/json; charset=utf-8");
  CHECK(ep.tls.verify);
  CHECK(ep.tls.ca_file == "/etc/ssl/custom-ca.pem");
  CHECK_FALSE(endpoint_for({{"model", "m"}, {"api_key", "sk-k"}, {"ssl_verify", false}})
                ->tls.verify);
  // `organization`, as the openai client sends it (a header, not a parameter).
  const auto org = endpoint_for({{"model", "m"}, {"api_key", "sk-k"}, {"organization", "org-1"}});
  CHECK(header(org->headers, "openai-organization") == "org-1");
  CHECK(org->param_defaults.empty());
  CHECK(endpoint_for({{"model", "m"}, {"api_key", "sk-k"}})->tls.verify);
}

TEST_CASE("provider request: anthropic translation of system, tools, tool calls, tool "
          "results, images and stop") {
  const auto ep = endpoint_for({{"model", "anthropic/claude-3-5-sonnet-20241022"},
                                {"api_key", "sk-ant-test-123456"},
                                {"temperature", 0.1}});
  CHECK(ep->url == "https://api.anthropic.com/v1/messages");
  CHECK(header(ep->headers, "x-api-key") == "sk-ant-test-123456");
  CHECK(is_secret_header(ep->headers, "x-api-key"));
  CHECK(header(ep->headers, "anthropic-version") == "2023-06-01");
  CHECK(header(ep->headers, "authorization") == "<absent>");

  const json messages = json::parse(R"([
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": [
      {"type": "text", "text": "What is in these?"},
      {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
      {"type": "image_url", "image_url": "https://example.com/cat.jpg"}]},
    {"role": "assistant", "content": "Let me look.", "tool_calls": [
      {"id": "call_1", "type": "function",
       "function": {"name": "lookup", "arguments": "{\"q\": \"cat\"}"}}]},
    {"role": "tool", "tool_call_id": "call_1", "content": "a cat"},
    {"role": "user", "content": "thanks"}])");
  const json tools = json::parse(R"([{"type": "function", "function": {
      "name": "lookup", "description": "Looks up", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}])");
  const auto req = request_with(messages, {{"tools", tools},
                                           {"tool_choice", "required"},
                                           {"stop", "END"},
                                           {"user", "u-42"},
                                           {"top_k", 5},
                                           {"seed", 1},
                                           {"n", 1},
                                           {"num_retries", 2}});
  const auto built = build_upstream_request(*ep, req, true);
  const json expected = json::parse(R"({
    "model": "claude-3-5-sonnet-20241022",
    "system": [{"type": "text", "text": "You are terse."}],
    "messages": [
      {"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]},
      {"role": "assistant", "content": [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "lookup", "input": {"q": "cat"}}]},
      {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_1", "content": "a cat"},
        {"type": "text", "text": "thanks"}]}],
    "tools": [{"name": "lookup", "description": "Looks up", "input_schema": {
      "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}],
    "tool_choice": {"type": "any"},
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-42"},
    "max_tokens": 4096,
    "temperature": 0.1,
    "top_k": 5,
    "stream": true})");
  CHECK(body_of(built) == expected);
}

TEST_CASE("provider request: anthropic max_tokens, tool_choice forms and parallel_tool_calls") {
  const auto ep = endpoint_for({{"model", "anthropic/claude"}},
                               {{"ANTHROPIC_API_KEY", "sk-ant-env-123456"}});
  CHECK(header(ep->headers, "x-api-key") == "sk-ant-env-123456");
  const auto body = [&](json extra) {
    return body_of(build_upstream_request(*ep, request_with(user_says("q"), extra), false));
  };
  CHECK(body({{"max_tokens", 50}})["max_tokens"] == 50);
  CHECK(body({{"max_completion_tokens", 70}})["max_tokens"] == 70);
  CHECK(body({{"tool_choice", "auto"}})["tool_choice"] == json({{"type", "auto"}}));
  CHECK(body({{"tool_choice", "none"}})["tool_choice"] == json({{"type", "none"}}));
  CHECK(body({{"tool_choice", {{"type", "function"}, {"function", {{"name", "f"}}}}}})
          ["tool_choice"] == json({{"type", "tool"}, {"name", "f"}}));
  CHECK(body({{"parallel_tool_calls", false}})["tool_choice"]
        == json({{"type", "auto"}, {"disable_parallel_tool_use", true}}));
  CHECK(body({{"stop", {"a", "b"}}})["stop_sequences"] == json({"a", "b"}));
  const json plain = body(json::object());
  CHECK_FALSE(plain.contains("stream"));
  CHECK_FALSE(plain.contains("system"));
  CHECK(plain["messages"] == json::parse(R"([{"role":"user","content":[{"type":"text","text":"q"}]}])"));
}

TEST_CASE("provider request: anthropic rejects tool call arguments that are not JSON, "
          "naming the field") {
  const auto ep = endpoint_for({{"model", "anthropic/claude"}, {"api_key", "sk-ant-123456"}});
  const json messages = json::parse(R"([{"role": "user", "content": "q"},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}]}])");
  const auto built = build_upstream_request(*ep, request_with(messages), false);
  REQUIRE_FALSE(built.ok);
  CHECK(built.error.kind == error_kind::bad_request);
  CHECK(built.error.message
        == "messages[1].tool_calls[0].function.arguments: expected a JSON object in a string");
}
