#include "switchyard/metrics.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace switchyard;

namespace {

using namespace std::chrono_literals;

struct fake_clock {
  metrics::clock::time_point now{};
  metrics::clock_fn fn() {
    return [this] { return now; };
  }
};

request_event request(std::string_view group, std::optional<error_kind> error, double ms) {
  request_event e;
  e.model_group = group;
  e.error = error;
  e.duration_ms = ms;
  return e;
}

attempt_event attempt(std::string_view id, std::optional<error_kind> outcome, double ms) {
  attempt_event e;
  e.deployment_id = id;
  e.model_group = "g";
  e.outcome = outcome;
  e.latency_ms = ms;
  return e;
}

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.rfind(line + "\n", 0) == 0;
}

} // namespace

TEST_CASE("metrics: requests count by model group and outcome") {
  metrics m;
  m.on_request(request("gpt", std::nullopt, 120));
  m.on_request(request("gpt", std::nullopt, 80));
  m.on_request(request("gpt", error_kind::rate_limit, 10));
  m.on_request(request("claude", error_kind::timeout, 10));
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_requests_total", {"gpt", "ok"}) == 2);
  CHECK(s.value("switchyard_requests_total", {"gpt", "RateLimitError"}) == 1);
  CHECK(s.value("switchyard_requests_total", {"claude", "Timeout"}) == 1);
  CHECK(s.value("switchyard_requests_total", {"claude", "ok"}) == 0);
}

