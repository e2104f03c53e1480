#include "switchyard/routing_strategy.hpp"

#include "switchyard/least_busy.hpp"
#include "switchyard/lowest_latency.hpp"
#include "switchyard/p2c_peak_ewma.hpp"
#include "switchyard/usage_based.hpp"
#include "switchyard/simple_shuffle.hpp"

namespace switchyard {

const strategy_registry& strategy_registry::builtin() {
  static const strategy_registry registry = [] {
    strategy_registry r;
    r.add("simple-shuffle",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings&) {
            return simple_shuffle::from_config(deployments);
          });
    r.add("latency-based-routing",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings& settings)
            -> std::unique_ptr<routing_strategy> {
            return std::make_unique<lowest_latency>(
              deployments.size(), settings.lowest_latency_buffer);
          });
    r.add("least-busy",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings&) -> std::unique_ptr<routing_strategy> {
            return std::make_unique<least_busy>(deployments.size());
          });
    r.add("usage-based-routing-v2",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings&) -> std::unique_ptr<routing_strategy> {
            return std::make_unique<usage_based>(deployments);
          });
    r.add("cost-based-routing",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings&) -> std::unique_ptr<routing_strategy> {
            return std::make_unique<cost_based>(deployments);
          });
    r.add("p2c-peak-ewma",
          [](const std::vector<const deployment_config*>& deployments,
             const router_settings& settings) {
            return p2c_peak_ewma::from_config(deployments, settings.decay_seconds);
          });
    return r;
  }();
  return registry;
}

void strategy_registry::add(std::string name, strategy_factory factory) {
  factories_[std::move(name)] = std::move(factory);
}

bool strategy_registry::contains(const std::string& name) const {
  return factories_.count(name) != 0;
}

std::string strategy_registry::names() const {
  std::string out;
  for (const auto& [name, factory] : factories_) {
    if (!out.empty())
      out += ", ";
    out += name;
  }
  return out;
}

std::unique_ptr<routing_strategy>
strategy_registry::make(const std::string& name,
                        const std::vector<const deployment_config*>& deployments,
                        const router_settings& settings) const {
  auto i = factories_.find(name);
  if (i == factories_.end())
    return nullptr;
  return i->second(deployments, settings);
}

} // namespace switchyard
