// The router under concurrent callers, with simulated latency, and stopped
// with requests in flight: every request gets exactly one answer.

#include "support/router_test.hpp"

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/logger.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
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

switchyard::router_options seeded(std::size_t threads = 2) {
  return switchyard::test::seeded_options(7, threads);
}

/// Collects the answers of `n` numbered requests from any thread.
class answer_board {
public:
  explicit answer_board(std::size_t n) : count_(n, 0), results_(n) {}

  switchyard::completion_handler handler(std::size_t i) {
    return [this, i](switchyard::route_result r) {
      std::lock_guard<std::mutex> lock(m_);
      ++count_[i];
      ++total_;
      results_[i] = std::move(r);
      cv_.notify_all();
    };
  }

  /// Waits until at least `n` answers arrived or `limit` passed.
  bool wait_for_total(std::size_t n, steady::duration limit) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_for(lock, limit, [&] { return total_ >= n; });
  }

  std::size_t total() {
    std::lock_guard<std::mutex> lock(m_);
    return total_;
  }
  int count(std::size_t i) {
    std::lock_guard<std::mutex> lock(m_);
    return count_[i];
  }
  switchyard::route_result result(std::size_t i) {
    std::lock_guard<std::mutex> lock(m_);
    return results_[i];
  }
  std::size_t size() const { return count_.size(); }

private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<int> count_;
  std::vector<switchyard::route_result> results_;
  std::size_t total_ = 0;
};

const char* const two_healthy = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "from A", "weight": 3},
     "model_info": {"id": "A"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "from B", "weight": 1},
     "model_info": {"id": "B"}}
  ]
})json";

const char* const latency_config = R"json({
  "model_list": [
    {"model_name": "slow-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "slow ok",
                        "mock_latency_ms": 50},
     "model_info": {"id": "slow"}},
    {"model_name": "slower-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "slower ok",
                        "mock_latency_ms": 500},
     "model_info": {"id": "slower"}},
    {"model_name": "fast-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "fast ok"},
     "model_info": {"id": "fast"}}
  ],
  "router_settings": {"num_retries": 0}
})json";

const char* const in_flight_config = R"json({
  "model_list": [
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "late",
                        "mock_latency_ms": 200},
     "model_info": {"id": "A"}},
    {"model_name": "test-model",
     "litellm_params": {"model": "gpt-4o", "mock_response": "late",
                        "mock_latency_ms": 200},
     "model_info": {"id": "B"}}
  ],
  "router_settings": {"num_retries": 2}
})json";

// Every request answered exactly once, with success or ShutdownError.
void check_each_answered_once_ok_or_shutdown(answer_board& board) {
  std::size_t shutdowns = 0;
  for (std::size_t i = 0; i < board.size(); ++i) {
    INFO("request " << i);
    REQUIRE(board.count(i) == 1);
    auto r = board.result(i);
    if (r.ok) {
      CHECK(r.content == "late");
    } else {
      CHECK(r.error.kind == error_kind::shutdown);
      CHECK(r.error.status == 503);
      ++shutdowns;
    }
  }
  // Stopped 200 ms before any call could finish: ShutdownError it is.
  CHECK(shutdowns > 0);
}

} // namespace

TEST_CASE("async_complete from 8 threads at once: exactly one answer per request") {
  constexpr std::size_t threads = 8;
  constexpr std::size_t per_thread = 250;
  constexpr std::size_t total = threads * per_thread;
  answer_board board(total);
  {
    switchyard::router router(config_from(two_healthy), seeded());

    std::mutex m;
    std::condition_variable go;
    bool started = false;
    std::vector<std::thread> callers;
    for (std::size_t t = 0; t < threads; ++t)
      callers.emplace_back([&, t] {
        {
          std::unique_lock<std::mutex> lock(m);
          go.wait(lock, [&] { return started; });
        }
        for (std::size_t k = 0; k < per_thread; ++k) {
          const std::size_t i = t * per_thread + k;
          router.async_complete(hi("test-model"), board.handler(i));
        }
      });
    {
      std::lock_guard<std::mutex> lock(m);
      started = true;
    }
    go.notify_all();
    for (auto& c : callers)
      c.join();

    REQUIRE(board.wait_for_total(total, 30s));
  } // the router (and its own actor system) is gone: no answer can come late

  CHECK(board.total() == total);
  std::size_t on_a = 0;
  for (std::size_t i = 0; i < total; ++i) {
    INFO("request " << i);
    REQUIRE(board.count(i) == 1);
    auto r = board.result(i);
    REQUIRE(r.ok);
    REQUIRE(r.attempts.size() == 1);
    CHECK(r.content == "from " + r.deployment_id);
    on_a += r.deployment_id == "A" ? 1 : 0;
  }
  // Weights 3:1 over 2000 picks: A ~ 1500, sd ~19.4; +-6 sd.
  CHECK(on_a > 1380);
  CHECK(on_a < 1620);
}

