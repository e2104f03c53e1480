#include "support/test_config.hpp"

#include "switchyard/config.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"
#include "switchyard/routing_strategy.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

using namespace switchyard;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

// Most deployments here are real ones with no key: about loading, not providers.
env_lookup fake_env(std::map<std::string, std::string> vars = {}) {
  return switchyard::test::fake_env_with_keys(std::move(vars));
}

// The problems load_config_text reports (fails the test if it loads).
std::vector<config_problem> problems_of(const std::string& text,
                                        const env_lookup& env = fake_env()) {
  try {
    load_config_text(text, env);
  } catch (const config_error& e) {
    return e.problems();
  }
  FAIL("expected a config_error for: " << text);
  return {};
}

std::string what_of(const std::string& text, const env_lookup& env = fake_env()) {
  try {
    load_config_text(text, env);
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("expected a config_error for: " << text);
  return {};
}

// One deployment wrapping these litellm_params (a JSON object's text).
std::string one_deployment(const std::string& params, const std::string& settings = "{}") {
  return R"({"model_list": [{"model_name": "g", "litellm_params": )" + params
         + R"(}], "router_settings": )" + settings + "}";
}

const char* minimal = R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m"}}]})";

} // namespace

TEST_CASE("config: a minimal config gets every default") {
  const auto cfg = load_config_text(minimal, fake_env());
  const auto& s = cfg.settings;
  CHECK(s.routing_strategy == "simple-shuffle");
  CHECK(s.num_retries == 2);
  CHECK(s.timeout_s == 600);
  CHECK_FALSE(s.allowed_fails.has_value());
  CHECK(s.cooldown_time_s == 5);
  CHECK_FALSE(s.disable_cooldowns);
  CHECK_FALSE(s.enable_weighted_failover);
  CHECK_FALSE(s.enable_pre_call_checks);
  CHECK(s.fallbacks.empty());
  CHECK(s.context_window_fallbacks.empty());
  CHECK(s.content_policy_fallbacks.empty());
  CHECK(s.default_fallbacks.empty());
  CHECK(s.max_fallbacks == 5);
  CHECK(s.lowest_latency_buffer == 0);
  CHECK_FALSE(s.stream_timeout_s);
  for (const auto* counts : {&s.retry_policy, &s.allowed_fails_policy}) {
    CHECK_FALSE(counts->bad_request);
    CHECK_FALSE(counts->authentication);
    CHECK_FALSE(counts->timeout);
    CHECK_FALSE(counts->rate_limit);
    CHECK_FALSE(counts->content_policy_violation);
    CHECK_FALSE(counts->internal_server);
  }
  CHECK(s.model_group_retry_policy.empty());
  CHECK(s.model_group_alias.empty());

  REQUIRE(cfg.deployments.size() == 1);
  const auto& d = cfg.deployments[0];
  CHECK(d.model_name == "g");
  CHECK(d.model == "m");
  CHECK(d.api_base.empty());
  CHECK(d.api_key.empty());
  CHECK_FALSE(d.weight);
  CHECK_FALSE(d.rpm);
  CHECK_FALSE(d.tpm);
  CHECK_FALSE(d.order);
  CHECK_FALSE(d.timeout_s);
  CHECK_FALSE(d.stream_timeout_s);
  CHECK_FALSE(d.cooldown_time_s);
  CHECK_FALSE(d.num_retries);
  CHECK_FALSE(d.max_input_tokens);
  CHECK_FALSE(d.input_cost_per_token);
  CHECK_FALSE(d.output_cost_per_token);
  CHECK_FALSE(d.mock.is_set());
  CHECK(d.mock_latency_ms == 0);
  CHECK(d.mock_failure_rate == 0);
  CHECK(d.mock_failure == error_kind::internal_server);
  CHECK(d.mock_failure_after_calls == 0);
  CHECK(d.group == 0);
  CHECK(d.index_in_group == 0);
}

TEST_CASE("config: every deployment setting is read") {
  const auto cfg = load_config_text(R"({"model_list": [{
      "model_name": "gpt-4o",
      "litellm_params": {"model": "azure/eastus2", "api_key": "sk-literal", "api_base": "https://e.example",
                         "weight": 50, "rpm": 600, "tpm": 90000, "order": 2, "timeout": 30,
                         "stream_timeout": 7.5, "cooldown_time": 10, "num_retries": 1, "input_cost_per_token": 0.00001,
                         "output_cost_per_token": 0.00003, "mock_response": "hello",
                         "mock_latency_ms": 25.5, "mock_failure_rate": 0.25,
                         "mock_failure": "litellm.RateLimitError", "mock_failure_after_calls": 7},
      "model_info": {"id": "eastus2", "max_input_tokens": 128000}}]})",
                                    fake_env());
  const auto& d = cfg.deployments.at(0);
  CHECK(d.id == "eastus2");
  CHECK(d.model_name == "gpt-4o");
  CHECK(d.model == "azure/eastus2");
  CHECK(d.api_key.reveal() == "sk-literal");
  CHECK(d.api_base == "https://e.example");
  CHECK(d.weight == 50.0);
  CHECK(d.rpm == 600.0);
  CHECK(d.tpm == 90000.0);
  CHECK(d.order == 2);
  CHECK(d.timeout_s == 30.0);
  CHECK(d.stream_timeout_s == 7.5);
  CHECK(d.cooldown_time_s == 10.0);
  CHECK(d.num_retries == 1);
  CHECK(d.input_cost_per_token == 0.00001);
  CHECK(d.output_cost_per_token == 0.00003);
  CHECK(d.max_input_tokens == 128000);
  CHECK(d.mock.kind == mock_spec::mode::reply);
  CHECK(d.mock.content == "hello");
  CHECK(d.mock_latency_ms == 25.5);
  CHECK(d.mock_failure_rate == 0.25);
  CHECK(d.mock_failure == error_kind::rate_limit);
  CHECK(d.mock_failure_after_calls == 7);
}

TEST_CASE("config: mock_failure takes a kind with or without the litellm. prefix") {
  const auto cfg = load_config_text(
    one_deployment(R"({"model": "m", "mock_failure": "ServiceUnavailableError"})"), fake_env());
  CHECK(cfg.deployments.at(0).mock_failure == error_kind::service_unavailable);
}

TEST_CASE("config: costs may sit in model_info, litellm_params wins") {
  const auto cfg = load_config_text(R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "m", "input_cost_per_token": 1},
       "model_info": {"input_cost_per_token": 2, "output_cost_per_token": 3}}]})",
                                    fake_env());
  const auto& d = cfg.deployments.at(0);
  CHECK(d.input_cost_per_token == 1.0);
  CHECK(d.output_cost_per_token == 3.0);
}

TEST_CASE("config: rpm and tpm at the deployment's top level, litellm_params wins") {
  const auto cfg = load_config_text(R"({"model_list": [
      {"model_name": "g", "rpm": 100, "tpm": 2000, "litellm_params": {"model": "a"}},
      {"model_name": "g", "rpm": 100, "tpm": 2000, "litellm_params": {"model": "b", "rpm": 7, "tpm": 8}}]})",
                                    fake_env());
  CHECK(cfg.deployments.at(0).rpm == 100.0);
  CHECK(cfg.deployments.at(0).tpm == 2000.0);
  CHECK(cfg.deployments.at(1).rpm == 7.0);
  CHECK(cfg.deployments.at(1).tpm == 8.0);
}

