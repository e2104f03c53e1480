#include "switchyard/group_picker.hpp"

#include "switchyard/cooldown.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>

namespace switchyard {

namespace {

std::vector<const deployment_config*> members_of(const router_config& config,
                                                 std::uint32_t group) {
  std::vector<const deployment_config*> out;
  for (auto d : config.groups.at(group).deployments)
    out.push_back(&config.deployments[d]);
  return out;
}

} // namespace

group_picker::group_picker(const router_config& config, std::uint32_t group,
                           const strategy_registry& registry)
  : pre_call_checks_(config.settings.enable_pre_call_checks),
    panic_threshold_(config.settings.panic_threshold),
    probe_(config.settings.cooldown_probe),
    counts_usage_(pre_call_checks_),
    usage_(members_of(config, group)) {
  if (config.settings.retry_budget)
    budget_.emplace(*config.settings.retry_budget);
  const auto members = members_of(config, group);
  std::map<int, std::vector<local_index>> by_order;
  for (local_index i = 0; i < members.size(); ++i) {
    by_order[members[i]->order.value_or(group_pick::unordered)].push_back(i);
    max_input_tokens_.push_back(members[i]->max_input_tokens);
  }
  tier_of_.resize(members.size());
  pos_in_tier_.resize(members.size());
  for (auto& [order, locals] : by_order) {
    tier t;
    t.order = order;
    t.members = locals;
    std::vector<const deployment_config*> tier_members;
    for (local_index p = 0; p < locals.size(); ++p) {
      tier_of_[locals[p]] = static_cast<std::uint32_t>(tiers_.size());
      pos_in_tier_[locals[p]] = p;
      tier_members.push_back(members[locals[p]]);
    }
    t.strategy = registry.make(config.settings.routing_strategy, tier_members,
                               config.settings);
    if (!t.strategy) // load_config validated the name
      throw std::invalid_argument("unknown routing strategy '"
                                  + config.settings.routing_strategy + "'");
    t.available = locals.size();
    counts_usage_ = counts_usage_ || t.strategy->keeps_usage();
    tiers_.push_back(std::move(t));
  }
  available_.assign(members.size(), true);
  effective_ = available_;
  probation_.assign(members.size(), false);
  probe_busy_.assign(members.size(), false);
}

void group_picker::set_available(const std::vector<bool>& available) {
  std::size_t count = 0;
  for (std::size_t i = 0; i < available_.size(); ++i) {
    const bool now = i < available.size() && available[i];
    // A cooldown that ended puts the deployment on probation.
    if (probe_ && now && !available_[i]) {
      probation_[i] = true;
      probe_busy_[i] = false;
    }
    available_[i] = now;
    count += now ? 1 : 0;
  }
  panic_ = panic_mode(count, available_.size(), panic_threshold_);
  for (std::size_t i = 0; i < available_.size(); ++i)
    effective_[i] = panic_ || available_[i];
  std::vector<bool> flags;
  for (auto& t : tiers_) {
    flags.clear();
    t.available = 0;
    for (auto m : t.members) {
      flags.push_back(effective_[m]);
      t.available += effective_[m] ? 1 : 0;
    }
    t.strategy->set_available(flags);
  }
}

bool group_picker::passes_pre_call(local_index i, std::uint32_t tokens,
                                   time_point now, bool& context_window) const {
  const auto& limit = max_input_tokens_[i];
  if (limit && static_cast<std::int64_t>(tokens) > *limit) {
    context_window = true;
    return false;
  }
  return !usage_.at_rpm_limit(i, now);
}

group_pick group_picker::pick(const pick_request& request, time_point now,
                              random_source& rng) {
  group_pick out;
  if (budget_ && request.extra && !budget_->allows_extra(now)) {
    out.budget_refused = true;
    return out;
  }
  for (auto& t : tiers_) {
    if (request.min_order && t.order < *request.min_order)
      continue;
    if (t.available == 0)
      continue;
    // Candidates of this tier: available and through the pre-call checks;
    // the ones the checks remove are excluded for this pick.
    scratch_.clear();
    if (pre_call_checks_) {
      std::size_t passing = 0;
      for (local_index p = 0; p < t.members.size(); ++p) {
        auto m = t.members[p];
        if (!effective_[m])
          continue;
        if (passes_pre_call(m, request.estimated_tokens, now, out.context_window))
          ++passing;
        else
          scratch_.push_back(p);
      }
      if (passing == 0)
        continue;
    }
    // The lowest tier with a candidate: the request's exclusions apply
    // inside it, and it is never widened to the next tier here.
    for (auto e : request.excluded)
      if (e < tier_of_.size() && &tiers_[tier_of_[e]] == &t)
        scratch_.push_back(pos_in_tier_[e]);
    // A deployment on probation whose one call is in flight.
    if (probe_)
      for (local_index p = 0; p < t.members.size(); ++p)
        if (probe_busy_[t.members[p]])
          scratch_.push_back(p);
    pick_context ctx{scratch_, request.estimated_tokens, now, request.stream};
    out.order = t.order;
    out.context_window = false;
    auto r = t.strategy->pick(ctx, rng);
    if (!r.ok())
      return out;
    t.strategy->on_picked(*r.chosen, ctx);
    out.chosen = t.members[*r.chosen];
    if (pre_call_checks_)
      usage_.on_picked(*out.chosen, now);
    if (budget_) {
      if (request.extra)
        budget_->record_extra(now);
      else
        budget_->record_first(now);
    }
    if (probation_[*out.chosen]) {
      probe_busy_[*out.chosen] = true;
      out.probe = true;
    }
    return out;
  }
  return out;
}

void group_picker::on_finished(local_index i, const call_feedback& feedback,
                               time_point now) {
  if (i >= tier_of_.size())
    return;
  if (probation_[i]) {
    probe_busy_[i] = false;
    if (feedback.ok)
      probation_[i] = false; // a success ends the probation
  }
  tiers_[tier_of_[i]].strategy->on_finished(pos_in_tier_[i], feedback, now);
  if (pre_call_checks_)
    usage_.on_finished(i, feedback.tokens, now);
}

void group_picker::set_remote_usage(local_index i, std::uint64_t requests,
                                    std::uint64_t tokens, time_point now) {
  if (i >= tier_of_.size())
    return;
  usage_.set_remote(i, requests, tokens, now);
  tiers_[tier_of_[i]].strategy->set_remote_usage(pos_in_tier_[i], requests, tokens, now);
}

std::optional<int> next_order(const router_config& config, std::uint32_t group,
                              int order) {
  std::optional<int> next;
  for (auto d : config.groups.at(group).deployments) {
    int o = config.deployments[d].order.value_or(group_pick::unordered);
    if (o > order && (!next || o < *next))
      next = o;
  }
  return next;
}

} // namespace switchyard
