// Stream decoding (TRANSPORT.md sections 3 and 5) on recorded streams, fed
// whole, a byte at a time and in uneven splits: the events must not depend
// on where the network cut the bytes.

#include "support/provider_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using nlohmann::json;
using event = stream_decoder::event;

namespace {

struct decoded_stream {
  std::vector<event> events;
  decoded_answer summary;

  std::vector<json> chunks() const {
    std::vector<json> out;
    for (const auto& e : events)
      if (e.what == event::kind::chunk)
        out.push_back(e.chunk);
    return out;
  }
  const event& last() const { return events.back(); }
};

// Feeds `body` in pieces of `split` bytes (0: all at once), then finish().
decoded_stream decode(const provider_endpoint& ep, const chat_request& req,
                      const std::string& body, std::size_t split, bool finish = true) {
  auto decoder = make_stream_decoder(ep, req, fixed_now());
  decoded_stream out;
  if (split == 0) {
    decoder->feed(body, out.events);
  } else {
    for (std::size_t at = 0; at < body.size(); at += split)
      decoder->feed(std::string_view(body).substr(at, split), out.events);
  }
  if (finish)
    decoder->finish(out.events);
  out.summary = decoder->summary();
  return out;
}

// The same events whatever the split.
decoded_stream decode_every_split(const provider_endpoint& ep, const chat_request& req,
                                  const std::string& body) {
  const decoded_stream whole = decode(ep, req, body, 0);
  for (std::size_t split : {1u, 2u, 3u, 7u, 64u, 1000u}) {
    INFO("split " << split);
    const decoded_stream parts = decode(ep, req, body, split);
    REQUIRE(parts.events.size() == whole.events.size());
    for (std::size_t i = 0; i < parts.events.size(); ++i) {
      CHECK(parts.events[i].what == whole.events[i].what);
      CHECK(parts.events[i].chunk == whole.events[i].chunk);
      CHECK(parts.events[i].error.message == whole.events[i].error.message);
    }
    CHECK(parts.summary.completion.value() == whole.summary.completion.value());
  }
  return whole;
}

std::shared_ptr<const provider_endpoint> openai_ep() {
  return endpoint_for({{"model", "openai/gpt-4o-mini"}, {"api_key", "sk-0123456789abcdef"}});
}
std::shared_ptr<const provider_endpoint> anthropic_ep() {
  return endpoint_for({{"model", "anthropic/claude"}, {"api_key", "sk-ant-0123456789"}});
}

chat_request streamed(bool include_usage) {
  json body = {{"stream", true}};
  if (include_usage)
    body["stream_options"] = {{"include_usage", true}};
  return request_with(user_says("hi"), body);
}

} // namespace

TEST_CASE("provider stream: openai chunks pass in order; the usage chunk only when the "
          "caller asked") {
  const std::string body = recorded("openai_stream.txt");
  const auto quiet = decode_every_split(*openai_ep(), streamed(false), body);
  const auto chunks = quiet.chunks();
  REQUIRE(chunks.size() == 4);
  CHECK(chunks[0]["choices"][0]["delta"] == json({{"role", "assistant"}, {"content", ""}}));
  CHECK(chunks[1]["choices"][0]["delta"]["content"] == "Hello");
  CHECK(chunks[2]["choices"][0]["delta"]["content"] == " there!");
  CHECK(chunks[3]["choices"][0]["finish_reason"] == "stop");
  CHECK(quiet.last().what == event::kind::done);
  CHECK(quiet.events.size() == 5);
  // Usage still recorded for tpm accounting.
  CHECK(quiet.summary.prompt_tokens == 9u);
  CHECK(quiet.summary.completion_tokens == 3u);
  CHECK(quiet.summary.content == "Hello there!");
  CHECK(quiet.summary.finish_reason == "stop");
  CHECK(quiet.summary.completion == json::parse(R"({
    "id": "chatcmpl-123", "object": "chat.completion", "created": 1694268190,
    "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "Hello there!"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}})"));

  const auto asked = decode_every_split(*openai_ep(), streamed(true), body);
  REQUIRE(asked.chunks().size() == 5);
  CHECK(asked.chunks()[4]["choices"] == json::array());
  CHECK(asked.chunks()[4]["usage"]["total_tokens"] == 12);
}