TEST_CASE("config: every router setting is read") {
  const auto cfg = load_config_text(R"({
    "model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "a"}},
                   {"model_name": "gpt-4o-mini", "litellm_params": {"model": "b"}},
                   {"model_name": "big", "litellm_params": {"model": "c"}}],
    "router_settings": {"routing_strategy": "latency-based-routing", "num_retries": 4, "timeout": 12.5,
                        "allowed_fails": 3, "cooldown_time": 0, "disable_cooldowns": true,
                        "enable_weighted_failover": true, "enable_pre_call_checks": true,
                        "fallbacks": [{"gpt-4o": ["gpt-4o-mini", "big"], "*": ["big"]}, {"openai/x": ["gpt-4o"]}],
                        "context_window_fallbacks": [{"gpt-4o": ["big"]}],
                        "content_policy_fallbacks": [{"gpt-4o-mini": ["gpt-4o"]}],
                        "default_fallbacks": ["gpt-4o-mini"], "max_fallbacks": 1,
                        "routing_strategy_args": {"lowest_latency_buffer": 0.5},
                        "stream_timeout": 4.5,
                        "retry_policy": {"BadRequestErrorRetries": 0, "AuthenticationErrorRetries": 1,
                                         "TimeoutErrorRetries": 2, "RateLimitErrorRetries": 3,
                                         "ContentPolicyViolationErrorRetries": 4, "InternalServerErrorRetries": 5},
                        "allowed_fails_policy": {"BadRequestErrorAllowedFails": 10, "AuthenticationErrorAllowedFails": 11,
                                                 "TimeoutErrorAllowedFails": 12, "RateLimitErrorAllowedFails": 13,
                                                 "ContentPolicyViolationErrorAllowedFails": 14,
                                                 "InternalServerErrorAllowedFails": 15},
                        "model_group_retry_policy": {"big": {"RateLimitErrorRetries": 0},
                                                     "gpt-4o": {}},
                        "model_group_alias": {"gpt-4": "gpt-4o",
                                              "small": {"model": "gpt-4o-mini", "hidden": true},
                                              "large": {"model": "big"}}}})",
                                    fake_env());
  const auto& s = cfg.settings;
  CHECK(s.routing_strategy == "latency-based-routing");
  CHECK(s.num_retries == 4);
  CHECK(s.timeout_s == 12.5);
  CHECK(s.allowed_fails == 3);
  CHECK(s.cooldown_time_s == 0);
  CHECK(s.disable_cooldowns);
  CHECK(s.enable_weighted_failover);
  CHECK(s.enable_pre_call_checks);
  REQUIRE(s.fallbacks.size() == 3); // each key of each object, in file order
  CHECK(s.fallbacks[0].from == "gpt-4o");
  CHECK(s.fallbacks[0].to == std::vector<std::string>{"gpt-4o-mini", "big"});
  CHECK(s.fallbacks[1].from == "*");
  CHECK(s.fallbacks[1].to == std::vector<std::string>{"big"});
  CHECK(s.fallbacks[2].from == "openai/x");
  CHECK(s.fallbacks[2].to == std::vector<std::string>{"gpt-4o"});
  REQUIRE(s.context_window_fallbacks.size() == 1);
  CHECK(s.context_window_fallbacks[0].from == "gpt-4o");
  CHECK(s.context_window_fallbacks[0].to == std::vector<std::string>{"big"});
  REQUIRE(s.content_policy_fallbacks.size() == 1);
  CHECK(s.content_policy_fallbacks[0].from == "gpt-4o-mini");
  CHECK(s.default_fallbacks == std::vector<std::string>{"gpt-4o-mini"});
  CHECK(s.max_fallbacks == 1);
  CHECK(s.lowest_latency_buffer == 0.5);
  CHECK(s.stream_timeout_s == 4.5);
  CHECK(s.retry_policy.bad_request == 0);
  CHECK(s.retry_policy.authentication == 1);
  CHECK(s.retry_policy.timeout == 2);
  CHECK(s.retry_policy.rate_limit == 3);
  CHECK(s.retry_policy.content_policy_violation == 4);
  CHECK(s.retry_policy.internal_server == 5);
  CHECK(s.allowed_fails_policy.bad_request == 10);
  CHECK(s.allowed_fails_policy.authentication == 11);
  CHECK(s.allowed_fails_policy.timeout == 12);
  CHECK(s.allowed_fails_policy.rate_limit == 13);
  CHECK(s.allowed_fails_policy.content_policy_violation == 14);
  CHECK(s.allowed_fails_policy.internal_server == 15);
  REQUIRE(s.model_group_retry_policy.size() == 2);
  CHECK(s.model_group_retry_policy.at("big").rate_limit == 0);
  CHECK_FALSE(s.model_group_retry_policy.at("big").timeout);
  CHECK_FALSE(s.model_group_retry_policy.at("gpt-4o").rate_limit);
  CHECK(s.model_group_alias
        == std::map<std::string, std::string>{{"gpt-4", "gpt-4o"}, {"small", "gpt-4o-mini"},
                                              {"large", "big"}});
}

TEST_CASE("config: null leaves an optional setting at its default") {
  const auto cfg = load_config_text(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m", "weight": null, "api_key": null,
                                                          "mock_response": null}, "model_info": null}],
    "router_settings": {"routing_strategy": null, "num_retries": null, "timeout": null, "allowed_fails": null,
                        "cooldown_time": null, "fallbacks": null, "default_fallbacks": null,
                        "max_fallbacks": null, "routing_strategy_args": null, "stream_timeout": null,
                        "retry_policy": null, "allowed_fails_policy": {"RateLimitErrorAllowedFails": null},
                        "model_group_retry_policy": {"g": null}, "model_group_alias": {"a": null}},
    "litellm_settings": {"num_retries": null, "request_timeout": null, "fallbacks": null}})",
                                    fake_env());
  CHECK_FALSE(cfg.settings.stream_timeout_s);
  CHECK_FALSE(cfg.settings.retry_policy.rate_limit);
  CHECK_FALSE(cfg.settings.allowed_fails_policy.rate_limit);
  CHECK(cfg.settings.model_group_retry_policy.empty());
  CHECK(cfg.settings.model_group_alias.empty());
  CHECK(cfg.settings.fallbacks.empty());
  CHECK(cfg.settings.routing_strategy == "simple-shuffle");
  CHECK(cfg.settings.num_retries == 2);
  CHECK(cfg.settings.timeout_s == 600);
  CHECK_FALSE(cfg.settings.allowed_fails);
  CHECK(cfg.settings.cooldown_time_s == 5);
  CHECK(cfg.settings.max_fallbacks == 5);
  CHECK_FALSE(cfg.deployments.at(0).weight);
  CHECK_FALSE(cfg.deployments.at(0).mock.is_set());
}

TEST_CASE("config: os.environ/NAME is resolved through the injected lookup") {
  const auto cfg = load_config_text(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m", "api_key": "os.environ/AZ_KEY",
                                                          "api_base": "os.environ/AZ_BASE"}}],
    "router_settings": {"routing_strategy": "os.environ/STRATEGY"}})",
                                    fake_env({{"AZ_KEY", "sk-from-env"},
                                              {"AZ_BASE", "https://env.example"},
                                              {"STRATEGY", "latency-based-routing"}}));
  const auto& d = cfg.deployments.at(0);
  CHECK(d.api_key.reveal() == "sk-from-env");
  CHECK(d.api_base == "https://env.example");
  CHECK(cfg.settings.routing_strategy == "latency-based-routing");
  // The id hashes the resolved values, as LiteLLM does.
  const auto again = load_config_text(R"({"model_list": [{"model_name": "g", "litellm_params":
      {"model": "m", "api_key": "sk-from-env", "api_base": "https://env.example"}}]})",
                                      fake_env());
  CHECK(d.id == again.deployments.at(0).id);
}

TEST_CASE("config: a missing environment variable names the field, never a value") {
  const auto problems = problems_of(one_deployment(
    R"({"model": "m", "api_key": "os.environ/MISSING_KEY", "weight": "os.environ/MISSING_WEIGHT"})"));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].path == "model_list[0].litellm_params.api_key");
  CHECK(problems[0].message == "environment variable MISSING_KEY is not set");
  // Reported once: not again as "expected a number".
  CHECK(problems[1].path == "model_list[0].litellm_params.weight");
  CHECK(problems[1].message == "environment variable MISSING_WEIGHT is not set");
}

TEST_CASE("config: a model group name or a deployment id cannot come from os.environ/") {
  const auto problems = problems_of(R"({"model_list": [
      {"model_name": "os.environ/GROUP", "litellm_params": {"model": "m"}},
      {"model_name": "g", "litellm_params": {"model": "m2"}, "model_info": {"id": "os.environ/ID"}}]})",
                                    fake_env({{"GROUP", "planted-group"}, {"ID", "planted-id"}}));
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].path == "model_list[0].model_name");
  CHECK(problems[0].message
        == "cannot come from os.environ/: a model group name is printed in results, traces and logs");
  CHECK(problems[1].path == "model_list[1].model_info.id");
  CHECK(problems[1].message
        == "cannot come from os.environ/: a deployment id is printed in results, traces and logs");
  for (const auto& p : problems)
    CHECK(p.message.find("planted") == std::string::npos);
}

