// Several routers in one process, each with its own shared-state
// connections to one real redis-server (the fixture starts it on a free
// loopback port): they act as one fleet of replicas.

#include "redis/captured_log.hpp"
#include "redis/redis_server.hpp"

#include "messages.hpp" // fault_atom (actors/)

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/router.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

using namespace switchyard;
using switchyard::test::captured_log;
using switchyard::test::early_in_minute;
using switchyard::test::eventually;
using switchyard::test::redis_server;
using ojson = nlohmann::ordered_json;

namespace {

using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

// Records the cooldowns a router starts (its own and heard ones) and its
// shared-state status changes; the test thread waits on it.
class recording_observer final : public router_observer {
public:
  void on_cooldown(const cooldown_event& e) override {
    std::lock_guard lock(mu_);
    if (e.started)
      started_[std::string(e.deployment_id)].push_back(steady::now());
    cv_.notify_all();
  }
  void on_shared_state(const shared_state_status& s) override {
    std::lock_guard lock(mu_);
    statuses_.push_back(s.value);
    cv_.notify_all();
  }
  std::size_t cooldowns(const std::string& id) {
    std::lock_guard lock(mu_);
    return started_[id].size();
  }
  /// When the n-th (0-based) cooldown of `id` started here.
  std::optional<steady::time_point> started(const std::string& id, std::size_t n) {
    std::lock_guard lock(mu_);
    const auto& v = started_[id];
    return n < v.size() ? std::optional(v[n]) : std::nullopt;
  }
  /// Waits until `id` has had `n` cooldowns here, at most `limit`.
  bool wait_cooldowns(const std::string& id, std::size_t n, milliseconds limit) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, [&] { return started_[id].size() >= n; });
  }
  std::vector<shared_state_status::state> statuses() {
    std::lock_guard lock(mu_);
    return statuses_;
  }

private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<steady::time_point>> started_;
  std::vector<shared_state_status::state> statuses_;
};

// One deployment of the test configs: a fixed id (so that it is the same
// in every replica whatever its litellm_params), and its mock answer.
ojson deployment(const std::string& group, const std::string& id, const ojson& mock,
                 ojson extra = ojson::object()) {
  ojson params = {{"model", "openai/" + id}, {"mock_response", mock}};
  for (auto& [k, v] : extra.items())
    params[k] = v;
  return ojson{{"model_name", group}, {"litellm_params", params}, {"model_info", {{"id", id}}}};
}

// A config sharing state through the test's redis, with `settings` added
// to router_settings.
router_config replica_config(int redis_port, std::vector<ojson> model_list,
                             ojson settings = ojson::object()) {
  ojson rs = {{"redis_host", "127.0.0.1"}, {"redis_port", redis_port}, {"num_retries", 0}};
  for (auto& [k, v] : settings.items())
    rs[k] = v;
  ojson doc = {{"model_list", model_list}, {"router_settings", rs}};
  return load_config(doc);
}

// A router of the fleet, with its observer.
struct replica {
  std::shared_ptr<recording_observer> seen = std::make_shared<recording_observer>();
  std::unique_ptr<router> r;

  replica(router_config config, std::uint64_t seed) {
    router_options o;
    o.seed = seed;
    o.threads = 2;
    o.observer = seen;
    r = std::make_unique<router>(std::move(config), o);
  }
  route_result ask(const std::string& group) {
    chat_request q;
    q.model = group;
    q.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hello"}}});
    return r->complete(std::move(q));
  }
  /// Asks until a cooldown of `id` has started here (at most `tries`).
  bool cool(const std::string& group, const std::string& id, int tries = 200) {
    const auto before = seen->cooldowns(id);
    for (int k = 0; k < tries && seen->cooldowns(id) == before; ++k)
      ask(group);
    return seen->cooldowns(id) > before;
  }
  bool connected() const {
    return r->shared_state_status().value == shared_state_status::state::connected;
  }
  /// Makes `group`'s `role` actor throw on its next request, as a bug
  /// would, and routes until that happened and the supervisor restarted
  /// the group (a request served again). False if either never happened.
  bool crash_group(const std::string& group, const std::string& role = "picker") {
    caf::anon_send(r->handle(), fault_atom::value, group, role);
    bool crashed = false;
    for (int k = 0; k < 200 && !crashed; ++k) {
      auto res = ask(group);
      crashed = !res.ok && res.error.kind == error_kind::internal_server;
    }
    for (int k = 0; crashed && k < 500; ++k) {
      if (ask(group).ok)
        return true;
      std::this_thread::sleep_for(milliseconds(2));
    }
    return false;
  }
};

