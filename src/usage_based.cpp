#include "switchyard/usage_based.hpp"

#include "pick_lowest.hpp"

#include <limits>

namespace switchyard {

limited_lowest::limited_lowest(const std::vector<const deployment_config*>& deployments)
  : limits_(deployments), available_(deployments.size(), true) {
}

void limited_lowest::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

pick_result limited_lowest::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    available_.size(),
    [&](local_index i) {
      return available_[i] && !is_excluded(ctx.excluded, i)
             && limits_.within(i, ctx.estimated_tokens, ctx.now);
    },
    [&](local_index i) { return key(i, ctx.now); }, 1.0, rng, scratch_);
}

void limited_lowest::on_picked(local_index i, const pick_context& ctx) {
  limits_.on_picked(i, ctx.now);
}

void limited_lowest::on_finished(local_index i, const call_feedback& f, time_point now) {
  limits_.on_finished(i, f.tokens, now);
}

void limited_lowest::set_remote_usage(local_index i, std::uint64_t requests,
                                      std::uint64_t tokens, time_point now) {
  limits_.set_remote(i, requests, tokens, now);
}

double usage_based::key(local_index i, time_point now) const {
  return static_cast<double>(limits().usage().tokens(i, now));
}

cost_based::cost_based(const std::vector<const deployment_config*>& deployments)
  : limited_lowest(deployments) {
  for (const auto* d : deployments) {
    if (d->input_cost_per_token || d->output_cost_per_token)
      cost_.push_back(d->input_cost_per_token.value_or(0)
                      + d->output_cost_per_token.value_or(0));
    else
      cost_.push_back(std::numeric_limits<double>::infinity());
  }
}

double cost_based::key(local_index i, time_point) const {
  return cost_[i];
}

} // namespace switchyard