TEST_CASE("config: num_retries and retry_policy entries are capped at max_num_retries") {
  const std::string cap = std::to_string(max_num_retries);
  const std::string over = std::to_string(max_num_retries + 1);
  const auto problems = problems_of(one_deployment(R"({"model": "m", "num_retries": )" + over + "}",
      R"({"num_retries": )" + over + R"(, "retry_policy": {"TimeoutErrorRetries": )" + over
        + R"(}, "model_group_retry_policy": {"g": {"RateLimitErrorRetries": 1000000}},
          "allowed_fails_policy": {"TimeoutErrorAllowedFails": 1000000}})"));
  REQUIRE(problems.size() == 4);
  CHECK(problems[0].path == "model_list[0].litellm_params.num_retries");
  CHECK(problems[0].message == "expected an integer <= " + cap);
  CHECK(problems[1].path == "router_settings.num_retries");
  CHECK(problems[2].path == "router_settings.retry_policy.TimeoutErrorRetries");
  CHECK(problems[3].path == "router_settings.model_group_retry_policy.g.RateLimitErrorRetries");
  // At the cap it loads (and allowed fails are not retries: no cap there).
  const auto cfg = load_config_text(one_deployment(R"({"model": "m", "num_retries": )" + cap + "}",
      R"({"num_retries": )" + cap + R"(, "retry_policy": {"TimeoutErrorRetries": )" + cap + "}}"),
                                    fake_env());
  CHECK(cfg.settings.num_retries == max_num_retries);
  CHECK(cfg.deployments.at(0).num_retries == max_num_retries);
}

TEST_CASE("config: generated ids match LiteLLM's (hashes computed with Python)") {
  // Expected values: LiteLLM's Router._generate_model_id run by python3 on
  // json.loads of the same litellm_params text.
  struct id_case {
    const char* name;
    const char* model_name;
    const char* params;
    const char* id;
  };
  const id_case cases[] = {
    {"strings and an int, api_key from the environment", "gpt-4o",
     R"({"model": "azure/eastus2", "api_key": "os.environ/AZ_KEY", "weight": 50})",
     "0bda56416ce03fb55611fd2ecd70865c6a80e004027383bb225c46ab9773b6a6"},
    {"ints, floats, bools, null, a nested object (json.dumps), unicode", "gpt-4o-mini",
     R"json({"model": "openai/gpt-4o-mini", "rpm": 600, "temperature": 0.5, "tiny": 1e-05,
   "big": 100.0, "stream": true, "off": false, "seed": null,
   "extra": {"b": 1, "a": "x", "n": {"k": [1, 2.5, false, null]}, "u": "caf\u00e9 \u2615 \ud83d\ude00 \"q\"\n"},
   "label": "caf\u00e9 \u2615 \ud83d\ude00"})json",
     "d83faf455e903fa2654cbfb8a6c0f457ef6d6b22aac64fd9dfbfca3e91e27811"},
    {"unicode model name", "\xe6\xa8\xa1\xe5\x9e\x8b",
     R"({"model": "hosted_vllm/\u6a21\u578b", "api_base": "https://example.com/v1"})",
     "17d97d0c689d284565bb8e4488fa9d439231c66220801440515200c6199ba778"},
    {"float spellings (Python repr)", "f",
     R"({"model": "m", "a": 1e16, "b": 1e15, "c": 0.0001, "d": -2.5e-7, "e": 1.5e300, "f": 123456.789, "g": 0.1, "h": -0.0, "i": 5e-324, "j": 1.7976931348623157e308, "k": 12345678901234567890})",
     "3d60b2dd8bbae136472612adf2434e94d96da06973f59e8388151737bd91eb24"},
    {"lists (Python str of a list, quotes and escapes)", "l",
     R"json({"model": "m", "stop": ["\n", "it's", "say \"hi\"", "both ' and \"", "tab\there", "\u0000\u007f\u0085\u00a0\u00ad\u00e9\u200b\ud83d\ude00\u4e2d"],
   "nested": [{"k": "v", "n": [1, {"z": null}]}, [], {}], "empty": [], "emptyobj": {}})json",
     "c1cc53f5460035321c34b986aad85f2c887566c7df43736469e8a30e072a53d5"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string text = std::string(R"({"model_list": [{"model_name": ")") + c.model_name
                             + R"(", "litellm_params": )" + c.params + "}]}";
    const auto cfg = load_config_text(text, fake_env({{"AZ_KEY", "sk-test-123"}}));
    CHECK(cfg.deployments.at(0).id == c.id);
  }
}

TEST_CASE("config: litellm_deployment_id hashes an ordered_json in its own key order") {
  CHECK(litellm_deployment_id("g", ordered_json{{"model", "openai/gpt-4o"}})
        == "c73de01b418c6082ea81ad7f2a315e9755af4680247b404e0b1b8c9a1a893936");
  // As written, not sorted: the id load_config_text computes for this text.
  CHECK(litellm_deployment_id("gpt-4o", ordered_json{{"model", "azure/eastus2"},
                                                     {"api_key", "sk-test-123"},
                                                     {"weight", 50}})
        == "0bda56416ce03fb55611fd2ecd70865c6a80e004027383bb225c46ab9773b6a6");
  // In sorted order (what a nlohmann::json would have held).
  CHECK(litellm_deployment_id("gpt-4o", ordered_json{{"api_key", "sk-test-123"},
                                                     {"model", "azure/eastus2"},
                                                     {"weight", 50}})
        == "53be1c4cbf7d4b0a32a54f52941c5ddb228a83ee0a8cc586a13d30530e835f1a");
}

TEST_CASE("config: model_info.id is used as is, a numeric id becomes a string") {
  const auto cfg = load_config_text(R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "a"}, "model_info": {"id": 7}},
      {"model_name": "g", "litellm_params": {"model": "b"}, "model_info": {"id": 2.5}},
      {"model_name": "g", "litellm_params": {"model": "c"}, "model_info": {"id": "my-id"}}]})",
                                    fake_env());
  CHECK(cfg.deployments.at(0).id == "7");
  CHECK(cfg.deployments.at(1).id == "2.5");
  CHECK(cfg.deployments.at(2).id == "my-id");
}

TEST_CASE("config: duplicate ids are an error at the later one, naming the earlier") {
  const auto problems = problems_of(R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "a"}, "model_info": {"id": "x"}},
      {"model_name": "g", "litellm_params": {"model": "b"}},
      {"model_name": "h", "litellm_params": {"model": "c"}, "model_info": {"id": "x"}},
      {"model_name": "g", "litellm_params": {"model": "b"}}]})");
  REQUIRE(problems.size() == 2);
  CHECK(problems[0].path == "model_list[2].model_info.id");
  CHECK(problems[0].message == "duplicate deployment id (also used by model_list[0])");
  // Same generated id: the same deployment twice.
  CHECK(problems[1].path == "model_list[3]");
  CHECK(problems[1].message == "duplicate deployment id (also used by model_list[1])");
}

TEST_CASE("config: groups in order of first appearance, with group and index_in_group") {
  const auto cfg = load_config_text(R"({"model_list": [
      {"model_name": "b", "litellm_params": {"model": "1"}},
      {"model_name": "a", "litellm_params": {"model": "2"}},
      {"model_name": "b", "litellm_params": {"model": "3"}},
      {"model_name": "c", "litellm_params": {"model": "4"}},
      {"model_name": "a", "litellm_params": {"model": "5"}}]})",
                                    fake_env());
  REQUIRE(cfg.groups.size() == 3);
  CHECK(cfg.groups[0].name == "b");
  CHECK(cfg.groups[0].deployments == std::vector<std::uint32_t>{0, 2});
  CHECK(cfg.groups[1].name == "a");
  CHECK(cfg.groups[1].deployments == std::vector<std::uint32_t>{1, 4});
  CHECK(cfg.groups[2].name == "c");
  CHECK(cfg.groups[2].deployments == std::vector<std::uint32_t>{3});
  CHECK(cfg.find_group("a") == 1u);
  CHECK(cfg.find_group("c") == 2u);
  CHECK_FALSE(cfg.find_group("zz"));
  const std::uint32_t groups[] = {0, 1, 0, 2, 1};
  const std::uint32_t positions[] = {0, 0, 1, 0, 1};
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(cfg.deployments[i].group == groups[i]);
    CHECK(cfg.deployments[i].index_in_group == positions[i]);
  }
}