bool all_connected(const std::vector<replica*>& fleet) {
  return eventually([&] {
    return std::all_of(fleet.begin(), fleet.end(), [](replica* r) { return r->connected(); });
  });
}

// How many of `n` requests to `group` deployment `id` served.
int served_by(replica& r, const std::string& group, const std::string& id, int n) {
  int hits = 0;
  for (int k = 0; k < n; ++k) {
    auto res = r.ask(group);
    if (res.ok && res.deployment_id == id)
      ++hits;
  }
  return hits;
}

// Group "g": "bad" answers 429 where `failing` (the same id everywhere),
// "good" replies.
std::vector<ojson> bad_and_good(bool failing) {
  return {deployment("g", "bad", failing ? ojson("litellm.RateLimitError") : ojson("from bad")),
          deployment("g", "good", "from good")};
}

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  auto at = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(at, v.size() - 1)];
}

} // namespace

TEST_CASE("a cooldown started by one router stops the others picking the deployment",
          "[redis][replicas]") {
  redis_server redis;
  // "bad" answers 429 in A only; in B and C it replies (the same id in all).
  ojson settings = {{"allowed_fails", 0}, {"cooldown_time", 30}};
  replica a(replica_config(redis.port(), bad_and_good(true), settings), 1);
  replica b(replica_config(redis.port(), bad_and_good(false), settings), 2);
  replica c(replica_config(redis.port(), bad_and_good(false), settings), 3);
  REQUIRE(all_connected({&a, &b, &c}));

  // Before: B and C pick "bad" (simple-shuffle, equal weights).
  CHECK(served_by(b, "g", "bad", 40) > 0);
  CHECK(served_by(c, "g", "bad", 40) > 0);

  REQUIRE(a.cool("g", "bad"));
  // B and C hear of it well within 1 s; after that wait, none of their
  // requests goes to "bad".
  std::this_thread::sleep_for(milliseconds(1000));
  CHECK(served_by(b, "g", "bad", 100) == 0);
  CHECK(served_by(c, "g", "bad", 100) == 0);
  CHECK(b.seen->cooldowns("bad") == 1);
  CHECK(c.seen->cooldowns("bad") == 1);
}

TEST_CASE("a group restarted by the supervisor keeps the fleet's cooldowns and its own",
          "[redis][replicas]") {
  redis_server redis;
  // "bad" answers 429 in A only; in B it replies.
  ojson settings = {{"allowed_fails", 0}, {"cooldown_time", 30}};
  replica a(replica_config(redis.port(), bad_and_good(true), settings), 1);
  replica b(replica_config(redis.port(), bad_and_good(false), settings), 2);
  REQUIRE(all_connected({&a, &b}));
  REQUIRE(a.cool("g", "bad"));
  REQUIRE(b.seen->wait_cooldowns("bad", 1, milliseconds(2000)));
  // The observer hears of it just before B's picker does.
  REQUIRE(eventually([&] { return served_by(b, "g", "bad", 20) == 0; }, milliseconds(2000)));

  // B's group crashes and is restarted: its new actors start from the
  // cooldown heard from A, not from an empty state.
  REQUIRE(b.crash_group("g"));
  CHECK(served_by(b, "g", "bad", 100) == 0);

  // A's own cooldown survives a restart of A's group too: no pick of
  // "bad" (which would fail there and start a second cooldown).
  REQUIRE(a.crash_group("g"));
  for (int k = 0; k < 100; ++k)
    a.ask("g");
  CHECK(a.seen->cooldowns("bad") == 1);
}

