#pragma once

#include "switchyard/error.hpp"
#include "switchyard/mock_spec.hpp"
#include "switchyard/secret.hpp"

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace switchyard {

struct provider_endpoint;

/// One entry of `model_list`, validated. Immutable after load.
struct deployment_config {
  /// `model_info.id`, or the LiteLLM-compatible SHA-256 id.
  std::string id;
  /// `model_name`: the model group this deployment serves.
  std::string model_name;
  /// `litellm_params.model`, e.g. "azure/eastus2".
  std::string model;
  /// `model` came from `os.environ/`: a secret like any such value, so
  /// results name the model group instead.
  bool model_from_env = false;
  /// `litellm_params.api_base` / `api_key` as written (the resolved ones,
  /// with the provider's variables and defaults, are in `endpoint`).
  std::string api_base;
  secret api_key;
  /// Where real calls go (switchyard/provider.hpp): null only for a mock, a
  /// deployment with `mock_response` in its litellm_params.
  std::shared_ptr<const provider_endpoint> endpoint;
  std::optional<double> weight;
  std::optional<double> rpm; ///< also accepted at the deployment's top level
  std::optional<double> tpm; ///< likewise
  std::optional<int> order;
  std::optional<double> timeout_s;
  std::optional<double> stream_timeout_s;
  std::optional<double> cooldown_time_s;
  std::optional<int> num_retries;
  std::optional<std::int64_t> max_input_tokens; ///< model_info.max_input_tokens
  std::optional<double> input_cost_per_token;
  std::optional<double> output_cost_per_token;
  /// `litellm_params.mock_response`.
  mock_spec mock;
  /// Simulation extras (not LiteLLM).
  double mock_latency_ms = 0;
  /// A uniform extra delay in [0, jitter) per call, from the seeded draw.
  double mock_latency_jitter_ms = 0;
  /// For streamed requests: when the first token arrives (ms after the
  /// call starts); unset: with the whole reply.
  std::optional<double> mock_first_token_ms;
  double mock_failure_rate = 0;
  error_kind mock_failure = error_kind::internal_server;
  /// Calls served normally before mock_failure_rate applies (an outage that
  /// starts part-way through a run; 0: from the first call).
  std::uint64_t mock_failure_after_calls = 0;

  /// Index of this deployment's group in router_config::groups.
  std::uint32_t group = 0;
  /// Position inside that group's `deployments`.
  std::uint32_t index_in_group = 0;
};

/// One `{"from": ["to", ...]}` entry of a fallbacks list, in file order.
struct fallback_rule {
  std::string from;
  std::vector<std::string> to;
};

/// Counts per error kind, as LiteLLM's RetryPolicy (`<Kind>Retries`) and
/// AllowedFailsPolicy (`<Kind>AllowedFails`) name them: BadRequestError,
/// AuthenticationError, TimeoutError, RateLimitError,
/// ContentPolicyViolationError, InternalServerError. Unset: no override.
struct per_kind_counts {
  std::optional<int> bad_request;
  std::optional<int> authentication;
  std::optional<int> timeout;
  std::optional<int> rate_limit;
  std::optional<int> content_policy_violation;
  std::optional<int> internal_server;
  /// The policy was given (`{}` too), even with no count set.
  bool present = false;

  /// A policy is in force: given, or some count set in code.
  bool is_set() const noexcept {
    return present || bad_request || authentication || timeout || rate_limit
           || content_policy_violation || internal_server;
  }
  /// The count that applies to an error of kind `k` (LiteLLM's isinstance
  /// order: a ContentPolicyViolation or ContextWindowExceeded error is a
  /// BadRequestError unless its own entry is set), or nullopt.
  std::optional<int> for_kind(error_kind k) const;
};

/// Where replicas share state (SHARED_STATE.md): router_settings'
/// `redis_host`, `redis_port`, `redis_password`, `redis_url` (LiteLLM's
/// keys) and `redis_key_prefix` (Switchyard's). Immutable.
struct redis_settings {
  std::string host;
  int port = 6379;
  std::string username; ///< from redis_url's user part (Redis 6 ACL); empty: none
  secret password;
  int db = 0; ///< from redis_url's /db
  /// Prefix of every key and channel, so that several configurations can
  /// share one Redis.
  std::string key_prefix = "switchyard:";
  /// The host or url came from os.environ/: a secret, never printed.
  bool host_from_env = false;
};

/// `router_settings.retry_budget`. Immutable.
struct retry_budget_settings {
  double ratio = 0.2;
  double min_per_second = 10;
  double window_s = 10;
};

/// `router_settings`, validated, with LiteLLM's defaults. Immutable.
struct router_settings {
  std::string routing_strategy = "simple-shuffle";
  int num_retries = 2;
  double timeout_s = 600;
  /// For streamed requests; unset: timeout_s.
  std::optional<double> stream_timeout_s;
  /// `total_timeout` (seconds): bounds a whole request (retries, waits,
  /// failovers, fallbacks); unset: unbounded, as LiteLLM.
  std::optional<double> total_timeout_s;
  /// Unset: the default cooldown rules, unless allowed_fails_policy is set
  /// (then LiteLLM's default of 3 for the kinds the policy leaves out).
  std::optional<int> allowed_fails;
  /// `allowed_fails_policy`: per-kind thresholds, over allowed_fails.
  per_kind_counts allowed_fails_policy;
  /// `retry_policy`: per-kind retry counts, over num_retries.
  per_kind_counts retry_policy;
  /// `model_group_retry_policy`: per group, over retry_policy.
  std::map<std::string, per_kind_counts> model_group_retry_policy;
  /// `model_group_alias`: alias -> model group (the target must exist).
  std::map<std::string, std::string> model_group_alias;
  double cooldown_time_s = 5;
  bool disable_cooldowns = false;
  bool enable_weighted_failover = false;
  bool enable_pre_call_checks = false;
  std::vector<fallback_rule> fallbacks;
  std::vector<fallback_rule> context_window_fallbacks;
  std::vector<fallback_rule> content_policy_fallbacks;
  /// Targets of the `*` rule when no fallbacks entry matches.
  std::vector<std::string> default_fallbacks;
  int max_fallbacks = 5;
  /// routing_strategy_args.lowest_latency_buffer (latency-based-routing).
  double lowest_latency_buffer = 0;
  // --- Resilience beyond LiteLLM (all off by default) ---
  /// `retry_budget` (Finagle RetryBudget): per group, the extra calls of
  /// the last `window_s` may not exceed ratio x first attempts +
  /// min_per_second x window_s. Unset: unbounded, as LiteLLM.
  std::optional<retry_budget_settings> retry_budget;
  /// `hedge_after_ms` (null: off): when a call has not answered after this
  /// long (a stream: not committed by a first chunk), another deployment
  /// of the group is called too; at most `hedge_max` hedges per request.
  std::optional<double> hedge_after_ms;
  int hedge_max = 1;
  /// `panic_threshold` (Envoy healthy_panic_threshold), percent 0-100.
  double panic_threshold = 0;
  /// `cooldown_probe`: a deployment whose cooldown ended takes one request
  /// at a time until one succeeds; a failure then cools it again at once.
  bool cooldown_probe = false;
  /// `cooldown_multiplier`: each cooldown that follows another with no
  /// success in between is this many times longer.
  double cooldown_multiplier = 1;
  /// `max_cooldown_time` (seconds): caps every cooldown.
  std::optional<double> max_cooldown_time_s;
  /// `max_cooldown_percent`: no cooldown starts that would leave more than
  /// this share of the group cooling at once.
  double max_cooldown_percent = 100;
  /// routing_strategy_args.decay_seconds (p2c-peak-ewma).
  double decay_seconds = 10;
  /// Set when redis_host or redis_url is: share state through Redis.
  /// Unset: state stays in the process.
  std::optional<redis_settings> redis;
};

/// A model group: the deployments that serve one public model name.
struct model_group {
  std::string name;
  /// Indices into router_config::deployments, in file order.
  std::vector<std::uint32_t> deployments;
};

/// The whole validated configuration. Built once by load_config and then
/// immutable: share it freely (the router holds it by shared_ptr<const>).
struct router_config {
  std::vector<deployment_config> deployments;
  std::vector<model_group> groups;
  router_settings settings;

  /// Index of a group by name, or nullopt.
  std::optional<std::uint32_t> find_group(std::string_view name) const;
  /// The group a request's `model` names: a group, or an alias of one
  /// (router_settings.model_group_alias); nullopt for neither.
  std::optional<std::uint32_t> resolve_group(std::string_view model) const;

  /// Builds `groups` from the deployments' model_name (in order of first
  /// appearance) when it is empty, sets each deployment's group and
  /// index_in_group, and the name index. load_config calls it; code that
  /// builds a config by hand calls it too.
  void index_groups();

private:
  std::unordered_map<std::string, std::uint32_t> group_index_;
};

/// One problem found while loading: where (a JSON path such as
/// `model_list[2].litellm_params.weight`) and what.
struct config_problem {
  std::string path;
  std::string message;
};

/// Thrown by load_config when the input is not a valid configuration. It
/// carries every problem found, not just the first. what() lists them all,
/// one per line as "path: message". Never contains a secret value.
class config_error : public std::runtime_error {
public:
  explicit config_error(std::vector<config_problem> problems);
  const std::vector<config_problem>& problems() const noexcept {
    return problems_;
  }

private:
  std::vector<config_problem> problems_;
};

/// Looks an environment variable up; injected so tests need no real env.
using env_lookup = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment (std::getenv).
env_lookup process_env();

/// Validates a LiteLLM-style JSON document into a router_config.
/// Throws config_error listing every problem with its path.
/// Takes nlohmann::ordered_json, whose objects keep their order, because
/// generated ids hash litellm_params in file order (as LiteLLM does): so
/// load_config, load_config_text and load_config_file give the same ids
/// for the same config. Parse with nlohmann::ordered_json::parse.
router_config load_config(const nlohmann::ordered_json& doc,
                          const env_lookup& env = process_env());
/// Deleted: nlohmann::json has sorted every object, its file order is lost,
/// and the ids would differ from the ones load_config_text computes for the
/// same text (every replica must compute the same ids: SHARED_STATE.md).
router_config load_config(const nlohmann::json& doc,
                          const env_lookup& env = process_env()) = delete;

/// Parses `text` as JSON first (syntax errors are a config_error with the
/// line and column), then load_config.
router_config load_config_text(const std::string& text,
                               const env_lookup& env = process_env());

/// Reads a file and load_config_text; a missing or unreadable file is a
/// config_error whose path is the file name.
router_config load_config_file(const std::string& file,
                               const env_lookup& env = process_env());

/// The `general_settings` keys the gateway reads (LiteLLM proxy's).
struct general_settings {
  /// `general_settings.master_key` (may be `os.environ/NAME`); empty: none.
  secret master_key;
};

/// Reads `general_settings` from a config file that load_config_file
/// accepts. Throws config_error (never echoing the key) when master_key is
/// not a non-empty string or names an unset environment variable; the rest
/// of the file is load_config_file's business.
general_settings load_general_settings_file(const std::string& file,
                                            const env_lookup& env = process_env());

/// Checks a router_config built in code by the loader's rules (every
/// deployment's values, the strategy name, fallback and alias targets),
/// and indexes its groups. Throws config_error listing every problem with
/// its path. The router runs it on every config it is given.
void validate_config(router_config& config);

/// LiteLLM's generated id: hex SHA-256 of model_name followed by each
/// litellm_params key and value in file order (values written as Python's
/// str() / json.dumps would write them), after secret resolution.
std::string litellm_deployment_id(const std::string& model_name,
                                  const nlohmann::ordered_json& litellm_params);
/// Deleted for the reason load_config(const nlohmann::json&) is.
std::string litellm_deployment_id(const std::string& model_name,
                                  const nlohmann::json& litellm_params) = delete;

/// Parses LiteLLM's `redis_url` (`redis://[[user]:password@]host[:port][/db]`,
/// a `?query` after the db is ignored). On a bad url returns nullopt and
/// sets `error` to what is wrong, without echoing the url (it holds the
/// password). Pure.
std::optional<redis_settings> parse_redis_url(std::string_view url, std::string& error);

/// Parses a mock_response value (string, `litellm.<Kind>` or error object)
/// at `path`; problems are appended to `problems`.
mock_spec parse_mock_response(const nlohmann::json& value,
                              const std::string& path,
                              std::vector<config_problem>& problems);

} // namespace switchyard
