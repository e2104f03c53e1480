// Anthropic Messages API <-> OpenAI chat completions (TRANSPORT.md
// section 3), both ways, streams included. Pure.

#include "provider_common.hpp"

#include "../json_checks.hpp"

#include <map>

namespace switchyard {

namespace {

using json = nlohmann::json;

// OpenAI parameters that do not pass as they are: translated below (stop,
// tools, tool_choice, max_tokens, max_completion_tokens, user,
// parallel_tool_calls), or with no Messages API counterpart (which would
// reject them as extra inputs) and dropped, as LiteLLM drops what a
// provider does not support. Any other key passes (top_k, thinking, ...).
constexpr std::string_view openai_only_keys[] = {
  "n", "frequency_penalty", "presence_penalty", "logprobs", "top_logprobs", "logit_bias",
  "seed", "response_format", "stream_options", "reasoning_effort", "modalities", "audio",
  "prediction", "service_tier", "store", "web_search_options", "functions", "function_call",
  "parallel_tool_calls", "max_completion_tokens", "user", "stop", "tools", "tool_choice",
  "max_tokens"};

bool is_openai_only(std::string_view key) {
  for (auto k : openai_only_keys)
    if (k == key)
      return true;
  return false;
}

router_error bad_request(const std::string& path, const std::string& what) {
  return router_error::make(error_kind::bad_request, path + ": " + what);
}

// One request's translation, on the caller's stack; keeps the first
// problem (a BadRequestError naming the field).
class request_translator {
public:
  std::optional<router_error> problem;

  json text_block(const json& part) {
    json block = {{"type", "text"}, {"text", part.value("text", "")}};
    if (part.contains("cache_control"))
      block["cache_control"] = part["cache_control"];
    return block;
  }

  // image_url parts: data: URLs become base64 sources, others url sources.
  json image_block(const json& part, const std::string& path) {
    const json* ref = part.contains("image_url") ? &part["image_url"] : nullptr;
    std::string url;
    if (ref && ref->is_string())
      url = ref->get<std::string>();
    else if (ref && ref->is_object() && ref->contains("url") && (*ref)["url"].is_string())
      url = (*ref)["url"].get<std::string>();
    else {
      fail(key_path(path, "image_url"), "expected a URL string or an object with a url");
      return {};
    }
    json source;
    constexpr std::string_view data_prefix = "data:";
    if (url.compare(0, data_prefix.size(), data_prefix) == 0) {
      const auto semi = url.find(";base64,");
      if (semi == std::string::npos) {
        fail(key_path(path, "image_url"), "a data: URL must be base64 (data:<type>;base64,...)");
        return {};
      }
      source = {{"type", "base64"},
                {"media_type", url.substr(data_prefix.size(), semi - data_prefix.size())},
                {"data", url.substr(semi + 8)}};
    } else {
      source = {{"type", "url"}, {"url", url}};
    }
    json block = {{"type", "image"}, {"source", std::move(source)}};
    if (part.contains("cache_control"))
      block["cache_control"] = part["cache_control"];
    return block;
  }

  // A message's content as Anthropic blocks (empty text is dropped: the API
  // rejects empty text blocks).
  json blocks(const json& content, const std::string& path) {
    json out = json::array();
    if (content.is_string()) {
      if (!content.get_ref<const std::string&>().empty())
        out.push_back({{"type", "text"}, {"text", content}});
      return out;
    }
    if (!content.is_array())
      return out;
    for (std::size_t i = 0; i < content.size(); ++i) {
      const json& part = content[i];
      const std::string part_path = index_path(path, i);
      const std::string type = part.is_object() ? part.value("type", "") : "";
      if (type == "text") {
        if (!part.value("text", "").empty())
          out.push_back(text_block(part));
      } else if (type == "image_url") {
        json block = image_block(part, part_path);
        if (!block.is_null())
          out.push_back(std::move(block));
      } else if (part.is_object()) {
        out.push_back(part); // Anthropic-native blocks (document, ...) as given
      }
    }
    return out;
  }

  json tool_use_blocks(const json& calls, const std::string& path) {
    json out = json::array();
    if (!calls.is_array())
      return out;
    for (std::size_t i = 0; i < calls.size(); ++i) {
      const json& call = calls[i];
      const std::string call_path = index_path(path, i);
      if (!call.is_object() || !call.contains("function") || !call["function"].is_object()) {
        fail(call_path, "expected a tool call with a function");
        continue;
      }
      const json& fn = call["function"];
      json input = json::object();
      const std::string args = fn.contains("arguments") && fn["arguments"].is_string()
                                 ? fn["arguments"].get<std::string>()
                                 : std::string();
      if (!args.empty()) {
        input = json::parse(args, nullptr, false);
        if (input.is_discarded() || !input.is_object()) {
          fail(key_path(key_path(call_path, "function"), "arguments"),
               "expected a JSON object in a string");
          continue;
        }
      }
      out.push_back({{"type", "tool_use"},
                     {"id", call.value("id", "")},
                     {"name", fn.value("name", "")},
                     {"input", std::move(input)}});
    }
    return out;
  }

