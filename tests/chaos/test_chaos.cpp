// Chaos: a large number of requests (100,000 by default, see chaos_main.cpp)
// at up to 1,000 in flight against mock deployments that fail at random with
// every error kind, at random latencies, some never answering within their
// timeout, while cooldowns start and expire, with weighted failover and
// cross-group fallbacks on. What must hold for every single request:
//
// - exactly one answer (none missing, none twice), and the router's
//   destructor returns;
// - no deployment is attempted twice in one request (num_retries is 0, so
//   every attempt is a hop, and the fallback lists form a tree, so no group
//   is entered twice: a repeated id would be a failover re-try);
// - hops never exceed max_fallbacks (attempts <= 1 + max_fallbacks);
// - an exhausted request carries the original error: the first attempt's
//   outcome (or NoDeploymentsAvailable when the first group had nobody
//   to pick), stamped with that attempt's deployment;
// - afterwards, once the cooldowns have expired, traffic follows the
//   configured weights again (chi-square per group).
//
// Two shorter runs check the same answers when the router is destroyed
// mid-chaos (ShutdownError allowed) and when max_in_flight refuses part of
// the load (OverloadedError allowed). A third runs the chaos with
// `num_retries: 2` and cooldowns off (so every deployment of a group is a
// healthy candidate at every pick) and checks, besides the rest, that a
// request never calls a deployment that already failed for it while one of
// the group that has not failed remains (docs/reliability.md section 2).
//
// Checks run in the completion callbacks (worker threads) and only touch
// atomics; Catch2 assertions run on the test thread afterwards.

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace switchyard::chaos {
std::size_t request_count();
std::size_t in_flight_limit();
bool sanitized();
} // namespace switchyard::chaos

