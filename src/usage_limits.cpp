#include "switchyard/usage_limits.hpp"

namespace switchyard {

usage_limits::usage_limits(const std::vector<const deployment_config*>& deployments)
  : usage_(deployments.size()) {
  for (const auto* d : deployments) {
    rpm_.push_back(d->rpm);
    tpm_.push_back(d->tpm);
  }
}

bool usage_limits::at_rpm_limit(local_index i, time_point now) const {
  const auto& rpm = rpm_.at(i);
  return rpm && static_cast<double>(usage_.requests(i, now)) + 1 > *rpm;
}

bool usage_limits::within(local_index i, std::uint64_t tokens, time_point now) const {
  if (at_rpm_limit(i, now))
    return false;
  const auto& tpm = tpm_[i];
  return !tpm || static_cast<double>(usage_.tokens(i, now) + tokens) <= *tpm;
}

} // namespace switchyard
