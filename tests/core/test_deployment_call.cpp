#include "switchyard/deployment_call.hpp"

#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::failure_mock;
using switchyard::test::reply_mock;
using switchyard::test::scripted_random;

namespace {

chat_request request_for(const std::string& model) {
  chat_request r;
  r.model = model;
  return r;
}

chat_request request_with_mock(mock_spec m) {
  auto r = request_for("g");
  r.mock = std::move(m);
  return r;
}

/// A mock_response as the configuration would carry it.
mock_spec mock_from(const nlohmann::json& value) {
  std::vector<config_problem> problems;
  auto m = parse_mock_response(value, "mock_response", problems);
  REQUIRE(problems.empty());
  return m;
}

void check_reply(const mock_call& c, const std::string& content) {
  CHECK(c.outcome.ok);
  CHECK(c.outcome.content == content);
}

void check_failure(const mock_call& c, error_kind kind) {
  INFO("expected " << name_of(kind) << ", got "
                   << (c.outcome.ok ? "success" : std::string(name_of(c.outcome.error.kind))));
  CHECK_FALSE(c.outcome.ok);
  CHECK(c.outcome.error.kind == kind);
  CHECK(c.outcome.error.status == status_of(kind));
  // The orchestrator stamps the id; the plan does not.
  CHECK(c.outcome.error.deployment_id.empty());
}

} // namespace

TEST_CASE("mock call: force_context_window comes first", "[deployment_call]") {
  deployment_config d = deployment("gpt-4o", "A").reply("hello").failure_rate(1.0);
  auto req = request_with_mock(reply_mock("from request"));
  scripted_random no_draws;
  auto c = plan_mock_call(d, req, true, 0, no_draws);
  check_failure(c, error_kind::context_window_exceeded);
  CHECK(c.outcome.error.message.find("gpt-4o") != std::string::npos);
  CHECK(no_draws.consumed() == 0);
}

TEST_CASE("mock call: the request's mock_response beats the deployment's", "[deployment_call]") {
  deployment_config d = deployment("g", "A").reply("from deployment").failure_rate(1.0);
  scripted_random no_draws;
  check_reply(plan_mock_call(d, request_with_mock(reply_mock("from request")), false, 0,
                             no_draws),
              "from request");
  check_failure(plan_mock_call(d, request_with_mock(failure_mock(error_kind::timeout)), false,
                               0, no_draws),
                error_kind::timeout);
  CHECK(no_draws.consumed() == 0);
}

TEST_CASE("mock call: a failure-rate draw beats the deployment's mock_response",
          "[deployment_call]") {
  deployment_config d =
    deployment("g", "A").reply("fine").failure_rate(0.5, error_kind::rate_limit);
  const auto req = request_for("g");
  scripted_random rng{0.49, 0.5, 0.0};

  auto failed = plan_mock_call(d, req, false, 0, rng);
  check_failure(failed, error_kind::rate_limit);
  CHECK(failed.outcome.error.message.find("RateLimitError") != std::string::npos);
  CHECK(rng.consumed() == 1);

  check_reply(plan_mock_call(d, req, false, 1, rng), "fine");
  CHECK(rng.consumed() == 2);

  check_failure(plan_mock_call(d, req, false, 2, rng), error_kind::rate_limit);
  CHECK(rng.remaining() == 0);
}

TEST_CASE("mock call: the default simulated failure is InternalServerError",
          "[deployment_call]") {
  deployment_config d = deployment("g", "A").reply("fine").failure_rate(0.25);
  scripted_random rng{0.1};
  check_failure(plan_mock_call(d, request_for("g"), false, 0, rng),
                error_kind::internal_server);
}

TEST_CASE("mock call: a deployment's litellm.<Kind> mock is that failure", "[deployment_call]") {
  deployment_config d = deployment("g", "A");
  d.mock = mock_from("litellm.RateLimitError");
  scripted_random no_draws;
  auto c = plan_mock_call(d, request_for("g"), false, 0, no_draws);
  check_failure(c, error_kind::rate_limit);
  CHECK_FALSE(c.outcome.error.retry_after_s.has_value());

  d.mock = mock_from("litellm.ServiceUnavailableError");
  check_failure(plan_mock_call(d, request_for("g"), false, 0, no_draws),
                error_kind::service_unavailable);
}

TEST_CASE("mock call: an error object carries its message and Retry-After",
          "[deployment_call]") {
  deployment_config d = deployment("g", "A");
  d.mock = mock_from({{"error", "RateLimitError"}, {"message", "slow down"}, {"retry_after", 2}});
  scripted_random no_draws;
  auto c = plan_mock_call(d, request_for("g"), false, 0, no_draws);
  check_failure(c, error_kind::rate_limit);
  CHECK(c.outcome.error.message == "slow down");
  REQUIRE(c.outcome.error.retry_after_s.has_value());
  CHECK(*c.outcome.error.retry_after_s == 2.0);
}

