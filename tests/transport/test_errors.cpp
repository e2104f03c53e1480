// Provider errors through the real router: the mapped kind, status,
// message and Retry-After, and their effect on failover, fallbacks and
// cooldown.

#include "transport/transport_test.hpp"

#include <set>

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;

namespace {

struct error_case {
  std::string dialect; // openai, azure, anthropic
  std::string scenario;
  error_kind kind;
  int status;
  std::string message_part; // from the provider's own message
  std::optional<double> retry_after;
};

ojson at(const upstream_process& up, const error_case& c, const std::string& group) {
  if (c.dialect == "azure")
    return azure_at(up, group, group, c.scenario);
  if (c.dialect == "anthropic")
    return anthropic_at(up, group, group, c.scenario);
  return openai_at(up, group, group, c.scenario);
}

} // namespace

TEST_CASE("error statuses map to kinds with the provider's message", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  const std::vector<error_case> cases = {
    {"openai", "status=429,retry_after=7", error_kind::rate_limit, 429, "Rate limit reached", 7.0},
    {"openai", "status=429,retry_after_ms=2500", error_kind::rate_limit, 429, "Rate limit", 2.5},
    {"azure", "status=429,x_ms_retry_after_ms=1500", error_kind::rate_limit, 429,
     "exceeded token rate limit", 1.5},
    {"openai", "status=429,retry_after_date=30", error_kind::rate_limit, 429, "Rate limit",
     std::nullopt /* checked apart: an HTTP date has whole seconds */},
    {"openai", "status=429,retry_after=99999", error_kind::rate_limit, 429, "Rate limit",
     3600.0 /* capped at one hour */},
    {"openai", "status=403", error_kind::permission_denied, 403, "not allowed", std::nullopt},
    {"openai", "status=408", error_kind::timeout, 408, "timed out", std::nullopt},
    {"openai", "status=422", error_kind::unprocessable_entity, 422, "Unprocessable",
     std::nullopt},
    {"openai", "status=502", error_kind::bad_gateway, 502, "Bad gateway", std::nullopt},
    // As LiteLLM: a Timeout is a 408 whatever the status; the message keeps the 504.
    {"azure", "status=504", error_kind::timeout, 408, "504: Gateway timeout", std::nullopt},
    {"openai", "status=418", error_kind::internal_server, 418, "", std::nullopt},
    {"anthropic", "status=429,retry_after=3", error_kind::rate_limit, 429, "", 3.0},
    {"openai", "reset", error_kind::api_connection, 500, "127.0.0.1", std::nullopt},
    {"anthropic", "close", error_kind::api_connection, 500, "127.0.0.1", std::nullopt},
    {"openai", "cut_after=1", error_kind::api_connection, 500, "127.0.0.1", std::nullopt},
    {"openai", "status=401", error_kind::authentication, 401, "Incorrect API key", std::nullopt},
    {"azure", "status=401", error_kind::authentication, 401, "Access denied", std::nullopt},
    {"anthropic", "status=401", error_kind::authentication, 401, "", std::nullopt},
    {"openai", "status=404", error_kind::not_found, 404, "does not exist", std::nullopt},
    {"azure", "status=404", error_kind::not_found, 404, "deployment", std::nullopt},
    {"openai", "error=context_length", error_kind::context_window_exceeded, 400,
     "maximum context length", std::nullopt},
    {"azure", "error=context_length", error_kind::context_window_exceeded, 400,
     "maximum context length", std::nullopt},
    {"anthropic", "error=context_length", error_kind::context_window_exceeded, 400,
     "prompt is too long", std::nullopt},
    {"openai", "error=content_policy", error_kind::content_policy_violation, 400, "safety system",
     std::nullopt},
    {"azure", "error=content_policy", error_kind::content_policy_violation, 400,
     "content management policy", std::nullopt},
    {"anthropic", "error=content_policy", error_kind::content_policy_violation, 400,
     "content filtering policy", std::nullopt},
    {"openai", "status=400", error_kind::bad_request, 400, "malformed", std::nullopt},
    {"openai", "status=500", error_kind::internal_server, 500, "server had an error",
     std::nullopt},
    {"openai", "status=503", error_kind::service_unavailable, 503, "overloaded", std::nullopt},
    // As LiteLLM: an InternalServerError is a 500; the message keeps the 529.
    {"anthropic", "error=overloaded", error_kind::internal_server, 500, "529: Overloaded",
     std::nullopt},
  };
  std::vector<ojson> deployments;
  for (std::size_t i = 0; i < cases.size(); ++i)
    deployments.push_back(at(up, cases[i], "g" + std::to_string(i)));
  router r(config_of(deployments));
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    INFO(c.dialect << " " << c.scenario);
    const auto calls_before = up.calls().size();
    auto res = r.complete(ask("g" + std::to_string(i)));
    INFO(res.error.message);
    // One call each; a reused connection reset or closed before any answer
    // looks stale to curl, which sends the request once more (pinned in
    // tests/http): at most two then.
    const auto sent = up.calls().size() - calls_before;
    if (c.scenario == "reset" || c.scenario == "close")
      CHECK((sent == 1 || sent == 2));
    else
      CHECK(sent == 1);
    REQUIRE_FALSE(res.ok);
    CHECK(res.error.kind == c.kind);
    CHECK(res.error.status == c.status);
    CHECK(res.error.deployment_id == "g" + std::to_string(i));
    CHECK_FALSE(res.error.message.empty());
    if (!c.message_part.empty())
      CHECK(res.error.message.find(c.message_part) != std::string::npos);
    CHECK(res.error.message.find("secret") == std::string::npos);
    if (c.retry_after)
      CHECK(res.error.retry_after_s == Approx(*c.retry_after));
    else if (c.scenario.find("retry_after_date") != std::string::npos) {
      REQUIRE(res.error.retry_after_s);
      CHECK(*res.error.retry_after_s > 25);
      CHECK(*res.error.retry_after_s <= 31);
    } else
      CHECK_FALSE(res.error.retry_after_s);
  }
}

