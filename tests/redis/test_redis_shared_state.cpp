#include "redis/captured_log.hpp"
#include "redis/redis_server.hpp"

#include "switchyard/config.hpp"
#include "switchyard/redis_shared_state.hpp"
#include "switchyard/shared_state.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

using namespace switchyard;
using switchyard::test::captured_log;
using switchyard::test::redis_server;

namespace {

using std::chrono::milliseconds;

wall_ms wall_now() {
  return std::chrono::duration_cast<milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

// Records what a shared_state tells it; the test thread waits on it.
class recording_listener final : public shared_state_listener {
public:
  void on_cooldown(const shared_cooldown& c) override {
    std::lock_guard lock(mu_);
    cooldowns.push_back(c);
    cv_.notify_all();
  }
  void on_usage(const std::vector<fleet_usage>& u) override {
    std::lock_guard lock(mu_);
    for (const auto& x : u)
      usage[x.deployment_id] = x;
    cv_.notify_all();
  }
  void on_outcomes(const std::vector<fleet_outcomes>& o) override {
    std::lock_guard lock(mu_);
    for (const auto& x : o)
      outcomes[x.deployment_id] = x;
    cv_.notify_all();
  }
  void on_status(const shared_state_status& s) override {
    std::lock_guard lock(mu_);
    statuses.push_back(s);
    cv_.notify_all();
  }

  /// Waits until `pred` holds (checked under the lock), at most 15 s so a
  /// broken build fails instead of hanging; the test asserts the result.
  bool wait(const std::function<bool()>& pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    std::unique_lock lock(mu_);
    while (!pred()) {
      if (std::chrono::steady_clock::now() >= until)
        return false;
      cv_.wait_for(lock, milliseconds(10)); // also polls what is not an event
    }
    return true;
  }
  template <class F>
  auto locked(F f) {
    std::lock_guard lock(mu_);
    return f();
  }

  std::vector<shared_cooldown> cooldowns;
  std::map<std::string, fleet_usage> usage;
  std::map<std::string, fleet_outcomes> outcomes;
  std::vector<shared_state_status> statuses;

private:
  std::mutex mu_;
  std::condition_variable cv_;
};

const std::vector<std::string> ids = {"dep-a", "dep-b"};

redis_shared_state_options options_for(int port, const std::string& password = "") {
  redis_shared_state_options o;
  o.server.host = "127.0.0.1";
  o.server.port = port;
  o.server.password = secret(password);
  o.server.key_prefix = "sy-test:";
  o.deployment_ids = ids;
  o.backoff_min = milliseconds(20);
  o.backoff_max = milliseconds(200);
  o.connect_timeout = milliseconds(500);
  o.reply_timeout = milliseconds(500);
  return o;
}

struct instance {
  std::shared_ptr<recording_listener> heard = std::make_shared<recording_listener>();
  std::unique_ptr<redis_shared_state> state;
  explicit instance(redis_shared_state_options o)
    : state(std::make_unique<redis_shared_state>(std::move(o), heard)) {}

  bool wait_status(shared_state_status::state s) {
    return heard->wait([&] { return !heard->statuses.empty() && heard->statuses.back().value == s; });
  }
  bool wait_cooldown(const std::string& id, wall_ms deadline) {
    return heard->wait([&] {
      for (const auto& c : heard->cooldowns)
        if (c.deployment_id == id && c.deadline_ms == deadline)
          return true;
      return false;
    });
  }
};

std::string counts_key(const std::string& id, std::int64_t minute) {
  return "sy-test:counts:" + id + ":" + std::to_string(minute);
}

} // namespace

TEST_CASE("without redis settings the state stays local", "[redis]") {
  router_config cfg;
  auto s = make_shared_state(cfg, std::make_shared<recording_listener>());
  REQUIRE(dynamic_cast<local_shared_state*>(s.get()) != nullptr);
  s->publish_cooldown({"x", wall_now() + 1000, error_kind::rate_limit, 429});
  s->add_usage("x", 1, 1, 1);
  s->add_outcome("x", 1, true);
  CHECK(s->status().value == shared_state_status::state::none);
  CHECK(s->stats().calls == 0);
  CHECK(name_of(shared_state_status::state::down) == "down");
}

TEST_CASE("a cooldown published by one instance reaches the other", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));

  const wall_ms deadline = wall_now() + 5000;
  a.state->publish_cooldown({"dep-a", deadline, error_kind::rate_limit, 429});
  REQUIRE(b.wait_cooldown("dep-a", deadline));
  const auto heard = b.heard->locked([&] { return b.heard->cooldowns; });
  REQUIRE(heard.size() == 1);
  CHECK(heard[0].kind == error_kind::rate_limit);
  CHECK(heard[0].status == 429);

  auto c = server.client();
  CHECK(c.text({"GET", "sy-test:cooldown:dep-a"})
        == std::to_string(deadline) + " 429 RateLimitError");
  const auto ttl = c.integer({"PTTL", "sy-test:cooldown:dep-a"});
  CHECK(ttl > 0);
  CHECK(ttl <= 5000);
  // The publisher does not hear its own cooldown back, not even from the
  // periodic re-read.
  std::this_thread::sleep_for(milliseconds(1200));
  CHECK(a.heard->locked([&] { return a.heard->cooldowns.size(); }) == 0);
  CHECK(a.state->stats().cooldowns_sent == 1);
}

