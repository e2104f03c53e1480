#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/routing_strategy.hpp"

#include <cmath>
#include <unordered_set>

// The checks a router runs on a router_config built in code (load_config's
// output passes them by construction): the same rules and paths as the
// loader's, so a hand-built config fails at construction with a
// config_error, never later inside an actor.

namespace switchyard {

namespace {

class checker {
public:
  void fail(std::string path, std::string message) {
    problems.push_back({std::move(path), std::move(message)});
  }
  template <class T>
  void at_least(const std::optional<T>& v, double min, const std::string& path) {
    if (v && !(std::isfinite(static_cast<double>(*v)) && *v >= min))
      fail(path, "expected a number >= " + trim(min));
  }
  template <class T>
  void above(const std::optional<T>& v, double min, const std::string& path) {
    if (v && !(std::isfinite(static_cast<double>(*v)) && *v > min))
      fail(path, "expected a number > " + trim(min));
  }
  void in_range(double v, double lo, double hi, const std::string& path) {
    if (!(v >= lo && v <= hi))
      fail(path, "expected a number from " + trim(lo) + " to " + trim(hi));
  }
  std::vector<config_problem> problems;

private:
  static std::string trim(double v) {
    auto s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (!s.empty() && s.back() == '.')
      s.pop_back();
    return s;
  }
};

void check_rules(checker& c, const router_config& cfg,
                 const std::vector<fallback_rule>& rules, const std::string& path) {
  for (std::size_t i = 0; i < rules.size(); ++i) {
    const auto rule_path = path + "[" + std::to_string(i) + "]";
    // A rule's key may name no group (LiteLLM matches `provider/model`
    // keys without the prefix too); its targets must exist.
    for (const auto& to : rules[i].to)
      if (!cfg.find_group(to))
        c.fail(rule_path + "." + rules[i].from, "unknown model group '" + to + "'");
  }
}

} // namespace

void validate_config(router_config& cfg) {
  checker c;
  if (cfg.deployments.empty())
    c.fail("model_list", "expected a non-empty array");
  for (std::size_t g = 0; g < cfg.groups.size(); ++g)
    for (auto d : cfg.groups[g].deployments)
      if (d >= cfg.deployments.size())
        c.fail("groups[" + std::to_string(g) + "]",
               "deployment index " + std::to_string(d) + " is out of range");
  if (!c.problems.empty())
    throw config_error(std::move(c.problems));
  cfg.index_groups();

  std::unordered_set<std::string> ids;
  for (std::size_t i = 0; i < cfg.deployments.size(); ++i) {
    const auto& d = cfg.deployments[i];
    const std::string path = "model_list[" + std::to_string(i) + "]";
    const std::string params = path + ".litellm_params";
    if (d.model_name.empty())
      c.fail(path + ".model_name", "expected a non-empty string");
    if (d.id.empty())
      c.fail(path + ".model_info.id", "expected a non-empty string");
    else if (!ids.insert(d.id).second)
      c.fail(path + ".model_info.id", "duplicate deployment id");
    c.at_least(d.weight, 0, params + ".weight");
    c.at_least(d.rpm, 0, params + ".rpm");
    c.at_least(d.tpm, 0, params + ".tpm");
    c.at_least(d.order, 1, params + ".order");
    c.above(d.timeout_s, 0, params + ".timeout");
    c.above(d.stream_timeout_s, 0, params + ".stream_timeout");
    c.at_least(d.cooldown_time_s, 0, params + ".cooldown_time");
    if (d.num_retries)
      c.in_range(*d.num_retries, 0, max_num_retries, params + ".num_retries");
    c.at_least(d.max_input_tokens, 0, path + ".model_info.max_input_tokens");
    c.at_least(d.input_cost_per_token, 0, params + ".input_cost_per_token");
    c.at_least(d.output_cost_per_token, 0, params + ".output_cost_per_token");
    c.in_range(d.mock_failure_rate, 0, 1, params + ".mock_failure_rate");
    c.at_least(std::optional<double>(d.mock_latency_ms), 0, params + ".mock_latency_ms");
  }

  const auto& s = cfg.settings;
  const std::string rs = "router_settings";
  if (!strategy_registry::builtin().contains(s.routing_strategy))
    c.fail(rs + ".routing_strategy", "unknown routing strategy '" + s.routing_strategy
                                       + "'; expected one of: "
                                       + strategy_registry::builtin().names());
  c.in_range(s.num_retries, 0, max_num_retries, rs + ".num_retries");
  c.above(std::optional<double>(s.timeout_s), 0, rs + ".timeout");
  c.above(s.stream_timeout_s, 0, rs + ".stream_timeout");
  c.above(s.total_timeout_s, 0, rs + ".total_timeout");
  c.at_least(s.allowed_fails, 0, rs + ".allowed_fails");
  c.at_least(std::optional<double>(s.cooldown_time_s), 0, rs + ".cooldown_time");
  c.at_least(std::optional<int>(s.max_fallbacks), 0, rs + ".max_fallbacks");
  c.at_least(std::optional<double>(s.lowest_latency_buffer), 0,
             rs + ".routing_strategy_args.lowest_latency_buffer");
  check_rules(c, cfg, s.fallbacks, rs + ".fallbacks");
  check_rules(c, cfg, s.context_window_fallbacks, rs + ".context_window_fallbacks");
  check_rules(c, cfg, s.content_policy_fallbacks, rs + ".content_policy_fallbacks");
  for (const auto& g : s.default_fallbacks)
    if (!cfg.find_group(g))
      c.fail(rs + ".default_fallbacks", "unknown model group '" + g + "'");
  for (const auto& [alias, target] : s.model_group_alias)
    if (!cfg.find_group(target))
      c.fail(rs + ".model_group_alias." + alias, "unknown model group '" + target + "'");
  if (!c.problems.empty())
    throw config_error(std::move(c.problems));
}

} // namespace switchyard
