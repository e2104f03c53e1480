#pragma once

// Small helpers for tests that run a real router (tests/actors,
// tests/reference): a config from JSON text, a one-message request, seeded
// router options, and what a result's attempts touched.

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace switchyard::test {

/// A router_config loaded from JSON text (the format of a config file).
inline router_config config_from(const std::string& text) {
  return load_config(nlohmann::ordered_json::parse(text));
}

/// A request to `model` with one user message, "hi".
inline chat_request hi(const std::string& model) {
  chat_request r;
  r.model = model;
  r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  return r;
}

/// Router options with a fixed `seed` and `threads` scheduler threads.
inline router_options seeded_options(std::uint64_t seed, std::size_t threads = 2) {
  router_options o;
  o.seed = seed;
  o.threads = threads;
  return o;
}

/// The deployment ids of a result's attempts, in order.
inline std::vector<std::string> attempt_ids(const route_result& r) {
  std::vector<std::string> ids;
  for (const auto& a : r.attempts)
    ids.push_back(a.deployment_id);
  return ids;
}

/// Whether any attempt of `r` went to deployment `id`.
inline bool touches(const route_result& r, const std::string& id) {
  for (const auto& a : r.attempts)
    if (a.deployment_id == id)
      return true;
  return false;
}

} // namespace switchyard::test
