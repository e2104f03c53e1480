#pragma once

#include "messages.hpp"

#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include <variant>

namespace switchyard {

/// Where a request's one answer goes: a CAF requester, or a callback.
using completion = std::variant<caf::response_promise, completion_handler>;

/// Spawns the orchestrator of one request: it runs the request's
/// request_flow (picks, calls, retries, weighted failover, fallbacks) and
/// answers exactly once, even when the router stops under it.
void spawn_orchestrator(caf::actor_system& system, routing_table_ptr table,
                        request_ptr request, completion done);

} // namespace switchyard
