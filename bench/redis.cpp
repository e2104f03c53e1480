#include "redis.hpp"

#include "load.hpp"
#include "route.hpp"

#include "redis/redis_server.hpp" // tests/redis: redis-server on a free port

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/router.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

namespace switchyard::bench {

namespace {

using nlohmann::json;
// Configs keep their key order (load_config's ids follow the file's order).
using ojson = nlohmann::ordered_json;
using std::chrono::milliseconds;
using steady = std::chrono::steady_clock;

constexpr const char* redis_server_path = "/usr/bin/redis-server";

void progress(const std::string& what) {
  std::cerr << "[switchyard-bench] " << what << std::endl;
}

// steady_clock is CLOCK_MONOTONIC: one clock for every process of the
// machine, so that the two processes' times can be subtracted.
std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           steady::now().time_since_epoch())
    .count();
}

ojson deployment(const std::string& group, const std::string& id, const ojson& mock,
                 ojson extra = ojson::object()) {
  ojson params = {{"model", "openai/" + id}, {"mock_response", mock}};
  for (auto& [k, v] : extra.items())
    params[k] = v;
  return {{"model_name", group}, {"litellm_params", params}, {"model_info", {{"id", id}}}};
}

router_config config_with(ojson model_list, ojson settings, int redis_port) {
  if (redis_port > 0) {
    settings["redis_host"] = "127.0.0.1";
    settings["redis_port"] = redis_port;
  }
  return load_config(
    ojson{{"model_list", std::move(model_list)}, {"router_settings", std::move(settings)}});
}

chat_request hello(const std::string& group) {
  chat_request q;
  q.model = group;
  q.messages = json::array({{{"role", "user"}, {"content", "hello"}}});
  return q;
}

bool wait_connected(router& r, milliseconds limit = milliseconds(10'000)) {
  const auto end = steady::now() + limit;
  while (r.shared_state_status().value != shared_state_status::state::connected) {
    if (steady::now() > end)
      return false;
    std::this_thread::sleep_for(milliseconds(10));
  }
  return true;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  const auto at = static_cast<std::size_t>(std::ceil(p * static_cast<double>(v.size()))) ;
  return v[std::min(v.size() - 1, at == 0 ? 0 : at - 1)];
}

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

// --- redis_propagation -------------------------------------------------------

// The times cooldowns of one deployment started in a router (its own and
// those heard from the fleet). Called on actor threads: a mutex and a
// notify, nothing more.
class cooldown_clock final : public router_observer {
public:
  explicit cooldown_clock(std::string id) : id_(std::move(id)) {}
  void on_cooldown(const cooldown_event& e) override {
    if (!e.started || e.deployment_id != id_)
      return;
    const auto t = steady_ns();
    std::lock_guard lock(mu_);
    started_.push_back(t);
    cv_.notify_all();
  }
  /// The time of the n-th (0-based) cooldown, waiting at most `limit`.
  std::optional<std::int64_t> wait(std::size_t n, milliseconds limit) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, limit, [&] { return started_.size() > n; }))
      return std::nullopt;
    return started_[n];
  }
  std::size_t count() {
    std::lock_guard lock(mu_);
    return started_.size();
  }

private:
  const std::string id_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::int64_t> started_;
};

// Group "g": "bad" (weight 100, so that a pick that avoids it shows the
// cooldown) and "good" (weight 1). "bad" answers 429 in the replica that
// cools it; in the other it replies.
ojson propagation_models(bool failing) {
  return ojson::array(
    {deployment("g", "bad", failing ? ojson("litellm.RateLimitError") : ojson("from bad"),
                {{"weight", 100}}),
     deployment("g", "good", "from good", {{"weight", 1}})});
}
const ojson propagation_settings = {{"allowed_fails", 0}, {"cooldown_time", 0.2},
                                   {"num_retries", 0}};

// Reads lines from a child's stdout, each within a time limit.
class line_reader {
public:
  explicit line_reader(int fd) : fd_(fd) {}
  std::optional<std::string> next(milliseconds limit) {
    const auto end = steady::now() + limit;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      const auto left = std::chrono::duration_cast<milliseconds>(end - steady::now()).count();
      if (left <= 0)
        return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0)
        return std::nullopt;
      char chunk[512];
      const auto n = ::read(fd_, chunk, sizeof chunk);
      if (n <= 0)
        return std::nullopt;
      buf_.append(chunk, static_cast<std::size_t>(n));
    }
  }

private:
  int fd_;
  std::string buf_;
};

