// The transport boundary through the real router: streamed requests and
// the first-chunk gate, cancellation, total_timeout, the observer, and the
// chat.completion body, with mock deployments and an injected transport.

#include "support/router_test.hpp"

#include "switchyard/mock_transport.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/token_estimate.hpp"
#include "switchyard/transport.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;

namespace {

struct stream_capture {
  std::mutex mutex;
  std::vector<json> chunks;
  std::promise<route_result> result;
};

// Streams `r` through the router and returns the chunks and the answer.
std::pair<std::vector<json>, route_result> stream(router& rt, chat_request r) {
  r.stream = true;
  auto cap = std::make_shared<stream_capture>();
  auto future = cap->result.get_future();
  rt.async_stream(
    std::move(r),
    [cap](const json& chunk) {
      std::lock_guard<std::mutex> lock(cap->mutex);
      cap->chunks.push_back(chunk);
    },
    [cap](route_result res) { cap->result.set_value(std::move(res)); });
  auto res = future.get();
  std::lock_guard<std::mutex> lock(cap->mutex);
  return {cap->chunks, std::move(res)};
}

std::string delta_text(const std::vector<json>& chunks) {
  std::string text;
  for (const auto& c : chunks)
    for (const auto& choice : c.at("choices"))
      if (choice.contains("delta") && choice["delta"].contains("content"))
        text += choice["delta"]["content"].get<std::string>();
  return text;
}

// A transport that never answers by itself: it records each call and how
// many were cancelled, so tests see what the router did upstream.
class held_transport final : public transport {
public:
  struct state {
    std::mutex mutex;
    std::condition_variable changed;
    int started = 0;
    int cancelled = 0;
    std::vector<std::shared_ptr<call_sink>> sinks;
  };

  call_handle_ptr start(const call_spec&, std::shared_ptr<call_sink> sink) override {
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      ++st_->started;
      st_->sinks.push_back(std::move(sink));
    }
    st_->changed.notify_all();
    return std::make_unique<handle>(st_);
  }
  void wait_started(int n) {
    std::unique_lock<std::mutex> lock(st_->mutex);
    st_->changed.wait(lock, [&] { return st_->started >= n; });
  }
  void wait_cancelled(int n) {
    std::unique_lock<std::mutex> lock(st_->mutex);
    st_->changed.wait(lock, [&] { return st_->cancelled >= n; });
  }
  int cancelled() {
    std::lock_guard<std::mutex> lock(st_->mutex);
    return st_->cancelled;
  }
  // As a real transport: a stopping router ends the calls it holds.
  void stop() override {
    std::vector<std::shared_ptr<call_sink>> sinks;
    {
      std::lock_guard<std::mutex> lock(st_->mutex);
      sinks.swap(st_->sinks);
    }
    for (auto& s : sinks)
      s->on_done(shutdown_outcome());
  }
  std::shared_ptr<state> st_ = std::make_shared<state>();

private:
  struct handle final : call_handle {
    explicit handle(std::shared_ptr<state> s) : s_(std::move(s)) {}
    void cancel() noexcept override {
      {
        std::lock_guard<std::mutex> lock(s_->mutex);
        ++s_->cancelled;
      }
      s_->changed.notify_all();
    }
    std::shared_ptr<state> s_;
  };
};

const char* real_config = R"({
  "model_list": [{"model_name": "g",
                  "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-test"},
                  "model_info": {"id": "real"}}]})";

struct counting_observer final : router_observer {
  std::atomic<int> requests{0}, ok_requests{0}, attempts{0}, failed_attempts{0},
    cooldowns_started{0}, cooldowns_ended{0}, refused{0};
  void on_request(const request_event& e) override {
    ++requests;
    if (!e.error)
      ++ok_requests;
  }
  void on_attempt(const attempt_event& e) override {
    ++attempts;
    if (e.outcome)
      ++failed_attempts;
  }
  void on_cooldown(const cooldown_event& e) override {
    ++(e.started ? cooldowns_started : cooldowns_ended);
  }
  void on_admission_refused(const admission_event&) override { ++refused; }
};

} // namespace

