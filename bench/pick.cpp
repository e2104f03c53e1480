#include "pick.hpp"

#include "load.hpp"

#include <nlohmann/json.hpp>

#include "switchyard/config.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/simple_shuffle.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <vector>

namespace switchyard::bench {

namespace {

// Keeps `value` alive as far as the optimiser can tell.
inline void keep(std::uint64_t& value) {
  asm volatile("" : "+r"(value) : : "memory");
}

volatile std::uint64_t pick_sink = 0;

// Runs `n` picks and returns the elapsed nanoseconds.
std::int64_t timed_picks(routing_strategy& strategy, random_source& rng,
                         std::uint64_t n, std::uint64_t& checksum) {
  const exclusion_list none;
  const auto t0 = now_ns();
  for (std::uint64_t i = 0; i < n; ++i) {
    auto r = strategy.pick(none, rng);
    std::uint64_t chosen = r.chosen.value_or(0xffffffffu);
    keep(chosen);
    checksum += chosen;
  }
  return now_ns() - t0;
}

// Calibrates `timed` (n picks -> elapsed ns), then runs 7 rounds sized to
// `seconds` / 7 each; the median round. Every pick must have chosen one of
// the `deployments` (the checksum's mean).
pick_figures timed_rounds(std::size_t deployments, double seconds, std::uint64_t& checksum,
                          const std::function<std::int64_t(std::uint64_t)>& timed) {
  timed(10'000);
  const auto probe = timed(10'000);
  constexpr int rounds = 7;
  const double per_pick = std::max<double>(1.0, static_cast<double>(probe) / 10'000);
  const auto n = static_cast<std::uint64_t>(
    std::max(10'000.0, seconds / rounds * 1e9 / per_pick));

  std::vector<double> ns;
  const std::uint64_t before = checksum;
  for (int r = 0; r < rounds; ++r)
    ns.push_back(static_cast<double>(timed(n)) / static_cast<double>(n));
  const double mean = static_cast<double>(checksum - before) / static_cast<double>(n * rounds);
  if (!(mean >= 0 && mean < static_cast<double>(deployments)))
    throw std::runtime_error("pick: a pick chose no deployment");
  pick_sink = checksum;

  std::sort(ns.begin(), ns.end());
  pick_figures f;
  f.deployments = deployments;
  f.ns_per_pick = ns[rounds / 2];
  f.min_ns_per_pick = ns.front();
  f.picks = n * rounds;
  return f;
}

} // namespace

pick_figures measure_pick(std::size_t deployments, double seconds, std::uint64_t seed) {
  simple_shuffle::metric_values values;
  for (std::size_t i = 0; i < deployments; ++i) {
    values[0].push_back(static_cast<double>(1 + i % 7)); // weight: uneven
    values[1].push_back(std::nullopt);
    values[2].push_back(std::nullopt);
  }
  simple_shuffle strategy{std::move(values)};
  seeded_random rng{seed};
  std::uint64_t checksum = 0;
  return timed_rounds(deployments, seconds, checksum,
                      [&](std::uint64_t n) { return timed_picks(strategy, rng, n, checksum); });
}

pick_figures measure_group_pick(const std::string& strategy, std::size_t deployments,
                                double seconds, std::uint64_t seed) {
  nlohmann::json model_list = nlohmann::json::array();
  for (std::size_t i = 0; i < deployments; ++i)
    model_list.push_back(
      {{"model_name", "g"},
       {"litellm_params",
        {{"model", "mock/d" + std::to_string(i)}, {"mock_response", "ok"},
         {"weight", static_cast<double>(1 + i % 7)}, {"rpm", 1'000'000'000}, {"tpm", 1'000'000'000}}},
       {"model_info", {{"id", "d" + std::to_string(i)}}}});
  const auto config = load_config(nlohmann::ordered_json{
    {"model_list", model_list}, {"router_settings", {{"routing_strategy", strategy}}}});
  group_picker picker{config, 0};
  std::vector<bool> available(deployments, true);
  for (std::size_t i = 0; i < deployments; i += 8)
    available[i] = false; // cooling down
  picker.set_available(available);
  pick_request request;
  request.estimated_tokens = 20;
  // A third hop: two deployments already tried (available ones).
  request.excluded = {1, static_cast<local_index>(deployments > 2 ? 2 : 1)};
  seeded_random rng{seed};
  auto now = clock_type::now();
  call_feedback feedback;
  feedback.ok = true;
  feedback.tokens = 40;
  std::uint64_t checksum = 0;
  auto timed = [&](std::uint64_t n) {
    const auto t0 = now_ns();
    for (std::uint64_t i = 0; i < n; ++i) {
      // Time moves 1 us a pick (usage windows and latency samples roll).
      now += std::chrono::microseconds(1);
      auto r = picker.pick(request, now, rng);
      std::uint64_t chosen = r.chosen.value_or(0xffffffffu);
      keep(chosen);
      checksum += chosen;
      if (r.chosen) {
        feedback.latency_ms = static_cast<double>(1 + chosen % 5);
        picker.on_finished(*r.chosen, feedback, now);
      }
    }
    return now_ns() - t0;
  };
  return timed_rounds(deployments, seconds, checksum, timed);
}

} // namespace switchyard::bench
