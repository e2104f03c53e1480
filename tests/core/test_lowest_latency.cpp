#include "switchyard/lowest_latency.hpp"

#include "support/scripted_random.hpp"
#include "support/strategy_picks.hpp"
#include "support/test_config.hpp"

#include "switchyard/group_picker.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace switchyard;
using switchyard::test::scripted_random;

namespace {

void record_n(lowest_latency& s, local_index i, int n, double ms) {
  for (int k = 0; k < n; ++k)
    s.record_latency(i, ms, false);
}

/// A strategy whose deployments have these averages (one sample each).
lowest_latency with_averages(const std::vector<double>& averages, double buffer) {
  lowest_latency s(averages.size(), buffer);
  for (local_index i = 0; i < averages.size(); ++i)
    s.record_latency(i, averages[i], false);
  return s;
}

using switchyard::test::check_even_shares;
using switchyard::test::pick_at;
using switchyard::test::tally_picks;

} // namespace

TEST_CASE("lowest-latency: an unseen deployment averages 0 and wins", "[lowest_latency]") {
  lowest_latency s(3, 0.0);
  CHECK(s.average_ms(0) == 0.0);
  s.record_latency(0, 100, false);
  s.record_latency(2, 5, false);
  CHECK(s.average_ms(0) == 100.0);
  CHECK(s.average_ms(1) == 0.0);
  CHECK(pick_at(s, 0.0) == 1);
  CHECK(pick_at(s, 0.999) == 1);
}

TEST_CASE("lowest-latency: the average covers the last 10 samples only", "[lowest_latency]") {
  lowest_latency s(1, 0.0);
  s.record_latency(0, 10, false);
  s.record_latency(0, 20, false);
  s.record_latency(0, 30, false);
  CHECK(s.average_ms(0) == 20.0);

  lowest_latency t(1, 0.0);
  record_n(t, 0, 10, 100);
  CHECK(t.average_ms(0) == 100.0);
  t.record_latency(0, 1000, false); // pushes out one 100
  CHECK(t.average_ms(0) == 190.0);
  record_n(t, 0, 9, 50);            // pushes out the other nine 100s
  CHECK(t.average_ms(0) == 145.0);
  t.record_latency(0, 50, false);   // and the 1000
  CHECK(t.average_ms(0) == 50.0);
}

TEST_CASE("lowest-latency: a timeout records a large penalty", "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  s.record_latency(0, 5, true);
  CHECK(s.average_ms(0) == lowest_latency::timeout_penalty_ms);
  s.record_latency(0, 100, false);
  CHECK(s.average_ms(0) == (lowest_latency::timeout_penalty_ms + 100) / 2);
  s.record_latency(1, 5000, false);
  CHECK(pick_at(s, 0.0) == 1); // 5 s beats a recent timeout
}

TEST_CASE("lowest-latency: samples for an unknown deployment are ignored", "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  s.record_latency(7, 1, false);
  CHECK(s.average_ms(0) == 0.0);
  CHECK(s.average_ms(1) == 0.0);
}

TEST_CASE("lowest-latency: without a buffer the lowest average is picked", "[lowest_latency]") {
  auto s = with_averages({100, 50, 70}, 0.0);
  CHECK(pick_at(s, 0.0) == 1);
  CHECK(pick_at(s, 0.999) == 1);
}

TEST_CASE("lowest-latency: random among those within lowest * (1 + buffer)",
          "[lowest_latency]") {
  // limit 150: 0 (100), 1 (140) and 3 (150) qualify, 2 (151) does not.
  auto s = with_averages({100, 140, 151, 150}, 0.5);
  CHECK(pick_at(s, 0.0) == 0);
  CHECK(pick_at(s, 0.33) == 0);
  CHECK(pick_at(s, 0.34) == 1);
  CHECK(pick_at(s, 0.66) == 1);
  CHECK(pick_at(s, 0.67) == 3);
  CHECK(pick_at(s, 0.999) == 3);
}

TEST_CASE("lowest-latency: exclusions and cooldowns remove candidates", "[lowest_latency]") {
  auto s = with_averages({100, 50, 70}, 0.0);
  CHECK(pick_at(s, 0.5, {1}) == 2);
  CHECK(pick_at(s, 0.5, {1, 2}) == 0);
  CHECK(pick_at(s, 0.5, {42}) == 1); // unknown index: ignored

  scripted_random no_draws;
  CHECK_FALSE(s.pick({0, 1, 2}, no_draws).ok());

  s.set_available({true, false, true});
  CHECK(pick_at(s, 0.5) == 2);
  CHECK(pick_at(s, 0.5, {1}) == 2); // excluding a cooling one changes nothing
  CHECK_FALSE(s.pick({0, 2}, no_draws).ok());

  s.set_available({false, false, false});
  CHECK_FALSE(s.pick({}, no_draws).ok());
  CHECK(no_draws.consumed() == 0);

  s.set_available({true, true, true});
  CHECK(pick_at(s, 0.5) == 1);
}

