// The provider table, error mapping (TRANSPORT.md section 4) and
// Retry-After. Pure: `now` comes from the caller.

#include "provider_common.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace switchyard {

namespace {

// Default bases and key variables as LiteLLM's
// get_llm_provider_logic._get_openai_compatible_provider_info and each
// provider's *Config._get_openai_compatible_provider_info read them.
constexpr provider_info providers[] = {
  {"anthropic", dialect::anthropic, "https://api.anthropic.com", "ANTHROPIC_API_KEY", true,
   "ANTHROPIC_API_BASE"},
  {"azure", dialect::azure, "", "AZURE_API_KEY", true, "AZURE_API_BASE",
   {"AZURE_OPENAI_API_KEY"}},
  {"deepseek", dialect::openai, "https://api.deepseek.com/beta", "DEEPSEEK_API_KEY", true,
   "DEEPSEEK_API_BASE"},
  {"fireworks_ai", dialect::openai, "https://api.fireworks.ai/inference/v1",
   "FIREWORKS_API_KEY", true, "FIREWORKS_API_BASE",
   {"FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY", "FIREWORKS_AI_TOKEN"}},
  {"groq", dialect::openai, "https://api.groq.com/openai/v1", "GROQ_API_KEY", true,
   "GROQ_API_BASE"},
  {"hosted_vllm", dialect::openai, "", "HOSTED_VLLM_API_KEY", false, "HOSTED_VLLM_API_BASE"},
  {"mistral", dialect::openai, "https://api.mistral.ai/v1", "MISTRAL_API_KEY", true,
   "MISTRAL_API_BASE"},
  {"openai", dialect::openai, "https://api.openai.com/v1", "OPENAI_API_KEY", true,
   "OPENAI_API_BASE"},
  {"openrouter", dialect::openai, "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", true,
   "OPENROUTER_API_BASE", {"OR_API_KEY"}},
  {"perplexity", dialect::openai, "https://api.perplexity.ai", "PERPLEXITYAI_API_KEY", true,
   "PERPLEXITY_API_BASE", {"PERPLEXITY_API_KEY"}},
  {"together_ai", dialect::openai, "https://api.together.xyz/v1", "TOGETHER_API_KEY", true,
   "TOGETHER_AI_API_BASE", {"TOGETHER_AI_API_KEY", "TOGETHERAI_API_KEY", "TOGETHER_AI_TOKEN"}},
  {"xai", dialect::openai, "https://api.x.ai/v1", "XAI_API_KEY", true, "XAI_API_BASE"},
};

constexpr double max_retry_after_s = 3600;

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool has(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Phrasings LiteLLM's ExceptionCheckers.is_error_str_context_window_exceeded
// and the per-provider mappers look for, lower-cased.
bool says_context_window(const std::string& text) {
  if (has(text, "string_above_max_length"))
    return false;
  if (has(text, "invalid 'user'") && has(text, "string too long"))
    return false;
  static constexpr std::string_view phrases[] = {
    "maximum context length",
    "context_length_exceeded",
    "exceed context limit",
    "string too long. expected a string with maximum length",
    "model's maximum context limit",
    "is longer than the model's context length",
    "input tokens exceed the configured limit",
    "`inputs` tokens + `max_new_tokens` must be",
    "exceeds the available context size",
    "exceeds the maximum number of tokens allowed",
    "prompt is too long",
    "prompt: length",
  };
  for (auto p : phrases)
    if (has(text, p))
      return true;
  return (has(text, "current length is") && has(text, "while limit is"))
         || (has(text, "maximum input length is") && has(text, "tokens"));
}

// ExceptionCheckers.is_azure_content_policy_violation_error, OpenAI's
// content_policy_violation code and Anthropic's "content filtering policy".
bool says_content_policy(const std::string& text) {
  static constexpr std::string_view phrases[] = {
    "content_policy_violation",
    "responsibleaipolicyviolation",
    "the response was filtered due to the prompt triggering azure openai's content management",
    "your task failed as a result of our safety system",
    "the model produced invalid content",
    "content_filter_policy",
    "your request was rejected as a result of our safety system",
    "request was rejected as a result of the safety system",
    "content filtering policy",
  };
  for (auto p : phrases)
    if (has(text, p))
      return true;
  return has(text, "invalid prompt") && has(text, "violating our usage policy");
}

bool is_word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0;
}

// ExceptionCheckers.is_error_str_rate_limit: "rate limit" in any spelling,
// Mistral's capacity message, a standalone 429 unless the status says
// otherwise.
bool says_rate_limit(const std::string& text, long status) {
  for (std::size_t at = text.find("rate"); at != std::string::npos;
       at = text.find("rate", at + 1)) {
    std::size_t i = at + 4;
    while (i < text.size() && (text[i] == ' ' || text[i] == '_' || text[i] == '-'))
      ++i;
    if (text.compare(i, 5, "limit") == 0)
      return true;
  }
  if (has(text, "service tier capacity exceeded") || has(text, "token_quota_reached"))
    return true;
  if (status != 429 && status >= 400)
    return false;
  for (std::size_t at = text.find("429"); at != std::string::npos;
       at = text.find("429", at + 1)) {
    const bool left = at == 0 || !is_word_char(text[at - 1]);
    const bool right = at + 3 >= text.size() || !is_word_char(text[at + 3]);
    if (left && right)
      return true;
  }
  return false;
}

error_kind kind_of_status(long status) {
  switch (status) {
  case 400:
  case 413:
    return error_kind::bad_request;
  case 401:
    return error_kind::authentication;
  case 403:
    return error_kind::permission_denied;
  case 404:
    return error_kind::not_found;
  case 408:
  case 504:
    return error_kind::timeout;
  case 422:
    return error_kind::unprocessable_entity;
  case 429:
    return error_kind::rate_limit;
  case 502:
    return error_kind::bad_gateway;
  case 503:
    return error_kind::service_unavailable;
  default:
    return error_kind::internal_server;
  }
}

// The provider's own words: error.message of an OpenAI / Azure / Anthropic
// error body, else the body text itself (bounded).
std::string provider_message(std::string_view body, const nlohmann::json* parsed) {
  if (parsed && parsed->is_object()) {
    const nlohmann::json* err = nullptr;
    auto it = parsed->find("error");
    if (it != parsed->end())
      err = &*it;
    if (err && err->is_object()) {
      auto m = err->find("message");
      if (m != err->end() && m->is_string())
        return m->get<std::string>();
    }
    if (err && err->is_string())
      return err->get<std::string>();
    auto m = parsed->find("message");
    if (m != parsed->end() && m->is_string())
      return m->get<std::string>();
  }
  constexpr std::size_t max_text = 1000;
  std::string text(body.substr(0, max_text));
  if (body.size() > max_text)
    text += "...";
  return text.empty() ? "(empty body)" : text;
}

std::string_view exception_name(dialect d) {
  switch (d) {
  case dialect::azure:
    return "AzureException";
  case dialect::anthropic:
    return "AnthropicException";
  default:
    return "OpenAIException";
  }
}

std::optional<double> parse_seconds(std::string_view text) {
  std::string s(text);
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str())
    return std::nullopt;
  while (*end == ' ' || *end == '\t')
    ++end;
  if (*end != '\0' || !std::isfinite(v) || v < 0)
    return std::nullopt;
  return v;
}

