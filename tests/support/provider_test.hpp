#pragma once

// Helpers of the provider codec tests: endpoints built through the real
// config loader, recorded bodies, and a fixed clock.

#include "support/test_config.hpp"

#include "switchyard/config.hpp"
#include "switchyard/provider.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

namespace switchyard::test {

/// A fixed "now": 2026-01-01T00:00:00Z.
inline system_time fixed_now() {
  return std::chrono::system_clock::from_time_t(1767225600);
}

/// A recorded body from tests/core/data/providers.
inline std::string recorded(const std::string& name) {
  const auto file = std::filesystem::path(__FILE__).parent_path().parent_path() / "core"
                    / "data" / "providers" / name;
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// The endpoint load_config resolves for one deployment with these
/// litellm_params (a JSON object).
inline std::shared_ptr<const provider_endpoint>
endpoint_for(const nlohmann::json& params, std::map<std::string, std::string> env = {}) {
  const nlohmann::json doc = {
    {"model_list", {{{"model_name", "g"}, {"litellm_params", params}}}}};
  const auto cfg = load_config(nlohmann::ordered_json(doc), fake_env(std::move(env)));
  REQUIRE(cfg.deployments.size() == 1);
  REQUIRE(cfg.deployments[0].endpoint);
  return cfg.deployments[0].endpoint;
}

/// A request with these messages and extra body keys.
inline chat_request request_with(nlohmann::json messages,
                                 nlohmann::json body = nlohmann::json::object()) {
  chat_request r;
  r.model = "g";
  r.messages = std::move(messages);
  r.body = std::move(body);
  return r;
}

inline nlohmann::json user_says(const std::string& text) {
  return nlohmann::json::array({{{"role", "user"}, {"content", text}}});
}

/// The header's value, or "<absent>".
inline std::string header(const http_headers& headers, std::string_view name) {
  auto v = find_header(headers, name);
  return v ? std::string(*v) : std::string("<absent>");
}

inline bool is_secret_header(const http_headers& headers, std::string_view name) {
  for (const auto& h : headers)
    if (find_header({h}, name))
      return h.secret;
  return false;
}

} // namespace switchyard::test
