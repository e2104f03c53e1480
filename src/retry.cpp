#include "switchyard/retry.hpp"

#include <algorithm>
#include <cmath>

namespace switchyard {

int effective_num_retries(const router_settings& settings,
                          const deployment_config& deployment,
                          const chat_request& request) {
  if (request.num_retries)
    return *request.num_retries;
  if (deployment.num_retries)
    return *deployment.num_retries;
  return settings.num_retries;
}

int retries_allowed(const router_settings& settings, const std::string& group,
                    const deployment_config& deployment,
                    const chat_request& request, error_kind k) {
  // As LiteLLM: a group's policy replaces retry_policy entirely.
  const auto p = settings.model_group_retry_policy.find(group);
  const auto& policy = p != settings.model_group_retry_policy.end() ? p->second
                                                                    : settings.retry_policy;
  if (auto n = policy.for_kind(k))
    return *n;
  return effective_num_retries(settings, deployment, request);
}

bool should_retry(const router_error& e, std::size_t group_size,
                  std::size_t healthy, bool fallbacks_configured) {
  if (e.status == 400 || e.status == 404 || e.status == 422)
    return false;
  switch (e.kind) {
    case error_kind::no_deployments_available:
    case error_kind::overloaded:
    case error_kind::shutdown:
    case error_kind::cancelled:
      return false;
    case error_kind::authentication:
    case error_kind::permission_denied:
      if (group_size <= 1)
        return false;
      break;
    case error_kind::rate_limit:
      if (healthy == 0 && fallbacks_configured)
        return false;
      break;
    default:
      break;
  }
  return healthy > 0;
}

seconds_d retry_delay(std::size_t group_size, std::size_t healthy,
                      std::optional<double> retry_after_s, int attempt,
                      random_source& rng) {
  if (group_size > 1 && healthy > 0)
    return seconds_d(0);
  // A reasonable Retry-After is what the provider asked for: waited as is.
  if (retry_after_s && *retry_after_s > 0 && *retry_after_s <= 60)
    return seconds_d(*retry_after_s);
  constexpr double initial = 0.5;
  constexpr double max_delay = 8.0;
  const double backoff = std::min(initial * std::pow(2.0, attempt), max_delay);
  return seconds_d(backoff * (1.0 - 0.25 * rng.next_unit()));
}

} // namespace switchyard