TEST_CASE("cooldown propagation between routers, measured", "[redis][replicas]") {
  redis_server redis;
  // Short cooldowns, so that one round follows the other.
  ojson settings = {{"allowed_fails", 0}, {"cooldown_time", 0.2}};
  replica a(replica_config(redis.port(), bad_and_good(true), settings), 1);
  replica b(replica_config(redis.port(), bad_and_good(false), settings), 2);
  replica c(replica_config(redis.port(), bad_and_good(false), settings), 3);
  REQUIRE(all_connected({&a, &b, &c}));

  std::vector<double> delays_ms;
  constexpr std::size_t rounds = 25;
  for (std::size_t n = 0; n < rounds; ++n) {
    REQUIRE(a.cool("g", "bad"));
    REQUIRE(b.seen->wait_cooldowns("bad", n + 1, milliseconds(1000)));
    REQUIRE(c.seen->wait_cooldowns("bad", n + 1, milliseconds(1000)));
    auto t0 = *a.seen->started("bad", n);
    for (auto* r : {&b, &c})
      delays_ms.push_back(
        std::chrono::duration<double, std::milli>(*r->seen->started("bad", n) - t0).count());
    std::this_thread::sleep_for(milliseconds(250)); // the cooldown ends everywhere
  }
  std::printf("cooldown propagation over %zu samples: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              delays_ms.size(), percentile(delays_ms, 0.5), percentile(delays_ms, 0.99),
              percentile(delays_ms, 1.0));
  std::fflush(stdout); // before the next test forks a redis-server
  CHECK(delays_ms.size() == 2 * rounds);
}

TEST_CASE("an rpm limit holds across three routers", "[redis][replicas]") {
  redis_server redis;
  REQUIRE(early_in_minute(45));
  std::vector<ojson> model_list = {deployment("r", "limited", "from limited", {{"rpm", 60}}),
                                   deployment("r", "roomy", "from roomy", {{"rpm", 100000}})};
  ojson settings = {{"routing_strategy", "usage-based-routing-v2"},
                    {"enable_pre_call_checks", true}};
  replica a(replica_config(redis.port(), model_list, settings), 1);
  replica b(replica_config(redis.port(), model_list, settings), 2);
  replica c(replica_config(redis.port(), model_list, settings), 3);
  std::vector<replica*> fleet = {&a, &b, &c};
  REQUIRE(all_connected(fleet));

  // 300 requests, round-robin over the routers, 10 every 100 ms: 100
  // requests a second for the fleet, about 3 s.
  std::map<std::string, int> served;
  int failed = 0;
  for (int k = 0; k < 300; ++k) {
    auto res = fleet[k % 3]->ask("r");
    if (res.ok)
      ++served[res.deployment_id];
    else
      ++failed;
    if (k % 10 == 9)
      std::this_thread::sleep_for(milliseconds(100));
  }
  // The slack: what the other routers can pick before a router sees it.
  // A pick reaches Redis within the 10 ms flush interval and the others'
  // next read within the 100 ms totals interval: call it two 100 ms
  // intervals of the fleet's rate, 100 requests/s * 0.2 s = 20.
  constexpr int slack = 20;
  std::printf("rpm 60 across three routers: limited served %d, roomy %d (slack %d)\n",
              served["limited"], served["roomy"], slack);
  std::fflush(stdout);
  CHECK(failed == 0);
  CHECK(served["limited"] + served["roomy"] == 300);
  CHECK(served["limited"] <= 60 + slack);
  // Each router alone would allow it 60; the fleet used most of its 60.
  CHECK(served["limited"] >= 40);
}

TEST_CASE("a longer cooldown from another router extends one, a shorter never shortens it",
          "[redis][replicas]") {
  redis_server redis;
  // "x" fails everywhere; its cooldown is 1 s in A, 4 s in B, 0.3 s in C.
  auto model_list = [&](double cooldown_s) {
    return std::vector<ojson>{
      deployment("d", "x", "litellm.RateLimitError", {{"cooldown_time", cooldown_s}}),
      deployment("d", "y", "from y")};
  };
  ojson settings = {{"allowed_fails", 0}};
  replica a(replica_config(redis.port(), model_list(1), settings), 1);
  replica b(replica_config(redis.port(), model_list(4), settings), 2);
  replica c(replica_config(redis.port(), model_list(0.3), settings), 3);
  REQUIRE(all_connected({&a, &b, &c}));

  // Redis stalls for a moment (shorter than the reply timeout), so that
  // each router cools "x" on its own before hearing of the others; then
  // all three cooldowns meet in Redis and in each router, in whatever order.
  redis.pause();
  REQUIRE(a.cool("d", "x"));
  REQUIRE(b.cool("d", "x"));
  REQUIRE(c.cool("d", "x"));
  const auto cooled = steady::now();
  redis.resume();

  // Past A's own 1 s (and C's 0.3 s): A still avoids "x", B's 4 s holds.
  std::this_thread::sleep_until(cooled + milliseconds(1500));
  CHECK(served_by(a, "d", "x", 50) == 0);
  CHECK(served_by(c, "d", "x", 50) == 0);
  // The stored deadline is B's, the latest, whatever the order of arrival.
  auto stored = redis.client().text({"GET", "switchyard:cooldown:x"});
  REQUIRE(stored != "(nil)");
  auto deadline = std::stoll(stored.substr(0, stored.find(' ')));
  auto now_ms = std::chrono::duration_cast<milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  CHECK(deadline - now_ms > 2000);
  CHECK(deadline - now_ms <= 2600);
}

