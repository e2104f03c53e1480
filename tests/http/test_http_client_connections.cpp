// http_client keeps its upstream connections alive while the number of
// calls in flight swings (issue 10: `switchyard serve` under wrk -c32 made
// 51 new upstream connections per ~1,700 requests), counted by the test
// upstream itself.

#include "http/recorded_call.hpp"
#include "support/upstream_process.hpp"

#include "switchyard/http_client.hpp"

#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>

using namespace switchyard;
using namespace switchyard::test;
using namespace std::chrono_literals;

namespace {

/// Runs `total` calls with at most `window` in flight, in waves of
/// `window` started together and each drained to zero before the next:
/// what a gateway sees when its clients' requests arrive in bursts. The
/// number of calls in the multi handle falls from `window` to 1 in every
/// wave. Returns the calls that got a 200.
int in_waves(http_client& client, const upstream_process& up, int total, int window) {
  std::mutex m;
  std::condition_variable cv;
  int running = 0;
  int ok = 0;
  for (int started = 0; started < total;) {
    const int wave = std::min(window, total - started);
    {
      std::lock_guard lock(m);
      running = wave;
    }
    for (int i = 0; i < wave; ++i, ++started) {
      http_call_events e;
      e.on_done = [&](http_result r) {
        std::lock_guard lock(m);
        ok += r.transport_ok && r.status == 200 ? 1 : 0;
        --running;
        cv.notify_all();
      };
      client.start(chat_request(up.base_url() + "/v1/chat/completions"), {}, std::move(e));
    }
    std::unique_lock lock(m);
    // A hang guard, not a timing assertion.
    if (!cv.wait_for(lock, 60s, [&] { return running == 0; }))
      return ok;
  }
  return ok;
}

/// Runs `total` calls keeping `window` in flight: each answer starts the
/// next call from inside its on_done (on the I/O thread). Returns the
/// calls that got a 200.
int closed_loop(http_client& client, const upstream_process& up, int total, int window) {
  // Shared with the callbacks: the last one may still be on its way out
  // of next() when the test thread has seen every call done.
  struct state : std::enable_shared_from_this<state> {
    http_client* client = nullptr;
    std::string url;
    std::mutex m;
    std::condition_variable cv;
    int to_start = 0;
    int done = 0;
    int ok = 0;
    void next() {
      {
        std::lock_guard lock(m);
        if (to_start == 0)
          return;
        --to_start;
      }
      http_call_events e;
      e.on_done = [self = shared_from_this()](http_result r) {
        {
          std::lock_guard lock(self->m);
          self->ok += r.transport_ok && r.status == 200 ? 1 : 0;
          ++self->done;
          self->cv.notify_all();
        }
        self->next();
      };
      client->start(chat_request(url), {}, std::move(e));
    }
  };
  auto s = std::make_shared<state>();
  s->client = &client;
  s->url = up.base_url() + "/v1/chat/completions";
  s->to_start = total;
  for (int i = 0; i < window; ++i)
    s->next();
  std::unique_lock lock(s->m);
  // A hang guard, not a timing assertion.
  s->cv.wait_for(lock, 60s, [&] { return s->done == total; });
  return s->ok;
}

int connections_that_carried(const nlohmann::json& stats) {
  int n = 0;
  for (const auto& [id, requests] : stats["requests_per_connection"].items())
    n += requests.get<int>() > 0 ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("http client: 2,000 calls at 32 in flight keep their connections alive", "[http]") {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"})
    unsetenv(v);
  upstream_process up;
  http_client client; // the defaults, as the router and serve use them
  constexpr int window = 32;

  SECTION("in waves that drain to zero") {
    REQUIRE(in_waves(client, up, 2000, window) == 2000);
  }
  SECTION("in a closed loop") {
    REQUIRE(closed_loop(client, up, 2000, window) == 2000);
  }
  auto s = up.stats();
  CHECK(s["requests"] == 2000);
  // Never more connections than calls at once: each one, kept alive in the
  // connection cache, is taken again by a later call.
  CHECK(s["connections_accepted"].get<int>() <= window);
  CHECK(s["connections_closed_by_client"] == 0);
  CHECK(connections_that_carried(s) <= window);
  CHECK(client.snapshot().connections_opened <= static_cast<std::uint64_t>(window));
}
