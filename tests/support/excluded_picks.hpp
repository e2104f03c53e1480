#pragma once

// LiteLLM's `_get_excluded_filtered_deployments` asked of the real pick
// pipeline: which deployments can group_picker::pick choose when the
// request excludes some ids? Core and reference twins share it, so both
// exercise the production exclusion path, not a copy of it.

#include "switchyard/config.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/random_source.hpp"
#include "switchyard/routing_strategy.hpp"

#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace switchyard::test {

/// Draws (i + 0.5) / n for i = 0, 1, ..., n - 1 and again: a sweep of
/// [0, 1) that lands in every weighted band wider than 1/n.
class sweep_random final : public random_source {
public:
  explicit sweep_random(std::size_t n) : n_(n) {}
  double next_unit() override {
    const double v = (static_cast<double>(i_ % n_) + 0.5) / static_cast<double>(n_);
    ++i_;
    return v;
  }

private:
  std::size_t n_;
  std::size_t i_ = 0;
};

/// The ids of group `group` of `config` that group_picker::pick chooses over
/// `sweeps` picks whose draws sweep [0, 1), with the ids `excluded` in the
/// pick request (ids not in the group are ignored, as LiteLLM ignores
/// them), in group order. Every candidate whose share of the weights is
/// over 1/sweeps comes up; an exclusion that leaves nothing gives an empty
/// list (the pick finds none, it never widens to the excluded ones).
/// Each pick's call is finished at once, so no in-flight state builds up.
inline std::vector<std::string> pickable_ids(const router_config& config,
                                             const std::string& group,
                                             const std::vector<std::string>& excluded,
                                             std::size_t sweeps = 64) {
  const auto g = config.find_group(group);
  REQUIRE(g);
  const auto& members = config.groups.at(*g).deployments;
  group_picker picker(config, *g);
  pick_request request;
  for (const auto& id : excluded)
    for (auto d : members)
      if (config.deployments[d].id == id)
        request.excluded.push_back(config.deployments[d].index_in_group);
  sweep_random rng(sweeps);
  std::vector<bool> seen(members.size(), false);
  for (std::size_t k = 0; k < sweeps; ++k) {
    const auto p = picker.pick(request, time_point{}, rng);
    if (!p.chosen)
      return {};
    seen.at(*p.chosen) = true;
    call_feedback done;
    done.ok = true;
    picker.on_finished(*p.chosen, done, time_point{});
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < members.size(); ++i)
    if (seen[i])
      out.push_back(config.deployments[members[i]].id);
  return out;
}

} // namespace switchyard::test
