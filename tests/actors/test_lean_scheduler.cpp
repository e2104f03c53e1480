// The lean scheduler (switchyard/lean_scheduler.hpp): actor exits reach CAF's
// clock only for actors that set a timeout, and every timeout, request
// timeout and delayed message still works.

#include "support/process_threads.hpp"
#include "support/router_test.hpp"

#include "switchyard/lean_scheduler.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>
#include <string>

using namespace switchyard;
using namespace switchyard::test;
using namespace std::chrono_literals;

namespace {

/// Spawns `f(self)` as an event-based actor. With at least one argument:
/// CAF 0.17's init_fun_factory binds a reference through a null
/// shared_ptr<tuple<>> for a function spawned without any (UBSan reports
/// it), so a tag goes along.
template <class F>
caf::actor spawn_fn(caf::actor_system& sys, F f) {
  return sys.spawn([f](caf::event_based_actor* self, int /*tag*/) { return f(self); }, 0);
}

/// An actor system on the lean scheduler, 2 workers, CAF quiet.
struct lean_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  lean_system() {
    cfg.set("scheduler.max-threads", std::size_t{2});
    cfg.set("logger.console", caf::atom("none"));
    use_lean_scheduler(cfg);
    sys = std::make_unique<caf::actor_system>(cfg);
  }
  lean_clock_stats stats() { return lean_clock_stats_of(*sys).value(); }
  /// The stats once `pred` holds for them (at most ~10 s): an actor leaves
  /// the registry, which await_all_actors_done waits for, just before its
  /// cleanup reaches the clock.
  template <class Pred>
  lean_clock_stats stats_when(Pred pred) {
    for (int wait = 0; wait < 1000 && !pred(stats()); ++wait)
      std::this_thread::sleep_for(10ms);
    return stats();
  }
  /// Exits sent on to the clock, once at least one was.
  std::uint64_t forwarded_once_settled() {
    return stats_when([](const lean_clock_stats& st) { return st.exits_forwarded >= 1; })
      .exits_forwarded;
  }
  /// An actor that takes an int request and never answers it.
  caf::actor spawn_silent() {
    return spawn_fn(*sys, [](caf::event_based_actor*) -> caf::behavior {
      return {[](int) -> caf::result<int> { return caf::delegated<int>{}; }};
    });
  }
};

} // namespace

TEST_CASE("lean scheduler: actors without timeouts quit without reaching the clock",
          "[actors][lean]") {
  lean_system s;
  const auto before = s.stats();
  std::atomic<int> ran{0};
  for (int i = 0; i < 1000; ++i)
    spawn_fn(*s.sys, [&ran](caf::event_based_actor* self) {
      ++ran;
      self->quit();
    });
  s.sys->await_all_actors_done();
  CHECK(ran == 1000);
  const auto after = s.stats_when(
    [&](const lean_clock_stats& st) { return st.exits_skipped - before.exits_skipped >= 1000; });
  CHECK(after.exits_skipped - before.exits_skipped == 1000);
  CHECK(after.exits_forwarded == before.exits_forwarded);
}

TEST_CASE("lean scheduler: a behaviour's timeout fires, and its actor's exit reaches the clock",
          "[actors][lean]") {
  lean_system s;
  std::promise<void> fired;
  spawn_fn(*s.sys, [&fired](caf::event_based_actor* self) -> caf::behavior {
    return {caf::after(std::chrono::milliseconds(10)) >> [self, &fired] {
      fired.set_value();
      self->quit();
    }};
  });
  REQUIRE(fired.get_future().wait_for(10s) == std::future_status::ready);
  s.sys->await_all_actors_done();
  CHECK(s.forwarded_once_settled() == 1);
}

TEST_CASE("lean scheduler: a request times out, and one answered in time does not",
          "[actors][lean]") {
  lean_system s;
  auto silent = s.spawn_silent();
  auto echo = spawn_fn(*s.sys, [](caf::event_based_actor*) -> caf::behavior {
    return {[](int x) { return x; }};
  });
  std::promise<std::string> outcome, answered;
  spawn_fn(*s.sys, [&, silent, echo](caf::event_based_actor* self) {
    self->request(echo, std::chrono::seconds(30), 7)
      .then([&](int x) { answered.set_value(std::to_string(x)); },
            [&](caf::error&) { answered.set_value("error"); });
    self->request(silent, std::chrono::milliseconds(20), 1)
      .then([&](int) { outcome.set_value("answered"); },
            [&](caf::error& e) { outcome.set_value(e == caf::sec::request_timeout ? "timeout"
                                                                                   : "other"); });
  });
  auto a = answered.get_future();
  auto o = outcome.get_future();
  REQUIRE(a.wait_for(10s) == std::future_status::ready);
  REQUIRE(o.wait_for(10s) == std::future_status::ready);
  CHECK(a.get() == "7");
  CHECK(o.get() == "timeout");
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
  s.sys->await_all_actors_done();
  // The requester set timeouts: its exit went to the clock. The others
  // set none.
  CHECK(s.forwarded_once_settled() == 1);
}

