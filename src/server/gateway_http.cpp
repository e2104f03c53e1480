#include "gateway_http.hpp"

#include "json_checks.hpp"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <random>

namespace switchyard::server {

namespace {

using json = nlohmann::json;

std::array<unsigned char, 32> sha256(std::string_view text) {
  std::array<unsigned char, 32> out{};
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), out.data());
  return out;
}

bool istarts_with(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size())
    return false;
  for (std::size_t i = 0; i < prefix.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(text[i]))
        != std::tolower(static_cast<unsigned char>(prefix[i])))
      return false;
  return true;
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

// Unique within the process, and across processes by a random prefix.
std::string completion_id() {
  static const std::uint32_t nonce = std::random_device{}();
  static std::atomic<std::uint64_t> next{0};
  char buf[48];
  std::snprintf(buf, sizeof buf, "chatcmpl-%08x%016llx", nonce,
                static_cast<unsigned long long>(next.fetch_add(1)));
  return buf;
}

json fallback_completion(const route_result& r) {
  const std::int64_t prompt = r.prompt_tokens;
  const std::int64_t completion = r.completion_tokens;
  json choice{{"index", 0},
              {"message", {{"role", "assistant"}, {"content", r.content}}},
              {"finish_reason", r.finish_reason.empty() ? "stop" : r.finish_reason}};
  return json{{"id", completion_id()},
              {"object", "chat.completion"},
              {"created", static_cast<std::int64_t>(std::time(nullptr))},
              {"model", r.model},
              {"choices", json::array({std::move(choice)})},
              {"usage",
               {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}}}};
}

json completion_json(const route_result& r) {
  return r.response.is_object() ? r.response.value() : fallback_completion(r);
}

std::string dumped(const json& j) {
  // Strings came from providers: one bad byte must not fail the answer.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// nlohmann's parse_error reads "[json.exception.parse_error.101] parse
// error at line 1, column 5: <what>; last read: '<input>'": keep the place
// and the what, drop the echoed input.
std::string json_error_text(const json::parse_error& e) {
  std::string what = e.what();
  const auto at = what.find("at line ");
  if (at != std::string::npos)
    what = what.substr(at + 3);
  else if (const auto end = what.find("] "); end != std::string::npos)
    what = what.substr(end + 2);
  return what.substr(0, what.find("; last read:"));
}

// Whether `text` (JSON or not) opens more than `limit` arrays and objects
// inside one another: a pass over the bytes before the parse, so no tree
// that deep is built (parse_chat_request would refuse it anyway). Cheaper
// than nlohmann's callback parser, which did this at every token. The same
// limit as nests_deeper_than (json_checks.hpp): `limit` levels pass.
bool opens_deeper_than(std::string_view text, std::size_t limit) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit)
        return true;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return false;
}

} // namespace

key_check::key_check(const secret& master_key)
  : required_(!master_key.empty()), digest_(sha256(master_key.reveal())) {}

bool key_check::matches(std::string_view presented) const {
  const auto d = sha256(presented);
  return CRYPTO_memcmp(d.data(), digest_.data(), d.size()) == 0;
}

bool key_check::accepts(std::optional<std::string_view> authorization,
                        std::optional<std::string_view> api_key,
                        std::optional<std::string_view> x_api_key) const {
  if (!required_)
    return true;
  // Every presented value is compared, so timing does not say which one
  // carried the key either.
  bool ok = false;
  if (authorization) {
    std::string_view value = trimmed(*authorization);
    if (istarts_with(value, "bearer "))
      ok |= matches(trimmed(value.substr(7)));
  }
  if (api_key)
    ok |= matches(trimmed(*api_key));
  if (x_api_key)
    ok |= matches(trimmed(*x_api_key));
  return ok;
}

std::string error_body(const router_error& error, std::optional<std::string> param) {
  return dumped(json{{"error",
                      {{"message", error.message},
                       {"type", std::string(name_of(error.kind))},
                       {"param", param ? json(*param) : json(nullptr)},
                       {"code", std::to_string(error.status)}}}});
}

http_answer error_answer(const router_error& error, std::optional<std::string> param) {
  http_answer a;
  a.status = error.status;
  a.body = error_body(error, std::move(param));
  if (error.status == 429 && error.retry_after_s && std::isfinite(*error.retry_after_s)
      && *error.retry_after_s >= 0)
    a.headers.emplace_back(
      "retry-after",
      std::to_string(static_cast<long long>(std::max(1.0, std::ceil(*error.retry_after_s)))));
  return a;
}

