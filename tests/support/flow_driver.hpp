#pragma once

// A synchronous executor of request_flow over the pure core, for tests that
// need a whole request (picks, calls, retries, weighted failover, fallbacks)
// without actors, threads or a real clock.

#include "switchyard/call_feedback.hpp"
#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/deployment_call.hpp"
#include "switchyard/fallback.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"
#include "switchyard/request_flow.hpp"
#include "switchyard/routing_strategy.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchyard::test {

/// Carries out a request_flow's actions the way the orchestrator and group
/// actors do, but as plain calls on one thread: per group a group_picker
/// (the picker actor's pipeline: cooldown filter, pre-call checks, `order`
/// tiers, the registry's strategy), a cooldown_state and a
/// deployment_health; plan_mock_call for deployment calls, where a call's
/// mock latency (cut at the call's timeout, which then answers Timeout) and
/// a retry's wait advance a fake clock instead of sleeping;
/// resolve_fallbacks for the fallback actor. What a call tells health and
/// the picker, which pickers hear it and the retry-in are the actors' own
/// code (switchyard/call_feedback.hpp); only the message passing is
/// replaced by calls.
///
/// State (cooldowns, outcome windows, call counters, random streams) lives
/// across run() calls, as it does in a router. Deterministic for a given
/// seed. Single-threaded; not thread-safe.
class flow_driver {
public:
  explicit flow_driver(router_config config, std::uint64_t seed = 1)
    : flow_driver(std::make_shared<const router_config>(std::move(config)), seed) {
  }

  explicit flow_driver(std::shared_ptr<const router_config> config,
                       std::uint64_t seed = 1)
    : config_(std::move(config)), hears_outcomes_(picker_hears_outcomes(config_->settings)),
      now_(std::chrono::hours(1)),
      flow_rng_(derive_seed(seed, 0)) {
    for (std::uint32_t g = 0; g < config_->groups.size(); ++g)
      groups_.push_back(std::make_unique<group_state>(*config_, g, seed));
    for (std::size_t d = 0; d < config_->deployments.size(); ++d)
      call_rngs_.emplace_back(derive_seed(seed, 10000 + d));
    calls_.assign(config_->deployments.size(), 0);
  }

  /// Puts a deployment into cooldown for `length` from now, as if the
  /// cooldown actor had started it.
  void cool_down(const std::string& deployment_id, seconds_d length) {
    const auto& d = deployment(deployment_id);
    auto& g = *groups_.at(d.group);
    g.cooldown.start(d.index_in_group, now_, now_ + to_clock(length));
    g.picker.set_available(g.cooldown.available(now_));
  }

  bool cooling(const std::string& deployment_id) const {
    const auto& d = deployment(deployment_id);
    return groups_.at(d.group)->cooldown.cooling(d.index_in_group, now_);
  }

  /// Moves the fake clock on; cooldowns that end are noticed at the next pick.
  void advance(seconds_d d) { now_ += to_clock(d); }
  time_point now() const noexcept { return now_; }

  /// Calls made to a deployment so far (over every run).
  std::uint64_t calls(const std::string& deployment_id) const {
    const auto& d = deployment(deployment_id);
    return calls_.at(static_cast<std::size_t>(&d - config_->deployments.data()));
  }

  /// The actions of the last run, in order, the final `finish` included.
  const std::vector<flow_action>& actions() const noexcept { return actions_; }

