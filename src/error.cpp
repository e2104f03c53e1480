#include "switchyard/error.hpp"

#include <array>

namespace switchyard {

namespace {

struct kind_info {
  error_kind kind;
  std::string_view name;
  int status;
};

// Order matches error_kind.
constexpr std::array<kind_info, error_kind_count> kinds{{
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
}};

} // namespace

std::string_view name_of(error_kind k) noexcept {
  return kinds[static_cast<std::size_t>(k)].name;
}

int status_of(error_kind k) noexcept {
  return kinds[static_cast<std::size_t>(k)].status;
}

std::optional<error_kind> parse_error_kind(std::string_view name) noexcept {
  constexpr std::string_view prefix = "litellm.";
  if (name.substr(0, prefix.size()) == prefix)
    name.remove_prefix(prefix.size());
  for (const auto& k : kinds)
    if (k.name == name)
      return k.kind;
  // LiteLLM also names the timeout class "TimeoutError" in places, and the
  // router's own error "RouterRateLimitError".
  if (name == "TimeoutError" || name == "APITimeoutError")
    return error_kind::timeout;
  if (name == "RouterRateLimitError")
    return error_kind::no_deployments_available;
  return std::nullopt;
}

std::string error_kind_names() {
  std::string out;
  for (const auto& k : kinds) {
    if (!out.empty())
      out += ", ";
    out += k.name;
  }
  return out;
}

bool is_bad_request_family(error_kind k) noexcept {
  return status_of(k) == 400;
}

router_error router_error::make(error_kind k, std::string message,
                                std::optional<double> retry_after_s) {
  router_error e;
  e.kind = k;
  e.status = status_of(k);
  e.message = std::move(message);
  e.retry_after_s = retry_after_s;
  return e;
}

} // namespace switchyard
