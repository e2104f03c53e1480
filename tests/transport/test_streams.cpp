// Streams through the real router: chunks in order, failover before the
// first-chunk gate, no failover after it, time to first token.

#include "transport/transport_test.hpp"

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;

namespace {

chat_request streamed(const std::string& group) {
  return request_of({{"model", group},
                     {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                     {"stream", true}});
}

/// `bad` (weight 1000: picked first) fails as `scenario`; `good` answers
/// "from good".
router_config failover_pair(const upstream_process& up, const std::string& bad_dialect,
                            const std::string& scenario, double stream_timeout = 0) {
  ojson extra = {{"weight", 1000}};
  if (stream_timeout > 0)
    extra["stream_timeout"] = stream_timeout;
  ojson bad = bad_dialect == "anthropic" ? anthropic_at(up, "chat", "bad", scenario, extra)
              : bad_dialect == "azure"   ? azure_at(up, "chat", "bad", scenario, extra)
                                         : openai_at(up, "chat", "bad", scenario, extra);
  return config_of({bad, openai_at(up, "chat", "good", "content=from%20good,chunks=2,key=good",
                                   {{"weight", 1}})},
                   {{"enable_weighted_failover", true}});
}

} // namespace

TEST_CASE("chunks arrive in order through async_stream, each dialect", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  auto obs = std::make_shared<counting_observer>();
  router_options opts;
  opts.observer = obs;
  const std::string sc = "chunks=5,chunk_delay_ms=5,content=a%20b%20c%20d%20e";
  router r(config_of(three_dialects(up, sc)), opts);
  for (const char* g : {"o", "a", "n"}) {
    INFO(g);
    stream_capture cap;
    r.async_stream(streamed(g), cap.on_chunk(), cap.on_done());
    auto res = cap.wait();
    INFO(res.error.message);
    REQUIRE(res.ok);
    CHECK(cap.text() == "a b c d e");
    CHECK_FALSE(cap.chunk_after_done);
    // Each content piece is its own chunk, in the order sent.
    std::vector<std::string> pieces;
    for (auto c : cap.chunks)
      if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content")
          && c["choices"][0]["delta"]["content"].is_string()
          && !c["choices"][0]["delta"]["content"].get<std::string>().empty())
        pieces.push_back(c["choices"][0]["delta"]["content"]);
    CHECK(pieces == std::vector<std::string>{"a ", "b ", "c ", "d ", "e"});
    for (auto c : cap.chunks)
      CHECK(c["object"] == "chat.completion.chunk");
    CHECK(res.content == "a b c d e");
    CHECK(res.usage_estimated == false);
    CHECK(res.finish_reason == "stop");
  }
  // Time to first token is recorded for every streamed attempt.
  auto seen = obs->attempts();
  REQUIRE(seen.size() == 3);
  for (const auto& a : seen) {
    INFO(a.deployment_id);
    CHECK_FALSE(a.outcome);
    REQUIRE(a.first_token_ms);
    CHECK(*a.first_token_ms >= 0);
  }
}

TEST_CASE("a stream failing before its first chunk fails over unseen", "[transport]") {
  drop_proxy_env();
  struct failure {
    std::string dialect, scenario;
    error_kind kind;
    double stream_timeout;
  };
  for (const auto& f : std::vector<failure>{
         {"openai", "status=500", error_kind::internal_server, 0},
         {"azure", "status=429", error_kind::rate_limit, 0},
         {"anthropic", "error=overloaded", error_kind::internal_server, 0},
         {"openai", "reset", error_kind::api_connection, 0},
         {"openai", "empty", error_kind::internal_server, 0},
         {"anthropic", "empty", error_kind::internal_server, 0},
         {"openai", "stream_error_after=0", error_kind::internal_server, 0},
         {"openai", "first_chunk_delay_ms=5000,content=from%20bad", error_kind::timeout, 0.3},
         {"anthropic", "hang", error_kind::timeout, 0.3},
         // Cut after the role chunk (and Anthropic's start, block start and
         // ping): nothing committed yet.
         {"openai", "cut_after=1", error_kind::api_connection, 0},
         {"anthropic", "cut_after=3", error_kind::api_connection, 0},
         {"anthropic", "stream_error_after=0", error_kind::internal_server, 0},
       }) {
    DYNAMIC_SECTION(f.dialect << " " << f.scenario) {
      upstream_process up;
      router r(failover_pair(up, f.dialect, f.scenario, f.stream_timeout));
      stream_capture cap;
      r.async_stream(streamed("chat"), cap.on_chunk(), cap.on_done());
      auto res = cap.wait();
      INFO(res.error.message);
      REQUIRE(res.ok);
      CHECK(res.deployment_id == "good");
      REQUIRE(res.attempts.size() == 2);
      CHECK(res.attempts[0].deployment_id == "bad");
      if (f.kind != error_kind::internal_server || f.scenario != "empty")
        CHECK(res.attempts[0].outcome == f.kind);
      else
        CHECK(res.attempts[0].outcome.has_value());
      CHECK(cap.text() == "from good");
      CHECK(calls_to(up, "key=good").size() == 1);
      if (f.kind == error_kind::timeout) {
        // The slow call was dropped, its connection with it.
        auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] >= 1; });
        CHECK(s["connections_closed_by_client"] >= 1);
      }
    }
  }
}