namespace {

using namespace std::chrono_literals;
using nlohmann::ordered_json;
using switchyard::error_kind;
using switchyard::route_result;
using steady = std::chrono::steady_clock;

constexpr int max_fallbacks = 3;
constexpr const char* unknown_group = "no-such-group";

// --- the configuration -----------------------------------------------------

struct deployment_spec {
  const char* group;
  const char* id;
  const char* failure;   ///< mock_failure, or nullptr for none
  double failure_rate;
  double weight;
  double latency_ms;
  double jitter_ms;
  std::optional<double> timeout_s;
  std::optional<double> cooldown_s;
  /// Never answers within its timeout (every call is a Timeout).
  bool hangs = false;
};

// One deployment per error kind, spread over five groups; `alpha-hang`
// never answers in time and `delta-slow` sometimes does not.
const std::vector<deployment_spec>& deployment_specs() {
  static const std::vector<deployment_spec> specs{
    {"alpha", "alpha-500", "InternalServerError", 0.5, 8, 1, 3, {}, {}},
    {"alpha", "alpha-429", "RateLimitError", 0.4, 5, 0, 2, {}, 0.05},
    {"alpha", "alpha-503", "ServiceUnavailableError", 0.5, 4, 2, 2, {}, {}},
    {"alpha", "alpha-401", "AuthenticationError", 0.3, 3, 0, 1, {}, 0.2},
    {"alpha", "alpha-400", "BadRequestError", 0.3, 2, 1, 0, {}, {}},
    {"alpha", "alpha-hang", nullptr, 0, 3, 300, 0, 0.02, {}, true},
    {"beta", "beta-502", "BadGatewayError", 0.5, 6, 1, 2, {}, {}},
    {"beta", "beta-conn", "APIConnectionError", 0.6, 4, 0, 3, {}, {}},
    {"beta", "beta-404", "NotFoundError", 0.3, 3, 1, 1, {}, 0.05},
    {"beta", "beta-ctx", "ContextWindowExceededError", 0.4, 2, 0, 2, {}, {}},
    {"gamma", "gamma-403", "PermissionDeniedError", 0.5, 5, 1, 1, {}, {}},
    {"gamma", "gamma-422", "UnprocessableEntityError", 0.4, 4, 0, 2, {}, {}},
    {"gamma", "gamma-policy", "ContentPolicyViolationError", 0.4, 3, 1, 1, {}, {}},
    {"gamma", "gamma-408", "Timeout", 0.5, 2, 0, 3, {}, 0.2},
    {"delta", "delta-500", "InternalServerError", 0.3, 5, 1, 2, {}, {}},
    {"delta", "delta-429", "RateLimitError", 0.5, 3, 0, 1, {}, {}},
    {"delta", "delta-slow", "ServiceUnavailableError", 0.1, 2, 10, 30, 0.025, {}},
    {"epsilon", "epsilon-503", "ServiceUnavailableError", 0.7, 1, 0, 1, {}, {}},
    {"epsilon", "epsilon-500", "InternalServerError", 0.7, 1, 1, 2, {}, {}},
  };
  return specs;
}

const std::vector<std::string> group_names{"alpha", "beta", "gamma", "delta", "epsilon"};

// The generic fallbacks form a tree (alpha -> beta -> delta, alpha -> gamma
// -> epsilon) and the context-window / content-policy lists point along the
// same edges, so a request can enter each group at most once.
/// How a run configures retries: `num_retries` 0 (every attempt is a hop)
/// and cooldowns on, or retries with cooldowns off.
struct retry_shape {
  int num_retries = 0;
  bool disable_cooldowns = false;
};

std::string chaos_config_text(retry_shape shape = {}) {
  ordered_json list = ordered_json::array();
  for (const auto& d : deployment_specs()) {
    ordered_json params{{"model", std::string("openai/") + d.id},
                        {"api_key", "sk-chaos-not-a-real-key"},
                        {"weight", d.weight},
                        {"mock_response", std::string("ok ") + d.id},
                        {"mock_latency_ms", d.latency_ms},
                        {"mock_latency_jitter_ms", d.jitter_ms}};
    if (d.failure) {
      params["mock_failure_rate"] = d.failure_rate;
      params["mock_failure"] = d.failure;
    }
    if (d.timeout_s)
      params["timeout"] = *d.timeout_s;
    if (d.cooldown_s)
      params["cooldown_time"] = *d.cooldown_s;
    list.push_back({{"model_name", d.group},
                    {"litellm_params", std::move(params)},
                    {"model_info", {{"id", d.id}}}});
  }
  ordered_json settings{
    {"routing_strategy", "simple-shuffle"},
    {"num_retries", shape.num_retries},
    {"disable_cooldowns", shape.disable_cooldowns},
    {"timeout", 30}, // generous: only the two slow deployments should time out
    {"cooldown_time", 0.1},
    {"enable_weighted_failover", true},
    {"max_fallbacks", max_fallbacks},
    {"fallbacks", ordered_json::array({{{"alpha", {"beta", "gamma"}}},
                                       {{"beta", {"delta"}}},
                                       {{"gamma", {"epsilon"}}}})},
    {"context_window_fallbacks", ordered_json::array({{{"beta", {"delta"}}}})},
    {"content_policy_fallbacks", ordered_json::array({{{"gamma", {"epsilon"}}}})},
  };
  return ordered_json{{"model_list", std::move(list)}, {"router_settings", std::move(settings)}}
    .dump(2);
}

switchyard::router_config chaos_config(retry_shape shape = {}) {
  return switchyard::load_config_text(chaos_config_text(shape));
}

/// Longest cooldown the config can start (deployment cooldown_time wins,
/// mock failures carry no Retry-After).
constexpr auto longest_cooldown = 200ms;

switchyard::router_options chaos_options(std::uint64_t seed, std::size_t max_in_flight = 0) {
  switchyard::router_options o;
  o.seed = seed;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  o.threads = std::clamp(hw, 2u, 4u);
  o.max_in_flight = max_in_flight;
  return o;
}

// --- the requests ----------------------------------------------------------

std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/// What request `i` asks for: a pure function of `i`, so the checker
/// recomputes it instead of storing a million plans.
struct request_plan {
  std::string model;
  bool force_context_window = false; ///< mock_testing_context_fallbacks
  bool disable_fallbacks = false;
  bool mock_rate_limit = false;      ///< request-level litellm.RateLimitError
};

request_plan plan_for(std::size_t i) {
  const auto u = mix(i * 2654435761ULL + 17) % 1000;
  request_plan p;
  if (u < 10)
    p.model = unknown_group;
  else if (u < 30) {
    p.model = "beta";
    p.force_context_window = true;
  } else if (u < 50) {
    p.model = "alpha";
    p.disable_fallbacks = true;
  } else if (u < 60) {
    p.model = "gamma";
    p.mock_rate_limit = true;
  } else if (u < 500)
    p.model = "alpha";
  else if (u < 700)
    p.model = "beta";
  else if (u < 850)
    p.model = "gamma";
  else if (u < 950)
    p.model = "delta";
  else
    p.model = "epsilon";
  return p;
}

switchyard::chat_request make_request(std::size_t i, const request_plan& p) {
  switchyard::chat_request r;
  r.model = p.model;
  r.messages = nlohmann::json::array(
    {{{"role", "user"}, {"content", "chaos request " + std::to_string(i)}}});
  r.mock_testing_context_fallbacks = p.force_context_window;
  r.disable_fallbacks = p.disable_fallbacks;
  if (p.mock_rate_limit) {
    r.mock.kind = switchyard::mock_spec::mode::fail;
    r.mock.error = switchyard::router_error::make(error_kind::rate_limit, "request mock");
  }
  return r;
}

// --- checking answers ------------------------------------------------------

/// Read-only facts about the deployments, shared by every callback.
struct deployment_facts {
  std::unordered_map<std::string, std::size_t> index; ///< id -> spec position
  std::unordered_map<std::string, std::size_t> group_size;
  deployment_facts() {
    const auto& specs = deployment_specs();
    for (std::size_t k = 0; k < specs.size(); ++k) {
      index.emplace(specs[k].id, k);
      ++group_size[specs[k].group];
    }
  }
  const deployment_spec* find(const std::string& id) const {
    auto i = index.find(id);
    return i == index.end() ? nullptr : &deployment_specs()[i->second];
  }
};

std::string describe(const route_result& r) {
  std::ostringstream s;
  s << (r.ok ? "ok from " + r.deployment_id
             : "failed " + std::string(switchyard::name_of(r.error.kind)) + " ("
                 + std::to_string(r.error.status) + ", deployment '" + r.error.deployment_id
                 + "')")
    << ", depth " << r.fallback_depth << ", attempts [";
  for (std::size_t k = 0; k < r.attempts.size(); ++k) {
    const auto& a = r.attempts[k];
    s << (k ? ", " : "") << a.deployment_id << "@" << a.model_group << ":"
      << (a.outcome ? std::string(switchyard::name_of(*a.outcome)) : "ok");
  }
  s << "]";
  return s.str();
}

/// Violations of the invariants, counted from any thread; the first few are
/// kept in words for the failure message.
class violations {
public:
  void add(std::size_t request, const std::string& rule, const route_result& r) {
    if (count_.fetch_add(1) >= 20)
      return;
    std::lock_guard<std::mutex> lock(m_);
    examples_.push_back("request " + std::to_string(request) + ": " + rule + " -- "
                        + describe(r));
  }
  std::size_t count() const { return count_.load(); }
  std::string examples() {
    std::lock_guard<std::mutex> lock(m_);
    std::string out;
    for (const auto& e : examples_)
      out += e + "\n";
    return out;
  }

private:
  std::atomic<std::size_t> count_{0};
  std::mutex m_;
  std::vector<std::string> examples_;
};

/// What the run saw, to show the chaos was real (every kind, cooldowns,
/// failovers, fallbacks, timeouts).
struct chaos_stats {
  std::atomic<std::size_t> ok{0};
  std::array<std::atomic<std::size_t>, switchyard::error_kind_count> failed_by_kind{};
  std::array<std::atomic<std::size_t>, switchyard::error_kind_count> attempts_by_kind{};
  std::atomic<std::size_t> attempts{0};
  std::atomic<std::size_t> failover_hops{0};   ///< next attempt in the same group
  std::atomic<std::size_t> fallback_hops{0};   ///< next attempt in another group
  std::atomic<std::size_t> max_attempts{0};
  /// Retries runs: a deployment called again once all of its group failed.
  std::atomic<std::size_t> round_repeats{0};

