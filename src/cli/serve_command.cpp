#include "cli_common.hpp"

#include "server/asio_loop_host.hpp"
#include "server/buffered_log_sink.hpp"
#include "server/gateway_http.hpp"
#include "server/gateway_server.hpp"

#include "switchyard/metrics.hpp"
#include "switchyard/router.hpp"

#include <spdlog/spdlog.h>

#include <pthread.h>
#include <unistd.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <thread>

// `switchyard serve`: the router behind an OpenAI-compatible HTTP gateway
// (GATEWAY.md). The main thread loads the config, starts the router and
// the server, then waits for SIGTERM or SIGINT and drains.

namespace switchyard::cli {

namespace {

struct serve_options {
  std::string config;
  std::string host = "127.0.0.1";
  std::uint16_t port = 4000;
  std::size_t threads = 0;
  std::size_t router_threads = 0;
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_in_flight = 0;
  std::uint64_t grace_seconds = 30;
  std::size_t max_connections = 4096;
  std::size_t max_stream_buffer_bytes = 1u << 20;
  std::uint64_t header_timeout_ms = 10'000;
  std::uint64_t keep_alive_timeout_ms = 5'000;
  bool allow_unauthenticated = false;
  std::optional<std::uint64_t> seed;
};

serve_options parse_serve_options(const args& a) {
  const flags f(a,
                {"--config", "--host", "--port", "--threads", "--router-threads", "--max-body-bytes",
                 "--max-in-flight", "--grace-seconds", "--max-connections",
                 "--header-timeout-ms", "--keep-alive-timeout-ms", "--max-stream-buffer-bytes",
                 "--seed"},
                {"--allow-unauthenticated"});
  constexpr std::uint64_t u32 = std::numeric_limits<std::uint32_t>::max();
  serve_options o;
  o.config = f.required("--config");
  o.host = f.get("--host").value_or(o.host);
  o.port = static_cast<std::uint16_t>(f.number("--port", o.port, 0, 65535));
  o.threads = f.count("--threads", 0);
  o.router_threads = f.count("--router-threads", 0);
  o.max_body_bytes = f.number("--max-body-bytes", o.max_body_bytes, 1, std::uint64_t(1) << 40);
  o.max_in_flight = f.number("--max-in-flight", 0, 0, u32);
  o.grace_seconds = f.number("--grace-seconds", o.grace_seconds, 0, 86'400);
  o.max_connections = f.count("--max-connections", o.max_connections);
  o.header_timeout_ms = f.number("--header-timeout-ms", o.header_timeout_ms, 1, u32);
  o.keep_alive_timeout_ms = f.number("--keep-alive-timeout-ms", o.keep_alive_timeout_ms, 1, u32);
  o.max_stream_buffer_bytes = f.number("--max-stream-buffer-bytes", o.max_stream_buffer_bytes,
                                       1024, std::uint64_t(1) << 40);
  o.allow_unauthenticated = f.has("--allow-unauthenticated");
  o.seed = f.seed("--seed");
  return o;
}

// Into a file or a pipe, log lines leave in batches (buffered_log_sink.hpp):
// under load at most 100 ms late, once idle within a second; a warning or
// worse flushes at once. A terminal gets each line as it comes.
void buffer_log_lines() {
  if (isatty(STDERR_FILENO))
    return;
  auto previous = spdlog::default_logger();
  auto logger =
    std::make_shared<spdlog::logger>(previous->name(), std::make_shared<server::buffered_log_sink>());
  logger->set_level(previous->level());
  logger->flush_on(spdlog::level::warn);
  spdlog::drop(previous->name());
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

// I/O threads and router workers share the cores with the transport's I/O
// thread (and, on a benchmark machine, the load generator and upstream):
// more threads than free cores only add context switches. Measured on 2
// cores: one CAF worker instead of two took the CPU per request from ~137
// to ~104 us and context switches per request from 6.6 to 2.8.
std::size_t default_router_threads() {
  return std::max<std::size_t>(1, std::thread::hardware_concurrency() / 2);
}

// Both documents of the file, every problem reported together.
bool load_everything(const std::string& file, std::optional<router_config>& config,
                     general_settings& general) {
  std::vector<config_problem> problems;
  try {
    config = load_config_file(file);
  } catch (const config_error& e) {
    problems = e.problems();
  }
  try {
    general = load_general_settings_file(file);
  } catch (const config_error& e) {
    // A file that cannot be read or parsed fails both loads the same way:
    // report it once.
    for (const auto& p : e.problems()) {
      const bool seen = std::any_of(problems.begin(), problems.end(), [&p](const auto& q) {
        return q.path == p.path && q.message == p.message;
      });
      if (!seen)
        problems.push_back(p);
    }
  }
  if (problems.empty())
    return true;
  report_config_problems(file, problems);
  return false;
}

// Waits for the in-flight count to reach zero, at most `grace`; a second
// signal ends the wait at once.
void drain(server::gateway_server& s, const sigset_t& signals, std::chrono::seconds grace) {
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (s.in_flight() > 0 && std::chrono::steady_clock::now() < deadline) {
    const timespec tick{0, 20'000'000};
    if (sigtimedwait(&signals, nullptr, &tick) > 0) {
      spdlog::warn("gateway: second signal: stopping without waiting");
      return;
    }
  }
  if (const auto left = s.in_flight())
    spdlog::warn("gateway: grace period over with {} requests in flight; they are cut", left);
}

} // namespace

int serve_command(const args& a) {
  const serve_options o = parse_serve_options(a);
  // Before any thread starts: every thread inherits the mask, so the two
  // signals reach only sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<router_config> config;
  general_settings general;
  if (!load_everything(o.config, config, general))
    return exit_failure;
  const auto loopback = server::is_loopback_host(o.host);
  if (!loopback) {
    std::cerr << "switchyard: --host: '" << o.host
              << "' is not an IP address (use e.g. 127.0.0.1, ::1 or 0.0.0.0)\n";
    return exit_failure;
  }
  if (!*loopback && general.master_key.empty() && !o.allow_unauthenticated) {
    std::cerr << "switchyard: refusing to listen on " << o.host
              << " without general_settings.master_key: anyone who can reach it would spend "
                 "the deployments' API keys. Set a master key, bind 127.0.0.1, or pass "
                 "--allow-unauthenticated.\n";
    return exit_failure;
  }
  // An access line per request is the point of a server's log: info
  // unless SWITCHYARD_LOG_LEVEL says otherwise.
  if (const char* level = std::getenv("SWITCHYARD_LOG_LEVEL"); !level || !*level)
    spdlog::set_level(spdlog::level::info);
  buffer_log_lines();

  auto counts = std::make_shared<metrics>();
  counts->declare(*config);
  router_options ro;
  ro.seed = o.seed;
  ro.max_in_flight = o.max_in_flight;
  ro.threads = o.router_threads ? o.router_threads : default_router_threads();
  ro.idle_workers = router_options::idle_policy::sleep;
  ro.observer = counts;
  // The transport's HTTP client runs on the gateway's I/O threads: a
  // request's upstream call is made where its client is served, with no
  // hand-over to a thread of the transport's own.
  auto transport_loop = std::make_shared<server::asio_loop_host>();
  ro.http_client.host = transport_loop;
  const std::size_t groups = config->groups.size();
  const std::size_t deployments = config->deployments.size();
  auto routes = std::make_unique<router>(std::move(*config), ro);

  server::gateway_options go;
  go.host = o.host;
  go.port = o.port;
  go.threads = o.threads;
  go.max_body_bytes = o.max_body_bytes;
  go.header_timeout = std::chrono::milliseconds(o.header_timeout_ms);
  go.idle_timeout = std::chrono::milliseconds(o.keep_alive_timeout_ms);
  go.max_connections = o.max_connections;
  go.max_stream_buffer_bytes = o.max_stream_buffer_bytes;
  go.master_key = general.master_key;
  go.transport_loop = transport_loop;
  server::gateway_server gateway(*routes, counts, go);
  const auto port = gateway.start();
  // Tests and scripts read the bound port (--port 0) from this line.
  std::cout << "switchyard: listening on http://" << o.host << ":" << port << std::endl;
  spdlog::info("serve: {} model groups, {} deployments; {}authenticated", groups, deployments,
               general.master_key.empty() ? "not " : "");

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("serve: {} received: draining {} requests in flight (grace {} s)",
               sig == SIGTERM ? "SIGTERM" : "SIGINT", gateway.in_flight(), o.grace_seconds);
  gateway.begin_shutdown();
  drain(gateway, signals, std::chrono::seconds(o.grace_seconds));
  // The I/O threads stop before the router; the router then answers what
  // is left, and the gateway's destructor releases those answers.
  gateway.stop();
  routes.reset();
  spdlog::info("serve: stopped");
  spdlog::default_logger()->flush();
  return exit_ok;
}

} // namespace switchyard::cli
