#include "switchyard/call_feedback.hpp"

#include "switchyard/token_estimate.hpp"

#include <algorithm>

namespace switchyard {

judged_call judge_call(request_flow& flow, call_outcome outcome) {
  judged_call j;
  auto& f = j.feedback;
  f.timed_out = outcome.timed_out;
  f.latency_ms = outcome.latency_ms;
  if (flow.request().stream)
    f.first_token_ms = outcome.first_token_ms;
  const std::uint64_t tokens =
    outcome.prompt_tokens && outcome.completion_tokens
      ? std::uint64_t{*outcome.prompt_tokens} + *outcome.completion_tokens
      : flow.estimated_tokens() + estimate_text_tokens(outcome.content);
  j.next = flow.on_call(std::move(outcome));
  f.ok = j.next.what != flow_action::kind::report_failure;
  if (f.ok)
    f.tokens = tokens;
  return j;
}

bool picker_hears_outcomes(const router_settings& settings) {
  return settings.routing_strategy != "simple-shuffle" || settings.enable_pre_call_checks;
}

std::optional<seconds_d> retry_in(std::optional<time_point> next_expiry, time_point now) {
  if (!next_expiry)
    return std::nullopt;
  return std::max(seconds_d(0), seconds_d(*next_expiry - now));
}

} // namespace switchyard