  std::size_t failed(error_kind k) const {
    return failed_by_kind[static_cast<std::size_t>(k)].load();
  }
  std::size_t attempted(error_kind k) const {
    return attempts_by_kind[static_cast<std::size_t>(k)].load();
  }
  std::string summary() const {
    std::ostringstream s;
    s << "ok " << ok << ", attempts " << attempts << " (next in the same group "
      << failover_hops << ", in another group " << fallback_hops << ", most in one request "
      << max_attempts << ", repeats after a whole group failed " << round_repeats
      << ")\n  failed:";
    for (int k = 0; k < switchyard::error_kind_count; ++k)
      if (failed_by_kind[k])
        s << ' ' << switchyard::name_of(static_cast<error_kind>(k)) << '=' << failed_by_kind[k];
    s << "\n  attempt outcomes:";
    for (int k = 0; k < switchyard::error_kind_count; ++k)
      if (attempts_by_kind[k])
        s << ' ' << switchyard::name_of(static_cast<error_kind>(k)) << '='
          << attempts_by_kind[k];
    return s.str();
  }
};

/// Which ending, besides a normal one, a run allows.
enum class also_allowed { nothing, shutdown, overloaded };

/// Whether the router retries an attempt that failed with `k` in a chaos
/// group (more than one deployment, all healthy: cooldowns off): every kind
/// but the 400 family, 404 and 422 (ROUTER_SEMANTICS.md section 6).
bool retried_in_chaos(error_kind k) {
  const int status = switchyard::status_of(k);
  return status != 400 && status != 404 && status != 422;
}

/// How many attempts the first hop made (it is in the first group): it
/// ends after 1 + retries attempts, or at the first error that is not
/// retried, or with the last attempt.
std::size_t first_hop_length(const route_result& r, std::size_t per_hop) {
  std::size_t n = 1;
  while (n < per_hop && n < r.attempts.size() && r.attempts[n - 1].outcome
         && retried_in_chaos(*r.attempts[n - 1].outcome)
         && r.attempts[n].model_group == r.attempts[0].model_group)
    ++n;
  return n;
}

/// The retries rule of a run with cooldowns off, where every deployment of
/// a group is a healthy candidate at every pick: within one visit of a
/// group (consecutive attempts in it), a deployment is called again only
/// once every deployment of the group has failed in the visit; and within
/// the first hop (no failover exclusions yet), never twice in a row in a
/// group of more than one. Counts the repeats it allows. (A failover hop
/// left with one candidate retries that one, as a group of one does.)
void check_retry_rounds(const deployment_facts& facts, const route_result& r,
                        std::size_t per_hop, chaos_stats& stats,
                        const std::function<void(const std::string&)>& fail) {
  const std::size_t first_hop = r.attempts.empty() ? 0 : first_hop_length(r, per_hop);
  std::set<std::string> failed;
  for (std::size_t k = 0; k < r.attempts.size(); ++k) {
    const auto& a = r.attempts[k];
    if (k > 0 && a.model_group != r.attempts[k - 1].model_group)
      failed.clear();
    const auto size = facts.group_size.at(a.model_group);
    if (failed.count(a.deployment_id)) {
      if (failed.size() < size)
        fail("a deployment called again while one of its group had not failed yet");
      else
        ++stats.round_repeats;
      if (k < first_hop && r.attempts[k - 1].deployment_id == a.deployment_id && size > 1)
        fail("a retry called the deployment that just failed, in a group of more than one");
    }
    failed.insert(a.deployment_id);
  }
}

/// Checks one answer against every invariant; runs on a worker thread.
/// `retries`: the run's num_retries (with cooldowns off when > 0).
void check_answer(const deployment_facts& facts, std::size_t i, const route_result& r,
                  also_allowed allowed, chaos_stats& stats, violations& bad,
                  int retries = 0) {
  const request_plan p = plan_for(i);
  const auto fail = [&](const std::string& rule) { bad.add(i, rule, r); };

  stats.attempts += r.attempts.size();
  std::size_t seen_max = stats.max_attempts.load();
  while (r.attempts.size() > seen_max
         && !stats.max_attempts.compare_exchange_weak(seen_max, r.attempts.size())) {
  }
  if (r.ok)
    ++stats.ok;
  else
    ++stats.failed_by_kind[static_cast<std::size_t>(r.error.kind)];

  // Shutdown: the router was destroyed under the request; the answer is
  // still exactly one, but the trace may end anywhere.
  bool shutdown_seen = !r.ok && r.error.kind == error_kind::shutdown;
  for (const auto& a : r.attempts)
    shutdown_seen = shutdown_seen || a.outcome == error_kind::shutdown;
  if (shutdown_seen && allowed != also_allowed::shutdown)
    return fail("ShutdownError while the router was running");
  if (!r.ok && r.error.kind == error_kind::overloaded) {
    if (allowed != also_allowed::overloaded)
      return fail("OverloadedError below max_in_flight");
    if (!r.attempts.empty() || r.error.status != 429)
      return fail("an overloaded request was routed anyway");
    return;
  }

  if (p.model == unknown_group) {
    if (r.ok || r.error.kind != error_kind::bad_request || r.error.status != 400
        || !r.attempts.empty()
        || r.error.message.find(std::string("'") + unknown_group + "'") == std::string::npos)
      fail("an unknown model group is not a BadRequestError 400 naming it");
    return;
  }

  // Hops: (attempts - 1 <= depth, without retries) <= max_fallbacks.
  const auto per_hop = static_cast<std::size_t>(1 + retries);
  if (r.attempts.size() > (static_cast<std::size_t>(max_fallbacks) + 1) * per_hop)
    fail("more attempts than (1 + max_fallbacks) * (1 + num_retries)");
  if (r.fallback_depth < 0 || r.fallback_depth > max_fallbacks)
    fail("fallback_depth outside [0, max_fallbacks]");
  std::size_t visits = r.attempts.empty() ? 0 : 1;
  for (std::size_t k = 1; k < r.attempts.size(); ++k)
    visits += r.attempts[k].model_group != r.attempts[k - 1].model_group ? 1 : 0;
  if (!r.attempts.empty()
      && static_cast<std::size_t>(r.fallback_depth) + 1 < (retries ? visits : r.attempts.size()))
    fail("fewer hops counted than hops made");

  // No deployment twice in one request (without retries); with them, only
  // once its whole group has failed.
  if (retries > 0)
    check_retry_rounds(facts, r, per_hop, stats, fail);
  std::set<std::string> ids;
  for (std::size_t k = 0; k < r.attempts.size(); ++k) {
    const auto& a = r.attempts[k];
    const deployment_spec* d = facts.find(a.deployment_id);
    if (!d) {
      fail("an attempt on an unknown deployment");
      continue;
    }
    if (a.model_group != d->group)
      fail("an attempt's model_group is not its deployment's group");
    if (!ids.insert(a.deployment_id).second && retries == 0)
      fail("a deployment attempted twice in one request");
    if (d->hangs && a.outcome != error_kind::timeout && !shutdown_seen)
      fail("a deployment that never answers in time did not time out");
    if (a.outcome)
      ++stats.attempts_by_kind[static_cast<std::size_t>(*a.outcome)];
    if (k > 0)
      ++(a.model_group == r.attempts[k - 1].model_group ? stats.failover_hops
                                                        : stats.fallback_hops);
    if (k + 1 < r.attempts.size() && !a.outcome)
      fail("the request went on after a successful attempt");
  }
  if (p.disable_fallbacks
      && (r.attempts.size() > per_hop || r.fallback_depth != 0
          || std::any_of(r.attempts.begin(), r.attempts.end(),
                         [&](const auto& a) { return a.model_group != p.model; })))
    fail("disable_fallbacks did not stop at the first hop");
  if (p.force_context_window && !r.attempts.empty() && r.attempts[0].model_group == p.model
      && r.attempts[0].outcome != error_kind::context_window_exceeded
      && !shutdown_seen)
    fail("mock_testing_context_fallbacks did not fail the first hop");

  if (r.ok) {
    if (r.attempts.empty() || r.attempts.back().outcome
        || r.attempts.back().deployment_id != r.deployment_id
        || r.attempts.back().model_group != r.model_group)
      fail("a success whose trace does not end with the serving attempt");
    else if (r.content != "ok " + r.deployment_id)
      fail("a success with the wrong content");
    if (p.mock_rate_limit)
      fail("a request mocked to fail was served");
    return;
  }
  if (shutdown_seen)
    return;
  if (!r.attempts.empty() && !r.attempts.back().outcome)
    fail("a failure whose last attempt succeeded");
  if (r.error.status != switchyard::status_of(r.error.kind))
    fail("error status does not match its kind");
  // The original error: the first hop's latest. With num_retries 0 that is
  // the first attempt when the first group had someone to pick, else
  // NoDeploymentsAvailable (everyone there was cooling down). With retries
  // (and no cooldowns), the attempt that ended the first hop: its last
  // retry, or the first error that is not retried.
  if (!r.attempts.empty() && r.attempts[0].model_group == p.model) {
    const std::size_t last = first_hop_length(r, per_hop) - 1;
    if (r.error.kind != r.attempts[last].outcome)
      fail("an exhausted request does not carry the first hop's error");
    if (r.error.deployment_id != r.attempts[last].deployment_id)
      fail("the original error is not stamped with the first hop's deployment");
  } else if (r.error.kind != error_kind::no_deployments_available) {
    fail("no attempt in the first group, yet the error is not NoDeploymentsAvailable");
  }
}

// --- driving load ----------------------------------------------------------

/// Exactly-once bookkeeping plus an in-flight limit for the sender.
class answer_counter {
public:
  answer_counter(std::size_t n, std::size_t limit)
    : counts_(new std::atomic<std::uint8_t>[n]), n_(n), limit_(limit) {
    for (std::size_t i = 0; i < n; ++i)
      counts_[i].store(0, std::memory_order_relaxed);
  }

