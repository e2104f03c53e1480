// Switchyard's resilience rules beyond LiteLLM (issue 13), exact: a fake
// clock and scripted draws.

#include "switchyard/cooldown.hpp"
#include "switchyard/fallback.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/p2c_peak_ewma.hpp"
#include "switchyard/request_flow.hpp"
#include "switchyard/retry_budget.hpp"

#include "support/flow_driver.hpp"
#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::flow_driver;
using switchyard::test::group_of;
using switchyard::test::local_of;
using switchyard::test::make_config;
using switchyard::test::scripted_random;

namespace {

time_point at(double seconds) {
  return time_point{} + std::chrono::duration_cast<clock_type::duration>(seconds_d(seconds));
}

router_error server_error() {
  return router_error::make(error_kind::internal_server, "boom");
}

chat_request ask(std::string model) {
  chat_request r;
  r.model = std::move(model);
  r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  return r;
}

/// p2c metrics: `weight` only.
p2c_peak_ewma::metric_values weights(std::vector<std::optional<double>> w) {
  p2c_peak_ewma::metric_values v;
  v[1].assign(w.size(), std::nullopt);
  v[2] = v[1];
  v[0] = std::move(w);
  return v;
}

/// A successful call of `ms` to deployment `i` ended at `t`.
void sample(p2c_peak_ewma& p, local_index i, double ms, time_point t) {
  call_feedback f;
  f.ok = true;
  f.latency_ms = ms;
  p.on_finished(i, f, t);
}

} // namespace

TEST_CASE("retry budget: ratio x first attempts + min_per_second x window, over a sliding window") {
  retry_budget b(retry_budget_settings{0.5, 0.1, 10}); // 1 extra free per window
  CHECK(b.allowance(at(0)) == Approx(1.0));
  CHECK(b.allows_extra(at(0)));
  b.record_extra(at(0));
  CHECK_FALSE(b.allows_extra(at(1))); // 2 > 1
  CHECK(b.refused() == 1);
  b.record_first(at(2));
  b.record_first(at(3)); // 0.5 x 2 + 1 = 2
  CHECK(b.allowance(at(3)) == Approx(2.0));
  CHECK(b.allows_extra(at(3)));
  b.record_extra(at(3));
  CHECK_FALSE(b.allows_extra(at(4)));
  CHECK(b.refused() == 2);
  // At 10 s the first extra (at 0 s) has left the window.
  CHECK(b.extras(at(10)) == 1);
  CHECK(b.allows_extra(at(10)));
  // At 13 s both first attempts and the second extra have left it too.
  CHECK(b.extras(at(13)) == 0);
  CHECK(b.allowance(at(13)) == Approx(1.0));
}

