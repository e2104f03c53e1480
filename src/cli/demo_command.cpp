#include "cli_common.hpp"

#include "switchyard/router.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <tuple>
#include <utility>

// `switchyard demo`: load on an embedded two-region configuration where one
// region fails part-way through, to show weighted failover (the failed call
// is retried on the other region inside the same request) and cross-group
// fallback (when the whole group is out) at a glance. Every figure printed
// comes from the route_result attempt traces.

namespace switchyard::cli {

namespace {

using clock_type = std::chrono::steady_clock;

// eastus2 serves its first 200 calls, then fails every call (its outage).
// The default cooldown rules take it out once more than half of its calls in
// the last minute failed; the cooldown is 20 ms rather than LiteLLM-like
// seconds because the whole run lasts about 0.1 s, and a short one lets it
// flap back in: some requests still pick it, fail, and fail over to
// northcentralus within the same request (num_retries 0 makes that the only
// way to survive). northcentralus fails 2% of its calls; when that happens
// with eastus2 already tried or cooling down, nothing is left in gpt-4o and
// the request falls back to gpt-4o-mini.
constexpr const char* demo_config_json = R"({
  "model_list": [
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/gpt-4o-eastus2", "weight": 50,
                        "mock_response": "Hello from eastus2", "mock_latency_ms": 2,
                        "mock_failure_rate": 1.0, "mock_failure": "InternalServerError",
                        "mock_failure_after_calls": 200},
     "model_info": {"id": "eastus2"}},
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/gpt-4o-northcentralus", "weight": 50,
                        "mock_response": "Hello from northcentralus", "mock_latency_ms": 3,
                        "mock_failure_rate": 0.02, "mock_failure": "ServiceUnavailableError"},
     "model_info": {"id": "northcentralus"}},
    {"model_name": "gpt-4o-mini",
     "litellm_params": {"model": "azure/gpt-4o-mini-westus3",
                        "mock_response": "Hello from gpt-4o-mini", "mock_latency_ms": 2},
     "model_info": {"id": "westus3-mini"}}
  ],
  "router_settings": {"routing_strategy": "simple-shuffle",
                      "enable_weighted_failover": true,
                      "num_retries": 0, "cooldown_time": 0.02,
                      "fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}]}
})";

constexpr const char* demo_group = "gpt-4o";

// `--scenario outage`: Switchyard's resilience rules (README "Resilience
// beyond LiteLLM") on one workload: of three deployments `down` is in
// full outage and `slow` answers in 20 ms; `slow` and `fast` also hit rate
// limits (1% 429s, which cool a deployment at once), so cooldowns can leave
// the group empty. Each rule is run off and then on.
constexpr const char* outage_config_json = R"({
  "model_list": [
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/down", "mock_response": "x", "mock_latency_ms": 2,
                        "mock_failure_rate": 1.0, "mock_failure": "InternalServerError"},
     "model_info": {"id": "down"}},
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/slow", "mock_response": "x", "mock_latency_ms": 20,
                        "mock_failure_rate": 0.01, "mock_failure": "RateLimitError"},
     "model_info": {"id": "slow"}},
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/fast", "mock_response": "x", "mock_latency_ms": 2,
                        "mock_failure_rate": 0.01, "mock_failure": "RateLimitError"},
     "model_info": {"id": "fast"}}
  ],
  "router_settings": {"num_retries": 2, "cooldown_time": 0.01}
})";

struct demo_options {
  std::size_t requests = 4000;
  std::size_t concurrency = 256;
  std::uint64_t seed = 0;
  std::string scenario; ///< empty: the failover demo
};

demo_options parse_demo_options(const args& a) {
  const flags f(a, {"--requests", "--concurrency", "--seed", "--scenario"});
  demo_options o;
  o.scenario = f.get("--scenario").value_or("");
  if (!o.scenario.empty() && o.scenario != "outage")
    throw usage_error("--scenario: unknown scenario '" + o.scenario + "'; expected: outage");
  o.requests = f.count("--requests", o.requests);
  o.concurrency = f.count("--concurrency", o.concurrency);
  // Chosen here rather than by the router so the report can print it and a
  // run can be repeated.
  o.seed = f.seed("--seed").value_or(std::random_device{}());
  return o;
}

/// Counts per deployment, from the attempts that named it.
struct deployment_tally {
  std::size_t served = 0;
  std::size_t failed = 0;
};

/// What a request did right after a failed call, read off its trace.
enum class next_step : std::uint8_t {
  failover, ///< another deployment of the same group (weighted failover)
  fallback, ///< a deployment of another group
  retry,    ///< the same deployment again
  caller,   ///< nothing: the error went back to the caller
};

