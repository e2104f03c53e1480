#pragma once

// The YAML front end of the config loader, for LiteLLM proxy `config.yaml`
// files. It only turns YAML into the JSON tree load_config validates, so
// that a YAML file and its JSON twin load to the same router_config and
// report the same problems at the same paths.

#include <nlohmann/json.hpp>

#include <string>

namespace switchyard {

/// Converts one YAML document to JSON, keeping mapping order (generated ids
/// hash litellm_params in file order). Plain scalars take YAML 1.2 core
/// types (null, bool, int, float, else string); quoted and block scalars and
/// `!!str` stay strings; `<<` merge keys are applied as PyYAML applies them.
/// Syntax errors, unsupported tags, non-scalar keys and several documents
/// are a config_error whose path is "line L, column C"; messages never
/// echo the text. An empty document is null.
nlohmann::ordered_json yaml_to_json(const std::string& text);

} // namespace switchyard
