#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace switchyard {

/// The error kinds of ROUTER_SEMANTICS.md section 2, named as LiteLLM names
/// its exception classes so that `litellm.<Kind>` strings map one to one.
enum class error_kind : std::uint8_t {
  bad_request,
  context_window_exceeded,
  content_policy_violation,
  authentication,
  permission_denied,
  not_found,
  timeout,
  unprocessable_entity,
  rate_limit,
  internal_server,
  api_connection,
  bad_gateway,
  service_unavailable,
  no_deployments_available,
  overloaded,
  shutdown,
  /// The caller cancelled the request (request_handle::cancel).
  cancelled,
};

inline constexpr int error_kind_count = 17;

/// The LiteLLM class name: "RateLimitError", "Timeout", ...
std::string_view name_of(error_kind k) noexcept;

/// The HTTP status of the kind (section 2).
int status_of(error_kind k) noexcept;

/// Parses a LiteLLM class name ("RateLimitError") with or without the
/// "litellm." prefix. Returns nullopt for an unknown name.
std::optional<error_kind> parse_error_kind(std::string_view name) noexcept;

/// Comma-separated list of every kind a mock or config may name (for errors).
std::string error_kind_names();

/// True for the BadRequest family (400): BadRequest, ContextWindowExceeded,
/// ContentPolicyViolation.
bool is_bad_request_family(error_kind k) noexcept;

/// An error as a value: what failed, how, and where. Errors never carry
/// secrets: messages are built by Switchyard or copied from mock config.
/// Immutable once built except for `stamp`, which the orchestrator uses.
struct router_error {
  error_kind kind = error_kind::internal_server;
  int status = 500;
  std::string message;
  /// Id of the deployment that produced it; empty for the router's own errors.
  std::string deployment_id;
  /// Seconds the provider asked us to wait, when it said.
  std::optional<double> retry_after_s;

  static router_error make(error_kind k, std::string message,
                           std::optional<double> retry_after_s = std::nullopt);

  /// Records the failing deployment; the first id stamped wins.
  void stamp(const std::string& id) {
    if (deployment_id.empty())
      deployment_id = id;
  }
};

} // namespace switchyard
