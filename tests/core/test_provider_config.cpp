// Endpoint resolution at load (TRANSPORT.md section 1): providers, keys
// from params or the environment, and load errors at their paths.

#include "support/provider_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using nlohmann::json;

namespace {

// The problems of loading model_list = these litellm_params, one each.
std::vector<config_problem> problems_of(const std::vector<json>& params,
                                        std::map<std::string, std::string> env = {}) {
  json list = json::array();
  for (const auto& p : params)
    list.push_back({{"model_name", "g"}, {"litellm_params", p}});
  try {
    load_config(nlohmann::ordered_json(json{{"model_list", list}}), fake_env(std::move(env)));
  } catch (const config_error& e) {
    return e.problems();
  }
  FAIL("expected a config_error");
  return {};
}

bool has_problem(const std::vector<config_problem>& problems, const std::string& path,
                 const std::string& message) {
  for (const auto& p : problems)
    if (p.path == path && p.message == message)
      return true;
  return false;
}

std::string all_text(const std::vector<config_problem>& problems) {
  std::string out;
  for (const auto& p : problems)
    out += p.path + ": " + p.message + "\n";
  return out;
}

} // namespace

TEST_CASE("provider config: a mock deployment has no endpoint; a real one has") {
  const json doc = json::parse(R"({"model_list": [
    {"model_name": "g", "litellm_params": {"model": "azure/x", "mock_response": "hi"}},
    {"model_name": "g", "litellm_params": {"model": "gpt-4o", "api_key": "sk-k"}}]})");
  const auto cfg = load_config(nlohmann::ordered_json(doc), fake_env());
  CHECK_FALSE(cfg.deployments[0].endpoint);
  REQUIRE(cfg.deployments[1].endpoint);
  CHECK(cfg.deployments[1].endpoint->provider->name == "openai");
  CHECK(cfg.deployments[1].endpoint->url == "https://api.openai.com/v1/chat/completions");
}

TEST_CASE("provider config: an unknown provider prefix lists the supported ones") {
  const auto problems = problems_of({{{"model", "nosuch/m"}, {"api_key", "k"}}});
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "model_list[0].litellm_params.model");
  CHECK(problems[0].message
        == "unknown provider 'nosuch'; expected one of: " + supported_providers()
             + " (or a mock_response)");
  CHECK(supported_providers()
        == "anthropic, azure, deepseek, fireworks_ai, groq, hosted_vllm, mistral, openai, "
           "openrouter, perplexity, together_ai, xai");
}

TEST_CASE("provider config: a real deployment without a key is an error at api_key") {
  const auto problems = problems_of({{{"model", "openai/gpt-4o"}},
                                     {{"model", "anthropic/claude"}},
                                     {{"model", "azure/d"}, {"api_base", "https://r.example"}},
                                     {{"model", "groq/llama"}}});
  CHECK(has_problem(problems, "model_list[0].litellm_params.api_key",
                    "is required for provider 'openai' (or set OPENAI_API_KEY)"));
  CHECK(has_problem(problems, "model_list[1].litellm_params.api_key",
                    "is required for provider 'anthropic' (or set ANTHROPIC_API_KEY)"));
  CHECK(has_problem(problems, "model_list[2].litellm_params.api_key",
                    "is required for provider 'azure' (or set AZURE_API_KEY, or "
                    "azure_ad_token)"));
  CHECK(has_problem(problems, "model_list[3].litellm_params.api_key",
                    "is required for provider 'groq' (or set GROQ_API_KEY)"));
  CHECK(problems.size() == 4);
}

TEST_CASE("provider config: keys come from api_key, else the provider's variable") {
  const auto from_params = endpoint_for({{"model", "openai/m"}, {"api_key", "sk-params"}},
                                        {{"OPENAI_API_KEY", "sk-env"}});
  CHECK(header(from_params->headers, "authorization") == "Bearer sk-params");
  const auto from_env = endpoint_for({{"model", "openai/m"}}, {{"OPENAI_API_KEY", "sk-env"}});
  CHECK(header(from_env->headers, "authorization") == "Bearer sk-env");
  // An os.environ/ reference works as any other value.
  const auto referenced =
    endpoint_for({{"model", "openai/m"}, {"api_key", "os.environ/MY_KEY"}}, {{"MY_KEY", "sk-ref"}});
  CHECK(header(referenced->headers, "authorization") == "Bearer sk-ref");
  // The base too: the provider's variable over its default.
  CHECK(endpoint_for({{"model", "openai/m"}},
                     {{"OPENAI_API_KEY", "k"}, {"OPENAI_API_BASE", "http://127.0.0.1:1/v1"}})
          ->url
        == "http://127.0.0.1:1/v1/chat/completions");
}

