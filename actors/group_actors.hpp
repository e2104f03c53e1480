#pragma once

#include "messages.hpp"

#include <caf/fwd.hpp>

namespace switchyard {

/// Spawns one model group's actors (picker, cooldown, health) in `system`.
/// Deployment calls go through the routing table's transport. `shared`
/// (null: nothing is shared) gets the group's cooldowns, usage and
/// outcomes; the actors apply the fleet's through remote_cool_atom and
/// fleet_atom.
group_actors spawn_group(caf::actor_system& system,
                         std::shared_ptr<const router_config> config,
                         std::uint32_t group, std::uint64_t seed,
                         std::shared_ptr<router_observer> observer,
                         std::shared_ptr<shared_state> shared);

/// Spawns the router-wide fallback actor: answers
/// `(fallback_atom, group, error kind) -> std::vector<uint32_t>` with the
/// groups to try (resolve_fallbacks).
caf::actor spawn_fallback(caf::actor_system& system,
                          std::shared_ptr<const router_config> config);

} // namespace switchyard