TEST_CASE("config: index_groups on a hand-built config derives the groups") {
  router_config cfg;
  cfg.deployments.resize(3);
  cfg.deployments[0].model_name = "x";
  cfg.deployments[1].model_name = "y";
  cfg.deployments[2].model_name = "x";
  cfg.index_groups();
  REQUIRE(cfg.groups.size() == 2);
  CHECK(cfg.groups[0].deployments == std::vector<std::uint32_t>{0, 2});
  CHECK(cfg.find_group("y") == 1u);
  CHECK(cfg.deployments[2].group == 0);
  CHECK(cfg.deployments[2].index_in_group == 1);
}

TEST_CASE("config: every invalid value is reported at its JSON path") {
  struct bad_case {
    const char* pointer;
    json value;
    const char* path;
    std::string message;
  };
  const std::string kinds = "unknown error kind; expected one of: " + error_kind_names();
  const std::string retries =
    "unknown key; expected one of: BadRequestErrorRetries, AuthenticationErrorRetries, "
    "TimeoutErrorRetries, RateLimitErrorRetries, ContentPolicyViolationErrorRetries, "
    "InternalServerErrorRetries";
  const std::string allowed =
    "unknown key; expected one of: BadRequestErrorAllowedFails, AuthenticationErrorAllowedFails, "
    "TimeoutErrorAllowedFails, RateLimitErrorAllowedFails, ContentPolicyViolationErrorAllowedFails, "
    "InternalServerErrorAllowedFails";
  const bad_case cases[] = {
    {"/model_list", json::array(), "model_list", "expected a non-empty array"},
    {"/model_list", "x", "model_list", "expected a non-empty array"},
    {"/model_list/0", 3, "model_list[0]", "expected an object"},
    {"/model_list/0/model_name", "", "model_list[0].model_name", "expected a non-empty string"},
    {"/model_list/0/model_name", 3, "model_list[0].model_name", "expected a non-empty string"},
    {"/model_list/0/rpm", -5, "model_list[0].rpm", "expected a number >= 0"},
    {"/model_list/0/tpm", "5", "model_list[0].tpm", "expected a number >= 0"},
    {"/model_list/0/litellm_params", json::array(), "model_list[0].litellm_params", "expected an object"},
    {"/model_list/0/litellm_params/model", "", "model_list[0].litellm_params.model", "expected a non-empty string"},
    {"/model_list/0/litellm_params/api_key", 5, "model_list[0].litellm_params.api_key", "expected a string"},
    {"/model_list/0/litellm_params/api_base", false, "model_list[0].litellm_params.api_base", "expected a string"},
    {"/model_list/0/litellm_params/weight", -1, "model_list[0].litellm_params.weight", "expected a number >= 0"},
    {"/model_list/0/litellm_params/weight", "50", "model_list[0].litellm_params.weight", "expected a number >= 0"},
    {"/model_list/0/litellm_params/rpm", -0.5, "model_list[0].litellm_params.rpm", "expected a number >= 0"},
    {"/model_list/0/litellm_params/tpm", true, "model_list[0].litellm_params.tpm", "expected a number >= 0"},
    {"/model_list/0/litellm_params/order", 0, "model_list[0].litellm_params.order", "expected an integer >= 1"},
    {"/model_list/0/litellm_params/order", 1.5, "model_list[0].litellm_params.order", "expected an integer >= 1"},
    {"/model_list/0/litellm_params/order", 3000000000u, "model_list[0].litellm_params.order", "expected an integer <= 2147483647"},
    {"/model_list/0/litellm_params/timeout", 0, "model_list[0].litellm_params.timeout", "expected a number > 0"},
    {"/model_list/0/litellm_params/cooldown_time", -1, "model_list[0].litellm_params.cooldown_time", "expected a number >= 0"},
    {"/model_list/0/litellm_params/num_retries", -1, "model_list[0].litellm_params.num_retries", "expected an integer >= 0"},
    {"/model_list/0/litellm_params/input_cost_per_token", -1, "model_list[0].litellm_params.input_cost_per_token", "expected a number >= 0"},
    {"/model_list/0/litellm_params/output_cost_per_token", "x", "model_list[0].litellm_params.output_cost_per_token", "expected a number >= 0"},
    {"/model_list/0/litellm_params/mock_response", 5, "model_list[0].litellm_params.mock_response", "expected a string, an {\"error\": ...} or a {\"content\": ...} object"},
    {"/model_list/0/litellm_params/mock_response", "litellm.NopeError", "model_list[0].litellm_params.mock_response", kinds},
    {"/model_list/0/litellm_params/mock_latency_ms", -1, "model_list[0].litellm_params.mock_latency_ms", "expected a number >= 0"},
    {"/model_list/0/litellm_params/mock_failure_rate", 1.5, "model_list[0].litellm_params.mock_failure_rate", "expected a number between 0 and 1"},
    {"/model_list/0/litellm_params/mock_failure_rate", -0.1, "model_list[0].litellm_params.mock_failure_rate", "expected a number between 0 and 1"},
    {"/model_list/0/litellm_params/mock_failure", "Nope", "model_list[0].litellm_params.mock_failure", kinds},
    {"/model_list/0/litellm_params/mock_failure", 3, "model_list[0].litellm_params.mock_failure", "expected a non-empty string"},
    {"/model_list/0/litellm_params/mock_failure_after_calls", -1, "model_list[0].litellm_params.mock_failure_after_calls", "expected an integer >= 0"},
    {"/model_list/0/model_info", "x", "model_list[0].model_info", "expected an object"},
    {"/model_list/0/model_info", {{"id", true}}, "model_list[0].model_info.id", "expected a non-empty string or a number"},
    {"/model_list/0/model_info", {{"id", ""}}, "model_list[0].model_info.id", "expected a non-empty string or a number"},
    {"/model_list/0/model_info", {{"max_input_tokens", -1}}, "model_list[0].model_info.max_input_tokens", "expected an integer >= 0"},
    {"/model_list/0/model_info", {{"max_input_tokens", 1.5}}, "model_list[0].model_info.max_input_tokens", "expected an integer >= 0"},
    {"/model_list/0/model_info", {{"output_cost_per_token", -2}}, "model_list[0].model_info.output_cost_per_token", "expected a number >= 0"},
    {"/router_settings", json::array(), "router_settings", "expected an object"},
    {"/router_settings/routing_strategy", 5, "router_settings.routing_strategy", "expected a non-empty string"},
    {"/router_settings/num_retries", -1, "router_settings.num_retries", "expected an integer >= 0"},
    {"/router_settings/num_retries", 1.5, "router_settings.num_retries", "expected an integer >= 0"},
    {"/router_settings/timeout", 0, "router_settings.timeout", "expected a number > 0"},
    {"/router_settings/allowed_fails", -1, "router_settings.allowed_fails", "expected an integer >= 0"},
    {"/router_settings/cooldown_time", -1, "router_settings.cooldown_time", "expected a number >= 0"},
    {"/router_settings/disable_cooldowns", "yes", "router_settings.disable_cooldowns", "expected true or false"},
    {"/router_settings/enable_weighted_failover", 1, "router_settings.enable_weighted_failover", "expected true or false"},
    {"/router_settings/enable_pre_call_checks", "false", "router_settings.enable_pre_call_checks", "expected true or false"},
    {"/router_settings/fallbacks", json::object(), "router_settings.fallbacks", "expected an array of {\"group\": [\"fallback group\", ...]} objects"},
    {"/router_settings/fallbacks", {5}, "router_settings.fallbacks[0]", "expected an object mapping a model group to fallback groups"},
    {"/router_settings/fallbacks", json::parse(R"([{"g": "g"}])"), "router_settings.fallbacks[0].g", "expected an array of model group names"},
    {"/router_settings/fallbacks", json::parse(R"([{"g": [1]}])"), "router_settings.fallbacks[0].g[0]", "expected a string"},
    {"/router_settings/fallbacks", json::parse(R"([{"g": ["g"]}, {"gpt-4o": ["g", "x"]}])"), "router_settings.fallbacks[1].gpt-4o[1]", "unknown model group 'x'"},
    {"/router_settings/context_window_fallbacks", json::parse(R"([{"*": ["y"]}])"), "router_settings.context_window_fallbacks[0].*[0]", "unknown model group 'y'"},
    {"/router_settings/content_policy_fallbacks", json::parse(R"([{"g": ["z"]}])"), "router_settings.content_policy_fallbacks[0].g[0]", "unknown model group 'z'"},
    {"/router_settings/default_fallbacks", "g", "router_settings.default_fallbacks", "expected an array of model group names"},
    {"/router_settings/default_fallbacks", {"g", "zz"}, "router_settings.default_fallbacks[1]", "unknown model group 'zz'"},
    {"/router_settings/max_fallbacks", -1, "router_settings.max_fallbacks", "expected an integer >= 0"},
    {"/router_settings/routing_strategy_args", 3, "router_settings.routing_strategy_args", "expected an object"},
    {"/router_settings/routing_strategy_args", {{"lowest_latency_buffer", -0.1}}, "router_settings.routing_strategy_args.lowest_latency_buffer", "expected a number >= 0"},
    {"/model_list/0/litellm_params/stream_timeout", 0, "model_list[0].litellm_params.stream_timeout", "expected a number > 0"},
    {"/model_list/0/litellm_params/stream_timeout", "10", "model_list[0].litellm_params.stream_timeout", "expected a number > 0"},
    {"/router_settings/stream_timeout", -1, "router_settings.stream_timeout", "expected a number > 0"},
    {"/router_settings/retry_policy", 3, "router_settings.retry_policy", "expected an object"},
    {"/router_settings/retry_policy", {{"RateLimitErrorRetries", -1}}, "router_settings.retry_policy.RateLimitErrorRetries", "expected an integer >= 0"},
    {"/router_settings/retry_policy", {{"TimeoutErrorRetries", 1.5}}, "router_settings.retry_policy.TimeoutErrorRetries", "expected an integer >= 0"},
    {"/router_settings/retry_policy", {{"InternalServerErrorRetries", "2"}}, "router_settings.retry_policy.InternalServerErrorRetries", "expected an integer >= 0"},
    {"/router_settings/retry_policy", {{"TimeoutRetries", 1}}, "router_settings.retry_policy.TimeoutRetries", retries},
    {"/router_settings/retry_policy", {{"RateLimitErrorAllowedFails", 1}}, "router_settings.retry_policy.RateLimitErrorAllowedFails", retries},
    {"/router_settings/allowed_fails_policy", "x", "router_settings.allowed_fails_policy", "expected an object"},
    {"/router_settings/allowed_fails_policy", {{"AuthenticationErrorAllowedFails", -3}}, "router_settings.allowed_fails_policy.AuthenticationErrorAllowedFails", "expected an integer >= 0"},
    {"/router_settings/allowed_fails_policy", {{"RateLimitErrorRetries", 2}}, "router_settings.allowed_fails_policy.RateLimitErrorRetries", allowed},
    {"/router_settings/model_group_retry_policy", json::array(), "router_settings.model_group_retry_policy", "expected an object"},
    {"/router_settings/model_group_retry_policy", {{"nope", json::object()}}, "router_settings.model_group_retry_policy.nope", "unknown model group"},
    {"/router_settings/model_group_retry_policy", {{"g", 5}}, "router_settings.model_group_retry_policy.g", "expected an object"},
    {"/router_settings/model_group_retry_policy", {{"g", {{"BadRequestErrorRetries", -2}}}}, "router_settings.model_group_retry_policy.g.BadRequestErrorRetries", "expected an integer >= 0"},
    {"/router_settings/model_group_retry_policy", {{"g", {{"Retries", 1}}}}, "router_settings.model_group_retry_policy.g.Retries", retries},
    {"/router_settings/model_group_alias", "g", "router_settings.model_group_alias", "expected an object"},
    {"/router_settings/model_group_alias", {{"a", 5}}, "router_settings.model_group_alias.a", "expected a model group name or a {\"model\": ..., \"hidden\": ...} object"},
    {"/router_settings/model_group_alias", {{"a", "zz"}}, "router_settings.model_group_alias.a", "unknown model group 'zz'"},
    {"/router_settings/model_group_alias", {{"a", ""}}, "router_settings.model_group_alias.a", "expected a non-empty string"},
    {"/router_settings/model_group_alias", {{"g", "g"}}, "router_settings.model_group_alias.g", "alias has the name of a model group"},
    {"/router_settings/model_group_alias", {{"", "g"}}, "router_settings.model_group_alias", "expected non-empty alias names"},
    {"/router_settings/model_group_alias", {{"a", {{"hidden", true}}}}, "router_settings.model_group_alias.a.model", "is required"},
    {"/router_settings/model_group_alias", {{"a", {{"model", 3}}}}, "router_settings.model_group_alias.a.model", "expected a non-empty string"},
    {"/router_settings/model_group_alias", {{"a", {{"model", "zz"}}}}, "router_settings.model_group_alias.a.model", "unknown model group 'zz'"},
    {"/router_settings/model_group_alias", {{"a", {{"model", "g"}, {"hidden", "yes"}}}}, "router_settings.model_group_alias.a.hidden", "expected true or false"},
    {"/litellm_settings", 5, "litellm_settings", "expected an object"},
    {"/litellm_settings/num_retries", -1, "litellm_settings.num_retries", "expected an integer >= 0"},
    {"/litellm_settings/request_timeout", 0, "litellm_settings.request_timeout", "expected a number > 0"},
    {"/litellm_settings/allowed_fails", "3", "litellm_settings.allowed_fails", "expected an integer >= 0"},
    {"/litellm_settings/cooldown_time", -1, "litellm_settings.cooldown_time", "expected a number >= 0"},
    {"/litellm_settings/retry_policy", {{"X", 1}}, "litellm_settings.retry_policy.X", retries},
    {"/litellm_settings/fallbacks", json::parse(R"([{"g": ["x"]}])"), "litellm_settings.fallbacks[0].g[0]", "unknown model group 'x'"},
    {"/litellm_settings/context_window_fallbacks", 3, "litellm_settings.context_window_fallbacks", "expected an array of {\"group\": [\"fallback group\", ...]} objects"},
    {"/litellm_settings/content_policy_fallbacks", json::parse(R"([{"g": "g"}])"), "litellm_settings.content_policy_fallbacks[0].g", "expected an array of model group names"},
    {"/litellm_settings/default_fallbacks", {"zz"}, "litellm_settings.default_fallbacks[0]", "unknown model group 'zz'"},
  };
  for (const auto& c : cases) {
    json doc = json::parse(R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m"}}],
                               "router_settings": {}})");
    doc[json::json_pointer(c.pointer)] = c.value;
    INFO(c.pointer << " = " << c.value.dump());
    std::vector<config_problem> problems;
    try {
      load_config(ordered_json(doc), fake_env());
    } catch (const config_error& e) {
      problems = e.problems();
    }
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == c.path);
    CHECK(problems[0].message == c.message);
  }
}

