#include "orchestrator.hpp"

#include "switchyard/call_feedback.hpp"
#include "switchyard/request_flow.hpp"
#include "switchyard/token_estimate.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace switchyard {

namespace {

// Time comes from the actor system's clock, so a test's simulated clock
// (CAF's test coordinator) drives latencies, waits and deadlines.
double ms_since(const caf::actor_clock& clock, time_point t) {
  return std::chrono::duration<double, std::milli>(clock.now() - t).count();
}

// The transport's events for one call, as messages to the orchestrator:
// they arrive on the transport's thread (or inline in start()), and the
// orchestrator drops those of a call it has moved on from.
class actor_sink final : public call_sink {
public:
  actor_sink(caf::actor self, std::uint64_t call) : self_(std::move(self)), call_(call) {}
  void on_chunk(nlohmann::json chunk) override {
    caf::anon_send(self_, chunk_atom::value, call_, stream_chunk{std::move(chunk)});
  }
  void on_done(call_outcome outcome) override {
    caf::anon_send(self_, call_done_atom::value, call_, std::move(outcome));
  }
  // Decoded by the orchestrator, off the transport's I/O thread.
  void on_answer(pending_answer_ptr answer) override {
    caf::anon_send(self_, call_done_atom::value, call_, std::move(answer));
  }

private:
  caf::actor self_;
  std::uint64_t call_;
};

struct orchestrator_state {
  routing_table_ptr table;
  /// The actor system's clock (simulated under the test coordinator).
  const caf::actor_clock* clock = nullptr;
  std::optional<request_flow> flow;
  std::optional<completion> done;
  chunk_handler on_chunk;
  commit_handler on_commit;
  std::optional<seeded_random> rng;
  /// When the request began (set only with an observer, its only reader).
  time_point started{};
  /// A call in flight: its handle, number and where it goes. More than
  /// one only while hedging (hedge_after_ms).
  struct in_call {
    call_handle_ptr handle;
    std::uint64_t id = 0;
    local_index local = 0;
    std::uint32_t group = 0;
    time_point started{};
  };
  std::vector<in_call> calls;
  std::uint64_t next_call_id = 0;
  /// The call that ended last (its feedback goes with report_failure).
  in_call ended;
  call_feedback last_feedback;
  double upstream_ms = 0;
  /// The pending retry wait and total_timeout deadline (timer_thread ids).
  std::uint64_t wait_timer = 0;
  std::uint64_t deadline_timer = 0;
  static inline const char* name = "switchyard.orchestrator";

  /// Cancels a call in flight; its late events are dropped. The picker
  /// counts calls from pick to end (least-busy, probation): a cancelled
  /// one ends too, as no sample and no failure.
  void cancel(in_call& c) {
    if (c.handle)
      c.handle->cancel();
    call_feedback f;
    f.cancelled = true;
    caf::anon_send(table->groups[c.group].get()->picker, finished_atom::value, c.local, f);
  }

  void cancel_calls() {
    for (auto& c : calls)
      cancel(c);
    calls.clear();
  }

  /// Cancels the calls to `local` (a hedge that lost the stream's race).
  void cancel_call_to(local_index local) {
    for (auto c = calls.begin(); c != calls.end();) {
      if (c->local != local) {
        ++c;
        continue;
      }
      cancel(*c);
      c = calls.erase(c);
    }
  }

  in_call* find_call(std::uint64_t id) {
    for (auto& c : calls)
      if (c.id == id)
        return &c;
    return nullptr;
  }

  void cancel_timers() {
    for (auto* id : {&wait_timer, &deadline_timer})
      if (*id) {
        table->timers->cancel(*id);
        *id = 0;
      }
  }

  void answer(route_result r) {
    if (!done)
      return;
    cancel_calls();
    cancel_timers();
    auto d = std::move(*done);
    done.reset();
    table->release();
    if (table->observer && flow) {
      request_event e;
      const auto& groups = table->config->groups;
      e.model_group = r.model_group.empty()
                        ? std::string_view(flow->request().model)
                        : std::string_view(r.model_group);
      if (auto g = table->config->resolve_group(flow->request().model))
        e.model_group = groups[*g].name;
      if (!r.ok)
        e.error = r.error.kind;
      e.duration_ms = ms_since(*clock, started);
      e.upstream_ms = upstream_ms;
      e.attempts = static_cast<int>(r.attempts.size());
      e.retries = flow->retries();
      e.failovers = flow->failovers();
      e.fallbacks = flow->fallbacks();
      e.budget_refused = flow->budget_refused();
      e.stream = flow->request().stream;
      table->observer->on_request(e);
    }
    if (auto* promise = std::get_if<caf::response_promise>(&d))
      promise->deliver(std::move(r));
    else
      std::get<completion_handler>(d)(std::move(r));
  }

