// http_client's recycled easy handles, its coalesced wake-ups and cancels
// racing completions, against the real test upstream over loopback.

#include "http/recorded_call.hpp"
#include "support/upstream_process.hpp"

#include "switchyard/http_client.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

using namespace switchyard;
using namespace switchyard::test;
using namespace std::chrono_literals;

namespace {

/// A chat call whose answer's content is `content` (the upstream echoes it).
http_request_spec echo_call(const upstream_process& up, const std::string& content,
                            const std::string& more = "") {
  auto r = chat_request(up.base_url() + "/scenario/content=" + content + more
                        + "/v1/chat/completions");
  r.body = nlohmann::json{{"model", "gpt-4o"},
                          {"messages", {{{"role", "user"}, {"content", content}}}}}
             .dump();
  return r;
}

std::string content_of(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.contains("choices"))
    return "<not a chat.completion>";
  return j["choices"][0]["message"]["content"].get<std::string>();
}

/// One call's callbacks: its body, and a check that its answer is its own.
struct checked_call {
  std::string expected;
  std::string body;
  std::atomic<int> dones{0};
  bool right = false;
  http_call_events events(std::function<void()> after = {}) {
    http_call_events e;
    e.on_body = [this](std::string_view b) { body.append(b); };
    e.on_done = [this, after = std::move(after)](http_result r) {
      right = r.transport_ok && r.status == 200 && content_of(body) == expected;
      ++dones;
      if (after)
        after();
    };
    return e;
  }
};

/// The test upstream and a client with no cap on connections per host.
struct uncapped {
  no_proxy_env env;
  upstream_process up;
  http_client client{[] {
    http_client_options o;
    o.max_connections_per_host = 0;
    return o;
  }()};
};

/// Counts down to zero; wait() is a hang guard, not a timing assertion.
class latch {
public:
  explicit latch(int n) : left_(n) {}
  void count_down() {
    std::lock_guard lock(m_);
    if (--left_ == 0)
      cv_.notify_all();
  }
  bool wait(std::chrono::seconds cap = 60s) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, cap, [&] { return left_ <= 0; });
  }

private:
  std::mutex m_;
  std::condition_variable cv_;
  int left_;
};

} // namespace

TEST_CASE("http client: a recycled handle carries nothing of its last call", "[http]") {
  // Alternating shapes on one client, one after another (each ends before
  // the next starts, so the next one gets the same easy handle): a stale
  // body, header list, URL, method or callback target would show here.
  no_proxy_env env;
  upstream_process up;
  http_client client;
  for (int i = 0; i < 30; ++i) {
    const auto text = "seq-" + std::to_string(i);
    switch (i % 5) {
      case 0: { // POST with an extra header
        auto r = echo_call(up, text);
        r.headers.push_back({"x-only-once", text, false});
        auto rec = run_call(client, std::move(r));
        CHECK(content_of(rec->body) == text);
        break;
      }
      case 1: { // POST without it, to another path
        auto rec = run_call(client, echo_call(up, text, ",finish=length"));
        CHECK(content_of(rec->body) == text);
        CHECK(nlohmann::json::parse(rec->body)["choices"][0]["finish_reason"] == "length");
        break;
      }
      case 2: { // GET: no body, no POST
        http_request_spec get;
        get.method = "GET";
        get.url = up.base_url() + "/_stats";
        auto rec = run_call(client, get);
        CHECK(rec->result.status == 200);
        CHECK(nlohmann::json::parse(rec->body).contains("requests"));
        break;
      }
      case 3: { // ended by its total timeout in mid-call
        http_call_options o;
        o.total_timeout = 300ms; // time enough to send, under sanitizers too
        auto rec = run_call(client, echo_call(up, text, ",delay_ms=2000"), o);
        CHECK(rec->result.timed_out);
        break;
      }
      case 4: { // cancelled in mid-call
        // Cancelled once the upstream has recorded this call (waiting for
        // any call would let the cancel win the race with the send).
        const auto before = up.calls().size();
        recorded_call rec;
        auto id = client.start(echo_call(up, text, ",hang"), {}, rec.events());
        for (int wait = 0; wait < 250 && up.calls().size() == before; ++wait)
          std::this_thread::sleep_for(20ms);
        client.cancel(id);
        CHECK_FALSE(rec.done);
        break;
      }
    }
  }
  // What the upstream received: the extra header only on its own calls,
  // every body the call's own.
  auto calls = up.calls();
  int api_calls = 0;
  for (const auto& c : calls) {
    if (c["method"] != "POST")
      continue;
    ++api_calls;
    const auto text = c["body"]["messages"][0]["content"].get<std::string>();
    const int i = std::stoi(text.substr(4));
    INFO(text);
    CHECK(c["path"].get<std::string>().find("content=" + text) != std::string::npos);
    if (i % 5 == 0)
      CHECK(c["headers"]["x-only-once"] == text);
    else
      CHECK_FALSE(c["headers"].contains("x-only-once"));
  }
  CHECK(api_calls == 24); // 6 each of the POST shapes 0, 1, 3 and 4
  auto s = client.snapshot();
  CHECK(s.active == 0);
  CHECK(s.completed == 24); // 30 less the 6 cancelled
  CHECK(s.cancelled == 6);
}

