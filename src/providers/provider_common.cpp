#include "provider_common.hpp"

#include <limits>

namespace switchyard {

bool sse_parser::feed(std::string_view bytes, std::vector<sse_event>& out) {
  for (char c : bytes) {
    if (skip_lf_) {
      skip_lf_ = false;
      if (c == '\n')
        continue;
    }
    if (c == '\n' || c == '\r') {
      skip_lf_ = c == '\r';
      line(partial_, out);
      partial_.clear();
      continue;
    }
    if (partial_.size() >= max_line)
      return false;
    partial_ += c;
  }
  return true;
}

void sse_parser::finish(std::vector<sse_event>& out) {
  if (!partial_.empty()) {
    line(partial_, out);
    partial_.clear();
  }
  line({}, out);
}

void sse_parser::line(std::string_view text, std::vector<sse_event>& out) {
  if (text.empty()) {
    if (has_data_)
      out.push_back(std::move(current_));
    current_ = {};
    has_data_ = false;
    return;
  }
  if (text.front() == ':')
    return;
  const auto colon = text.find(':');
  std::string_view field = text.substr(0, colon);
  std::string_view value = colon == std::string_view::npos ? std::string_view()
                                                           : text.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field == "data") {
    if (has_data_)
      current_.data += '\n';
    current_.data.append(value);
    has_data_ = true;
  } else if (field == "event") {
    current_.event = std::string(value);
  }
}

namespace {

long index_of(const nlohmann::json& obj) {
  auto i = obj.find("index");
  return i != obj.end() && i->is_number_integer() ? i->get<long>() : 0;
}

std::string string_of(const nlohmann::json& obj, const char* key) {
  auto i = obj.find(key);
  return i != obj.end() && i->is_string() ? i->get<std::string>() : std::string();
}

} // namespace

void stream_assembler::observe(const nlohmann::json& chunk) {
  if (!chunk.is_object())
    return;
  for (const char* key : {"id", "model", "created", "system_fingerprint"}) {
    // The first real value: an empty id or a created of 0 says nothing.
    auto v = chunk.find(key);
    const bool empty = v == chunk.end() || v->is_null() || (v->is_string() && v->empty())
                       || (v->is_number() && *v == 0);
    if (!empty && !meta_.contains(key))
      meta_[key] = *v;
  }
  auto usage = chunk.find("usage");
  if (usage != chunk.end() && usage->is_object())
    usage_ = *usage;
  auto list = chunk.find("choices");
  if (list == chunk.end() || !list->is_array())
    return;
  for (const auto& c : *list) {
    if (!c.is_object())
      continue;
    choice& ch = choices_[index_of(c)];
    auto finish = c.find("finish_reason");
    if (finish != c.end() && finish->is_string())
      ch.finish_reason = *finish;
    auto delta = c.find("delta");
    if (delta == c.end() || !delta->is_object())
      continue;
    if (auto role = string_of(*delta, "role"); !role.empty())
      ch.role = role;
    auto content = delta->find("content");
    if (content != delta->end() && content->is_string()) {
      ch.content += content->get_ref<const std::string&>();
      ch.has_content = true;
    }
    ch.refusal += string_of(*delta, "refusal");
    ch.reasoning += string_of(*delta, "reasoning_content");
    auto calls = delta->find("tool_calls");
    if (calls == delta->end() || !calls->is_array())
      continue;
    for (const auto& call : *calls) {
      if (!call.is_object())
        continue;
      tool_call& tc = ch.tool_calls[index_of(call)];
      if (auto id = string_of(call, "id"); !id.empty())
        tc.id = id;
      if (auto type = string_of(call, "type"); !type.empty())
        tc.type = type;
      auto fn = call.find("function");
      if (fn != call.end() && fn->is_object()) {
        tc.name += string_of(*fn, "name");
        tc.arguments += string_of(*fn, "arguments");
      }
    }
  }
}