TEST_CASE("retry budget: a spent budget sends a failure to the fallbacks, not to a retry") {
  router_settings s;
  s.num_retries = 3;
  s.retry_budget = retry_budget_settings{0, 0.1, 10}; // one extra per 10 s
  s.fallbacks = {fallback_rule{"g", {"h"}}};
  flow_driver driver(make_config({deployment("g", "A").fails(error_kind::internal_server),
                                  deployment("g", "B").fails(error_kind::internal_server),
                                  deployment("h", "C").reply("ok")},
                                 s));
  auto r = driver.run(ask("g"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "C");
  // One first attempt, one retry within the budget, then the fallback.
  REQUIRE(r.attempts.size() == 3);
  CHECK(driver.calls("A") + driver.calls("B") == 2);
  // The next request within the window gets no retry at all.
  auto r2 = driver.run(ask("g"));
  REQUIRE(r2.ok);
  CHECK(r2.attempts.size() == 2);
}

TEST_CASE("retry budget off: retries as LiteLLM") {
  router_settings s;
  s.num_retries = 3;
  flow_driver driver(make_config({deployment("g", "A").fails(error_kind::internal_server),
                                  deployment("g", "B").fails(error_kind::internal_server)},
                                 s));
  auto r = driver.run(ask("g"));
  CHECK_FALSE(r.ok);
  CHECK(r.attempts.size() == 4);
}

TEST_CASE("panic threshold: picks ignore cooldowns below it, and obey them again above it") {
  CHECK_FALSE(panic_mode(1, 3, 0));
  CHECK(panic_mode(1, 3, 50));      // 33% < 50%
  CHECK_FALSE(panic_mode(2, 3, 50)); // 67%
  CHECK_FALSE(panic_mode(1, 2, 50)); // exactly 50%: not below
  router_settings s;
  s.panic_threshold = 50;
  auto c = make_config({deployment("g", "A").weight(1), deployment("g", "B").weight(1),
                        deployment("g", "C").weight(2)},
                       s);
  group_picker p(c, 0);
  // B and C cool: 1 of 3 available, below 50%: panic, weights apply to all.
  p.set_available({true, false, false});
  CHECK(p.in_panic());
  scripted_random rng{0.9};
  pick_request req;
  auto picked = p.pick(req, at(0), rng);
  REQUIRE(picked.chosen);
  CHECK(*picked.chosen == local_of(c, "C"));
  // C back: 2 of 3, no panic: B is skipped again.
  p.set_available({true, false, true});
  CHECK_FALSE(p.in_panic());
  scripted_random rng2{0.4};
  auto again = p.pick(req, at(0), rng2);
  REQUIRE(again.chosen);
  CHECK(*again.chosen == local_of(c, "C")); // 0.4 x 3 = 1.2 > A's 1
}

TEST_CASE("panic threshold 0: a group all cooling down has nothing to pick") {
  auto c = make_config({deployment("g", "A"), deployment("g", "B")});
  group_picker p(c, 0);
  p.set_available({false, false});
  CHECK_FALSE(p.in_panic());
  scripted_random rng;
  CHECK_FALSE(p.pick(pick_request{}, at(0), rng).chosen);
}

TEST_CASE("cooldown probe: one call at a time on probation, until a success") {
  router_settings s;
  s.cooldown_probe = true;
  auto c = make_config({deployment("g", "A")}, s);
  group_picker p(c, 0);
  p.set_available({false});
  p.set_available({true}); // the cooldown ended: probation
  CHECK(p.on_probation(0));
  scripted_random rng{0.1, 0.1, 0.1};
  auto first = p.pick(pick_request{}, at(0), rng);
  REQUIRE(first.chosen);
  CHECK(first.probe);
  CHECK_FALSE(p.pick(pick_request{}, at(0), rng).chosen); // its probe is in flight
  call_feedback failed;
  p.on_finished(0, failed, at(1));
  CHECK(p.on_probation(0));
  auto second = p.pick(pick_request{}, at(1), rng);
  REQUIRE(second.chosen);
  call_feedback ok;
  ok.ok = true;
  p.on_finished(0, ok, at(2));
  CHECK_FALSE(p.on_probation(0));
  auto third = p.pick(pick_request{}, at(2), rng);
  REQUIRE(third.chosen);
  CHECK_FALSE(third.probe);
}

TEST_CASE("cooldown probe: a failure on probation cools again at once") {
  router_settings s;
  s.cooldown_probe = true;
  s.allowed_fails = 2; // normally the third failure cools
  auto c = make_config({deployment("g", "A"), deployment("g", "B")}, s);
  deployment_health h(c, 0);
  CHECK_FALSE(h.record_failure(0, server_error(), at(0)));
  CHECK_FALSE(h.record_failure(0, server_error(), at(0)));
  auto first = h.record_failure(0, server_error(), at(0));
  REQUIRE(first);
  CHECK(first->count() == Approx(5));
  // Still cooling at 1 s: a late failure does not count as probation.
  auto late = h.record_failure(0, server_error(), at(1));
  CHECK(late); // allowed_fails exceeded anyway (as without the probe)
  // After the cooldown (5 s), the very next failure cools.
  h.record_success(1, at(6));
  auto probe = h.record_failure(0, server_error(), at(70)); // a new minute
  REQUIRE(probe);
  // A success ends the probation: then allowed_fails rules again.
  h.record_success(0, at(200));
  CHECK_FALSE(h.record_failure(0, server_error(), at(201)));
}

TEST_CASE("cooldown multiplier: each cooldown with no success in between is longer, up to the cap") {
  CHECK(escalated_cooldown(seconds_d(5), 0, 2, std::nullopt).count() == Approx(5));
  CHECK(escalated_cooldown(seconds_d(5), 3, 2, std::nullopt).count() == Approx(40));
  CHECK(escalated_cooldown(seconds_d(5), 3, 2, 30.0).count() == Approx(30));
  CHECK(escalated_cooldown(seconds_d(50), 0, 2, 30.0).count() == Approx(30));
  CHECK(escalated_cooldown(seconds_d(5), 100000, 2, 30.0).count() == Approx(30));
  router_settings s;
  s.allowed_fails = 0; // every failure cools
  s.cooldown_multiplier = 3;
  s.max_cooldown_time_s = 100;
  auto c = make_config({deployment("g", "A"), deployment("g", "B")}, s);
  deployment_health h(c, 0);
  CHECK(h.record_failure(0, server_error(), at(0))->count() == Approx(5));
  // Within the cooldown: the same length, no escalation.
  CHECK(h.record_failure(0, server_error(), at(1))->count() == Approx(5));
  CHECK(h.record_failure(0, server_error(), at(10))->count() == Approx(15));
  CHECK(h.record_failure(0, server_error(), at(30))->count() == Approx(45));
  CHECK(h.record_failure(0, server_error(), at(80))->count() == Approx(100)); // 135 capped
  h.record_success(0, at(200));
  CHECK(h.record_failure(0, server_error(), at(201))->count() == Approx(5));
}

TEST_CASE("max cooldown percent: no cooldown leaves more than that share cooling") {
  cooldown_state c(4);
  CHECK(c.within_cap(0, at(0), 50));
  c.start(0, at(0), at(10));
  CHECK(c.within_cap(1, at(0), 50)); // 2 of 4 = 50%
  c.start(1, at(0), at(10));
  CHECK_FALSE(c.within_cap(2, at(0), 50)); // 3 of 4 > 50%
  CHECK(c.within_cap(1, at(0), 50));       // extending one is fine
  CHECK(c.within_cap(2, at(10), 50));      // both ended
  CHECK(c.within_cap(3, at(0), 100));
}

TEST_CASE("max cooldown percent: the flow keeps a failing deployment pickable past the cap") {
  router_settings s;
  s.allowed_fails = 0;
  s.num_retries = 0;
  s.max_cooldown_percent = 50;
  flow_driver driver(make_config({deployment("g", "A").fails(error_kind::internal_server),
                                  deployment("g", "B").fails(error_kind::internal_server)},
                                 s));
  driver.run(ask("g"));
  driver.run(ask("g"));
  const int cooling = (driver.cooling("A") ? 1 : 0) + (driver.cooling("B") ? 1 : 0);
  CHECK(cooling == 1);
}

TEST_CASE("p2c-peak-ewma: two weighted draws, the lower latency x (in flight + 1) wins") {
  const auto v = weights({1.0, 1.0, 2.0});
  p2c_peak_ewma p(v, 10);
  sample(p, 0, 100, at(0));
  sample(p, 2, 300, at(0));
  sample(p, 1, 200, at(0));
  exclusion_list none;
  // Draws: 0.1 x 4 -> A; then without A, 0.9 x 3 -> C (2.7 > B's 1). A: 100 < 300.
  scripted_random r1{0.1, 0.9};
  CHECK(*p.pick(pick_context{none}, r1).chosen == 0);
  // A busy with 3 calls: cost 400 > C's 300.
  pick_context ctx{none};
  for (int k = 0; k < 3; ++k)
    p.on_picked(0, ctx);
  CHECK(p.cost(0) == Approx(400));
  scripted_random r2{0.1, 0.9};
  CHECK(*p.pick(pick_context{none}, r2).chosen == 2);
  // 0.3 x 4 -> B; then without B, 0.0 -> A: B's 200 beats A's 400.
  scripted_random r3{0.3, 0.0};
  CHECK(*p.pick(pick_context{none}, r3).chosen == 1);
  // Unseen deployments cost 0: a tie goes to the first draw.
  p2c_peak_ewma fresh(v, 10);
  scripted_random r4{0.9, 0.0}; // C, then A
  CHECK(*fresh.pick(pick_context{none}, r4).chosen == 2);
  // One candidate: one draw.
  exclusion_list two{0, 1};
  scripted_random r5{0.5};
  CHECK(*fresh.pick(pick_context{two}, r5).chosen == 2);
}

TEST_CASE("p2c-peak-ewma: a slower sample is the peak at once; faster ones decay toward it") {
  p2c_peak_ewma p(weights({std::nullopt}), 10);
  sample(p, 0, 100, at(0));
  CHECK(p.ewma_ms(0) == Approx(100));
  sample(p, 0, 500, at(1));
  CHECK(p.ewma_ms(0) == Approx(500));
  sample(p, 0, 100, at(11)); // 10 s later: w = e^-1
  CHECK(p.ewma_ms(0) == Approx(500 * std::exp(-1.0) + 100 * (1 - std::exp(-1.0))));
  // Cancelled calls and plain failures are no samples.
  call_feedback cancelled;
  cancelled.cancelled = true;
  cancelled.latency_ms = 1;
  p.on_finished(0, cancelled, at(12));
  call_feedback failed;
  failed.latency_ms = 1;
  p.on_finished(0, failed, at(12));
  CHECK(p.ewma_ms(0) == Approx(500 * std::exp(-1.0) + 100 * (1 - std::exp(-1.0))));
}

TEST_CASE("p2c-peak-ewma is in the registry, with decay_seconds from routing_strategy_args") {
  const auto& r = strategy_registry::builtin();
  REQUIRE(r.contains("p2c-peak-ewma"));
  auto c = make_config({deployment("g", "A")});
  router_settings s;
  auto made = r.make("p2c-peak-ewma", {&c.deployments[0]}, s);
  REQUIRE(made);
  CHECK(std::string(made->name()) == "p2c-peak-ewma");
}

TEST_CASE("fallback cycles: named once each, from their lowest group; self-loops left out") {
  router_settings s;
  s.fallbacks = {fallback_rule{"a", {"b", "a"}}, fallback_rule{"b", {"c"}},
                 fallback_rule{"c", {"a", "b"}}};
  auto c = make_config({deployment("a", "A"), deployment("b", "B"), deployment("c", "C"),
                        deployment("d", "D")},
                       s);
  auto cycles = fallback_cycles(c);
  REQUIRE(cycles.size() == 2);
  CHECK(cycles[0] == std::vector<std::uint32_t>{0, 1, 2}); // a -> b -> c -> a
  CHECK(cycles[1] == std::vector<std::uint32_t>{1, 2});    // b -> c -> b
  CHECK(fallback_cycles(c, 1).size() == 1);
  router_settings none;
  none.fallbacks = {fallback_rule{"a", {"b"}}, fallback_rule{"b", {"c"}}};
  CHECK(fallback_cycles(make_config({deployment("a", "A"), deployment("b", "B"),
                                     deployment("c", "C")},
                                    none))
          .empty());
}

TEST_CASE("resilience keys load from router_settings, off by default") {
  auto doc = [](const char* settings) {
    return nlohmann::ordered_json::parse(
      std::string(R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "openai/x", "mock_response": "hi"}}],
                     "router_settings": )")
      + settings + "}");
  };
  auto off = load_config(doc("{}"));
  CHECK_FALSE(off.settings.retry_budget);
  CHECK(off.settings.panic_threshold == 0);
  CHECK_FALSE(off.settings.cooldown_probe);
  CHECK(off.settings.cooldown_multiplier == 1);
  CHECK_FALSE(off.settings.max_cooldown_time_s);
  CHECK(off.settings.max_cooldown_percent == 100);
  auto on = load_config(doc(R"({"retry_budget": {"ratio": 0.1, "min_per_second": 2, "window_seconds": 5},
     "panic_threshold": 40, "cooldown_probe": true, "cooldown_multiplier": 2,
     "max_cooldown_time": 60, "max_cooldown_percent": 50, "hedge_after_ms": 150, "hedge_max": 2,
     "routing_strategy": "p2c-peak-ewma", "routing_strategy_args": {"decay_seconds": 3}})"));
  REQUIRE(on.settings.retry_budget);
  CHECK(on.settings.retry_budget->ratio == 0.1);
  CHECK(on.settings.retry_budget->min_per_second == 2);
  CHECK(on.settings.retry_budget->window_s == 5);
  CHECK(on.settings.panic_threshold == 40);
  CHECK(on.settings.cooldown_probe);
  CHECK(on.settings.cooldown_multiplier == 2);
  CHECK(*on.settings.max_cooldown_time_s == 60);
  CHECK(on.settings.max_cooldown_percent == 50);
  CHECK(on.settings.routing_strategy == "p2c-peak-ewma");
  CHECK(on.settings.decay_seconds == 3);
  CHECK(*on.settings.hedge_after_ms == 150);
  CHECK(on.settings.hedge_max == 2);
  CHECK_FALSE(load_config(doc(R"({"hedge_after_ms": null})")).settings.hedge_after_ms);
  CHECK_FALSE(off.settings.hedge_after_ms);
  CHECK(off.settings.hedge_max == 1);
  try {
    load_config(doc(R"({"panic_threshold": 120, "cooldown_multiplier": 0.5,
                        "retry_budget": {"window_seconds": 0}})"));
    FAIL("expected a config_error");
  } catch (const config_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("router_settings.panic_threshold: expected a number between 0 and 100"));
    CHECK_THAT(what, Catch::Contains("router_settings.cooldown_multiplier: expected a number >= 1"));
    CHECK_THAT(what, Catch::Contains("router_settings.retry_budget.window_seconds: expected a number > 0"));
  }
  try {
    load_config(doc(R"({"hedge_after_ms": 0, "hedge_max": 0})"));
    FAIL("expected a config_error");
  } catch (const config_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("router_settings.hedge_after_ms: expected a number > 0"));
    CHECK_THAT(what, Catch::Contains("router_settings.hedge_max"));
  }
}

