#include "switchyard/lowest_latency.hpp"

#include "pick_lowest.hpp"

#include <algorithm>

namespace switchyard {

lowest_latency::lowest_latency(std::size_t deployments, double buffer)
  : samples_(deployments), available_(deployments, true), buffer_(buffer) {
}

void lowest_latency::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

void lowest_latency::record_latency(local_index i, double latency_ms,
                                    bool timed_out) {
  if (i >= samples_.size())
    return;
  auto& s = samples_[i];
  double value = timed_out ? timeout_penalty_ms : latency_ms;
  if (s.count == window)
    s.sum -= s.ms[s.next];
  else
    ++s.count;
  s.ms[s.next] = value;
  s.sum += value;
  s.next = static_cast<std::uint8_t>((s.next + 1) % window);
}

double lowest_latency::average_ms(local_index i) const {
  if (i >= samples_.size())
    return 0;
  const auto& s = samples_[i];
  return s.count == 0 ? 0.0 : s.sum / s.count;
}

pick_result lowest_latency::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    samples_.size(),
    [&](local_index i) { return available_[i] && !is_excluded(ctx.excluded, i); },
    [&](local_index i) { return average_ms(i); }, 1.0 + buffer_, rng, scratch_);
}

void lowest_latency::on_finished(local_index i, const call_feedback& f, time_point) {
  // As LiteLLM's lowest-latency handler: successes record their latency,
  // timeouts the penalty; other failures say nothing about speed.
  if (f.ok || f.timed_out)
    record_latency(i, f.latency_ms, f.timed_out);
}

} // namespace switchyard
