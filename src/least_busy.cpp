#include "switchyard/least_busy.hpp"

#include "pick_lowest.hpp"

namespace switchyard {

least_busy::least_busy(std::size_t deployments)
  : in_flight_(deployments, 0), available_(deployments, true) {
}

void least_busy::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

pick_result least_busy::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    in_flight_.size(),
    [&](local_index i) { return available_[i] && !is_excluded(ctx.excluded, i); },
    [&](local_index i) { return in_flight_[i]; }, 1.0, rng, scratch_);
}

void least_busy::on_picked(local_index i, const pick_context&) {
  ++in_flight_.at(i);
}

void least_busy::on_finished(local_index i, const call_feedback&, time_point) {
  auto& n = in_flight_.at(i);
  if (n > 0)
    --n;
}

} // namespace switchyard
