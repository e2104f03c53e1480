// Admission control: past max_in_flight a request is answered at once with
// OverloadedError, and the router admits again once answers go out.

#include "support/router_test.hpp"

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr const char* slow_config = R"({
  "model_list": [{"model_name": "slow",
                  "litellm_params": {"model": "m", "mock_response": "ok",
                                     "mock_latency_ms": 300},
                  "model_info": {"id": "slow-1"}}],
  "router_settings": {"num_retries": 0}
})";

switchyard::chat_request hello() {
  return switchyard::test::hi("slow");
}

// Collects answers from callbacks, in arrival order.
struct collector {
  std::mutex m;
  std::condition_variable cv;
  std::vector<switchyard::route_result> results;

  switchyard::completion_handler handler() {
    return [this](switchyard::route_result r) {
      std::lock_guard<std::mutex> g{m};
      results.push_back(std::move(r));
      cv.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> g{m};
    return cv.wait_for(g, limit, [&] { return results.size() >= n; });
  }
  std::size_t count(bool ok, switchyard::error_kind kind) {
    std::lock_guard<std::mutex> g{m};
    std::size_t n = 0;
    for (const auto& r : results)
      n += (r.ok == ok && (ok || r.error.kind == kind)) ? 1 : 0;
    return n;
  }
};

} // namespace

TEST_CASE("past max_in_flight requests are answered at once with OverloadedError") {
  switchyard::router_options options;
  options.seed = 7;
  options.max_in_flight = 10;
  switchyard::router router{switchyard::test::config_from(slow_config), options};
  collector answers;
  for (int i = 0; i < 50; ++i)
    router.async_complete(hello(), answers.handler());

  // The 40 refused ones come back without waiting for the 300 ms calls: the
  // first 40 answers are all overloads.
  REQUIRE(answers.wait_for(40, 10s));
  {
    std::lock_guard<std::mutex> g{answers.m};
    for (std::size_t i = 0; i < 40; ++i) {
      const auto& r = answers.results[i];
      CHECK_FALSE(r.ok);
      CHECK(r.error.kind == switchyard::error_kind::overloaded);
      CHECK(r.error.status == 429);
      CHECK(r.attempts.empty());
      CHECK(r.error.message.find("max_in_flight") != std::string::npos);
    }
  }
  REQUIRE(answers.wait_for(50, 10s));
  CHECK(answers.count(true, {}) == 10);
  CHECK(answers.count(false, switchyard::error_kind::overloaded) == 40);

  // Load has dropped: the router admits again.
  collector later;
  for (int i = 0; i < 10; ++i)
    router.async_complete(hello(), later.handler());
  REQUIRE(later.wait_for(10, 10s));
  CHECK(later.count(true, {}) == 10);
}

TEST_CASE("without max_in_flight nothing is refused") {
  switchyard::router router{switchyard::test::config_from(slow_config),
                            switchyard::router_options{7}};
  collector answers;
  for (int i = 0; i < 200; ++i)
    router.async_complete(hello(), answers.handler());
  REQUIRE(answers.wait_for(200, 20s));
  CHECK(answers.count(true, {}) == 200);
}
