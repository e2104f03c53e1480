#pragma once

#include "switchyard/error.hpp"

#include <string>

namespace switchyard {

/// What a mock deployment (or a request's `mock_response`) answers
/// (ROUTER_SEMANTICS.md section 3). Immutable, share freely.
struct mock_spec {
  enum class mode : std::uint8_t { none, reply, fail };
  mode kind = mode::none;
  /// The reply's content, when kind == reply.
  std::string content;
  /// The reply's finish_reason, when kind == reply ("content_filter"
  /// simulates a provider's content filter).
  std::string finish_reason = "stop";
  /// The failure, when kind == fail (kind, status, message, retry_after).
  router_error error;

  bool is_set() const noexcept { return kind != mode::none; }
};

} // namespace switchyard
