#pragma once

// The gateway's HTTP semantics without the sockets: authentication, request
// bodies, OpenAI-shaped errors, response headers, `/v1/models`, readiness
// and SSE framing. Pure functions over strings and JSON (no Beast, no CAF),
// so the session code in gateway_server.cpp only moves bytes, and these
// rules are tested directly.

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/secret.hpp"
#include "switchyard/shared_state.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard::server {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// The master key check. Holds only the key's SHA-256 digest; comparing
/// digests with CRYPTO_memcmp takes the same time whatever the presented
/// key (its length included). Immutable after construction: share freely.
class key_check {
public:
  /// An empty key: every request passes (`serve` allows that on loopback
  /// only, or with --allow-unauthenticated).
  explicit key_check(const secret& master_key);
  bool required() const noexcept { return required_; }
  /// True when one of the presented values is the key. `authorization`
  /// is the whole header ("Bearer <key>", scheme case-insensitive);
  /// `api_key` and `x_api_key` carry the bare key.
  bool accepts(std::optional<std::string_view> authorization,
               std::optional<std::string_view> api_key,
               std::optional<std::string_view> x_api_key) const;

private:
  bool matches(std::string_view presented) const;
  bool required_ = false;
  std::array<unsigned char, 32> digest_{};
};

/// An HTTP answer before it meets a socket.
struct http_answer {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  header_list headers;
};

/// OpenAI's error shape, `{"error": {"message", "type", "param", "code"}}`:
/// type is the LiteLLM class name, code the status as a string (as
/// LiteLLM's proxy sends it), param the field a BadRequest names or null.
std::string error_body(const router_error& error, std::optional<std::string> param = {});
/// An error answer with its status and, for a 429 the router knows the
/// end of, Retry-After (whole seconds, rounded up).
http_answer error_answer(const router_error& error, std::optional<std::string> param = {});

/// A request body parsed and checked: the request, or a 400 answer that
/// names the problem (invalid JSON with its line and column, never echoing
/// the input; or parse_chat_request's field path, also in `param`).
struct body_result {
  std::optional<chat_request> request;
  std::optional<http_answer> error;
};
body_result parse_body(std::string_view body);

/// A duration in milliseconds as the headers give it: three decimals
/// ("12.345"), as printf's "%.3f".
std::string milliseconds_text(double ms);

/// The x-switchyard-* and x-litellm-* headers of an answer. `model_group`
/// is the group asked for when the result names none (a failure).
header_list route_headers(const route_result& result, const std::string& model_group,
                          double duration_ms);
/// The same headers for a stream, from its commit: they leave with its
/// first chunk, so the durations (and the overhead, duration minus
/// commit.upstream_ms) are those at the commit, the time to first token.
header_list commit_headers(const stream_commit& commit, const std::string& model_group,
                           double duration_ms);

/// The `chat.completion` body of a success: result.response when the
/// router built it, else one assembled from content, finish_reason and
/// tokens.
std::string completion_body(const route_result& result);

/// The OpenAI `chat.completion.chunk`s that replay a finished success, for
/// a streamed request whose answer came whole (no chunk on the way).
std::vector<nlohmann::json> replay_chunks(const route_result& result);

/// One SSE event: `data: <json>\n\n`.
std::string sse_event(const nlohmann::json& chunk);
/// The end of a good stream.
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";
/// The event that ends a stream broken after the commit.
std::string sse_error(const router_error& error);

/// `GET /v1/models`: every group, then every alias, in config order.
std::string models_body(const router_config& config);

/// `GET /health/readiness`: `shared_state` is "none", "connected" or
/// "down" (then with `shared_state_reason`).
std::string readiness_body(const router_config& config, bool draining,
                           const std::vector<std::string>& cooling,
                           const shared_state_status& shared);

/// Whether `host` (an IP address or "localhost") is a loopback address;
/// nullopt when it is neither.
std::optional<bool> is_loopback_host(const std::string& host);

/// The model group a request asked for, its alias resolved.
std::string resolved_group(const router_config& config, const std::string& model);

} // namespace switchyard::server
