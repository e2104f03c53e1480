#include "switchyard/error.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace switchyard;

namespace {

struct kind_row {
  error_kind kind;
  const char* name;
  int status;
};

// ROUTER_SEMANTICS.md section 2, plus the router's own verdicts.
const std::vector<kind_row> every_kind = {
  {error_kind::bad_request, "BadRequestError", 400},
  {error_kind::context_window_exceeded, "ContextWindowExceededError", 400},
  {error_kind::content_policy_violation, "ContentPolicyViolationError", 400},
  {error_kind::authentication, "AuthenticationError", 401},
  {error_kind::permission_denied, "PermissionDeniedError", 403},
  {error_kind::not_found, "NotFoundError", 404},
  {error_kind::timeout, "Timeout", 408},
  {error_kind::unprocessable_entity, "UnprocessableEntityError", 422},
  {error_kind::rate_limit, "RateLimitError", 429},
  {error_kind::internal_server, "InternalServerError", 500},
  {error_kind::api_connection, "APIConnectionError", 500},
  {error_kind::bad_gateway, "BadGatewayError", 502},
  {error_kind::service_unavailable, "ServiceUnavailableError", 503},
  {error_kind::no_deployments_available, "NoDeploymentsAvailable", 429},
  {error_kind::overloaded, "OverloadedError", 429},
  {error_kind::shutdown, "ShutdownError", 503},
  {error_kind::cancelled, "CancelledError", 499},
};

} // namespace

TEST_CASE("every error kind has its LiteLLM name and HTTP status", "[error]") {
  REQUIRE(every_kind.size() == static_cast<std::size_t>(error_kind_count));
  for (const auto& row : every_kind) {
    INFO(row.name);
    CHECK(name_of(row.kind) == row.name);
    CHECK(status_of(row.kind) == row.status);
  }
}

TEST_CASE("error kinds parse with and without the litellm. prefix", "[error]") {
  for (const auto& row : every_kind) {
    INFO(row.name);
    CHECK(parse_error_kind(row.name) == row.kind);
    CHECK(parse_error_kind(std::string("litellm.") + row.name) == row.kind);
  }
}

TEST_CASE("unknown error kind names parse to nothing", "[error]") {
  CHECK_FALSE(parse_error_kind("").has_value());
  CHECK_FALSE(parse_error_kind("litellm.").has_value());
  CHECK_FALSE(parse_error_kind("RateLimit").has_value());
  CHECK_FALSE(parse_error_kind("ratelimiterror").has_value());
  CHECK_FALSE(parse_error_kind("openai.RateLimitError").has_value());
  CHECK_FALSE(parse_error_kind("litellm.litellm.RateLimitError").has_value());
}

TEST_CASE("error_kind_names lists every kind once, comma-separated", "[error]") {
  std::string expected;
  for (const auto& row : every_kind)
    expected += (expected.empty() ? "" : ", ") + std::string(row.name);
  CHECK(error_kind_names() == expected);
}

TEST_CASE("the BadRequest family is exactly the 400 kinds", "[error]") {
  for (const auto& row : every_kind) {
    INFO(row.name);
    CHECK(is_bad_request_family(row.kind) == (row.status == 400));
  }
}

TEST_CASE("router_error::make fills kind, status, message and Retry-After", "[error]") {
  auto e = router_error::make(error_kind::rate_limit, "slow down", 2.5);
  CHECK(e.kind == error_kind::rate_limit);
  CHECK(e.status == 429);
  CHECK(e.message == "slow down");
  CHECK(e.deployment_id.empty());
  REQUIRE(e.retry_after_s.has_value());
  CHECK(*e.retry_after_s == 2.5);

  auto plain = router_error::make(error_kind::bad_gateway, "upstream");
  CHECK(plain.status == 502);
  CHECK_FALSE(plain.retry_after_s.has_value());
}

TEST_CASE("stamp records the first deployment id only", "[error]") {
  auto e = router_error::make(error_kind::internal_server, "boom");
  e.stamp("dep-a");
  CHECK(e.deployment_id == "dep-a");
  e.stamp("dep-b");
  CHECK(e.deployment_id == "dep-a");
  // The rest of the error is untouched by stamping.
  CHECK(e.kind == error_kind::internal_server);
  CHECK(e.status == 500);
  CHECK(e.message == "boom");
}
