#pragma once

// File-order twins of the public entry points in switchyard/config.hpp.
// nlohmann::json keeps object keys sorted, but LiteLLM's generated ids hash
// litellm_params in file order, so everything that parses text works on
// nlohmann::ordered_json and the public json overloads convert into these.

#include "switchyard/config.hpp"

#include <nlohmann/json.hpp>

#include <string>

namespace switchyard {

/// load_config on a document whose objects keep their file order.
router_config load_config(const nlohmann::ordered_json& doc,
                          const env_lookup& env);

/// litellm_deployment_id hashing litellm_params in its (file) order.
std::string litellm_deployment_id(const std::string& model_name,
                                  const nlohmann::ordered_json& litellm_params);

} // namespace switchyard