  json tool_result(const json& m) {
    json content = m.contains("content") ? m["content"] : json("");
    if (content.is_array()) {
      json parts = json::array();
      for (const auto& part : content)
        if (part.is_object() && part.value("type", "") == "text")
          parts.push_back(text_block(part));
      content = std::move(parts);
    } else if (!content.is_string()) {
      content = content.is_null() ? json("") : json(content.dump());
    }
    return {{"type", "tool_result"},
            {"tool_use_id", m.value("tool_call_id", "")},
            {"content", std::move(content)}};
  }

  // messages -> (system, messages), consecutive turns of one role merged
  // (tool results join the user turn around them).
  void messages(const json& in, json& system, json& out) {
    for (std::size_t i = 0; i < in.size(); ++i) {
      const json& m = in[i];
      const std::string path = index_path("messages", i);
      const std::string role = m.is_object() ? m.value("role", "") : "";
      const json content = m.is_object() && m.contains("content") ? m["content"] : json();
      if (role == "system" || role == "developer") {
        for (auto& b : blocks(content, key_path(path, "content")))
          if (b.value("type", "") == "text")
            system.push_back(std::move(b));
        continue;
      }
      json turn_blocks = json::array();
      std::string turn_role = "user";
      if (role == "assistant") {
        turn_role = "assistant";
        turn_blocks = blocks(content, key_path(path, "content"));
        if (m.contains("tool_calls"))
          for (auto& b : tool_use_blocks(m["tool_calls"], key_path(path, "tool_calls")))
            turn_blocks.push_back(std::move(b));
      } else if (role == "tool" || role == "function") {
        turn_blocks.push_back(tool_result(m));
      } else {
        turn_blocks = blocks(content, key_path(path, "content"));
      }
      if (turn_blocks.empty())
        continue;
      if (!out.empty() && out.back()["role"] == turn_role) {
        for (auto& b : turn_blocks)
          out.back()["content"].push_back(std::move(b));
      } else {
        out.push_back({{"role", turn_role}, {"content", std::move(turn_blocks)}});
      }
    }
  }

  static json tools(const json& in) {
    json out = json::array();
    for (const auto& t : in) {
      if (t.is_object() && t.value("type", "") == "function" && t.contains("function")
          && t["function"].is_object()) {
        const json& fn = t["function"];
        json tool = {{"name", fn.value("name", "")}};
        if (fn.contains("description"))
          tool["description"] = fn["description"];
        tool["input_schema"] = fn.contains("parameters") && fn["parameters"].is_object()
                                 ? fn["parameters"]
                                 : json{{"type", "object"}, {"properties", json::object()}};
        if (t.contains("cache_control"))
          tool["cache_control"] = t["cache_control"];
        out.push_back(std::move(tool));
      } else {
        out.push_back(t); // Anthropic-native tools (computer use, ...)
      }
    }
    return out;
  }

  static json tool_choice(const json& choice) {
    if (choice.is_string()) {
      const auto& s = choice.get_ref<const std::string&>();
      if (s == "required")
        return {{"type", "any"}};
      if (s == "none")
        return {{"type", "none"}};
      return {{"type", "auto"}};
    }
    if (choice.is_object() && choice.contains("function") && choice["function"].is_object())
      return {{"type", "tool"}, {"name", choice["function"].value("name", "")}};
    return choice;
  }

private:
  void fail(const std::string& path, const std::string& what) {
    if (!problem)
      problem = bad_request(path, what);
  }
};

std::string finish_reason_of(const json& stop_reason) {
  if (!stop_reason.is_string())
    return "stop";
  const auto& s = stop_reason.get_ref<const std::string&>();
  if (s == "max_tokens")
    return "length";
  if (s == "tool_use")
    return "tool_calls";
  if (s == "refusal")
    return "content_filter";
  return "stop"; // end_turn, stop_sequence, pause_turn
}

std::uint64_t count_of(const json& usage, const char* key) {
  auto v = usage.find(key);
  return v != usage.end() && v->is_number_unsigned() ? v->get<std::uint64_t>() : 0;
}

// prompt_tokens = input_tokens + cache_read_input_tokens (TRANSPORT.md 3).
json openai_usage(const json& usage) {
  const auto input = count_of(usage, "input_tokens");
  const auto cache_read = count_of(usage, "cache_read_input_tokens");
  const auto output = count_of(usage, "output_tokens");
  json out = {{"prompt_tokens", input + cache_read},
              {"completion_tokens", output},
              {"total_tokens", input + cache_read + output},
              {"prompt_tokens_details", {{"cached_tokens", cache_read}}}};
  if (usage.contains("cache_creation_input_tokens"))
    out["cache_creation_input_tokens"] = count_of(usage, "cache_creation_input_tokens");
  if (usage.contains("cache_read_input_tokens"))
    out["cache_read_input_tokens"] = cache_read;
  return out;
}

// The Anthropic stream as OpenAI chunks. Owned by the reader of one call.
class anthropic_stream_decoder final : public sse_stream_decoder {
public:
  anthropic_stream_decoder(const provider_endpoint& ep, bool wants_usage, system_time now)
    : sse_stream_decoder(ep, "message_stop", now), wants_usage_(wants_usage),
      created_(unix_seconds(now)) {}

private:
  json chunk(json delta, json finish = nullptr) const {
    return {{"id", id_},
            {"object", "chat.completion.chunk"},
            {"created", created_},
            {"model", model_},
            {"choices",
             json::array({{{"index", 0}, {"delta", std::move(delta)},
                           {"finish_reason", std::move(finish)}}})}};
  }