TEST_CASE("mock_latency_ms is honoured without blocking other requests") {
  switchyard::router router(config_from(latency_config), seeded());

  SECTION("one call takes at least its latency") {
    auto r = router.complete(hi("slow-model"));
    REQUIRE(r.ok);
    CHECK(r.content == "slow ok");
    REQUIRE(r.attempts.size() == 1);
    CHECK(r.attempts[0].latency_ms >= 50.0);
  }

  SECTION("100 concurrent 50 ms calls overlap") {
    constexpr std::size_t n = 100;
    answer_board board(n);
    const auto started = steady::now();
    for (std::size_t i = 0; i < n; ++i)
      router.async_complete(hi("slow-model"), board.handler(i));
    REQUIRE(board.wait_for_total(n, 30s));
    const auto elapsed = steady::now() - started;
    const auto serial = n * 50ms;
    INFO("elapsed ms: "
         << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
    CHECK(elapsed >= 50ms);
    // Serially that would be 5 s; overlapping it is about one latency.
    CHECK(elapsed < serial / 4);
    for (std::size_t i = 0; i < n; ++i) {
      auto r = board.result(i);
      REQUIRE(r.ok);
      REQUIRE(r.attempts.size() == 1);
      CHECK(r.attempts[0].latency_ms >= 50.0);
    }
  }

  SECTION("a fast request is answered while a slow one is pending") {
    answer_board slow(1);
    router.async_complete(hi("slower-model"), slow.handler(0));
    auto fast = router.complete(hi("fast-model"));
    CHECK(fast.ok);
    CHECK(fast.deployment_id == "fast");
    CHECK(slow.total() == 0); // the 500 ms call is still running
    REQUIRE(slow.wait_for_total(1, 30s));
    auto r = slow.result(0);
    REQUIRE(r.ok);
    CHECK(r.attempts[0].latency_ms >= 500.0);
  }
}

TEST_CASE("mock latency does not block a router with one scheduler thread") {
  switchyard::router router(config_from(latency_config), seeded(1));
  constexpr std::size_t n = 100;
  answer_board board(n);
  const auto started = steady::now();
  for (std::size_t i = 0; i < n; ++i)
    router.async_complete(hi("slow-model"), board.handler(i));
  REQUIRE(board.wait_for_total(n, 30s));
  const auto elapsed = steady::now() - started;
  INFO("elapsed ms: "
       << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
  CHECK(elapsed < n * 50ms / 4);
  for (std::size_t i = 0; i < n; ++i)
    CHECK(board.result(i).ok);
}

TEST_CASE("destroying the router with requests in flight answers every one") {
  constexpr std::size_t n = 50;

  SECTION("a router that owns its actor system") {
    answer_board board(n);
    // Built, used and destroyed on one thread (CAF 0.17 wants an actor
    // system destroyed where it was built; see the hidden test below). The
    // destructor must return: wait for that thread, bounded.
    std::promise<void> destroyed;
    auto done = destroyed.get_future();
    std::thread owner([&] {
      {
        switchyard::router router(config_from(in_flight_config), seeded());
        for (std::size_t i = 0; i < n; ++i)
          router.async_complete(hi("test-model"), board.handler(i));
      } // destroyed with all n calls still running (200 ms each)
      destroyed.set_value();
    });
    if (done.wait_for(30s) != std::future_status::ready) {
      owner.detach();
      FAIL("the router's destructor did not return within 30 s");
    }
    owner.join();

    // Its system has stopped: every answer is in already.
    CHECK(board.total() == n);
    check_each_answered_once_ok_or_shutdown(board);
  }

  SECTION("a router that joined the application's actor system") {
    caf::actor_system_config cfg;
    cfg.set("scheduler.max-threads", 2);
    caf::actor_system system{cfg};
    answer_board board(n);
    {
      switchyard::router router(system, config_from(in_flight_config), seeded());
      for (std::size_t i = 0; i < n; ++i)
        router.async_complete(hi("test-model"), board.handler(i));
    }
    REQUIRE(board.wait_for_total(n, 30s));
    CHECK(board.total() == n);
    check_each_answered_once_ok_or_shutdown(board);
  }
}

// CAF 0.17's spawn leaves a thread-local reference to the system's logger on
// the spawning thread, and ~actor_system waits until every such reference is
// gone: a router must not spawn on its callers' threads.
TEST_CASE("a router can be destroyed while a thread that used it is alive") {
  std::mutex m;
  std::condition_variable cv;
  switchyard::router* shared = nullptr;
  bool used = false;
  bool release = false;
  bool caller_ok = false;
  std::promise<void> destroyed;
  auto done = destroyed.get_future();

  // Builds the router, lets the caller use it, then destroys it.
  std::thread owner([&] {
    {
      switchyard::router router(config_from(two_healthy), seeded());
      std::unique_lock<std::mutex> lock(m);
      shared = &router;
      cv.notify_all();
      cv.wait(lock, [&] { return used; });
      shared = nullptr;
    }
    destroyed.set_value();
  });
  // An application thread that calls the router once and lives on (a
  // server's worker thread, say).
  std::thread caller([&] {
    std::unique_lock<std::mutex> lock(m);
    cv.wait(lock, [&] { return shared != nullptr; });
    auto* router = shared;
    lock.unlock();
    auto r = router->complete(hi("test-model"));
    lock.lock();
    used = true;
    caller_ok = r.ok;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });

  const bool returned = done.wait_for(5s) == std::future_status::ready;
  {
    std::lock_guard<std::mutex> lock(m);
    release = true;
    cv.notify_all();
  }
  caller.join();
  owner.join();
  CHECK(caller_ok);
  CHECK(returned);
}

// The thread that builds a router owning its actor system used to keep a
// thread-local reference to that system's logger (caf::actor_system's
// constructor and every spawn call CAF_SET_LOGGER_SYS), so destroying the
// router on another thread blocked in ~actor_system.
TEST_CASE("a router can be destroyed on another thread than the one that built it") {
  auto router = std::make_unique<switchyard::router>(config_from(two_healthy), seeded());
  CHECK(router->complete(hi("test-model")).ok);

  std::promise<void> destroyed;
  auto done = destroyed.get_future();
  std::thread destroyer([&] {
    router.reset();
    destroyed.set_value();
  });
  const bool returned = done.wait_for(5s) == std::future_status::ready;
  // Drop this thread's reference to the router's CAF logger: the destructor
  // finishes then (which shows what it was waiting for).
  caf::logger::set_current_actor_system(nullptr);
  destroyer.join();
  CHECK(returned);
}