  /// Waits for room; false if `deadline` passed first.
  bool acquire(steady::time_point deadline) {
    std::unique_lock<std::mutex> lock(m_);
    if (!cv_.wait_until(lock, deadline, [&] { return in_flight_ < limit_; }))
      return false;
    ++in_flight_;
    ++sent_;
    peak_ = std::max(peak_, in_flight_);
    return true;
  }

  /// One answer for request `i` (any thread).
  void answered(std::size_t i) {
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(m_);
    --in_flight_;
    ++answers_;
    cv_.notify_all();
  }

  /// Waits until every request sent so far has an answer.
  bool wait_all(steady::time_point deadline) {
    std::unique_lock<std::mutex> lock(m_);
    return cv_.wait_until(lock, deadline, [&] { return answers_ >= sent_; });
  }

  std::size_t size() const { return n_; }
  std::uint8_t count(std::size_t i) const { return counts_[i].load(); }
  std::size_t peak() {
    std::lock_guard<std::mutex> lock(m_);
    return peak_;
  }
  std::size_t sent() {
    std::lock_guard<std::mutex> lock(m_);
    return sent_;
  }

  /// Requests without an answer and with more than one.
  std::pair<std::size_t, std::size_t> missing_and_duplicated() const {
    std::size_t missing = 0, duplicated = 0;
    for (std::size_t i = 0; i < n_; ++i) {
      const auto c = counts_[i].load();
      missing += c == 0 ? 1 : 0;
      duplicated += c > 1 ? 1 : 0;
    }
    return {missing, duplicated};
  }

private:
  std::unique_ptr<std::atomic<std::uint8_t>[]> counts_;
  std::size_t n_;
  std::size_t limit_;
  std::mutex m_;
  std::condition_variable cv_;
  std::size_t in_flight_ = 0;
  std::size_t peak_ = 0;
  std::size_t sent_ = 0;
  std::size_t answers_ = 0;
};

double seconds_since(steady::time_point t) {
  return std::chrono::duration<double>(steady::now() - t).count();
}

/// A generous bound for waits, so a lost answer fails the test instead of
/// hanging it: 2 minutes plus 2 ms per request (x5 under a sanitizer).
steady::duration time_limit(std::size_t requests) {
  auto limit = 120s + std::chrono::milliseconds(2 * requests);
  return switchyard::chaos::sanitized() ? limit * 5 : limit;
}

/// Runs `body` on its own thread, which builds and destroys the router, and
/// waits for it within `limit`: false when the thread (the router's
/// destructor, say) did not finish in time. The thread is then detached.
template <class Body>
bool run_owner_thread(steady::duration limit, Body body) {
  std::promise<void> finished;
  auto done = finished.get_future();
  std::thread owner([&body, &finished] {
    body();
    finished.set_value();
  });
  if (done.wait_for(limit) != std::future_status::ready) {
    owner.detach();
    return false;
  }
  owner.join();
  return true;
}

/// Per-group pick counts of the weights phase.
struct weight_tally {
  std::vector<std::atomic<std::size_t>> picks;
  std::atomic<std::size_t> unexpected{0};
  weight_tally() : picks(deployment_specs().size()) {}
};

/// Pearson's chi-square of `observed` against weights; and the critical
/// value at p = 1e-6 (Wilson-Hilferty), so a correct router fails about
/// once in a million runs.
std::pair<double, double> chi_square(const std::vector<std::size_t>& observed,
                                     const std::vector<double>& weights) {
  double total = 0, weight_sum = 0;
  for (std::size_t k = 0; k < observed.size(); ++k) {
    total += static_cast<double>(observed[k]);
    weight_sum += weights[k];
  }
  double chi2 = 0;
  for (std::size_t k = 0; k < observed.size(); ++k) {
    const double expected = total * weights[k] / weight_sum;
    const double diff = static_cast<double>(observed[k]) - expected;
    chi2 += diff * diff / expected;
  }
  const double dof = static_cast<double>(observed.size() - 1);
  const double z = 4.753; // one-sided normal quantile of 1e-6
  const double h = 2.0 / (9.0 * dof);
  const double critical = dof * std::pow(1.0 - h + z * std::sqrt(h), 3.0);
  return {chi2, critical};
}

/// Sends `answers.size()` chaos requests through a router of `config` and
/// `options`, built and destroyed on its own thread, checking each answer
/// (check_answer with `allowed` and `retries`), and waits for them all.
/// Returns {the thread finished in time, every answer came in time}.
std::pair<bool, bool> run_checked(switchyard::router_config config,
                                  switchyard::router_options options, answer_counter& answers,
                                  also_allowed allowed, int retries,
                                  const deployment_facts& facts, chaos_stats& stats,
                                  violations& bad) {
  const std::size_t n = answers.size();
  bool in_time = false;
  const bool returned = run_owner_thread(time_limit(n) + 30s, [&] {
    const auto deadline = steady::now() + time_limit(n);
    switchyard::router router(std::move(config), options);
    for (std::size_t i = 0; i < n; ++i) {
      if (!answers.acquire(deadline))
        break;
      router.async_complete(make_request(i, plan_for(i)), [&, i](route_result r) {
        check_answer(facts, i, r, allowed, stats, bad, retries);
        answers.answered(i);
      });
    }
    in_time = answers.wait_all(deadline);
  });
  return {returned, in_time};
}

/// What every run must show: the router went away in time, each request
/// got exactly one answer, and no answer broke a rule.
void check_run(bool returned, bool in_time, const answer_counter& answers, violations& bad) {
  REQUIRE(returned);
  CHECK(in_time);
  const auto [missing, duplicated] = answers.missing_and_duplicated();
  CHECK(missing == 0);
  CHECK(duplicated == 0);
  INFO(bad.examples());
  CHECK(bad.count() == 0);
}

} // namespace