  void emit(json c, std::vector<event>& out) {
    assembler_.observe(c);
    out.push_back({event::kind::chunk, std::move(c), {}});
  }

  void on_event(const sse_parser::sse_event& e, std::vector<event>& out) override {
    json data = json::parse(e.data, nullptr, false);
    if (data.is_discarded() || !data.is_object()) {
      fail_not_json(out);
      return;
    }
    const std::string type = data.value("type", e.event);
    if (type == "message_start") {
      const json& msg = data.contains("message") ? data["message"] : json::object();
      id_ = msg.value("id", "");
      model_ = msg.value("model", "");
      if (msg.contains("usage") && msg["usage"].is_object())
        usage_ = msg["usage"];
      emit(chunk({{"role", "assistant"}}), out);
    } else if (type == "content_block_start") {
      const json& block = data.contains("content_block") ? data["content_block"] : json::object();
      const long index = data.value("index", 0L);
      if (block.value("type", "") == "tool_use") {
        const long tool = static_cast<long>(tool_index_.size());
        tool_index_[index] = tool;
        emit(chunk({{"tool_calls",
                     json::array({{{"index", tool},
                                   {"id", block.value("id", "")},
                                   {"type", "function"},
                                   {"function", {{"name", block.value("name", "")},
                                                 {"arguments", ""}}}}})}}),
             out);
      } else if (block.value("type", "") == "text" && !block.value("text", "").empty()) {
        emit(chunk({{"content", block["text"]}}), out);
      }
    } else if (type == "content_block_delta") {
      const json& delta = data.contains("delta") ? data["delta"] : json::object();
      const std::string kind = delta.value("type", "");
      if (kind == "text_delta") {
        emit(chunk({{"content", delta.value("text", "")}}), out);
      } else if (kind == "input_json_delta") {
        const std::string part = delta.value("partial_json", "");
        auto tool = tool_index_.find(data.value("index", 0L));
        if (!part.empty() && tool != tool_index_.end())
          emit(chunk({{"tool_calls",
                       json::array({{{"index", tool->second},
                                     {"function", {{"arguments", part}}}}})}}),
               out);
      } else if (kind == "thinking_delta" && !delta.value("thinking", "").empty()) {
        // Extended thinking, as LiteLLM names it.
        emit(chunk({{"reasoning_content", delta["thinking"]}}), out);
      }
      // signature_delta: not part of the OpenAI answer.
    } else if (type == "message_delta") {
      if (data.contains("usage") && data["usage"].is_object())
        for (const auto& item : data["usage"].items())
          if (!item.value().is_null())
            usage_[item.key()] = item.value();
      const json& delta = data.contains("delta") ? data["delta"] : json::object();
      const json usage = openai_usage(usage_);
      assembler_.set_usage(usage);
      emit(chunk(json::object(), finish_reason_of(delta.contains("stop_reason")
                                                    ? delta["stop_reason"]
                                                    : json())),
           out);
      if (wants_usage_) {
        json u = chunk(json::object());
        u["choices"] = json::array();
        u["usage"] = usage;
        emit(std::move(u), out);
      }
    } else if (type == "message_stop") {
      done(out);
    } else if (type == "error") {
      fail_in_band(anthropic_error_status(data), e.data, out);
    }
    // ping, content_block_stop and unknown events: nothing to say.
  }

