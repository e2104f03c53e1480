#pragma once

// nlohmann::json keeps object keys sorted, but LiteLLM's generated ids hash
// litellm_params in file order, so everything that parses text works on
// nlohmann::ordered_json, and the public entry points in
// switchyard/config.hpp take nothing else.

#include "switchyard/config.hpp"

#include <nlohmann/json.hpp>
