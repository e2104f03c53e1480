#include "switchyard/config_keys.hpp"

#include "switchyard/request.hpp"

#include <stdexcept>
#include <string>
#include <unordered_map>

namespace switchyard {

namespace {

constexpr double inf = std::numeric_limits<double>::infinity();
// The integer bounds of the fields they fill (int, std::int64_t).
constexpr double int_max = 2147483647.0;
constexpr double int64_max = 9223372036854775807.0;

using ks = key_section;
using kt = key_type;

config_key str(ks s, std::string_view n, std::string_view d) { return {s, n, kt::string, -inf, inf, false, d}; }
config_key obj(ks s, std::string_view n, std::string_view d) { return {s, n, kt::object, -inf, inf, false, d}; }
config_key arr(ks s, std::string_view n, std::string_view d) { return {s, n, kt::array, -inf, inf, false, d}; }
config_key any(ks s, std::string_view n, std::string_view d) { return {s, n, kt::any, -inf, inf, false, d}; }
config_key flag(ks s, std::string_view n, std::string_view d) { return {s, n, kt::boolean, -inf, inf, false, d}; }
config_key num(ks s, std::string_view n, double min, std::string_view d, double max = inf) {
  return {s, n, kt::number, min, max, false, d};
}
config_key positive(ks s, std::string_view n, std::string_view d) { return {s, n, kt::number, 0, inf, true, d}; }
config_key integer(ks s, std::string_view n, double min, double max, std::string_view d) {
  return {s, n, kt::integer, min, max, false, d};
}

std::vector<config_key> build() {
  const double retries = max_num_retries;
  return {
    // model_list entries
    str(ks::deployment, "model_name", "required, non-empty string"),
    obj(ks::deployment, "litellm_params", "required, object"),
    obj(ks::deployment, "model_info", "unset"),
    num(ks::deployment, "rpm", 0, "unset"),
    num(ks::deployment, "tpm", 0, "unset"),
    // litellm_params
    str(ks::litellm_params, "model", "required, non-empty string"),
    str(ks::litellm_params, "api_key", "the provider's key variable"),
    str(ks::litellm_params, "api_base", "the provider's base variable, else its default"),
    str(ks::litellm_params, "api_version",
        "`AZURE_API_VERSION`, else `2025-02-01-preview` (LiteLLM's `AZURE_DEFAULT_API_VERSION`)"),
    str(ks::litellm_params, "azure_ad_token", "`AZURE_AD_TOKEN` (only when no key is set)"),
    str(ks::litellm_params, "organization", "unset"),
    obj(ks::litellm_params, "extra_headers", "unset"),
    any(ks::litellm_params, "ssl_verify", "`true`"),
    num(ks::litellm_params, "weight", 0, "unset"),
    num(ks::litellm_params, "rpm", 0, "unset"),
    num(ks::litellm_params, "tpm", 0, "unset"),
    integer(ks::litellm_params, "order", 1, int_max, "unset"),
    positive(ks::litellm_params, "timeout", "unset"),
    positive(ks::litellm_params, "stream_timeout", "unset"),
    num(ks::litellm_params, "cooldown_time", 0, "router's `cooldown_time`"),
    integer(ks::litellm_params, "num_retries", 0, retries, "router's `num_retries`"),
    num(ks::litellm_params, "input_cost_per_token", 0, "unset"),
    num(ks::litellm_params, "output_cost_per_token", 0, "unset"),
    any(ks::litellm_params, "mock_response", "unset"),
    num(ks::litellm_params, "mock_latency_ms", 0, "0"),
    num(ks::litellm_params, "mock_first_token_ms", 0, "unset"),
    num(ks::litellm_params, "mock_latency_jitter_ms", 0, "0"),
    num(ks::litellm_params, "mock_failure_rate", 0, "0", 1),
    str(ks::litellm_params, "mock_failure", "`InternalServerError`"),
    integer(ks::litellm_params, "mock_failure_after_calls", 0, int64_max, "0"),
    // model_info
    any(ks::model_info, "id", "LiteLLM's generated id"),
    integer(ks::model_info, "max_input_tokens", 0, int64_max, "unset"),
    num(ks::model_info, "input_cost_per_token", 0, "unset"),
    num(ks::model_info, "output_cost_per_token", 0, "unset"),
    // router_settings
    str(ks::router_settings, "routing_strategy", "`simple-shuffle`"),
    obj(ks::router_settings, "routing_strategy_args", "unset"),
    num(ks::routing_strategy_args, "lowest_latency_buffer", 0, "0"),
    integer(ks::router_settings, "num_retries", 0, retries, "2"),
    obj(ks::router_settings, "retry_policy", "unset"),
    obj(ks::router_settings, "model_group_retry_policy", "{}"),
    positive(ks::router_settings, "timeout", "600"),
    positive(ks::router_settings, "stream_timeout", "`timeout`"),
    positive(ks::router_settings, "total_timeout", "unset"),
    integer(ks::router_settings, "allowed_fails", 0, int_max, "unset"),
    obj(ks::router_settings, "allowed_fails_policy", "unset"),
    num(ks::router_settings, "cooldown_time", 0, "5"),
    flag(ks::router_settings, "disable_cooldowns", "false"),
    flag(ks::router_settings, "enable_pre_call_checks", "false"),
    flag(ks::router_settings, "enable_weighted_failover", "false"),
    arr(ks::router_settings, "fallbacks", "[]"),
    arr(ks::router_settings, "context_window_fallbacks", "unset"),
    arr(ks::router_settings, "content_policy_fallbacks", "unset"),
    arr(ks::router_settings, "default_fallbacks", "[]"),
    integer(ks::router_settings, "max_fallbacks", 0, int_max, "5"),
    obj(ks::router_settings, "model_group_alias", "{}"),
    str(ks::router_settings, "redis_host", "unset"),
    any(ks::router_settings, "redis_port", "6379"),
    str(ks::router_settings, "redis_password", "unset"),
    str(ks::router_settings, "redis_url", "unset"),
    str(ks::router_settings, "redis_key_prefix", "`switchyard:`"),
    // litellm_settings (defaults: the router setting they feed)
    integer(ks::litellm_settings, "num_retries", 0, retries, "`num_retries`"),
    positive(ks::litellm_settings, "request_timeout", "`timeout`"),
    integer(ks::litellm_settings, "allowed_fails", 0, int_max, "`allowed_fails`"),
    num(ks::litellm_settings, "cooldown_time", 0, "`cooldown_time`"),
    obj(ks::litellm_settings, "retry_policy", "`retry_policy`"),
    arr(ks::litellm_settings, "fallbacks", "the same names"),
    arr(ks::litellm_settings, "context_window_fallbacks", "the same names"),
    arr(ks::litellm_settings, "content_policy_fallbacks", "the same names"),
    arr(ks::litellm_settings, "default_fallbacks", "the same names"),
    // a request body
    str(ks::request, "model", "required, non-empty string"),
    arr(ks::request, "messages", "required, non-empty array"),
    any(ks::request, "mock_response", "the deployment's"),
    flag(ks::request, "mock_testing_context_fallbacks", "false"),
    integer(ks::request, "num_retries", 0, retries, "deployment's, then router's"),
    flag(ks::request, "disable_fallbacks", "false"),
    positive(ks::request, "timeout", "unset"),
    positive(ks::request, "total_timeout", "router's `total_timeout`"),
    flag(ks::request, "stream", "false"),
    num(ks::request, "cooldown_time", 0, ""),
  };
}

std::string trim_number(double v) {
  if (v >= int_max)
    return "";
  auto s = std::to_string(v);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.')
    s.pop_back();
  return s;
}

std::string expected_of(const config_key& k) {
  const bool integer = k.type == kt::integer;
  const std::string what = integer ? "an integer" : "a number";
  if (k.max < int_max && k.max != inf)
    return "expected " + what + (integer ? " from " : " between ") + trim_number(k.min)
           + (integer ? " to " : " and ") + trim_number(k.max);
  if (k.min == -inf)
    return "expected " + what;
  return "expected " + what + (k.above ? " > " : " >= ") + trim_number(k.min);
}

struct index {
  std::vector<config_key> keys = build();
  std::unordered_map<std::string, std::size_t> by_name;
  std::vector<std::string> expected;
  index() {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      by_name.emplace(std::to_string(static_cast<int>(keys[i].section)) + "/"
                        + std::string(keys[i].name),
                      i);
      expected.push_back(expected_of(keys[i]));
    }
  }
};

const index& the_index() {
  static const index i;
  return i;
}

} // namespace

const std::vector<config_key>& config_keys() {
  return the_index().keys;
}

std::vector<std::string_view> config_key_names(key_section section) {
  std::vector<std::string_view> out;
  for (const auto& k : config_keys())
    if (k.section == section)
      out.push_back(k.name);
  return out;
}

const config_key& config_key_of(key_section section, std::string_view name) {
  const auto& i = the_index();
  auto at = i.by_name.find(std::to_string(static_cast<int>(section)) + "/" + std::string(name));
  if (at == i.by_name.end())
    throw std::logic_error("config key not in the table: " + std::string(name));
  return i.keys[at->second];
}

std::string_view expected_text(const config_key& key) {
  const auto& i = the_index();
  return i.expected[static_cast<std::size_t>(&key - i.keys.data())];
}

} // namespace switchyard