const char* name_of(next_step s) {
  switch (s) {
  case next_step::failover: return "failover";
  case next_step::fallback: return "fallback";
  case next_step::retry: return "retry";
  case next_step::caller: return "error";
  }
  return "";
}

/// Failed calls of one deployment, by where the request went next.
struct failed_call_route {
  std::string from;
  next_step step;
  std::string to; ///< deployment id (and group, for a fallback); empty for `caller`
  bool operator<(const failed_call_route& o) const {
    return std::tie(from, step, to) < std::tie(o.from, o.step, o.to);
  }
};

failed_call_route route_after(const attempt& failed, const attempt* next) {
  if (!next)
    return {failed.deployment_id, next_step::caller, {}};
  if (next->model_group != failed.model_group)
    return {failed.deployment_id, next_step::fallback,
            next->deployment_id + " (" + next->model_group + ")"};
  if (next->deployment_id != failed.deployment_id)
    return {failed.deployment_id, next_step::failover, next->deployment_id};
  return {failed.deployment_id, next_step::retry, next->deployment_id};
}

/// What the traces say, aggregated. Callbacks record into it from router
/// worker threads (under the mutex); the main thread reads it once every
/// request has answered.
class demo_stats {
public:
  void record(const route_result& r, double latency_ms) {
    std::lock_guard<std::mutex> lock(mutex_);
    latencies_ms_.push_back(latency_ms);
    bool failed_over = false;
    bool fell_back = false;
    for (std::size_t i = 0; i < r.attempts.size(); ++i) {
      const attempt& a = r.attempts[i];
      auto& t = deployments_[a.deployment_id];
      (a.outcome ? t.failed : t.served) += 1;
      if (a.outcome) {
        const auto route = route_after(a, i + 1 < r.attempts.size() ? &r.attempts[i + 1] : nullptr);
        failed_over |= route.step == next_step::failover;
        ++routes_[route];
      }
      fell_back |= a.model_group != demo_group;
    }
    extra_calls_ += r.attempts.size() > 1 ? r.attempts.size() - 1 : 0;
    failover_requests_ += failed_over ? 1 : 0;
    fallback_requests_ += fell_back ? 1 : 0;
    if (!r.ok)
      ++errors_[std::string(switchyard::name_of(r.error.kind))];
  }

  const std::map<std::string, deployment_tally>& deployments() const { return deployments_; }
  const std::map<failed_call_route, std::size_t>& routes() const { return routes_; }
  /// Calls after each request's first (retries, failover, fallbacks).
  std::size_t extra_calls() const { return extra_calls_; }
  /// Requests with at least one same-group hop after a failed call.
  std::size_t failover_requests() const { return failover_requests_; }
  /// Requests with at least one attempt outside the group asked for.
  std::size_t fallback_requests() const { return fallback_requests_; }
  const std::map<std::string, std::size_t>& errors() const { return errors_; }
  std::size_t error_requests() const {
    std::size_t n = 0;
    for (const auto& kv : errors_)
      n += kv.second;
    return n;
  }
  /// Nearest-rank percentile of end-to-end latency; q in (0, 1].
  double latency_percentile(double q) {
    if (latencies_ms_.empty())
      return 0;
    std::sort(latencies_ms_.begin(), latencies_ms_.end());
    const auto rank = static_cast<std::size_t>(std::ceil(q * latencies_ms_.size()));
    return latencies_ms_[std::max<std::size_t>(rank, 1) - 1];
  }

private:
  std::mutex mutex_;
  std::vector<double> latencies_ms_;
  std::map<std::string, deployment_tally> deployments_;
  std::map<failed_call_route, std::size_t> routes_;
  std::size_t extra_calls_ = 0;
  std::size_t failover_requests_ = 0;
  std::size_t fallback_requests_ = 0;
  std::map<std::string, std::size_t> errors_;
};

/// At most `limit` requests in flight. enter() on the main thread, leave()
/// from router callbacks.
class in_flight_gate {
public:
  explicit in_flight_gate(std::size_t limit) : limit_(limit) {}

  void enter() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return in_flight_ < limit_; });
    ++in_flight_;
  }
  void leave() {
    std::lock_guard<std::mutex> lock(mutex_);
    --in_flight_;
    changed_.notify_all();
  }
  void wait_idle() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return in_flight_ == 0; });
  }

private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t in_flight_ = 0;
  const std::size_t limit_;
};

chat_request demo_request() {
  chat_request req;
  req.model = demo_group;
  req.messages = nlohmann::json::array(
    {{{"role", "user"}, {"content", "Say hello from your region."}}});
  return req;
}