TEST_CASE("the later cooldown deadline wins and a shorter one never shortens it", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));
  auto c = server.client();

  const wall_ms long_deadline = wall_now() + 20'000;
  a.state->publish_cooldown({"dep-b", long_deadline, error_kind::internal_server, 500});
  REQUIRE(b.wait_cooldown("dep-b", long_deadline));

  // B's shorter one is not stored, not published, and A hears nothing.
  b.state->publish_cooldown({"dep-b", long_deadline - 10'000, error_kind::rate_limit, 429});
  REQUIRE(b.heard->wait([&] { return b.state->stats().cooldowns_sent == 1; }));
  CHECK(c.text({"GET", "sy-test:cooldown:dep-b"})
        == std::to_string(long_deadline) + " 500 InternalServerError");
  CHECK(c.integer({"PTTL", "sy-test:cooldown:dep-b"}) > 10'000);

  // A later one replaces it everywhere.
  const wall_ms later = long_deadline + 5000;
  b.state->publish_cooldown({"dep-b", later, error_kind::rate_limit, 429});
  REQUIRE(a.wait_cooldown("dep-b", later));
  CHECK(c.text({"GET", "sy-test:cooldown:dep-b"}) == std::to_string(later) + " 429 RateLimitError");
  CHECK(a.heard->locked([&] { return a.heard->cooldowns.size(); }) == 1);
}

TEST_CASE("usage and outcome counters add up across two instances", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));

  REQUIRE(switchyard::test::early_in_minute(40));
  const auto minute = wall_minute(wall_now());
  for (int k = 0; k < 300; ++k) {
    a.state->add_usage("dep-a", minute, 1, 10);
    a.state->add_outcome("dep-a", minute, k % 3 == 0);
  }
  for (int k = 0; k < 200; ++k) {
    b.state->add_usage("dep-a", minute, 1, 5);
    b.state->add_outcome("dep-a", minute, false);
  }
  REQUIRE(a.heard->wait([&] {
    auto it = a.heard->usage.find("dep-a");
    return it != a.heard->usage.end() && it->second.requests == 500;
  }));
  const auto u = a.heard->locked([&] { return a.heard->usage.at("dep-a"); });
  CHECK(u.minute == minute);
  CHECK(u.tokens == 300 * 10 + 200 * 5);
  CHECK(u.own_requests == 300);
  CHECK(u.own_tokens == 3000);
  CHECK(u.others_requests() == 200);
  CHECK(u.others_tokens() == 1000);
  REQUIRE(b.heard->wait([&] {
    auto it = b.heard->outcomes.find("dep-a");
    return it != b.heard->outcomes.end() && it->second.requests == 500;
  }));
  const auto o = b.heard->locked([&] { return b.heard->outcomes.at("dep-a"); });
  CHECK(o.failures == 100);
  CHECK(o.others_failures() == 100);
  CHECK(o.own_requests == 200);

  auto c = server.client();
  const auto key = counts_key("dep-a", minute);
  CHECK(c.integer({"HGET", key, "rpm"}) == 500);
  CHECK(c.integer({"HGET", key, "calls"}) == 500);
  CHECK(c.integer({"HGET", key, "fails"}) == 100);
  const auto ttl = c.integer({"TTL", key});
  CHECK(ttl > 0);
  CHECK(ttl <= 120);
  // Nothing is written for a deployment without traffic.
  CHECK(c.integer({"EXISTS", counts_key("dep-b", minute)}) == 0);
}

