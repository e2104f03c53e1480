#include "switchyard/retry_budget.hpp"

namespace switchyard {

retry_budget::retry_budget(const retry_budget_settings& settings) : settings_(settings) {
}

void retry_budget::prune(time_point now) {
  const auto window = std::chrono::duration_cast<time_point::duration>(
    std::chrono::duration<double>(settings_.window_s));
  // A call exactly one window old has left it.
  while (!firsts_.empty() && now - firsts_.front() >= window)
    firsts_.pop_front();
  while (!extras_.empty() && now - extras_.front() >= window)
    extras_.pop_front();
}

void retry_budget::record_first(time_point now) {
  prune(now);
  firsts_.push_back(now);
}

double retry_budget::allowance(time_point now) {
  prune(now);
  return settings_.ratio * static_cast<double>(firsts_.size())
         + settings_.min_per_second * settings_.window_s;
}

std::size_t retry_budget::extras(time_point now) {
  prune(now);
  return extras_.size();
}

bool retry_budget::allows_extra(time_point now) {
  // One more must fit: extras + 1 <= allowance.
  const bool ok = static_cast<double>(extras(now) + 1) <= allowance(now);
  if (!ok)
    ++refused_;
  return ok;
}

void retry_budget::record_extra(time_point now) {
  prune(now);
  extras_.push_back(now);
}

} // namespace switchyard