/// Sends every request and waits for all answers; returns the wall time.
double run_load(router& r, const demo_options& o, demo_stats& stats) {
  in_flight_gate gate(o.concurrency);
  const auto started = clock_type::now();
  for (std::size_t i = 0; i < o.requests; ++i) {
    gate.enter();
    const auto sent = clock_type::now();
    r.async_complete(demo_request(), [&gate, &stats, sent](route_result res) {
      const std::chrono::duration<double, std::milli> took = clock_type::now() - sent;
      stats.record(res, took.count());
      gate.leave();
    });
  }
  gate.wait_idle();
  return std::chrono::duration<double>(clock_type::now() - started).count();
}

void print_deployments(const router_config& c, const demo_stats& stats, std::ostream& out) {
  char line[128];
  std::snprintf(line, sizeof line, "  %-16s %-12s %8s %8s %8s\n", "deployment", "group",
                "calls", "served", "failed");
  out << line;
  for (const auto& d : c.deployments) {
    auto i = stats.deployments().find(d.id);
    const deployment_tally t = i == stats.deployments().end() ? deployment_tally{} : i->second;
    std::snprintf(line, sizeof line, "  %-16s %-12s %8zu %8zu %8zu\n", d.id.c_str(),
                  d.model_name.c_str(), t.served + t.failed, t.served, t.failed);
    out << line;
  }
}

std::string error_breakdown(const demo_stats& stats) {
  std::string out;
  for (const auto& [kind, n] : stats.errors())
    out += (out.empty() ? " (" : ", ") + kind + " " + std::to_string(n);
  return out.empty() ? out : out + ")";
}

void print_failed_calls(const demo_stats& stats, std::ostream& out) {
  char line[128];
  for (const auto& [route, n] : stats.routes()) {
    std::snprintf(line, sizeof line, "  %-16s -> %-9s %-28s %6zu\n", route.from.c_str(),
                  name_of(route.step), route.to.c_str(), n);
    out << line;
  }
}

void print_requests(const demo_options& o, demo_stats& stats, double wall_s,
                    std::ostream& out) {
  const std::size_t errors = stats.error_requests();
  out << "  requests     " << o.requests << "  (concurrency " << o.concurrency
      << ", seed " << o.seed << ")\n"
      << "  succeeded    " << o.requests - errors << '\n'
      << "  failovers    " << stats.failover_requests()
      << "  (a failed call moved to another deployment of the same group)\n"
      << "  fallbacks    " << stats.fallback_requests()
      << "  (served or tried outside " << demo_group << ")\n"
      << "  errors       " << errors << error_breakdown(stats) << '\n'
      << "  latency      p50 " << format_number("%.2f", stats.latency_percentile(0.50))
      << " ms, p99 " << format_number("%.2f", stats.latency_percentile(0.99)) << " ms\n"
      << "  throughput   " << format_number("%.0f", o.requests / std::max(wall_s, 1e-9))
      << " req/s  (" << format_number("%.3f", wall_s) << " s wall)\n";
}

std::string describe(const failed_call_route& route) {
  switch (route.step) {
  case next_step::failover: return "failed over to " + route.to + " in the same request";
  case next_step::fallback: return "fell back to " + route.to;
  case next_step::retry: return "were retried on " + route.to;
  case next_step::caller: return "went back to the caller as errors";
  }
  return "";
}

// One line that makes weighted failover visible: the deployment that failed
// most, and where each of its failed calls went.
void print_summary_line(const demo_options& o, const demo_stats& stats, std::ostream& out) {
  const auto& deps = stats.deployments();
  auto worst = std::max_element(deps.begin(), deps.end(), [](const auto& x, const auto& y) {
    return x.second.failed < y.second.failed;
  });
  if (worst != deps.end() && worst->second.failed > 0) {
    out << worst->first << " failed " << plural(worst->second.failed, "call") << ":";
    const char* sep = " ";
    for (const auto& [route, n] : stats.routes())
      if (route.from == worst->first) {
        out << sep << n << ' ' << describe(route);
        sep = ", ";
      }
    out << "; ";
  }
  out << stats.error_requests() << " of " << o.requests
      << " requests reached the caller as errors.\n";
}

// What the embedded config sets up, read from the loaded config itself.
std::string failure_behaviour(const deployment_config& d) {
  if (d.mock_failure_rate <= 0)
    return "healthy";
  std::string text = "fails " + format_number("%g", d.mock_failure_rate * 100) + "% of calls ("
                     + std::string(switchyard::name_of(d.mock_failure)) + ")";
  if (d.mock_failure_after_calls > 0)
    text += " after its first " + std::to_string(d.mock_failure_after_calls) + " calls";
  return text;
}