TEST_CASE("under random faults and timeouts and cooldowns every request gets exactly one "
          "valid answer and traffic returns to the weights afterwards") {
  const std::size_t n = switchyard::chaos::request_count();
  const std::size_t limit = switchyard::chaos::in_flight_limit();
  const std::size_t per_group = std::clamp<std::size_t>(n / 20, 1000, 20000);
  const auto deadline_after = time_limit(n + per_group * group_names.size());
  const deployment_facts facts;
  answer_counter answers(n, limit);
  chaos_stats stats;
  violations bad;
  weight_tally tally;
  answer_counter weight_answers(per_group * group_names.size(), limit);
  violations weight_bad;
  bool chaos_in_time = false, weights_in_time = false;
  double chaos_s = 0, cooldown_wait_s = 0, weights_s = 0, destroy_s = 0;

  const bool returned = run_owner_thread(deadline_after + 30s, [&] {
    const auto deadline = steady::now() + deadline_after;
    steady::time_point destroy_started;
    {
      // max_in_flight as high as the driver's own limit: the router must
      // never refuse, since an answer is counted after its place is freed.
      switchyard::router router(chaos_config(), chaos_options(20240601, limit));

      // Phase 1: chaos.
      const auto started = steady::now();
      for (std::size_t i = 0; i < n; ++i) {
        if (!answers.acquire(deadline))
          break;
        router.async_complete(make_request(i, plan_for(i)),
                              [&, i](route_result r) {
                                check_answer(facts, i, r, also_allowed::nothing, stats, bad);
                                answers.answered(i);
                              });
      }
      chaos_in_time = answers.wait_all(deadline);
      chaos_s = seconds_since(started);

      // Phase 2: every deployment healthy. A request-level mock_response
      // wins over the deployments' failure draws, and the request's timeout
      // over alpha-hang's 20 ms one; no failure means no new cooldown.
      const auto healthy_from = steady::now();
      std::this_thread::sleep_for(longest_cooldown * 3);
      cooldown_wait_s = seconds_since(healthy_from);
      const auto weights_started = steady::now();
      std::size_t k = 0;
      for (const auto& group : group_names)
        for (std::size_t j = 0; j < per_group; ++j, ++k) {
          if (!weight_answers.acquire(deadline))
            break;
          switchyard::chat_request req;
          req.model = group;
          req.messages = nlohmann::json::array({{{"role", "user"}, {"content", "weights"}}});
          req.mock.kind = switchyard::mock_spec::mode::reply;
          req.mock.content = "healthy";
          req.timeout_s = 30;
          router.async_complete(std::move(req), [&, k, group](route_result r) {
            const deployment_spec* d =
              r.attempts.size() == 1 ? facts.find(r.attempts[0].deployment_id) : nullptr;
            if (!r.ok || r.content != "healthy" || !d || r.model_group != group
                || d->group != group || r.deployment_id != d->id) {
              ++tally.unexpected;
              weight_bad.add(k, "not served by one healthy attempt in its group", r);
            } else {
              ++tally.picks[facts.index.at(d->id)];
            }
            weight_answers.answered(k);
          });
        }
      weights_in_time = weight_answers.wait_all(deadline);
      weights_s = seconds_since(weights_started);
      destroy_started = steady::now();
    } // ~router: must return
    destroy_s = seconds_since(destroy_started);
  });

  std::cout << "chaos: " << n << " requests, at most " << limit << " in flight (peak "
            << answers.peak() << "): " << chaos_s << " s ("
            << static_cast<double>(n) / std::max(chaos_s, 1e-9) << " requests/s); "
            << "cooldown wait " << cooldown_wait_s << " s; weights phase "
            << per_group * group_names.size() << " requests " << weights_s << " s; "
            << "destructor " << destroy_s << " s\n  " << stats.summary() << "\n";

  // Exactly one answer per request, and the router went away.
  REQUIRE(returned);
  CHECK(chaos_in_time);
  CHECK(answers.sent() == n);
  const auto [missing, duplicated] = answers.missing_and_duplicated();
  CHECK(missing == 0);
  CHECK(duplicated == 0);

  // Every invariant, for every answer.
  INFO(bad.examples());
  CHECK(bad.count() == 0);

  // The run really was chaotic: every error kind, timeouts, cooldowns,
  // failovers and fallbacks, successes and failures.
  for (int k = 0; k <= static_cast<int>(error_kind::service_unavailable); ++k) {
    INFO("attempt outcome " << switchyard::name_of(static_cast<error_kind>(k)));
    CHECK(stats.attempted(static_cast<error_kind>(k)) > 0);
  }
  CHECK(stats.failover_hops > 0);
  CHECK(stats.fallback_hops > 0);
  CHECK(stats.ok > n / 10);
  CHECK(stats.failed(error_kind::bad_request) > 0);
  if (n >= 20000)
    CHECK(stats.failed(error_kind::no_deployments_available) > 0);
  CHECK(stats.failed(error_kind::overloaded) == 0);
  CHECK(stats.failed(error_kind::shutdown) == 0);

  // Phase 2: every request served at once, and picks follow the weights.
  CHECK(weights_in_time);
  const auto [w_missing, w_duplicated] = weight_answers.missing_and_duplicated();
  CHECK(w_missing == 0);
  CHECK(w_duplicated == 0);
  {
    INFO(weight_bad.examples());
    CHECK(tally.unexpected == 0);
  }
  const auto& specs = deployment_specs();
  for (const auto& group : group_names) {
    std::vector<std::size_t> observed;
    std::vector<double> weights;
    std::ostringstream shares;
    for (std::size_t k = 0; k < specs.size(); ++k)
      if (specs[k].group == group) {
        observed.push_back(tally.picks[k]);
        weights.push_back(specs[k].weight);
        shares << ' ' << specs[k].id << '=' << tally.picks[k] << " (weight " << specs[k].weight
               << ')';
      }
    const auto [chi2, critical] = chi_square(observed, weights);
    INFO("group " << group << ":" << shares.str() << "; chi-square " << chi2
                  << ", critical " << critical);
    CHECK(chi2 < critical);
  }
}

