#include "router_actor.hpp"

#include "group_actors.hpp"
#include "orchestrator.hpp"

#include "switchyard/mock_transport.hpp"

#include <caf/all.hpp>

namespace switchyard {

namespace {

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
      if (!table->admit())
        return overloaded(*table);
      // The orchestrator answers the requester itself, with its own promise.
      self->delegate(spawn_delegated_orchestrator(self->system(), table, std::move(request)),
                     route_atom::value);
      return caf::delegated<route_result>{};
    },
    [self, table](route_atom, request_ptr request, completion_handler done) {
      if (!table->admit())
        return done(overloaded(*table));
      spawn_orchestrator(self->system(), table, std::move(request),
                         completion{std::move(done)});
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
  table->calls = make_dispatching_transport(config, make_mock_transport(config, seed),
                                            options.http);
  for (std::uint32_t g = 0; g < config->groups.size(); ++g)
    table->groups.push_back(spawn_group(system, config, g, seed, options.observer));
  table->fallback = spawn_fallback(system, config);
  return table;
}

void stop_routing(const routing_table& table) {
  auto stop = [](const caf::actor& a) {
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  };
  for (const auto& g : table.groups) {
    stop(g.health);
    stop(g.cooldown);
    stop(g.picker);
  }
  stop(table.fallback);
}

} // namespace switchyard