TEST_CASE("mock call: a plain string mock is a reply", "[deployment_call]") {
  deployment_config d = deployment("g", "A");
  d.mock = mock_from("hello there");
  scripted_random no_draws;
  check_reply(plan_mock_call(d, request_for("g"), false, 0, no_draws), "hello there");
}

TEST_CASE("mock call: mock_failure_after_calls draws nothing before N calls",
          "[deployment_call]") {
  deployment_config d = deployment("g", "A").reply("fine").failure_rate(1.0,
    error_kind::bad_gateway, 3);
  const auto req = request_for("g");
  scripted_random rng;
  for (std::uint64_t call = 0; call < 3; ++call) {
    INFO("call " << call);
    check_reply(plan_mock_call(d, req, false, call, rng), "fine");
  }
  CHECK(rng.consumed() == 0);
  rng.push(0.0);
  check_failure(plan_mock_call(d, req, false, 3, rng), error_kind::bad_gateway);
  CHECK(rng.consumed() == 1);
}

TEST_CASE("mock call: mock_latency_ms becomes the delivery delay", "[deployment_call]") {
  deployment_config d = deployment("g", "A").reply("fine").latency_ms(250);
  scripted_random no_draws;
  CHECK(plan_mock_call(d, request_for("g"), false, 0, no_draws).delay.count() == 0.25);
  CHECK(plan_mock_call(d, request_for("g"), true, 0, no_draws).delay.count() == 0.25);
  CHECK(plan_mock_call(d, request_with_mock(reply_mock("r")), false, 0, no_draws)
          .delay.count() == 0.25);

  deployment_config fast = deployment("g", "B").reply("fine");
  CHECK(plan_mock_call(fast, request_for("g"), false, 0, no_draws).delay.count() == 0.0);
}

TEST_CASE("mock call: no mock at all is an APIConnectionError naming the deployment",
          "[deployment_call]") {
  deployment_config d = deployment("g", "eastus2");
  scripted_random no_draws;
  auto c = plan_mock_call(d, request_for("g"), false, 0, no_draws);
  check_failure(c, error_kind::api_connection);
  CHECK(c.outcome.error.message.find("eastus2") != std::string::npos);
}

TEST_CASE("mock call: a zero failure rate never draws from the generator", "[deployment_call]") {
  deployment_config d = deployment("g", "A").reply("fine");
  REQUIRE(d.mock_failure_rate == 0.0);
  scripted_random no_draws; // any draw fails the test
  for (std::uint64_t call = 0; call < 5; ++call)
    check_reply(plan_mock_call(d, request_for("g"), false, call, no_draws), "fine");
  CHECK(no_draws.consumed() == 0);
}

// --- finish_reason -------------------------------------------------------------

TEST_CASE("mock call: a reply carries the mock's finish_reason", "[deployment_call]") {
  scripted_random no_draws;
  deployment_config plain = deployment("g", "A").reply("fine");
  auto c = plan_mock_call(plain, request_for("g"), false, 0, no_draws);
  check_reply(c, "fine");
  CHECK(c.outcome.finish_reason == "stop");

  deployment_config filtered = deployment("g", "B").reply("[filtered]", "content_filter");
  c = plan_mock_call(filtered, request_for("g"), false, 0, no_draws);
  check_reply(c, "[filtered]");
  CHECK(c.outcome.finish_reason == "content_filter");

  // The request's mock_response, with its own finish_reason, wins.
  auto m = reply_mock("cut short");
  m.finish_reason = "length";
  c = plan_mock_call(filtered, request_with_mock(m), false, 0, no_draws);
  check_reply(c, "cut short");
  CHECK(c.outcome.finish_reason == "length");
  c = plan_mock_call(filtered, request_with_mock(reply_mock("plain")), false, 0, no_draws);
  CHECK(c.outcome.finish_reason == "stop");
  CHECK(no_draws.consumed() == 0);
}

// --- call_timeout ------------------------------------------------------------------

namespace {

double timeout_of(const router_settings& s, const deployment_config& d,
                  std::optional<double> request_timeout, bool stream) {
  auto r = request_for("g");
  r.timeout_s = request_timeout;
  r.stream = stream;
  return call_timeout(s, d, r).count();
}

} // namespace

TEST_CASE("call timeout: request > deployment > router", "[deployment_call][timeout]") {
  router_settings s;
  CHECK(timeout_of(s, deployment("g", "A"), std::nullopt, false) == 600); // the default
  s.timeout_s = 30;
  s.stream_timeout_s = 20; // a non-streamed request never reads it
  deployment_config own = deployment("g", "A").timeout(10).stream_timeout(3);
  deployment_config plain = deployment("g", "B");
  CHECK(timeout_of(s, plain, std::nullopt, false) == 30);
  CHECK(timeout_of(s, own, std::nullopt, false) == 10);
  CHECK(timeout_of(s, own, 5.0, false) == 5);
  CHECK(timeout_of(s, plain, 45.0, false) == 45);
  CHECK(timeout_of(s, own, 0.25, false) == 0.25);
}