TEST_CASE("provider stream: azure's prompt-filter chunk is dropped; its id and model do not "
          "stick") {
  const auto ep = endpoint_for({{"model", "azure/d"}, {"api_base", "https://r.openai.azure.com"},
                                {"api_key", "azure-key-0123456789"}});
  const auto s = decode_every_split(*ep, streamed(false), recorded("azure_stream.txt"));
  const auto chunks = s.chunks();
  REQUIRE(chunks.size() == 3);
  CHECK(chunks[0]["choices"][0]["delta"]["role"] == "assistant");
  CHECK(chunks[1]["choices"][0]["delta"]["content"] == "Bonjour");
  CHECK(chunks[2]["choices"][0]["finish_reason"] == "stop");
  CHECK(s.last().what == event::kind::done);
  CHECK(s.summary.completion["id"] == "chatcmpl-AzS1");
  CHECK(s.summary.completion["model"] == "gpt-4o-2024-08-06");
  CHECK(s.summary.completion["created"] == 1730000001);
  CHECK(s.summary.content == "Bonjour");
  CHECK(s.summary.prompt_tokens == 11u);
  CHECK(s.summary.completion_tokens == 2u);
}

TEST_CASE("provider stream: openai tool-call fragments assemble by index") {
  const auto s = decode_every_split(*openai_ep(), streamed(false),
                                    recorded("openai_stream_tools.txt"));
  CHECK(s.chunks().size() == 5);
  CHECK(s.last().what == event::kind::done);
  const json& message = s.summary.completion["choices"][0]["message"];
  CHECK(message["content"].is_null());
  CHECK(message["tool_calls"] == json::parse(R"([
    {"id": "call_abc", "type": "function",
     "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
    {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}])"));
  CHECK(s.summary.finish_reason == "tool_calls");
  CHECK_FALSE(s.summary.prompt_tokens);
}

TEST_CASE("provider stream: an in-band openai error is an error event with the mapped kind "
          "(CRLF lines)") {
  const auto s = decode_every_split(*openai_ep(), streamed(false),
                                    recorded("openai_stream_error.txt"));
  REQUIRE(s.events.size() == 2);
  CHECK(s.events[0].what == event::kind::chunk);
  CHECK(s.last().what == event::kind::error);
  CHECK(s.last().error.kind == error_kind::rate_limit);
  CHECK(s.last().error.message
        == "OpenAIException - 200: Rate limit reached for gpt-4o in organization org-x on "
           "tokens per min (TPM)");
  CHECK(s.summary.content == "Hi");
}

TEST_CASE("provider stream: a stream that ends before [DONE] is an error; bytes after "
          "[DONE] are ignored") {
  std::string body = recorded("openai_stream.txt");
  const std::string cut = body.substr(0, body.find("data: [DONE]"));
  const auto s = decode(*openai_ep(), streamed(false), cut, 5);
  CHECK(s.chunks().size() == 4);
  CHECK(s.last().what == event::kind::error);
  CHECK(s.last().error.kind == error_kind::api_connection);
  CHECK(s.last().error.message
        == "APIConnectionError: the stream from https://api.openai.com ended before [DONE]");
  // Nothing at all.
  const auto empty = decode(*openai_ep(), streamed(false), "", 0);
  REQUIRE(empty.events.size() == 1);
  CHECK(empty.last().what == event::kind::error);
  // After [DONE], nothing more is emitted, and finish() adds nothing.
  const auto extra = decode(*openai_ep(), streamed(false), body + "data: {\"x\":1}\n\n", 0);
  CHECK(extra.last().what == event::kind::done);
  CHECK(extra.chunks().size() == 4);
  // A final event without its blank line still counts when the body ends.
  const auto no_blank = decode(*openai_ep(), streamed(false), "data: [DONE]", 0);
  REQUIRE(no_blank.events.size() == 1);
  CHECK(no_blank.last().what == event::kind::done);
  // An event that is not JSON.
  const auto garbage = decode(*openai_ep(), streamed(false), "data: {oops\n\n", 0);
  CHECK(garbage.last().what == event::kind::error);
  CHECK(garbage.last().error.kind == error_kind::internal_server);
}

TEST_CASE("provider stream: anthropic events become OpenAI chunks") {
  const auto s = decode_every_split(*anthropic_ep(), streamed(false),
                                    recorded("anthropic_stream.txt"));
  const auto chunks = s.chunks();
  REQUIRE(chunks.size() == 7);
  const auto delta = [&](std::size_t i) { return chunks[i]["choices"][0]["delta"]; };
  CHECK(chunks[0]["id"] == "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY");
  CHECK(chunks[0]["object"] == "chat.completion.chunk");
  CHECK(chunks[0]["model"] == "claude-3-5-sonnet-20241022");
  CHECK(chunks[0]["created"] == 1767225600);
  CHECK(delta(0) == json({{"role", "assistant"}}));
  CHECK(delta(1) == json({{"content", "Okay, let's check"}}));
  CHECK(delta(2) == json({{"content", " the weather."}}));
  CHECK(delta(3) == json::parse(R"({"tool_calls": [{"index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}]})"));
  CHECK(delta(4) == json::parse(R"({"tool_calls": [{"index": 0,
        "function": {"arguments": "{\"location\":"}}]})"));
  CHECK(delta(5) == json::parse(R"({"tool_calls": [{"index": 0,
        "function": {"arguments": " \"San Francisco, CA\"}"}}]})"));
  CHECK(delta(6) == json::object());
  CHECK(chunks[6]["choices"][0]["finish_reason"] == "tool_calls");
  for (std::size_t i = 0; i < 6; ++i)
    CHECK(chunks[i]["choices"][0]["finish_reason"].is_null());
  CHECK(s.last().what == event::kind::done);

  CHECK(s.summary.content == "Okay, let's check the weather.");
  CHECK(s.summary.finish_reason == "tool_calls");
  CHECK(s.summary.prompt_tokens == 500u);  // 472 + 28 cache-read
  CHECK(s.summary.completion_tokens == 89u);
  CHECK(s.summary.completion["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        == "{\"location\": \"San Francisco, CA\"}");
  CHECK(json::parse(s.summary.completion["choices"][0]["message"]["tool_calls"][0]["function"]
                      ["arguments"].get<std::string>())
        == json({{"location", "San Francisco, CA"}}));
}

TEST_CASE("provider stream: anthropic usage chunk only for a caller that asked") {
  const auto s = decode_every_split(*anthropic_ep(), streamed(true),
                                    recorded("anthropic_stream.txt"));
  const auto chunks = s.chunks();
  REQUIRE(chunks.size() == 8);
  CHECK(chunks[7]["choices"] == json::array());
  CHECK(chunks[7]["usage"]["prompt_tokens"] == 500);
  CHECK(chunks[7]["usage"]["completion_tokens"] == 89);
  CHECK(chunks[7]["usage"]["total_tokens"] == 589);
}

TEST_CASE("provider stream: an anthropic error event is an error with the mapped kind") {
  const auto s = decode_every_split(*anthropic_ep(), streamed(false),
                                    recorded("anthropic_stream_error.txt"));
  REQUIRE(s.events.size() == 2);
  CHECK(s.events[0].what == event::kind::chunk);
  CHECK(s.last().what == event::kind::error);
  CHECK(s.last().error.kind == error_kind::internal_server);
  CHECK(s.last().error.message == "AnthropicException - 529: Overloaded");

  const std::string limited =
    "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
    "\"message\":\"slow down\"}}\n\n";
  const auto r = decode(*anthropic_ep(), streamed(false), limited, 1);
  CHECK(r.last().error.kind == error_kind::rate_limit);
}

TEST_CASE("provider stream: an anthropic stream cut before message_stop is an error") {
  const std::string body = recorded("anthropic_stream.txt");
  const std::string cut = body.substr(0, body.find("event: message_delta"));
  const auto s = decode(*anthropic_ep(), streamed(false), cut, 1);
  CHECK(s.chunks().size() == 6);
  CHECK(s.last().what == event::kind::error);
  CHECK(s.last().error.kind == error_kind::api_connection);
  CHECK(s.last().error.message
        == "APIConnectionError: the stream from https://api.anthropic.com ended before "
           "message_stop");
  CHECK(s.summary.content == "Okay, let's check the weather.");
}

TEST_CASE("provider stream: anthropic extended thinking becomes reasoning_content") {
  const auto s = decode_every_split(*anthropic_ep(), streamed(false),
                                    recorded("anthropic_stream_thinking.txt"));
  const auto chunks = s.chunks();
  REQUIRE(chunks.size() == 4);
  CHECK(chunks[1]["choices"][0]["delta"] == json({{"reasoning_content", "2+2 is 4."}}));
  CHECK(chunks[2]["choices"][0]["delta"] == json({{"content", "4"}}));
  CHECK(chunks[3]["choices"][0]["finish_reason"] == "stop");
  const json& message = s.summary.completion["choices"][0]["message"];
  CHECK(message["content"] == "4");
  CHECK(message["reasoning_content"] == "2+2 is 4.");
  CHECK(s.summary.prompt_tokens == 12u);
  CHECK(s.summary.completion_tokens == 30u);
}

TEST_CASE("provider stream: a line longer than the bound is an error, not unbounded memory") {
  std::string huge = "data: \"";
  huge.append(max_stream_line + 1, 'x');
  const auto s = decode(*openai_ep(), streamed(false), huge, 0);
  REQUIRE(s.events.size() == 1);
  CHECK(s.last().what == event::kind::error);
  CHECK(s.last().error.kind == error_kind::internal_server);
  CHECK(s.last().error.message.find("sent a line over") != std::string::npos);
}
