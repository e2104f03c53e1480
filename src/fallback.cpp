#include "switchyard/fallback.hpp"

#include <algorithm>

namespace switchyard {

namespace {

const fallback_rule* find_rule(const std::vector<fallback_rule>& rules,
                               std::string_view key) {
  for (const auto& r : rules)
    if (r.from == key)
      return &r;
  return nullptr;
}

std::vector<std::uint32_t> to_groups(const router_config& config,
                                     const std::vector<std::string>& names) {
  std::vector<std::uint32_t> out;
  out.reserve(names.size());
  for (const auto& n : names)
    if (auto g = config.find_group(n)) // load_config validated the targets
      out.push_back(*g);
  return out;
}

// The generic rule for a group: exact key, then the key without its
// `provider/` prefix, then `*`, then default_fallbacks.
const std::vector<std::string>* generic_targets(const router_config& config,
                                                std::uint32_t group) {
  const auto& s = config.settings;
  const std::string& name = config.groups.at(group).name;
  if (auto r = find_rule(s.fallbacks, name))
    return &r->to;
  if (auto slash = name.find('/'); slash != std::string::npos)
    if (auto r = find_rule(s.fallbacks, std::string_view(name).substr(slash + 1)))
      return &r->to;
  if (auto r = find_rule(s.fallbacks, "*"))
    return &r->to;
  if (!s.default_fallbacks.empty())
    return &s.default_fallbacks;
  return nullptr;
}

} // namespace

std::vector<std::uint32_t> resolve_fallbacks(const router_config& config,
                                             std::uint32_t group,
                                             error_kind kind) {
  const auto& s = config.settings;
  const std::string& name = config.groups.at(group).name;
  // A non-empty list of the error's own is final: its exact key, or the
  // error is raised. An empty or unset one defers to the generic
  // fallbacks, as LiteLLM's "No context_window_fallback set. Defaulting to
  // fallbacks" (its default for both lists is None).
  const std::vector<fallback_rule>* own = nullptr;
  if (kind == error_kind::context_window_exceeded)
    own = &s.context_window_fallbacks;
  else if (kind == error_kind::content_policy_violation)
    own = &s.content_policy_fallbacks;
  else if (status_of(kind) == 400)
    return {};
  if (own && !own->empty()) {
    auto r = find_rule(*own, name);
    return r ? to_groups(config, r->to) : std::vector<std::uint32_t>{};
  }
  auto targets = generic_targets(config, group);
  return targets ? to_groups(config, *targets) : std::vector<std::uint32_t>{};
}

bool has_generic_fallbacks(const router_config& config, std::uint32_t group) {
  auto targets = generic_targets(config, group);
  return targets != nullptr && !targets->empty();
}

bool content_policy_fallback_exists(const router_config& config, std::uint32_t group) {
  const auto& s = config.settings;
  if (auto r = find_rule(s.content_policy_fallbacks, config.groups.at(group).name))
    if (!r->to.empty())
      return true;
  auto star = find_rule(s.fallbacks, "*");
  return (star && !star->to.empty()) || !s.default_fallbacks.empty();
}

namespace {

// Simple cycles through `start` whose other groups all have higher indices
// (so each cycle is found once, from its lowest group).
void cycles_from(std::uint32_t start, std::uint32_t at,
                 const std::vector<std::vector<std::uint32_t>>& edges,
                 std::vector<std::uint32_t>& path, std::vector<bool>& on_path,
                 std::vector<std::vector<std::uint32_t>>& out, std::size_t limit) {
  for (auto next : edges[at]) {
    if (out.size() >= limit)
      return;
    if (next == start) {
      out.push_back(path);
      continue;
    }
    if (next < start || on_path[next])
      continue;
    on_path[next] = true;
    path.push_back(next);
    cycles_from(start, next, edges, path, on_path, out, limit);
    path.pop_back();
    on_path[next] = false;
  }
}

} // namespace

std::vector<std::vector<std::uint32_t>> fallback_cycles(const router_config& config,
                                                        std::size_t limit) {
  const auto n = static_cast<std::uint32_t>(config.groups.size());
  std::vector<std::vector<std::uint32_t>> edges(n);
  for (std::uint32_t g = 0; g < n; ++g) {
    for (auto kind : {error_kind::internal_server, error_kind::context_window_exceeded,
                      error_kind::content_policy_violation})
      for (auto h : resolve_fallbacks(config, g, kind))
        if (h != g && h < n)
          edges[g].push_back(h);
    std::sort(edges[g].begin(), edges[g].end());
    edges[g].erase(std::unique(edges[g].begin(), edges[g].end()), edges[g].end());
  }
  std::vector<std::vector<std::uint32_t>> out;
  std::vector<bool> on_path(n, false);
  for (std::uint32_t s = 0; s < n && out.size() < limit; ++s) {
    std::vector<std::uint32_t> path{s};
    on_path[s] = true;
    cycles_from(s, s, edges, path, on_path, out, limit);
    on_path[s] = false;
  }
  return out;
}

} // namespace switchyard