TEST_CASE("a streamed mock request delivers its chunks, then the assembled answer",
          "[actors][stream]") {
  router rt(config_from(R"({"model_list": [{"model_name": "g",
      "litellm_params": {"model": "openai/gpt-4o", "mock_response": "hello there"},
      "model_info": {"id": "a"}}]})"),
            seeded_options(1));
  auto [chunks, r] = stream(rt, hi("g"));
  REQUIRE(r.ok);
  REQUIRE(chunks.size() == 2);
  CHECK(chunks[0].at("object") == "chat.completion.chunk");
  CHECK(chunks[0]["choices"][0]["delta"]["role"] == "assistant");
  CHECK(delta_text(chunks) == "hello there");
  CHECK(chunks[1]["choices"][0]["finish_reason"] == "stop");
  CHECK(r.content == "hello there");
  CHECK(r.response.at("object") == "chat.completion");
  CHECK(r.response.at("model") == "gpt-4o");
}

TEST_CASE("a non-streamed answer carries a chat.completion body whose model has no "
          "provider prefix", "[actors][stream]") {
  router rt(config_from(R"({"model_list": [{"model_name": "g",
      "litellm_params": {"model": "azure/eastus2-gpt4o", "mock_response": "hi back"},
      "model_info": {"id": "a"}}]})"),
            seeded_options(1));
  auto r = rt.complete(hi("g"));
  REQUIRE(r.ok);
  const auto& body = r.response;
  CHECK(body.at("object") == "chat.completion");
  CHECK(body.at("model") == "eastus2-gpt4o");
  CHECK(body["choices"][0]["message"]["content"] == "hi back");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["usage"]["total_tokens"].get<int>()
        == body["usage"]["prompt_tokens"].get<int>()
             + body["usage"]["completion_tokens"].get<int>());
  CHECK(r.usage_estimated);
}

TEST_CASE("a mock's chat.completion is built when first read, and is the body "
          "make_completion_body gives", "[actors][stream]") {
  router rt(config_from(R"({"model_list": [{"model_name": "g",
      "litellm_params": {"model": "openai/gpt-4o", "mock_response": "hi back"},
      "model_info": {"id": "a"}}]})"),
            seeded_options(1));
  auto r = rt.complete(hi("g"));
  REQUIRE(r.ok);
  // Nothing read it yet: no JSON tree was made for it.
  CHECK(r.response.deferred());
  CHECK(r.response.is_object());
  const json body = r.response;
  CHECK_FALSE(r.response.deferred());
  const auto id = body.at("id").get<std::string>();
  REQUIRE(id.rfind("chatcmpl-mock-", 0) == 0);
  const auto number = std::stoull(id.substr(std::string("chatcmpl-mock-").size()));
  const auto& d = rt.config().deployments.at(0);
  CHECK(body
        == make_completion_body(d, "hi back", "stop", estimate_prompt_tokens(hi("g").messages),
                                estimate_text_tokens("hi back"),
                                body.at("created").get<std::int64_t>(), number));
  // A copy taken before the read builds the same body.
  auto again = rt.complete(hi("g"));
  auto copy = again;
  CHECK(copy.response.value() == again.response.value());
}

TEST_CASE("a stream that fails before its first chunk falls back, and the caller sees "
          "only the healthy deployment's chunks", "[actors][stream]") {
  router rt(config_from(R"({"model_list": [
      {"model_name": "g1", "litellm_params": {"model": "openai/a",
         "mock_response": "litellm.ServiceUnavailableError"}, "model_info": {"id": "a"}},
      {"model_name": "g2", "litellm_params": {"model": "openai/b",
         "mock_response": "from b"}, "model_info": {"id": "b"}}],
    "router_settings": {"num_retries": 0, "fallbacks": [{"g1": ["g2"]}]}})"),
            seeded_options(1));
  auto [chunks, r] = stream(rt, hi("g1"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "b");
  CHECK(attempt_ids(r) == std::vector<std::string>{"a", "b"});
  CHECK(delta_text(chunks) == "from b");
}