TEST_CASE("config: required keys") {
  CHECK(problems_of("{}").at(0).path == "model_list");
  CHECK(problems_of("{}").at(0).message == "is required");
  const auto problems = problems_of(R"({"model_list": [{"litellm_params": {}}, {"model_name": "g"}]})");
  REQUIRE(problems.size() == 3);
  CHECK(problems[0].path == "model_list[0].model_name");
  CHECK(problems[0].message == "is required");
  CHECK(problems[1].path == "model_list[0].litellm_params.model");
  CHECK(problems[1].message == "is required");
  CHECK(problems[2].path == "model_list[1].litellm_params");
  CHECK(problems[2].message == "is required");
  const auto root = problems_of("[1, 2]");
  REQUIRE(root.size() == 1);
  CHECK(root[0].path == "(root)");
  CHECK(root[0].message == "expected a JSON object");
}

TEST_CASE("config: every problem is collected, one per line in what()") {
  const std::string text = R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "m", "weight": -1}},
      {"model_name": "", "litellm_params": {"model": "n"}}],
    "router_settings": {"fallbacks": [{"g": ["x"]}]}})";
  const auto problems = problems_of(text);
  REQUIRE(problems.size() == 3);
  CHECK(what_of(text)
        == "model_list[0].litellm_params.weight: expected a number >= 0\n"
           "model_list[1].model_name: expected a non-empty string\n"
           "router_settings.fallbacks[0].g[0]: unknown model group 'x'");
}

