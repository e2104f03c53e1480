// Switchyard's resilience rules (issue 13) through the real actors: what
// callers and the observer get.

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/router.hpp"

#include "support/router_test.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>
#include <chrono>
#include <map>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;

namespace {

struct resilience_observer final : router_observer {
  std::atomic<int> requests{0}, attempts{0}, budget_refused{0}, panic_entered{0},
    panic_left{0};
  void on_request(const request_event& e) override {
    ++requests;
    budget_refused += e.budget_refused;
  }
  void on_attempt(const attempt_event&) override { ++attempts; }
  void on_panic(const panic_event& e) override { ++(e.entered ? panic_entered : panic_left); }
};

router_options observed(std::uint64_t seed, std::shared_ptr<router_observer> obs) {
  auto options = seeded_options(seed);
  options.observer = std::move(obs);
  return options;
}

} // namespace

TEST_CASE("retry budget through the router: once spent, failures go to the fallback",
          "[actors][resilience]") {
  auto obs = std::make_shared<resilience_observer>();
  {
    // min_per_second x window = 0.01 x 100 = one extra call per window.
    router rt(config_from(R"({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "openai/a",
           "mock_response": "litellm.InternalServerError"}, "model_info": {"id": "a"}},
        {"model_name": "g", "litellm_params": {"model": "openai/b",
           "mock_response": "litellm.InternalServerError"}, "model_info": {"id": "b"}},
        {"model_name": "h", "litellm_params": {"model": "openai/c", "mock_response": "ok"},
         "model_info": {"id": "c"}}],
        "router_settings": {"num_retries": 3, "disable_cooldowns": true,
          "fallbacks": [{"g": ["h"]}],
          "retry_budget": {"ratio": 0, "min_per_second": 0.01, "window_seconds": 100}}})"),
              observed(3, obs));
    auto first = rt.complete(hi("g"));
    REQUIRE(first.ok);
    CHECK(first.deployment_id == "c");
    CHECK(first.attempts.size() == 3); // g, its one retry, then h
    for (int i = 0; i < 4; ++i) {
      auto r = rt.complete(hi("g"));
      REQUIRE(r.ok);
      CHECK(r.attempts.size() == 2); // g once, then h
    }
  }
  CHECK(obs->requests == 5);
  CHECK(obs->attempts == 11);
  CHECK(obs->budget_refused == 5);
}

TEST_CASE("panic threshold through the router: entered and left once each, logged and counted",
          "[actors][resilience]") {
  auto obs = std::make_shared<resilience_observer>();
  {
    // a fails with 429 (cooled at once); 1 of 2 available is below 60%.
    router rt(config_from(R"({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "openai/a",
           "mock_response": "litellm.RateLimitError"}, "model_info": {"id": "a"}},
        {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "ok"},
         "model_info": {"id": "b"}}],
        "router_settings": {"num_retries": 1, "cooldown_time": 0.2, "panic_threshold": 60}})"),
              observed(4, obs));
    // Until a fails once and cools, then the group is in panic.
    for (int i = 0; i < 50 && obs->panic_entered == 0; ++i)
      CHECK(rt.complete(hi("g")).ok);
    CHECK(obs->panic_entered == 1);
    // While the cooldown lasts picks still reach a (weights apply to both).
    for (int i = 0; i < 200 && obs->panic_left == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    CHECK(obs->panic_left == 1);
  }
}

TEST_CASE("p2c-peak-ewma through the router: after both are seen, the faster one serves",
          "[actors][resilience]") {
  router rt(config_from(R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "openai/a", "mock_response": "s",
         "mock_latency_ms": 40}, "model_info": {"id": "slow"}},
      {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "f",
         "mock_latency_ms": 1}, "model_info": {"id": "fast"}}],
      "router_settings": {"routing_strategy": "p2c-peak-ewma", "num_retries": 0}})"),
            seeded_options(5));
  std::map<std::string, int> warm;
  for (int i = 0; i < 2; ++i)
    ++warm[rt.complete(hi("g")).deployment_id];
  CHECK(warm.size() == 2); // unseen costs 0: each is tried once first
  std::map<std::string, int> served;
  for (int i = 0; i < 10; ++i)
    ++served[rt.complete(hi("g")).deployment_id];
  CHECK(served["fast"] == 10);
}

