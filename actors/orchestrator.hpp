#pragma once

#include "messages.hpp"

#include "switchyard/router.hpp"

#include <caf/fwd.hpp>
#include <caf/response_promise.hpp>

#include <variant>

namespace switchyard {

/// Where a request's one answer goes: a CAF requester, or a callback.
using completion = std::variant<caf::response_promise, completion_handler>;

/// Spawns the orchestrator of one request: it runs the request's
/// request_flow (picks, calls, retries, weighted failover, fallbacks) and
/// answers exactly once, even when the router stops under it.
/// `on_chunk` (streamed requests; may be empty) gets the chunks past the
/// first-chunk gate, after `on_commit` (may be empty) heard where it
/// committed. The handle cancels the request.
request_handle spawn_orchestrator(caf::actor_system& system, routing_table_ptr table,
                                  request_ptr request, completion done,
                                  chunk_handler on_chunk = {}, commit_handler on_commit = {});

/// Spawns an orchestrator for a request its caller delegates to it
/// (`self->delegate(orchestrator, route_atom::value)`): it starts on that
/// message and answers the original requester with a response promise of
/// its own. A CAF 0.17 promise must be delivered by the actor that made it
/// (delivering reads that actor's execution unit, which its own worker
/// writes meanwhile: a data race), so promises are never handed over.
caf::actor spawn_delegated_orchestrator(caf::actor_system& system,
                                        routing_table_ptr table, request_ptr request);

} // namespace switchyard