body_result parse_body(std::string_view body) {
  const auto bad = [](std::string message, std::optional<std::string> param) {
    return body_result{std::nullopt,
                       error_answer(router_error::make(error_kind::bad_request, std::move(message)),
                                    std::move(param))};
  };
  if (opens_deeper_than(body, max_request_depth))
    return bad("body: nested too deeply (more than " + std::to_string(max_request_depth)
                 + " levels)",
               std::nullopt);
  json doc;
  try {
    doc = json::parse(body);
  } catch (const json::parse_error& e) {
    return bad("body: not valid JSON: " + json_error_text(e), std::nullopt);
  } catch (const json::exception&) {
    return bad("body: not valid JSON: a number is too large", std::nullopt);
  }
  parsed_request parsed = parse_chat_request(doc, "body");
  if (parsed.request)
    return {std::move(parsed.request), std::nullopt};
  // The message is "body.<path>: <what>": the path is OpenAI's param.
  const std::string& m = parsed.error.message;
  std::optional<std::string> param;
  const auto colon = m.find(": ");
  if (m.rfind("body.", 0) == 0 && colon != std::string::npos)
    param = m.substr(5, colon - 5);
  return {std::nullopt, error_answer(parsed.error, std::move(param))};
}

std::string milliseconds_text(double ms) {
  // Integer arithmetic: printf's "%.3f" took 2 % of a request's CPU, in
  // three headers of every answer.
  if (!std::isfinite(ms) || std::fabs(ms) >= 1e12) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f", ms);
    return buf;
  }
  const long long thousandths = std::llround(ms * 1000.0);
  const unsigned long long a = thousandths < 0 ? -thousandths : thousandths;
  std::string out = thousandths < 0 ? "-" : "";
  out += std::to_string(a / 1000);
  const auto frac = static_cast<unsigned>(a % 1000);
  out += '.';
  out += static_cast<char>('0' + frac / 100);
  out += static_cast<char>('0' + frac / 10 % 10);
  out += static_cast<char>('0' + frac % 10);
  return out;
}

namespace {

// The headers of route_headers and commit_headers, from what both know.
header_list answer_headers(const std::string& deployment, const std::string& group,
                           int attempts, int fallback_depth, double upstream_ms,
                           double duration_ms) {
  const double overhead_ms = std::max(0.0, duration_ms - upstream_ms);
  // Calls after the first that were not a hop to another group or
  // deployment set: LiteLLM's "attempted retries".
  const int retries = std::max(0, attempts - 1 - fallback_depth);
  header_list h;
  h.reserve(12);
  if (!deployment.empty()) {
    h.emplace_back("x-switchyard-deployment-id", deployment);
    h.emplace_back("x-litellm-model-id", deployment);
  }
  if (!group.empty()) {
    h.emplace_back("x-switchyard-model-group", group);
    h.emplace_back("x-litellm-model-group", group);
  }
  h.emplace_back("x-switchyard-attempts", std::to_string(attempts));
  h.emplace_back("x-switchyard-fallback-depth", std::to_string(fallback_depth));
  std::string overhead = milliseconds_text(overhead_ms);
  h.emplace_back("x-switchyard-overhead-ms", overhead);
  h.emplace_back("x-litellm-attempted-retries", std::to_string(retries));
  h.emplace_back("x-litellm-attempted-fallbacks", std::to_string(fallback_depth));
  h.emplace_back("x-litellm-response-duration-ms", milliseconds_text(duration_ms));
  h.emplace_back("x-litellm-overhead-duration-ms", std::move(overhead));
  return h;
}

} // namespace

header_list route_headers(const route_result& r, const std::string& model_group,
                          double duration_ms) {
  double upstream_ms = 0;
  for (const auto& a : r.attempts)
    upstream_ms += a.latency_ms;
  return answer_headers(r.ok ? r.deployment_id : r.error.deployment_id,
                        !r.model_group.empty() ? r.model_group : model_group,
                        static_cast<int>(r.attempts.size()), r.fallback_depth, upstream_ms,
                        duration_ms);
}

