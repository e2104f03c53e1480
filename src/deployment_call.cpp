#include "switchyard/deployment_call.hpp"

#include <algorithm>

namespace switchyard {

namespace {

call_outcome from_mock(const mock_spec& m) {
  call_outcome out;
  if (m.kind == mock_spec::mode::reply) {
    out.ok = true;
    out.content = m.content;
    out.finish_reason = m.finish_reason;
  } else {
    out.error = m.error;
  }
  return out;
}

} // namespace

seconds_d call_timeout(const router_settings& settings,
                       const deployment_config& deployment,
                       const chat_request& request) {
  // LiteLLM's Router._get_timeout: for a streamed request any
  // stream_timeout (deployment, then router) wins over every plain timeout.
  if (request.stream) {
    if (deployment.stream_timeout_s)
      return seconds_d(*deployment.stream_timeout_s);
    if (settings.stream_timeout_s)
      return seconds_d(*settings.stream_timeout_s);
  }
  if (request.timeout_s)
    return seconds_d(*request.timeout_s);
  return seconds_d(deployment.timeout_s.value_or(settings.timeout_s));
}

mock_call plan_mock_call(const deployment_config& deployment,
                         const chat_request& request,
                         bool force_context_window, std::uint64_t call_number,
                         random_source& rng) {
  mock_call call;
  // Draw only when set, so other deployments' sequences stay as they were.
  const double jitter_ms = deployment.mock_latency_jitter_ms > 0
                             ? deployment.mock_latency_jitter_ms * rng.next_unit()
                             : 0.0;
  call.delay = seconds_d((deployment.mock_latency_ms + jitter_ms) / 1000.0);
  // A mock streams its reply in one chunk unless told when the first token
  // comes; never later than the whole reply.
  if (request.stream)
    call.outcome.first_token_ms = std::min(
      deployment.mock_first_token_ms.value_or(call.delay.count() * 1000.0),
      call.delay.count() * 1000.0);
  if (force_context_window) {
    call.outcome.first_token_ms.reset();
    call.outcome.error = router_error::make(
      error_kind::context_window_exceeded,
      "mock_testing_context_fallbacks: this request does not fit the context "
      "window of model group '" + deployment.model_name + "'");
    return call;
  }
  const auto first_token = call.outcome.first_token_ms;
  if (request.mock.is_set()) {
    call.outcome = from_mock(request.mock);
    call.outcome.first_token_ms = first_token;
    return call;
  }
  // Draw only when a rate is set, so a deployment without one leaves the
  // generator's sequence to the others.
  if (deployment.mock_failure_rate > 0
      && call_number >= deployment.mock_failure_after_calls
      && rng.next_unit() < deployment.mock_failure_rate) {
    call.outcome.error = router_error::make(
      deployment.mock_failure,
      "mock_failure_rate: simulated " + std::string(name_of(deployment.mock_failure))
        + " from deployment '" + deployment.id + "'");
    return call;
  }
  if (deployment.mock.is_set()) {
    call.outcome = from_mock(deployment.mock);
    call.outcome.first_token_ms = first_token;
    return call;
  }
  call.outcome.error = router_error::make(
    error_kind::api_connection,
    "deployment '" + deployment.id
      + "' has no mock_response, and this build of Switchyard has no network "
        "transport for it");
  return call;
}

} // namespace switchyard
