#pragma once

#include "switchyard/error.hpp"
#include "switchyard/lazy_json.hpp"
#include "switchyard/mock_spec.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

/// The most retries any num_retries (router, deployment, request) or
/// retry_policy entry may ask for. LiteLLM has no limit; without one a
/// single request could hold an orchestrator for hours and grow its trace
/// without bound (a million retries against failures that never cool took
/// 22 s and 660 MB).
inline constexpr int max_num_retries = 100;

/// A chat completion request as the router sees it. Built by the caller,
/// then shared read-only (shared_ptr<const>) by every actor that handles it:
/// no actor ever writes into it (the failover exclusions live in the
/// orchestrator, not here).
struct chat_request {
  /// The model group asked for.
  std::string model;
  /// OpenAI-style messages array.
  nlohmann::json messages = nlohmann::json::array();
  /// Request-level `mock_response`: overrides the deployments' own.
  mock_spec mock;
  /// `mock_testing_context_fallbacks`: the first hop fails with
  /// ContextWindowExceededError.
  bool mock_testing_context_fallbacks = false;
  std::optional<int> num_retries;
  bool disable_fallbacks = false;
  /// `timeout` (seconds): over the deployment's and the router's.
  std::optional<double> timeout_s;
  /// `total_timeout` (seconds): over the router's; bounds the whole request.
  std::optional<double> total_timeout_s;
  /// `stream`: streamed requests use stream_timeout and record
  /// time-to-first-token for latency routing.
  bool stream = false;
  /// `cooldown_time` (seconds): over every other cooldown length for
  /// failures of this request.
  std::optional<double> cooldown_time_s;
  /// `hedge_after_ms`: over router_settings.hedge_after_ms.
  std::optional<double> hedge_after_ms;
  /// Every other key of the caller's body, as the caller sent it (`tools`,
  /// `temperature`, keys nobody here has heard of...): an object, or null
  /// for a request built in code with no extras. `model` and `messages`
  /// live in the fields above, not here. What goes upstream is this, minus
  /// router_request_keys (TRANSPORT.md section 2).
  nlohmann::json body;
};

/// The keys of a request body that are the router's, never sent upstream
/// (TRANSPORT.md section 2; listed in docs/configuration.md).
const std::vector<std::string_view>& router_request_keys();
/// True when `key` is one of router_request_keys().
bool is_router_request_key(std::string_view key) noexcept;

using request_ptr = std::shared_ptr<const chat_request>;

/// Validates an OpenAI-style request body (`model`, `messages`, and the
/// optional `mock_response`, `mock_testing_context_fallbacks`, `num_retries`,
/// `disable_fallbacks`). On error returns a BadRequestError whose message
/// names the offending field's path (prefixed with `path_prefix`).
struct parsed_request {
  std::optional<chat_request> request;
  router_error error;
};
parsed_request parse_chat_request(const nlohmann::json& body,
                                  const std::string& path_prefix = "body");

/// Checks a request built in code as parse_chat_request checks a parsed
/// one: a non-empty model; a non-empty messages array of well-formed
/// messages, nested at most as deep as a request body may be; num_retries
/// in [0, max_num_retries]; a finite timeout > 0; a finite cooldown_time
/// >= 0. The router runs it on every request and answers a failing one
/// with this BadRequestError, whose message names the field under
/// `path_prefix`.
std::optional<router_error> validate_chat_request(const chat_request& request,
                                                  const std::string& path_prefix = "request");

/// One deployment call made for a request.
struct attempt {
  std::string deployment_id;
  std::string model_group;
  /// nullopt: the call succeeded.
  std::optional<error_kind> outcome;
  double latency_ms = 0;
  /// Started as a hedge (hedge_after_ms) while another call was in flight.
  bool hedge = false;
};

/// Where a streamed request committed at its first-chunk gate (TRANSPORT.md
/// section 5), known before its first chunk is delivered: what a gateway
/// needs for its response headers, which leave with that chunk.
struct stream_commit {
  std::string deployment_id;
  std::string model_group;
  /// Calls made so far, the committing one included, and the hedges still
  /// racing it (cancelled now): after the commit no call is added, so this
  /// is the final route_result's attempts.size().
  int attempts = 0;
  /// As route_result::fallback_depth (no hop follows a commit).
  int fallback_depth = 0;
  /// Time spent waiting on providers up to the commit: the finished calls'
  /// latencies plus the committing call's time to its first chunk.
  double upstream_ms = 0;
};

/// What a caller gets back: exactly one per request (section 9).
struct route_result {
  bool ok = false;
  /// Success: the reply's content.
  std::string content;
  /// Success: the serving deployment and its group.
  std::string deployment_id;
  std::string model_group;
  /// The underlying `litellm_params.model` of the serving deployment (its
  /// model group when that value came from `os.environ/`).
  std::string model;
  /// Success: the reply's finish_reason ("stop", "content_filter", ...).
  std::string finish_reason;
  /// Hops after the first one (weighted-failover and fallback hops alike:
  /// both count against max_fallbacks, as in LiteLLM).
  int fallback_depth = 0;
  /// Usage: as the provider reported it, else estimated
  /// (switchyard/token_estimate.hpp) and `usage_estimated` is set.
  std::uint32_t prompt_tokens = 0;
  std::uint32_t completion_tokens = 0;
  bool usage_estimated = true;
  /// Success: the provider's complete answer as an OpenAI `chat.completion`
  /// (every choice with its message, tool_calls and finish_reason; usage;
  /// the provider's id, created and system_fingerprint), with `model` set
  /// to the deployment's model without its provider prefix. For a streamed
  /// request, the answer assembled from its chunks. A mock's is built on
  /// first read (lazy_json).
  lazy_json response;
  /// Failure: the original error (the first hop's), section 8.
  router_error error;
  std::vector<attempt> attempts;
};

} // namespace switchyard
