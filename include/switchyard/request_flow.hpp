#pragma once

#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/deployment_call.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"
#include "switchyard/routing_strategy.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

/// The `model` of a reply from a deployment whose `litellm_params.model`
/// is `litellm_model`: without its `provider/` prefix, as LiteLLM's.
std::string response_model_name(std::string_view litellm_model);
/// The reply's `model` for a deployment: response_model_name of its
/// litellm_params.model, or its model group when that came from os.environ/.
std::string public_model_name(const deployment_config& deployment);

/// The next thing the orchestrator must do for a request.
struct flow_action {
  enum class kind : std::uint8_t {
    pick,              ///< ask `group`'s picker, excluding `excluded`
    call,              ///< call `deployment` of `group`
    report_failure,    ///< tell `group`'s health actor; await healthy count
    wait,              ///< sleep `delay` (a timer), then on_wait_done
    resolve_fallbacks, ///< ask the fallback actor about `group` and `error`
    finish,            ///< done: take_result()
    idle,              ///< nothing now: await the calls still in flight
  };
  kind what = kind::finish;
  std::uint32_t group = 0;
  local_index deployment = 0;
  /// wait: how long; call: the timeout (request > deployment > router).
  seconds_d delay{0};
  bool force_context_window = false;
  /// call: a hedge (another call of the request is in flight).
  bool hedge = false;
  /// call: arm the hedge timer; when it fires with this call unanswered,
  /// tell the flow on_hedge_due.
  std::optional<seconds_d> hedge_after;
  error_kind error = error_kind::internal_server;
};

/// One request's journey through retries, weighted failover and fallbacks
/// (ROUTER_SEMANTICS.md sections 6-9) as a pure state machine: it owns the
/// request's excluded ids, hop count and attempt trace, and answers each
/// event with the next action. The orchestrator actor is a thin shell that
/// carries actions out; tests drive it directly with scripted events.
///
/// Retries go round the hop's healthy candidates (docs/reliability.md
/// section 2): a retry's pick excludes every deployment that failed in the
/// current round; when that leaves nothing, a new round starts and its
/// first pick excludes only the deployment that failed last; when that
/// leaves nothing too, that deployment is the only candidate and is
/// retried. A weighted-failover hop excludes every deployment that failed
/// in the hops before it. A fallback group is entered at most once.
///
/// Resilience rules (README "Resilience beyond LiteLLM"): a pick the
/// group's retry budget refuses ends the hop for the cross-group
/// fallbacks; with hedge_after_ms several calls of one hop may be in
/// flight (the first success or stream commit wins, the others are the
/// orchestrator's to cancel and are traced as cancelled).
/// Owned by one orchestrator actor; not thread-safe.
class request_flow {
public:
  request_flow(std::shared_ptr<const router_config> config, request_ptr request);

  flow_action start();
  /// The picker's answer; `retry_in` is the shortest remaining cooldown.
  flow_action on_picked(const group_pick& picked, std::optional<seconds_d> retry_in);
  /// The deployment's answer to the last `call`.
  flow_action on_call(call_outcome outcome);
  /// The answer of the call to `which` (one of those in flight, when
  /// hedging). A success wins: the calls still in flight are the
  /// orchestrator's to cancel, and enter the trace as cancelled. A failure
  /// with another call in flight is reported, then awaits that call.
  flow_action on_call(local_index which, call_outcome outcome);
  /// A call's hedge timer fired and it is still unanswered: a pick for a
  /// hedge (an extra call: the retry budget's), or idle.
  flow_action on_hedge_due();
  /// Calls in flight now (more than one only when hedging).
  std::size_t in_flight() const noexcept { return in_flight_.size(); }
  int hedges() const noexcept { return hedges_; }
  /// The health actor took the failure; `healthy` deployments of the group
  /// are not cooling down now. `rng` draws the retry jitter.
  flow_action on_failure_reported(std::size_t healthy, random_source& rng);
  flow_action on_wait_done();
  /// The fallback actor's answer to `resolve_fallbacks`.
  flow_action on_fallbacks(const std::vector<std::uint32_t>& groups);

  /// A chunk of the current call of a streamed request, through the
  /// first-chunk gate (TRANSPORT.md section 5): returns what the caller
  /// gets now. Role-only chunks before the commit are held; the first
  /// chunk with content, a tool call or a finish reason commits the
  /// request to this deployment and releases them with it. After the
  /// commit a failure ends the request with that error: no retry,
  /// failover or fallback.
  std::vector<nlohmann::json> on_chunk(nlohmann::json chunk);
  /// The same for a chunk of the call to `which` (hedging: the first call
  /// to commit wins; chunks of the others are dropped).
  std::vector<nlohmann::json> on_chunk(local_index which, nlohmann::json chunk);
  /// After a commit: the other calls in flight, which the orchestrator
  /// cancels; they enter the trace as cancelled.
  std::vector<local_index> take_losers();
  /// A chunk was delivered: the stream belongs to the current deployment.
  bool committed() const noexcept { return committed_; }
  /// Once committed(): the deployment, group, attempts and fallback depth
  /// the request committed to (upstream_ms is the orchestrator's to fill).
  stream_commit commit_info() const;
  /// Ends the request now with `e` (a total_timeout, a cancel), keeping
  /// the trace and hops so far.
  route_result abort(router_error e);

  /// Calls after the first within a hop, weighted-failover hops and
  /// cross-group fallback hops so far.
  int retries() const noexcept { return retries_total_; }
  int failovers() const noexcept { return failovers_; }
  int fallbacks() const noexcept { return fallbacks_; }
  /// Extra calls the group's retry budget refused for this request.
  int budget_refused() const noexcept { return budget_refused_; }

