#pragma once

// Runs http_client calls from a test thread and records what their
// callbacks saw, in order.

#include "support/upstream_process.hpp"

#include "switchyard/http_client.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace switchyard::test {

/// What one call's callbacks saw. Filled on the client's I/O thread, read
/// by the test thread under `mutex`.
struct recorded_call {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::string> order; // "head", "body", "done"
  long head_status = 0;
  http_headers headers;
  std::vector<std::string> body_parts;
  std::string body;
  http_result result;
  bool done = false;

  http_call_events events() {
    http_call_events e;
    e.on_head = [this](long status, const http_headers& h) {
      std::lock_guard lock(mutex);
      order.push_back("head");
      head_status = status;
      headers = h;
      changed.notify_all();
    };
    e.on_body = [this](std::string_view bytes) {
      std::lock_guard lock(mutex);
      if (order.empty() || order.back() != "body")
        order.push_back("body");
      body_parts.emplace_back(bytes);
      body.append(bytes);
      changed.notify_all();
    };
    e.on_done = [this](http_result r) {
      std::lock_guard lock(mutex);
      order.push_back("done");
      result = std::move(r);
      done = true;
      changed.notify_all();
    };
    return e;
  }

  /// Waits for on_done; false after `seconds` (a hang guard, not a timing
  /// assertion).
  bool wait(double seconds = 20) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return done; });
  }

  /// Waits until at least `n` body parts arrived.
  bool wait_body_parts(std::size_t n, double seconds = 20) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::duration<double>(seconds),
                            [&] { return body_parts.size() >= n || done; }) &&
           body_parts.size() >= n;
  }
};

inline http_request_spec chat_request(const std::string& url, bool stream = false,
                                      nlohmann::json extra = nlohmann::json::object()) {
  nlohmann::json body = {{"model", "gpt-4o"},
                         {"messages", {{{"role", "user"}, {"content", "hello"}}}}};
  if (stream)
    body["stream"] = true;
  for (auto& [k, v] : extra.items())
    body[k] = v;
  http_request_spec r;
  r.method = "POST";
  r.url = url;
  r.headers = {{"Content-Type", "application/json", false},
               {"Authorization", "Bearer sk-test-secret-123", true}};
  r.body = body.dump();
  return r;
}

/// No proxy from the machine's environment reaches these loopback tests.
struct no_proxy_env {
  std::vector<std::pair<std::string, std::string>> saved;
  no_proxy_env() {
    for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy",
                          "NO_PROXY", "all_proxy", "ALL_PROXY"}) {
      if (const char* old = std::getenv(v))
        saved.emplace_back(v, old);
      unsetenv(v);
    }
  }
  ~no_proxy_env() {
    for (auto& [name, value] : saved)
      setenv(name.c_str(), value.c_str(), 1);
  }
};

/// The upstream's chat endpoint, playing `scenario` when one is given.
inline std::string chat_url(const upstream_process& up, const std::string& scenario = "") {
  return up.base_url() + (scenario.empty() ? "" : "/scenario/" + scenario) + "/v1/chat/completions";
}

/// Starts one call and waits for its end.
inline std::unique_ptr<recorded_call> run_call(http_client& client, http_request_spec request,
                                               http_call_options options = {}) {
  auto rec = std::make_unique<recorded_call>();
  client.start(std::move(request), std::move(options), rec->events());
  REQUIRE(rec->wait());
  return rec;
}

/// A loopback port nothing listens on (bound to port 0, then released).
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

} // namespace switchyard::test