TEST_CASE("allowed_fails counts the failures of the whole fleet", "[redis][replicas]") {
  redis_server redis;
  // "x" fails everywhere; the third failure within the minute cools it.
  REQUIRE(early_in_minute(45));
  std::vector<ojson> model_list = {deployment("solo", "x", "litellm.InternalServerError")};
  ojson settings = {{"allowed_fails", 2}, {"cooldown_time", 30}};
  replica a(replica_config(redis.port(), model_list, settings), 1);
  replica b(replica_config(redis.port(), model_list, settings), 2);
  REQUIRE(all_connected({&a, &b}));

  CHECK_FALSE(a.ask("solo").ok);
  CHECK_FALSE(a.ask("solo").ok);
  CHECK(a.seen->cooldowns("x") == 0);
  // B hears A's two failures (the totals are read every 100 ms) ...
  std::this_thread::sleep_for(milliseconds(500));
  // ... so that its own first failure is the fleet's third: it cools "x"
  // (alone it would allow two more), and A hears of that.
  CHECK_FALSE(b.ask("solo").ok);
  CHECK(b.seen->cooldowns("x") == 1);
  CHECK(a.seen->wait_cooldowns("x", 1, milliseconds(1000)));
}

TEST_CASE("redis killed under load: no request fails, sharing resumes after a restart",
          "[redis][replicas]") {
  redis_server redis;
  auto model_list = [&](bool failing) {
    auto l = bad_and_good(failing);
    l.push_back(deployment("ok", "ok-1", "fine"));
    l.push_back(deployment("ok", "ok-2", "fine"));
    return l;
  };
  ojson settings = {{"allowed_fails", 0}, {"cooldown_time", 30}};
  replica a(replica_config(redis.port(), model_list(true), settings), 1);
  replica b(replica_config(redis.port(), model_list(false), settings), 2);
  REQUIRE(all_connected({&a, &b}));

  std::atomic<bool> stop{false};
  std::atomic<int> sent{0}, failed{0};
  auto load = [&](replica& r) {
    while (!stop.load()) {
      if (!r.ask("ok").ok)
        ++failed;
      ++sent;
      std::this_thread::sleep_for(milliseconds(2));
    }
  };
  std::thread la([&] { load(a); });
  std::thread lb([&] { load(b); });
  struct joiner {
    std::atomic<bool>& stop;
    std::thread& x;
    std::thread& y;
    ~joiner() {
      stop = true;
      x.join();
      y.join();
    }
  } join_load{stop, la, lb};

  std::this_thread::sleep_for(milliseconds(300));
  redis.stop();
  CHECK(eventually([&] { return !a.connected() && !b.connected(); }));
  CHECK(a.r->shared_state_status().value == shared_state_status::state::down);
  const int sent_while_down_from = sent.load();
  std::this_thread::sleep_for(milliseconds(700));
  const int sent_while_down = sent.load() - sent_while_down_from;

  REQUIRE(redis.start()); // the same port
  REQUIRE(all_connected({&a, &b}));
  // Sharing works again: A's cooldown reaches B.
  REQUIRE(a.cool("g", "bad"));
  std::this_thread::sleep_for(milliseconds(1000));
  CHECK(served_by(b, "g", "bad", 60) == 0);
  CHECK(b.seen->cooldowns("bad") == 1);

  stop = true;
  CHECK(sent_while_down > 0);
  CHECK(failed.load() == 0);
  auto statuses = b.seen->statuses();
  CHECK(std::count(statuses.begin(), statuses.end(), shared_state_status::state::down) >= 1);
  CHECK(statuses.back() == shared_state_status::state::connected);
}

