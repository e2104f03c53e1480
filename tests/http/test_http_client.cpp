// http_client against the real test upstream over loopback.

#include "http/recorded_call.hpp"
#include "support/process_threads.hpp"
#include "support/upstream_process.hpp"

#include "switchyard/http_client.hpp"

#include <catch2/catch.hpp>

#include <dirent.h>
#include <fcntl.h>

#include <atomic>
#include <filesystem>
#include <cstdlib>
#include <set>
#include <thread>

#ifdef SWITCHYARD_HOSTED_HTTP_CLIENT
// Every case again with the loop on an Asio io_context (hosted_http_client.hpp).
#include "http/hosted_http_client.hpp"
#define http_client hosted_http_client
#endif

using namespace switchyard;
using namespace switchyard::test;
using namespace std::chrono_literals;

namespace {


bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Sets (or, with nullptr, unsets) an environment variable for a scope.
class scoped_env {
public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = std::string(old);
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~scoped_env() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }

private:
  std::string name_;
  std::optional<std::string> old_;
};


/// A TLS upstream with a certificate made for this test.
struct tls_upstream {
  no_proxy_env env;
  self_signed_cert cert;
  upstream_process up{&cert};
  /// Options that trust the test certificate.
  http_call_options trusting() const {
    http_call_options o;
    o.tls.ca_file = cert.cert_file();
    return o;
  }
};

} // namespace

TEST_CASE("http client: a 200 answer gives status and headers and body in order", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(chat_url(up, "retry_after_ms=1500")));

  CHECK(rec->order == std::vector<std::string>{"head", "body", "done"});
  CHECK(rec->result.transport_ok);
  CHECK_FALSE(rec->result.timed_out);
  CHECK(rec->result.status == 200);
  CHECK(rec->head_status == 200);
  CHECK(rec->result.error.empty());
  CHECK(rec->result.http_version == 11);
  CHECK(rec->result.total_ms >= rec->result.first_byte_ms);
  CHECK(rec->result.first_byte_ms > 0);
  CHECK(find_header(rec->headers, "content-type") == std::optional<std::string_view>("application/json"));
  CHECK(find_header(rec->headers, "Retry-After-Ms") == std::optional<std::string_view>("1500"));
  auto body = nlohmann::json::parse(rec->body);
  CHECK(body["object"] == "chat.completion");
  CHECK(body["choices"][0]["message"]["content"] == "Hello from the test upstream");

  auto calls = up.calls();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0]["method"] == "POST");
  CHECK(calls[0]["path"] == "/scenario/retry_after_ms=1500/v1/chat/completions");
  CHECK(calls[0]["headers"]["authorization"] == "Bearer sk-test-secret-123");
  CHECK(calls[0]["headers"]["content-type"] == "application/json");
  CHECK_FALSE(calls[0]["headers"].contains("expect"));
  CHECK(calls[0]["body"]["messages"][0]["content"] == "hello");
  CHECK(calls[0]["dialect"] == "openai");

  auto s = client.snapshot();
  CHECK(s.started == 1);
  CHECK(s.completed == 1);
  CHECK(s.active == 0);
}

TEST_CASE("http client: an error status is an answer with its body", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(chat_url(up, "status=429,retry_after=7")));
  CHECK(rec->result.transport_ok);
  CHECK(rec->result.status == 429);
  CHECK(find_header(rec->headers, "retry-after") == std::optional<std::string_view>("7"));
  CHECK(nlohmann::json::parse(rec->body)["error"]["code"] == "rate_limit_exceeded");
}

TEST_CASE("http client: a refused port fails naming the host and 'refused'", "[http]") {
  no_proxy_env env;
  http_client client;
  int port = free_port();
  auto url = "http://127.0.0.1:" + std::to_string(port) + "/v1/chat/completions?api-key=sk-in-query";
  auto rec = run_call(client, chat_request(url));
  CHECK_FALSE(rec->result.transport_ok);
  CHECK_FALSE(rec->result.timed_out);
  CHECK(rec->result.status == 0);
  CHECK(rec->order == std::vector<std::string>{"done"});
  CHECK(rec->result.error == "http://127.0.0.1:" + std::to_string(port) + ": connection refused");
  CHECK_FALSE(contains(rec->result.error, "sk-"));
  CHECK_FALSE(contains(rec->result.error, "/v1"));
}

