#include "route.hpp"

#include "switchyard/config.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <string>
#include <thread>

namespace switchyard::bench {

router_config make_bench_config(const bench_shape& shape) {
  nlohmann::json model_list = nlohmann::json::array();
  // Failing deployments spread over the group: 0, stride, 2 * stride, ...
  const int stride = shape.failing > 0 ? std::max(1, shape.deployments / shape.failing) : 1;
  for (int g = 0; g < shape.groups; ++g)
    for (int d = 0; d < shape.deployments; ++d) {
      const bool fails = shape.failing > 0 && d % stride == 0 && d / stride < shape.failing;
      const auto id = "g" + std::to_string(g) + "-d" + std::to_string(d);
      nlohmann::json params = {
        {"model", "mock/" + id},
        {"mock_response", fails ? "litellm.InternalServerError" : "ok"},
      };
      if (shape.mock_latency_ms > 0)
        params["mock_latency_ms"] = shape.mock_latency_ms;
      model_list.push_back({{"model_name", "g" + std::to_string(g)},
                            {"litellm_params", params},
                            {"model_info", {{"id", id}}}});
    }
  nlohmann::json settings = nlohmann::json::object();
  if (shape.failover) {
    settings["enable_weighted_failover"] = true;
    settings["disable_cooldowns"] = true;
    settings["num_retries"] = 0;
  }
  return load_config(nlohmann::ordered_json{{"model_list", model_list}, {"router_settings", settings}});
}

namespace {

std::vector<chat_request> make_requests(int groups) {
  std::vector<chat_request> out;
  for (int g = 0; g < groups; ++g) {
    chat_request r;
    r.model = "g" + std::to_string(g);
    r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hello"}}});
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace

route_bench::route_bench(const bench_shape& shape, std::size_t threads,
                         std::uint64_t seed)
  : router_(make_bench_config(shape), router_options{seed, threads}),
    requests_(make_requests(shape.groups)) {
}

load_run::issue_fn route_bench::issue() {
  return [this](load_run& run, std::uint64_t id) {
    // The callback captures 16 bytes: std::function stores it inline.
    router_.async_complete(request_for(id), [&run, id](route_result r) {
      run.done(id, static_cast<std::uint32_t>(r.attempts.size()), r.ok);
    });
  };
}

run_figures route_bench::closed(std::size_t in_flight, double seconds, int trials) {
  return measure_closed(in_flight, seconds, trials, issue());
}

run_figures route_bench::open(double rate, double seconds) {
  return measure_open(rate, seconds, issue());
}

memory_figures measure_memory(std::size_t threads, std::uint64_t requests,
                              double mock_latency_ms, std::uint64_t seed) {
  bench_shape shape;
  shape.mock_latency_ms = mock_latency_ms;
  route_bench bench{shape, threads, seed};
  struct counters {
    std::atomic<std::uint64_t> completed{0};
    std::atomic<std::uint64_t> failed{0};
  } count;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));

  memory_figures m;
  m.requests = requests;
  m.mock_latency_ms = mock_latency_ms;
  m.rss_before = resident_bytes();
  const auto t0 = now_ns();
  for (std::uint64_t i = 0; i < requests; ++i)
    bench.get().async_complete(bench.request_for(i), [c = &count](route_result r) {
      if (!r.ok)
        c->failed.fetch_add(1, std::memory_order_relaxed);
      c->completed.fetch_add(1, std::memory_order_release);
    });
  m.issue_seconds = static_cast<double>(now_ns() - t0) / 1e9;

  // Sample while nothing has finished, until RSS stops growing (every
  // request parked at its deployment, waiting on its timer).
  const auto deadline = t0 + static_cast<std::int64_t>(mock_latency_ms * 0.8e6);
  std::int64_t last = 0;
  int stable = 0;
  while (now_ns() < deadline && stable < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    auto rss = resident_bytes();
    if (count.completed.load(std::memory_order_acquire) != 0)
      break;
    if (rss > m.rss_in_flight) {
      m.rss_in_flight = rss;
      m.in_flight_at_sample = requests;
    }
    stable = std::llabs(rss - last) < rss / 500 ? stable + 1 : 0;
    last = rss;
  }
  if (m.rss_in_flight == 0)
    throw std::runtime_error("memory: requests finished before RSS was sampled; "
                             "raise mock_latency_ms");
  m.bytes_per_request = static_cast<double>(m.rss_in_flight - m.rss_before)
                        / static_cast<double>(requests);

  const auto limit = now_ns() + static_cast<std::int64_t>((mock_latency_ms / 1000 + 120) * 1e9);
  while (count.completed.load(std::memory_order_acquire) < requests) {
    if (now_ns() > limit)
      throw std::runtime_error("memory: requests never answered");
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  m.failed = count.failed.load();
  return m;
}

} // namespace switchyard::bench