TEST_CASE("config: unknown keys are ignored") {
  const auto cfg = load_config_text(R"({
    "model_list": [{"model_name": "g", "extra": 1,
                    "litellm_params": {"model": "m", "api_version": "2024-02-01", "temperature": 0.2},
                    "model_info": {"mode": "chat", "base_model": "gpt-4o"}}],
    "litellm_settings": {"drop_params": true}, "general_settings": {},
    "router_settings": {"redis_host": "localhost", "routing_strategy_args": {"ttl": 60}}})",
                                    fake_env());
  CHECK(cfg.deployments.size() == 1);
  CHECK(cfg.deployments[0].model == "m");
}

TEST_CASE("config: routing_strategy must name a registered strategy") {
  for (const char* name : {"simple-shuffle", "latency-based-routing"}) {
    const auto cfg = load_config_text(
      one_deployment(R"({"model": "m"})", std::string(R"({"routing_strategy": ")") + name + "\"}"),
      fake_env());
    CHECK(cfg.settings.routing_strategy == name);
  }
  const auto problems =
    problems_of(one_deployment(R"({"model": "m"})", R"({"routing_strategy": "round-robin"})"));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "router_settings.routing_strategy");
  CHECK(problems[0].message
        == "unknown routing strategy 'round-robin'; expected one of: "
             + strategy_registry::builtin().names());
}

TEST_CASE("config: routing_strategy accepts every strategy of the built-in registry") {
  // The lead's registry grows (least-busy, usage-based-routing-v2,
  // cost-based-routing): whatever it holds is accepted, nothing else.
  const std::string names = strategy_registry::builtin().names();
  std::size_t start = 0;
  while (start < names.size()) {
    const auto comma = names.find(", ", start);
    const std::string name = names.substr(start, comma - start);
    INFO(name);
    const auto cfg = load_config_text(
      one_deployment(R"({"model": "m"})", R"({"routing_strategy": ")" + name + "\"}"), fake_env());
    CHECK(cfg.settings.routing_strategy == name);
    start = comma == std::string::npos ? names.size() : comma + 2;
  }
  // LiteLLM's "usage-based-routing" is its older v1 implementation, not an
  // alias of v2: it is only accepted if the registry has it.
  if (!strategy_registry::builtin().contains("usage-based-routing"))
    CHECK(problems_of(one_deployment(R"({"model": "m"})",
                                     R"({"routing_strategy": "usage-based-routing"})"))
            .at(0)
            .path
          == "router_settings.routing_strategy");
}

TEST_CASE("config: parse_mock_response") {
  std::vector<config_problem> problems;
  SECTION("a plain string is a reply") {
    const auto m = parse_mock_response("hello there", "p", problems);
    CHECK(m.kind == mock_spec::mode::reply);
    CHECK(m.content == "hello there");
  }
  SECTION("null is unset") {
    CHECK_FALSE(parse_mock_response(nullptr, "p", problems).is_set());
  }
  SECTION("litellm.<Kind> is that failure") {
    const auto m = parse_mock_response("litellm.RateLimitError", "p", problems);
    CHECK(m.kind == mock_spec::mode::fail);
    CHECK(m.error.kind == error_kind::rate_limit);
    CHECK(m.error.status == 429);
    CHECK(m.error.message == "this is a mock RateLimitError");
    CHECK_FALSE(m.error.retry_after_s);
  }
  SECTION("an error object") {
    const auto m = parse_mock_response(
      json{{"error", "RateLimitError"}, {"message", "m"}, {"retry_after", 2}}, "p", problems);
    CHECK(m.kind == mock_spec::mode::fail);
    CHECK(m.error.kind == error_kind::rate_limit);
    CHECK(m.error.message == "m");
    CHECK(m.error.retry_after_s == 2.0);
  }
  SECTION("an error object with the litellm. prefix and no message") {
    const auto m = parse_mock_response(json{{"error", "litellm.Timeout"}}, "p", problems);
    CHECK(m.error.kind == error_kind::timeout);
    CHECK(m.error.status == 408);
    CHECK(m.error.message == "this is a mock Timeout");
  }
  SECTION("an unknown kind lists the valid ones") {
    const auto m = parse_mock_response("litellm.TeapotError", "p", problems);
    CHECK_FALSE(m.is_set());
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "p");
    CHECK(problems[0].message == "unknown error kind; expected one of: " + error_kind_names());
    CHECK(problems[0].message.find("RateLimitError") != std::string::npos);
  }
  SECTION("bad error objects") {
    parse_mock_response(json{{"error", "TeapotError"}}, "p", problems);
    parse_mock_response(json{{"message", "m"}}, "q", problems);
    parse_mock_response(json{{"error", "RateLimitError"}, {"retry_after", -1}, {"message", 3}}, "r", problems);
    parse_mock_response(json::array(), "s", problems);
    REQUIRE(problems.size() == 5);
    CHECK(problems[0].path == "p.error");
    CHECK(problems[0].message == "unknown error kind; expected one of: " + error_kind_names());
    CHECK(problems[1].path == "q.error");
    CHECK(problems[1].message == "is required");
    CHECK(problems[2].path == "r.message");
    CHECK(problems[2].message == "expected a string");
    CHECK(problems[3].path == "r.retry_after");
    CHECK(problems[3].message == "expected a number >= 0");
    CHECK(problems[4].path == "s");
    CHECK(problems[4].message == "expected a string, an {\"error\": ...} or a {\"content\": ...} object");
  }
}

TEST_CASE("config: a deployment's mock_response object") {
  const auto cfg = load_config_text(
    one_deployment(R"({"model": "m", "mock_response": {"error": "RateLimitError", "message": "slow down", "retry_after": 3}})"),
    fake_env());
  const auto& m = cfg.deployments.at(0).mock;
  CHECK(m.kind == mock_spec::mode::fail);
  CHECK(m.error.kind == error_kind::rate_limit);
  CHECK(m.error.message == "slow down");
  CHECK(m.error.retry_after_s == 3.0);
}

TEST_CASE("config: secrets never appear in config_error::what()") {
  const std::string planted = "sk-PLANTED-SECRET-42";
  const auto env = fake_env({{"KEY", planted}, {"STRATEGY", planted}, {"GROUP", planted},
                             {"WEIGHT", planted}, {"KIND", planted}});
  SECTION("values from the environment, and a literal api_key, next to errors") {
    const std::string text = R"({
      "model_list": [{"model_name": "g", "litellm_params": {"model": "m", "api_key": ")" + planted + R"(",
                      "weight": "os.environ/WEIGHT", "mock_failure": "os.environ/KIND"}},
                     {"model_name": "g", "litellm_params": {"model": "m", "api_key": "os.environ/KEY"},
                      "model_info": {"id": 5, "max_input_tokens": -1}}],
      "router_settings": {"routing_strategy": "os.environ/STRATEGY",
                          "fallbacks": [{"g": ["os.environ/GROUP"]}]}})";
    const auto problems = problems_of(text, env);
    REQUIRE(problems.size() == 5);
    CHECK(problems[0].path == "model_list[0].litellm_params.weight");
    CHECK(problems[1].path == "model_list[0].litellm_params.mock_failure");
    CHECK(problems[2].path == "model_list[1].model_info.max_input_tokens");
    CHECK(problems[3].path == "router_settings.routing_strategy");
    CHECK(problems[3].message
          == "unknown routing strategy; expected one of: " + strategy_registry::builtin().names());
    CHECK(problems[4].path == "router_settings.fallbacks[0].g[0]");
    CHECK(problems[4].message == "unknown model group");
    CHECK(what_of(text, env).find("PLANTED") == std::string::npos);
  }
  SECTION("a syntax error right after a secret") {
    const std::string text =
      "{\"model_list\": [{\"litellm_params\": {\"api_key\": \"" + planted + "\n\"}}]}";
    const auto what = what_of(text, env);
    CHECK(what.find("PLANTED") == std::string::npos);
    // nlohmann counts the newline it stopped on as the start of line 2.
    CHECK(what.rfind("line 2, column 0: syntax error while parsing value - invalid string", 0) == 0);
  }
}