// An HTTP date (RFC 9110 IMF-fixdate, "Wed, 21 Oct 2015 07:28:00 GMT";
// also the obsolete RFC 850 and asctime forms that senders may still use).
std::optional<std::time_t> parse_http_date(std::string_view text) {
  static constexpr const char* months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::string s(text);
  char mon[4] = {0};
  std::tm tm{};
  int day = 0, year = 0, h = 0, m = 0, sec = 0;
  char wday[16] = {0};
  bool parsed =
    std::sscanf(s.c_str(), "%15[A-Za-z], %d %3s %d %d:%d:%d GMT", wday, &day, mon, &year, &h,
                &m, &sec) == 7;
  if (!parsed && std::sscanf(s.c_str(), "%15[A-Za-z], %d-%3s-%d %d:%d:%d GMT", wday, &day,
                             mon, &year, &h, &m, &sec) == 7) {
    parsed = true;
    year += year < 70 ? 2000 : (year < 100 ? 1900 : 0);
  }
  if (!parsed)
    parsed = std::sscanf(s.c_str(), "%15[A-Za-z] %3s %d %d:%d:%d %d", wday, mon, &day, &h, &m,
                         &sec, &year) == 7;
  if (!parsed)
    return std::nullopt;
  int month = -1;
  for (int i = 0; i < 12; ++i)
    if (std::strcmp(mon, months[i]) == 0)
      month = i;
  if (month < 0 || day < 1 || day > 31 || h > 23 || m > 59 || sec > 60 || year < 1970)
    return std::nullopt;
  tm.tm_year = year - 1900;
  tm.tm_mon = month;
  tm.tm_mday = day;
  tm.tm_hour = h;
  tm.tm_min = m;
  tm.tm_sec = sec;
  return timegm(&tm);
}

} // namespace

const provider_info* find_provider(std::string_view prefix) noexcept {
  for (const auto& p : providers)
    if (p.name == prefix)
      return &p;
  return nullptr;
}

std::string supported_providers() {
  std::string out;
  for (const auto& p : providers)
    out += (out.empty() ? "" : ", ") + std::string(p.name);
  return out;
}

