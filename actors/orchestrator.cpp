#include "orchestrator.hpp"

#include "switchyard/request_flow.hpp"
#include "switchyard/token_estimate.hpp"

#include <caf/all.hpp>

namespace switchyard {

namespace {

struct orchestrator_state {
  routing_table_ptr table;
  std::optional<request_flow> flow;
  std::optional<completion> done;
  std::optional<seeded_random> rng;
  time_point call_started{};
  call_feedback last_feedback;
  static inline const char* name = "switchyard.orchestrator";

  void answer(route_result r) {
    if (!done)
      return;
    auto d = std::move(*done);
    done.reset();
    table->release();
    if (auto* promise = std::get_if<caf::response_promise>(&d))
      promise->deliver(std::move(r));
    else
      std::get<completion_handler>(d)(std::move(r));
  }

  ~orchestrator_state() {
    // Killed before finishing (the actor system stopped): still one answer.
    if (done) {
      route_result r;
      r.error = router_error::make(error_kind::shutdown,
                                   "the router stopped before the request finished");
      if (flow)
        r.attempts = flow->take_result().attempts;
      answer(std::move(r));
    }
  }
};

using orchestrator_actor = caf::stateful_actor<orchestrator_state>;

void step(orchestrator_actor* self, flow_action a);

// A call ended (answer or timeout): feedback for health and picker, then
// the flow's next step. Successes are reported one-way; failures are
// reported by the flow's report_failure action, which awaits the answer.
void finish_call(orchestrator_actor* self, local_index local,
                 const caf::actor& health, call_outcome o) {
  auto& st = self->state;
  auto& f = st.last_feedback;
  f = call_feedback{};
  f.ok = o.ok;
  f.timed_out = o.timed_out;
  f.latency_ms = std::chrono::duration<double, std::milli>(clock_type::now()
                                                           - st.call_started)
                   .count();
  o.latency_ms = f.latency_ms;
  // Latency routing keeps whole-call latency and time to first token apart.
  if (st.flow->request().stream)
    f.first_token_ms = o.first_token_ms;
  const std::uint64_t tokens = st.flow->estimated_tokens() + estimate_text_tokens(o.content);
  auto next = st.flow->on_call(std::move(o));
  // A reply the flow turned into a failure (a content filter) is reported
  // once, as a failure, by the report_failure action.
  f.ok = next.what != flow_action::kind::report_failure;
  if (f.ok) {
    f.tokens = tokens;
    self->send(health, outcome_atom::value, local, f);
  }
  step(self, next);
}

// A peer actor is gone (the router is stopping): answer with a clear error.
auto on_peer_error(orchestrator_actor* self) {
  return [self](caf::error& err) {
    route_result r = self->state.flow->take_result();
    r.ok = false;
    r.error = router_error::make(
      error_kind::shutdown,
      "the router stopped while the request was in flight ("
        + self->system().render(err) + ")");
    self->state.answer(std::move(r));
    self->quit();
  };
}

void step(orchestrator_actor* self, flow_action a) {
  auto& st = self->state;
  auto& flow = *st.flow;
  const auto& group = st.table->groups[a.group];
  switch (a.what) {
    case flow_action::kind::pick:
      self->request(group.picker, caf::infinite, pick_atom::value, flow.current_pick())
        .then(
          [self](const pick_reply& r) {
            step(self, self->state.flow->on_picked(r.picked, r.retry_in));
          },
          on_peer_error(self));
      return;
    case flow_action::kind::call: {
      st.call_started = clock_type::now();
      auto local = a.deployment;
      // The deployment answers by the deadline itself (a Timeout then), so
      // no CAF request timer per call: those wake CAF's clock thread.
      self->request(group.deployments[local], caf::infinite, call_atom::value,
                    flow.shared_request(), a.force_context_window, a.delay.count())
        .then(
          [self, local, health = group.health](call_outcome& o) {
            finish_call(self, local, health, std::move(o));
          },
          on_peer_error(self));
      return;
    }
    case flow_action::kind::report_failure: {
      call_report report{st.last_feedback, flow.last_error(),
                         flow.request().cooldown_time_s};
      self->request(group.health, caf::infinite, outcome_atom::value,
                    a.deployment, std::move(report))
        .then(
          [self](std::size_t healthy) {
            auto& st = self->state;
            step(self, st.flow->on_failure_reported(healthy, *st.rng));
          },
          on_peer_error(self));
      return;
    }
    case flow_action::kind::wait:
      self->delayed_send(self,
                         std::chrono::duration_cast<clock_type::duration>(a.delay),
                         wake_atom::value);
      return;
    case flow_action::kind::resolve_fallbacks:
      self->request(st.table->fallback, caf::infinite, fallback_atom::value,
                    a.group, static_cast<std::uint8_t>(a.error))
        .then(
          [self](const std::vector<std::uint32_t>& groups) {
            step(self, self->state.flow->on_fallbacks(groups));
          },
          on_peer_error(self));
      return;
    case flow_action::kind::finish:
      st.answer(flow.take_result());
      self->quit();
      return;
  }
}

/// Without `done`, the orchestrator waits for the delegated (route_atom).
caf::behavior orchestrator(orchestrator_actor* self, routing_table_ptr table,
                           request_ptr request, std::optional<completion> done) {
  auto& st = self->state;
  st.flow.emplace(table->config, std::move(request));
  st.rng.emplace(derive_seed(table->seed, table->next_request.fetch_add(1, std::memory_order_relaxed)));
  st.table = std::move(table);
  if (done) {
    st.done = std::move(*done);
    step(self, st.flow->start());
  }
  return {
    [self](wake_atom) { step(self, self->state.flow->on_wait_done()); },
    [self](route_atom) -> caf::result<route_result> {
      auto promise = self->make_response_promise();
      self->state.done = completion{promise};
      step(self, self->state.flow->start());
      return promise;
    },
  };
}

} // namespace

void spawn_orchestrator(caf::actor_system& system, routing_table_ptr table,
                        request_ptr request, completion done) {
  system.spawn(orchestrator, std::move(table), std::move(request),
               std::optional<completion>{std::move(done)});
}

caf::actor spawn_delegated_orchestrator(caf::actor_system& system,
                                        routing_table_ptr table, request_ptr request) {
  return system.spawn(orchestrator, std::move(table), std::move(request),
                      std::optional<completion>{});
}

} // namespace switchyard
