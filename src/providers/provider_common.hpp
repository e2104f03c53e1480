#pragma once

// Pieces the provider codecs share: the server-sent-events parser, the
// assembler that turns OpenAI chunks into a summary, and redaction.

#include "switchyard/provider.hpp"
#include "switchyard/secret.hpp"

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

/// Replaces every secret header value of `ep` (a key the provider echoed)
/// in `text`.
std::string redact_secrets(const provider_endpoint& ep, std::string text);

/// Splits a text/event-stream body into events, fed in arbitrary splits
/// (RFC: lines end in \n, \r\n or \r; a blank line ends an event; data
/// lines join with \n; lines starting with ':' are comments). One per
/// stream; single-threaded.
class sse_parser {
public:
  struct sse_event {
    std::string event; ///< the `event:` field, empty when absent
    std::string data;
  };

  /// A line longer than this is an error (a body that is not SSE, or a
  /// peer that never ends a line): bounded memory per stream.
  static constexpr std::size_t max_line = max_stream_line;

  /// Appends completed events; false once a line exceeded max_line.
  bool feed(std::string_view bytes, std::vector<sse_event>& out);
  /// The body ended: an event still open (no blank line after it) counts.
  void finish(std::vector<sse_event>& out);

private:
  void line(std::string_view text, std::vector<sse_event>& out);

  std::string partial_;
  bool skip_lf_ = false;
  sse_event current_;
  bool has_data_ = false;
};

/// Collects what a stream's OpenAI chunks say (content and tool_calls per
/// choice, finish_reason, usage, id/model/created/system_fingerprint) into
/// a chat.completion. One per stream; single-threaded.
class stream_assembler {
public:
  void observe(const nlohmann::json& chunk);
  void set_usage(const nlohmann::json& usage) { usage_ = usage; }
  decoded_answer summary() const;

private:
  struct tool_call {
    std::string id, type = "function", name, arguments;
  };
  struct choice {
    std::string role = "assistant";
    std::string content;
    bool has_content = false;
    std::string refusal;
    std::string reasoning; ///< delta.reasoning_content (LiteLLM's name)
    std::map<long, tool_call> tool_calls;
    nlohmann::json finish_reason; // null until seen
  };
  std::map<long, choice> choices_;
  nlohmann::json meta_ = nlohmann::json::object();
  nlohmann::json usage_;
};

/// A stream_decoder over server-sent events: feeding, the end of the body
/// and the summary are the same for every dialect; a subclass turns each
/// event into chunks. Owned by the reader of one call's body; `ep`
/// outlives it (the config owns it).
class sse_stream_decoder : public stream_decoder {
public:
  /// `end_marker` names what a complete stream ends with, for the error of
  /// one that ends before it ("[DONE]", "message_stop").
  sse_stream_decoder(const provider_endpoint& ep, std::string_view end_marker, system_time now)
    : ep_(ep), now_(now), end_marker_(end_marker) {}

  void feed(std::string_view bytes, std::vector<event>& out) final;
  void finish(std::vector<event>& out) final;
  decoded_answer summary() const final { return assembler_.summary(); }

protected:
  /// One event, while the stream has not ended.
  virtual void on_event(const sse_parser::sse_event& e, std::vector<event>& out) = 0;
  /// The stream's successful end.
  void done(std::vector<event>& out);
  void fail(router_error e, std::vector<event>& out);
  /// An in-band error body, mapped, with our secrets redacted.
  void fail_in_band(long status, std::string_view body, std::vector<event>& out);
  void fail_not_json(std::vector<event>& out);

  const provider_endpoint& ep_;
  const system_time now_;
  stream_assembler assembler_;

private:
  void deliver(std::vector<sse_parser::sse_event>& events, std::vector<event>& out);

  sse_parser sse_;
  std::string_view end_marker_;
  bool ended_ = false;
};

/// usage.prompt_tokens / completion_tokens of an OpenAI usage object.
void read_usage(const nlohmann::json& usage, decoded_answer& out);
/// A token count as reported, capped at what a count holds.
std::uint32_t token_count(std::uint64_t reported);

/// content and finish_reason of the first choice of a chat.completion.
void read_first_choice(decoded_answer& out);

/// seconds since the epoch (OpenAI's `created`).
std::int64_t unix_seconds(system_time t);

/// The caller's keys that go upstream: param_defaults, then the request's
/// own keys over them, minus the router's keys, model, messages and stream.
nlohmann::json merged_params(const provider_endpoint& ep, const chat_request& request);

/// Whether the caller itself asked for stream_options.include_usage.
bool caller_wants_usage(const chat_request& request);

// Anthropic (anthropic_codec.cpp).
/// The Messages API body for an OpenAI-shaped request, or a BadRequestError.
upstream_request anthropic_request(const provider_endpoint& ep, const chat_request& request,
                                   bool stream);
/// A 2xx Messages API answer as a chat.completion.
decoded_answer decode_anthropic_message(const nlohmann::json& message, system_time now);
/// A status for an Anthropic error type ("overloaded_error" -> 529, ...).
long anthropic_error_status(const nlohmann::json& error_body);
std::unique_ptr<stream_decoder> make_anthropic_stream_decoder(const provider_endpoint& ep,
                                                              bool wants_usage,
                                                              system_time now);

} // namespace switchyard