TEST_CASE("http client: a connection reset before any answer", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(chat_url(up, "reset")));
  CHECK_FALSE(rec->result.transport_ok);
  CHECK(rec->result.status == 0);
  CHECK(rec->result.error == up.base_url() + ": connection reset by peer");

  auto closed = run_call(client, chat_request(chat_url(up, "close")));
  CHECK_FALSE(closed->result.transport_ok);
  CHECK(closed->result.error == up.base_url() + ": connection closed with no answer (empty reply)");
}

TEST_CASE("http client: a stream cut mid-way keeps its status and fails", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto rec = run_call(client, chat_request(chat_url(up, "cut_after=2"), true));
  CHECK_FALSE(rec->result.transport_ok);
  CHECK_FALSE(rec->result.timed_out);
  CHECK(rec->result.status == 200);
  CHECK(contains(rec->body, "Hello from "));
  CHECK_FALSE(contains(rec->body, "[DONE]"));
  CHECK(rec->result.error.rfind(up.base_url() + ": ", 0) == 0);
}

TEST_CASE("http client: the total timeout ends a slow answer and drops its connection", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  http_call_options o;
  o.total_timeout = 300ms;
  auto rec = run_call(client, chat_request(chat_url(up, "delay_ms=20000")), o);
  CHECK(rec->result.timed_out);
  CHECK_FALSE(rec->result.transport_ok);
  CHECK(rec->result.status == 0);
  CHECK(rec->result.error == up.base_url() + ": timed out after 300 ms (total timeout)");
  CHECK(rec->result.total_ms >= 300);
  auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; });
  CHECK(s["answers_aborted_by_client"] == 1);
  CHECK(s["connections_closed_by_client"] == 1);
}

TEST_CASE("http client: the idle timeout bounds the first body byte", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  http_call_options o;
  o.idle_timeout = 300ms;
  auto rec = run_call(client, chat_request(chat_url(up, "first_chunk_delay_ms=20000"), true), o);
  CHECK(rec->result.timed_out);
  CHECK(rec->head_status == 200); // the head came at once, the body never
  CHECK(rec->result.status == 200);
  CHECK(rec->body.empty());
  CHECK(rec->result.first_byte_ms == 0);
  CHECK(rec->result.error == up.base_url() + ": no first body byte within 300 ms (idle timeout)");
  CHECK(rec->order == std::vector<std::string>{"head", "done"});
}

TEST_CASE("http client: the idle timeout bounds each gap between body bytes", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  SECTION("a gap longer than the bound ends the stream") {
    http_call_options o;
    o.idle_timeout = 300ms;
    auto rec = run_call(client, chat_request(chat_url(up, "chunk_delay_ms=20000"), true), o);
    CHECK(rec->result.timed_out);
    CHECK(rec->result.status == 200);
    CHECK(contains(rec->body, "\"role\":\"assistant\""));
    CHECK_FALSE(contains(rec->body, "Hello"));
    CHECK(rec->result.error == up.base_url() + ": no body bytes for 300 ms (idle timeout)");
  }
  SECTION("each body byte restarts the bound") {
    // 8 events 200 ms apart: 1.4 s in all, each gap far below 1 s.
    http_call_options o;
    o.idle_timeout = 1000ms;
    auto rec = run_call(client, chat_request(chat_url(up, "chunk_delay_ms=200"), true), o);
    CHECK(rec->result.transport_ok);
    CHECK_FALSE(rec->result.timed_out);
    CHECK(contains(rec->body, "data: [DONE]"));
    CHECK(rec->result.total_ms > 1000);
  }
}

TEST_CASE("http client: streamed body bytes arrive as they are sent", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto rec = std::make_unique<recorded_call>();
  client.start(chat_request(chat_url(up, "chunk_delay_ms=100,chunks=5"), true), {}, rec->events());
  // The first parts are here while the upstream still holds the rest.
  REQUIRE(rec->wait_body_parts(2));
  {
    std::lock_guard lock(rec->mutex);
    CHECK_FALSE(rec->done);
  }
  REQUIRE(rec->wait());
  CHECK(rec->result.transport_ok);
  // Role chunk, 5 content chunks, finish chunk, [DONE]: one part each.
  CHECK(rec->body_parts.size() >= 8);
  CHECK(rec->body_parts.front().rfind("data: ", 0) == 0);
  CHECK(rec->body_parts.back() == "data: [DONE]\n\n");
  CHECK(rec->result.first_byte_ms < rec->result.total_ms);
}

