// Fuzz target: one `switchyard run` input line, handled as run handles it.
//
// The line goes through run's own parser (cli::parse_batch_line: JSON, the
// envelope, then parse_chat_request on the body). A request that parses is
// then routed by the pure core (request_flow, driven
// by tests/support/flow_driver.hpp over a fixed configuration with failing,
// slow and fallback groups) and its output line is written with the same
// function run uses (batch_result_line / batch_error_line).
//
// Beyond "no crash, no hang, no leak, no undefined behaviour", it checks:
// - every rejection is a BadRequestError (400) that says where
//   (`line 1: body.messages[0].role: ...`, as run writes it);
// - every output line is one line of valid JSON with the expected shape;
// - the fixed config's api keys (resolved from the environment) never show
//   in an output line.

#include "cli_common.hpp"
#include "support/flow_driver.hpp"

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

using json = nlohmann::json;
using switchyard::error_kind;

constexpr std::string_view marker = "s3cr3t";

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz-request: %s\n%s\n", what, detail.c_str());
  std::abort();
}

// Groups for every path through request_flow: failover, fallbacks,
// context-window and content-policy fallbacks, order tiers, timeouts,
// cooldowns, a group with no mock (APIConnectionError), an alias.
constexpr const char* fixed_config = R"({
  "model_list": [
    {"model_name": "gpt-4o", "litellm_params": {"model": "azure/a", "api_key": "os.environ/KEY_A",
      "weight": 3, "mock_response": "hello from a", "mock_failure_rate": 0.5,
      "mock_failure": "RateLimitError", "mock_latency_ms": 5}, "model_info": {"id": "a"}},
    {"model_name": "gpt-4o", "litellm_params": {"model": "azure/b", "api_key": "os.environ/KEY_B",
      "api_base": "os.environ/BASE_B", "weight": 1, "mock_response": "hello from b",
      "mock_failure_rate": 0.3, "mock_latency_ms": 50, "mock_latency_jitter_ms": 100,
      "timeout": 0.1}, "model_info": {"id": "b", "max_input_tokens": 50}},
    {"model_name": "gpt-4o", "litellm_params": {"model": "azure/c", "order": 2,
      "mock_response": {"content": "filtered", "finish_reason": "content_filter"}},
      "model_info": {"id": "c"}},
    {"model_name": "mini", "litellm_params": {"model": "openai/mini", "api_key": "os.environ/KEY_A",
      "mock_response": "litellm.InternalServerError", "cooldown_time": 0.5},
      "model_info": {"id": "mini-1"}},
    {"model_name": "mini", "litellm_params": {"model": "openai/mini2",
      "mock_response": {"error": "ServiceUnavailableError", "message": "down", "retry_after": 2}},
      "model_info": {"id": "mini-2"}},
    {"model_name": "big", "litellm_params": {"model": "openai/big", "mock_response": "big reply",
      "mock_failure_rate": 0.2, "mock_failure": "AuthenticationError"},
      "model_info": {"id": "big-1", "max_input_tokens": 100000}},
    {"model_name": "bare", "litellm_params": {"model": "openai/bare", "api_key": "os.environ/KEY_A",
      "api_base": "http://127.0.0.1:9/v1"},
      "model_info": {"id": "bare-1"}}
  ],
  "router_settings": {
    "enable_weighted_failover": true, "num_retries": 1, "max_fallbacks": 4,
    "fallbacks": [{"gpt-4o": ["mini", "big"]}, {"mini": ["bare"]}],
    "context_window_fallbacks": [{"gpt-4o": ["big"]}],
    "content_policy_fallbacks": [{"gpt-4o": ["big"]}],
    "default_fallbacks": ["big"],
    "model_group_alias": {"gpt-4": "gpt-4o"}
  }
})";

std::optional<std::string> fixed_env(const std::string& name) {
  return std::string(marker) + "-" + name;
}

const std::shared_ptr<const switchyard::router_config>& config() {
  static const auto c = [] {
    spdlog::set_level(spdlog::level::off);
    return std::make_shared<const switchyard::router_config>(
      switchyard::load_config_text(fixed_config, fixed_env));
  }();
  return c;
}

// Every line run rejects is a BadRequestError naming where: "line 1: ",
// then the envelope's problem or, in the body, its path
// ("body.messages[0].role: ...").
void check_rejection(const switchyard::router_error& e) {
  const std::string_view prefix = "line 1: ";
  const bool says_where =
    e.message.rfind(prefix, 0) == 0 && e.message.size() > prefix.size()
    && (e.message.compare(prefix.size(), 4, "body") != 0
        || e.message.find(": ", prefix.size()) != std::string::npos);
  if (e.kind != error_kind::bad_request || e.status != 400 || !says_where)
    finding("a rejected line is not a BadRequestError saying where", e.message);
}

void check_output_line(const std::string& line, bool secret_check) {
  if (line.find('\n') != std::string::npos)
    finding("an output line spans several lines", line);
  if (secret_check && line.find(marker) != std::string::npos)
    finding("an output line shows an api key or another environment value", line);
  const json out = json::parse(line); // throws (a finding) if not JSON
  if (!out.is_object() || !out.contains("custom_id") || !out.contains("response")
      || !out.contains("error") || !out.contains("switchyard"))
    finding("an output line without its fields", line);
  if (out["response"].is_null() == out["error"].is_null())
    finding("an output line with both or neither of response and error", line);
}

void check_result(const switchyard::route_result& r) {
  const int max_fallbacks = config()->settings.max_fallbacks;
  if (r.fallback_depth < 0 || r.fallback_depth > max_fallbacks)
    finding("fallback_depth outside [0, max_fallbacks]", std::to_string(r.fallback_depth));
  if (!r.ok && r.error.status != switchyard::status_of(r.error.kind))
    finding("an error whose status is not its kind's", r.error.message);
  if (r.ok && (r.attempts.empty() || r.attempts.back().outcome))
    finding("a success whose trace does not end with a success", r.content);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool secret_check = text.find(marker) == std::string::npos;
  switchyard::cli::batch_line line = switchyard::cli::parse_batch_line(text, 1);
  if (!line.request) {
    check_rejection(line.error);
    check_output_line(switchyard::cli::batch_error_line(line.id, line.error), secret_check);
    return 0;
  }
  switchyard::test::flow_driver driver(config(), size);
  const auto result = driver.run(std::move(*line.request));
  check_result(result);
  check_output_line(switchyard::cli::batch_result_line(line.id, result, 1), secret_check);
  return 0;
}
