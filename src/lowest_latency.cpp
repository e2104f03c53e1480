#include "switchyard/lowest_latency.hpp"

#include "pick_lowest.hpp"

#include <algorithm>

namespace switchyard {

lowest_latency::lowest_latency(std::size_t deployments, double buffer)
  : latency_(deployments), first_token_(deployments), available_(deployments, true),
    buffer_(buffer) {
}

void lowest_latency::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

void lowest_latency::samples::add(double value) {
  if (count == window)
    sum -= ms[next];
  else
    ++count;
  ms[next] = value;
  sum += value;
  next = static_cast<std::uint8_t>((next + 1) % window);
}

void lowest_latency::record_latency(local_index i, double latency_ms,
                                    bool timed_out) {
  if (i < latency_.size())
    latency_[i].add(timed_out ? timeout_penalty_ms : latency_ms);
}

void lowest_latency::record_first_token(local_index i, double first_token_ms) {
  if (i < first_token_.size())
    first_token_[i].add(first_token_ms);
}

double lowest_latency::average_ms(local_index i) const {
  return i < latency_.size() ? latency_[i].average() : 0.0;
}

std::optional<double> lowest_latency::first_token_average_ms(local_index i) const {
  if (i >= first_token_.size() || first_token_[i].count == 0)
    return std::nullopt;
  return first_token_[i].average();
}

double lowest_latency::rank_ms(local_index i, bool stream) const {
  if (stream)
    if (auto ttft = first_token_average_ms(i))
      return *ttft;
  return average_ms(i);
}

pick_result lowest_latency::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    latency_.size(),
    [&](local_index i) { return available_[i] && !is_excluded(ctx.excluded, i); },
    [&](local_index i) { return rank_ms(i, ctx.stream); }, 1.0 + buffer_, rng, scratch_);
}

void lowest_latency::on_finished(local_index i, const call_feedback& f, time_point) {
  // As LiteLLM's lowest-latency handler: successes record their latency
  // (and a streamed one its time to first token), timeouts the penalty in
  // the latency window only; other failures say nothing about speed.
  if (f.ok || f.timed_out)
    record_latency(i, f.latency_ms, f.timed_out);
  if (f.ok && f.first_token_ms)
    record_first_token(i, *f.first_token_ms);
}

} // namespace switchyard