TEST_CASE("call timeout: a streamed request without stream_timeout anywhere",
          "[deployment_call][timeout]") {
  router_settings s;
  s.timeout_s = 30;
  deployment_config own = deployment("g", "A").timeout(10);
  deployment_config plain = deployment("g", "B");
  CHECK(timeout_of(s, plain, std::nullopt, true) == 30);
  CHECK(timeout_of(s, own, std::nullopt, true) == 10);
  CHECK(timeout_of(s, own, 5.0, true) == 5);
  CHECK(timeout_of(s, plain, 5.0, true) == 5);
}

TEST_CASE("call timeout: a streamed request uses the deployment's, then the router's stream_timeout",
          "[deployment_call][timeout]") {
  router_settings s;
  s.timeout_s = 30;
  s.stream_timeout_s = 20;
  deployment_config own_stream = deployment("g", "A").timeout(10).stream_timeout(3);
  deployment_config plain = deployment("g", "B");
  CHECK(timeout_of(s, own_stream, std::nullopt, true) == 3);
  CHECK(timeout_of(s, plain, std::nullopt, true) == 20);
  router_settings no_router_stream;
  no_router_stream.timeout_s = 30;
  CHECK(timeout_of(no_router_stream, own_stream, std::nullopt, true) == 3);
}

TEST_CASE("call timeout: any stream_timeout beats every plain timeout, as LiteLLM's _get_timeout",
          "[deployment_call][timeout]") {
  // LiteLLM (Router._get_timeout): for stream=True the stream chain
  // (request stream_timeout > deployment stream_timeout > router
  // stream_timeout) comes first; only when none is set does it fall back to
  // request timeout > deployment timeout > router timeout.
  // ROUTER_SEMANTICS.md is silent on stream_timeout, so LiteLLM rules.
  router_settings s;
  s.timeout_s = 30;
  s.stream_timeout_s = 20;
  deployment_config own_timeout = deployment("g", "A").timeout(10);
  deployment_config own_stream = deployment("g", "B").stream_timeout(3);
  // The router's stream_timeout over the deployment's plain timeout.
  CHECK(timeout_of(s, own_timeout, std::nullopt, true) == 20);
  // A request's plain timeout does not override a stream_timeout.
  CHECK(timeout_of(s, own_stream, 5.0, true) == 3);
  CHECK(timeout_of(s, own_timeout, 5.0, true) == 20);
}

TEST_CASE("plan_mock_call: mock_latency_jitter_ms adds a scripted share of the jitter",
          "[deployment_call]") {
  auto config = switchyard::test::make_config(
    {switchyard::test::deployment("g", "A").reply("hi")});
  auto d = config.deployments[0];
  d.mock_latency_ms = 10;
  d.mock_latency_jitter_ms = 40;
  switchyard::chat_request req;
  switchyard::test::scripted_random rng{{0.25}};
  auto call = switchyard::plan_mock_call(d, req, false, 0, rng);
  CHECK(call.delay.count() == Approx(0.020)); // 10 ms + 0.25 * 40 ms
  CHECK(rng.remaining() == 0);
  CHECK(call.outcome.ok);
}

TEST_CASE("plan_mock_call: a streamed request reports its time to first token",
          "[deployment_call]") {
  auto config = switchyard::test::make_config(
    {switchyard::test::deployment("g", "A").reply("hi")});
  auto d = config.deployments[0];
  d.mock_latency_ms = 50;
  switchyard::chat_request req;
  scripted_random no_draws;

  // Not streamed: no first-token time.
  CHECK_FALSE(switchyard::plan_mock_call(d, req, false, 0, no_draws).outcome.first_token_ms);

  req.stream = true;
  // Streamed, no mock_first_token_ms: the first token comes with the reply.
  auto whole = switchyard::plan_mock_call(d, req, false, 0, no_draws);
  REQUIRE(whole.outcome.first_token_ms);
  CHECK(*whole.outcome.first_token_ms == Approx(50.0));

  d.mock_first_token_ms = 5;
  auto early = switchyard::plan_mock_call(d, req, false, 0, no_draws);
  REQUIRE(early.outcome.first_token_ms);
  CHECK(*early.outcome.first_token_ms == Approx(5.0));
  CHECK(early.delay.count() == Approx(0.050));

  // Never later than the whole reply.
  d.mock_first_token_ms = 500;
  CHECK(*switchyard::plan_mock_call(d, req, false, 0, no_draws).outcome.first_token_ms
        == Approx(50.0));
}