namespace {

group_pick chose(local_index i) {
  group_pick p;
  p.chosen = i;
  return p;
}

call_outcome reply_ok() {
  call_outcome o;
  o.ok = true;
  o.content = "ok";
  return o;
}

call_outcome failed_call() {
  call_outcome o;
  o.error = server_error();
  return o;
}

std::shared_ptr<const router_config> hedged_config(int hedge_max = 1) {
  router_settings s;
  s.num_retries = 0;
  s.hedge_after_ms = 50;
  s.hedge_max = hedge_max;
  return std::make_shared<const router_config>(
    make_config({deployment("g", "A").reply("a"), deployment("g", "B").reply("b"),
                 deployment("g", "C").reply("c")},
                s));
}

request_flow hedged_flow(std::shared_ptr<const router_config> c, chat_request r = ask("g")) {
  return request_flow(std::move(c), std::make_shared<const chat_request>(std::move(r)));
}

} // namespace

TEST_CASE("hedge: after hedge_after_ms another deployment is called; the first success wins, "
          "the loser is cancelled and traced") {
  auto flow = hedged_flow(hedged_config());
  CHECK(flow.start().what == flow_action::kind::pick);
  CHECK_FALSE(flow.current_pick().extra);
  auto call = flow.on_picked(chose(0), std::nullopt);
  REQUIRE(call.what == flow_action::kind::call);
  CHECK_FALSE(call.hedge);
  REQUIRE(call.hedge_after);
  CHECK(call.hedge_after->count() == Approx(0.05));
  auto pick = flow.on_hedge_due();
  REQUIRE(pick.what == flow_action::kind::pick);
  CHECK(flow.current_pick().extra); // a hedge spends the retry budget
  CHECK(flow.current_pick().excluded == exclusion_list{0});
  auto hedge = flow.on_picked(chose(1), std::nullopt);
  REQUIRE(hedge.what == flow_action::kind::call);
  CHECK(hedge.hedge);
  CHECK(hedge.deployment == 1);
  CHECK_FALSE(hedge.hedge_after); // hedge_max 1: no more
  CHECK(flow.in_flight() == 2);
  CHECK(flow.on_hedge_due().what == flow_action::kind::idle);
  REQUIRE(flow.on_call(1, reply_ok()).what == flow_action::kind::finish);
  auto r = flow.take_result();
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "B");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].deployment_id == "B");
  CHECK(r.attempts[0].hedge);
  CHECK_FALSE(r.attempts[0].outcome);
  CHECK(r.attempts[1].deployment_id == "A");
  CHECK_FALSE(r.attempts[1].hedge);
  CHECK(r.attempts[1].outcome == error_kind::cancelled);
}

