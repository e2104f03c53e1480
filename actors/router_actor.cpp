#include "router_actor.hpp"

#include "group_actors.hpp"
#include "orchestrator.hpp"

#include "switchyard/http_transport.hpp"
#include "switchyard/mock_transport.hpp"

#include <algorithm>
#include <mutex>
#include <unordered_map>

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
                                 self->state.observer, table->sharing());
        watch(self, fresh);
        table->groups[g].set(fresh);
        if (auto shared = table->sharing())
          replay_cooldowns(fresh, *table->config, g, *shared);
        return;
      }
    }
  });
  return {
    [](caf::unit_t) {},
  };
}

} // namespace

// --- fleet_listener: turns the shared state's news into messages ---------

/// Hears the other replicas through the shared state and forwards each
/// piece of news to the group actor that owns the state it changes.
/// Threading: called on the shared state's I/O thread, never blocks (a
/// short mutex, then non-blocking sends). detach() (stop_routing) ends the
/// forwarding, so that the I/O thread never holds the routing table once
/// the router is going away.
class fleet_listener final : public shared_state_listener {
public:
  fleet_listener(const router_config& config, std::shared_ptr<router_observer> observer)
    : observer_(std::move(observer)) {
    for (const auto& d : config.deployments)
      where_.emplace(d.id, place{d.group, d.index_in_group});
  }

  void attach(std::weak_ptr<const routing_table> table) {
    std::lock_guard lock(mu_);
    table_ = std::move(table);
  }
  void detach() {
    std::lock_guard lock(mu_);
    table_.reset();
  }

  void on_cooldown(const shared_cooldown& c) override {
    const shared_cooldown* one[] = {&c};
    each(one, [&](const group_actors& g, local_index i, const shared_cooldown* x) {
      caf::anon_send(g.cooldown, remote_cool_atom::value, i, x->deadline_ms,
                     static_cast<std::uint8_t>(x->kind), x->status);
    });
  }
  void on_usage(const std::vector<fleet_usage>& usage) override {
    each(usage, [&](const group_actors& g, local_index i, const fleet_usage& u) {
      caf::anon_send(g.picker, fleet_atom::value, i, u.others_requests(), u.others_tokens(),
                     u.minute);
    });
  }
  void on_outcomes(const std::vector<fleet_outcomes>& outcomes) override {
    each(outcomes, [&](const group_actors& g, local_index i, const fleet_outcomes& o) {
      caf::anon_send(g.health, fleet_atom::value, i, o.others_requests(),
                     o.others_failures(), o.minute);
    });
  }
  void on_status(const shared_state_status& s) override {
    if (observer_)
      observer_->on_shared_state(s);
  }

private:
  struct place {
    std::uint32_t group;
    local_index index;
  };

  static const std::string& id_of(const shared_cooldown* c) { return c->deployment_id; }
  template <class Entry>
  static const std::string& id_of(const Entry& e) { return e.deployment_id; }

  // f(the deployment's group actors, its local index, entry) for each entry
  // of a deployment of this config, while the router runs.
  template <class Entries, class F>
  void each(const Entries& entries, F&& f) {
    std::lock_guard lock(mu_);
    auto table = table_.lock();
    if (!table)
      return;
    for (const auto& e : entries) {
      auto it = where_.find(id_of(e));
      if (it != where_.end())
        f(*table->groups[it->second.group].get(), it->second.index, e);
    }
  }

  const std::shared_ptr<router_observer> observer_;
  std::unordered_map<std::string, place> where_; ///< immutable after construction
  std::mutex mu_;
  std::weak_ptr<const routing_table> table_;
};

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
  table->fleet = std::make_shared<fleet_listener>(*config, options.observer);
  table->shared = make_shared_state(*config, table->fleet);
  table->timers = options.timers ? options.timers
                                 : std::shared_ptr<timer_service>(std::make_shared<timer_thread>());
  for (std::uint32_t g = 0; g < config->groups.size(); ++g)
    table->groups.emplace_back(
      spawn_group(system, config, g, seed, options.observer, table->sharing()));
  table->fleet->attach(table);
  // Cooldowns heard before the listener could reach the actors.
  if (auto shared = table->sharing())
    for (std::uint32_t g = 0; g < config->groups.size(); ++g)
      replay_cooldowns(*table->groups[g].get(), *config, g, *shared);
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
  table.fleet->detach();
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
