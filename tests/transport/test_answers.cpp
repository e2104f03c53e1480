// The HTTP transport's non-streamed answers through the call_sink
// interface directly (no router): decoded inline for a sink that leaves it
// to the transport, handed over undecoded to one that forwards it.

#include "transport/transport_test.hpp"

#include "switchyard/http_transport.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

using namespace switchyard;
using namespace switchyard::test;

namespace {

/// Records what the transport gave it, on the transport's thread.
class recording_sink : public call_sink {
public:
  void on_chunk(nlohmann::json) override {}
  void on_done(call_outcome o) override {
    std::lock_guard lock(m_);
    outcome_ = std::move(o);
    ++ends_;
    cv_.notify_all();
  }
  bool wait() {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return ends_ > 0; });
  }
  call_outcome outcome() {
    std::lock_guard lock(m_);
    return outcome_;
  }
  int ends() {
    std::lock_guard lock(m_);
    return ends_;
  }

protected:
  std::mutex m_;
  std::condition_variable cv_;
  call_outcome outcome_;
  int ends_ = 0;
};

/// Takes the answer undecoded, as the orchestrator's sink does.
class forwarding_sink final : public recording_sink {
public:
  void on_answer(pending_answer_ptr a) override {
    std::lock_guard lock(m_);
    pending_ = std::move(a);
    ++ends_;
    cv_.notify_all();
  }
  pending_answer_ptr pending() {
    std::lock_guard lock(m_);
    return pending_;
  }

private:
  pending_answer_ptr pending_;
};

struct one_deployment {
  upstream_process up;
  router_config config;
  std::shared_ptr<transport> t = make_http_transport();
  explicit one_deployment(const std::string& scenario = "")
    : config((drop_proxy_env(), config_of({openai_at(up, "chat", "oa", scenario)}))) {}
  struct dead_port {};
  /// At port 9 of 127.0.0.1 instead, where nothing listens.
  explicit one_deployment(dead_port)
    : config((drop_proxy_env(), config_of({deployment_entry("chat", "dead", "openai/m",
                                                            "http://127.0.0.1:9/v1")}))) {}
  call_handle_ptr start(std::shared_ptr<call_sink> sink) {
    call_spec spec;
    spec.deployment = &config.deployments[0];
    spec.request = std::make_shared<const chat_request>(ask("chat"));
    return t->start(spec, std::move(sink));
  }
};

} // namespace

TEST_CASE("a sink that leaves decoding to the transport gets the decoded answer",
          "[transport]") {
  one_deployment d;
  auto sink = std::make_shared<recording_sink>();
  auto handle = d.start(sink);
  REQUIRE(sink->wait());
  auto o = sink->outcome();
  CHECK(o.ok);
  CHECK(o.content == "Hello from the test upstream");
  CHECK(o.finish_reason == "stop");
  CHECK(o.response["object"] == "chat.completion");
  CHECK(o.prompt_tokens.has_value());
  CHECK(sink->ends() == 1);
}

TEST_CASE("a forwarding sink gets the answer undecoded and decodes it on its own thread",
          "[transport]") {
  SECTION("a 200") {
    one_deployment d;
    auto sink = std::make_shared<forwarding_sink>();
    auto handle = d.start(sink);
    REQUIRE(sink->wait());
    auto pending = sink->pending();
    REQUIRE(pending);
    call_outcome o;
    std::thread([&] { o = pending->decode(); }).join();
    CHECK(o.ok);
    CHECK(o.content == "Hello from the test upstream");
    CHECK(o.response["choices"][0]["message"]["role"] == "assistant");
    CHECK(sink->ends() == 1); // on_answer only: no on_done besides
    CHECK_FALSE(sink->outcome().ok);
    handle->cancel(); // after the end: nothing happens
    CHECK(sink->ends() == 1);
  }
  SECTION("an error status is mapped by decode()") {
    one_deployment d("status=429,retry_after=7");
    auto sink = std::make_shared<forwarding_sink>();
    auto handle = d.start(sink);
    REQUIRE(sink->wait());
    INFO(sink->outcome().error.message);
    REQUIRE(sink->pending());
    auto o = sink->pending()->decode();
    CHECK_FALSE(o.ok);
    CHECK(o.error.kind == error_kind::rate_limit);
  }
  SECTION("a refused connection never reaches on_answer") {
    one_deployment d(one_deployment::dead_port{});
    auto sink = std::make_shared<forwarding_sink>();
    auto handle = d.start(sink);
    REQUIRE(sink->wait());
    CHECK_FALSE(sink->pending());
    CHECK(sink->outcome().error.kind == error_kind::api_connection);
  }
}