TEST_CASE("config: a JSON syntax error gives the line and column") {
  const auto problems = problems_of("{\n  \"model_list\": [\n    {\"model_name\": \"a\",, }\n  ]\n}");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "line 3, column 24");
  CHECK(problems[0].message
        == "syntax error while parsing object key - unexpected ','; expected string literal");
}

TEST_CASE("config: a number too large for a double is a config_error") {
  const auto problems = problems_of(one_deployment(R"({"model": "m", "timeout": 1e999})"));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "(root)");
  CHECK(problems[0].message == "a number is too large");
}

TEST_CASE("config: load_config_file") {
  const auto dir = std::filesystem::temp_directory_path();
  SECTION("an unreadable file names the file") {
    const std::string missing = (dir / "switchyard-no-such-config.json").string();
    std::vector<config_problem> problems;
    try {
      load_config_file(missing, fake_env());
    } catch (const config_error& e) {
      problems = e.problems();
    }
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == missing);
    CHECK(problems[0].message == "cannot read file: No such file or directory");
  }
  SECTION("a file is read in file order") {
    const std::string file = (dir / "switchyard-test-config.json").string();
    {
      std::ofstream out(file);
      out << R"({"model_list": [{"model_name": "gpt-4o", "litellm_params":
                 {"model": "azure/eastus2", "api_key": "sk-test-123", "weight": 50}}]})";
    }
    const auto cfg = load_config_file(file, fake_env());
    std::remove(file.c_str());
    CHECK(cfg.deployments.at(0).id
          == "0bda56416ce03fb55611fd2ecd70865c6a80e004027383bb225c46ab9773b6a6");
  }
}

TEST_CASE("config: per_kind_counts::for_kind follows LiteLLM's exception classes") {
  per_kind_counts all;
  all.bad_request = 1;
  all.authentication = 2;
  all.timeout = 3;
  all.rate_limit = 4;
  all.content_policy_violation = 5;
  all.internal_server = 6;
  CHECK(all.for_kind(error_kind::bad_request) == 1);
  CHECK(all.for_kind(error_kind::context_window_exceeded) == 1); // a BadRequestError
  CHECK(all.for_kind(error_kind::content_policy_violation) == 5); // its own entry first
  CHECK(all.for_kind(error_kind::authentication) == 2);
  CHECK(all.for_kind(error_kind::timeout) == 3);
  CHECK(all.for_kind(error_kind::rate_limit) == 4);
  CHECK(all.for_kind(error_kind::internal_server) == 6);
  // No entry of their own: no override.
  for (auto k : {error_kind::permission_denied, error_kind::not_found,
                 error_kind::unprocessable_entity, error_kind::api_connection,
                 error_kind::bad_gateway, error_kind::service_unavailable,
                 error_kind::no_deployments_available, error_kind::overloaded,
                 error_kind::shutdown, error_kind::cancelled}) {
    INFO(name_of(k));
    CHECK_FALSE(all.for_kind(k));
  }

  per_kind_counts only_bad_request;
  only_bad_request.bad_request = 7;
  // A ContentPolicyViolation without its own entry is a BadRequestError.
  CHECK(only_bad_request.for_kind(error_kind::content_policy_violation) == 7);
  CHECK(only_bad_request.for_kind(error_kind::context_window_exceeded) == 7);
  CHECK_FALSE(only_bad_request.for_kind(error_kind::rate_limit));

  per_kind_counts only_content_policy;
  only_content_policy.content_policy_violation = 0;
  CHECK(only_content_policy.for_kind(error_kind::content_policy_violation) == 0);
  CHECK_FALSE(only_content_policy.for_kind(error_kind::bad_request));
  CHECK_FALSE(only_content_policy.for_kind(error_kind::context_window_exceeded));

  CHECK_FALSE(per_kind_counts{}.for_kind(error_kind::bad_request));
}

TEST_CASE("config: every problem of the retry and allowed-fails policies is collected") {
  const auto problems = problems_of(one_deployment(R"({"model": "m"})", R"({
      "retry_policy": {"RateLimitErrorRetries": -1, "Nope": 1, "TimeoutErrorRetries": 2},
      "allowed_fails_policy": {"TimeoutErrorAllowedFails": 1.5, "BadRequestErrorRetries": 1},
      "model_group_retry_policy": {"h": {"Nope": 1}, "g": {"AuthenticationErrorRetries": "x"}}})"));
  REQUIRE(problems.size() == 7);
  CHECK(problems[0].path == "router_settings.retry_policy.RateLimitErrorRetries");
  CHECK(problems[1].path == "router_settings.retry_policy.Nope");
  CHECK(problems[2].path == "router_settings.allowed_fails_policy.TimeoutErrorAllowedFails");
  CHECK(problems[3].path == "router_settings.allowed_fails_policy.BadRequestErrorRetries");
  CHECK(problems[4].path == "router_settings.model_group_retry_policy.h");
  CHECK(problems[4].message == "unknown model group");
  CHECK(problems[5].path == "router_settings.model_group_retry_policy.h.Nope");
  CHECK(problems[6].path == "router_settings.model_group_retry_policy.g.AuthenticationErrorRetries");
}

TEST_CASE("config: model_group_alias targets groups, never shadows one") {
  const std::string list = R"("model_list": [{"model_name": "gpt-4o", "litellm_params": {"model": "a"}},
                                             {"model_name": "mini", "litellm_params": {"model": "b"}}])";
  SECTION("string and object forms") {
    const auto cfg = load_config_text("{" + list + R"(, "router_settings": {"model_group_alias":
        {"gpt-4": "gpt-4o", "cheap": {"model": "mini", "hidden": false, "extra": 1}}}})",
                                      fake_env());
    CHECK(cfg.settings.model_group_alias.at("gpt-4") == "gpt-4o");
    CHECK(cfg.settings.model_group_alias.at("cheap") == "mini");
    // An alias is not a group.
    CHECK_FALSE(cfg.find_group("gpt-4"));
  }
  SECTION("an alias of an alias is not a group") {
    const auto problems = problems_of("{" + list + R"(, "router_settings": {"model_group_alias":
        {"gpt-4": "gpt-4o", "gpt-4-turbo": "gpt-4"}}})");
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "router_settings.model_group_alias.gpt-4-turbo");
    CHECK(problems[0].message == "unknown model group 'gpt-4'");
  }
  SECTION("every bad alias is reported") {
    const auto problems = problems_of("{" + list + R"(, "router_settings": {"model_group_alias":
        {"mini": "gpt-4o", "x": "nope", "y": {"model": "nope", "hidden": 1}, "z": ["gpt-4o"]}}})");
    REQUIRE(problems.size() == 5);
    CHECK(problems[0].path == "router_settings.model_group_alias.mini");
    CHECK(problems[0].message == "alias has the name of a model group");
    CHECK(problems[1].path == "router_settings.model_group_alias.x");
    CHECK(problems[2].path == "router_settings.model_group_alias.y.hidden");
    CHECK(problems[3].path == "router_settings.model_group_alias.y.model");
    CHECK(problems[4].path == "router_settings.model_group_alias.z");
  }
  SECTION("a target from the environment is not echoed") {
    const auto problems = problems_of(
      "{" + list + R"(, "router_settings": {"model_group_alias": {"a": "os.environ/TARGET"}}})",
      fake_env({{"TARGET", "sk-PLANTED"}}));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "router_settings.model_group_alias.a");
    CHECK(problems[0].message == "unknown model group");
  }
}

