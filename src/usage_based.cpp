#include "switchyard/usage_based.hpp"

#include "pick_lowest.hpp"

#include <limits>

namespace switchyard {

usage_based::usage_based(const std::vector<const deployment_config*>& deployments)
  : limits_(deployments), available_(deployments.size(), true) {
}

void usage_based::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

pick_result usage_based::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    available_.size(),
    [&](local_index i) {
      return available_[i] && !is_excluded(ctx.excluded, i)
             && limits_.within(i, ctx.estimated_tokens, ctx.now);
    },
    [&](local_index i) { return limits_.usage().tokens(i, ctx.now); }, 1.0, rng,
    scratch_);
}

void usage_based::on_picked(local_index i, const pick_context& ctx) {
  limits_.on_picked(i, ctx.now);
}

void usage_based::on_finished(local_index i, const call_feedback& f, time_point now) {
  limits_.on_finished(i, f.tokens, now);
}

cost_based::cost_based(const std::vector<const deployment_config*>& deployments)
  : limits_(deployments), available_(deployments.size(), true) {
  for (const auto* d : deployments) {
    if (d->input_cost_per_token || d->output_cost_per_token)
      cost_.push_back(d->input_cost_per_token.value_or(0)
                      + d->output_cost_per_token.value_or(0));
    else
      cost_.push_back(std::numeric_limits<double>::infinity());
  }
}

void cost_based::set_available(const std::vector<bool>& available) {
  copy_available(available_, available);
}

pick_result cost_based::pick(const pick_context& ctx, random_source& rng) {
  return pick_lowest(
    available_.size(),
    [&](local_index i) {
      return available_[i] && !is_excluded(ctx.excluded, i)
             && limits_.within(i, ctx.estimated_tokens, ctx.now);
    },
    [&](local_index i) { return cost_[i]; }, 1.0, rng, scratch_);
}

void cost_based::on_picked(local_index i, const pick_context& ctx) {
  limits_.on_picked(i, ctx.now);
}

void cost_based::on_finished(local_index i, const call_feedback& f, time_point now) {
  limits_.on_finished(i, f.tokens, now);
}

} // namespace switchyard