decoded_answer stream_assembler::summary() const {
  decoded_answer out;
  out.ok = true;
  nlohmann::json completion = meta_;
  completion["object"] = "chat.completion";
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [index, ch] : choices_) {
    nlohmann::json message = {{"role", ch.role}};
    message["content"] = ch.has_content || ch.tool_calls.empty()
                           ? nlohmann::json(ch.content)
                           : nlohmann::json(nullptr);
    if (!ch.refusal.empty())
      message["refusal"] = ch.refusal;
    if (!ch.reasoning.empty())
      message["reasoning_content"] = ch.reasoning;
    if (!ch.tool_calls.empty()) {
      nlohmann::json calls = nlohmann::json::array();
      for (const auto& [i, tc] : ch.tool_calls)
        calls.push_back({{"id", tc.id},
                         {"type", tc.type},
                         {"function", {{"name", tc.name}, {"arguments", tc.arguments}}}});
      message["tool_calls"] = std::move(calls);
    }
    list.push_back({{"index", index}, {"message", std::move(message)},
                    {"finish_reason", ch.finish_reason}});
  }
  completion["choices"] = std::move(list);
  if (usage_.is_object())
    completion["usage"] = usage_;
  out.completion = std::move(completion);
  read_first_choice(out);
  if (usage_.is_object())
    read_usage(usage_, out);
  return out;
}

void sse_stream_decoder::deliver(std::vector<sse_parser::sse_event>& events,
                                 std::vector<event>& out) {
  for (auto& e : events)
    if (!ended_)
      on_event(e, out);
}

void sse_stream_decoder::feed(std::string_view bytes, std::vector<event>& out) {
  if (ended_)
    return;
  std::vector<sse_parser::sse_event> events;
  const bool fits = sse_.feed(bytes, events);
  deliver(events, out);
  if (!fits && !ended_)
    fail(router_error::make(error_kind::internal_server,
                            "the stream from " + ep_.host + " sent a line over "
                              + std::to_string(sse_parser::max_line) + " bytes"),
         out);
}

void sse_stream_decoder::finish(std::vector<event>& out) {
  if (ended_)
    return;
  std::vector<sse_parser::sse_event> events;
  sse_.finish(events);
  deliver(events, out);
  if (!ended_)
    fail(router_error::make(error_kind::api_connection,
                            "APIConnectionError: the stream from " + ep_.host
                              + " ended before " + std::string(end_marker_)),
         out);
}

void sse_stream_decoder::done(std::vector<event>& out) {
  ended_ = true;
  out.push_back({event::kind::done, {}, {}});
}

void sse_stream_decoder::fail(router_error e, std::vector<event>& out) {
  ended_ = true;
  out.push_back({event::kind::error, {}, std::move(e)});
}

void sse_stream_decoder::fail_in_band(long status, std::string_view body,
                                      std::vector<event>& out) {
  router_error mapped = map_provider_error(ep_.provider->kind, status, {}, body, now_);
  mapped.message = redact_secrets(ep_, std::move(mapped.message));
  fail(std::move(mapped), out);
}

void sse_stream_decoder::fail_not_json(std::vector<event>& out) {
  fail(router_error::make(error_kind::internal_server,
                          "the stream from " + ep_.host
                            + " sent an event that is not a JSON object"),
       out);
}

void read_usage(const nlohmann::json& usage, decoded_answer& out) {
  const auto count = [&usage](const char* key) -> std::optional<std::uint32_t> {
    auto v = usage.find(key);
    if (v == usage.end() || !v->is_number_unsigned())
      return std::nullopt;
    return token_count(v->get<std::uint64_t>());
  };
  if (!usage.is_object())
    return;
  out.prompt_tokens = count("prompt_tokens");
  out.completion_tokens = count("completion_tokens");
}

std::uint32_t token_count(std::uint64_t reported) {
  return static_cast<std::uint32_t>(
    std::min<std::uint64_t>(reported, std::numeric_limits<std::uint32_t>::max()));
}

void read_first_choice(decoded_answer& out) {
  const nlohmann::json& c = out.completion.value();
  auto list = c.find("choices");
  if (list == c.end() || !list->is_array() || list->empty() || !(*list)[0].is_object())
    return;
  const auto& first = (*list)[0];
  out.finish_reason = string_of(first, "finish_reason");
  auto message = first.find("message");
  if (message != first.end() && message->is_object())
    out.content = string_of(*message, "content");
}

std::int64_t unix_seconds(system_time t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

} // namespace switchyard