  /// Runs one request to its end and returns its answer.
  route_result run(chat_request request) {
    actions_.clear();
    request_flow flow(config_, std::make_shared<const chat_request>(std::move(request)));
    flow_action a = flow.start();
    for (std::size_t steps = 0;; ++steps) {
      if (steps > max_steps)
        throw std::logic_error("flow_driver: the request flow did not finish");
      actions_.push_back(a);
      switch (a.what) {
        case flow_action::kind::pick: {
          auto& g = *groups_.at(a.group);
          if (g.cooldown.expire(now_))
            g.picker.set_available(g.cooldown.available(now_));
          auto picked = g.picker.pick(flow.current_pick(), now_, g.rng);
          std::optional<seconds_d> wait;
          if (!picked.chosen)
            wait = retry_in(g.cooldown.next_expiry(), now_);
          a = flow.on_picked(picked, wait);
          break;
        }
        case flow_action::kind::call: {
          auto& g = *groups_.at(a.group);
          const auto global = config_->groups.at(a.group).deployments.at(a.deployment);
          const auto& d = config_->deployments[global];
          auto planned = plan_mock_call(d, flow.request(), a.force_context_window,
                                        calls_[global]++, call_rngs_[global]);
          call_outcome o = std::move(planned.outcome);
          seconds_d took = planned.delay;
          if (a.delay.count() > 0 && planned.delay > a.delay) {
            // The orchestrator's request timeout fires first.
            took = a.delay;
            o = call_outcome{};
            o.timed_out = true;
            o.error = router_error::make(error_kind::timeout,
                                         "deployment '" + d.id
                                           + "' did not answer within the timeout");
          }
          now_ += to_clock(took);
          o.latency_ms = took.count() * 1000.0;
          const auto local = a.deployment;
          auto judged = judge_call(flow, std::move(o));
          last_feedback_ = judged.feedback;
          a = judged.next;
          // As the orchestrator and the health actor: a success is reported
          // once the flow has kept it a success.
          if (last_feedback_.ok) {
            g.health.record_success(local, now_);
            if (hears_outcomes_)
              g.picker.on_finished(local, last_feedback_, now_);
          }
          break;
        }
        case flow_action::kind::report_failure: {
          auto& g = *groups_.at(a.group);
          if (hears_outcomes_)
            g.picker.on_finished(a.deployment, last_feedback_, now_);
          if (auto length = g.health.record_failure(a.deployment, flow.last_error(),
                                                    now_, flow.request().cooldown_time_s);
              length && g.cooldown.within_cap(a.deployment, now_,
                                              config_->settings.max_cooldown_percent)) {
            g.cooldown.start(a.deployment, now_, now_ + to_clock(*length));
            g.picker.set_available(g.cooldown.available(now_));
          }
          a = flow.on_failure_reported(g.cooldown.available_count(now_), flow_rng_);
          break;
        }
        case flow_action::kind::wait:
          now_ += to_clock(a.delay);
          a = flow.on_wait_done();
          break;
        case flow_action::kind::resolve_fallbacks:
          a = flow.on_fallbacks(resolve_fallbacks(*config_, a.group, a.error));
          break;
        case flow_action::kind::finish:
          return flow.take_result();
        case flow_action::kind::idle:
          // Waiting for another call in flight (hedging): this driver runs
          // one call at a time, so there is none to wait for.
          throw std::logic_error("flow_driver: the flow waits for a call the driver never made");
      }
    }
  }

  const router_config& config() const noexcept { return *config_; }

private:
  static constexpr std::size_t max_steps = 10000;

  struct group_state {
    group_state(const router_config& config, std::uint32_t group, std::uint64_t seed)
      : picker(config, group),
        cooldown(config.groups.at(group).deployments.size()),
        health(config, group), rng(derive_seed(seed, 100 + group)) {
    }
    group_picker picker;
    cooldown_state cooldown;
    deployment_health health;
    seeded_random rng;
  };

  static clock_type::duration to_clock(seconds_d d) {
    return std::chrono::duration_cast<clock_type::duration>(d);
  }

  const deployment_config& deployment(const std::string& id) const {
    for (const auto& d : config_->deployments)
      if (d.id == id)
        return d;
    throw std::invalid_argument("flow_driver: no deployment with id " + id);
  }

  std::shared_ptr<const router_config> config_;
  bool hears_outcomes_;
  time_point now_;
  std::vector<std::unique_ptr<group_state>> groups_;
  std::vector<seeded_random> call_rngs_;
  std::vector<std::uint64_t> calls_;
  seeded_random flow_rng_;
  call_feedback last_feedback_;
  std::vector<flow_action> actions_;
};

} // namespace switchyard::test