TEST_CASE("a stream cut after its first chunk ends with an error, no failover",
          "[transport]") {
  drop_proxy_env();
  for (const std::string scenario : {"chunks=6,cut_after=5,chunk_delay_ms=5",
                                     "chunks=6,stream_error_after=2,chunk_delay_ms=5"}) {
    for (const std::string dialect : {"openai", "anthropic"}) {
      DYNAMIC_SECTION(dialect << " " << scenario) {
        upstream_process up;
        router r(failover_pair(up, dialect, scenario));
        stream_capture cap;
        r.async_stream(streamed("chat"), cap.on_chunk(), cap.on_done());
        auto res = cap.wait();
        CHECK_FALSE(res.ok);
        CHECK_FALSE(cap.text().empty()); // it had started
        CHECK(cap.text().find("from good") == std::string::npos);
        CHECK(res.error.deployment_id == "bad");
        INFO(res.error.message);
        if (scenario.find("cut_after") != std::string::npos)
          CHECK(res.error.kind == error_kind::api_connection);
        CHECK(calls_to(up, "key=good").empty());
        REQUIRE(res.attempts.size() == 1);
      }
    }
  }
}

TEST_CASE("streamed tool calls are assembled into the answer, each dialect", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of(three_dialects(up, "tool_call")));
  const json tools = weather_tool();
  for (const char* g : {"o", "a", "n"}) {
    INFO(g);
    stream_capture cap;
    r.async_stream(request_of({{"model", g},
                               {"messages", {{{"role", "user"}, {"content", "weather tool"}}}},
                               {"tools", tools},
                               {"stream", true}}),
                   cap.on_chunk(), cap.on_done());
    auto res = cap.wait();
    INFO(res.error.message);
    REQUIRE(res.ok);
    REQUIRE_FALSE(cap.chunks.empty());
    // The role comes first, then the tool call's fragments.
    CHECK(cap.chunks.front()["choices"][0]["delta"]["role"] == "assistant");
    std::string args;
    for (auto c : cap.chunks) {
      auto& d = c["choices"][0]["delta"];
      if (d.contains("tool_calls"))
        args += d["tool_calls"][0]["function"].value("arguments", "");
    }
    CHECK(json::parse(args)["unit"] == "celsius");
    CHECK(res.finish_reason == "tool_calls");
    auto& tc = res.response["choices"][0]["message"]["tool_calls"];
    REQUIRE(tc.size() == 1);
    CHECK(tc[0]["function"]["name"] == "get_weather");
    CHECK(tc[0]["function"]["arguments"] == args);
    CHECK(res.response["object"] == "chat.completion");
  }
}

TEST_CASE("a stream cut after the commit counts against its deployment", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  auto obs = std::make_shared<counting_observer>();
  router_options opts;
  opts.observer = obs;
  router r(failover_pair(up, "openai", "chunks=6,cut_after=3"), opts);
  stream_capture cap;
  r.async_stream(streamed("chat"), cap.on_chunk(), cap.on_done());
  auto res = cap.wait();
  REQUIRE_FALSE(res.ok);
  auto seen = obs->attempts();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].deployment_id == "bad");
  CHECK(seen[0].outcome == error_kind::api_connection);
  CHECK(seen[0].first_token_ms.has_value());
}

TEST_CASE("a streamed request through async_complete gets the assembled answer", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({anthropic_at(up, "n", "n1", "chunks=4")}));
  std::promise<route_result> p;
  r.async_complete(streamed("n"), [&](route_result res) { p.set_value(std::move(res)); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  auto res = f.get();
  INFO(res.error.message);
  REQUIRE(res.ok);
  CHECK(res.content == "Hello from the test upstream");
  CHECK(res.response["object"] == "chat.completion");
  CHECK(res.response["choices"][0]["message"]["content"] == "Hello from the test upstream");
  CHECK(res.usage_estimated == false);
  CHECK(calls_to(up, "/v1/messages")[0]["body"]["stream"] == true);
}

TEST_CASE("latency routing ranks streamed requests by time to first token", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  // `early`: first token at once, the whole answer slow. `late`: the
  // first token late, the whole answer sooner. By whole-call latency
  // `late` wins; by time to first token, which streams use, `early`.
  router r(config_of({openai_at(up, "chat", "early", "chunks=3,chunk_delay_ms=60,key=early"),
                      openai_at(up, "chat", "late", "chunks=1,first_chunk_delay_ms=150,key=late")},
                     {{"routing_strategy", "latency-based-routing"}}));
  std::vector<std::string> served;
  for (int i = 0; i < 8; ++i) {
    stream_capture cap;
    r.async_stream(streamed("chat"), cap.on_chunk(), cap.on_done());
    auto res = cap.wait();
    INFO(res.error.message);
    REQUIRE(res.ok);
    served.push_back(res.deployment_id);
  }
  // Both were measured (unseen deployments go first), then only `early`.
  CHECK(calls_to(up, "key=late").size() >= 1);
  CHECK(std::vector<std::string>(served.begin() + 3, served.end())
        == std::vector<std::string>(5, "early"));
}