header_list commit_headers(const stream_commit& c, const std::string& model_group,
                           double duration_ms) {
  return answer_headers(c.deployment_id, !c.model_group.empty() ? c.model_group : model_group,
                        c.attempts, c.fallback_depth, c.upstream_ms, duration_ms);
}

std::string completion_body(const route_result& result) {
  // The upstream's text when nobody has read it (an OpenAI-dialect
  // answer goes on as it came); else the router's own answer, dumped
  // where it is: no copy of the tree.
  if (const std::string* text = result.response.text())
    return *text;
  return result.response.is_object() ? dumped(result.response)
                                     : dumped(fallback_completion(result));
}

std::vector<json> replay_chunks(const route_result& result) {
  const json whole = completion_json(result);
  json base{{"id", whole.value("id", completion_id())},
            {"object", "chat.completion.chunk"},
            {"created", whole.value("created", static_cast<std::int64_t>(std::time(nullptr)))},
            {"model", whole.value("model", result.model)}};
  std::vector<json> chunks;
  const json choices = whole.value("choices", json::array());
  for (std::size_t i = 0; i < choices.size(); ++i) {
    const json& c = choices[i];
    const json message = c.value("message", json::object());
    json delta{{"role", "assistant"}, {"content", message.value("content", json(nullptr))}};
    if (message.contains("tool_calls") && message["tool_calls"].is_array()) {
      json calls = message["tool_calls"];
      for (std::size_t k = 0; k < calls.size(); ++k)
        if (calls[k].is_object())
          calls[k]["index"] = k;
      delta["tool_calls"] = std::move(calls);
    }
    json chunk = base;
    chunk["choices"] = json::array(
      {{{"index", c.value("index", i)}, {"delta", std::move(delta)}, {"finish_reason", nullptr}}});
    chunks.push_back(std::move(chunk));
    json end = base;
    end["choices"] = json::array({{{"index", c.value("index", i)},
                                   {"delta", json::object()},
                                   {"finish_reason", c.value("finish_reason", json("stop"))}}});
    chunks.push_back(std::move(end));
  }
  if (whole.contains("usage") && !chunks.empty())
    chunks.back()["usage"] = whole["usage"];
  return chunks;
}

std::string sse_event(const json& chunk) {
  return "data: " + dumped(chunk) + "\n\n";
}

std::string sse_error(const router_error& error) {
  return "data: " + error_body(error) + "\n\n";
}

std::string models_body(const router_config& config) {
  json data = json::array();
  const auto model = [](const std::string& id) {
    return json{{"id", id}, {"object", "model"}, {"created", 0}, {"owned_by", "switchyard"}};
  };
  for (const auto& g : config.groups)
    data.push_back(model(g.name));
  for (const auto& [alias, group] : config.settings.model_group_alias)
    if (!config.find_group(alias))
      data.push_back(model(alias));
  return dumped(json{{"object", "list"}, {"data", std::move(data)}});
}

std::string readiness_body(const router_config& config, bool draining,
                           const std::vector<std::string>& cooling,
                           const shared_state_status& shared) {
  json groups = json::array();
  for (const auto& g : config.groups)
    groups.push_back({{"name", g.name}, {"deployments", g.deployments.size()}});
  json body = {{"status", draining ? "draining" : "healthy"},
               {"model_groups", std::move(groups)},
               {"deployments_cooling", cooling},
               {"shared_state", name_of(shared.value)}};
  // The reason is the shared state's own text, which never holds the
  // password. A store that is down leaves the replica serving (local state):
  // readiness says so but stays 200.
  if (shared.value == shared_state_status::state::down)
    body["shared_state_reason"] = shared.reason;
  return dumped(body);
}

std::optional<bool> is_loopback_host(const std::string& host) {
  if (host == "localhost")
    return true;
  unsigned char v4[4];
  if (inet_pton(AF_INET, host.c_str(), v4) == 1)
    return v4[0] == 127;
  unsigned char v6[16];
  if (inet_pton(AF_INET6, host.c_str(), v6) != 1)
    return std::nullopt;
  static const unsigned char loopback6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(v6, v6 + 16, loopback6))
    return true;
  return std::equal(v6, v6 + 12, mapped) && v6[12] == 127;
}

std::string resolved_group(const router_config& config, const std::string& model) {
  const auto g = config.resolve_group(model);
  return g ? config.groups[*g].name : model;
}

} // namespace switchyard::server