TEST_CASE("lean scheduler: an actor quitting with a request timeout pending is not woken by it",
          "[actors][lean]") {
  lean_system s;
  auto silent = s.spawn_silent();
  std::atomic<int> handled{0};
  spawn_fn(*s.sys, [&, silent](caf::event_based_actor* self) {
    self->request(silent, std::chrono::milliseconds(30), 1)
      .then([&](int) { ++handled; }, [&](caf::error&) { ++handled; });
    self->quit();
  });
  std::this_thread::sleep_for(100ms); // past the timeout
  CHECK(handled == 0);
  caf::anon_send_exit(silent, caf::exit_reason::user_shutdown);
  s.sys->await_all_actors_done();
  CHECK(s.forwarded_once_settled() == 1);
}

TEST_CASE("lean scheduler: delayed messages arrive", "[actors][lean]") {
  lean_system s;
  std::promise<int> got;
  auto receiver = spawn_fn(*s.sys, [&got](caf::event_based_actor* self) -> caf::behavior {
    return {[self, &got](int x) {
      got.set_value(x);
      self->quit();
    }};
  });
  caf::delayed_anon_send(receiver, std::chrono::milliseconds(20), 42);
  auto f = got.get_future();
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  CHECK(f.get() == 42);
}

TEST_CASE("a router that owns its actor system runs the lean scheduler", "[actors][lean]") {
  CHECK_FALSE(has_thread_named("caf.lean-clock"));
  {
    router rt(config_from(R"({"model_list": [{"model_name": "g",
        "litellm_params": {"model": "openai/a", "mock_response": "from a"}}]})"));
    CHECK(rt.complete(hi("g")).ok);
    CHECK(has_thread_named("caf.lean-clock"));
  }
  CHECK_FALSE(has_thread_named("caf.lean-clock"));
}

TEST_CASE("lean_clock_stats_of a system on CAF's own scheduler is empty", "[actors][lean]") {
  caf::actor_system_config cfg;
  cfg.set("logger.console", caf::atom("none"));
  caf::actor_system sys(cfg);
  CHECK_FALSE(lean_clock_stats_of(sys).has_value());
}

TEST_CASE("lean scheduler: workers run jobs without CAF's per-job logger tag", "[actors][lean]") {
  // CAF_PUSH_AID tags each job for the logger whenever the worker's thread
  // has one; a lean worker drops its thread's logger at its first job
  // (only for a CAF built CAF_LOG_LEVEL_QUIET, as Debian's is).
  auto logger_seen_by_jobs = [](caf::actor_system& sys) {
    std::vector<std::promise<bool>> seen(50);
    std::vector<std::future<bool>> answers;
    for (auto& p : seen)
      answers.push_back(p.get_future());
    for (auto& p : seen)
      spawn_fn(sys, [&p](caf::event_based_actor* self) {
        p.set_value(caf::logger::current_logger() != nullptr);
        self->quit();
      });
    int with_logger = 0;
    for (auto& a : answers)
      with_logger += a.get() ? 1 : 0;
    sys.await_all_actors_done();
    return with_logger;
  };
  lean_system lean;
  caf::actor_system_config stock_cfg;
  stock_cfg.set("scheduler.max-threads", std::size_t{2});
  stock_cfg.set("logger.console", caf::atom("none"));
  caf::actor_system stock(stock_cfg);
#if CAF_LOG_LEVEL == CAF_LOG_LEVEL_QUIET
  CHECK(logger_seen_by_jobs(*lean.sys) == 0);
#else
  CHECK(logger_seen_by_jobs(*lean.sys) == 50);
#endif
  CHECK(logger_seen_by_jobs(stock) == 50); // what the stock scheduler does
}
