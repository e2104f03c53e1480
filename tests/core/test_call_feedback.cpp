// The glue between request_flow and the group actors
// (switchyard/call_feedback.hpp), which the orchestrator, the group actors
// and tests/support/flow_driver.hpp all run.

#include "switchyard/call_feedback.hpp"
#include "switchyard/token_estimate.hpp"

#include "support/router_test.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

using namespace switchyard;
using switchyard::test::deployment;

namespace {

// A flow whose next event is the answer of a call to "A".
struct flow_at_call {
  explicit flow_at_call(bool stream = false) {
    auto request = test::hi("g");
    request.stream = stream;
    flow.emplace(test::shared_config({deployment("g", "A"), deployment("g", "B")}),
                 std::make_shared<const chat_request>(std::move(request)));
    REQUIRE(flow->start().what == flow_action::kind::pick);
    group_pick p;
    p.chosen = 0;
    REQUIRE(flow->on_picked(p, std::nullopt).what == flow_action::kind::call);
  }
  std::optional<request_flow> flow;
};

call_outcome answered(const std::string& content, double latency_ms) {
  call_outcome o;
  o.ok = true;
  o.content = content;
  o.latency_ms = latency_ms;
  o.first_token_ms = 7;
  return o;
}

// The whole judgement: the flow's next step and every feedback field.
void check_judged(const judged_call& j, flow_action::kind next, bool ok, bool timed_out,
                  double latency_ms, std::uint64_t tokens) {
  CHECK(j.next.what == next);
  CHECK(j.feedback.ok == ok);
  CHECK(j.feedback.timed_out == timed_out);
  CHECK(j.feedback.latency_ms == latency_ms);
  CHECK(j.feedback.tokens == tokens);
}

} // namespace

TEST_CASE("judge_call: a success carries the latency and the provider's usage") {
  flow_at_call f;
  auto o = answered("hello there", 12.5);
  o.prompt_tokens = 30;
  o.completion_tokens = 4;
  auto j = judge_call(*f.flow, std::move(o));
  check_judged(j, flow_action::kind::finish, true, false, 12.5, 34);
  // Not streamed: no time to first token for latency routing.
  CHECK_FALSE(j.feedback.first_token_ms.has_value());
}

TEST_CASE("judge_call: without reported usage the tokens are estimated") {
  flow_at_call f;
  const auto estimated = f.flow->estimated_tokens();
  auto j = judge_call(*f.flow, answered("hello there", 3));
  CHECK(j.feedback.ok);
  CHECK(j.feedback.tokens == estimated + estimate_text_tokens("hello there"));
}

TEST_CASE("judge_call: a failure is reported by the flow, without tokens") {
  flow_at_call f;
  call_outcome o;
  o.timed_out = true;
  o.latency_ms = 50;
  o.error = router_error::make(error_kind::timeout, "deployment 'A' did not answer");
  auto j = judge_call(*f.flow, std::move(o));
  check_judged(j, flow_action::kind::report_failure, false, true, 50, 0);
}

TEST_CASE("judge_call: a streamed call keeps its time to first token apart") {
  flow_at_call f(true);
  // Ended before any content: a failure before the commit.
  auto j = judge_call(*f.flow, answered("", 40));
  CHECK(j.next.what == flow_action::kind::report_failure);
  CHECK_FALSE(j.feedback.ok);
  CHECK(j.feedback.latency_ms == 40);
  CHECK(j.feedback.first_token_ms == std::optional<double>(7));
}

TEST_CASE("picker_hears_outcomes: all but simple-shuffle without pre-call checks") {
  router_settings s;
  s.routing_strategy = "simple-shuffle";
  CHECK_FALSE(picker_hears_outcomes(s));
  s.enable_pre_call_checks = true;
  CHECK(picker_hears_outcomes(s));
  s.enable_pre_call_checks = false;
  for (const char* name : {"least-busy", "latency-based-routing", "usage-based-routing-v2"}) {
    s.routing_strategy = name;
    CHECK(picker_hears_outcomes(s));
  }
}

TEST_CASE("retry_in: until the first cooldown ends, never negative") {
  const time_point now{std::chrono::hours(1)};
  CHECK_FALSE(retry_in(std::nullopt, now).has_value());
  CHECK(retry_in(now + std::chrono::milliseconds(250), now) == std::optional<seconds_d>(0.25));
  CHECK(retry_in(now - std::chrono::seconds(1), now) == std::optional<seconds_d>(0));
}