TEST_CASE("counts are neither lost nor counted twice when connections drop", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));
  const auto minute = wall_minute(wall_now()) + 1; // fixed: no boundary in the test
  constexpr int per_instance = 20'000;
  auto traffic = [&](redis_shared_state& s) {
    for (int k = 0; k < per_instance; ++k) {
      s.add_usage("dep-b", minute, 1, 2);
      if (k % 64 == 0)
        std::this_thread::sleep_for(milliseconds(1));
    }
  };
  std::thread ta([&] { traffic(*a.state); }), tb([&] { traffic(*b.state); });
  auto c = server.client();
  // Redis drops every normal client a few times mid-traffic (it stays up
  // and keeps its data).
  for (int k = 0; k < 4; ++k) {
    std::this_thread::sleep_for(milliseconds(60));
    c.command({"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"});
    c.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  }
  ta.join();
  tb.join();
  const auto key = counts_key("dep-b", minute);
  bool settled = a.heard->wait([&] {
    return c.integer({"HGET", key, "rpm"}) >= 2 * per_instance
           && a.state->stats().connects >= 2 && b.state->stats().connects >= 2;
  });
  std::this_thread::sleep_for(milliseconds(300)); // anything more would be a double count
  CHECK(settled);
  CHECK(c.integer({"HGET", key, "rpm"}) == 2 * per_instance);
  CHECK(c.integer({"HGET", key, "tpm"}) == 4 * per_instance);
  INFO("a reconnected " << a.state->stats().connects << " times, b "
                        << b.state->stats().connects);
  CHECK(a.state->stats().connects >= 2);
}

