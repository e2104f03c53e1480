// Connections through the real router: cancellation and total_timeout
// free them, sequential calls reuse one, 5,000 concurrent calls share one
// I/O thread, TLS verification.

#include "transport/transport_test.hpp"

#include <atomic>

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;
using namespace std::chrono_literals;

TEST_CASE("cancelling a streamed call frees its connection", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "chunks=400,chunk_delay_ms=20")}));
  stream_capture cap;
  auto h = r.async_stream(request_of({{"model", "chat"},
                                      {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                      {"stream", true}}),
                          cap.on_chunk(), cap.on_done());
  cap.wait_chunks(3);
  h.cancel();
  auto res = cap.wait();
  CHECK_FALSE(res.ok);
  CHECK(res.error.kind == error_kind::cancelled);
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["answers_aborted_by_client"] == 1);
  CHECK(s["connections_closed_by_client"] == 1);
  CHECK(s["connections_open"] == 0);
  std::size_t seen;
  {
    std::lock_guard<std::mutex> lock(cap.m);
    seen = cap.chunks.size();
  }
  CHECK(seen < 400);
  h.cancel(); // again, after the end: nothing
}

TEST_CASE("cancelling a non-streamed call frees its connection", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "hang")}));
  std::promise<route_result> done;
  auto h = r.async_complete(ask("chat"), [&](route_result res) { done.set_value(std::move(res)); });
  REQUIRE(eventually([&] { return up.calls().size() == 1; }));
  h.cancel();
  auto f = done.get_future();
  REQUIRE(f.wait_for(20s) == std::future_status::ready);
  auto res = f.get();
  CHECK(res.error.kind == error_kind::cancelled);
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["connections_closed_by_client"] == 1);
  CHECK(s["connections_open"] == 0);
}

TEST_CASE("total_timeout cancels the call in flight", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "hang")}));
  auto req = ask("chat");
  req.total_timeout_s = 0.3;
  auto res = r.complete(req);
  CHECK_FALSE(res.ok);
  CHECK(res.error.kind == error_kind::timeout);
  CHECK(up.calls().size() == 1);
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["connections_closed_by_client"] == 1);
  CHECK(s["connections_open"] == 0);
}

TEST_CASE("a deployment timeout ends a slow call as Timeout", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "delay_ms=5000", {{"timeout", 0.3}})}));
  auto res = r.complete(ask("chat"));
  CHECK_FALSE(res.ok);
  CHECK(res.error.kind == error_kind::timeout);
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["connections_closed_by_client"] == 1);
}

TEST_CASE("sequential calls through the router reuse one connection", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "o", "o1"), anthropic_at(up, "n", "n1")}));
  for (int i = 0; i < 10; ++i) {
    REQUIRE(r.complete(ask("o")).ok);
    REQUIRE(r.complete(ask("n")).ok);
  }
  auto s = up.stats();
  CHECK(s["requests"] == 20);
  CHECK(s["connections_accepted"] == 1);
  CHECK(s["requests_per_connection"].size() == 1);
}

