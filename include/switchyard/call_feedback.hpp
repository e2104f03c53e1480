#pragma once

// The glue between a request_flow and a group's actors: what a finished
// call tells the group's health and picker, which pickers hear it, and the
// picker's "try again in". One copy, used by the orchestrator and the group
// actors (actors/) and by the synchronous test driver
// (tests/support/flow_driver.hpp), so the two cannot drift. Pure.

#include "switchyard/config.hpp"
#include "switchyard/deployment_call.hpp"
#include "switchyard/request_flow.hpp"
#include "switchyard/routing_strategy.hpp"

#include <optional>

namespace switchyard {

/// A finished call as the flow judged it.
struct judged_call {
  /// The flow's next action.
  flow_action next;
  /// What health and the picker hear. `ok` means the flow kept the call a
  /// success (a content-filtered reply is a failure, which the
  /// report_failure action then reports); only then are `tokens` set.
  call_feedback feedback;
};

/// Hands the current call's outcome to `flow` (request_flow::on_call) and
/// builds its feedback: `outcome.latency_ms` is the whole call as the
/// caller measured it; a streamed request's time to first token is kept
/// apart for latency routing; tokens are the provider's usage when it
/// reported both counts, else the flow's estimate plus the reply's.
judged_call judge_call(request_flow& flow, call_outcome outcome);

/// Whether a group's picker hears call outcomes: every strategy but
/// simple-shuffle learns from them, and the pre-call checks count usage.
/// simple-shuffle without them learns nothing, so its picker is spared.
bool picker_hears_outcomes(const router_settings& settings);

/// The picker's "try again in" when it found nothing at `now`: until the
/// first pending cooldown ends (`next_expiry`), never negative; none when
/// nothing cools down.
std::optional<seconds_d> retry_in(std::optional<time_point> next_expiry, time_point now);

} // namespace switchyard