  const bool wants_usage_;
  const std::int64_t created_;
  std::string id_, model_;
  json usage_ = json::object();
  std::map<long, long> tool_index_; // content block index -> tool call index
};

} // namespace

upstream_request anthropic_request(const provider_endpoint& ep, const chat_request& request,
                                   bool stream) {
  upstream_request out;
  const json params = merged_params(ep, request);
  request_translator t;
  json system = json::array();
  json messages = json::array();
  if (request.messages.is_array())
    t.messages(request.messages, system, messages);
  if (t.problem) {
    out.error = *t.problem;
    return out;
  }
  json body = json::object();
  for (const auto& item : params.items())
    if (!is_openai_only(item.key()))
      body[item.key()] = item.value();
  body["model"] = ep.upstream_model;
  body["messages"] = std::move(messages);
  if (!system.empty())
    body["system"] = std::move(system);
  if (params.contains("max_tokens") && !params["max_tokens"].is_null())
    body["max_tokens"] = params["max_tokens"];
  else if (params.contains("max_completion_tokens") && !params["max_completion_tokens"].is_null())
    body["max_tokens"] = params["max_completion_tokens"];
  else
    body["max_tokens"] = anthropic_default_max_tokens;
  if (params.contains("stop")) {
    const json& stop = params["stop"];
    if (stop.is_string())
      body["stop_sequences"] = json::array({stop});
    else if (stop.is_array())
      body["stop_sequences"] = stop;
  }
  if (params.contains("tools") && params["tools"].is_array() && !params["tools"].empty())
    body["tools"] = request_translator::tools(params["tools"]);
  if (params.contains("tool_choice") && !params["tool_choice"].is_null())
    body["tool_choice"] = request_translator::tool_choice(params["tool_choice"]);
  if (params.contains("parallel_tool_calls") && params["parallel_tool_calls"] == false) {
    json& choice = body["tool_choice"];
    if (!choice.is_object())
      choice = {{"type", "auto"}};
    choice["disable_parallel_tool_use"] = true;
  }
  if (params.contains("user") && params["user"].is_string())
    body["metadata"] = {{"user_id", params["user"]}};
  if (stream)
    body["stream"] = true;
  out.ok = true;
  out.http.url = ep.url;
  out.http.headers = ep.headers;
  out.http.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return out;
}

decoded_answer decode_anthropic_message(const json& message, system_time now) {
  decoded_answer out;
  std::string text, reasoning;
  bool has_text = false;
  json calls = json::array();
  if (message.contains("content") && message["content"].is_array())
    for (const auto& block : message["content"]) {
      if (!block.is_object())
        continue;
      const std::string type = block.value("type", "");
      if (type == "text") {
        text += block.value("text", "");
        has_text = true;
      } else if (type == "thinking") {
        reasoning += block.value("thinking", "");
      } else if (type == "tool_use") {
        calls.push_back({{"id", block.value("id", "")},
                         {"type", "function"},
                         {"function",
                          {{"name", block.value("name", "")},
                           {"arguments", block.contains("input") ? block["input"].dump()
                                                                  : std::string("{}")}}}});
      }
    }
  json msg = {{"role", "assistant"}, {"content", has_text ? json(text) : json(nullptr)}};
  if (!calls.empty())
    msg["tool_calls"] = std::move(calls);
  // Extended thinking, as LiteLLM names it.
  if (!reasoning.empty())
    msg["reasoning_content"] = std::move(reasoning);
  const std::string finish =
    finish_reason_of(message.contains("stop_reason") ? message["stop_reason"] : json());
  out.completion = {{"id", message.value("id", "")},
                    {"object", "chat.completion"},
                    {"created", unix_seconds(now)},
                    {"model", message.value("model", "")},
                    {"choices", json::array({{{"index", 0},
                                              {"message", std::move(msg)},
                                              {"finish_reason", finish}}})}};
  if (message.contains("usage") && message["usage"].is_object()) {
    out.completion["usage"] = openai_usage(message["usage"]);
    read_usage(out.completion["usage"], out);
  }
  out.ok = true;
  read_first_choice(out);
  return out;
}

long anthropic_error_status(const json& body) {
  const json* err = body.is_object() && body.contains("error") ? &body["error"] : nullptr;
  const std::string type = err && err->is_object() ? err->value("type", "") : "";
  static const std::map<std::string, long, std::less<>> statuses = {
    {"invalid_request_error", 400}, {"authentication_error", 401},
    {"billing_error", 402},         {"permission_error", 403},
    {"not_found_error", 404},       {"request_too_large", 413},
    {"rate_limit_error", 429},      {"api_error", 500},
    {"timeout_error", 504},         {"overloaded_error", 529}};
  auto it = statuses.find(type);
  return it == statuses.end() ? 500 : it->second;
}

std::unique_ptr<stream_decoder> make_anthropic_stream_decoder(const provider_endpoint& ep,
                                                              bool wants_usage,
                                                              system_time now) {
  return std::make_unique<anthropic_stream_decoder>(ep, wants_usage, now);
}

} // namespace switchyard
