#include "switchyard/lowest_latency.hpp"

#include <algorithm>

namespace switchyard {

lowest_latency::lowest_latency(std::size_t deployments, double buffer)
  : samples_(deployments), available_(deployments, true), buffer_(buffer) {
}

void lowest_latency::set_available(const std::vector<bool>& available) {
  for (std::size_t i = 0; i < available_.size(); ++i)
    available_[i] = i < available.size() && available[i];
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

pick_result lowest_latency::pick(const exclusion_list& excluded,
                                 random_source& rng) {
  double lowest = 0;
  bool any = false;
  auto candidate = [&](local_index i) {
    return available_[i]
           && std::find(excluded.begin(), excluded.end(), i) == excluded.end();
  };
  for (local_index i = 0; i < samples_.size(); ++i)
    if (candidate(i)) {
      double avg = average_ms(i);
      if (!any || avg < lowest)
        lowest = avg;
      any = true;
    }
  if (!any)
    return {};
  const double limit = lowest * (1.0 + buffer_);
  scratch_.clear();
  for (local_index i = 0; i < samples_.size(); ++i)
    if (candidate(i) && average_ms(i) <= limit)
      scratch_.push_back(i);
  auto r = static_cast<std::size_t>(rng.next_unit() * static_cast<double>(scratch_.size()));
  return {scratch_[std::min(r, scratch_.size() - 1)]};
}

} // namespace switchyard
