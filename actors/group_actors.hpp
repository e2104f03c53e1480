#pragma once

#include "messages.hpp"

#include <caf/fwd.hpp>

namespace switchyard {

/// Spawns one model group's actors (picker, cooldown, health) in `system`.
/// Deployment calls go through the routing table's transport. `shared`
/// (null: nothing is shared) gets the group's cooldowns, usage and
/// outcomes; the actors apply the fleet's through remote_cool_atom and
/// fleet_atom. They start with the cooldowns `shared` knows of (a group
/// restarted by the supervisor keeps the fleet's cooldowns and its own).
group_actors spawn_group(caf::actor_system& system,
                         std::shared_ptr<const router_config> config,
                         std::uint32_t group, std::uint64_t seed,
                         std::shared_ptr<router_observer> observer,
                         std::shared_ptr<shared_state> shared);

/// Sends `g`'s cooldown actor every cooldown `shared` knows of for the
/// group's deployments (remote_cool_atom: the later end wins, so a repeat
/// changes nothing). Called once `g` is where the fleet listener finds it:
/// a cooldown heard between spawn_group's read and then is not lost.
void replay_cooldowns(const group_actors& g, const router_config& config, std::uint32_t group,
                      const shared_state& shared);

/// Spawns the router-wide fallback actor: answers
/// `(fallback_atom, group, error kind) -> std::vector<uint32_t>` with the
/// groups to try (resolve_fallbacks).
caf::actor spawn_fallback(caf::actor_system& system,
                          std::shared_ptr<const router_config> config);

} // namespace switchyard