TEST_CASE("destroying the router mid-chaos still answers every request exactly once") {
  const std::size_t n = std::clamp<std::size_t>(switchyard::chaos::request_count() / 10, 1000,
                                                20000);
  const deployment_facts facts;
  answer_counter answers(n, n);
  chaos_stats stats;
  violations bad;
  std::size_t answered_before_destroy = 0;

  const bool returned = run_owner_thread(time_limit(n), [&] {
    const auto deadline = steady::now() + time_limit(n);
    {
      switchyard::router router(chaos_config(), chaos_options(7));
      for (std::size_t i = 0; i < n; ++i) {
        if (!answers.acquire(deadline))
          break;
        router.async_complete(make_request(i, plan_for(i)), [&, i](route_result r) {
          check_answer(facts, i, r, also_allowed::shutdown, stats, bad);
          answers.answered(i);
        });
      }
      // Let some finish, some sit in 300 ms calls, some in cooldown waits.
      std::this_thread::sleep_for(30ms);
      answered_before_destroy = stats.ok + stats.attempts; // any progress at all
    }
  });

  std::cout << "chaos shutdown: " << n << " requests\n  " << stats.summary() << "\n";
  REQUIRE(returned);
  // The router owned its actor system: every answer is in once it is gone.
  const auto [missing, duplicated] = answers.missing_and_duplicated();
  CHECK(missing == 0);
  CHECK(duplicated == 0);
  INFO(bad.examples());
  CHECK(bad.count() == 0);
  CHECK(answered_before_destroy > 0);
  CHECK(stats.failed(error_kind::shutdown) > 0); // alpha-hang's calls were cut short
}

