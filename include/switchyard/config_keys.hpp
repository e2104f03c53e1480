#pragma once

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

namespace switchyard {

/// Where a key sits in a configuration (or a request body).
enum class key_section : std::uint8_t {
  deployment,            ///< a `model_list` entry
  litellm_params,        ///< model_list[].litellm_params
  model_info,            ///< model_list[].model_info
  router_settings,
  routing_strategy_args, ///< router_settings.routing_strategy_args
  litellm_settings,
  request,               ///< a request body (parse_chat_request)
};

enum class key_type : std::uint8_t { string, number, integer, boolean, object, array, any };

/// One key Switchyard reads: the single table that the loader's known-key
/// lists and numeric bounds come from, and that the reference tables of
/// docs/configuration.md are checked against (tests/core/test_config_keys.cpp).
/// Immutable, share freely.
struct config_key {
  key_section section;
  std::string_view name;
  key_type type;
  /// Numbers and integers: the bounds (min exclusive when `above`).
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool above = false;
  /// The default, as docs/configuration.md's "default" column writes it.
  std::string_view default_text;
};

/// Every key, in the order of the docs' tables.
const std::vector<config_key>& config_keys();

/// The keys of one section, for the loader's unknown-key notes.
std::vector<std::string_view> config_key_names(key_section section);

/// The entry of `name` in `section`; a programming error (std::logic_error)
/// when the loader reads a key the table does not have.
const config_key& config_key_of(key_section section, std::string_view name);

/// "expected a number >= 0", "expected an integer from 0 to 100", ...
std::string_view expected_text(const config_key& key);

} // namespace switchyard