  /// The excluded local indices for the current pick.
  const exclusion_list& excluded() const noexcept { return pick_.excluded; }
  /// Everything the current pick asks the picker.
  const pick_request& current_pick() const noexcept { return pick_; }
  /// The request's estimated prompt tokens.
  std::uint32_t estimated_tokens() const noexcept { return pick_.estimated_tokens; }
  /// Moves the result out: after a `finish` action, or to abort the request
  /// (the trace and hop count so far).
  route_result take_result();
  const router_config& config() const noexcept { return *config_; }
  /// The deployment of the latest call.
  const deployment_config& current_deployment() const;
  /// The group of the current hop.
  std::uint32_t current_group() const noexcept { return group_; }
  const chat_request& request() const noexcept { return *request_; }
  const switchyard::request_ptr& shared_request() const noexcept { return request_; }
  /// The latest failure of the current hop (valid after report_failure).
  const router_error& last_error() const noexcept { return *last_error_; }

private:
  struct frame {
    std::vector<std::uint32_t> groups;
    std::size_t next = 0;
  };

  /// Which pick of a retry is pending (see the class comment).
  enum class retry_stage : std::uint8_t {
    none,       ///< not a retry's pick
    round,      ///< excluding the current round's failures
    avoid_last, ///< a new round: excluding the deployment that failed last
    any,        ///< only the hop's own exclusions
  };

  /// `extra`: a retry or a failover hop (the retry budget's business).
  flow_action pick_action(bool extra = false);
  flow_action retry_pick(retry_stage stage);
  flow_action start_hop(std::uint32_t group);
  flow_action hop_failed(router_error e);
  flow_action next_tier_or_fallbacks();
  flow_action to_fallbacks();
  flow_action start_same_group_hop();
  void reset_hop_state();
  flow_action next_fallback_group();
  flow_action finish_error();
  flow_action finish_error(router_error e);

  std::shared_ptr<const router_config> config_;
  request_ptr request_;
  std::uint32_t group_ = 0;
  std::size_t hop_ = 0;          ///< hops started, the first is 0
  int depth_ = 0;                ///< hops after the first (vs max_fallbacks)
  int retries_used_ = 0;         ///< in the current hop
  bool attempted_in_hop_ = false;
  bool failover_probe_ = false;  ///< the pending pick starts a failover hop
  retry_stage retry_stage_ = retry_stage::none;
  local_index last_deployment_ = 0;
  /// The group's exclusions for every hop of this visit (weighted failover).
  exclusion_list hop_excluded_;
  /// Every deployment that failed in the current hop, retries included.
  exclusion_list failed_in_hop_;
  /// Those that failed in the current round of retries.
  exclusion_list failed_in_round_;
  /// Groups entered so far: none is entered twice. The first apart, so a
  /// request without fallbacks allocates no list.
  std::uint32_t first_group_ = 0;
  std::vector<std::uint32_t> entered_groups_;
  int tier_ = group_pick::unordered; ///< `order` of the current tier
  pick_request pick_;               ///< exclusions, tier floor, tokens
  /// An error kept off a request's footprint until there is one: a healthy
  /// request in flight carries a null pointer, not a router_error (88 B).
  /// The optional's interface, for the uses here.
  class boxed_error {
  public:
    boxed_error() = default;
    boxed_error(const boxed_error& o) : p_(copy(o)) {}
    boxed_error(boxed_error&&) noexcept = default;
    boxed_error& operator=(const boxed_error& o) {
      if (this != &o)
        p_ = copy(o);
      return *this;
    }
    boxed_error& operator=(boxed_error&&) noexcept = default;
    boxed_error& operator=(router_error e) {
      if (p_)
        *p_ = std::move(e);
      else
        p_ = std::make_unique<router_error>(std::move(e));
      return *this;
    }
    explicit operator bool() const noexcept { return p_ != nullptr; }
    const router_error& operator*() const noexcept { return *p_; }
    const router_error* operator->() const noexcept { return p_.get(); }
    /// The error, or a default router_error when there is none.
    const router_error& value_or_default() const noexcept {
      static const router_error none{};
      return p_ ? *p_ : none;
    }
    void reset() noexcept { p_.reset(); }

  private:
    static std::unique_ptr<router_error> copy(const boxed_error& o) {
      return o.p_ ? std::make_unique<router_error>(*o.p_) : nullptr;
    }
    std::unique_ptr<router_error> p_;
  };
  boxed_error last_error_;  ///< latest in the current hop
  boxed_error original_;    ///< the first hop's error
  boxed_error hop_error_;   ///< the latest hop's error
  std::vector<frame> frames_; ///< fallback lists being walked, innermost last
  /// The trace so far; the result takes it at the end.
  std::vector<attempt> attempts_;
  /// Made at the end (success or failure): a request in flight carries a
  /// null pointer, not a route_result (~300 B of strings and an error).
  std::unique_ptr<route_result> result_;
  /// result_, made on first use with the estimated prompt tokens.
  route_result& result();
  bool committed_ = false;
  /// Role-only chunks before the commit, with the call that sent them.
  std::vector<std::pair<local_index, nlohmann::json>> held_;
  local_index committed_call_ = 0;
  void trace_cancelled(local_index loser, bool hedge, const std::string& group);
  int retries_total_ = 0;
  int failovers_ = 0;
  int fallbacks_ = 0;
  int budget_refused_ = 0;
  struct in_call {
    local_index local;
    bool hedge;
  };
  std::vector<in_call> in_flight_;
  bool hedge_pending_ = false; ///< the pending pick is a hedge's
  int hedges_ = 0;
  std::optional<seconds_d> hedge_delay() const;
};

} // namespace switchyard