std::optional<double> retry_after_seconds(const http_headers& headers, system_time now) {
  const auto capped = [](double s) { return std::min(s, max_retry_after_s); };
  for (std::string_view name : {"retry-after-ms", "x-ms-retry-after-ms"})
    if (auto v = find_header(headers, name))
      if (auto ms = parse_seconds(*v))
        return capped(*ms / 1000.0);
  if (auto v = find_header(headers, "retry-after")) {
    if (auto s = parse_seconds(*v))
      return capped(*s);
    if (auto when = parse_http_date(*v)) {
      const double delta =
        std::chrono::duration<double>(std::chrono::system_clock::from_time_t(*when) - now)
          .count();
      return capped(std::max(0.0, delta));
    }
  }
  return std::nullopt;
}

std::string redact_key_like(std::string text) {
  // sk-... (OpenAI, Anthropic sk-ant-..., OpenRouter sk-or-...) and
  // "Bearer <token>": keep the marker, drop the rest of the token.
  // A bearer token may be a JWT (dots, base64); an sk- key has none.
  const auto token_end = [&text](std::size_t i, std::string_view extra) {
    while (i < text.size()
           && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-'
               || text[i] == '_' || text[i] == '*'
               || extra.find(text[i]) != std::string_view::npos))
      ++i;
    return i;
  };
  for (std::size_t at = text.find("sk-"); at != std::string::npos;
       at = text.find("sk-", at + 1)) {
    if (at > 0 && is_word_char(text[at - 1]))
      continue;
    const std::size_t end = token_end(at + 3, "");
    if (end - at >= 8)
      text.replace(at, end - at, "sk-<redacted>");
  }
  for (std::string_view marker : {"Bearer ", "bearer "})
    for (std::size_t at = text.find(marker); at != std::string::npos;
         at = text.find(marker, at + 1)) {
      const std::size_t from = at + marker.size();
      const std::size_t end = token_end(from, ".~+/=");
      if (end > from)
        text.replace(from, end - from, "<redacted>");
    }
  return text;
}

router_error map_provider_error(dialect d, long status, const http_headers& headers,
                                std::string_view body, system_time now) {
  nlohmann::json parsed = nlohmann::json::parse(body, nullptr, false);
  const bool is_json = !parsed.is_discarded();
  const std::string message = provider_message(body, is_json ? &parsed : nullptr);
  // The checks read the whole body (codes and types as well as the
  // message), as LiteLLM matches str(exception), which includes it.
  const std::string text = lower(body);

  error_kind kind = kind_of_status(status);
  if (says_context_window(text))
    kind = error_kind::context_window_exceeded;
  else if (says_content_policy(text))
    kind = error_kind::content_policy_violation;
  else if (d == dialect::anthropic && (has(text, "overloaded_error") || status == 529))
    kind = error_kind::internal_server;
  else if (says_rate_limit(text, status) && (status == 429 || status < 400 || status >= 500))
    kind = error_kind::rate_limit;
  else if (d != dialect::anthropic && has(text, "model_not_found") && status < 500)
    kind = error_kind::not_found;

  router_error e = router_error::make(
    kind, std::string(exception_name(d)) + " - " + std::to_string(status) + ": "
            + redact_key_like(message),
    retry_after_seconds(headers, now));
  // An unlisted status travels with the InternalServerError (LiteLLM's
  // APIError(status_code=...)); a listed one means its kind's status.
  if (kind == error_kind::internal_server && status >= 400 && status != 529)
    e.status = static_cast<int>(status);
  return e;
}

router_error connection_error(const provider_endpoint& ep, std::string_view cause,
                              bool timed_out) {
  const std::string where = ep.host.empty() ? std::string("the provider") : ep.host;
  if (timed_out)
    return router_error::make(error_kind::timeout,
                              "Timeout: no answer from " + where + " in time: "
                                + redact_key_like(std::string(cause)));
  return router_error::make(error_kind::api_connection,
                            "APIConnectionError: cannot reach " + where + ": "
                              + redact_key_like(std::string(cause)));
}

std::string redact_secrets(const provider_endpoint& ep, std::string text) {
  for (const auto& h : ep.headers) {
    if (!h.secret || h.value.empty())
      continue;
    // "Bearer <key>": the key alone may be echoed too.
    std::string_view value = h.value;
    constexpr std::string_view bearer = "Bearer ";
    if (value.substr(0, bearer.size()) == bearer)
      value.remove_prefix(bearer.size());
    if (value.size() < 4)
      continue;
    for (std::size_t at = text.find(value); at != std::string::npos;
         at = text.find(value, at))
      text.replace(at, value.size(), secret::redacted);
  }
  return text;
}

} // namespace switchyard