TEST_CASE("hedge: a failure while another call is in flight is reported, then awaits it") {
  auto flow = hedged_flow(hedged_config());
  flow.start();
  flow.on_picked(chose(0), std::nullopt);
  flow.on_hedge_due();
  flow.on_picked(chose(1), std::nullopt);
  auto report = flow.on_call(0, failed_call());
  REQUIRE(report.what == flow_action::kind::report_failure);
  CHECK(report.deployment == 0);
  scripted_random rng;
  CHECK(flow.on_failure_reported(3, rng).what == flow_action::kind::idle);
  REQUIRE(flow.on_call(1, reply_ok()).what == flow_action::kind::finish);
  auto r = flow.take_result();
  REQUIRE(r.ok);
  CHECK(r.attempts.size() == 2);
  CHECK(r.attempts[0].outcome == error_kind::internal_server);
}

TEST_CASE("hedge: nothing to hedge with, or the budget refuses: the call in flight decides") {
  auto flow = hedged_flow(hedged_config());
  flow.start();
  flow.on_picked(chose(0), std::nullopt);
  flow.on_hedge_due();
  group_pick refused;
  refused.budget_refused = true;
  CHECK(flow.on_picked(refused, std::nullopt).what == flow_action::kind::idle);
  CHECK(flow.budget_refused() == 1);
  CHECK(flow.hedges() == 0);
  CHECK(flow.on_call(0, reply_ok()).what == flow_action::kind::finish);
}