TEST_CASE("hedged requests through the router: the hedge answers first, the slow call is "
          "cancelled, traced as such and not counted as a failure", "[actors][resilience]") {
  struct hedge_observer final : router_observer {
    std::atomic<int> attempts{0}, failed{0}, cooldowns{0};
    void on_attempt(const attempt_event& e) override {
      ++attempts;
      failed += e.outcome ? 1 : 0;
    }
    void on_cooldown(const cooldown_event&) override { ++cooldowns; }
  };
  auto obs = std::make_shared<hedge_observer>();
  {
    // weight 0 is never picked first while slow's weight is > 0; the hedge
    // excludes slow, which leaves fast.
    router rt(config_from(R"({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "openai/a", "mock_response": "s",
           "mock_latency_ms": 2000, "weight": 1}, "model_info": {"id": "slow"}},
        {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "f",
           "mock_latency_ms": 1, "weight": 0}, "model_info": {"id": "fast"}}],
        "router_settings": {"num_retries": 0, "hedge_after_ms": 20, "allowed_fails": 0}})"),
              observed(7, obs));
    for (int i = 0; i < 3; ++i) {
      auto r = rt.complete(hi("g"));
      REQUIRE(r.ok);
      CHECK(r.deployment_id == "fast");
      REQUIRE(r.attempts.size() == 2);
      CHECK(r.attempts[0].deployment_id == "fast");
      CHECK(r.attempts[0].hedge);
      CHECK(r.attempts[1].deployment_id == "slow");
      CHECK(r.attempts[1].outcome == error_kind::cancelled);
      CHECK_FALSE(r.attempts[1].hedge);
    }
    auto own = hi("g");
    own.hedge_after_ms = 5000; // the request's own, over the router's
    auto r = rt.complete(own);
    REQUIRE(r.ok);
    CHECK(r.deployment_id == "slow");
    CHECK(r.attempts.size() == 1);
  }
  CHECK(obs->attempts == 4);
  CHECK(obs->failed == 0);
  CHECK(obs->cooldowns == 0);
}

namespace {

/// The order of a's failed calls (F) and its cooldowns' starts (S, with
/// their lengths) and ends (E), as the observer hears them.
struct event_log final : router_observer {
  std::mutex mutex;
  std::string events;
  std::vector<double> lengths;
  int cooling = 0, peak_cooling = 0;
  void on_attempt(const attempt_event& e) override {
    std::lock_guard<std::mutex> lock(mutex);
    if (e.outcome && e.deployment_id == "a")
      events += 'F';
  }
  void on_cooldown(const cooldown_event& e) override {
    std::lock_guard<std::mutex> lock(mutex);
    cooling += e.started ? 1 : -1;
    peak_cooling = std::max(peak_cooling, cooling);
    if (e.deployment_id != "a")
      return;
    events += e.started ? 'S' : 'E';
    if (e.started)
      lengths.push_back(e.seconds);
  }
  std::size_t count(char c) {
    std::lock_guard<std::mutex> lock(mutex);
    return static_cast<std::size_t>(std::count(events.begin(), events.end(), c));
  }
};

/// Sequential requests to g until the log holds `ends` cooldown ends of a.
void serve_until_ends(router& rt, event_log& log, std::size_t ends) {
  for (int i = 0; i < 3000 && log.count('E') < ends; ++i) {
    CHECK(rt.complete(hi("g")).ok);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

const char* two_deployments = R"({"model_list": [
    {"model_name": "g", "litellm_params": {"model": "openai/a",
       "mock_response": "litellm.InternalServerError"}, "model_info": {"id": "a"}},
    {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "ok"},
     "model_info": {"id": "b"}}],
  "router_settings": )";

} // namespace

