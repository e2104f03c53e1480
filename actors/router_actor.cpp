#include "router_actor.hpp"

#include "group_actors.hpp"
#include "orchestrator.hpp"

#include "switchyard/http_transport.hpp"
#include "switchyard/mock_transport.hpp"

#include <algorithm>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace switchyard {

namespace {

route_result null_request() {
  route_result r;
  r.error = router_error::make(error_kind::bad_request,
                               "request: expected a request, got a null request_ptr");
  return r;
}

// --- supervisor: restarts a group's actors when one of them fails --------

struct supervisor_state {
  std::weak_ptr<const routing_table> table;
  std::shared_ptr<router_observer> observer;
  std::uint64_t restarts = 0;
  static inline const char* name = "switchyard.supervisor";
};

using supervisor_actor = caf::stateful_actor<supervisor_state>;

void watch(supervisor_actor* self, const group_actors& g) {
  self->monitor(g.picker);
  self->monitor(g.cooldown);
  self->monitor(g.health);
}

caf::behavior supervisor(supervisor_actor* self, std::shared_ptr<router_observer> observer,
                         std::weak_ptr<const routing_table> weak_table) {
  self->state.observer = std::move(observer);
  self->state.table = weak_table;
  if (auto table = weak_table.lock())
    for (const auto& slot : table->groups)
      watch(self, *slot.get());
  self->set_down_handler([self](caf::down_msg& m) {
    auto table = self->state.table.lock();
    if (!table || table->stopping.load())
      return;
    for (std::uint32_t g = 0; g < table->groups.size(); ++g) {
      auto actors = table->groups[g].get();
      const caf::actor* members[] = {&actors->picker, &actors->cooldown, &actors->health};
      const char* roles[] = {"picker", "cooldown", "health"};
      for (int k = 0; k < 3; ++k) {
        if (members[k]->address() != m.source)
          continue;
        // Once per failure; the reason is an exception's text or an exit
        // reason, never request data.
        spdlog::error("model group '{}': its {} actor failed ({}); restarting the group's actors",
                      table->config->groups[g].name, roles[k], self->system().render(m.reason));
        for (int other = 0; other < 3; ++other)
          if (other != k)
            self->send_exit(*members[other], caf::exit_reason::user_shutdown);
        auto fresh = spawn_group(self->system(), table->config, g,
                                 derive_seed(table->seed, 7919 * ++self->state.restarts),
                                 self->state.observer);
        watch(self, fresh);
        table->groups[g].set(std::move(fresh));
        return;
      }
    }
  });
  return {
    [](caf::unit_t) {},
  };
}

} // namespace

route_result overloaded(const routing_table& table) {
  if (table.observer)
    table.observer->on_admission_refused(
      admission_event{table.in_flight.load(std::memory_order_relaxed), table.max_in_flight});
  route_result r;
  r.error = router_error::make(
    error_kind::overloaded,
    "router overloaded: " + std::to_string(table.max_in_flight)
      + " requests already in flight (max_in_flight); retry later",
    1.0);
  return r;
}

namespace {

caf::behavior router_actor(caf::event_based_actor* self, routing_table_ptr table) {
  return {
    [self, table](route_atom, request_ptr request) -> caf::result<route_result> {
      if (!request)
        return null_request();
      if (!table->admit())
        return overloaded(*table);
      // The orchestrator answers the requester itself, with its own promise.
      self->delegate(spawn_delegated_orchestrator(self->system(), table, std::move(request)),
                     route_atom::value);
      return caf::delegated<route_result>{};
    },
    [self, table](route_atom, request_ptr request, completion_handler done) {
      if (!request)
        return done(null_request());
      if (!table->admit())
        return done(overloaded(*table));
      spawn_orchestrator(self->system(), table, std::move(request),
                         completion{std::move(done)});
    },
    [table](fault_atom, const std::string& group, const std::string& role) {
      auto g = table->config->find_group(group);
      if (!g)
        return;
      auto actors = table->groups[*g].get();
      const caf::actor& target = role == "picker" ? actors->picker
                                 : role == "cooldown" ? actors->cooldown
                                                      : actors->health;
      caf::anon_send(target, fault_atom::value);
    },
  };
}

} // namespace

caf::actor spawn_router_actor(caf::actor_system& system, routing_table_ptr table) {
  return system.spawn(router_actor, std::move(table));
}

routing_table_ptr start_routing(caf::actor_system& system,
                                std::shared_ptr<const router_config> config,
                                std::uint64_t seed, const router_options& options) {
  auto table = std::make_shared<routing_table>();
  table->config = config;
  table->seed = seed;
  table->max_in_flight = options.max_in_flight;
  table->observer = options.observer;
  // The HTTP client (and its I/O thread) only when a deployment is real.
  auto http = options.http;
  if (!http && std::any_of(config->deployments.begin(), config->deployments.end(),
                           [](const deployment_config& d) { return d.endpoint != nullptr; }))
    http = make_http_transport(options.http_client);
  table->calls = make_dispatching_transport(config, make_mock_transport(config, seed),
                                            std::move(http));
  table->timers = std::make_shared<timer_thread>();
  for (std::uint32_t g = 0; g < config->groups.size(); ++g)
    table->groups.emplace_back(spawn_group(system, config, g, seed, options.observer));
  table->supervisor = system.spawn(supervisor, options.observer,
                                   std::weak_ptr<const routing_table>(table));
  table->fallback = spawn_fallback(system, config);
  return table;
}

void stop_routing(const routing_table& table) {
  auto stop = [](const caf::actor& a) {
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  };
  table.stopping.store(true);
  // Calls in flight and requests waiting in a timer end now (ShutdownError).
  table.calls->stop();
  table.timers->fire_all();
  stop(table.supervisor);
  for (const auto& slot : table.groups) {
    auto g = slot.get();
    stop(g->health);
    stop(g->cooldown);
    stop(g->picker);
  }
  stop(table.fallback);
}

} // namespace switchyard