TEST_CASE("http client: cancel stops a stream and closes its connection and silences it", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  std::atomic<bool> cancel_returned{false};
  std::atomic<int> after_cancel{0};
  std::atomic<int> bodies{0};
  http_call_events e;
  e.on_head = [&](long, const http_headers&) { after_cancel += cancel_returned ? 1 : 0; };
  e.on_body = [&](std::string_view) {
    after_cancel += cancel_returned ? 1 : 0;
    ++bodies;
  };
  e.on_done = [&](http_result) { after_cancel += 1; };
  auto id = client.start(chat_request(chat_url(up, "chunk_delay_ms=50,chunks=200"), true), {}, e);
  while (bodies < 3)
    std::this_thread::sleep_for(5ms);
  client.cancel(id);
  cancel_returned = true;

  auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; });
  CHECK(s["answers_aborted_by_client"] == 1);
  CHECK(s["connections_closed_by_client"] == 1);
  std::this_thread::sleep_for(200ms); // chunks keep coming every 50 ms if it failed
  CHECK(after_cancel == 0);
  auto cs = client.snapshot();
  CHECK(cs.cancelled == 1);
  CHECK(cs.completed == 0);
  CHECK(cs.active == 0);
  client.cancel(id); // again, and after it ended: nothing
  CHECK(client.snapshot().cancelled == 1);
}

TEST_CASE("http client: cancel from inside a callback", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  std::atomic<int> bodies{0};
  std::atomic<int> dones{0};
  std::atomic<std::uint64_t> id{0};
  http_call_events e;
  e.on_body = [&](std::string_view) {
    ++bodies;
    client.cancel(id);
  };
  e.on_done = [&](http_result) { ++dones; };
  id = client.start(chat_request(chat_url(up, "first_chunk_delay_ms=100,chunk_delay_ms=30"), true), {}, e);
  auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; });
  CHECK(s["answers_aborted_by_client"] == 1);
  CHECK(bodies == 1);
  CHECK(dones == 0);
  CHECK(client.snapshot().cancelled == 1);
}

TEST_CASE("http client: calls cancelled at once never call back", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  std::atomic<bool> cancelling_done{false};
  std::atomic<int> after{0};
  std::vector<std::uint64_t> ids;
  constexpr int n = 200;
  for (int i = 0; i < n; ++i) {
    http_call_events e;
    e.on_done = [&](http_result) { after += cancelling_done ? 1 : 0; };
    e.on_body = [&](std::string_view) { after += cancelling_done ? 1 : 0; };
    ids.push_back(client.start(chat_request(chat_url(up, "delay_ms=50")), {}, e));
  }
  for (auto id : ids)
    client.cancel(id);
  cancelling_done = true;
  std::this_thread::sleep_for(300ms);
  CHECK(after == 0);
  auto s = client.snapshot();
  CHECK(s.started == n);
  CHECK(s.completed + s.cancelled == n);
  CHECK(s.active == 0);
}

TEST_CASE("http client: sequential calls reuse one connection", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  constexpr int n = 5;
  for (int i = 0; i < n; ++i) {
    auto rec = run_call(client, chat_request(chat_url(up)));
    CHECK(rec->result.status == 200);
    CHECK(rec->result.reused_connection == (i > 0));
  }
  auto s = up.stats();
  REQUIRE(s["requests_per_connection"].size() == 1);
  CHECK(s["requests_per_connection"].begin().value() == n);
  CHECK(client.snapshot().connections_opened == 1);
}

TEST_CASE("http client: the per-host cap queues calls past it", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client_options opts;
  opts.max_connections_per_host = 4;
  http_client client(opts);
  constexpr int n = 20;
  std::vector<std::unique_ptr<recorded_call>> recs;
  for (int i = 0; i < n; ++i) {
    recs.push_back(std::make_unique<recorded_call>());
    client.start(chat_request(chat_url(up, "delay_ms=100")), {}, recs.back()->events());
  }
  for (auto& r : recs) {
    REQUIRE(r->wait());
    CHECK(r->result.status == 200);
  }
  auto s = up.stats();
  CHECK(s["requests"] == n);
  CHECK(s["requests_per_connection"].size() <= 4);
  CHECK(client.snapshot().connections_opened <= 4);
  CHECK(client.snapshot().connections_opened >= 2); // they did run side by side
}