TEST_CASE("cooldown probe through the router: after a cooldown one failure cools again",
          "[actors][resilience]") {
  auto log = std::make_shared<event_log>();
  {
    router rt(config_from(std::string(two_deployments)
                          + R"({"num_retries": 1, "cooldown_time": 0.03, "allowed_fails": 3,
                                "cooldown_probe": true}})"),
              observed(8, log));
    serve_until_ends(rt, *log, 3);
  }
  std::lock_guard<std::mutex> lock(log->mutex);
  INFO(log->events);
  // allowed_fails 3: the fourth failure starts the first cooldown; on
  // probation each later cooldown follows a single failure.
  REQUIRE(log->events.rfind("FFFFS", 0) == 0);
  CHECK(log->events.find("EFS") != std::string::npos);
  CHECK(log->events.find("EFF") == std::string::npos);
}

TEST_CASE("escalating cooldowns through the router: each one twice the last, up to the cap",
          "[actors][resilience]") {
  auto log = std::make_shared<event_log>();
  {
    router rt(config_from(std::string(two_deployments)
                          + R"({"num_retries": 1, "cooldown_time": 0.01, "allowed_fails": 0,
                                "cooldown_multiplier": 2, "max_cooldown_time": 0.03}})"),
              observed(9, log));
    serve_until_ends(rt, *log, 4);
  }
  std::lock_guard<std::mutex> lock(log->mutex);
  REQUIRE(log->lengths.size() >= 4);
  CHECK(log->lengths[0] == Approx(0.01));
  CHECK(log->lengths[1] == Approx(0.02));
  CHECK(log->lengths[2] == Approx(0.03)); // 0.04, capped
  CHECK(log->lengths[3] == Approx(0.03));
}

TEST_CASE("max cooldown percent through the router: at most that share of the group cools",
          "[actors][resilience]") {
  auto log = std::make_shared<event_log>();
  {
    // Both fail with 429 (which cools at once); 50% of 2: one at a time.
    router rt(config_from(R"({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "openai/a",
           "mock_response": "litellm.RateLimitError"}, "model_info": {"id": "a"}},
        {"model_name": "g", "litellm_params": {"model": "openai/b",
           "mock_response": "litellm.RateLimitError"}, "model_info": {"id": "b"}}],
        "router_settings": {"num_retries": 1, "cooldown_time": 0.02,
                            "max_cooldown_percent": 50}})"),
              observed(10, log));
    for (int i = 0; i < 100; ++i) {
      auto r = rt.complete(hi("g"));
      CHECK_FALSE(r.ok);
      CHECK(r.error.kind != error_kind::no_deployments_available);
    }
  }
  std::lock_guard<std::mutex> lock(log->mutex);
  CHECK(log->peak_cooling == 1);
}

TEST_CASE("hedged streams through the router: the first call to send a chunk wins the stream",
          "[actors][resilience]") {
  router rt(config_from(R"({"model_list": [
      {"model_name": "g", "litellm_params": {"model": "openai/a", "mock_response": "slow one",
         "mock_latency_ms": 2000, "mock_first_token_ms": 1500, "weight": 1},
       "model_info": {"id": "slow"}},
      {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "fast one",
         "mock_latency_ms": 5, "mock_first_token_ms": 1, "weight": 0},
       "model_info": {"id": "fast"}}],
      "router_settings": {"num_retries": 0, "hedge_after_ms": 20}})"),
            seeded_options(11));
  auto req = hi("g");
  req.stream = true;
  auto r = rt.complete(req);
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "fast");
  CHECK(r.content == "fast one");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].deployment_id == "slow");
  CHECK(r.attempts[0].outcome == error_kind::cancelled);
  CHECK(r.attempts[1].deployment_id == "fast");
  CHECK(r.attempts[1].hedge);
}