TEST_CASE("http client: 10,000 calls on recycled handles, each gets its own answer",
          "[http][load]") {
  uncapped u;
  auto& up = u.up;
  auto& client = u.client;
  constexpr int sequential = 200;
  constexpr int threads = 4;
  constexpr int per_thread = 2450;
  constexpr int in_flight = 32; // per thread
  std::vector<std::unique_ptr<checked_call>> calls;
  for (int i = 0; i < sequential + threads * per_thread; ++i) {
    calls.push_back(std::make_unique<checked_call>());
    calls.back()->expected = "c" + std::to_string(i);
  }
  // One after another: every call on the same recycled handle.
  for (int i = 0; i < sequential; ++i) {
    latch one(1);
    client.start(echo_call(up, calls[i]->expected), {}, calls[i]->events([&] { one.count_down(); }));
    REQUIRE(one.wait());
  }
  // Then side by side from several threads, each keeping 32 in flight.
  latch all(threads * per_thread);
  std::vector<std::thread> senders;
  for (int t = 0; t < threads; ++t)
    senders.emplace_back([&, t] {
      std::mutex m;
      std::condition_variable cv;
      int running = 0;
      for (int k = 0; k < per_thread; ++k) {
        auto& c = *calls[sequential + t * per_thread + k];
        {
          std::unique_lock lock(m);
          cv.wait(lock, [&] { return running < in_flight; });
          ++running;
        }
        client.start(echo_call(up, c.expected), {}, c.events([&] {
          {
            // Notified under the lock: once the sender saw running == 0
            // and ended, no callback touches its m and cv any more.
            std::lock_guard lock(m);
            --running;
            cv.notify_one();
          }
          all.count_down();
        }));
      }
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return running == 0; }); // its callbacks use m and cv
    });
  for (auto& s : senders)
    s.join();
  REQUIRE(all.wait());
  int right = 0, once = 0;
  for (auto& c : calls) {
    right += c->right ? 1 : 0;
    once += c->dones == 1 ? 1 : 0;
  }
  CHECK(once == static_cast<int>(calls.size()));
  CHECK(right == static_cast<int>(calls.size()));
  CHECK(up.stats()["requests"] == static_cast<int>(calls.size()));
  auto s = client.snapshot();
  CHECK(s.completed == calls.size());
  CHECK(s.active == 0);
  // Connections are kept and reused too: far fewer than calls.
  CHECK(s.connections_opened < calls.size() / 10);
}