TEST_CASE("http client: TLS verification against a self-signed certificate", "[http]") {
  tls_upstream t;
  auto& up = t.up;
  http_client client;
  SECTION("fails by default, saying certificate") {
    auto rec = run_call(client, chat_request(chat_url(up)));
    CHECK_FALSE(rec->result.transport_ok);
    CHECK(rec->result.status == 0);
    CHECK(rec->result.error.rfind("https://localhost:" + std::to_string(up.port()) +
                                      ": certificate verify failed", 0) == 0);
    CHECK(up.calls().empty());
  }
  SECTION("passes with the certificate as ca_file, over HTTP/2") {
    auto rec = run_call(client, chat_request(chat_url(up), true), t.trusting());
    CHECK(rec->result.transport_ok);
    CHECK(rec->result.status == 200);
    CHECK(rec->result.http_version == 20);
    CHECK(contains(rec->body, "data: [DONE]"));
    auto calls = up.calls();
    REQUIRE(calls.size() == 1);
    CHECK(calls[0]["http_version"] == "2.0");
    CHECK(calls[0]["headers"]["authorization"] == "Bearer sk-test-secret-123");
  }
  SECTION("passes with verify off") {
    http_call_options o;
    o.tls.verify = false;
    auto rec = run_call(client, chat_request(chat_url(up)), o);
    CHECK(rec->result.transport_ok);
    CHECK(rec->result.status == 200);
  }
  SECTION("a bad ca_file is named as such") {
    http_call_options o;
    o.tls.ca_file = "/nonexistent/ca.pem";
    auto rec = run_call(client, chat_request(chat_url(up)), o);
    CHECK_FALSE(rec->result.transport_ok);
    CHECK(contains(rec->result.error, "ca_file"));
  }
}

TEST_CASE("http client: HTTP/2 off speaks HTTP/1.1 over TLS", "[http]") {
  tls_upstream t;
  auto& up = t.up;
  http_client_options opts;
  opts.http2 = false;
  http_client client(opts);
  auto o = t.trusting();
  auto rec = run_call(client, chat_request(chat_url(up)), o);
  CHECK(rec->result.status == 200);
  CHECK(rec->result.http_version == 11);
  CHECK(up.calls()[0]["http_version"] == "1.1");
}

TEST_CASE("http client: concurrent HTTP/2 calls share one connection", "[http]") {
  tls_upstream t;
  auto& up = t.up;
  http_client client;
  auto o = t.trusting();
  std::vector<std::unique_ptr<recorded_call>> recs;
  for (int i = 0; i < 20; ++i) {
    recs.push_back(std::make_unique<recorded_call>());
    client.start(chat_request(chat_url(up, "delay_ms=100")), o, recs.back()->events());
  }
  for (auto& r : recs) {
    REQUIRE(r->wait());
    CHECK(r->result.status == 200);
    CHECK(r->result.http_version == 20);
  }
  CHECK(client.snapshot().connections_opened == 1);
  CHECK(up.stats()["requests_per_connection"].size() == 1);
}

TEST_CASE("http client: proxies from the environment", "[http]") {
  no_proxy_env env;
  upstream_process proxy;
  upstream_process target;
  SECTION("http_proxy carries a plain call") {
    scoped_env p("http_proxy", proxy.base_url().c_str());
    http_client client;
    auto rec = run_call(client, chat_request(chat_url(target)));
    CHECK(rec->result.status == 200);
    CHECK(proxy.stats()["proxied_requests"] == 1);
    CHECK(target.calls().size() == 1);
  }
  SECTION("HTTP_PROXY too") {
    scoped_env p("HTTP_PROXY", proxy.base_url().c_str());
    http_client client;
    auto rec = run_call(client, chat_request(chat_url(target)));
    CHECK(rec->result.status == 200);
    CHECK(proxy.stats()["proxied_requests"] == 1);
  }
  SECTION("a refused proxy is named as the one that refused") {
    int port = free_port();
    std::string proxy_url = "http://127.0.0.1:" + std::to_string(port);
    scoped_env p("http_proxy", proxy_url.c_str());
    http_client client;
    auto rec = run_call(client, chat_request(chat_url(target)));
    CHECK_FALSE(rec->result.transport_ok);
    CHECK(rec->result.error == target.base_url() + ": connection refused (through the proxy at 127.0.0.1:" +
                                   std::to_string(port) + ")");
    CHECK(target.calls().empty());
  }
  SECTION("NO_PROXY bypasses it") {
    scoped_env p("HTTP_PROXY", proxy.base_url().c_str());
    scoped_env n("NO_PROXY", "127.0.0.1");
    http_client client;
    auto rec = run_call(client, chat_request(chat_url(target)));
    CHECK(rec->result.status == 200);
    CHECK(proxy.stats()["proxied_requests"] == 0);
    CHECK(target.calls().size() == 1);
  }
  SECTION("HTTPS_PROXY tunnels a TLS call with CONNECT") {
    tls_upstream t;
    auto& tls_target = t.up;
    scoped_env p("HTTPS_PROXY", proxy.base_url().c_str());
    http_client client;
    auto rec = run_call(client, chat_request(chat_url(tls_target)), t.trusting());
    CHECK(rec->result.status == 200);
    CHECK(rec->order == std::vector<std::string>{"head", "body", "done"});
    CHECK(proxy.stats()["connect_tunnels"] == 1);
    CHECK(tls_target.calls().size() == 1);
  }
}

