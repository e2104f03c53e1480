#pragma once

#include "load.hpp"

#include "switchyard/router.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace switchyard::bench {

/// The mock configuration a scenario routes over.
struct bench_shape {
  int groups = 1;                 ///< model groups "g0", "g1", ...
  int deployments = 8;            ///< per group, uniform (no weights)
  int failing = 0;                ///< per group: InternalServerError mocks
  double mock_latency_ms = 0;     ///< every deployment's reply delay
  /// enable_weighted_failover, with cooldowns off and num_retries 0 so every
  /// failure costs exactly one failover hop (with cooldowns on the failing
  /// deployments would cool down after 5 failures and drop out of the run).
  bool failover = false;
};

router_config make_bench_config(const bench_shape& shape);

/// Real deployments: groups "g0", "g1", ... (one per entry of `api_bases`),
/// each of `deployments` OpenAI-compatible deployments (`openai/gpt-4o-mini`,
/// a dummy key) at that api_base, simple-shuffle.
router_config make_http_config(const std::vector<std::string>& api_bases, int deployments);

/// One router (its own actor system with `threads` scheduler threads) and
/// the requests sent to it: round robin over the groups, one short user
/// message each, issued with async_complete.
class route_bench {
public:
  route_bench(const bench_shape& shape, std::size_t threads, std::uint64_t seed);
  /// Any config whose groups are "g0" .. "g<groups-1>".
  route_bench(router_config config, router_options options, int groups);

  /// Closed loop, warmed up, `in_flight` at once (see measure_closed).
  run_figures closed(std::size_t in_flight, double seconds, int trials);
  /// Open loop at `rate` req/s for `seconds`, after a 0.3 s warm-up at the
  /// same rate. Latency from each request's scheduled send time.
  run_figures open(double rate, double seconds);

  /// Issues request `id` with async_complete; its callback reports to the
  /// load run (hops: the deployment calls in the answer's attempt trace).
  load_run::issue_fn issue();

  router& get() { return router_; }
  const chat_request& request_for(std::uint64_t id) const {
    return requests_[id % requests_.size()];
  }

private:
  switchyard::router router_;
  std::vector<chat_request> requests_;
};

/// Resident memory per in-flight request.
struct memory_figures {
  std::uint64_t requests = 0;
  std::uint64_t in_flight_at_sample = 0;
  std::int64_t rss_before = 0;
  std::int64_t rss_in_flight = 0;
  double bytes_per_request = 0;
  double mock_latency_ms = 0;
  double issue_seconds = 0;
  std::uint64_t failed = 0;
};

/// Sends `requests` at once to a fresh router whose 8 deployments answer
/// after `mock_latency_ms`; samples RSS while every one is still in flight
/// (until it stops growing), then lets them all finish.
memory_figures measure_memory(std::size_t threads, std::uint64_t requests,
                              double mock_latency_ms, std::uint64_t seed);

} // namespace switchyard::bench
