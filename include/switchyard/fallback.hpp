#pragma once

#include "switchyard/config.hpp"

#include <cstdint>
#include <vector>

namespace switchyard {

/// Which groups to try when `group` is exhausted with an error of `kind`
/// (ROUTER_SEMANTICS.md section 8). Pure; the fallback actor calls it.
/// ContextWindowExceeded / ContentPolicyViolation: their own list
/// (context_window_fallbacks / content_policy_fallbacks) by exact key when
/// that list is non-empty (no entry: none); when it is empty, the generic
/// rule below. Any other 400: none (a malformed request is not re-sent
/// elsewhere). Everything else: `fallbacks` by exact key, then the key
/// without a `provider/` prefix, then `*`, then default_fallbacks.
/// Returns group indices in configured order; empty: raise the error.
std::vector<std::uint32_t> resolve_fallbacks(const router_config& config,
                                             std::uint32_t group,
                                             error_kind kind);

/// Whether any generic fallback (or default) applies to `group`: the retry
/// rules need it.
bool has_generic_fallbacks(const router_config& config, std::uint32_t group);

/// Whether a filtered reply (finish_reason content_filter) of `group`
/// becomes a ContentPolicyViolationError: a content_policy_fallbacks entry
/// for the group, or a `*` / default fallback exists.
bool content_policy_fallback_exists(const router_config& config, std::uint32_t group);

/// The cycles of the fallback graph (an edge g -> h when resolve_fallbacks
/// sends some failure of g to h: generic, context-window or content-policy
/// lists, `*` and default_fallbacks included; a group's edge to itself is
/// left out, since a request never re-enters a group). Each cycle is its
/// groups in order, starting at its lowest index, without repeating the
/// first; at most `limit` cycles, in order of their first group. They are
/// harmless at run time (a group is entered at most once per request) but
/// usually a mistake. Pure; for `switchyard check`.
std::vector<std::vector<std::uint32_t>> fallback_cycles(const router_config& config,
                                                        std::size_t limit = 20);

} // namespace switchyard
