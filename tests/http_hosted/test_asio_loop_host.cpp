// server::asio_loop_host: an http_client's loop on an Asio io_context, as
// `switchyard serve` runs its transport. The client's own cases run hosted
// too (test_http_client.cpp, compiled again into this binary).

#include "http/hosted_http_client.hpp"
#include "http/recorded_call.hpp"
#include "support/process_threads.hpp"
#include "support/upstream_process.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

using namespace switchyard;
using namespace switchyard::test;
using namespace std::chrono_literals;

TEST_CASE("asio loop host: the client starts no thread and calls back on the host's thread", "[http]") {
  no_proxy_env env;
  upstream_process up;
  asio_host_thread host;
  const int before = thread_count();
  http_client client(host.hosted({}));
  CHECK(thread_count() == before);

  std::thread::id callback_thread;
  recorded_call rec;
  auto events = rec.events();
  events.on_done = [&, done = events.on_done](http_result r) {
    callback_thread = std::this_thread::get_id();
    done(std::move(r));
  };
  client.start(chat_request(chat_url(up)), {}, std::move(events));
  REQUIRE(rec.wait());
  CHECK(rec.result.status == 200);
  CHECK(callback_thread == host.thread_id());
  CHECK(thread_count() == before);
}

TEST_CASE("asio loop host: calls started before the host is bound run once it is", "[http]") {
  // serve's order: the router (and its client) before the gateway binds
  // its io_context.
  no_proxy_env env;
  upstream_process up;
  asio_host_thread io(1, /*start_now=*/false);
  http_client client(io.hosted({}));
  std::vector<std::unique_ptr<recorded_call>> recs;
  for (int i = 0; i < 3; ++i) {
    recs.push_back(std::make_unique<recorded_call>());
    client.start(chat_request(chat_url(up)), {}, recs.back()->events());
  }
  std::this_thread::sleep_for(100ms);
  CHECK(up.stats()["requests"] == 0); // nothing runs the loop yet
  CHECK_FALSE(recs[0]->done);

  io.run_threads();
  for (auto& r : recs) {
    REQUIRE(r->wait());
    CHECK(r->result.status == 200);
  }
}

TEST_CASE("asio loop host: thousands of calls one after another never miss a wake-up", "[http]") {
  // Each call starts from the test thread right after the last one ended,
  // so a start often lands while a turn runs or just after: a lost
  // readiness edge would leave a call waiting for ever (wait() gives up).
  no_proxy_env env;
  upstream_process up;
  hosted_http_client client;
  const auto request = chat_request(chat_url(up));
  int ok = 0;
  for (int i = 0; i < 2000; ++i) {
    recorded_call rec;
    client.start(request, {}, rec.events());
    REQUIRE(rec.wait(10));
    ok += rec.result.status == 200 ? 1 : 0;
  }
  CHECK(ok == 2000);
  CHECK(client.snapshot().completed == 2000);
}

TEST_CASE("asio loop host: calls chained from callbacks on the host's thread", "[http]") {
  no_proxy_env env;
  upstream_process up;
  hosted_http_client client;
  const auto request = chat_request(chat_url(up));
  std::atomic<int> left{500};
  std::atomic<int> ok{0};
  std::mutex m;
  std::condition_variable finished;
  std::function<void()> next = [&] {
    http_call_events e;
    e.on_done = [&](http_result r) {
      ok += r.status == 200 ? 1 : 0;
      if (--left > 0) {
        next();
      } else {
        std::lock_guard lock(m);
        finished.notify_all();
      }
    };
    client.start(request, {}, std::move(e));
  };
  next();
  std::unique_lock lock(m);
  REQUIRE(finished.wait_for(lock, 60s, [&] { return left == 0; }));
  CHECK(ok == 500);
}

TEST_CASE("asio loop host: two I/O threads run one turn at a time", "[http]") {
  no_proxy_env env;
  upstream_process up;
  asio_host_thread io(2);
  {
    http_client_options o;
    o.max_connections_per_host = 0;
    http_client client(io.hosted(o));
    std::atomic<int> inside{0};
    std::atomic<int> overlapped{0};
    std::atomic<int> done{0};
    constexpr int n = 400;
    for (int i = 0; i < n; ++i) {
      http_call_events e;
      e.on_body = [&](std::string_view) {
        if (++inside > 1)
          ++overlapped;
        std::this_thread::yield();
        --inside;
      };
      e.on_done = [&](http_result r) { done += r.status == 200 ? 1 : 0; };
      client.start(chat_request(chat_url(up, "delay_ms=20")), {}, std::move(e));
    }
    auto until = std::chrono::steady_clock::now() + 60s;
    while (done < n && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(5ms);
    CHECK(done == n);
    CHECK(overlapped == 0);
  }
}

TEST_CASE("asio loop host: unbound with calls in flight, the client drops them without callbacks", "[http]") {
  // serve's shutdown: the I/O threads stop and the host is unbound, then
  // the router (and its client) go.
  no_proxy_env env;
  upstream_process up;
  std::atomic<int> callbacks{0};
  {
    asio_host_thread io;
    http_client client(io.hosted({}));
    for (int i = 0; i < 5; ++i) {
      http_call_events e;
      e.on_done = [&](http_result) { ++callbacks; };
      client.start(chat_request(chat_url(up, "hang")), {}, std::move(e));
    }
    up.stats_when([](auto& s) { return s["requests"] == 5; });
    io.stop_threads(); // the threads, then unbind()
    client.cancel(1); // queued for a loop that no longer runs: no effect, no hang
  }
  CHECK(callbacks == 0);
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 5; });
  CHECK(s["connections_closed_by_client"] == 5);
}
