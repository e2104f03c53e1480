// The OpenAI body build_upstream_request serialises directly: byte for
// byte what dumping the merged JSON object gives (TRANSPORT.md section 2:
// the caller's keys over litellm_params, model replaced, router keys out).

#include "transport/transport_test.hpp"

#include "switchyard/provider.hpp"

using namespace switchyard;
using namespace switchyard::test;

namespace {

/// The body as the object it stands for, dumped: the expected bytes.
std::string expected_body(const provider_endpoint& ep, const chat_request& req, bool stream) {
  nlohmann::json body = ep.param_defaults;
  for (auto it = req.body.begin(); it != req.body.end(); ++it)
    body[it.key()] = it.value();
  for (const char* k : {"model", "messages", "stream", "metadata", "num_retries", "mock_response"})
    body.erase(k);
  body["model"] = ep.upstream_model;
  body["messages"] = req.messages;
  if (stream) {
    body["stream"] = true;
    if (!body["stream_options"].is_object())
      body["stream_options"] = nlohmann::json::object();
    body["stream_options"]["include_usage"] = true;
  } else {
    body.erase("stream_options");
  }
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

TEST_CASE("the OpenAI body is the merged object's bytes, each key once and in order",
          "[transport]") {
  upstream_process up;
  auto config = config_of(
    {openai_at(up, "chat", "oa", "", {{"temperature", 0.2}, {"max_tokens", 5}, {"seed", 1}})});
  const auto& ep = *config.deployments[0].endpoint;
  REQUIRE(ep.param_defaults.contains("temperature"));
  const auto req = request_of({
    {"model", "chat"},
    {"messages", {{{"role", "system"}, {"content", "be \"brief\"\n\u00e9\u4e2d"}},
                  {{"role", "user"}, {"content", "hi"}}}},
    {"temperature", 0.9},              // over the deployment's 0.2
    {"user", "u-1"},
    {"a\"quote", 1},                   // a key that needs escaping
    {"\u00fcber", "x"},                // and a non-ASCII one
    {"metadata", {{"tag", "t"}}},      // a router key: never sent
    {"num_retries", 2},
    {"stream_options", {{"include_usage", false}, {"other", 1}}},
  });
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    const auto built = build_upstream_request(ep, req, stream);
    REQUIRE(built.ok);
    CHECK(built.http.body == expected_body(ep, req, stream));
    const auto body = nlohmann::json::parse(built.http.body);
    CHECK(body["temperature"] == 0.9);
    CHECK(body["max_tokens"] == 5);
    CHECK_FALSE(body.contains("metadata"));
    CHECK(body.contains("stream_options") == stream);
    if (stream)
      CHECK(body["stream_options"] == nlohmann::json{{"include_usage", true}, {"other", 1}});
  }
}
