#include "switchyard/request.hpp"

#include "json_checks.hpp"

#include <algorithm>

namespace switchyard {

namespace {

using json = nlohmann::json;

// content: a string, an array of content parts, or (assistant messages that
// call tools) null or absent, as the OpenAI API allows.
void check_message(const json& m, const std::string& path, json_checks& check) {
  if (!m.is_object()) {
    check.fail(path, "expected an object");
    return;
  }
  const auto role = check.string_at(m, "role", path, required);
  const std::string content_path = key_path(path, "content");
  const json* content = json_checks::find(m, "content");
  if (!content) {
    const bool calls_tools = json_checks::find(m, "tool_calls")
                             || json_checks::find(m, "function_call");
    if (role && !(*role == "assistant" && calls_tools))
      check.fail(content_path, m.contains("content")
                                 ? "expected a string or an array of content parts"
                                 : "is required");
  } else if (content->is_array()) {
    for (std::size_t i = 0; i < content->size(); ++i) {
      const std::string part_path = index_path(content_path, i);
      if ((*content)[i].is_object())
        check.string_at((*content)[i], "type", part_path, required | non_empty);
      else
        check.fail(part_path, "expected an object");
    }
  } else if (!content->is_string()) {
    check.fail(content_path, "expected a string or an array of content parts");
  }
}

bool check_messages(const json& messages, const std::string& path, json_checks& check) {
  if (!messages.is_array() || messages.empty()) {
    check.fail(path, "expected a non-empty array");
    return false;
  }
  const std::size_t before = check.problems().size();
  for (std::size_t i = 0; i < messages.size(); ++i)
    check_message(messages[i], index_path(path, i), check);
  return check.problems().size() == before;
}
// Messages every one an object of plain values with a string role and a
// string content: check_messages accepts them and they nest two levels
// deep, so a request built in code skips the full check, which builds a
// path string per message. Anything else takes the full check, which says
// what is wrong and where.
bool plain_messages(const json& messages) {
  if (!messages.is_array() || messages.empty())
    return false;
  for (const auto& m : messages) {
    if (!m.is_object())
      return false;
    bool role = false;
    bool content = false;
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it->is_structured())
        return false;
      if (it.key() == "role")
        role = it->is_string();
      else if (it.key() == "content")
        content = it->is_string();
    }
    if (!role || !content)
      return false;
  }
  return true;
}


// The first problem in field order: the caller fixes one thing at a time.
router_error first_problem(const std::vector<config_problem>& problems) {
  const auto& first = problems.front();
  return router_error::make(error_kind::bad_request, first.path + ": " + first.message);
}

router_error too_deep(const std::string& path) {
  return router_error::make(error_kind::bad_request,
                            path + ": nested too deeply (more than "
                              + std::to_string(max_request_depth) + " levels)");
}

void read_request(const json& body, const std::string& prefix,
                  json_checks& check, chat_request& req) {
  if (!body.is_object()) {
    check.fail(prefix, "expected a JSON object");
    return;
  }
  req.model = check.string_at(body, "model", prefix, required | non_empty).value_or("");

  const std::string messages_path = key_path(prefix, "messages");
  const json* messages = json_checks::find(body, "messages");
  if (!messages) {
    check.fail(messages_path, "is required");
  } else if (check_messages(*messages, messages_path, check)) {
    req.messages = *messages;
  }

  if (const json* mock = json_checks::find(body, "mock_response"))
    req.mock = parse_mock_response(*mock, key_path(prefix, "mock_response"),
                                   check.problems());
  req.mock_testing_context_fallbacks =
    check.bool_at(body, "mock_testing_context_fallbacks", prefix).value_or(false);
  const auto& retries = config_key_of(key_section::request, "num_retries");
  if (auto n = check.integer_at(body, "num_retries", prefix, static_cast<std::int64_t>(retries.min),
                                static_cast<std::int64_t>(retries.max)))
    req.num_retries = static_cast<int>(*n);
  req.disable_fallbacks = check.bool_at(body, "disable_fallbacks", prefix).value_or(false);
  req.timeout_s = check.number_at(body, "timeout", prefix, rule_of(key_section::request, "timeout"));
  req.total_timeout_s = check.number_at(body, "total_timeout", prefix, rule_of(key_section::request, "total_timeout"));
  req.stream = check.bool_at(body, "stream", prefix).value_or(false);
  req.cooldown_time_s = check.number_at(body, "cooldown_time", prefix, rule_of(key_section::request, "cooldown_time"));
  req.hedge_after_ms = check.number_at(body, "hedge_after_ms", prefix,
                                       rule_of(key_section::request, "hedge_after_ms"));
  req.body = json::object();
  for (const auto& item : body.items())
    if (item.key() != "model" && item.key() != "messages")
      req.body.emplace(item.key(), item.value());
}

} // namespace

