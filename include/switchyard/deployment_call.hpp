#pragma once

#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"

namespace switchyard {

/// What one deployment call produced. Success carries the content; failure
/// the error (stamped with the deployment's id by the orchestrator).
struct call_outcome {
  bool ok = false;
  std::string content;
  /// The reply's finish_reason ("stop", "content_filter", ...).
  std::string finish_reason = "stop";
  router_error error;
  double latency_ms = 0;
  bool timed_out = false;
  /// Streamed requests: time to the first token, as the transport saw it.
  std::optional<double> first_token_ms;
  /// Success: the provider's complete answer as an OpenAI chat.completion
  /// (for a stream, assembled from its chunks); null when the transport
  /// has none (the flow then builds one from content and finish_reason).
  /// The mock's is deferred until someone reads it.
  lazy_json response;
  /// Usage as the provider reported it; unset: not reported (estimated).
  std::optional<std::uint32_t> prompt_tokens;
  std::optional<std::uint32_t> completion_tokens;
};

/// The timeout of one call (seconds), as LiteLLM's Router._get_timeout: a
/// streamed request uses the deployment's, else the router's,
/// stream_timeout where one is set; otherwise the request's `timeout` > the
/// deployment's > the router's. Pure.
seconds_d call_timeout(const router_settings& settings,
                       const deployment_config& deployment,
                       const chat_request& request);

/// A mock call decided in advance: the outcome, and after how long it is
/// delivered (the deployment actor turns the delay into a timer).
struct mock_call {
  seconds_d delay{0};
  call_outcome outcome;
};

/// Decides a mock deployment's answer (ROUTER_SEMANTICS.md section 3). Pure:
/// the random draw for mock_failure_rate comes from `rng`.
/// `call_number` counts this deployment's calls from 0 (for
/// mock_failure_after_calls). Precedence: force_context_window (mock_testing_context_fallbacks on the
/// first hop) > the request's mock_response > mock_failure_rate draw > the
/// deployment's mock_response. With none of them the deployment has no
/// transport and the answer is an APIConnectionError saying so.
mock_call plan_mock_call(const deployment_config& deployment,
                         const chat_request& request,
                         bool force_context_window, std::uint64_t call_number,
                         random_source& rng);

} // namespace switchyard
