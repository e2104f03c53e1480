// Endpoint URLs, the OpenAI / Azure codec, and the per-dialect dispatch.

#include "provider_common.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace switchyard {

namespace {

constexpr std::string_view redacted_base = "<redacted api_base>";

std::string trim_slashes(std::string s) {
  while (!s.empty() && s.back() == '/')
    s.pop_back();
  return s;
}

bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// scheme://host[:port] of a URL, without userinfo (it may hold a password).
std::string host_of(std::string_view url) {
  const auto scheme = url.find("://");
  const std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
  std::size_t end = url.find_first_of("/?#", from);
  if (end == std::string_view::npos)
    end = url.size();
  std::string_view authority = url.substr(from, end - from);
  if (auto at = authority.rfind('@'); at != std::string_view::npos)
    authority.remove_prefix(at + 1);
  return std::string(url.substr(0, from)) + std::string(authority);
}

std::string without_userinfo(std::string_view url) {
  const std::string host = host_of(url);
  const auto scheme = url.find("://");
  const std::size_t from = scheme == std::string_view::npos ? 0 : scheme + 3;
  std::size_t end = url.find_first_of("/?#", from);
  if (end == std::string_view::npos)
    end = url.size();
  return host + std::string(url.substr(end));
}

std::string url_for(dialect d, const std::string& base_in, const std::string& model,
                    const std::string& api_version) {
  std::string base = trim_slashes(base_in);
  switch (d) {
  case dialect::azure: {
    std::string url;
    if (base.find("/openai/deployments/") != std::string::npos)
      url = base;
    else
      url = base + "/openai/deployments/" + model + "/chat/completions";
    if (url.find("api-version=") == std::string::npos)
      url += (url.find('?') == std::string::npos ? "?" : "&") + std::string("api-version=")
             + api_version;
    return url;
  }
  case dialect::anthropic:
    return ends_with(base, "/v1/messages") ? base : base + "/v1/messages";
  default:
    return ends_with(base, "/chat/completions") ? base : base + "/chat/completions";
  }
}

bool is_success(long status) {
  return status >= 200 && status < 300;
}

// The OpenAI / Azure stream: `data: {chunk}` events, then `data: [DONE]`.
class openai_stream_decoder final : public sse_stream_decoder {
public:
  openai_stream_decoder(const provider_endpoint& ep, bool wants_usage, system_time now)
    : sse_stream_decoder(ep, "[DONE]", now), wants_usage_(wants_usage) {}

private:
  void on_event(const sse_parser::sse_event& e, std::vector<event>& out) override {
    if (e.data == "[DONE]") {
      done(out);
      return;
    }
    nlohmann::json chunk = nlohmann::json::parse(e.data, nullptr, false);
    if (chunk.is_discarded() || !chunk.is_object()) {
      fail_not_json(out);
      return;
    }
    if (chunk.contains("error")) {
      // In-band errors may carry an HTTP status as error.code (OpenRouter);
      // else the answer's own 200.
      long status = 200;
      const auto& err = chunk["error"];
      if (err.is_object() && err.contains("code") && err["code"].is_number_integer())
        status = err["code"].get<long>();
      fail_in_band(status, e.data, out);
      return;
    }
    const auto choices = chunk.find("choices");
    const bool no_choices = choices != chunk.end() && choices->is_array() && choices->empty();
    const bool has_usage = chunk.contains("usage") && chunk["usage"].is_object();
    // Azure's first chunk: choices [] with only prompt_filter_results (and
    // an empty id and model). Nothing for the caller or the summary.
    if (no_choices && !has_usage)
      return;
    assembler_.observe(chunk);
    // The usage chunk we asked for (choices: [] with usage): only for a
    // caller that asked for it too.
    if (no_choices && !wants_usage_)
      return;
    out.push_back({event::kind::chunk, std::move(chunk), {}});
  }

  const bool wants_usage_;
};

} // namespace

void set_endpoint_url(provider_endpoint& ep, const endpoint_url_parts& parts) {
  const dialect d = ep.provider ? ep.provider->kind : dialect::openai;
  ep.url = url_for(d, parts.base, parts.model, parts.api_version);
  const std::string shown_base =
    parts.base_from_env ? std::string(redacted_base) : without_userinfo(parts.base);
  const std::string shown_model = parts.model_from_env ? secret::redacted : parts.model;
  const std::string shown_version =
    parts.api_version_from_env ? secret::redacted : parts.api_version;
  ep.display_url = url_for(d, shown_base, shown_model, shown_version);
  ep.host = parts.base_from_env ? std::string(redacted_base) : host_of(ep.url);
}

