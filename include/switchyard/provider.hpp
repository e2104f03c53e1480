#pragma once

// Provider codecs (TRANSPORT.md sections 1-5): each provider as a pure
// function of bytes and headers. Building the upstream request, decoding an
// answer, mapping an error and translating a stream need no socket, no
// clock (`now` is passed in) and no thread, so they are tested on recorded
// bodies. The transport owns the HTTP client and calls these.

#include "switchyard/error.hpp"
#include "switchyard/http_types.hpp"
#include "switchyard/lazy_json.hpp"
#include "switchyard/request.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

/// The wire protocol a provider speaks.
enum class dialect : std::uint8_t { openai, azure, anthropic };

/// One supported `litellm_params.model` prefix. Static table entries:
/// immutable, share freely.
struct provider_info {
  std::string_view name;          ///< the prefix: "openai", "groq", ...
  dialect kind;
  std::string_view default_base;  ///< empty: api_base is required
  std::string_view key_env;       ///< the key variable LiteLLM reads first
  bool needs_key;
  /// Where LiteLLM looks for api_base when the params leave it unset.
  std::string_view base_env;
  /// Further key variables LiteLLM reads, in order, after key_env.
  std::array<std::string_view, 3> key_env_alt{};
};

/// The provider of a prefix, or nullptr.
const provider_info* find_provider(std::string_view prefix) noexcept;

/// "anthropic, azure, deepseek, ...": every supported prefix, for the
/// load error of an unknown one.
std::string supported_providers();

/// LiteLLM's current default Azure api-version (litellm.AZURE_DEFAULT_API_VERSION).
inline constexpr std::string_view azure_default_api_version = "2025-02-01-preview";
inline constexpr std::string_view anthropic_api_version = "2023-06-01";
/// Anthropic requires max_tokens; LiteLLM's default when the caller has none.
inline constexpr int anthropic_default_max_tokens = 4096;

/// A deployment's endpoint, resolved once at load. Immutable, share freely.
struct provider_endpoint {
  const provider_info* provider = nullptr;
  /// The full POST URL (Azure: with ?api-version=).
  std::string url;
  /// scheme://host[:port] for error messages (never a path or query), or a
  /// placeholder when api_base came from the environment (a secret).
  std::string host;
  /// `url` as `check` prints it: any part from the environment redacted.
  std::string display_url;
  /// litellm_params.model without the provider prefix.
  std::string upstream_model;
  /// Auth (secret), anthropic-version, content-type, extra_headers
  /// (secret where from os.environ/).
  http_headers headers;
  tls_settings tls;
  /// Provider params written in litellm_params (temperature, max_tokens,
  /// ...): defaults that the request's own keys override. An object.
  nlohmann::json param_defaults = nlohmann::json::object();
};

/// What the parts of an endpoint URL are; `*_from_env` parts are secrets.
struct endpoint_url_parts {
  std::string base;          ///< api_base, or the provider's default
  bool base_from_env = false;
  std::string model;         ///< upstream model (Azure: the deployment name)
  bool model_from_env = false;
  std::string api_version;   ///< Azure only
  bool api_version_from_env = false;
};

/// Fills url, display_url and host of `ep` from `parts` by the provider's
/// URL rules (TRANSPORT.md section 1).
void set_endpoint_url(provider_endpoint& ep, const endpoint_url_parts& parts);

/// A request built for upstream, or why it cannot be (a BadRequestError
/// naming the field, e.g. tool call arguments that are not JSON).
struct upstream_request {
  bool ok = false;
  http_request_spec http;
  router_error error;
};

/// The caller's body (chat_request::body + messages) with `model` replaced,
/// router keys removed and param_defaults under the caller's own keys;
/// translated for Anthropic. Streamed OpenAI-style calls ask for
/// stream_options.include_usage.
upstream_request build_upstream_request(const provider_endpoint& ep,
                                        const chat_request& request, bool stream);

/// A non-streamed answer, or what a stream assembled by its end.
struct decoded_answer {
  bool ok = false;
  /// OpenAI chat.completion: every choice (message with content and
  /// tool_calls, finish_reason), usage, id, created, model, system_fingerprint.
  /// An OpenAI-dialect answer stays the upstream's text until read.
  lazy_json completion;
  std::string content;        ///< first choice's text
  std::string finish_reason;  ///< first choice's
  std::optional<std::uint32_t> prompt_tokens, completion_tokens;
  router_error error;         ///< !ok
};

using system_time = std::chrono::system_clock::time_point;

/// Decodes a whole (non-streamed) HTTP answer: a 2xx chat completion, or
/// the mapped error. A 200 whose finish_reason is content_filter is a
/// success (the router handles it).
decoded_answer decode_response(const provider_endpoint& ep, long status,
                               const http_headers& headers, std::string_view body,
                               system_time now);

/// Maps an error answer as LiteLLM's exception_mapping_utils does: message
/// checks first (context window, content policy, rate limit), then the
/// status. Keeps the provider's message and status; redacts key-like text.
router_error map_provider_error(dialect d, long status, const http_headers& headers,
                                std::string_view body, system_time now);

/// No HTTP answer at all: APIConnectionError (or Timeout) naming the host
/// and the cause ("connection refused", "certificate verify failed").
router_error connection_error(const provider_endpoint& ep, std::string_view cause,
                              bool timed_out);

/// Seconds to wait from retry-after-ms, x-ms-retry-after-ms or retry-after
/// (seconds or an HTTP date), in that order; capped at 3600.
std::optional<double> retry_after_seconds(const http_headers& headers, system_time now);

/// Replaces key-like text (sk-..., Bearer ...) in a provider's message.
std::string redact_key_like(std::string text);

/// The longest line a stream may send (an event's data line): a longer one
/// is an error, so a body that is not SSE cannot grow memory without bound.
inline constexpr std::size_t max_stream_line = 16u << 20;

/// Decodes one streamed answer. Fed raw body bytes in arbitrary splits; emits
/// OpenAI `chat.completion.chunk` objects in order. One per call, owned by
/// whoever reads that call's body (one thread at a time).
class stream_decoder {
public:
  struct event {
    enum class kind : std::uint8_t { chunk, error, done } what;
    nlohmann::json chunk;
    router_error error;
  };
  virtual ~stream_decoder() = default;
  /// Appends the events these bytes complete. After a done or an error
  /// event, further bytes are ignored.
  virtual void feed(std::string_view bytes, std::vector<event>& out) = 0;
  /// The body ended: nothing if done/error was already emitted, else an
  /// error (the stream ended before [DONE] / message_stop).
  virtual void finish(std::vector<event>& out) = 0;
  /// Usage, finish_reason and the content / tool_calls assembled so far.
  virtual decoded_answer summary() const = 0;
};

/// The decoder for the endpoint's dialect. `request` says whether the caller
/// asked for stream_options.include_usage (else the usage chunk is dropped,
/// its usage still recorded in summary()).
std::unique_ptr<stream_decoder> make_stream_decoder(const provider_endpoint& ep,
                                                    const chat_request& request,
                                                    system_time now);

} // namespace switchyard