TEST_CASE("5000 concurrent calls through the router on one I/O thread",
          "[transport][load]") {
  drop_proxy_env();
  upstream_process up;
  router_options opts;
  opts.http_client.max_connections_per_host = 0;
  router r(config_of({openai_at(up, "chat", "oa", "delay_ms=300")}), opts);
  REQUIRE(r.complete(ask("chat")).ok); // every lazily started thread is up
  up.reset();
  const int threads_before = thread_count();
  constexpr int n = 5000;
  std::atomic<int> done{0}, ok{0};
  for (int i = 0; i < n; ++i)
    r.async_complete(ask("chat"), [&](route_result res) {
      ok += res.ok ? 1 : 0;
      ++done;
    });
  int max_threads = thread_count();
  auto until = std::chrono::steady_clock::now() + 90s;
  while (done < n && std::chrono::steady_clock::now() < until) {
    max_threads = std::max(max_threads, thread_count());
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(done == n);
  CHECK(ok == n);
  CHECK(max_threads <= threads_before + 1 + sanitizer_threads);
  auto s = up.stats();
  CHECK(s["requests"] == n);
  CHECK(s["max_open"] > 1000); // side by side, not one after another
}

TEST_CASE("TLS verification of a self-signed upstream", "[transport]") {
  drop_proxy_env();
  self_signed_cert cert;
  upstream_process up(&cert);
  const std::string base = up.base_url() + "/v1";
  router r(config_of({deployment_entry("strict", "s1", "openai/m", base),
                      deployment_entry("off", "f1", "openai/m", base, {{"ssl_verify", false}}),
                      deployment_entry("ca", "c1", "openai/m", base,
                                       {{"ssl_verify", cert.cert_file()}}),
                      anthropic_at(up, "ca-an", "c2", "", {{"ssl_verify", cert.cert_file()}})}));
  auto strict = r.complete(ask("strict"));
  REQUIRE_FALSE(strict.ok);
  CHECK(strict.error.kind == error_kind::api_connection);
  INFO(strict.error.message);
  CHECK(strict.error.message.find("certificate") != std::string::npos);
  CHECK(strict.error.message.find("localhost") != std::string::npos);
  for (const char* g : {"off", "ca", "ca-an"}) {
    INFO(g);
    auto res = r.complete(ask(g));
    INFO(res.error.message);
    CHECK(res.ok);
    CHECK(res.content == "Hello from the test upstream");
  }
  CHECK(up.calls().size() == 3);
}

TEST_CASE("streams and cancellation over HTTP/2 with TLS", "[transport]") {
  drop_proxy_env();
  self_signed_cert cert;
  upstream_process up(&cert);
  const ojson ca = {{"ssl_verify", cert.cert_file()}};
  router r(config_of({deployment_entry("s", "s1", "openai/m", up.base_url() + "/v1", ca),
                      deployment_entry("slow", "w1", "openai/m",
                                       scenario_base(up, "chunks=400,chunk_delay_ms=20") + "/v1",
                                       ca)}));
  stream_capture ok;
  r.async_stream(request_of({{"model", "s"},
                             {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                             {"stream", true}}),
                 ok.on_chunk(), ok.on_done());
  auto res = ok.wait();
  INFO(res.error.message);
  REQUIRE(res.ok);
  CHECK(ok.text() == "Hello from the test upstream");
  CHECK(up.calls()[0]["http_version"] == "2.0");

  stream_capture cut;
  auto h = r.async_stream(request_of({{"model", "slow"},
                                      {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                      {"stream", true}}),
                          cut.on_chunk(), cut.on_done());
  cut.wait_chunks(3);
  h.cancel();
  CHECK(cut.wait().error.kind == error_kind::cancelled);
  auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; }, 10);
  CHECK(s["answers_aborted_by_client"] == 1);
  auto calls = up.calls();
  REQUIRE(calls.size() == 2);
  CHECK(calls[1]["http_version"] == "2.0");
  CHECK(calls[0]["connection"] == calls[1]["connection"]); // one HTTP/2 connection
}

TEST_CASE("total_timeout ends a committed stream and frees its connection", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({openai_at(up, "chat", "oa", "chunks=400,chunk_delay_ms=20")}));
  auto req = request_of({{"model", "chat"},
                         {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                         {"stream", true}});
  req.total_timeout_s = 0.5;
  stream_capture cap;
  r.async_stream(req, cap.on_chunk(), cap.on_done());
  auto res = cap.wait();
  CHECK_FALSE(res.ok);
  CHECK(res.error.kind == error_kind::timeout);
  CHECK_FALSE(cap.chunks.empty());
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["answers_aborted_by_client"] == 1);
  CHECK(s["connections_closed_by_client"] == 1);
}

TEST_CASE("cancelling a stream before its first chunk frees its connection", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  router r(config_of({anthropic_at(up, "chat", "an", "hang")}));
  stream_capture cap;
  auto h = r.async_stream(request_of({{"model", "chat"},
                                      {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                                      {"stream", true}}),
                          cap.on_chunk(), cap.on_done());
  REQUIRE(eventually([&] { return up.calls().size() == 1; }));
  h.cancel();
  CHECK(cap.wait().error.kind == error_kind::cancelled);
  CHECK(cap.chunks.empty());
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 1; }, 10);
  CHECK(s["connections_closed_by_client"] == 1);
  CHECK(s["connections_open"] == 0);
}

TEST_CASE("destroying the router with calls in flight drops their connections", "[transport]") {
  drop_proxy_env();
  upstream_process up;
  std::atomic<int> answers{0};
  auto obs = std::make_shared<counting_observer>();
  {
    router_options opts;
    opts.observer = obs;
    router r(config_of({openai_at(up, "chat", "oa", "hang")}), opts);
    for (int i = 0; i < 3; ++i)
      r.async_complete(ask("chat"), [&](route_result) { ++answers; });
    REQUIRE(eventually([&] { return up.calls().size() == 3; }));
  }
  auto s = up.stats_when([](auto& s) { return s["connections_closed_by_client"] == 3; }, 10);
  CHECK(s["connections_closed_by_client"] == 3);
  CHECK(s["connections_open"] == 0);
  CHECK(answers == 3); // the router owned its system: every answer is in (ShutdownError)
  CHECK(obs->attempts().size() == 3);
}