TEST_CASE("lowest-latency: the buffer is taken over the remaining candidates",
          "[lowest_latency]") {
  // Excluding the fastest raises the floor: 100 -> limit 150.
  auto s = with_averages({10, 100, 140, 200}, 0.5);
  CHECK(pick_at(s, 0.999) == 0);
  CHECK(pick_at(s, 0.49, {0}) == 1);
  CHECK(pick_at(s, 0.5, {0}) == 2);
}

TEST_CASE("lowest-latency: picks spread evenly within the buffer (statistical)",
          "[lowest_latency][statistical]") {
  // limit 20: deployments 0, 1 and 2 qualify, 3 never does.
  auto s = with_averages({10, 15, 20, 100}, 1.0);
  seeded_random rng(7);
  const int n = 60000;
  const auto tally = tally_picks<4>(n, [&] { return s.pick({}, rng); });
  check_even_shares(tally, n, 3);
}

// --- feedback through the strategy interface -------------------------------------

namespace {

call_feedback finished_after(double ms, bool timed_out = false) {
  call_feedback f;
  f.ok = !timed_out;
  f.timed_out = timed_out;
  f.latency_ms = ms;
  return f;
}

} // namespace

TEST_CASE("lowest-latency: on_finished records the call's latency", "[lowest_latency]") {
  lowest_latency s(3, 0.0);
  routing_strategy& as_strategy = s;
  as_strategy.on_finished(0, finished_after(40), time_point{});
  as_strategy.on_finished(0, finished_after(60), time_point{});
  as_strategy.on_finished(1, finished_after(30), time_point{});
  as_strategy.on_finished(2, finished_after(45), time_point{});
  CHECK(s.average_ms(0) == 50.0);
  CHECK(s.average_ms(1) == 30.0);
  CHECK(pick_at(s, 0.999) == 1);
  // A failed call's latency is not recorded (LiteLLM's handler records
  // successes and timeouts only): a fast failure must not attract traffic.
  call_feedback failed = finished_after(10);
  failed.ok = false;
  as_strategy.on_finished(2, failed, time_point{});
  CHECK(s.average_ms(2) == 45.0);
  CHECK(pick_at(s, 0.0) == 1);
}

TEST_CASE("lowest-latency: a timed-out call records the penalty, whatever its latency",
          "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  routing_strategy& as_strategy = s;
  as_strategy.on_finished(0, finished_after(5, true), time_point{});
  CHECK(s.average_ms(0) == lowest_latency::timeout_penalty_ms);
  as_strategy.on_finished(1, finished_after(9000), time_point{});
  CHECK(pick_at(s, 0.0) == 1);
}

TEST_CASE("lowest-latency: a pick or an unknown index changes no average", "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  routing_strategy& as_strategy = s;
  const exclusion_list none;
  as_strategy.on_picked(0, pick_context{none});
  as_strategy.on_finished(9, finished_after(1), time_point{});
  CHECK(s.average_ms(0) == 0.0);
  CHECK(s.average_ms(1) == 0.0);
}

TEST_CASE("lowest-latency: the registry passes lowest_latency_buffer", "[lowest_latency]") {
  router_settings settings;
  settings.routing_strategy = "latency-based-routing";
  settings.lowest_latency_buffer = 0.5;
  deployment_config a;
  deployment_config b;
  deployment_config c;
  auto s = strategy_registry::builtin().make("latency-based-routing", {&a, &b, &c}, settings);
  REQUIRE(s);
  s->on_finished(0, finished_after(100), time_point{});
  s->on_finished(1, finished_after(150), time_point{});
  s->on_finished(2, finished_after(151), time_point{});
  // limit 150: 0 and 1 qualify.
  scripted_random rng{0.49, 0.5, 0.999};
  CHECK(s->pick({}, rng).chosen == local_index{0});
  CHECK(s->pick({}, rng).chosen == local_index{1});
  CHECK(s->pick({}, rng).chosen == local_index{1});
}

TEST_CASE("lowest latency: only successes and timeouts are recorded, as LiteLLM's handler",
          "[lowest_latency]") {
  switchyard::lowest_latency s(2, 0.0);
  switchyard::call_feedback failed;
  failed.ok = false;
  failed.latency_ms = 1.0;
  s.on_finished(0, failed, {});
  CHECK(s.average_ms(0) == 0.0); // a fast failure does not make it look fast

  switchyard::call_feedback ok;
  ok.ok = true;
  ok.latency_ms = 30.0;
  s.on_finished(0, ok, {});
  CHECK(s.average_ms(0) == Approx(30.0));

  switchyard::call_feedback timeout;
  timeout.timed_out = true;
  timeout.latency_ms = 100.0;
  s.on_finished(1, timeout, {});
  CHECK(s.average_ms(1) == Approx(switchyard::lowest_latency::timeout_penalty_ms));
}

