#include "cli_common.hpp"

#include "switchyard/fallback.hpp"
#include "switchyard/provider.hpp"

#include <algorithm>
#include <cstdio>
#include <iostream>

// `switchyard check`: the summary shows routing-relevant structure only.
// Deployment ids, weights and orders are safe to print; api keys and models
// are not printed at all, since any string may have come from `os.environ/`
// and the loaded config no longer says which. Each deployment's transport
// is printed with its endpoint's display_url, in which the loader already
// redacted every part that came from the environment.

namespace switchyard::cli {

namespace {

template <class T>
std::string optional_number(const std::optional<T>& v) {
  return v ? format_number("%g", static_cast<double>(*v)) : "-";
}

const char* yes_no(bool b) {
  return b ? "true" : "false";
}

void print_settings(const router_settings& s, std::ostream& out) {
  out << "router_settings:\n"
      << "  routing_strategy:         " << s.routing_strategy << '\n'
      << "  num_retries:              " << s.num_retries << '\n'
      << "  timeout:                  " << format_number("%g", s.timeout_s) << " s\n"
      << "  cooldown_time:            " << format_number("%g", s.cooldown_time_s) << " s\n"
      << "  allowed_fails:            "
      << (s.allowed_fails ? std::to_string(*s.allowed_fails) : "- (default rules)") << '\n'
      << "  disable_cooldowns:        " << yes_no(s.disable_cooldowns) << '\n'
      << "  enable_weighted_failover: " << yes_no(s.enable_weighted_failover) << '\n'
      << "  enable_pre_call_checks:   " << yes_no(s.enable_pre_call_checks) << '\n'
      << "  max_fallbacks:            " << s.max_fallbacks << '\n';
}

// " mock", or " <provider> <url>" for a real deployment.
std::string transport_of(const deployment_config& d) {
  if (!d.endpoint)
    return " mock";
  return " " + std::string(d.endpoint->provider->name) + " " + d.endpoint->display_url;
}

void print_group(const router_config& c, const model_group& g, std::ostream& out) {
  out << "model group " << g.name << ": " << plural(g.deployments.size(), "deployment") << '\n';
  std::size_t width = 0;
  for (auto index : g.deployments)
    width = std::max(width, c.deployments[index].id.size());
  for (auto index : g.deployments) {
    const deployment_config& d = c.deployments[index];
    out << "  " << d.id << std::string(width - d.id.size(), ' ')
        << "  weight=" << optional_number(d.weight)
        << " order=" << optional_number(d.order)
        << " rpm=" << optional_number(d.rpm) << " tpm=" << optional_number(d.tpm)
        << transport_of(d) << '\n';
  }
}

void print_rules(const char* name, const std::vector<fallback_rule>& rules,
                 std::ostream& out) {
  if (rules.empty())
    return;
  out << name << ":\n";
  for (const auto& r : rules) {
    out << "  " << r.from << " ->";
    for (const auto& to : r.to)
      out << ' ' << to;
    out << '\n';
  }
}

// A cycle is legal (a request enters each group at most once) but usually
// a mistake: warn and name it.
void print_fallback_cycles(const router_config& c, std::ostream& out) {
  constexpr std::size_t limit = 20;
  const auto cycles = fallback_cycles(c, limit + 1);
  for (std::size_t k = 0; k < cycles.size() && k < limit; ++k) {
    out << "warning: fallback cycle:";
    for (auto g : cycles[k])
      out << ' ' << c.groups[g].name << " ->";
    out << ' ' << c.groups[cycles[k].front()].name << '\n';
  }
  if (cycles.size() > limit)
    out << "warning: more fallback cycles than the " << limit << " named\n";
}

void print_summary(const std::string& file, const router_config& c, std::ostream& out) {
  out << "config OK: " << file << '\n'
      << plural(c.groups.size(), "model group") << ", "
      << plural(c.deployments.size(), "deployment") << '\n';
  print_settings(c.settings, out);
  for (const auto& g : c.groups)
    print_group(c, g, out);
  print_rules("fallbacks", c.settings.fallbacks, out);
  print_rules("context_window_fallbacks", c.settings.context_window_fallbacks, out);
  print_rules("content_policy_fallbacks", c.settings.content_policy_fallbacks, out);
  if (!c.settings.default_fallbacks.empty())
    print_rules("default_fallbacks", {{"*", c.settings.default_fallbacks}}, out);
  print_fallback_cycles(c, out);
}

} // namespace

int check_command(const args& a) {
  const flags f(a, {"--config"});
  const std::string file = f.required("--config");
  const auto config = load_config_reporting(file);
  if (!config)
    return exit_failure;
  print_summary(file, *config, std::cout);
  return exit_ok;
}

} // namespace switchyard::cli