TEST_CASE("a counter batch whose reply never came is applied once", "[redis]") {
  redis_server server;
  instance a(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  const auto minute = wall_minute(wall_now()) + 1;
  // Redis stalls: the batch goes out, no reply comes, the connection is
  // dropped after reply_timeout. Redis then wakes up and applies what it
  // had received; the resend under the same sequence number is skipped.
  server.pause();
  for (int k = 0; k < 50; ++k)
    a.state->add_usage("dep-a", minute, 1, 1);
  REQUIRE(a.wait_status(shared_state_status::state::down));
  {
    // Starting and stopping against a stalled Redis returns (the test
    // would hang here otherwise).
    instance stalled(options_for(server.port()));
    stalled.state->add_usage("dep-b", minute, 1, 1);
  }
  server.resume();
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  auto c = server.client();
  REQUIRE(a.heard->wait([&] { return a.state->stats().batches_acked >= 1; }));
  const auto s = a.state->stats();
  CHECK(c.integer({"HGET", counts_key("dep-a", minute), "rpm"}) == 50);
  CHECK(s.batches_resent >= 1);
  CHECK(s.batches_duplicate >= 1);
  const auto reason = a.heard->locked([&] {
    for (const auto& st : a.heard->statuses)
      if (st.value == shared_state_status::state::down)
        return st.reason;
    return std::string();
  });
  CHECK(reason.find("no reply within 500 ms") != std::string::npos);
}

TEST_CASE("redis killed mid-traffic: calls go on, status goes down and comes back", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));

  // A caller thread that never stops while Redis dies and comes back.
  std::atomic<bool> run{true};
  std::atomic<std::uint64_t> calls{0};
  std::atomic<std::int64_t> slowest_ns{0};
  std::atomic<std::uint64_t> over_100us{0}, over_1ms{0};
  std::thread traffic([&] {
    while (run) {
      auto t0 = std::chrono::steady_clock::now();
      a.state->add_usage("dep-a", wall_minute(wall_now()), 1, 1);
      a.state->add_outcome("dep-a", wall_minute(wall_now()), false);
      auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                  std::chrono::steady_clock::now() - t0).count();
      if (ns > slowest_ns)
        slowest_ns = ns;
      over_100us += ns > 100'000 ? 1 : 0;
      over_1ms += ns > 1'000'000 ? 1 : 0;
      ++calls;
      if (calls % 256 == 0)
        std::this_thread::sleep_for(milliseconds(1));
    }
  });

  server.stop();
  REQUIRE(a.wait_status(shared_state_status::state::down));
  REQUIRE(b.wait_status(shared_state_status::state::down));
  const auto down_reason = a.heard->locked([&] { return a.heard->statuses.back().reason; });
  CHECK(!down_reason.empty());
  CHECK(a.state->status().value == shared_state_status::state::down);

  // During the outage calls still return; a cooldown is kept for later.
  const auto calls_at_outage = calls.load();
  const wall_ms during = wall_now() + 30'000;
  a.state->publish_cooldown({"dep-a", during, error_kind::timeout, 408});
  REQUIRE(a.heard->wait([&] { return calls.load() > calls_at_outage + 2000; }));

  REQUIRE(server.start());
  // Set behind everyone's back while they were away: found by the re-read.
  const wall_ms unpublished = wall_now() + 40'000;
  server.client().command({"SET", "sy-test:cooldown:dep-b",
                           std::to_string(unpublished) + " 503 ServiceUnavailableError",
                           "PX", "40000"});
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));
  CHECK(b.wait_cooldown("dep-a", during));
  CHECK(b.wait_cooldown("dep-b", unpublished));
  CHECK(a.wait_cooldown("dep-b", unpublished));

  const wall_ms after = wall_now() + 10'000;
  b.state->publish_cooldown({"dep-b", after + 40'000, error_kind::rate_limit, 429});
  CHECK(a.wait_cooldown("dep-b", after + 40'000));
  run = false;
  traffic.join();
  WARN("calls made: " << calls.load() << " (each 2 pushes), over 100 us: " << over_100us.load()
                      << ", over 1 ms: " << over_1ms.load() << ", slowest: "
                      << slowest_ns.load() / 1000
                      << " us (a queue push; Redis was down for part of it)");
  CHECK(a.state->stats().calls == 2 * calls.load() + 1);
}

TEST_CASE("a wrong password means down with a clear reason, never the password", "[redis]") {
  captured_log log;
  redis_server server("s3cret-server-pw");
  instance wrong(options_for(server.port(), "wrong-pw-1234"));
  REQUIRE(wrong.wait_status(shared_state_status::state::down));
  const auto st = wrong.state->status();
  CHECK(st.value == shared_state_status::state::down);
  CHECK(st.reason.find("authentication failed") != std::string::npos);
  CHECK(st.reason.find("wrong-pw-1234") == std::string::npos);
  // Still usable: calls return, nothing leaves.
  wrong.state->add_usage("dep-a", wall_minute(wall_now()), 1, 1);
  wrong.state->publish_cooldown({"dep-a", wall_now() + 1000, error_kind::rate_limit, 429});

  instance right(options_for(server.port(), "s3cret-server-pw"));
  REQUIRE(right.wait_status(shared_state_status::state::connected));
  instance none(options_for(server.port()));
  REQUIRE(none.wait_status(shared_state_status::state::down));
  CHECK(none.state->status().reason.find("NOAUTH") != std::string::npos);

  std::this_thread::sleep_for(milliseconds(300)); // a few retries, same reason
  const auto lines = log.all();
  INFO(lines);
  CHECK(lines.find("authentication failed") != std::string::npos);
  CHECK(lines.find("wrong-pw-1234") == std::string::npos);
  CHECK(lines.find("s3cret-server-pw") == std::string::npos);
  // Once per state change, not once per retry.
  CHECK(wrong.heard->locked([&] { return wrong.heard->statuses.size(); }) == 1);
}

TEST_CASE("an unreachable redis means down with a clear reason", "[redis]") {
  const int port = switchyard::test::free_loopback_port();
  instance a(options_for(port, "some-pw-5678"));
  REQUIRE(a.wait_status(shared_state_status::state::down));
  const auto st = a.state->status();
  CHECK(st.reason.find("refused") != std::string::npos);
  CHECK(st.reason.find("some-pw-5678") == std::string::npos);
  for (int k = 0; k < 1000; ++k)
    a.state->add_outcome("dep-a", wall_minute(wall_now()), true);
  CHECK(a.state->stats().calls == 1000);
  std::this_thread::sleep_for(milliseconds(300)); // retries with backoff
  CHECK(a.heard->locked([&] { return a.heard->statuses.size(); }) == 1);
}

TEST_CASE("two key prefixes on one redis do not see each other", "[redis]") {
  redis_server server;
  auto other = options_for(server.port());
  other.server.key_prefix = "sy-other:";
  instance a(options_for(server.port())), b(std::move(other));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));
  const wall_ms deadline = wall_now() + 5000;
  a.state->publish_cooldown({"dep-a", deadline, error_kind::rate_limit, 429});
  auto c = server.client();
  REQUIRE(a.heard->wait([&] { return a.state->stats().cooldowns_sent == 1; }));
  std::this_thread::sleep_for(milliseconds(1200)); // past one re-read
  CHECK(b.heard->locked([&] { return b.heard->cooldowns.size(); }) == 0);
  CHECK(c.integer({"EXISTS", "sy-other:cooldown:dep-a"}) == 0);
}

TEST_CASE("cooldown propagation from one instance to another, measured", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));
  // Each a later deadline for the same deployment, so that each is news.
  constexpr int n = 200;
  std::vector<double> ms;
  const wall_ms base = wall_now() + 60'000;
  for (int k = 0; k < n; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    a.state->publish_cooldown({"dep-a", base + k, error_kind::rate_limit, 429});
    REQUIRE(b.wait_cooldown("dep-a", base + k));
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                   .count());
  }
  std::sort(ms.begin(), ms.end());
  WARN("publish -> other instance's listener over " << n << " cooldowns: p50 " << ms[n / 2]
                                                    << " ms, p99 " << ms[n * 99 / 100]
                                                    << " ms, max " << ms.back() << " ms");
  CHECK(b.heard->locked([&] { return b.heard->cooldowns.size(); }) == static_cast<std::size_t>(n));
}

