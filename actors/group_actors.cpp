#include "group_actors.hpp"

#include "switchyard/call_feedback.hpp"
#include "switchyard/fallback.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <unordered_map>

namespace switchyard {

namespace {

// The actor system's clock: a test's simulated clock (CAF's test
// coordinator) then drives cooldown expiry.
template <class Self>
time_point now(Self* self) {
  return self->clock().now();
}

// A bug in a group's actor (an exception from a handler) ends that actor
// with the error, which its requesters receive; the router's supervisor
// sees it go down, logs once and restarts the group's actors.
template <class Self>
void contain_failures(Self* self) {
  self->set_exception_handler([](std::exception_ptr& e) -> caf::error {
    return caf::make_error(caf::sec::runtime_error, exception_text(e));
  });
}

const std::string& id_of(const router_config& config, std::uint32_t group, local_index i) {
  return config.deployments[config.groups[group].deployments[i]].id;
}

// Fleet counts are for one wall-clock minute: those of a minute already
// over are late news and would be counted in the wrong window.
bool current_minute(std::int64_t minute) {
  return minute == wall_minute(wall_clock_now());
}

// Fault injection for tests: the next request of an armed actor throws.
void injected_fault(bool& armed) {
  if (armed) {
    armed = false;
    throw std::runtime_error("injected failure");
  }
}

// --- picker: owns the group's candidate pipeline and its random source ---

struct picker_state {
  std::unique_ptr<group_picker> picker;
  std::unique_ptr<seeded_random> rng;
  std::optional<time_point> next_expiry;
  bool fault = false;
  static inline const char* name = "switchyard.picker";
};

caf::behavior picker_actor(caf::stateful_actor<picker_state>* self,
                           std::shared_ptr<const router_config> config,
                           std::uint32_t group, std::uint64_t seed,
                           std::shared_ptr<shared_state> shared, cooldown_snapshot initial) {
  self->state.picker = std::make_unique<group_picker>(*config, group);
  self->state.rng = std::make_unique<seeded_random>(seed);
  // The fleet's cooldowns as the group (re)started: in force before the
  // first pick, not when the cooldown actor's first snapshot arrives.
  if (!initial.available.empty()) {
    self->state.picker->set_available(initial.available);
    self->state.next_expiry = initial.next_expiry;
  }
  // Usage is shared as it is counted locally (a request at its pick, its
  // tokens when the call ends), and only when something counts it.
  if (!self->state.picker->counts_usage())
    shared = nullptr;
  contain_failures(self);
  return {
    [=](fault_atom) { self->state.fault = true; },
    [=](pick_atom, const pick_request& request) {
      auto& st = self->state;
      injected_fault(st.fault);
      auto t = now(self);
      pick_reply r{st.picker->pick(request, t, *st.rng), std::nullopt};
      if (!r.picked.chosen)
        r.retry_in = retry_in(st.next_expiry, t);
      if (shared && r.picked.chosen)
        shared->add_usage(id_of(*config, group, *r.picked.chosen),
                          wall_minute(wall_clock_now()), 1, 0);
      return r;
    },
    [=](fleet_atom, local_index i, std::uint64_t requests, std::uint64_t tokens,
        std::int64_t minute) {
      if (current_minute(minute))
        self->state.picker->set_remote_usage(i, requests, tokens, now(self));
    },
    [=](avail_atom, const cooldown_snapshot& s) {
      self->state.picker->set_available(s.available);
      self->state.next_expiry = s.next_expiry;
    },
    [=](finished_atom, local_index i, const call_feedback& f) {
      self->state.picker->on_finished(i, f, now(self));
      if (shared && f.tokens > 0)
        shared->add_usage(id_of(*config, group, i), wall_minute(wall_clock_now()), 0,
                          f.tokens);
    },
  };
}

// --- cooldown: owns which deployments are cooling down, and their timers --

// What a group's cooldown actor starts with: the state, and each restored
// deployment with its end (for the expiry timers and the log).
struct restored_cooldowns {
  explicit restored_cooldowns(std::size_t n) : state(n) {}
  cooldown_state state;
  std::vector<std::pair<local_index, time_point>> cooling;
};

struct cooldown_actor_state {
  std::unique_ptr<cooldown_state> cooling;
  bool panic = false; ///< panic_threshold: as the picker sees it
  bool fault = false;
  static inline const char* name = "switchyard.cooldown";
};

caf::behavior cooldown_actor(caf::stateful_actor<cooldown_actor_state>* self,
                             std::shared_ptr<const router_config> config,
                             std::uint32_t group, caf::actor picker,
                             std::shared_ptr<router_observer> observer,
                             std::shared_ptr<shared_state> shared,
                             std::shared_ptr<const restored_cooldowns> restored) {
  const auto& members = config->groups[group].deployments;
  self->state.cooling = std::make_unique<cooldown_state>(members.size());
  // A restarted group starts with the cooldowns the shared state knows of
  // (the fleet's and this replica's own), each with its expiry timer.
  if (restored) {
    *self->state.cooling = restored->state;
    const auto t = now(self);
    for (const auto& [i, until] : restored->cooling) {
      spdlog::info("deployment '{}' cooling down for {:.3g} s (restored from the shared state)",
                   config->deployments[members[i]].id, seconds_d(until - t).count());
      self->delayed_send(self, until - t, expire_atom::value);
    }
  }
  auto publish = [=] {
    auto& c = *self->state.cooling;
    auto t = now(self);
    self->send(picker, avail_atom::value,
               cooldown_snapshot{c.available(t), c.next_expiry()});
    // The picker applies the same pure rule to the same snapshot; entering
    // and leaving panic are logged and counted once each, here.
    const auto available = c.available_count(t);
    const bool panic = panic_mode(available, members.size(), config->settings.panic_threshold);
    if (panic != self->state.panic) {
      self->state.panic = panic;
      const auto& name = config->groups[group].name;
      spdlog::warn("model group '{}' {} panic: {} of {} deployments available", name,
                   panic ? "entered" : "left", available, members.size());
      if (observer)
        observer->on_panic(panic_event{name, panic, available, members.size()});
    }
  };
  // Ends every cooldown whose time has come: the picker and the observer
  // hear of it.
  auto expire_due = [=] {
    std::vector<local_index> ended;
    if (!self->state.cooling->expire(now(self), ended))
      return;
    publish();
    if (observer)
      for (auto i : ended) {
        const auto& d = config->deployments[members[i]];
        observer->on_cooldown(cooldown_event{d.id, d.model_name, false, 0});
      }
  };
  contain_failures(self);
  return {
    [=](fault_atom) { self->state.fault = true; },
    // Starts a cooldown; answers how many deployments are still healthy.
    // The picker hears of it before the requester gets this answer, so the
    // requester's next pick already avoids the deployment.
    [=](cool_atom, local_index i, double seconds, std::uint8_t kind, int status) {
      injected_fault(self->state.fault);
      auto& c = *self->state.cooling;
      auto length = std::chrono::duration_cast<clock_type::duration>(seconds_d(seconds));
      auto t = now(self);
      // Cooldowns whose time has come end first (their expiry timer may not
      // have fired yet), so the cap and the observer see the same state.
      expire_due();
      // max_cooldown_percent: a cooldown that would leave too much of the
      // group cooling does not start.
      if (!c.within_cap(i, t, config->settings.max_cooldown_percent))
        return c.available_count(t);
      const auto& d = config->deployments[members[i]];
      // Publish even when only the end moved: the picker's retry-in does.
      if (c.start(i, t, t + length)) {
        // Once per cooldown, ids only: never a key or a provider message.
        spdlog::info("deployment '{}' cooling down for {:.3g} s", d.id, seconds);
        if (observer)
          observer->on_cooldown(cooldown_event{d.id, d.model_name, true, seconds});
      }
      publish();
      // Every cooldown started here, extensions too: the store keeps the
      // later deadline, so a shorter one changes nothing there.
      if (shared)
        shared->publish_cooldown(shared_cooldown{
          d.id, wall_deadline(t + length, t, wall_clock_now()),
          static_cast<error_kind>(kind), status});
      self->delayed_send(self, length, expire_atom::value);
      return c.available_count(t);
    },
    // Another replica cooled deployment `i` down: the later end wins.
    [=](remote_cool_atom, local_index i, std::int64_t deadline_ms, std::uint8_t,
        int status) {
      auto& c = *self->state.cooling;
      auto t = now(self);
      auto until = steady_deadline(deadline_ms, wall_clock_now(), t);
      const bool was_cooling = c.cooling(i, t);
      if (!c.apply_remote(i, t, until))
        return;
      const auto& d = config->deployments[members[i]];
      if (!was_cooling) {
        double seconds = seconds_d(until - t).count();
        spdlog::info("deployment '{}' cooling down for {:.3g} s (status {}, from another replica)",
                     d.id, seconds, status);
        if (observer)
          observer->on_cooldown(cooldown_event{d.id, d.model_name, true, seconds});
      }
      publish();
      self->delayed_send(self, until - t, expire_atom::value);
    },
    [=](healthy_atom) {
      injected_fault(self->state.fault);
      return self->state.cooling->available_count(now(self));
    },
    [=](expire_atom) { expire_due(); },
  };
}

// --- health: records outcomes and applies the cooldown rules --------------

struct health_state {
  std::unique_ptr<deployment_health> health;
  bool fault = false;
  static inline const char* name = "switchyard.health";
};

caf::behavior health_actor(caf::stateful_actor<health_state>* self,
                           std::shared_ptr<const router_config> config,
                           std::uint32_t group, caf::actor cooldown,
                           caf::actor picker, std::shared_ptr<shared_state> shared) {
  self->state.health = std::make_unique<deployment_health>(*config, group);
  // simple-shuffle without pre-call checks learns nothing from outcomes:
  // spare the picker's mailbox.
  const bool feed_picker = picker_hears_outcomes(config->settings);
  contain_failures(self);
  return {
    [=](fault_atom) { self->state.fault = true; },
    [=](outcome_atom, local_index i, const call_feedback& f) {
      self->state.health->record_success(i, now(self));
      if (shared)
        shared->add_outcome(id_of(*config, group, i), wall_minute(wall_clock_now()), false);
      if (feed_picker)
        self->send(picker, finished_atom::value, i, f);
    },
    // The other replicas' calls and failures this minute.
    [=](fleet_atom, local_index i, std::uint64_t requests, std::uint64_t failures,
        std::int64_t minute) {
      if (current_minute(minute))
        self->state.health->set_remote(i, requests, failures, now(self));
    },
    // A failure: answers (through the cooldown actor) how many deployments
    // of the group are healthy once it has been taken into account.
    [=](outcome_atom, local_index i, const call_report& r) {
      injected_fault(self->state.fault);
      if (feed_picker)
        self->send(picker, finished_atom::value, i, r.feedback);
      const auto& e = r.error;
      if (shared)
        shared->add_outcome(id_of(*config, group, i), wall_minute(wall_clock_now()), true);
      auto length = self->state.health->record_failure(i, e, now(self), r.request_cooldown_s);
      if (length)
        return self->delegate(cooldown, cool_atom::value, i, length->count(),
                              static_cast<std::uint8_t>(e.kind), e.status);
      return self->delegate(cooldown, healthy_atom::value);
    },
  };
}

// --- fallback: resolves where an exhausted group's requests go next -------

caf::behavior fallback_actor(caf::event_based_actor*,
                             std::shared_ptr<const router_config> config) {
  return {
    [=](fallback_atom, std::uint32_t group, std::uint8_t kind) {
      return resolve_fallbacks(*config, group, static_cast<error_kind>(kind));
    },
  };
}

// f(local index, cooldown) for each cooldown the shared state knows of, at
// wall-clock `wall`, of a deployment of `group`.
template <class F>
void each_cooldown_of(const router_config& config, std::uint32_t group,
                      const shared_state& shared, wall_ms wall, F&& f) {
  const auto& members = config.groups[group].deployments;
  for (const auto& c : shared.cooldowns(wall))
    for (local_index i = 0; i < members.size(); ++i)
      if (config.deployments[members[i]].id == c.deployment_id)
        f(i, c);
}

// The shared state's cooldowns of `group`'s deployments, as a cooldown
// state at `t`; null when there are none.
std::shared_ptr<const restored_cooldowns>
restore_cooldowns(const router_config& config, std::uint32_t group, const shared_state& shared,
                  time_point t) {
  const auto wall = wall_clock_now();
  auto r = std::make_shared<restored_cooldowns>(config.groups[group].deployments.size());
  each_cooldown_of(config, group, shared, wall, [&](local_index i, const shared_cooldown& c) {
    const auto until = steady_deadline(c.deadline_ms, wall, t);
    if (r->state.apply_remote(i, t, until))
      r->cooling.emplace_back(i, until);
  });
  if (r->cooling.empty())
    return nullptr;
  return r;
}

} // namespace

group_actors spawn_group(caf::actor_system& system,
                         std::shared_ptr<const router_config> config,
                         std::uint32_t group, std::uint64_t seed,
                         std::shared_ptr<router_observer> observer,
                         std::shared_ptr<shared_state> shared) {
  group_actors g;
  std::shared_ptr<const restored_cooldowns> restored;
  cooldown_snapshot initial;
  if (shared) {
    const auto t = system.clock().now();
    restored = restore_cooldowns(*config, group, *shared, t);
    if (restored)
      initial = cooldown_snapshot{restored->state.available(t), restored->state.next_expiry()};
  }
  g.picker = system.spawn(picker_actor, config, group,
                          derive_seed(seed, 1000003ULL * (group + 1)), shared,
                          std::move(initial));
  g.cooldown = system.spawn(cooldown_actor, config, group, g.picker, std::move(observer),
                            shared, std::move(restored));
  g.health = system.spawn(health_actor, config, group, g.cooldown, g.picker, shared);
  return g;
}

void replay_cooldowns(const group_actors& g, const router_config& config, std::uint32_t group,
                      const shared_state& shared) {
  each_cooldown_of(config, group, shared, wall_clock_now(),
                   [&](local_index i, const shared_cooldown& c) {
                     caf::anon_send(g.cooldown, remote_cool_atom::value, i, c.deadline_ms,
                                    static_cast<std::uint8_t>(c.kind), c.status);
                   });
}

caf::actor spawn_fallback(caf::actor_system& system,
                          std::shared_ptr<const router_config> config) {
  return system.spawn(fallback_actor, std::move(config));
}

} // namespace switchyard