TEST_CASE("a refused port is an APIConnectionError naming host and cause",
          "[transport]") {
  drop_proxy_env();
  router r(config_of({deployment_entry("g", "dead", "openai/m", "http://127.0.0.1:9/v1")}));
  auto res = r.complete(ask("g"));
  REQUIRE_FALSE(res.ok);
  CHECK(res.error.kind == error_kind::api_connection);
  CHECK(res.error.message.find("127.0.0.1") != std::string::npos);
  CHECK(res.error.message.find("refused") != std::string::npos);
}

TEST_CASE("a 429 with retry-after 7 fails over and cools its deployment ~7 s",
          "[transport]") {
  drop_proxy_env();
  upstream_process up;
  auto obs = std::make_shared<counting_observer>();
  router_options opts;
  opts.seed = 1;
  opts.observer = obs;
  // `hot` is all but certain to be picked first (weight), and answers 429.
  router r(config_of({openai_at(up, "chat", "hot", "status=429,retry_after=7,key=hot",
                                {{"weight", 1000}}),
                      azure_at(up, "chat", "cold", "", {{"weight", 1}})},
                     {{"enable_weighted_failover", true}}),
           opts);
  auto first = r.complete(ask("chat"));
  INFO(first.error.message);
  REQUIRE(first.ok);
  REQUIRE(first.attempts.size() == 2);
  CHECK(first.attempts[0].deployment_id == "hot");
  CHECK(first.attempts[0].outcome == error_kind::rate_limit);
  CHECK(first.deployment_id == "cold");
  CHECK(first.fallback_depth == 1);
  CHECK(first.response["object"] == "chat.completion");
  for (int i = 0; i < 10; ++i) {
    auto res = r.complete(ask("chat"));
    REQUIRE(res.ok);
    CHECK(res.deployment_id == "cold");
    CHECK(res.attempts.size() == 1);
  }
  CHECK(calls_to(up, "key=hot").size() == 1); // cooling: never asked again
  CHECK(calls_to(up, "/openai/deployments/dep-cold/").size() == 11);
  auto cd = obs->cooldowns();
  REQUIRE(cd.size() == 1);
  CHECK(cd[0].deployment_id == "hot");
  CHECK(cd[0].seconds == Approx(7.0));
}

TEST_CASE("without weighted failover a failure goes to the fallback group",
          "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "primary", "p1", "status=500"),
                      anthropic_at(up, "backup", "b1")},
                     {{"fallbacks", {{{"primary", {"backup"}}}}}}));
  auto res = r.complete(ask("primary"));
  INFO(res.error.message);
  REQUIRE(res.ok);
  CHECK(res.model_group == "backup");
  CHECK(res.deployment_id == "b1");
  CHECK(res.fallback_depth == 1);
  CHECK(res.response["id"].get<std::string>().rfind("msg_", 0) == 0);
  REQUIRE(res.attempts.size() == 2);
  CHECK(res.attempts[0].outcome == error_kind::internal_server);
  CHECK(calls_to(up, "status=500").size() == 1);
  CHECK(calls_to(up, "/v1/messages").size() == 1);
}

TEST_CASE("a context-window error takes context_window_fallbacks", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({azure_at(up, "small", "s1", "error=context_length"),
                      openai_at(up, "big", "b1"), openai_at(up, "other", "o1")},
                     {{"context_window_fallbacks", {{{"small", {"big"}}}}},
                      {"fallbacks", {{{"small", {"other"}}}}}}));
  auto res = r.complete(ask("small"));
  REQUIRE(res.ok);
  CHECK(res.model_group == "big");
  CHECK(res.attempts[0].outcome == error_kind::context_window_exceeded);
}

TEST_CASE("a 200 filtered by the provider takes content_policy_fallbacks", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({azure_at(up, "strict", "s1", "finish=content_filter"),
                      anthropic_at(up, "lenient", "l1")},
                     {{"content_policy_fallbacks", {{{"strict", {"lenient"}}}}}}));
  auto res = r.complete(ask("strict"));
  INFO(res.error.message);
  REQUIRE(res.ok);
  CHECK(res.model_group == "lenient");
  REQUIRE(res.attempts.size() == 2);
  CHECK(res.attempts[0].outcome == error_kind::content_policy_violation);
  CHECK(res.response["id"].get<std::string>().rfind("msg_", 0) == 0);
}

TEST_CASE("a lone deployment's 429 is retried after its Retry-After and then answers",
          "[transport]") {
  drop_proxy_env();
  upstream_process up;
  auto obs = std::make_shared<counting_observer>();
  router_options opts;
  opts.observer = obs;
  router r(config_of({openai_at(up, "chat", "solo", "status=429,retry_after=1,fail_first=1")},
                     {{"num_retries", 1}}),
           opts);
  auto res = r.complete(ask("chat"));
  INFO(res.error.message);
  REQUIRE(res.ok);
  REQUIRE(res.attempts.size() == 2);
  CHECK(res.attempts[0].outcome == error_kind::rate_limit);
  CHECK_FALSE(res.attempts[1].outcome);
  CHECK(up.calls().size() == 2);
  CHECK(obs->cooldowns().empty()); // a lone deployment does not cool on 429
}