  // Told to exit before finishing: still one answer, from the exit
  // handler (orchestrator()), never from a destructor. No other path ends
  // an orchestrator unanswered: it quits itself only after answering, and
  // the exception handler answers too.
  void answer_on_exit(const caf::error& reason, caf::actor_system& sys) {
    if (!done || !flow)
      return;
    answer(flow->abort(router_error::make(
      error_kind::shutdown,
      "the router stopped before the request finished (" + sys.render(reason) + ")")));
  }
};

using orchestrator_actor = caf::stateful_actor<orchestrator_state>;

void step(orchestrator_actor* self, flow_action a);

void finish_request(orchestrator_actor* self, route_result r) {
  self->state.answer(std::move(r));
  self->quit();
}

void report_attempt(orchestrator_state& st, const call_outcome& o, double latency_ms) {
  if (!st.table->observer)
    return;
  const auto& config = *st.table->config;
  const auto& d = config.deployments[config.groups[st.ended.group].deployments[st.ended.local]];
  attempt_event e;
  e.deployment_id = d.id;
  e.model_group = d.model_name;
  if (!o.ok)
    e.outcome = o.error.kind;
  e.latency_ms = latency_ms;
  e.first_token_ms = o.first_token_ms;
  if (o.ok) {
    e.prompt_tokens = o.prompt_tokens.value_or(st.flow->estimated_tokens());
    e.completion_tokens = o.completion_tokens.value_or(estimate_text_tokens(o.content));
  }
  st.table->observer->on_attempt(e);
}

// A call ended (answer or timeout): feedback for health and picker, then
// the flow's next step. Successes are reported one-way; failures are
// reported by the flow's report_failure action, which awaits the answer.
void finish_call(orchestrator_actor* self, std::uint64_t id, call_outcome o) {
  auto& st = self->state;
  auto c = std::find_if(st.calls.begin(), st.calls.end(),
                        [id](const auto& x) { return x.id == id; });
  st.ended = std::move(*c);
  st.calls.erase(c);
  // A reference: the slot keeps every set alive, and a copy of the handle
  // is two atomic writes on the health actor's count, which every worker
  // shares.
  const auto& health = st.table->groups[st.ended.group].get()->health;
  const auto local = st.ended.local;
  o.latency_ms = ms_since(*st.clock, st.ended.started);
  st.upstream_ms += o.latency_ms;
  report_attempt(st, o, o.latency_ms);
  auto judged = judge_call(*st.flow, local, std::move(o));
  st.last_feedback = judged.feedback;
  // A reply the flow turned into a failure (a content filter) is reported
  // once, as a failure, by the report_failure action.
  if (judged.feedback.ok)
    self->send(health, outcome_atom::value, local, judged.feedback);
  step(self, judged.next);
}

// A peer actor failed or is gone: the router is stopping (ShutdownError),
// or one of the group's actors failed and is being restarted (an internal
// error: the request cannot know what that actor had done for it).
auto on_peer_error(orchestrator_actor* self) {
  return [self](caf::error& err) {
    auto& st = self->state;
    const bool stopping = st.table->stopping.load(std::memory_order_relaxed);
    route_result r = st.flow->abort(router_error::make(
      stopping ? error_kind::shutdown : error_kind::internal_server,
      stopping ? "the router stopped while the request was in flight ("
                   + self->system().render(err) + ")"
               : "an actor of model group '" + st.table->config->groups[st.flow->current_group()].name
                   + "' failed while the request was in flight; it is being restarted"));
    finish_request(self, std::move(r));
  };
}

void start_call(orchestrator_actor* self, const flow_action& a) {
  auto& st = self->state;
  orchestrator_state::in_call c;
  c.id = ++st.next_call_id;
  c.started = st.clock->now();
  c.local = a.deployment;
  c.group = a.group;
  call_spec spec;
  spec.deployment = &st.flow->current_deployment();
  spec.request = st.flow->shared_request();
  spec.timeout = a.delay;
  // The transport enforces the deadline (a Timeout then), so no CAF timer
  // per call: those wake CAF's clock thread.
  auto sink = std::make_shared<actor_sink>(caf::actor_cast<caf::actor>(self), c.id);
  const auto id = c.id;
  st.calls.push_back(std::move(c));
  // start() may answer inline (through the mailbox): the entry exists first.
  auto handle = st.table->calls->start(spec, std::move(sink));
  if (auto* in = st.find_call(id))
    in->handle = std::move(handle);
  if (a.hedge_after)
    self->delayed_send(self, std::chrono::duration_cast<clock_type::duration>(*a.hedge_after),
                       wake_atom::value, id);
}

// The router is stopping: no new pick, call or wait.
void abort_stopping(orchestrator_actor* self) {
  finish_request(self, self->state.flow->abort(router_error::make(
                         error_kind::shutdown, "the router stopped while the request was in flight")));
}

template <class Atom, class... Ts>
std::uint64_t after(orchestrator_actor* self, seconds_d delay, Ts... xs) {
  return self->state.table->timers->schedule_after(
    std::chrono::duration_cast<std::chrono::nanoseconds>(delay),
    [a = caf::actor_cast<caf::actor>(self), xs...] { caf::anon_send(a, Atom::value, xs...); });
}

void step(orchestrator_actor* self, flow_action a) {
  auto& st = self->state;
  auto& flow = *st.flow;
  if (a.what != flow_action::kind::finish && st.table->stopping.load(std::memory_order_relaxed))
    return abort_stopping(self);
  const auto group_ptr = st.table->groups[a.group].get();
  const auto& group = *group_ptr;
  switch (a.what) {
    case flow_action::kind::pick: {
      auto on_reply = [self](const pick_reply& r) {
        step(self, self->state.flow->on_picked(r.picked, r.retry_in));
      };
      // With a call in flight (a hedge's pick) no other event may come
      // between the pick and its answer.
      if (flow.in_flight() > 0)
        self->request(group.picker, caf::infinite, pick_atom::value, flow.current_pick())
          .await(on_reply, on_peer_error(self));
      else
        self->request(group.picker, caf::infinite, pick_atom::value, flow.current_pick())
          .then(on_reply, on_peer_error(self));
      return;
    }
    case flow_action::kind::call:
      start_call(self, a);
      return;
    case flow_action::kind::report_failure: {
      call_report report{st.last_feedback, flow.last_error(),
                         flow.request().cooldown_time_s};
      auto on_reply = [self](std::size_t healthy) {
        auto& st = self->state;
        step(self, st.flow->on_failure_reported(healthy, *st.rng));
      };
      // Another call in flight (hedging): its answer waits for this one.
      if (flow.in_flight() > 0)
        self->request(group.health, caf::infinite, outcome_atom::value,
                      a.deployment, std::move(report))
          .await(on_reply, on_peer_error(self));
      else
        self->request(group.health, caf::infinite, outcome_atom::value,
                      a.deployment, std::move(report))
          .then(on_reply, on_peer_error(self));
      return;
    }
    case flow_action::kind::idle:
      return;
    case flow_action::kind::wait:
      st.wait_timer = after<wake_atom>(self, a.delay);
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
      finish_request(self, flow.take_result());
      return;
  }
}

void begin(orchestrator_actor* self) {
  auto& st = self->state;
  // Only the observer's duration_ms reads it: no clock read without one.
  if (st.table->observer)
    st.started = st.clock->now();
  const auto& request = st.flow->request();
  auto total = request.total_timeout_s ? request.total_timeout_s
                                       : st.table->config->settings.total_timeout_s;
  // One timer per request, only when a total_timeout bounds it.
  if (total && std::isfinite(*total) && *total > 0)
    st.deadline_timer = after<deadline_atom>(self, seconds_d(*total), *total);
  step(self, st.flow->start());
}

/// Without `done`, the orchestrator waits for the delegated (route_atom).
caf::behavior orchestrator(orchestrator_actor* self, routing_table_ptr table,
                           request_ptr request, std::optional<completion> done,
                           chunk_handler on_chunk, commit_handler on_commit) {
  auto& st = self->state;
  st.clock = &self->clock();
  st.flow.emplace(table->config, std::move(request));
  st.rng.emplace(derive_seed(table->seed, table->next_request.fetch_add(1, std::memory_order_relaxed)));
  st.table = std::move(table);
  st.on_chunk = std::move(on_chunk);
  st.on_commit = std::move(on_commit);
  self->set_exit_handler([self](caf::exit_msg& m) {
    self->state.answer_on_exit(m.reason, self->system());
    self->quit(std::move(m.reason));
  });
  // A bug in the flow must not leave the caller waiting: answer it, then
  // this actor ends (CAF quits an actor whose handler threw).
  self->set_exception_handler([self](std::exception_ptr& e) -> caf::error {
    auto what = exception_text(e);
    auto& st = self->state;
    if (st.done && st.flow)
      st.answer(st.flow->abort(router_error::make(
        error_kind::internal_server, "internal error while routing the request: " + what)));
    return caf::make_error(caf::sec::runtime_error, std::move(what));
  });
  if (done) {
    st.done = std::move(*done);
    begin(self);
  }
  return {
    [self](wake_atom) {
      self->state.wait_timer = 0;
      step(self, self->state.flow->on_wait_done());
    },
    // A call's hedge timer: still unanswered, the flow may hedge it.
    [self](wake_atom, std::uint64_t id) {
      auto& st = self->state;
      if (st.done && st.find_call(id))
        step(self, st.flow->on_hedge_due());
    },
    [self](call_done_atom, std::uint64_t id, call_outcome& o) {
      if (self->state.done && self->state.find_call(id))
        finish_call(self, id, std::move(o));
    },
    [self](call_done_atom, std::uint64_t id, pending_answer_ptr& a) {
      if (self->state.done && self->state.find_call(id))
        finish_call(self, id, a->decode());
    },
    [self](chunk_atom, std::uint64_t id, stream_chunk& c) {
      auto& st = self->state;
      auto* call = st.find_call(id);
      if (!call || !st.done)
        return;
      const bool was_committed = st.flow->committed();
      auto out = st.flow->on_chunk(call->local, std::move(c.chunk));
      // The commit is told before its first chunk, so a gateway sends the
      // headers that name the deployment with it.
      if (!was_committed && st.flow->committed() && st.on_commit) {
        auto info = st.flow->commit_info();
        info.upstream_ms = st.upstream_ms + ms_since(*st.clock, call->started);
        st.on_commit(info);
      }
      for (auto& chunk : out)
        if (st.on_chunk)
          st.on_chunk(chunk);
      // The first to commit wins the stream: the hedges still racing lose.
      if (st.flow->committed())
        for (auto loser : st.flow->take_losers())
          st.cancel_call_to(loser);
    },
    [self](cancel_atom) {
      finish_request(self, self->state.flow->abort(router_error::make(
                             error_kind::cancelled, "the caller cancelled the request")));
    },
    [self](deadline_atom, double seconds) {
      self->state.deadline_timer = 0;
      if (self->state.table->stopping.load())
        return abort_stopping(self);
      char text[32];
      std::snprintf(text, sizeof text, "%g", seconds);
      finish_request(self, self->state.flow->abort(router_error::make(
                             error_kind::timeout,
                             std::string("the request did not finish within its total_timeout of ")
                               + text + " s")));
    },
    [self](route_atom) -> caf::result<route_result> {
      auto promise = self->make_response_promise();
      self->state.done = completion{promise};
      begin(self);
      return promise;
    },
  };
}

class actor_canceller final : public request_handle::canceller {
public:
  explicit actor_canceller(const caf::actor& a) : addr_(caf::actor_cast<caf::weak_actor_ptr>(a)) {}
  // Urgent: a cancel jumps the chunks of a stream already queued in the
  // mailbox (a fast upstream and a client that stopped reading), so the
  // upstream call ends now, not after all of them.
  void cancel() noexcept override {
    if (auto a = caf::actor_cast<caf::actor>(addr_))
      caf::anon_send<caf::message_priority::high>(a, cancel_atom::value);
  }

private:
  caf::weak_actor_ptr addr_;
};

} // namespace

request_handle spawn_orchestrator(caf::actor_system& system, routing_table_ptr table,
                                  request_ptr request, completion done,
                                  chunk_handler on_chunk, commit_handler on_commit) {
  auto a = system.spawn(orchestrator, std::move(table), std::move(request),
                        std::optional<completion>{std::move(done)}, std::move(on_chunk),
                        std::move(on_commit));
  return request_handle(std::make_shared<actor_canceller>(a));
}

caf::actor spawn_delegated_orchestrator(caf::actor_system& system,
                                        routing_table_ptr table, request_ptr request) {
  return system.spawn(orchestrator, std::move(table), std::move(request),
                      std::optional<completion>{}, chunk_handler{}, commit_handler{});
}

} // namespace switchyard
