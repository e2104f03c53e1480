#include "baseline.hpp"

#include <caf/all.hpp>

#include <functional>

namespace switchyard::bench {

namespace {

using bpick_atom = caf::atom_constant<caf::atom("bpick")>;
using bcall_atom = caf::atom_constant<caf::atom("bcall")>;
using boutcome_atom = caf::atom_constant<caf::atom("boutcome")>;
using bwake_atom = caf::atom_constant<caf::atom("bwake")>;

using done_fn = std::function<void(std::uint32_t)>;

caf::behavior picker(caf::event_based_actor*) {
  return {
    [](bpick_atom, std::uint32_t n) -> std::uint32_t { return n % 8; },
  };
}

caf::behavior deployment(caf::event_based_actor*) {
  return {
    [](bcall_atom, std::uint32_t d) -> std::uint32_t { return d + 1; },
  };
}

caf::behavior health(caf::event_based_actor*) {
  return {
    [](boutcome_atom, std::uint32_t) {},
  };
}

// Mirrors the orchestrator's shape: a stateful actor holding the callback.
struct request_state {
  done_fn done;
  static inline const char* name = "bench.request";
};

caf::behavior request_actor(caf::stateful_actor<request_state>* self,
                            caf::actor pick, caf::actor deploy,
                            caf::actor outcome, done_fn done) {
  self->state.done = std::move(done);
  self->request(pick, caf::infinite, bpick_atom::value, std::uint32_t{8})
    .then([self, deploy, outcome](std::uint32_t d) {
      self->request(deploy, caf::infinite, bcall_atom::value, d)
        .then([self, outcome](std::uint32_t r) {
          self->send(outcome, boutcome_atom::value, r);
          self->state.done(r);
          self->quit();
        });
    });
  // Like the orchestrator, it keeps a behavior and quits explicitly.
  return {
    [](bwake_atom) {},
  };
}

} // namespace

struct baseline_bench::impl {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> system;
  caf::actor pick;
  caf::actor deploy;
  caf::actor outcome;
};

baseline_bench::baseline_bench(std::size_t threads) : impl_(std::make_unique<impl>()) {
  impl_->cfg.set("scheduler.max-threads", threads);
  impl_->cfg.set("logger.console", caf::atom("none"));
  impl_->system = std::make_unique<caf::actor_system>(impl_->cfg);
  impl_->pick = impl_->system->spawn(picker);
  impl_->deploy = impl_->system->spawn(deployment);
  impl_->outcome = impl_->system->spawn(health);
}

baseline_bench::~baseline_bench() {
  for (const auto& a : {impl_->pick, impl_->deploy, impl_->outcome})
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  impl_->pick = impl_->deploy = impl_->outcome = nullptr;
  impl_->system->await_all_actors_done();
}

load_run::issue_fn baseline_bench::issue() {
  return [d = impl_.get()](load_run& run, std::uint64_t id) {
    d->system->spawn(request_actor, d->pick, d->deploy, d->outcome,
                     done_fn{[&run, id](std::uint32_t) { run.done(id, 1, true); }});
  };
}

} // namespace switchyard::bench