void print_scenario(const router_config& c, std::ostream& out) {
  char line[160];
  for (const auto& d : c.deployments) {
    std::snprintf(line, sizeof line, "  %-16s %-12s weight %-4s %s\n", d.id.c_str(),
                  d.model_name.c_str(), d.weight ? format_number("%g", *d.weight).c_str() : "-",
                  failure_behaviour(d).c_str());
    out << line;
  }
  const router_settings& s = c.settings;
  out << "  weighted failover " << (s.enable_weighted_failover ? "on" : "off")
      << ", num_retries " << s.num_retries << ", cooldown " << format_number("%g", s.cooldown_time_s)
      << " s, fallbacks";
  for (const auto& rule : s.fallbacks)
    for (const auto& to : rule.to)
      out << ' ' << rule.from << " -> " << to;
  out << '\n';
}

void print_report(const router_config& c, const demo_options& o, demo_stats& stats,
                  double wall_s, std::ostream& out) {
  out << "switchyard demo: " << o.requests << " requests for " << demo_group << "\n\n"
      << "scenario (embedded config)\n";
  print_scenario(c, out);
  out << "\nper deployment (from attempt traces)\n";
  print_deployments(c, stats, out);
  out << "\nfailed calls, by where the request went next\n";
  print_failed_calls(stats, out);
  out << "\nrequests\n";
  print_requests(o, stats, wall_s, out);
  out << '\n';
  print_summary_line(o, stats, out);
}

} // namespace

namespace {

struct outage_run {
  std::size_t extra_calls = 0; ///< attempts beyond one per request
  std::size_t errors = 0;
  double p99_ms = 0;
};

outage_run run_outage(const demo_options& o, const char* settings_json) {
  auto doc = nlohmann::ordered_json::parse(outage_config_json);
  const auto settings = nlohmann::ordered_json::parse(settings_json);
  for (const auto& item : settings.items())
    doc["router_settings"][item.key()] = item.value();
  demo_stats stats;
  router r(load_config(doc), router_options{o.seed, 0});
  run_load(r, o, stats);
  outage_run out;
  out.extra_calls = stats.extra_calls();
  out.errors = stats.error_requests();
  out.p99_ms = stats.latency_percentile(0.99);
  return out;
}

int outage_demo(const demo_options& o) {
  std::cout << "switchyard demo --scenario outage: " << o.requests << " requests for "
            << demo_group << ", concurrency " << o.concurrency << ", seed " << o.seed << "\n"
            << "  down: every call fails (InternalServerError); slow: 20 ms; slow and fast:\n"
            << "  1% RateLimitError (cools at once); num_retries 2, cooldown 0.01 s\n\n";
  const auto base = run_outage(o, "{}");
  const auto budget = run_outage(
    o, R"({"retry_budget": {"ratio": 0.1, "min_per_second": 10, "window_seconds": 1}})");
  const auto panic = run_outage(o, R"({"panic_threshold": 50})");
  const auto hedged = run_outage(o, R"({"hedge_after_ms": 8})");
  char line[200];
  std::snprintf(line, sizeof line, "  %-44s %10s %10s\n", "", "without", "with");
  std::cout << line;
  std::snprintf(line, sizeof line, "  %-44s %10zu %10zu\n",
                "extra calls (retry_budget 0.1, 10/s, 1 s)", base.extra_calls,
                budget.extra_calls);
  std::cout << line;
  std::snprintf(line, sizeof line, "  %-44s %10zu %10zu\n", "errors (panic_threshold 50)",
                base.errors, panic.errors);
  std::cout << line;
  std::snprintf(line, sizeof line, "  %-44s %10.1f %10.1f\n", "p99 latency ms (hedge_after_ms 8)",
                base.p99_ms, hedged.p99_ms);
  std::cout << line << "\n  (with the budget: " << budget.errors
            << " errors; with hedging: " << hedged.extra_calls << " extra calls, "
            << hedged.errors << " errors)\n";
  return exit_ok;
}

} // namespace

int demo_command(const args& a) {
  const demo_options o = parse_demo_options(a);
  if (o.scenario == "outage")
    return outage_demo(o);
  demo_stats stats; // outlives the router, whose callbacks write into it
  router r(load_config_text(demo_config_json), router_options{o.seed, 0});
  const double wall_s = run_load(r, o, stats);
  print_report(r.config(), o, stats, wall_s, std::cout);
  return exit_ok;
}

} // namespace switchyard::cli