TEST_CASE("config: litellm_settings fills what router_settings leaves unset") {
  const std::string list = R"("model_list": [{"model_name": "a", "litellm_params": {"model": "1"}},
                                             {"model_name": "b", "litellm_params": {"model": "2"}},
                                             {"model_name": "c", "litellm_params": {"model": "3"}}])";
  const std::string litellm_settings = R"("litellm_settings": {
      "num_retries": 7, "request_timeout": 45, "allowed_fails": 2, "cooldown_time": 11,
      "retry_policy": {"RateLimitErrorRetries": 9},
      "fallbacks": [{"a": ["b"]}], "context_window_fallbacks": [{"a": ["c"]}],
      "content_policy_fallbacks": [{"b": ["a"]}], "default_fallbacks": ["c"],
      "drop_params": true, "success_callback": ["langfuse"]})";
  SECTION("alone, in JSON too") {
    const auto cfg = load_config_text("{" + list + ", " + litellm_settings + "}", fake_env());
    const auto& s = cfg.settings;
    CHECK(s.num_retries == 7);
    CHECK(s.timeout_s == 45);
    CHECK(s.allowed_fails == 2);
    CHECK(s.cooldown_time_s == 11);
    CHECK(s.retry_policy.rate_limit == 9);
    REQUIRE(s.fallbacks.size() == 1);
    CHECK(s.fallbacks[0].from == "a");
    CHECK(s.fallbacks[0].to == std::vector<std::string>{"b"});
    REQUIRE(s.context_window_fallbacks.size() == 1);
    CHECK(s.context_window_fallbacks[0].to == std::vector<std::string>{"c"});
    REQUIRE(s.content_policy_fallbacks.size() == 1);
    CHECK(s.content_policy_fallbacks[0].from == "b");
    CHECK(s.default_fallbacks == std::vector<std::string>{"c"});
    // Keys only router_settings has keep their defaults.
    CHECK(s.routing_strategy == "simple-shuffle");
    CHECK(s.max_fallbacks == 5);
  }
  SECTION("router_settings wins for every key both set, whatever the order in the file") {
    const std::string router_settings = R"("router_settings": {
        "num_retries": 0, "timeout": 5, "allowed_fails": 0, "cooldown_time": 0,
        "retry_policy": {"TimeoutErrorRetries": 1},
        "fallbacks": [], "context_window_fallbacks": [{"b": ["c"]}],
        "content_policy_fallbacks": [], "default_fallbacks": []})";
    for (const auto& text : {"{" + list + ", " + litellm_settings + ", " + router_settings + "}",
                             "{" + router_settings + ", " + list + ", " + litellm_settings + "}"}) {
      const auto cfg = load_config_text(text, fake_env());
      const auto& s = cfg.settings;
      CHECK(s.num_retries == 0);
      CHECK(s.timeout_s == 5);
      CHECK(s.allowed_fails == 0);
      CHECK(s.cooldown_time_s == 0);
      // The whole policy is router_settings', not a merge of both.
      CHECK(s.retry_policy.timeout == 1);
      CHECK_FALSE(s.retry_policy.rate_limit);
      CHECK(s.fallbacks.empty());
      REQUIRE(s.context_window_fallbacks.size() == 1);
      CHECK(s.context_window_fallbacks[0].from == "b");
      CHECK(s.content_policy_fallbacks.empty());
      CHECK(s.default_fallbacks.empty());
    }
  }
  SECTION("null in router_settings is unset: litellm_settings' value stays") {
    const auto cfg = load_config_text(
      "{" + list + ", " + litellm_settings
        + R"(, "router_settings": {"num_retries": null, "fallbacks": null}})",
      fake_env());
    CHECK(cfg.settings.num_retries == 7);
    CHECK(cfg.settings.fallbacks.size() == 1);
  }
  SECTION("keys LiteLLM reads only from router_settings are not read from litellm_settings") {
    const auto cfg = load_config_text("{" + list + R"(, "litellm_settings": {
        "timeout": 3, "routing_strategy": "nope", "max_fallbacks": -1, "allowed_fails_policy": 5}})",
                                      fake_env());
    CHECK(cfg.settings.timeout_s == 600);
    CHECK(cfg.settings.routing_strategy == "simple-shuffle");
    CHECK(cfg.settings.max_fallbacks == 5);
  }
  SECTION("problems in both are reported, litellm_settings first") {
    const auto problems = problems_of("{" + list + R"(,
        "router_settings": {"num_retries": -1, "fallbacks": [{"a": ["zz"]}]},
        "litellm_settings": {"num_retries": -2, "request_timeout": "60", "fallbacks": [{"a": ["yy"]}]}})");
    REQUIRE(problems.size() == 5);
    CHECK(problems[0].path == "litellm_settings.num_retries");
    CHECK(problems[1].path == "litellm_settings.request_timeout");
    CHECK(problems[1].message == "expected a number > 0");
    CHECK(problems[2].path == "litellm_settings.fallbacks[0].a[0]");
    CHECK(problems[2].message == "unknown model group 'yy'");
    CHECK(problems[3].path == "router_settings.num_retries");
    CHECK(problems[4].path == "router_settings.fallbacks[0].a[0]");
  }
}

TEST_CASE("config: os.environ/ is resolved only where Switchyard reads the value") {
  SECTION("ignored sections and unknown settings may name unset variables") {
    const auto cfg = load_config_text(R"({
      "model_list": [{"model_name": "g", "litellm_params": {"model": "m"}}],
      "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
      "environment_variables": {"X": "os.environ/Y"},
      "router_settings": {"cache_kwargs": {"password": "os.environ/REDIS_PASSWORD"}},
      "litellm_settings": {"cache_params": {"password": "os.environ/REDIS_PASSWORD"}}})",
                                      fake_env());
    CHECK(cfg.deployments.size() == 1);
  }
  SECTION("a read key names a missing variable: an error at its path") {
    const auto problems = problems_of(R"({
      "model_list": [{"model_name": "g", "litellm_params": {"model": "m", "api_version": "os.environ/AZ_VERSION"}}],
      "litellm_settings": {"fallbacks": [{"g": ["os.environ/FALLBACK"]}]},
      "router_settings": {"model_group_alias": {"a": "os.environ/ALIAS_TARGET"}}})");
    REQUIRE(problems.size() == 3);
    // Unknown litellm_params keys count: the generated id hashes them.
    CHECK(problems[0].path == "model_list[0].litellm_params.api_version");
    CHECK(problems[0].message == "environment variable AZ_VERSION is not set");
    CHECK(problems[1].path == "litellm_settings.fallbacks[0].g[0]");
    CHECK(problems[2].path == "router_settings.model_group_alias.a");
  }
  SECTION("values from the environment are validated like literal ones") {
    const auto problems = problems_of(
      R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m"}}],
          "litellm_settings": {"request_timeout": "os.environ/TIMEOUT"}})",
      fake_env({{"TIMEOUT", "30"}}));
    REQUIRE(problems.size() == 1);
    // Environment values are strings: no number is parsed out of them.
    CHECK(problems[0].path == "litellm_settings.request_timeout");
    CHECK(problems[0].message == "expected a number > 0");
  }
}

TEST_CASE("config: model_info.max_input_tokens 0 is accepted: no prompt fits") {
  const auto cfg = load_config_text(R"({
    "model_list": [{"model_name": "g", "litellm_params": {"model": "m"},
                    "model_info": {"id": "closed", "max_input_tokens": 0}},
                   {"model_name": "g", "litellm_params": {"model": "m2"},
                    "model_info": {"id": "open", "max_input_tokens": 1}}],
    "router_settings": {"enable_pre_call_checks": true}})",
                                    fake_env());
  CHECK(cfg.deployments.at(0).max_input_tokens == 0);
  // The picker's pre-call check leaves only the deployment with room.
  group_picker picker(cfg, 0);
  pick_request one_token;
  one_token.estimated_tokens = 1;
  seeded_random rng(1);
  for (int k = 0; k < 20; ++k)
    CHECK(picker.pick(one_token, {}, rng).chosen == local_index{1});
  pick_request two_tokens;
  two_tokens.estimated_tokens = 2;
  const auto none = picker.pick(two_tokens, {}, rng);
  CHECK_FALSE(none.chosen);
  CHECK(none.context_window);
}
