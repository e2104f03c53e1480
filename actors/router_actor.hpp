#pragma once

#include "messages.hpp"

#include <caf/fwd.hpp>

namespace switchyard {

/// The router actor: `(route_atom, request_ptr) -> route_result` spawns an
/// orchestrator per request and lets it answer the requester directly;
/// `(route_atom, request_ptr, completion_handler)` does the same for a
/// callback. It holds no per-request state.
caf::actor spawn_router_actor(caf::actor_system& system, routing_table_ptr table);

/// The answer to a request refused by admission control (max_in_flight).
route_result overloaded(const routing_table& table);

/// Spawns every group's actors and the fallback actor: the routing table.
routing_table_ptr start_routing(caf::actor_system& system,
                                std::shared_ptr<const router_config> config,
                                std::uint64_t seed, const router_options& options);

/// Stops every actor of a routing table (in-flight requests are answered).
void stop_routing(const routing_table& table);

} // namespace switchyard