nlohmann::json merged_params(const provider_endpoint& ep, const chat_request& request) {
  nlohmann::json body = ep.param_defaults.is_object() ? ep.param_defaults
                                                      : nlohmann::json::object();
  if (request.body.is_object())
    for (const auto& item : request.body.items())
      body[item.key()] = item.value();
  for (auto it = body.begin(); it != body.end();) {
    const std::string& key = it.key();
    if (is_router_request_key(key) || key == "model" || key == "messages" || key == "stream")
      it = body.erase(it);
    else
      ++it;
  }
  return body;
}

bool caller_wants_usage(const chat_request& request) {
  if (!request.body.is_object())
    return false;
  auto opts = request.body.find("stream_options");
  if (opts == request.body.end() || !opts->is_object())
    return false;
  auto include = opts->find("include_usage");
  return include != opts->end() && include->is_boolean() && include->get<bool>();
}

namespace {

void append_json(std::string& out, const nlohmann::json& value) {
  out += value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void append_key(std::string& out, std::string_view key) {
  const bool plain = std::all_of(key.begin(), key.end(), [](char ch) {
    const auto c = static_cast<unsigned char>(ch);
    return c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += key;
    out += '"';
  } else {
    append_json(out, nlohmann::json(std::string(key)));
  }
}

} // namespace

upstream_request build_upstream_request(const provider_endpoint& ep,
                                        const chat_request& request, bool stream) {
  if (ep.provider && ep.provider->kind == dialect::anthropic)
    return anthropic_request(ep, request, stream);
  // The bytes `merged_params` + model + messages (+ stream) would dump to,
  // without building that object: the messages (the bulk) and the other
  // values are serialised from where they are, not deep-copied first. An
  // object dumps its keys in std::map order, which the sort reproduces.
  std::vector<std::pair<std::string_view, const nlohmann::json*>> fields;
  const auto add_from = [&fields](const nlohmann::json& object) {
    if (!object.is_object())
      return;
    for (auto it = object.begin(); it != object.end(); ++it) {
      const std::string& key = it.key();
      if (is_router_request_key(key) || key == "model" || key == "messages" || key == "stream"
          || key == "stream_options")
        continue;
      fields.emplace_back(key, &*it);
    }
  };
  add_from(ep.param_defaults);
  add_from(request.body);
  const nlohmann::json model = ep.upstream_model;
  const nlohmann::json yes = true;
  nlohmann::json options;
  fields.emplace_back("model", &model);
  fields.emplace_back("messages", &request.messages);
  if (stream) {
    // The caller's stream_options (else the deployment's), asking for usage.
    for (const auto* from : {&request.body, &ep.param_defaults})
      if (from->is_object())
        if (auto it = from->find("stream_options"); it != from->end()) {
          options = *it;
          break;
        }
    if (!options.is_object())
      options = nlohmann::json::object();
    options["include_usage"] = true;
    fields.emplace_back("stream", &yes);
    fields.emplace_back("stream_options", &options);
  }
  // The caller's key over the deployment's default: the later one wins.
  std::stable_sort(fields.begin(), fields.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string body = "{";
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (i + 1 < fields.size() && fields[i + 1].first == fields[i].first)
      continue;
    if (body.size() > 1)
      body += ',';
    append_key(body, fields[i].first);
    body += ':';
    append_json(body, *fields[i].second);
  }
  body += '}';
  upstream_request out;
  out.ok = true;
  out.http.url = ep.url;
  out.http.headers = ep.headers;
  out.http.body = std::move(body);
  return out;
}

namespace {

/// What the router reads of an OpenAI chat.completion (the first choice's
/// content and finish_reason, the usage counts), found in one pass over
/// the text without building its tree: the text itself then goes on as
/// the completion (lazy_json::from_text), parsed only if someone reads it.
/// `plain` is false when the text needs the full decoder: not valid JSON,
/// not an object, an in-band error, or a key the scan reads given twice.
/// Otherwise the result is exactly what read_first_choice and read_usage
/// read from the parsed tree.
class completion_scan final : public nlohmann::json_sax<nlohmann::json> {
public:
  std::string content, finish_reason;
  std::optional<std::uint32_t> prompt_tokens, completion_tokens;
  bool plain = true;

  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(number_integer_t) override { return value(); }
  bool number_unsigned(number_unsigned_t n) override {
    if (depth_ == 2 && in_usage_ && (expect_ == field::prompt || expect_ == field::completion))
      (expect_ == field::prompt ? prompt_tokens : completion_tokens) = token_count(n);
    return value();
  }
  bool number_float(number_float_t, const string_t&) override { return value(); }
  bool string(string_t& v) override {
    if (expect_ == field::finish_reason)
      finish_reason = std::move(v);
    else if (expect_ == field::content)
      content = std::move(v);
    return value();
  }
  bool binary(binary_t&) override { return value(); }

  bool start_object(std::size_t) override {
    if (depth_ == 1 && expect_ == field::usage)
      in_usage_ = true;
    else if (depth_ == 2 && in_choices_ && choice_index_++ == 0)
      in_first_choice_ = true;
    else if (depth_ == 3 && in_first_choice_ && expect_ == field::message)
      in_message_ = true;
    return open();
  }
  bool end_object() override {
    close();
    if (depth_ == 1)
      in_usage_ = false;
    else if (depth_ == 2)
      in_first_choice_ = false;
    else if (depth_ == 3)
      in_message_ = false;
    return true;
  }
  bool start_array(std::size_t) override {
    if (depth_ == 0)
      plain = false; // not an object: the full decoder says so
    else if (depth_ == 1 && expect_ == field::choices)
      in_choices_ = true;
    else if (depth_ == 2 && in_choices_)
      ++choice_index_;
    return open();
  }
  bool end_array() override {
    close();
    if (depth_ == 1)
      in_choices_ = false;
    return true;
  }

  bool key(string_t& k) override {
    expect_ = field::none;
    if (depth_ == 1) {
      if (k == "error")
        plain = false;
      else if (k == "choices")
        expect_ = once(seen_choices_, field::choices);
      else if (k == "usage")
        expect_ = once(seen_usage_, field::usage);
    } else if (depth_ == 2 && in_usage_) {
      if (k == "prompt_tokens")
        expect_ = once(seen_prompt_, field::prompt);
      else if (k == "completion_tokens")
        expect_ = once(seen_completion_, field::completion);
    } else if (depth_ == 3 && in_first_choice_) {
      if (k == "finish_reason")
        expect_ = once(seen_finish_, field::finish_reason);
      else if (k == "message")
        expect_ = once(seen_message_, field::message);
    } else if (depth_ == 4 && in_message_ && k == "content") {
      expect_ = once(seen_content_, field::content);
    }
    return plain;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    plain = false;
    return false;
  }

private:
  enum class field { none, choices, usage, prompt, completion, finish_reason, message, content };

  // A repeated key: the parsed tree keeps its last value, which this scan
  // does not track; the full decoder takes the text.
  field once(bool& seen, field f) {
    if (seen)
      plain = false;
    seen = true;
    return f;
  }
  bool value() {
    expect_ = field::none;
    if (depth_ == 0)
      plain = false;
    else if (depth_ == 2 && in_choices_)
      ++choice_index_;
    return plain;
  }
  bool open() {
    expect_ = field::none;
    ++depth_;
    return plain;
  }
  void close() { --depth_; }

  std::size_t depth_ = 0;
  field expect_ = field::none;
  bool in_choices_ = false, in_first_choice_ = false, in_message_ = false, in_usage_ = false;
  std::size_t choice_index_ = 0;
  bool seen_choices_ = false, seen_usage_ = false, seen_finish_ = false, seen_message_ = false,
       seen_content_ = false, seen_prompt_ = false, seen_completion_ = false;
};

} // namespace

decoded_answer decode_response(const provider_endpoint& ep, long status,
                               const http_headers& headers, std::string_view body,
                               system_time now) {
  const dialect d = ep.provider ? ep.provider->kind : dialect::openai;
  decoded_answer out;
  const auto failed = [&](router_error e) {
    e.message = redact_secrets(ep, std::move(e.message));
    out.ok = false;
    out.error = std::move(e);
    return out;
  };
  if (!is_success(status))
    return failed(map_provider_error(d, status, headers, body, now));
  if (d != dialect::anthropic) {
    completion_scan scan;
    if (nlohmann::json::sax_parse(body, &scan) && scan.plain) {
      out.ok = true;
      out.completion = lazy_json::from_text(std::string(body));
      out.content = std::move(scan.content);
      out.finish_reason = std::move(scan.finish_reason);
      out.prompt_tokens = scan.prompt_tokens;
      out.completion_tokens = scan.completion_tokens;
      return out;
    }
  }
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object())
    return failed(router_error::make(
      error_kind::internal_server, "the answer of " + ep.host + " (HTTP "
                                     + std::to_string(status) + ") is not a JSON object"));
  if (parsed.contains("error") || (d == dialect::anthropic && parsed.value("type", "") == "error")) {
    const long in_band = d == dialect::anthropic ? anthropic_error_status(parsed) : status;
    return failed(map_provider_error(d, in_band, headers, body, now));
  }
  if (d == dialect::anthropic)
    return decode_anthropic_message(parsed, now);
  out.ok = true;
  out.completion = std::move(parsed);
  read_first_choice(out);
  if (auto u = out.completion.value().find("usage"); u != out.completion.value().end())
    read_usage(*u, out);
  return out;
}

std::unique_ptr<stream_decoder> make_stream_decoder(const provider_endpoint& ep,
                                                    const chat_request& request,
                                                    system_time now) {
  if (ep.provider && ep.provider->kind == dialect::anthropic)
    return make_anthropic_stream_decoder(ep, caller_wants_usage(request), now);
  return std::make_unique<openai_stream_decoder>(ep, caller_wants_usage(request), now);
}

} // namespace switchyard
