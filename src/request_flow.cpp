#include "switchyard/request_flow.hpp"

#include "switchyard/fallback.hpp"
#include "switchyard/retry.hpp"
#include "switchyard/token_estimate.hpp"

#include <algorithm>
#include <cmath>

namespace switchyard {

namespace {

flow_action make_action(flow_action::kind what, std::uint32_t group = 0) {
  flow_action a;
  a.what = what;
  a.group = group;
  return a;
}

std::string unknown_group_message(const router_config& config,
                                  const std::string& model) {
  std::string known;
  for (const auto& g : config.groups) {
    if (!known.empty())
      known += ", ";
    known += g.name;
  }
  return "model '" + model
         + "' is not a model group in this router's configuration (known: "
         + known + ")";
}

void add_once(exclusion_list& list, local_index i) {
  if (std::find(list.begin(), list.end(), i) == list.end())
    list.push_back(i);
}

router_error no_deployments(const std::string& group,
                            std::optional<seconds_d> retry_in) {
  // "Try again in N seconds" only when a cooldown says when: a group out
  // of rpm/tpm for the minute has no such figure.
  std::string message = "No deployments available for selected model";
  if (retry_in)
    message += ", Try again in "
               + std::to_string(static_cast<long long>(std::ceil(retry_in->count())))
               + " seconds";
  auto e = router_error::make(error_kind::no_deployments_available,
                              message + ". Passed model=" + group);
  if (retry_in)
    e.retry_after_s = retry_in->count();
  return e;
}

} // namespace

std::string response_model_name(std::string_view litellm_model) {
  // LiteLLM answers with the model after get_llm_provider took the
  // provider off: "openai/gpt-4o" -> "gpt-4o", "openrouter/a/b" -> "a/b".
  const auto slash = litellm_model.find('/');
  if (slash == std::string_view::npos || slash + 1 == litellm_model.size())
    return std::string(litellm_model);
  return std::string(litellm_model.substr(slash + 1));
}

std::string public_model_name(const deployment_config& d) {
  return d.model_from_env ? d.model_name : response_model_name(d.model);
}

request_flow::request_flow(std::shared_ptr<const router_config> config,
                           request_ptr request)
  : config_(std::move(config)), request_(std::move(request)) {
}

flow_action request_flow::start() {
  // A request built in code has not been through parse_chat_request.
  if (auto invalid = validate_chat_request(*request_))
    return finish_error(std::move(*invalid));
  pick_.estimated_tokens = estimate_prompt_tokens(request_->messages);
  auto g = config_->resolve_group(request_->model);
  if (!g)
    return finish_error(router_error::make(
      error_kind::bad_request, unknown_group_message(*config_, request_->model)));
  first_group_ = *g;
  return start_hop(*g);
}

flow_action request_flow::start_hop(std::uint32_t group) {
  group_ = group;
  hop_excluded_.clear();
  pick_.min_order.reset();
  tier_ = group_pick::unordered;
  reset_hop_state();
  return pick_action();
}

void request_flow::reset_hop_state() {
  retries_used_ = 0;
  attempted_in_hop_ = false;
  last_error_.reset();
  failed_in_hop_.clear();
  failed_in_round_.clear();
  retry_stage_ = retry_stage::none;
}

flow_action request_flow::pick_action(bool extra) {
  pick_.excluded = hop_excluded_;
  pick_.stream = request_->stream;
  pick_.extra = extra;
  return make_action(flow_action::kind::pick, group_);
}

flow_action request_flow::retry_pick(retry_stage stage) {
  auto a = pick_action(true);
  retry_stage_ = stage;
  if (stage == retry_stage::round)
    for (auto i : failed_in_round_)
      add_once(pick_.excluded, i);
  else if (stage == retry_stage::avoid_last)
    add_once(pick_.excluded, last_deployment_);
  return a;
}

flow_action request_flow::on_picked(const group_pick& picked,
                                    std::optional<seconds_d> retry_in) {
  if (hedge_pending_) {
    hedge_pending_ = false;
    // No hedge (nothing left, or the budget): the calls in flight decide.
    if (picked.budget_refused)
      ++budget_refused_;
    if (!picked.chosen || in_flight_.empty() || committed_)
      return make_action(flow_action::kind::idle, group_);
    ++hedges_;
    last_deployment_ = *picked.chosen;
    in_flight_.push_back(in_call{*picked.chosen, true});
    auto a = make_action(flow_action::kind::call, group_);
    a.deployment = *picked.chosen;
    a.hedge = true;
    a.delay = call_timeout(config_->settings, current_deployment(), *request_);
    a.hedge_after = hedge_delay();
    return a;
  }
  // The group's retry budget is spent: no retry, failover or next tier
  // inside the group; the hop's error goes on to the cross-group
  // fallbacks (or to the caller).
  if (picked.budget_refused) {
    ++budget_refused_;
    failover_probe_ = false;
    retry_stage_ = retry_stage::none;
    if (last_error_ && !original_)
      original_ = *last_error_;
    if (last_error_)
      hop_error_ = *last_error_;
    return to_fallbacks();
  }
  if (failover_probe_) {
    failover_probe_ = false;
    // Nothing healthy is left in the tier besides the excluded: it is
    // exhausted without spending a hop (the PR's cooldown fix).
    if (!picked.chosen)
      return next_tier_or_fallbacks();
    ++failovers_;
    start_same_group_hop();
  }
  if (!picked.chosen) {
    switch (retry_stage_) {
      case retry_stage::round: {
        // Every candidate left failed in this round: a new round, which
        // does not start with the deployment that failed last unless it
        // is the only candidate (then it is the round's only member).
        const bool only_last = failed_in_round_.size() == 1;
        failed_in_round_.clear();
        return retry_pick(only_last ? retry_stage::any : retry_stage::avoid_last);
      }
      case retry_stage::avoid_last:
        return retry_pick(retry_stage::any);
      case retry_stage::any:
      case retry_stage::none:
        break;
    }
    retry_stage_ = retry_stage::none;
    // A retry that finds nothing healthy ends the hop with the latest error.
    if (attempted_in_hop_ && last_error_)
      return hop_failed(*last_error_);
    if (picked.context_window)
      return hop_failed(router_error::make(
        error_kind::context_window_exceeded,
        "the request's estimated " + std::to_string(pick_.estimated_tokens)
          + " prompt tokens exceed max_input_tokens of every deployment of model group '"
          + config_->groups[group_].name + "' (enable_pre_call_checks)"));
    return hop_failed(no_deployments(config_->groups[group_].name, retry_in));
  }
  retry_stage_ = retry_stage::none;
  last_deployment_ = *picked.chosen;
  tier_ = picked.order;
  attempted_in_hop_ = true;
  auto a = make_action(flow_action::kind::call, group_);
  a.deployment = last_deployment_;
  a.force_context_window = request_->mock_testing_context_fallbacks && hop_ == 0;
  a.delay = call_timeout(config_->settings, current_deployment(), *request_);
  in_flight_.push_back(in_call{last_deployment_, false});
  a.hedge_after = hedge_delay();
  return a;
}

std::optional<seconds_d> request_flow::hedge_delay() const {
  // A stream is hedged until its first chunk commits it (on_hedge_due).
  if (hedges_ >= config_->settings.hedge_max)
    return std::nullopt;
  auto ms = request_->hedge_after_ms ? request_->hedge_after_ms
                                     : config_->settings.hedge_after_ms;
  if (!ms)
    return std::nullopt;
  return seconds_d(*ms / 1000.0);
}

flow_action request_flow::on_hedge_due() {
  if (in_flight_.empty() || committed_ || hedge_pending_ || !hedge_delay())
    return make_action(flow_action::kind::idle, group_);
  // The request's exclusions, the hop's failures and the calls in flight.
  auto a = pick_action(true);
  for (auto i : failed_in_hop_)
    add_once(pick_.excluded, i);
  for (const auto& c : in_flight_)
    add_once(pick_.excluded, c.local);
  hedge_pending_ = true;
  return a;
}

flow_action request_flow::start_same_group_hop() {
  ++depth_;
  ++hop_;
  reset_hop_state();
  return pick_action(true);
}

const deployment_config& request_flow::current_deployment() const {
  return config_->deployments[config_->groups[group_].deployments[last_deployment_]];
}

namespace {

// The gate's test: a chunk that carries content, a tool call or a finish
// reason (an empty content string or a role alone does not).
bool carries_output(const nlohmann::json& chunk) {
  const auto* choices = chunk.is_object() && chunk.contains("choices") ? &chunk["choices"] : nullptr;
  if (!choices || !choices->is_array())
    return false;
  for (const auto& c : *choices) {
    if (!c.is_object())
      continue;
    if (auto f = c.find("finish_reason"); f != c.end() && !f->is_null())
      return true;
    auto d = c.find("delta");
    if (d == c.end() || !d->is_object())
      continue;
    if (auto t = d->find("content"); t != d->end() && t->is_string() && !t->get_ref<const std::string&>().empty())
      return true;
    if (auto t = d->find("tool_calls"); t != d->end() && t->is_array() && !t->empty())
      return true;
    if (auto t = d->find("function_call"); t != d->end() && !t->is_null())
      return true;
  }
  return false;
}

} // namespace

std::vector<nlohmann::json> request_flow::on_chunk(nlohmann::json chunk) {
  return on_chunk(last_deployment_, std::move(chunk));
}

std::vector<nlohmann::json> request_flow::on_chunk(local_index which, nlohmann::json chunk) {
  std::vector<nlohmann::json> out;
  if (committed_ && which != committed_call_)
    return out; // a hedge that lost the race
  if (!committed_) {
    if (!carries_output(chunk)) {
      held_.emplace_back(which, std::move(chunk));
      return out;
    }
    committed_ = true;
    committed_call_ = which;
    last_deployment_ = which;
    for (auto& [from, held] : held_)
      if (from == which)
        out.push_back(std::move(held));
    held_.clear();
  }
  out.push_back(std::move(chunk));
  return out;
}

void request_flow::trace_cancelled(local_index loser, bool hedge, const std::string& group) {
  attempt lost;
  lost.deployment_id = config_->deployments[config_->groups[group_].deployments[loser]].id;
  lost.model_group = group;
  lost.outcome = error_kind::cancelled;
  lost.hedge = hedge;
  attempts_.push_back(std::move(lost));
}

stream_commit request_flow::commit_info() const {
  stream_commit c;
  const auto& d = config_->deployments[config_->groups[group_].deployments[committed_call_]];
  c.deployment_id = d.id;
  c.model_group = d.model_name;
  // Before take_losers: the losers still in flight become cancelled attempts.
  c.attempts = static_cast<int>(attempts_.size() + in_flight_.size());
  c.fallback_depth = depth_;
  return c;
}

std::vector<local_index> request_flow::take_losers() {
  std::vector<local_index> out;
  if (!committed_)
    return out;
  const auto& group = config_->groups[group_].name;
  for (auto c = in_flight_.begin(); c != in_flight_.end();) {
    if (c->local == committed_call_) {
      ++c;
      continue;
    }
    out.push_back(c->local);
    trace_cancelled(c->local, c->hedge, group);
    c = in_flight_.erase(c);
  }
  return out;
}

route_result request_flow::abort(router_error e) {
  auto& r = result();
  r.ok = false;
  r.error = std::move(e);
  r.response = nullptr;
  return take_result();
}

flow_action request_flow::on_call(call_outcome outcome) {
  return on_call(last_deployment_, std::move(outcome));
}

flow_action request_flow::on_call(local_index which, call_outcome outcome) {
  bool hedge = false;
  if (auto c = std::find_if(in_flight_.begin(), in_flight_.end(),
                            [&](const in_call& x) { return x.local == which; });
      c != in_flight_.end()) {
    hedge = c->hedge;
    in_flight_.erase(c);
  }
  last_deployment_ = which;
  const auto& d = current_deployment();
  // A stream that ended "successfully" without anything to commit to is a
  // failure like any other before the commit.
  if (request_->stream && outcome.ok && !committed_) {
    outcome.ok = false;
    outcome.error = router_error::make(
      error_kind::internal_server,
      "deployment '" + d.id + "' ended its stream without sending any content");
  }
  if (!outcome.ok)
    held_.erase(std::remove_if(held_.begin(), held_.end(),
                               [which](const auto& h) { return h.first == which; }),
                held_.end());
  attempt a;
  a.deployment_id = d.id;
  a.model_group = d.model_name;
  a.latency_ms = outcome.latency_ms;
  a.hedge = hedge;
  if (!outcome.ok)
    a.outcome = outcome.error.kind;
  // A reply the provider filtered is a content-policy failure when there
  // is somewhere to send it (LiteLLM's _should_raise_content_policy_error).
  if (outcome.ok && outcome.finish_reason == "content_filter"
      && content_policy_fallback_exists(*config_, group_)) {
    outcome.ok = false;
    outcome.error = router_error::make(
      error_kind::content_policy_violation,
      "deployment '" + d.id + "' filtered the reply (finish_reason content_filter)");
    a.outcome = outcome.error.kind;
  }
  attempts_.push_back(std::move(a));
  if (outcome.ok) {
    // The losers: cancelled by the orchestrator, no failures.
    for (const auto& c : in_flight_)
      trace_cancelled(c.local, c.hedge, d.model_name);
    in_flight_.clear();
    auto& r = result();
    r.ok = true;
    r.content = std::move(outcome.content);
    r.finish_reason = std::move(outcome.finish_reason);
    r.deployment_id = d.id;
    r.model_group = d.model_name;
    r.model = public_model_name(d);
    r.fallback_depth = depth_;
    r.usage_estimated = !(outcome.prompt_tokens && outcome.completion_tokens);
    if (outcome.prompt_tokens)
      r.prompt_tokens = *outcome.prompt_tokens;
    r.completion_tokens = outcome.completion_tokens
                                  ? *outcome.completion_tokens
                                  : estimate_text_tokens(r.content);
    r.response = std::move(outcome.response);
    return make_action(flow_action::kind::finish);
  }
  outcome.error.stamp(d.id);
  last_error_ = std::move(outcome.error);
  add_once(failed_in_hop_, last_deployment_);
  add_once(failed_in_round_, last_deployment_);
  auto r = make_action(flow_action::kind::report_failure, group_);
  r.deployment = last_deployment_;
  r.error = last_error_->kind;
  return r;
}

flow_action request_flow::on_failure_reported(std::size_t healthy,
                                              random_source& rng) {
  // Past the commit the stream is this deployment's: its failure ends it.
  if (committed_) {
    original_ = *last_error_;
    return finish_error();
  }
  // Another call of the request is still in flight: its answer decides.
  if (!in_flight_.empty())
    return make_action(flow_action::kind::idle, group_);
  const auto& settings = config_->settings;
  const std::size_t group_size = config_->groups[group_].deployments.size();
  const int allowed = retries_allowed(settings, config_->groups[group_].name,
                                      current_deployment(), *request_,
                                      last_error_->kind);
  if (retries_used_ < allowed
      && should_retry(*last_error_, group_size, healthy,
                      has_generic_fallbacks(*config_, group_))) {
    auto delay = retry_delay(group_size, healthy, last_error_->retry_after_s,
                             retries_used_, rng);
    ++retries_used_;
    ++retries_total_;
    if (delay.count() > 0) {
      auto w = make_action(flow_action::kind::wait, group_);
      w.delay = delay;
      return w;
    }
    return retry_pick(retry_stage::round);
  }
  return hop_failed(*last_error_);
}

flow_action request_flow::on_wait_done() {
  return retry_pick(retry_stage::round);
}

flow_action request_flow::hop_failed(router_error e) {
  if (!original_)
    original_ = e;
  const auto& s = config_->settings;
  // disable_fallbacks stops weighted failover too: ROUTER_SEMANTICS.md
  // section 8 lists failover in the fallback order it "stops all of".
  const bool failover = s.enable_weighted_failover && !request_->disable_fallbacks
                        && s.routing_strategy == "simple-shuffle"
                        && e.kind != error_kind::context_window_exceeded
                        && e.kind != error_kind::content_policy_violation
                        && !e.deployment_id.empty() && depth_ < s.max_fallbacks;
  hop_error_ = std::move(e);
  if (failover) {
    // Every deployment that failed in the hop, not only its last attempt.
    for (auto i : failed_in_hop_)
      add_once(hop_excluded_, i);
    failover_probe_ = true;
    return pick_action(true);
  }
  return next_tier_or_fallbacks();
}

flow_action request_flow::next_tier_or_fallbacks() {
  // The next `order` tier of the same group, before any other group. The
  // errors with their own fallback lists do not move tiers.
  const auto kind = hop_error_.value_or_default().kind;
  if (!request_->disable_fallbacks && tier_ != group_pick::unordered
      && kind != error_kind::context_window_exceeded
      && kind != error_kind::content_policy_violation
      && depth_ < config_->settings.max_fallbacks)
    if (auto next = next_order(*config_, group_, tier_)) {
      pick_.min_order = *next;
      return start_same_group_hop();
    }
  return to_fallbacks();
}

flow_action request_flow::to_fallbacks() {
  if (request_->disable_fallbacks || depth_ >= config_->settings.max_fallbacks)
    return finish_error();
  auto a = make_action(flow_action::kind::resolve_fallbacks, group_);
  a.error = hop_error_.value_or_default().kind;
  return a;
}

flow_action request_flow::on_fallbacks(const std::vector<std::uint32_t>& groups) {
  if (!groups.empty())
    frames_.push_back(frame{groups, 0});
  return next_fallback_group();
}

flow_action request_flow::next_fallback_group() {
  while (!frames_.empty()) {
    auto& f = frames_.back();
    if (f.next >= f.groups.size()) {
      frames_.pop_back();
      continue;
    }
    auto g = f.groups[f.next++];
    // At most once per request however it is reached (a list naming it
    // twice, a nested list leading back to it): skipped without a hop.
    if (g == first_group_
        || std::find(entered_groups_.begin(), entered_groups_.end(), g)
             != entered_groups_.end())
      continue;
    if (depth_ >= config_->settings.max_fallbacks)
      break;
    ++depth_;
    ++hop_;
    ++fallbacks_;
    entered_groups_.push_back(g);
    return start_hop(g);
  }
  return finish_error();
}

flow_action request_flow::finish_error() {
  auto& r = result();
  r.ok = false;
  r.error = original_ ? *original_ : hop_error_.value_or_default();
  r.fallback_depth = depth_;
  return make_action(flow_action::kind::finish);
}

flow_action request_flow::finish_error(router_error e) {
  original_ = std::move(e);
  return finish_error();
}

route_result& request_flow::result() {
  if (!result_) {
    result_ = std::make_unique<route_result>();
    result_->prompt_tokens = pick_.estimated_tokens;
  }
  return *result_;
}

route_result request_flow::take_result() {
  auto& r = result();
  // Also when aborting mid-request (the router stopped): count the hops taken.
  r.fallback_depth = depth_;
  r.attempts = std::move(attempts_);
  attempts_.clear();
  return std::move(r);
}

} // namespace switchyard
