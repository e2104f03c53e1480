// Cooldowns and retry delays through the actors, with real (short) times.
// No sleep is used as synchronisation: waits poll with a deadline.

#include "support/router_test.hpp"

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using nlohmann::json;
using switchyard::error_kind;
using steady = std::chrono::steady_clock;

namespace {

using switchyard::test::config_from;
using switchyard::test::hi;
using switchyard::test::touches;

switchyard::router_options seeded(std::size_t threads = 2) {
  return switchyard::test::seeded_options(3, threads);
}

// "bad" (RateLimitError) is picked first almost always (weight 1000 to 1);
// a 429 in a group of two cools it down for the router's 0.2 s.
const char* const cooldown_config = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "weight": 1000,
                        "mock_response": {"error": "RateLimitError", "message": "slow down"}},
     "model_info": {"id": "bad"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "weight": 1, "mock_response": "ok from good"},
     "model_info": {"id": "good"}}
  ],
  "router_settings": {"cooldown_time": 0.2, "num_retries": 1}
})json";

// One deployment that always answers 429 with Retry-After 0.1 s: a retry in
// a single-deployment group waits Retry-After (+ up to 0.75 s jitter).
const char* const retry_config = R"json({
  "model_list": [
    {"model_name": "solo-model",
     "litellm_params": {"model": "gpt-4o",
                        "mock_response": {"error": "RateLimitError", "message": "busy",
                                          "retry_after": 0.1}},
     "model_info": {"id": "solo"}}
  ],
  "router_settings": {"num_retries": 1}
})json";

void check_retried_once_after_delay(const switchyard::route_result& r) {
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::rate_limit);
  CHECK(r.error.status == 429);
  CHECK(r.error.deployment_id == "solo");
  CHECK(r.error.retry_after_s == std::optional<double>(0.1));
  REQUIRE(r.attempts.size() == 2);
  for (const auto& a : r.attempts) {
    CHECK(a.deployment_id == "solo");
    CHECK(a.outcome == std::optional<error_kind>(error_kind::rate_limit));
  }
  CHECK(r.fallback_depth == 0);
}

} // namespace

TEST_CASE("a rate-limited deployment is cooled down, then picked again") {
  switchyard::router router(config_from(cooldown_config), seeded());
  const auto cooldown = 200ms;

  // The first request that reaches "bad" (in practice the first request):
  // 429 -> "bad" cools down -> the retry (no delay: "good" is healthy)
  // lands on "good".
  std::optional<steady::time_point> first_hit;
  const auto give_up = steady::now() + 10s;
  while (!first_hit && steady::now() < give_up) {
    const auto started = steady::now();
    auto r = router.complete(hi("test-model"));
    REQUIRE(r.ok);
    CHECK(r.deployment_id == "good");
    if (touches(r, "bad")) {
      first_hit = started;
      REQUIRE(r.attempts.size() == 2);
      CHECK(r.attempts[0].deployment_id == "bad");
      CHECK(r.attempts[0].outcome == std::optional<error_kind>(error_kind::rate_limit));
      CHECK(r.attempts[1].deployment_id == "good");
      CHECK_FALSE(r.attempts[1].outcome.has_value());
    }
  }
  REQUIRE(first_hit.has_value());
  const auto t0 = *first_hit; // the cooldown started at or after t0

  // While it cools down, requests never reach it: the trace is "good" alone.
  // Only requests that ended before t0 + 0.2 s are certainly inside it.
  int inside = 0;
  while (steady::now() < t0 + cooldown * 3 / 4) {
    auto r = router.complete(hi("test-model"));
    const auto ended = steady::now();
    REQUIRE(r.ok);
    if (ended < t0 + cooldown) {
      ++inside;
      REQUIRE(r.attempts.size() == 1);
      CHECK(r.attempts[0].deployment_id == "good");
      CHECK(r.deployment_id == "good");
    }
    std::this_thread::sleep_for(5ms); // pacing, not synchronisation
  }
  CHECK(inside >= 1);

  // Once the cooldown is over (timer-driven), "bad" is picked again: poll
  // with a deadline.
  std::optional<steady::time_point> again;
  const auto deadline = t0 + 10s;
  while (!again && steady::now() < deadline) {
    auto r = router.complete(hi("test-model"));
    const auto ended = steady::now();
    REQUIRE(r.ok);
    if (touches(r, "bad")) {
      again = ended;
      REQUIRE(r.attempts.size() == 2);
      CHECK(r.attempts[0].deployment_id == "bad");
      CHECK(r.attempts[1].deployment_id == "good");
    } else {
      std::this_thread::sleep_for(10ms);
    }
  }
  REQUIRE(again.has_value());
  CHECK(*again - t0 >= cooldown);
}

TEST_CASE("a retry in a single-deployment group waits Retry-After on a timer") {
  SECTION("one request: two attempts, at least 0.1 s apart") {
    switchyard::router router(config_from(retry_config), seeded());
    const auto started = steady::now();
    auto r = router.complete(hi("solo-model"));
    const auto elapsed = steady::now() - started;
    check_retried_once_after_delay(r);
    CHECK(elapsed >= 100ms);
    // Retry-After 0.1 s + at most 0.75 s jitter, with slack.
    CHECK(elapsed < 3s);
  }

  SECTION("40 waiting requests on one scheduler thread overlap") {
    // A delay that blocked the thread would serialise them (>= 40 * 0.1 s);
    // on timers they all wait at once (<= 0.85 s each).
    switchyard::router router(config_from(retry_config), seeded(1));
    constexpr std::size_t n = 40;
    std::mutex m;
    std::condition_variable cv;
    std::vector<switchyard::route_result> results(n);
    std::vector<int> answers(n, 0);
    std::size_t total = 0;
    const auto started = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      router.async_complete(hi("solo-model"), [&, i](switchyard::route_result r) {
        std::lock_guard<std::mutex> lock(m);
        results[i] = std::move(r);
        ++answers[i];
        ++total;
        cv.notify_all();
      });
    {
      std::unique_lock<std::mutex> lock(m);
      REQUIRE(cv.wait_for(lock, 30s, [&] { return total == n; }));
    }
    const auto elapsed = steady::now() - started;
    INFO("elapsed ms: "
         << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
    CHECK(elapsed >= 100ms);
    CHECK(elapsed < n * 100ms / 2);
    std::lock_guard<std::mutex> lock(m);
    for (std::size_t i = 0; i < n; ++i) {
      INFO("request " << i);
      CHECK(answers[i] == 1);
      check_retried_once_after_delay(results[i]);
    }
  }
}
