#pragma once

// The transport scenarios: requests/s through the router's HTTP transport
// to a static loopback upstream, against a bare libcurl-multi loop on the
// same upstream, and resident bytes per in-flight HTTP call. CAF-free.

#include "load.hpp"

#include <cstdint>
#include <memory>
#include <string>

namespace switchyard::bench {

/// A bare libcurl multi loop on its own thread: no router, no CAF. Each
/// request is one POST of `body` to `url` on a reused easy handle; the
/// answer (status 200 is ok) reports to the load run on the loop thread,
/// where the closed loop's next request is added at once. Requests issued
/// from other threads go through a mutex-guarded queue and
/// curl_multi_wakeup. No cap on connections; idle ones are kept
/// (CURLMOPT_MAXCONNECTS `connections`).
class bare_curl_loop {
public:
  bare_curl_loop(std::string url, std::string body, std::size_t connections);
  ~bare_curl_loop();
  bare_curl_loop(const bare_curl_loop&) = delete;
  bare_curl_loop& operator=(const bare_curl_loop&) = delete;

  load_run::issue_fn issue();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The body the router's OpenAI codec sends for the bench's request, for
/// the bare loop to send the same bytes' worth.
std::string bench_chat_body();

/// Resident memory per in-flight HTTP call through the router.
struct call_memory_figures {
  std::uint64_t calls = 0;
  std::int64_t rss_idle = 0;
  std::int64_t rss_in_flight = 0;
  double bytes_per_call = 0;
  double delay_ms = 0;
  std::uint64_t failed = 0;
};

/// In this process (call it in a fresh one: freed memory left in malloc's
/// arenas by earlier scenarios would be reused and hide part of the cost):
/// starts the test upstream (tests/upstream/upstream.mjs, node), a router
/// with `threads` workers over it whose "slow" deployment answers after
/// `delay_ms`, warms up on a fast deployment, samples idle RSS, sends
/// `calls` requests at once to the slow one, samples RSS while all are
/// held (until it stops growing) and lets them finish. Throws
/// std::runtime_error with the reason if node is missing.
call_memory_figures measure_call_memory(std::size_t threads, std::uint64_t calls,
                                        double delay_ms, std::uint64_t seed);

} // namespace switchyard::bench
