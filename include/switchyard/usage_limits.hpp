#pragma once

#include "switchyard/config.hpp"
#include "switchyard/usage_window.hpp"

#include <optional>
#include <vector>

namespace switchyard {

/// A set of deployments' rpm/tpm limits against their usage in the current
/// minute: the "under limits" test of usage-based and cost-based routing and
/// of the pre-call rpm check. Owned by one picker; O(1) per check.
class usage_limits {
public:
  explicit usage_limits(const std::vector<const deployment_config*>& deployments);

  /// Whether one more request of `tokens` estimated tokens keeps deployment
  /// `i` within its rpm and tpm for this minute (unset limits always do).
  bool within(local_index i, std::uint64_t tokens, time_point now) const;
  /// Whether `i` has used up its rpm this minute.
  bool at_rpm_limit(local_index i, time_point now) const;

  void on_picked(local_index i, time_point now) { usage_.add_request(i, now); }
  void on_finished(local_index i, std::uint64_t tokens, time_point now) {
    usage_.add_tokens(i, tokens, now);
  }
  /// The other replicas' usage this minute (usage_window::set_remote): the
  /// limits then hold across the fleet.
  void set_remote(local_index i, std::uint64_t requests, std::uint64_t tokens,
                  time_point now) {
    usage_.set_remote(i, requests, tokens, now);
  }
  const usage_window& usage() const noexcept { return usage_; }

private:
  std::vector<std::optional<double>> rpm_;
  std::vector<std::optional<double>> tpm_;
  usage_window usage_;
};

} // namespace switchyard