TEST_CASE("a failure after the commit ends the stream with that error, never replayed "
          "elsewhere", "[actors][stream]") {
  // First chunk after 10 ms, then nothing for 2 s: the gap passes the 0.3 s
  // stream_timeout after the commit.
  router rt(config_from(R"({"model_list": [
      {"model_name": "g1", "litellm_params": {"model": "openai/a", "mock_response": "partial",
         "mock_first_token_ms": 10, "mock_latency_ms": 2000, "stream_timeout": 0.3},
       "model_info": {"id": "a"}},
      {"model_name": "g2", "litellm_params": {"model": "openai/b",
         "mock_response": "from b"}, "model_info": {"id": "b"}}],
    "router_settings": {"num_retries": 2, "fallbacks": [{"g1": ["g2"]}]}})"),
            seeded_options(1));
  auto [chunks, r] = stream(rt, hi("g1"));
  REQUIRE_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::timeout);
  CHECK(attempt_ids(r) == std::vector<std::string>{"a"});
  CHECK(delta_text(chunks) == "partial");
}

TEST_CASE("a streamed call with no first chunk within stream_timeout is failed over "
          "before the commit", "[actors][stream]") {
  router rt(config_from(R"({"model_list": [
      {"model_name": "g1", "litellm_params": {"model": "openai/a", "mock_response": "late",
         "mock_first_token_ms": 3000, "mock_latency_ms": 3000, "stream_timeout": 0.1},
       "model_info": {"id": "a"}},
      {"model_name": "g2", "litellm_params": {"model": "openai/b",
         "mock_response": "from b"}, "model_info": {"id": "b"}}],
    "router_settings": {"num_retries": 0, "fallbacks": [{"g1": ["g2"]}]}})"),
            seeded_options(1));
  auto [chunks, r] = stream(rt, hi("g1"));
  REQUIRE(r.ok);
  CHECK(r.deployment_id == "b");
  REQUIRE(r.attempts.size() == 2);
  CHECK(r.attempts[0].outcome == error_kind::timeout);
  CHECK(delta_text(chunks) == "from b");
}

TEST_CASE("cancelling a request cancels its upstream call and answers CancelledError",
          "[actors][cancel]") {
  auto upstream = std::make_shared<held_transport>();
  auto options = seeded_options(1);
  options.http = upstream;
  router rt(config_from(real_config), options);
  std::promise<route_result> answer;
  auto handle = rt.async_complete(hi("g"), [&](route_result r) { answer.set_value(std::move(r)); });
  upstream->wait_started(1);
  handle.cancel();
  auto r = answer.get_future().get();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::cancelled);
  upstream->wait_cancelled(1);
  CHECK(upstream->cancelled() == 1);
  handle.cancel(); // after the answer: nothing happens
}

TEST_CASE("total_timeout bounds the whole request and cancels the call in flight",
          "[actors][deadline]") {
  auto upstream = std::make_shared<held_transport>();
  auto options = seeded_options(1);
  options.http = upstream;
  router rt(config_from(R"({"model_list": [{"model_name": "g",
                  "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-test"},
                  "model_info": {"id": "real"}}],
      "router_settings": {"total_timeout": 0.2}})"),
            options);
  auto r = rt.complete(hi("g"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::timeout);
  CHECK(r.error.message.find("total_timeout") != std::string::npos);
  upstream->wait_cancelled(1);
}

TEST_CASE("a request-level total_timeout stops retries and waits, keeping the trace",
          "[actors][deadline]") {
  // One deployment failing every 50 ms, 100 retries with backoff: without a
  // deadline this request would run for minutes.
  router rt(config_from(R"({"model_list": [{"model_name": "g",
      "litellm_params": {"model": "openai/a", "mock_response": "litellm.InternalServerError",
                         "mock_latency_ms": 50}, "model_info": {"id": "a"}}],
      "router_settings": {"num_retries": 100, "disable_cooldowns": true}})"),
            seeded_options(1));
  auto req = hi("g");
  req.total_timeout_s = 0.5;
  auto r = rt.complete(req);
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::timeout);
  CHECK_FALSE(r.attempts.empty());
  CHECK(r.attempts.size() < 100);
}