TEST_CASE("past max_in_flight every request still gets exactly one answer") {
  const std::size_t n = std::clamp<std::size_t>(switchyard::chaos::request_count() / 10, 1000,
                                                20000);
  const deployment_facts facts;
  answer_counter answers(n, n); // no limit of the driver's own: flood it
  chaos_stats stats;
  violations bad;
  const auto [returned, in_time] = run_checked(chaos_config(), chaos_options(11, 64), answers,
                                               also_allowed::overloaded, 0, facts, stats, bad);
  std::cout << "chaos overload: " << n << " requests, max_in_flight 64\n  " << stats.summary()
            << "\n";
  check_run(returned, in_time, answers, bad);
  CHECK(stats.failed(error_kind::overloaded) > 0);
  CHECK(stats.failed(error_kind::overloaded) < n);
}

TEST_CASE("with retries on, no deployment is called again while one of its group that has "
          "not failed for the request remains") {
  // num_retries 2 and cooldowns off: every deployment of a group is a
  // healthy candidate at every pick, so the rule is exact.
  const std::size_t n = std::clamp<std::size_t>(switchyard::chaos::request_count() / 2, 1000,
                                                50000);
  const std::size_t limit = switchyard::chaos::in_flight_limit();
  const deployment_facts facts;
  answer_counter answers(n, limit);
  chaos_stats stats;
  violations bad;
  constexpr int retries = 2;
  const auto [returned, in_time] =
    run_checked(chaos_config({retries, true}), chaos_options(20241201, limit), answers,
                also_allowed::nothing, retries, facts, stats, bad);
  std::cout << "chaos with retries: " << n << " requests, num_retries " << retries
            << ", cooldowns off\n  " << stats.summary() << "\n";
  check_run(returned, in_time, answers, bad);
  // Retries really ran, and some went round a whole group (epsilon has two
  // deployments failing 70% of the time).
  CHECK(stats.attempts > n + n / 2);
  CHECK(stats.round_repeats > 0);
  CHECK(stats.failover_hops > 0);
  CHECK(stats.fallback_hops > 0);
  CHECK(stats.ok > n / 10);
  CHECK(stats.failed(error_kind::no_deployments_available) == 0);
}

