#include "baseline.hpp"

#include "switchyard/lean_scheduler.hpp"

#include <caf/all.hpp>

#include <functional>
#include <vector>

namespace switchyard::bench {

namespace {

using bpick_atom = caf::atom_constant<caf::atom("bpick")>;
using bdone_atom = caf::atom_constant<caf::atom("bdone")>;
using boutcome_atom = caf::atom_constant<caf::atom("boutcome")>;
using bwake_atom = caf::atom_constant<caf::atom("bwake")>;

using done_fn = std::function<void(std::uint32_t)>;

caf::behavior picker(caf::event_based_actor*) {
  return {
    [](bpick_atom, std::uint32_t n) -> std::uint32_t { return n % 8; },
  };
}

caf::behavior health(caf::event_based_actor*) {
  return {
    [](boutcome_atom, std::uint32_t) {},
  };
}

// The router's long-lived actors that a healthy request never messages
// (cooldown, supervisor, fallback, router actor): spawned so that the
// scheduler holds as many actors as the router's.
caf::behavior idle(caf::event_based_actor*) {
  return {
    [](bwake_atom) {},
  };
}

// Mirrors the orchestrator's shape: a stateful actor holding the callback.
struct request_state {
  done_fn done;
  static inline const char* name = "bench.request";
};

caf::behavior request_actor(caf::stateful_actor<request_state>* self,
                            caf::actor pick, caf::actor outcome, done_fn done) {
  self->state.done = std::move(done);
  self->request(pick, caf::infinite, bpick_atom::value, std::uint32_t{8})
    .then([self](std::uint32_t d) {
      // The "call": the mock transport answers inline in start() with an
      // anon_send to the orchestrator (its call sink); no deployment actor.
      caf::anon_send(caf::actor_cast<caf::actor>(self), bdone_atom::value, d + 1);
    });
  // Like the orchestrator, it keeps a behavior and quits explicitly.
  return {
    [self, outcome](bdone_atom, std::uint32_t r) {
      self->send(outcome, boutcome_atom::value, r);
      self->state.done(r);
      self->quit();
    },
    [](bwake_atom) {},
  };
}

struct group_actors {
  caf::actor pick;
  caf::actor cooldown;
  caf::actor health;
};

} // namespace

struct baseline_bench::impl {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> system;
  std::vector<group_actors> groups;
  std::vector<caf::actor> shared; ///< supervisor, fallback, router actor
};

baseline_bench::baseline_bench(std::size_t threads, std::size_t groups)
  : impl_(std::make_unique<impl>()) {
  impl_->cfg.set("scheduler.max-threads", threads);
  impl_->cfg.set("logger.console", caf::atom("none"));
  // The router's scheduler too (its own system runs it): the comparison is
  // the routing, not a scheduler setting.
  switchyard::use_lean_scheduler(impl_->cfg);
  impl_->system = std::make_unique<caf::actor_system>(impl_->cfg);
  for (std::size_t g = 0; g < std::max<std::size_t>(groups, 1); ++g)
    impl_->groups.push_back({impl_->system->spawn(picker), impl_->system->spawn(idle),
                             impl_->system->spawn(health)});
  for (int i = 0; i < 3; ++i)
    impl_->shared.push_back(impl_->system->spawn(idle));
}

baseline_bench::~baseline_bench() {
  for (auto& g : impl_->groups)
    for (auto* a : {&g.pick, &g.cooldown, &g.health}) {
      caf::anon_send_exit(*a, caf::exit_reason::user_shutdown);
      *a = nullptr;
    }
  for (auto& a : impl_->shared) {
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    a = nullptr;
  }
  impl_->system->await_all_actors_done();
}

std::size_t baseline_bench::long_lived_actors() const {
  return impl_->groups.size() * 3 + impl_->shared.size();
}

load_run::issue_fn baseline_bench::issue() {
  return [d = impl_.get()](load_run& run, std::uint64_t id) {
    const auto& g = d->groups[id % d->groups.size()];
    d->system->spawn(request_actor, g.pick, g.health,
                     done_fn{[&run, id](std::uint32_t) { run.done(id, 1, true); }});
  };
}

} // namespace switchyard::bench