TEST_CASE("http client: bad input ends in on_done with a clear error", "[http]") {
  no_proxy_env env;
  http_client client;
  SECTION("an invalid URL, not echoed") {
    auto rec = run_call(client, chat_request("no scheme here ?api-key=sk-secret"));
    CHECK_FALSE(rec->result.transport_ok);
    CHECK(contains(rec->result.error, "invalid URL"));
    CHECK_FALSE(contains(rec->result.error, "sk-secret"));
  }
  SECTION("a scheme other than http(s)") {
    auto rec = run_call(client, chat_request("file:///etc/passwd"));
    CHECK_FALSE(rec->result.transport_ok);
    CHECK(contains(rec->result.error, "unsupported URL scheme"));
  }
  SECTION("a header value with a line break, named but not shown") {
    auto req = chat_request("http://127.0.0.1:9/v1/chat/completions");
    req.headers.push_back({"x-api-key", "sk-secret\r\nInjected: 1", true});
    auto rec = run_call(client, std::move(req));
    CHECK(rec->result.error == "http://127.0.0.1:9: invalid header 'x-api-key' (its value has a line break)");
  }
  SECTION("a bad method") {
    auto req = chat_request("http://127.0.0.1:9/v1/chat/completions");
    req.method = "PO ST";
    auto rec = run_call(client, std::move(req));
    CHECK(rec->result.error == "http://127.0.0.1:9: invalid HTTP method");
  }
}

TEST_CASE("http client: 5000 concurrent calls on one I/O thread", "[http][load]") {
  no_proxy_env env;
  upstream_process up;
  int threads_before = thread_count();
  http_client_options opts;
  opts.max_connections_per_host = 0;
  http_client client(opts);
  constexpr int n = 5000;
  std::atomic<int> done{0};
  std::atomic<int> ok{0};
  for (int i = 0; i < n; ++i) {
    http_call_events e;
    e.on_done = [&](http_result r) {
      ok += (r.transport_ok && r.status == 200) ? 1 : 0;
      ++done;
    };
    client.start(chat_request(chat_url(up, "delay_ms=500")), {}, std::move(e));
  }
  int max_threads = thread_count();
  auto until = std::chrono::steady_clock::now() + 60s;
  while (done < n && std::chrono::steady_clock::now() < until) {
    max_threads = std::max(max_threads, thread_count());
    std::this_thread::sleep_for(10ms);
  }
  CHECK(done == n);
  CHECK(ok == n);
  CHECK(max_threads <= threads_before + 1 + sanitizer_threads);
  auto s = up.stats();
  CHECK(s["requests"] == n);
  CHECK(s["max_open"] > 1000); // side by side, not one after another
  CHECK(client.snapshot().completed == static_cast<std::uint64_t>(n));
}

TEST_CASE("http client: a reused connection that dies before any answer is tried once more", "[http]") {
  // curl's own behaviour, pinned here because it can send a POST twice: a
  // keep-alive connection that the server closed or reset before answering
  // looks stale, so curl sends the request again on a new connection.
  no_proxy_env env;
  upstream_process up;
  http_client client;
  REQUIRE(run_call(client, chat_request(chat_url(up)))->result.status == 200);
  auto rec = run_call(client, chat_request(chat_url(up, "reset,fail_first=1,key=r")));
  CHECK(rec->result.status == 200);
  CHECK(up.calls().size() == 3);
  CHECK(client.snapshot().connections_opened == 2);
}

TEST_CASE("http client: a call queued behind the cap can be cancelled before it runs", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client_options opts;
  opts.max_connections_per_host = 1;
  http_client client(opts);
  recorded_call first;
  std::atomic<int> second_callbacks{0};
  client.start(chat_request(chat_url(up, "delay_ms=300")), {}, first.events());
  http_call_events e;
  e.on_head = [&](long, const http_headers&) { ++second_callbacks; };
  e.on_done = [&](http_result) { ++second_callbacks; };
  auto queued = client.start(chat_request(chat_url(up)), {}, e);
  client.cancel(queued);
  REQUIRE(first.wait());
  CHECK(first.result.status == 200);
  auto after = run_call(client, chat_request(chat_url(up)));
  CHECK(after->result.status == 200);
  CHECK(second_callbacks == 0);
  CHECK(up.stats()["requests"] == 2); // the first and the last: the cancelled one never went out
}

