#pragma once

#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/request.hpp"

namespace switchyard {

/// Retries inside one hop (ROUTER_SEMANTICS.md section 6). Pure functions.

/// num_retries: request > deployment > router.
int effective_num_retries(const router_settings& settings,
                          const deployment_config& deployment,
                          const chat_request& request);

/// Retries allowed in a hop after an error of kind `k`: the group's
/// model_group_retry_policy entry if it has one (replacing retry_policy, as
/// LiteLLM does), else retry_policy; a kind the policy leaves unset gets
/// num_retries (request > deployment > router).
int retries_allowed(const router_settings& settings, const std::string& group,
                    const deployment_config& deployment,
                    const chat_request& request, error_kind k);

/// Whether a failed attempt may be retried. `healthy` counts the group's
/// deployments not cooling down after this failure was recorded;
/// `fallbacks_configured`: a generic fallback exists for the group.
/// Never: 400 family, 404, 422, NoDeploymentsAvailable; 401/403 only in a
/// group of more than one; RateLimit when none healthy and fallbacks exist;
/// anything when none healthy.
bool should_retry(const router_error& e, std::size_t group_size,
                  std::size_t healthy, bool fallbacks_configured);

/// Delay before retry number `attempt` (0-based), LiteLLM's
/// `_time_to_sleep_before_retry` / `_calculate_retry_after`: 0 when the
/// group has more than one deployment and one is healthy; else the
/// Retry-After exactly when it is in (0, 60] s (no draw); else
/// min(0.5 * 2^attempt, 8) s times a jitter factor 1 - 0.25 * u, in
/// (0.75, 1], for one draw u from `rng`.
seconds_d retry_delay(std::size_t group_size, std::size_t healthy,
                      std::optional<double> retry_after_s, int attempt,
                      random_source& rng);

} // namespace switchyard