// --- two windows: whole-call latency and time to first token ---------------------------

namespace {

switchyard::call_feedback streamed_success(double latency_ms, double first_token_ms) {
  switchyard::call_feedback f;
  f.ok = true;
  f.latency_ms = latency_ms;
  f.first_token_ms = first_token_ms;
  return f;
}

switchyard::pick_result pick_for(switchyard::routing_strategy& s, bool stream, double u) {
  const switchyard::exclusion_list none;
  switchyard::pick_context ctx{none};
  ctx.stream = stream;
  scripted_random rng{u};
  return s.pick(ctx, rng);
}

} // namespace

TEST_CASE("lowest latency: a streamed call records both windows, whole-call latency as latency",
          "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  // 0: first token at once, a long reply; 1: a slow first token, a short reply.
  s.on_finished(0, streamed_success(400, 5), {});
  s.on_finished(1, streamed_success(100, 80), {});
  CHECK(s.average_ms(0) == 400.0);
  CHECK(s.average_ms(1) == 100.0);
  REQUIRE(s.first_token_average_ms(0));
  CHECK(*s.first_token_average_ms(0) == 5.0);
  CHECK(*s.first_token_average_ms(1) == 80.0);
  // A request that is not streamed is ranked by the whole call: 1.
  CHECK(pick_for(s, false, 0.0).chosen == local_index{1});
  // A streamed one by time to first token: 0.
  CHECK(pick_for(s, true, 0.0).chosen == local_index{0});
}

TEST_CASE("lowest latency: a streamed request falls back to latency where no first token was seen",
          "[lowest_latency]") {
  lowest_latency s(3, 0.0);
  s.on_finished(0, streamed_success(300, 50), {});
  switchyard::call_feedback plain;
  plain.ok = true;
  plain.latency_ms = 40; // 1 only served non-streamed calls
  s.on_finished(1, plain, {});
  s.record_latency(2, 60, false);
  CHECK_FALSE(s.first_token_average_ms(1));
  CHECK(s.rank_ms(0, true) == 50.0);
  CHECK(s.rank_ms(1, true) == 40.0);
  CHECK(s.rank_ms(2, true) == 60.0);
  CHECK(s.rank_ms(0, false) == 300.0);
  CHECK(pick_for(s, true, 0.0).chosen == local_index{1});
  CHECK(pick_for(s, false, 0.0).chosen == local_index{1});
}

TEST_CASE("lowest latency: a timeout penalises the latency window only, failures record nothing",
          "[lowest_latency]") {
  lowest_latency s(2, 0.0);
  s.on_finished(0, streamed_success(100, 10), {});
  switchyard::call_feedback timeout;
  timeout.timed_out = true;
  timeout.latency_ms = 20000;
  s.on_finished(0, timeout, {});
  CHECK(s.average_ms(0) == Approx((100 + lowest_latency::timeout_penalty_ms) / 2));
  CHECK(*s.first_token_average_ms(0) == 10.0);
  auto failed = streamed_success(5, 1);
  failed.ok = false;
  s.on_finished(1, failed, {});
  CHECK(s.average_ms(1) == 0.0);
  CHECK_FALSE(s.first_token_average_ms(1));
}

TEST_CASE("lowest latency: the first-token window keeps the last 10 samples", "[lowest_latency]") {
  lowest_latency s(1, 0.0);
  for (int k = 0; k < 10; ++k)
    s.record_first_token(0, 100);
  s.record_first_token(0, 1100); // pushes out one 100
  CHECK(*s.first_token_average_ms(0) == 200.0);
}

TEST_CASE("group picker: a streamed request reaches latency-based-routing as streamed",
          "[lowest_latency][group_picker]") {
  router_settings settings;
  settings.routing_strategy = "latency-based-routing";
  const auto config = switchyard::test::make_config(
    {switchyard::test::deployment("g", "early"), switchyard::test::deployment("g", "short")},
    settings);
  group_picker picker(config, 0);
  picker.on_finished(0, streamed_success(400, 5), {});
  picker.on_finished(1, streamed_success(100, 80), {});
  pick_request streamed;
  streamed.stream = true;
  pick_request plain;
  scripted_random rng{0.0, 0.0};
  CHECK(picker.pick(streamed, {}, rng).chosen == local_index{0});
  CHECK(picker.pick(plain, {}, rng).chosen == local_index{1});
}