TEST_CASE("a wrong redis password: a clear log line, local-only serving", "[redis][replicas]") {
  redis_server redis("right-password");
  captured_log log;
  std::vector<ojson> model_list = {deployment("ok", "ok-1", "fine")};
  replica a(replica_config(redis.port(), model_list,
                           {{"redis_password", "wrong-password-123"}}),
            1);
  REQUIRE(eventually([&] {
    return a.r->shared_state_status().value == shared_state_status::state::down
           && !a.r->shared_state_status().reason.empty()
           && a.r->shared_state_status().reason != "not connected yet";
  }));
  for (int k = 0; k < 20; ++k)
    CHECK(a.ask("ok").ok);
  auto status = a.r->shared_state_status();
  INFO(status.reason);
  CHECK(status.reason.find("auth") != std::string::npos);
  CHECK(log.all().find("shared state (redis): down") != std::string::npos);
  CHECK(log.all().find("wrong-password-123") == std::string::npos);
  CHECK(status.reason.find("wrong-password-123") == std::string::npos);
}

TEST_CASE("an unreachable redis: a clear log line, local-only serving", "[redis][replicas]") {
  captured_log log;
  const int port = switchyard::test::free_loopback_port(); // nothing listens there
  std::vector<ojson> model_list = {deployment("ok", "ok-1", "fine")};
  replica a(replica_config(port, model_list), 1);
  REQUIRE(eventually([&] {
    return log.all().find("shared state (redis): down") != std::string::npos;
  }));
  for (int k = 0; k < 20; ++k)
    CHECK(a.ask("ok").ok);
  CHECK(a.r->shared_state_status().value == shared_state_status::state::down);
  INFO(log.all());
  CHECK(log.all().find("refused") != std::string::npos);
}

TEST_CASE("without redis settings the router shares nothing", "[redis][replicas]") {
  ojson doc = {{"model_list", {deployment("ok", "ok-1", "fine")}}};
  replica a(load_config(doc), 1);
  CHECK(a.ask("ok").ok);
  CHECK(a.r->shared_state_status().value == shared_state_status::state::none);
  CHECK(a.r->shared_state_stats().calls == 0);
}

TEST_CASE("every key the fleet writes has a TTL, and the keys do not grow with requests",
          "[redis][replicas]") {
  redis_server redis;
  // Both phases inside one minute.
  REQUIRE(early_in_minute(40));
  // "bad" answers 429 in A, and cools for 0.2 s each time: cooldown keys
  // are written again and again, counts of both deployments move.
  ojson settings = {{"allowed_fails", 0}, {"cooldown_time", 0.2}};
  replica a(replica_config(redis.port(), bad_and_good(true), settings), 1);
  replica b(replica_config(redis.port(), bad_and_good(false), settings), 2);
  REQUIRE(all_connected({&a, &b}));
  test::redis_client c(redis.port());

  // The keys under the default prefix other than cooldowns (which come and
  // go with their TTL), after every key was checked for one.
  auto lasting_keys = [&] {
    std::this_thread::sleep_for(milliseconds(300)); // batches flushed
    auto reply = c.command({"KEYS", "switchyard:*"});
    REQUIRE(reply->type == REDIS_REPLY_ARRAY);
    std::vector<std::string> lasting;
    for (std::size_t i = 0; i < reply->elements; ++i) {
      const std::string key(reply->element[i]->str, reply->element[i]->len);
      const auto ttl = c.integer({"PTTL", key});
      INFO(key << " PTTL " << ttl);
      CHECK(ttl != -1); // -1: no expiry; -2: expired since KEYS
      if (key.find(":counts:") != std::string::npos)
        CHECK(c.integer({"HLEN", key}) <= 4); // rpm, tpm, calls, fails
      if (key.find(":cooldown:") == std::string::npos)
        lasting.push_back(key);
    }
    std::sort(lasting.begin(), lasting.end());
    return lasting;
  };
  auto traffic = [&](int n) {
    for (int k = 0; k < n; ++k)
      (k % 2 ? a : b).ask("g");
  };
  traffic(100);
  const auto after_100 = lasting_keys();
  CHECK(a.seen->cooldowns("bad") > 0);
  // counts of both deployments and a batch counter per replica.
  CHECK(after_100.size() >= 4);
  traffic(1000);
  CHECK(lasting_keys() == after_100);
}