const std::vector<std::string_view>& router_request_keys() {
  // LiteLLM's router and proxy keys that a caller may put in a body, and
  // the per-call transport settings a caller must not redirect.
  static const std::vector<std::string_view> keys = {
    "mock_response", "mock_testing_context_fallbacks", "mock_timeout",
    "num_retries", "max_retries", "disable_fallbacks", "fallbacks",
    "context_window_fallbacks", "content_policy_fallbacks", "max_fallbacks",
    "timeout", "stream_timeout", "total_timeout", "request_timeout",
    "cooldown_time", "hedge_after_ms", "metadata", "litellm_metadata",
    "api_key", "api_base", "base_url", "api_version", "custom_llm_provider",
    "caching", "cache", "no-log", "tags", "model_info", "proxy_server_request",
    "litellm_call_id", "litellm_logging_obj"};
  return keys;
}

bool is_router_request_key(std::string_view key) noexcept {
  const auto& keys = router_request_keys();
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

parsed_request parse_chat_request(const json& body, const std::string& path_prefix) {
  // Before `messages` is copied (a recursive copy of a deep tree would
  // overflow the stack).
  if (nests_deeper_than(body, max_request_depth))
    return {std::nullopt, too_deep(path_prefix)};
  std::vector<config_problem> problems;
  json_checks check(problems);
  chat_request req;
  read_request(body, path_prefix, check, req);
  if (problems.empty())
    return {std::move(req), {}};
  return {std::nullopt, first_problem(problems)};
}

std::optional<router_error> validate_chat_request(const chat_request& request,
                                                  const std::string& path_prefix) {
  std::vector<config_problem> problems;
  json_checks check(problems);
  if (request.model.empty())
    check.fail(key_path(path_prefix, "model"), "expected a non-empty string");
  // The body around `messages` is one level; the same limit as a parsed body.
  if (!plain_messages(request.messages)) {
    const std::string messages_path = key_path(path_prefix, "messages");
    if (nests_deeper_than(request.messages, max_request_depth - 1))
      return too_deep(messages_path);
    check_messages(request.messages, messages_path, check);
  }
  // The same rules read_request applies to the body's values.
  if (request.num_retries)
    check.integer_in(*request.num_retries, key_path(path_prefix, "num_retries"), 0,
                     max_num_retries);
  if (request.timeout_s && !above_zero.admits(*request.timeout_s))
    check.fail(key_path(path_prefix, "timeout"), above_zero.expected);
  if (request.total_timeout_s && !above_zero.admits(*request.total_timeout_s))
    check.fail(key_path(path_prefix, "total_timeout"), above_zero.expected);
  if (request.cooldown_time_s && !at_least_zero.admits(*request.cooldown_time_s))
    check.fail(key_path(path_prefix, "cooldown_time"), at_least_zero.expected);
  if (request.hedge_after_ms && !above_zero.admits(*request.hedge_after_ms))
    check.fail(key_path(path_prefix, "hedge_after_ms"), above_zero.expected);
  if (problems.empty())
    return std::nullopt;
  return first_problem(problems);
}

} // namespace switchyard