TEST_CASE("hedge: off by default, and request-level hedge_after_ms wins") {
  auto plain = hedged_flow(std::make_shared<const router_config>(
    make_config({deployment("g", "A").reply("a")})));
  plain.start();
  CHECK_FALSE(plain.on_picked(chose(0), std::nullopt).hedge_after);
  auto own = ask("g");
  own.hedge_after_ms = 7;
  auto o = hedged_flow(hedged_config(), own);
  o.start();
  auto call = o.on_picked(chose(0), std::nullopt);
  REQUIRE(call.hedge_after);
  CHECK(call.hedge_after->count() == Approx(0.007));
}

TEST_CASE("hedge: hedge_max 2 hedges twice, excluding every call in flight") {
  auto flow = hedged_flow(hedged_config(2));
  flow.start();
  flow.on_picked(chose(0), std::nullopt);
  flow.on_hedge_due();
  auto first = flow.on_picked(chose(1), std::nullopt);
  REQUIRE(first.hedge_after);
  flow.on_hedge_due();
  CHECK(flow.current_pick().excluded == exclusion_list{0, 1});
  auto second = flow.on_picked(chose(2), std::nullopt);
  CHECK(second.hedge);
  CHECK_FALSE(second.hedge_after);
  CHECK(flow.hedges() == 2);
  CHECK(flow.on_call(0, reply_ok()).what == flow_action::kind::finish);
  CHECK(flow.take_result().attempts.size() == 3);
}

