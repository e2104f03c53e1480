#include "switchyard/p2c_peak_ewma.hpp"

#include "pick_lowest.hpp"

#include <cmath>

namespace switchyard {

p2c_peak_ewma::p2c_peak_ewma(metric_values values, double decay_seconds)
  : values_(std::move(values)), decay_s_(decay_seconds),
    available_(values_[0].size(), true), ewma_(values_[0].size(), 0),
    stamp_(values_[0].size()), in_flight_(values_[0].size(), 0) {
}

std::unique_ptr<routing_strategy>
p2c_peak_ewma::from_config(const std::vector<const deployment_config*>& deployments,
                           double decay_seconds) {
  metric_values v;
  for (const auto* d : deployments) {
    v[0].push_back(d->weight);
    v[1].push_back(d->rpm);
    v[2].push_back(d->tpm);
  }
  return std::make_unique<p2c_peak_ewma>(std::move(v), decay_seconds);
}

void p2c_peak_ewma::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

double p2c_peak_ewma::cost(local_index i) const {
  return ewma_.at(i) * (in_flight_.at(i) + 1.0);
}

local_index p2c_peak_ewma::draw(const std::vector<local_index>& candidates,
                                std::optional<local_index> skip,
                                random_source& rng) const {
  // simple-shuffle's metric choice, over the candidates of this draw.
  for (const auto& metric : values_) {
    double total = 0;
    for (auto i : candidates)
      if (i != skip)
        total += metric[i].value_or(0);
    if (!(total > 0))
      continue;
    double r = rng.next_unit() * total;
    local_index last = 0;
    for (auto i : candidates) {
      if (i == skip || !(metric[i].value_or(0) > 0))
        continue;
      last = i;
      r -= *metric[i];
      if (r < 0)
        return i;
    }
    return last; // rounding at the top end
  }
  const std::size_t n = candidates.size() - (skip ? 1 : 0);
  auto k = static_cast<std::size_t>(rng.next_unit() * n);
  if (k >= n)
    k = n - 1;
  for (auto i : candidates) {
    if (i == skip)
      continue;
    if (k-- == 0)
      return i;
  }
  return candidates.back();
}

pick_result p2c_peak_ewma::pick(const pick_context& ctx, random_source& rng) {
  scratch_.clear();
  for (local_index i = 0; i < available_.size(); ++i)
    if (available_[i] && !is_excluded(ctx.excluded, i))
      scratch_.push_back(i);
  if (scratch_.empty())
    return {};
  const local_index a = draw(scratch_, std::nullopt, rng);
  if (scratch_.size() == 1)
    return {a};
  const local_index b = draw(scratch_, a, rng);
  return {cost(b) < cost(a) ? b : a};
}

void p2c_peak_ewma::on_picked(local_index i, const pick_context&) {
  ++in_flight_.at(i);
}

void p2c_peak_ewma::on_finished(local_index i, const call_feedback& f, time_point now) {
  auto& n = in_flight_.at(i);
  if (n > 0)
    --n;
  if (f.cancelled || !(f.ok || f.timed_out))
    return;
  auto& e = ewma_.at(i);
  auto& stamp = stamp_.at(i);
  const double sample = f.latency_ms;
  if (!stamp || sample > e) {
    e = sample; // the peak: a slower sample counts in full at once
  } else {
    const double dt = std::chrono::duration<double>(now - *stamp).count();
    const double w = std::exp(-std::max(0.0, dt) / decay_s_);
    e = e * w + sample * (1 - w);
  }
  stamp = now;
}

} // namespace switchyard