// This program again as B (`--redis-child PORT`); its stdin is a pipe
// whose closing ends it. The destructor closes it and reaps the child.
class child_replica {
public:
  explicit child_replica(int redis_port) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0)
      throw std::runtime_error("redis_propagation: pipe failed");
    const std::string port = std::to_string(redis_port);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(in[0], 0);
      ::dup2(out[1], 1);
      const char* argv[] = {"/proc/self/exe", "--redis-child", port.c_str(), nullptr};
      ::execv(argv[0], const_cast<char* const*>(argv));
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    if (pid_ < 0)
      throw std::runtime_error("redis_propagation: fork failed");
  }
  ~child_replica() {
    ::close(to_child_);
    ::close(from_child_);
    if (pid_ > 0) {
      for (int k = 0; k < 200 && ::waitpid(pid_, nullptr, WNOHANG) != pid_; ++k)
        std::this_thread::sleep_for(milliseconds(20));
      if (::kill(pid_, 0) == 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
      }
    }
  }
  child_replica(const child_replica&) = delete;
  child_replica& operator=(const child_replica&) = delete;
  int stdout_fd() const { return from_child_; }

private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
};

json run_propagation(int redis_port, bool quick, std::uint64_t seed) {
  const std::size_t rounds = quick ? 30 : 120;
  progress("redis_propagation, " + std::to_string(rounds)
           + " cooldowns from this process to a child process");
  child_replica b(redis_port);
  line_reader from_b(b.stdout_fd());
  auto ready = from_b.next(milliseconds(15'000));
  if (!ready || *ready != "ready")
    throw std::runtime_error("redis_propagation: the child replica did not connect");

  auto seen = std::make_shared<cooldown_clock>("bad");
  router_options o;
  o.seed = seed;
  o.threads = 1;
  o.observer = seen;
  router a(config_with(propagation_models(true), propagation_settings, redis_port), o);
  if (!wait_connected(a))
    throw std::runtime_error("redis_propagation: replica A did not connect");

  std::vector<double> heard_ms, excluded_ms;
  std::size_t violations = 0, lost = 0;
  for (std::size_t n = 0; n < rounds; ++n) {
    while (seen->count() == n)
      a.complete(hello("g"));
    const auto t0 = *seen->wait(n, milliseconds(0));
    auto line = from_b.next(milliseconds(2000));
    // "heard <heard_ns> <probe_ns> <deployment of the probe>"
    std::istringstream in(line.value_or(""));
    std::string word, picked;
    std::int64_t heard = 0, probed = 0;
    if (!(in >> word >> heard >> probed >> picked) || word != "heard") {
      ++lost;
      continue;
    }
    heard_ms.push_back(static_cast<double>(heard - t0) / 1e6);
    excluded_ms.push_back(static_cast<double>(probed - t0) / 1e6);
    violations += picked == "bad" ? 1 : 0;
    std::this_thread::sleep_for(milliseconds(250)); // the cooldown ends in both
  }
  return json{{"name", "redis_propagation"},
              {"processes", 2},
              {"events", heard_ms.size()},
              {"lost", lost},
              {"heard_p50_ms", round_to(percentile(heard_ms, 0.5), 3)},
              {"heard_p99_ms", round_to(percentile(heard_ms, 0.99), 3)},
              {"excluded_p50_ms", round_to(percentile(excluded_ms, 0.5), 3)},
              {"excluded_p99_ms", round_to(percentile(excluded_ms, 0.99), 3)},
              {"excluded_max_ms", round_to(percentile(excluded_ms, 1.0), 3)},
              {"probe_picked_cooled", violations}};
}

// --- redis_cost ----------------------------------------------------------------

// 8 mock deployments in group "g0" (route_bench's requests), `strategy`.
router_config cost_config(const std::string& strategy, int redis_port) {
  ojson list = ojson::array();
  for (int d = 0; d < 8; ++d)
    list.push_back(deployment("g0", "g0-d" + std::to_string(d), "ok", {{"rpm", 1'000'000'000}}));
  return config_with(list, {{"routing_strategy", strategy}}, redis_port);
}

void run_cost(int redis_port, bool quick, std::uint64_t seed, json& results) {
  const double seconds = quick ? 0.6 : 2.5;
  const int trials = 5;
  const std::size_t in_flight = 256;
  for (const std::string strategy : {"simple-shuffle", "usage-based-routing-v2"}) {
    router_options o;
    o.seed = seed;
    o.threads = 1;
    route_bench off(cost_config(strategy, 0), o, 1);
    route_bench on(cost_config(strategy, redis_port), o, 1);
    if (!wait_connected(on.get()))
      throw std::runtime_error("redis_cost: the router did not connect to redis");
    progress("redis_cost, " + strategy + ", 1 worker, " + std::to_string(in_flight)
             + " in flight, Redis off and on by turns");
    auto figs = measure_interleaved(in_flight, seconds, trials, {off.issue(), on.issue()});
    const auto stats = on.get().shared_state_stats();
    results.push_back(json{{"name", "redis_cost"},
                           {"strategy", strategy},
                           {"workers", 1},
                           {"in_flight", in_flight},
                           {"off_req_per_s", std::round(figs[0].req_per_s)},
                           {"on_req_per_s", std::round(figs[1].req_per_s)},
                           {"ratio", round_to(figs[1].req_per_s / figs[0].req_per_s, 3)},
                           {"off_cpu_us_per_request", round_to(figs[0].cpu_us_per_request, 2)},
                           {"on_cpu_us_per_request", round_to(figs[1].cpu_us_per_request, 2)},
                           {"off_p99_us", round_to(figs[0].latency.p99_us, 1)},
                           {"on_p99_us", round_to(figs[1].latency.p99_us, 1)},
                           {"failed", figs[0].failed + figs[1].failed},
                           {"shared_calls", stats.calls},
                           {"batches_acked", stats.batches_acked},
                           {"background_cpu", round_to(figs[1].background_cpu, 3)}});
  }
}

// --- redis_fleet -----------------------------------------------------------------

void run_fleet(int redis_port, bool quick, std::uint64_t seed, json& results) {
  constexpr int routers = 10;
  const int limit = 500;                    // the rpm of "limited"
  const double rate = 200;                  // fleet requests/s
  const int requests = quick ? 1400 : 2000; // 7-10 s: the limit is reached at ~5 s
  // Counts are per minute (the wall clock for the fleet, the steady clock
  // for each router's own): the run must start and end inside both.
  const auto in_minute = [](auto since_epoch) {
    return std::chrono::duration_cast<std::chrono::seconds>(since_epoch).count() % 60;
  };
  const auto fits = [&] {
    const auto w = in_minute(std::chrono::system_clock::now().time_since_epoch());
    const auto s = in_minute(steady::now().time_since_epoch());
    return w < 45 && s < 45;
  };
  if (!fits())
    progress("redis_fleet: waiting for the start of a minute (counts are per minute)");
  while (!fits())
    std::this_thread::sleep_for(milliseconds(100));

  const ojson list = ojson::array(
    {deployment("r", "limited", "from limited", {{"rpm", limit}}),
     deployment("r", "roomy", "from roomy", {{"rpm", 1'000'000}})});
  const ojson settings = {{"routing_strategy", "usage-based-routing-v2"},
                         {"enable_pre_call_checks", true},
                         {"num_retries", 0}};
  std::vector<std::unique_ptr<router>> fleet;
  for (int k = 0; k < routers; ++k) {
    router_options o;
    o.seed = seed + static_cast<std::uint64_t>(k);
    o.threads = 1;
    fleet.push_back(std::make_unique<router>(config_with(list, settings, redis_port), o));
  }
  for (auto& r : fleet)
    if (!wait_connected(*r))
      throw std::runtime_error("redis_fleet: a router did not connect to redis");
  progress("redis_fleet, " + std::to_string(routers) + " routers, " + std::to_string(requests)
           + " requests at " + std::to_string(static_cast<int>(rate))
           + " req/s, limited deployment rpm " + std::to_string(limit));

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, int> served;
  int answered = 0, failed = 0;
  const auto t0 = steady::now();
  for (int k = 0; k < requests; ++k) {
    std::this_thread::sleep_until(t0 + std::chrono::duration_cast<steady::duration>(
                                         std::chrono::duration<double>(k / rate)));
    fleet[static_cast<std::size_t>(k % routers)]->async_complete(
      hello("r"), [&](route_result res) {
        std::lock_guard lock(mu);
        if (res.ok)
          ++served[res.deployment_id];
        else
          ++failed;
        ++answered;
        cv.notify_all();
      });
  }
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == requests; });
  }
  std::lock_guard lock(mu);
  const int limited = served["limited"];
  results.push_back(json{{"name", "redis_fleet"},
                         {"routers", routers},
                         {"requests", requests},
                         {"req_per_s", rate},
                         {"rpm_limit", limit},
                         {"served_limited", limited},
                         {"served_roomy", served["roomy"]},
                         {"failed", failed},
                         {"unanswered", requests - answered},
                         {"over_limit_pct", round_to(100.0 * (limited - limit) / limit, 2)}});
}

} // namespace

int redis_propagation_child(int redis_port) {
  auto seen = std::make_shared<cooldown_clock>("bad");
  router_options o;
  o.seed = 7;
  o.threads = 1;
  o.observer = seen;
  router b(config_with(propagation_models(false), propagation_settings, redis_port), o);
  if (!wait_connected(b))
    return 1;
  std::printf("ready\n");
  std::fflush(stdout);
  // Ends with the parent: stdin closes.
  std::atomic<bool> stop{false};
  std::thread watch([&] {
    char c;
    while (::read(0, &c, 1) > 0) {
    }
    stop = true;
  });
  for (std::size_t n = 0; !stop; ++n) {
    std::optional<std::int64_t> heard;
    while (!stop && !(heard = seen->wait(n, milliseconds(100)))) {
    }
    if (!heard)
      break;
    // One pick right after hearing: its answer's time bounds when the
    // picker excluded "bad" (the cooldown actor sends the picker its
    // snapshot in the step that reported the cooldown).
    auto r = b.complete(hello("g"));
    const auto probed = steady_ns();
    std::printf("heard %lld %lld %s\n", static_cast<long long>(*heard),
                static_cast<long long>(probed), r.ok ? r.deployment_id.c_str() : "error");
    std::fflush(stdout);
  }
  watch.join();
  return 0;
}

void run_redis(const std::set<std::string>& which, bool quick, std::uint64_t seed,
               json& results) {
  if (::access(redis_server_path, X_OK) != 0) {
    for (const auto& name : which) {
      progress(name + " skipped: " + redis_server_path
               + " not found (Debian package redis-server)");
      results.push_back(json{{"name", name}, {"skipped", "redis-server not installed"}});
    }
    return;
  }
  for (const auto& name : which) {
    try {
      switchyard::test::redis_server redis; // its own, on a free loopback port
      if (name == "redis_propagation")
        results.push_back(run_propagation(redis.port(), quick, seed));
      else if (name == "redis_cost")
        run_cost(redis.port(), quick, seed, results);
      else if (name == "redis_fleet")
        run_fleet(redis.port(), quick, seed, results);
    } catch (const std::exception& e) {
      progress(name + " skipped: " + e.what());
      results.push_back(json{{"name", name}, {"skipped", e.what()}});
    }
  }
}

void print_redis_results(const json& results) {
  const auto verdict = [](bool met, const std::string& what) {
    std::printf("  [%s] %s\n", met ? " met  " : "MISSED", what.c_str());
  };
  for (const auto& r : results) {
    const auto name = r["name"].get<std::string>();
    if (name.rfind("redis_", 0) != 0)
      continue;
    if (r.contains("skipped")) {
      std::printf("%-17s skipped: %s\n", name.c_str(), r["skipped"].get<std::string>().c_str());
      continue;
    }
    if (name == "redis_propagation")
      std::printf("redis_propagation %d events between 2 processes: B heard it p50 %.3f / p99 "
                  "%.3f ms; B's picker excluded it p50 %.3f / p99 %.3f ms (max %.3f); "
                  "%d probes picked it, %d events lost\n",
                  r["events"].get<int>(), r["heard_p50_ms"].get<double>(),
                  r["heard_p99_ms"].get<double>(), r["excluded_p50_ms"].get<double>(),
                  r["excluded_p99_ms"].get<double>(), r["excluded_max_ms"].get<double>(),
                  r["probe_picked_cooled"].get<int>(), r["lost"].get<int>());
    if (name == "redis_propagation")
      verdict(r["excluded_p99_ms"].get<double>() <= 100 && r["events"].get<int>() >= 100,
              "redis_propagation p99 <= 100 ms over >= 100 events");
    else if (name == "redis_cost")
      std::printf("redis_cost        %-22s 1 worker: Redis off %.0f req/s (%.2f us CPU/req), "
                  "on %.0f req/s (%.2f us CPU/req): %.3f x%s\n",
                  r["strategy"].get<std::string>().c_str(), r["off_req_per_s"].get<double>(),
                  r["off_cpu_us_per_request"].get<double>(), r["on_req_per_s"].get<double>(),
                  r["on_cpu_us_per_request"].get<double>(), r["ratio"].get<double>(),
                  r["failed"].get<int>() > 0 ? "  FAILED requests" : "");
    if (name == "redis_cost")
      verdict(r["ratio"].get<double>() >= 0.9, "redis_cost on >= 0.9 x off");
    else if (name == "redis_fleet")
      std::printf("redis_fleet       %d routers, %d requests at %.0f req/s: limited (rpm %d) "
                  "served %d (%+.2f %%), roomy %d, failed %d\n",
                  r["routers"].get<int>(), r["requests"].get<int>(),
                  r["req_per_s"].get<double>(), r["rpm_limit"].get<int>(),
                  r["served_limited"].get<int>(), r["over_limit_pct"].get<double>(),
                  r["served_roomy"].get<int>(), r["failed"].get<int>());
    if (name == "redis_fleet")
      verdict(std::abs(r["over_limit_pct"].get<double>()) <= 5,
              "redis_fleet served within 5 % of the rpm limit");
  }
}

} // namespace switchyard::bench