TEST_CASE("hedge: a stream is hedged until a call commits; the first to commit wins") {
  auto streamed = ask("g");
  streamed.stream = true;
  auto flow = hedged_flow(hedged_config(), streamed);
  flow.start();
  REQUIRE(flow.on_picked(chose(0), std::nullopt).hedge_after);
  flow.on_hedge_due();
  flow.on_picked(chose(1), std::nullopt);
  auto role = nlohmann::json{{"choices", {{{"delta", {{"role", "assistant"}}}}}}};
  auto text = nlohmann::json{{"choices", {{{"delta", {{"content", "hi"}}}}}}};
  CHECK(flow.on_chunk(0, role).empty()); // held
  CHECK(flow.on_chunk(1, role).empty());
  auto out = flow.on_chunk(1, text); // B commits: its role chunk and text
  CHECK(out.size() == 2);
  CHECK(flow.committed());
  CHECK(flow.take_losers() == std::vector<local_index>{0});
  CHECK(flow.on_chunk(0, text).empty()); // the loser's are dropped
  CHECK(flow.in_flight() == 1);
  CHECK(flow.on_hedge_due().what == flow_action::kind::idle);
  REQUIRE(flow.on_call(1, reply_ok()).what == flow_action::kind::finish);
  auto r = flow.take_result();
  REQUIRE(r.ok);
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].deployment_id == "A");
  CHECK(r.attempts[0].outcome == error_kind::cancelled);
  CHECK(r.attempts[1].deployment_id == "B");
  CHECK(r.attempts[1].hedge);
}