TEST_CASE("metrics: request duration histogram puts each observation in its bucket") {
  metrics m;
  // 5 ms sits on a bound: buckets are `le`, so it counts in the first one.
  m.on_request(request("g", std::nullopt, 5));
  m.on_request(request("g", std::nullopt, 7));
  m.on_request(request("g", std::nullopt, 400'000)); // past 300 s: +Inf only
  const auto s = m.snapshot();
  const auto* h = s.histogram("switchyard_request_duration_seconds", {"g"});
  REQUIRE(h);
  const auto& bounds = metrics::duration_buckets();
  REQUIRE(h->buckets.size() == bounds.size() + 1);
  CHECK(h->buckets[0] == 1); // le 0.005
  CHECK(h->buckets[1] == 1); // le 0.01
  CHECK(h->buckets.back() == 1);
  CHECK(h->count == 3);
  CHECK(h->sum == Approx(0.005 + 0.007 + 400.0));
}

TEST_CASE("metrics: retries, failovers and fallbacks add per model group") {
  metrics m;
  auto e = request("g", std::nullopt, 1);
  e.retries = 2;
  e.failovers = 1;
  e.fallbacks = 3;
  m.on_request(e);
  e.retries = 1;
  e.failovers = 0;
  e.fallbacks = 0;
  m.on_request(e);
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_retries_total", {"g"}) == 3);
  CHECK(s.value("switchyard_failovers_total", {"g"}) == 1);
  CHECK(s.value("switchyard_fallbacks_total", {"g"}) == 3);
}

TEST_CASE("metrics: deployment calls, latency, first token and tokens") {
  metrics m;
  auto a = attempt("d1", std::nullopt, 250);
  a.prompt_tokens = 10;
  a.completion_tokens = 5;
  a.first_token_ms = 40;
  m.on_attempt(a);
  m.on_attempt(attempt("d1", error_kind::internal_server, 30));
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_deployment_calls_total", {"d1", "ok"}) == 1);
  CHECK(s.value("switchyard_deployment_calls_total", {"d1", "InternalServerError"}) == 1);
  CHECK(s.value("switchyard_tokens_total", {"d1", "prompt"}) == 10);
  CHECK(s.value("switchyard_tokens_total", {"d1", "completion"}) == 5);
  const auto* lat = s.histogram("switchyard_deployment_latency_seconds", {"d1"});
  REQUIRE(lat);
  CHECK(lat->count == 2);
  const auto* ttft = s.histogram("switchyard_time_to_first_token_seconds", {"d1"});
  REQUIRE(ttft);
  CHECK(ttft->count == 1); // only the call that reported a first token
  CHECK(ttft->sum == Approx(0.04));
}

TEST_CASE("metrics: cooling gauge follows start, end and the cooldown's own length") {
  fake_clock clock;
  metrics m(clock.fn());
  cooldown_event c;
  c.deployment_id = "d1";
  c.model_group = "g";
  c.started = true;
  c.seconds = 5;
  m.on_cooldown(c);
  CHECK(m.snapshot().value("switchyard_deployment_cooling", {"d1"}) == 1);
  CHECK(m.cooling_deployments() == std::vector<std::string>{"d1"});
  clock.now += 4999ms;
  CHECK(m.cooling_deployments() == std::vector<std::string>{"d1"});
  clock.now += 1ms; // its 5 s are over
  CHECK(m.snapshot().value("switchyard_deployment_cooling", {"d1"}) == 0);
  CHECK(m.cooling_deployments().empty());

  m.on_cooldown(c);
  c.started = false;
  m.on_cooldown(c); // ended early
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_deployment_cooling", {"d1"}) == 0);
  CHECK(s.value("switchyard_cooldowns_total", {"d1"}) == 2);
}

TEST_CASE("metrics: declare shows every deployment's cooling gauge at 0") {
  router_config cfg;
  cfg.deployments.resize(2);
  cfg.deployments[0].id = "a";
  cfg.deployments[1].id = "b";
  metrics m;
  m.declare(cfg);
  const auto s = m.snapshot();
  const auto* f = s.find("switchyard_deployment_cooling");
  REQUIRE(f);
  REQUIRE(f->values.size() == 2);
  CHECK(f->values.at({"a"}) == 0);
  CHECK(f->values.at({"b"}) == 0);
}

TEST_CASE("metrics: after declare, a model that is no group counts as (unknown)") {
  router_config cfg;
  cfg.groups.push_back({"gpt", {}});
  metrics m;
  m.declare(cfg);
  m.on_request(request("gpt", std::nullopt, 1));
  m.on_request(request("no-such-model-from-a-client", error_kind::bad_request, 1));
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_requests_total", {"gpt", "ok"}) == 1);
  CHECK(s.value("switchyard_requests_total", {"(unknown)", "BadRequestError"}) == 1);
  CHECK(s.find("switchyard_requests_total")->values.size() == 2);
}

TEST_CASE("metrics: in flight gauge and overload rejections") {
  metrics m;
  m.add_in_flight(1);
  m.add_in_flight(1);
  m.add_in_flight(-1);
  m.on_admission_refused({});
  m.on_admission_refused({});
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_in_flight") == 1);
  CHECK(s.value("switchyard_overload_rejections_total") == 2);
}

TEST_CASE("metrics: prometheus text has HELP and TYPE lines and cumulative buckets") {
  metrics m;
  m.on_request(request("gpt", std::nullopt, 7));
  m.on_request(request("gpt", std::nullopt, 2000));
  const auto text = m.prometheus_text();
  CHECK(has_line(text, "# TYPE switchyard_requests_total counter"));
  CHECK(has_line(text, "# HELP switchyard_requests_total Requests answered, by model group "
                       "and outcome (ok or the error kind)."));
  CHECK(has_line(text, "switchyard_requests_total{model_group=\"gpt\",outcome=\"ok\"} 2"));
  CHECK(has_line(text, "# TYPE switchyard_request_duration_seconds histogram"));
  CHECK(has_line(text,
                 "switchyard_request_duration_seconds_bucket{model_group=\"gpt\",le=\"0.005\"} 0"));
  CHECK(has_line(text,
                 "switchyard_request_duration_seconds_bucket{model_group=\"gpt\",le=\"0.01\"} 1"));
  CHECK(has_line(text,
                 "switchyard_request_duration_seconds_bucket{model_group=\"gpt\",le=\"2.5\"} 2"));
  CHECK(has_line(text,
                 "switchyard_request_duration_seconds_bucket{model_group=\"gpt\",le=\"+Inf\"} 2"));
  CHECK(has_line(text, "switchyard_request_duration_seconds_sum{model_group=\"gpt\"} 2.007"));
  CHECK(has_line(text, "switchyard_request_duration_seconds_count{model_group=\"gpt\"} 2"));
  CHECK(has_line(text, "# TYPE switchyard_in_flight gauge"));
  CHECK(has_line(text, "switchyard_in_flight 0"));
  CHECK(has_line(text, "switchyard_overload_rejections_total 0"));
  // Every family is announced once, even with no series yet.
  for (const char* name :
       {"switchyard_deployment_calls_total", "switchyard_deployment_latency_seconds",
        "switchyard_time_to_first_token_seconds", "switchyard_failovers_total",
        "switchyard_fallbacks_total", "switchyard_retries_total", "switchyard_cooldowns_total",
        "switchyard_deployment_cooling", "switchyard_tokens_total"}) {
    INFO(name);
    CHECK(text.find(std::string("# TYPE ") + name + " ") != std::string::npos);
  }
}

TEST_CASE("metrics: label values are escaped in prometheus text") {
  metrics m;
  m.on_request(request("a\"b\\c\nd", std::nullopt, 1));
  const auto text = m.prometheus_text();
  CHECK(text.find("model_group=\"a\\\"b\\\\c\\nd\"") != std::string::npos);
}

TEST_CASE("metrics: concurrent events are all counted") {
  metrics m;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&m] {
      for (int i = 0; i < 1000; ++i) {
        m.on_request(request("g", std::nullopt, 1));
        m.on_attempt(attempt("d", std::nullopt, 1));
      }
    });
  for (auto& t : threads)
    t.join();
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_requests_total", {"g", "ok"}) == 4000);
  CHECK(s.value("switchyard_deployment_calls_total", {"d", "ok"}) == 4000);
  CHECK(s.histogram("switchyard_request_duration_seconds", {"g"})->count == 4000);
}

TEST_CASE("metrics: retry budget refusals and panic transitions are counted per model group") {
  metrics m;
  auto r = request("gpt", error_kind::internal_server, 5);
  r.budget_refused = 2;
  m.on_request(r);
  m.on_request(request("gpt", std::nullopt, 5)); // refused nothing
  m.on_panic(panic_event{"gpt", true, 0, 3});
  m.on_panic(panic_event{"gpt", false, 2, 3});
  m.on_panic(panic_event{"gpt", true, 1, 3});
  const auto s = m.snapshot();
  CHECK(s.value("switchyard_retry_budget_refused_total", {"gpt"}) == 2);
  CHECK(s.value("switchyard_panic_transitions_total", {"gpt", "entered"}) == 2);
  CHECK(s.value("switchyard_panic_transitions_total", {"gpt", "left"}) == 1);
  const auto text = m.prometheus_text();
  CHECK(has_line(text, "switchyard_retry_budget_refused_total{model_group=\"gpt\"} 2"));
  CHECK(has_line(text, "switchyard_panic_transitions_total{model_group=\"gpt\",state=\"entered\"} 2"));
}