TEST_CASE("with every resilience rule on, every request gets exactly one answer and no call is "
          "lost or counted twice") {
  // Issue 13's rules all at once: retry budget, hedging, panic threshold,
  // probation, escalating and capped cooldowns. Each call that ended is
  // heard once by the observer and is in one trace once; the hedges'
  // losers are in the trace as Cancelled and heard by nobody.
  struct call_counter final : switchyard::router_observer {
    std::atomic<std::uint64_t> attempts{0}, requests{0};
    void on_attempt(const switchyard::attempt_event&) override { ++attempts; }
    void on_request(const switchyard::request_event&) override { ++requests; }
  };
  const std::size_t n = std::clamp<std::size_t>(switchyard::chaos::request_count() / 10, 1000,
                                                20000);
  auto observer = std::make_shared<call_counter>();
  answer_counter answers(n, n);
  std::atomic<std::uint64_t> traced{0}, cancelled{0}, hedges{0};
  bool in_time = false;
  const bool returned = run_owner_thread(time_limit(n) + 30s, [&] {
    const auto deadline = steady::now() + time_limit(n);
    auto config = chaos_config();
    auto& s = config.settings;
    s.retry_budget = switchyard::retry_budget_settings{0.2, 10, 1};
    s.hedge_after_ms = 5;
    s.panic_threshold = 30;
    s.cooldown_probe = true;
    s.cooldown_multiplier = 2;
    s.max_cooldown_time_s = 0.2;
    s.max_cooldown_percent = 60;
    auto options = chaos_options(11);
    options.observer = observer;
    switchyard::router router(std::move(config), options);
    for (std::size_t i = 0; i < n; ++i) {
      if (!answers.acquire(deadline))
        break;
      router.async_complete(make_request(i, plan_for(i)), [&, i](route_result r) {
        for (const auto& a : r.attempts) {
          ++(a.outcome == error_kind::cancelled ? cancelled : traced);
          hedges += a.hedge ? 1 : 0;
        }
        answers.answered(i);
      });
    }
    in_time = answers.wait_all(deadline);
  });
  std::cout << "chaos with resilience rules: " << n << " requests, " << traced.load()
            << " calls traced, " << hedges.load() << " hedges, " << cancelled.load()
            << " cancelled\n";
  REQUIRE(returned);
  CHECK(in_time);
  const auto [missing, duplicated] = answers.missing_and_duplicated();
  CHECK(missing == 0);
  CHECK(duplicated == 0);
  CHECK(observer->requests == n);
  CHECK(observer->attempts == traced);
  CHECK(hedges > 0);
}
