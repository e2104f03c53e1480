#include "switchyard/shared_state.hpp"

#include "switchyard/config.hpp"
#include "switchyard/redis_shared_state.hpp"

namespace switchyard {

std::string_view name_of(shared_state_status::state s) noexcept {
  switch (s) {
    case shared_state_status::state::none: return "none";
    case shared_state_status::state::connected: return "connected";
    case shared_state_status::state::down: return "down";
  }
  return "none";
}

std::unique_ptr<shared_state> make_shared_state(const router_config& config,
                                                std::shared_ptr<shared_state_listener> listener) {
  if (!config.settings.redis)
    return std::make_unique<local_shared_state>();
  redis_shared_state_options options;
  options.server = *config.settings.redis;
  for (const auto& d : config.deployments)
    options.deployment_ids.push_back(d.id);
  return std::make_unique<redis_shared_state>(std::move(options), std::move(listener));
}

} // namespace switchyard