TEST_CASE("make_shared_state connects to the redis router_settings name", "[redis]") {
  redis_server server("pw-for-config");
  const auto cfg = load_config(nlohmann::ordered_json::parse(
    R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m", "mock_response": "hi"},
                        "model_info": {"id": "dep-a"}}],
        "router_settings": {"redis_url": "redis://:pw-for-config@127.0.0.1:)"
    + std::to_string(server.port()) + R"(", "redis_key_prefix": "sy-test:"}})"));
  auto heard = std::make_shared<recording_listener>();
  auto s = make_shared_state(cfg, heard);
  REQUIRE(dynamic_cast<redis_shared_state*>(s.get()) != nullptr);
  instance other(options_for(server.port(), "pw-for-config"));
  REQUIRE(heard->wait([&] { return s->status().value == shared_state_status::state::connected; }));
  REQUIRE(other.wait_status(shared_state_status::state::connected));
  const wall_ms deadline = wall_now() + 3000;
  s->publish_cooldown({"dep-a", deadline, error_kind::authentication, 401});
  CHECK(other.wait_cooldown("dep-a", deadline));
}

TEST_CASE("cooldowns() lists this instance's own and heard cooldowns still ahead", "[redis]") {
  redis_server server;
  instance a(options_for(server.port())), b(options_for(server.port()));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  REQUIRE(b.wait_status(shared_state_status::state::connected));

  const wall_ms own = wall_now() + 20'000, heard = wall_now() + 30'000;
  a.state->publish_cooldown({"dep-a", own, error_kind::rate_limit, 429});
  a.state->publish_cooldown({"dep-a", own - 5000, error_kind::rate_limit, 429}); // shorter
  b.state->publish_cooldown({"dep-b", heard, error_kind::internal_server, 500});
  REQUIRE(a.wait_cooldown("dep-b", heard));

  auto listed = a.state->cooldowns(wall_now());
  std::sort(listed.begin(), listed.end(),
            [](const auto& x, const auto& y) { return x.deployment_id < y.deployment_id; });
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].deployment_id == "dep-a");
  CHECK(listed[0].deadline_ms == own);
  CHECK(listed[1].deployment_id == "dep-b");
  CHECK(listed[1].deadline_ms == heard);
  CHECK(listed[1].status == 500);
  // Past a deadline, it is no longer listed.
  const auto later = a.state->cooldowns(own + 1);
  REQUIRE(later.size() == 1);
  CHECK(later[0].deployment_id == "dep-b");
  CHECK(a.state->cooldowns(heard + 1).empty());
}

TEST_CASE("under steady traffic counter batches leave at most once per flush interval",
          "[redis]") {
  redis_server server;
  auto o = options_for(server.port());
  o.flush_interval = milliseconds(50);
  instance a(std::move(o));
  REQUIRE(a.wait_status(shared_state_status::state::connected));
  const auto before = a.state->stats().batches_acked;
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t added = 0;
  while (std::chrono::steady_clock::now() - t0 < milliseconds(1000)) {
    for (int k = 0; k < 50; ++k, ++added)
      a.state->add_usage("dep-a", wall_minute(wall_now()), 1, 0);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto elapsed = std::chrono::steady_clock::now() - t0;
  CHECK(a.state->stats().calls == added);
  const auto batches = a.state->stats().batches_acked - before;
  // One batch per round trip would be hundreds; one per interval is ~20.
  const auto intervals =
    std::chrono::duration_cast<milliseconds>(elapsed).count() / 50 + 2;
  INFO("batches " << batches << ", intervals " << intervals);
  CHECK(batches >= 1);
  CHECK(batches <= static_cast<std::uint64_t>(intervals));
}