TEST_CASE("provider config: hosted_vllm needs api_base but no key; azure needs api_base") {
  const auto problems = problems_of({{{"model", "hosted_vllm/m"}}, {{"model", "azure/d"},
                                                                    {"api_key", "k"}}});
  CHECK(has_problem(problems, "model_list[0].litellm_params.api_base",
                    "is required for provider 'hosted_vllm' (or set HOSTED_VLLM_API_BASE)"));
  CHECK(has_problem(problems, "model_list[1].litellm_params.api_base",
                    "is required for provider 'azure' (or set AZURE_API_BASE)"));
  CHECK(problems.size() == 2);
}

TEST_CASE("provider config: bad endpoint values are errors at their paths, never echoing "
          "a secret") {
  const auto problems = problems_of(
    {{{"model", "openai/m"}, {"api_key", "os.environ/K"}, {"api_base", "os.environ/K"}},
     {{"model", "openai/m"}, {"api_key", "k"}, {"extra_headers", {{"X-A", 5}}}},
     {{"model", "openai/m"}, {"api_key", "k"}, {"extra_headers", {{"Bad Name", "v"}}}},
     {{"model", "openai/m"}, {"api_key", "k"}, {"ssl_verify", 3}},
     {{"model", "openai/"}, {"api_key", "k"}},
     {{"model", "os.environ/M"}, {"api_key", "k"}}},
    {{"K", "sk-secret-in-env-123"}, {"M", "secretprov/x"}});
  CHECK(has_problem(problems, "model_list[0].litellm_params.api_base",
                    "expected an http:// or https:// URL"));
  CHECK(has_problem(problems, "model_list[1].litellm_params.extra_headers.X-A",
                    "expected a string without line breaks"));
  CHECK(has_problem(problems, "model_list[2].litellm_params.extra_headers.Bad Name",
                    "expected a header name (visible ASCII, no ':')"));
  CHECK(has_problem(problems, "model_list[3].litellm_params.ssl_verify",
                    "expected true, false or a CA bundle path"));
  CHECK(has_problem(problems, "model_list[4].litellm_params.model",
                    "expected a model name after the provider prefix"));
  CHECK(has_problem(problems, "model_list[5].litellm_params.model",
                    "unknown provider; expected one of: " + supported_providers()
                      + " (or a mock_response)"));
  const std::string text = all_text(problems);
  CHECK(text.find("sk-secret-in-env-123") == std::string::npos);
  CHECK(text.find("secretprov") == std::string::npos);
}

TEST_CASE("provider config: provider parameters become defaults; router and transport keys "
          "do not") {
  const auto ep = endpoint_for(json::parse(R"({
    "model": "openai/gpt-4o", "api_key": "sk-k", "api_base": "https://api.openai.com/v1",
    "weight": 2, "rpm": 10, "tpm": 1000, "order": 1, "timeout": 30, "stream_timeout": 5,
    "cooldown_time": 3, "num_retries": 1, "max_retries": 2, "input_cost_per_token": 0.1,
    "output_cost_per_token": 0.2, "mock_latency_ms": 5, "mock_failure_rate": 0.1,
    "extra_headers": {"X": "y"}, "ssl_verify": true, "metadata": {"a": 1}, "tags": ["t"],
    "aws_secret_access_key": "aws-s", "vertex_credentials": "v", "azure_client_secret": "c",
    "temperature": 0.3, "max_tokens": 64, "top_p": 0.9, "response_format": {"type": "json_object"},
    "custom_vendor_flag": "on"})"));
  CHECK(ep->param_defaults == json::parse(R"({"temperature": 0.3, "max_tokens": 64,
    "top_p": 0.9, "response_format": {"type": "json_object"}, "custom_vendor_flag": "on"})"));
}