TEST_CASE("http client: cancel over HTTP/2 stops the stream", "[http]") {
  tls_upstream t;
  auto& up = t.up;
  http_client client;
  auto o = t.trusting();
  SECTION("alone on its connection: the connection is closed") {
    recorded_call stream;
    auto id = client.start(chat_request(chat_url(up, "chunk_delay_ms=50,chunks=200"), true), o, stream.events());
    REQUIRE(stream.wait_body_parts(2));
    client.cancel(id);
    auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; });
    CHECK(s["answers_aborted_by_client"] == 1);
    CHECK(s["connections_closed_by_client"] == 1);
    CHECK(stream.result.http_version == 0); // no on_done
  }
  SECTION("sharing its connection: the other stream goes on, and the reset reaches the server") {
    recorded_call cancelled, other;
    auto id = client.start(chat_request(chat_url(up, "chunk_delay_ms=50,chunks=200"), true), o, cancelled.events());
    client.start(chat_request(chat_url(up, "chunk_delay_ms=50,chunks=6"), true), o, other.events());
    REQUIRE(cancelled.wait_body_parts(2));
    REQUIRE(other.wait_body_parts(2));
    client.cancel(id);
    REQUIRE(other.wait());
    CHECK(other.result.transport_ok);
    CHECK(other.result.http_version == 20);
    // curl before 8.15 sends a removed stream's RST_STREAM with the
    // connection's next write: here, the next call's request.
    auto next = run_call(client, chat_request(chat_url(up)), o);
    CHECK(next->result.reused_connection);
    auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 1; });
    CHECK(s["answers_aborted_by_client"] == 1);
    CHECK(s["connections_closed_by_client"] == 0);
    CHECK(client.snapshot().connections_opened == 1);
  }
}

TEST_CASE("http client: destroying the client drops its calls without callbacks", "[http]") {
  no_proxy_env env;
  upstream_process up;
  std::atomic<int> callbacks{0};
  {
    http_client client;
    for (int i = 0; i < 10; ++i) {
      http_call_events e;
      e.on_done = [&](http_result) { ++callbacks; };
      client.start(chat_request(chat_url(up, "hang")), {}, std::move(e));
    }
    up.stats_when([](auto& s) { return s["requests"] == 10; });
  }
  CHECK(callbacks == 0);
  auto s = up.stats_when([](auto& s) { return s["answers_aborted_by_client"] == 10; });
  CHECK(s["answers_aborted_by_client"] == 10);
  CHECK(s["connections_closed_by_client"] == 10);
}

TEST_CASE("http client: GET and a header with an empty value", "[http]") {
  no_proxy_env env;
  upstream_process up;
  http_client client;
  auto post = chat_request(chat_url(up));
  post.headers.push_back({"x-empty", "", false});
  REQUIRE(run_call(client, post)->result.status == 200);
  CHECK(up.calls()[0]["headers"]["x-empty"] == "");

  http_request_spec get;
  get.method = "GET";
  get.url = up.base_url() + "/_stats";
  auto rec = run_call(client, get);
  CHECK(rec->result.status == 200);
  CHECK(nlohmann::json::parse(rec->body)["requests"] == 1);
}

TEST_CASE("http client: its sockets are close-on-exec", "[http]") {
  // A child process (the upstream, a hook) must never hold a copy of a
  // connection, which would keep it open after the client closed it.
  no_proxy_env env;
  upstream_process up;
  http_client client;
  recorded_call rec;
  auto id = client.start(chat_request(chat_url(up, "hang")), {}, rec.events());
  up.stats_when([](auto& s) { return s["requests"] == 1; });
  int sockets = 0;
  int inheritable = 0;
  for (auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (ec || target.rfind("socket:", 0) != 0)
      continue;
    int fd = std::stoi(entry.path().filename().string());
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
        (addr.ss_family != AF_INET && addr.ss_family != AF_INET6))
      continue; // curl's own wake-up socketpair is AF_UNIX and no connection
    ++sockets;
    if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
      ++inheritable;
  }
  client.cancel(id);
  CHECK(sockets == 1);
  CHECK(inheritable == 0);
}
