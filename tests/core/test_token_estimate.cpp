#include "switchyard/token_estimate.hpp"

#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <string>

using namespace switchyard;
using nlohmann::json;

// The documented rule: 3 tokens of priming, plus per message 3 tokens of
// framing and ceil(bytes / 4) of each of its role, name, string content or
// text parts. Nothing else counts.

TEST_CASE("token estimate: a text is ceil(bytes / 4)", "[token_estimate]") {
  CHECK(estimate_text_tokens("") == 0);
  CHECK(estimate_text_tokens("a") == 1);
  CHECK(estimate_text_tokens("abc") == 1);
  CHECK(estimate_text_tokens("abcd") == 1);
  CHECK(estimate_text_tokens("abcde") == 2);
  CHECK(estimate_text_tokens("abcdefgh") == 2);
  CHECK(estimate_text_tokens("abcdefghi") == 3);
  CHECK(estimate_text_tokens(std::string(4000, 'x')) == 1000);
  CHECK(estimate_text_tokens(std::string(4001, 'x')) == 1001);
}

TEST_CASE("token estimate: bytes, not characters", "[token_estimate]") {
  // "é" is 2 bytes in UTF-8, "€" 3, "😀" 4.
  CHECK(estimate_text_tokens("\xC3\xA9") == 1);
  CHECK(estimate_text_tokens("\xC3\xA9\xC3\xA9\xC3\xA9") == 2);         // 6 bytes
  CHECK(estimate_text_tokens("\xE2\x82\xAC\xE2\x82\xAC") == 2);         // 6 bytes
  CHECK(estimate_text_tokens("\xF0\x9F\x98\x80") == 1);                 // 4 bytes
  CHECK(estimate_text_tokens("\xF0\x9F\x98\x80" "a") == 2);             // 5 bytes
}

TEST_CASE("token estimate: an empty messages array is the priming alone", "[token_estimate]") {
  CHECK(estimate_prompt_tokens(json::array()) == 3);
}

TEST_CASE("token estimate: one message is priming, framing, role and content",
          "[token_estimate]") {
  // 3 + 3 + ceil(4/4) "user" + ceil(2/4) "hi"
  CHECK(estimate_prompt_tokens(json::array({{{"role", "user"}, {"content", "hi"}}})) == 8);
  // 3 + 3 + ceil(6/4) "system" + ceil(17/4) "You are helpful!!"
  CHECK(estimate_prompt_tokens(json::array(
          {{{"role", "system"}, {"content", "You are helpful!!"}}}))
        == 3 + 3 + 2 + 5);
}

TEST_CASE("token estimate: messages add up", "[token_estimate]") {
  const json messages = json::array({
    {{"role", "system"}, {"content", "Be brief."}},         // 3 + 2 + 3
    {{"role", "user"}, {"content", "What is 2 + 2?"}},      // 3 + 1 + 4
    {{"role", "assistant"}, {"content", "4"}},              // 3 + 3 + 1
    {{"role", "user"}, {"content", ""}},                    // 3 + 1 + 0
  });
  CHECK(estimate_prompt_tokens(messages) == 3 + (3 + 2 + 3) + (3 + 1 + 4) + (3 + 3 + 1)
                                                + (3 + 1 + 0));
}

TEST_CASE("token estimate: a name counts like the content", "[token_estimate]") {
  // "bob" 1, "alexandra" ceil(9/4) = 3.
  CHECK(estimate_prompt_tokens(json::array(
          {{{"role", "user"}, {"name", "bob"}, {"content", "hi"}}}))
        == 3 + 3 + 1 + 1 + 1);
  CHECK(estimate_prompt_tokens(json::array(
          {{{"role", "user"}, {"name", "alexandra"}, {"content", "hi"}}}))
        == 3 + 3 + 1 + 3 + 1);
}

TEST_CASE("token estimate: the text parts of a content array count, nothing else",
          "[token_estimate]") {
  const json content = json::array({
    {{"type", "text"}, {"text", "describe this"}},                      // ceil(13/4) = 4
    {{"type", "image_url"}, {"image_url", {{"url", "https://example.com/a-long-url.png"}}}},
    {{"type", "text"}, {"text", "briefly"}},                            // ceil(7/4) = 2
    "not an object",
    42,
  });
  CHECK(estimate_prompt_tokens(json::array({{{"role", "user"}, {"content", content}}}))
        == 3 + 3 + 1 + 4 + 2);
  // An array without text parts counts the framing and role only.
  CHECK(estimate_prompt_tokens(json::array(
          {{{"role", "user"},
            {"content", json::array({{{"type", "image_url"}, {"image_url", {{"url", "x"}}}}})}}}))
        == 3 + 3 + 1);
}

TEST_CASE("token estimate: other fields and non-string values count nothing",
          "[token_estimate]") {
  // content null (a tool-calling assistant turn): framing and role only;
  // tool_calls and other fields are not estimated.
  const json tool_turn = {{"role", "assistant"},
                          {"content", nullptr},
                          {"tool_calls", json::array({{{"id", "call_1"},
                                                       {"type", "function"},
                                                       {"function", {{"name", "f"},
                                                                     {"arguments", "{}"}}}}})}};
  CHECK(estimate_prompt_tokens(json::array({tool_turn})) == 3 + 3 + 3); // "assistant"
  // A numeric role or name or content counts 0; the message's framing stays.
  CHECK(estimate_prompt_tokens(json::array({{{"role", 7}, {"name", 8}, {"content", 9}}}))
        == 3 + 3);
  // No fields at all: framing only.
  CHECK(estimate_prompt_tokens(json::array({json::object()})) == 3 + 3);
  // An object as content counts 0.
  CHECK(estimate_prompt_tokens(json::array(
          {{{"role", "user"}, {"content", {{"text", "hidden in an object"}}}}}))
        == 3 + 3 + 1);
}

TEST_CASE("token estimate: entries that are not objects are skipped, framing included",
          "[token_estimate]") {
  const json messages = json::array({"hello there", 12, nullptr, json::array({1}),
                                     {{"role", "user"}, {"content", "hi"}}});
  CHECK(estimate_prompt_tokens(messages) == 8);
}

TEST_CASE("token estimate: anything but an array counts 0", "[token_estimate]") {
  CHECK(estimate_prompt_tokens(json()) == 0);
  CHECK(estimate_prompt_tokens(json::object()) == 0);
  CHECK(estimate_prompt_tokens(json{{"role", "user"}, {"content", "hi"}}) == 0);
  CHECK(estimate_prompt_tokens(json("a long prompt passed as a string")) == 0);
  CHECK(estimate_prompt_tokens(json(1234)) == 0);
}