TEST_CASE("http client: cancels racing completions never call back after cancel returned",
          "[http][load]") {
  // Each call is cancelled from another thread after a random short spin:
  // before it went out, in mid-call, or just as it completes. The handles
  // these leave behind are recycled for the calls after.
  uncapped u;
  auto& up = u.up;
  auto& client = u.client;
  constexpr int n = 3000;
  struct racing {
    std::atomic<bool> cancel_returned{false};
    std::atomic<int> late{0};
    std::atomic<int> dones{0};
  };
  std::vector<std::unique_ptr<racing>> r;
  for (int i = 0; i < n; ++i)
    r.push_back(std::make_unique<racing>());
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> spin(0, 400); // microseconds
  for (int wave = 0; wave < n / 100; ++wave) {
    struct pending {
      std::uint64_t id;
      int spin_us;
      racing* x;
    };
    std::vector<pending> ids;
    for (int k = 0; k < 100; ++k) {
      const int i = wave * 100 + k;
      auto* x = r[i].get();
      http_call_events e;
      auto check = [x] {
        if (x->cancel_returned.load())
          ++x->late;
      };
      e.on_head = [check](long, const http_headers&) { check(); };
      e.on_body = [check](std::string_view) { check(); };
      e.on_done = [check, x](http_result) {
        check();
        ++x->dones;
      };
      const auto id = client.start(echo_call(up, "r" + std::to_string(i), i % 3 ? "" : ",delay_ms=1"),
                                   {}, std::move(e));
      ids.push_back({id, spin(rng), x});
    }
    std::thread canceller([&] {
      for (const auto& p : ids) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(p.spin_us);
        while (std::chrono::steady_clock::now() < until) {
        }
        client.cancel(p.id);
        p.x->cancel_returned = true;
      }
    });
    canceller.join();
  }
  // Everything has ended one way or the other.
  const auto until = std::chrono::steady_clock::now() + 60s;
  while (client.snapshot().active > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  auto s = client.snapshot();
  CHECK(s.active == 0);
  CHECK(s.started == static_cast<std::uint64_t>(n));
  CHECK(s.completed + s.cancelled == s.started);
  int late = 0, twice = 0, done = 0;
  for (auto& x : r) {
    late += x->late;
    twice += x->dones > 1 ? 1 : 0;
    done += x->dones;
  }
  CHECK(late == 0);
  CHECK(twice == 0);
  CHECK(done == static_cast<int>(s.completed));
  // The recycled handles after all that: clean calls with their own answers.
  for (int i = 0; i < 50; ++i) {
    auto rec = run_call(client, echo_call(up, "after-" + std::to_string(i)));
    CHECK(content_of(rec->body) == "after-" + std::to_string(i));
  }
}

TEST_CASE("http client: no wake-up is lost in a storm of starts and cancels", "[http][load]") {
  // Rounds in which 2 threads each start one call at the same moment (and
  // one of them starts and at once cancels another), then wait for their
  // calls: with nothing else going on, a start whose wake-up was lost would
  // never run and its round would hang (the guard fails the test). The
  // race is narrow (a start landing as the loop takes its wake-up), hence
  // many short rounds.
  uncapped u;
  auto& up = u.up;
  auto& client = u.client;
  constexpr int threads = 2;
  constexpr int rounds = 2000;
  std::atomic<int> answered{0};
  std::atomic<int> round_started{-1};
  std::atomic<int> arrived{0};
  std::atomic<bool> give_up{false};
  std::vector<std::atomic<int>> done_in(rounds);
  const auto url_call = echo_call(up, "w");
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      for (int round = 0; round < rounds && !give_up; ++round) {
        while (round_started.load() < round && !give_up)
          std::this_thread::yield();
        // Both leave this spin together.
        ++arrived;
        while (arrived.load() < (round + 1) * threads && !give_up)
          std::this_thread::yield();
        http_call_events e;
        e.on_done = [&, round](http_result res) {
          answered += res.status == 200 ? 1 : 0;
          ++done_in[round];
        };
        client.start(url_call, {}, std::move(e));
        if (t % 2)
          client.cancel(client.start(url_call, {}, {}));
      }
    });
  int lost_rounds = 0;
  for (int round = 0; round < rounds; ++round) {
    round_started = round;
    const auto until = std::chrono::steady_clock::now() + 20s;
    while (done_in[round].load() < threads && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(20us);
    if (done_in[round].load() < threads) {
      ++lost_rounds;
      give_up = true;
      break;
    }
  }
  give_up = true;
  for (auto& t : ts)
    t.join();
  CHECK(lost_rounds == 0);
  CHECK(answered == threads * rounds);
  const auto until = std::chrono::steady_clock::now() + 20s;
  while (client.snapshot().active > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  CHECK(client.snapshot().active == 0);
}