TEST_CASE("the observer hears requests, attempts, cooldowns and admission refusals",
          "[actors][observer]") {
  auto obs = std::make_shared<counting_observer>();
  auto options = seeded_options(1);
  options.observer = obs;
  {
    router rt(config_from(R"({"model_list": [
        {"model_name": "g", "litellm_params": {"model": "openai/a",
           "mock_response": "litellm.RateLimitError"}, "model_info": {"id": "a"}},
        {"model_name": "g", "litellm_params": {"model": "openai/b", "mock_response": "ok"},
         "model_info": {"id": "b"}}],
        "router_settings": {"num_retries": 0, "cooldown_time": 0.05,
                            "enable_weighted_failover": true}})"),
              options);
    for (int i = 0; i < 20; ++i)
      CHECK(rt.complete(hi("g")).ok);
    // The cooldown of `a` ends by itself.
    for (int i = 0; i < 200 && obs->cooldowns_ended == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(obs->requests == 20);
  CHECK(obs->ok_requests == 20);
  CHECK(obs->attempts >= 20);
  CHECK(obs->failed_attempts == obs->attempts - 20);
  CHECK(obs->cooldowns_started >= 1);
  CHECK(obs->cooldowns_ended >= 1);

  auto upstream = std::make_shared<held_transport>();
  auto capped = seeded_options(1);
  capped.http = upstream;
  capped.max_in_flight = 1;
  capped.observer = obs;
  router rt(config_from(real_config), capped);
  auto held = rt.async_complete(hi("g"), [](route_result) {});
  upstream->wait_started(1);
  auto refused = rt.complete(hi("g"));
  CHECK(refused.error.kind == error_kind::overloaded);
  CHECK(obs->refused == 1);
  held.cancel();
}

namespace {

// Destroys `rt` on another thread and says whether that returned within
// `limit` (a destructor that waits on a provider or a timer would not).
bool destroyed_within(std::unique_ptr<router> rt, std::chrono::seconds limit) {
  std::promise<void> gone;
  auto future = gone.get_future();
  std::thread t([&] {
    rt.reset();
    gone.set_value();
  });
  const bool ok = future.wait_for(limit) == std::future_status::ready;
  if (ok)
    t.join();
  else
    t.detach();
  return ok;
}

} // namespace

TEST_CASE("destroying the router ends calls in flight on a real transport with ShutdownError",
          "[actors][shutdown]") {
  auto upstream = std::make_shared<held_transport>();
  auto options = seeded_options(1);
  options.http = upstream;
  auto rt = std::make_unique<router>(config_from(real_config), options);
  std::promise<route_result> answer;
  rt->async_complete(hi("g"), [&](route_result r) { answer.set_value(std::move(r)); });
  upstream->wait_started(1);
  REQUIRE(destroyed_within(std::move(rt), std::chrono::seconds(30)));
  auto r = answer.get_future().get();
  CHECK(r.error.kind == error_kind::shutdown);
}

TEST_CASE("destroying the router ends a request waiting for its retry (Retry-After 60 s) and one "
          "bounded by a long total_timeout", "[actors][shutdown]") {
  auto rt = std::make_unique<router>(config_from(R"({"model_list": [{"model_name": "g",
      "litellm_params": {"model": "openai/a",
         "mock_response": {"error": "RateLimitError", "message": "slow down", "retry_after": 60}},
      "model_info": {"id": "a"}}],
      "router_settings": {"num_retries": 2, "disable_cooldowns": true, "total_timeout": 3600}})"),
                                     seeded_options(1));
  std::promise<route_result> answer;
  rt->async_complete(hi("g"), [&](route_result r) { answer.set_value(std::move(r)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100)); // it is in its 60 s wait now
  REQUIRE(destroyed_within(std::move(rt), std::chrono::seconds(30)));
  auto r = answer.get_future().get();
  CHECK(r.error.kind == error_kind::shutdown);
  CHECK(r.attempts.size() == 1);
}
