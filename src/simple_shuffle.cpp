#include "switchyard/simple_shuffle.hpp"

#include <algorithm>

namespace switchyard {

simple_shuffle::simple_shuffle(metric_values values)
  : values_(std::move(values)), size_(0) {
  for (const auto& column : values_)
    size_ = std::max(size_, column.size());
  // A column may be shorter than the others: its missing values are unset.
  for (auto& column : values_)
    column.resize(size_);
  position_.assign(size_, -1);
  set_available(std::vector<bool>(size_, true));
}

std::unique_ptr<routing_strategy> simple_shuffle::from_config(
  const std::vector<const deployment_config*>& deployments) {
  metric_values values;
  for (const auto* d : deployments) {
    values[0].push_back(d->weight);
    values[1].push_back(d->rpm);
    values[2].push_back(d->tpm);
  }
  return std::make_unique<simple_shuffle>(std::move(values));
}

void simple_shuffle::set_available(const std::vector<bool>& available) {
  available_.clear();
  std::fill(position_.begin(), position_.end(), -1);
  for (local_index i = 0; i < size_; ++i)
    if (i < available.size() && available[i]) {
      position_[i] = static_cast<std::int32_t>(available_.size());
      available_.push_back(i);
    }
  for (std::size_t m = 0; m < metrics_.size(); ++m) {
    auto& idx = metrics_[m];
    idx.cumulative.clear();
    idx.total = 0;
    idx.setters = 0;
    for (auto i : available_) {
      const auto& v = values_[m][i];
      if (v)
        ++idx.setters;
      idx.total += v.value_or(0.0);
      idx.cumulative.push_back(idx.total);
    }
  }
}

pick_result simple_shuffle::pick(const pick_context& ctx, random_source& rng) {
  const auto& excluded = ctx.excluded;
  // Excluded deployments that are available, as positions in available_,
  // ascending: the intervals to skip.
  scratch_.clear();
  for (auto e : excluded)
    if (e < size_ && position_[e] >= 0)
      scratch_.push_back(static_cast<std::uint32_t>(position_[e]));
  std::sort(scratch_.begin(), scratch_.end());
  scratch_.erase(std::unique(scratch_.begin(), scratch_.end()), scratch_.end());
  const std::size_t remaining = available_.size() - scratch_.size();
  if (remaining == 0)
    return {};

  for (std::size_t m = 0; m < metrics_.size(); ++m) {
    const auto& idx = metrics_[m];
    std::uint32_t setters = idx.setters;
    double total = idx.total;
    for (auto p : scratch_) {
      const auto& v = values_[m][available_[p]];
      if (v)
        --setters;
      total -= v.value_or(0.0);
    }
    // "Any candidate sets it"; a zero total passes to the next metric.
    if (setters == 0 || !(total > 0))
      continue;
    // Draw in the total without the excluded intervals, then shift the draw
    // past each excluded interval that starts at or before it.
    double target = rng.next_unit() * total;
    for (auto p : scratch_) {
      double start = p == 0 ? 0.0 : idx.cumulative[p - 1];
      if (start <= target)
        target += idx.cumulative[p] - start;
    }
    auto it = std::upper_bound(idx.cumulative.begin(), idx.cumulative.end(),
                               target);
    auto pos = static_cast<std::size_t>(it - idx.cumulative.begin());
    // Rounding can land on the end or on an excluded interval: take the last
    // positive, non-excluded one at or before it.
    if (pos >= available_.size())
      pos = available_.size() - 1;
    auto excluded_pos = [this](std::size_t q) {
      return std::binary_search(scratch_.begin(), scratch_.end(),
                                static_cast<std::uint32_t>(q));
    };
    auto weight_at = [&](std::size_t q) {
      return idx.cumulative[q] - (q == 0 ? 0.0 : idx.cumulative[q - 1]);
    };
    while (pos > 0 && (excluded_pos(pos) || !(weight_at(pos) > 0)))
      --pos;
    if (excluded_pos(pos) || !(weight_at(pos) > 0))
      continue; // unreachable with total > 0; kept so a pick is never wrong
    return {available_[pos]};
  }

  // No metric with a positive total: uniform among the remaining.
  auto r = static_cast<std::size_t>(rng.next_unit() * static_cast<double>(remaining));
  if (r >= remaining)
    r = remaining - 1;
  for (auto p : scratch_)
    if (p <= r)
      ++r;
  return {available_[r]};
}

} // namespace switchyard
