// The one table of configuration keys (switchyard/config_keys.hpp) against
// the reference tables of docs/configuration.md: the same keys in each
// section, with the same defaults, so a key added in one place and not the
// other fails here. And the table's bounds are the loader's.

#include "support/test_config.hpp"

#include "switchyard/config.hpp"
#include "switchyard/config_keys.hpp"
#include "switchyard/request.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

using namespace switchyard;

namespace {

using entry = std::pair<key_section, std::string>;

std::string trim(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::string cell;
  bool code = false;
  for (std::size_t i = 1; i < row.size(); ++i) {
    const char c = row[i];
    if (c == '`')
      code = !code;
    if (c == '|' && !code) {
      out.push_back(trim(cell));
      cell.clear();
    } else {
      cell += c;
    }
  }
  return out;
}

std::vector<std::string> code_spans(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t at = text.find('`'); at != std::string::npos;) {
    const auto end = text.find('`', at + 1);
    if (end == std::string::npos)
      break;
    out.push_back(text.substr(at + 1, end - at - 1));
    at = text.find('`', end + 1);
  }
  return out;
}

// Each documented key with the default its table states.
std::map<entry, std::string> documented_keys() {
  std::ifstream in(SWITCHYARD_DOCS "/configuration.md");
  REQUIRE(in);
  const std::map<std::string, key_section> sections = {
    {"## `model_list` entries", key_section::deployment},
    {"### `litellm_params`", key_section::litellm_params},
    {"### `model_info`", key_section::model_info},
    {"## `router_settings`", key_section::router_settings},
    {"## `litellm_settings`", key_section::litellm_settings},
    {"## Request body", key_section::request},
  };
  std::map<entry, std::string> out;
  std::optional<key_section> section;
  std::size_t level = 0;
  bool key_table = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind('#', 0) == 0) {
      const auto depth = line.find_first_not_of('#');
      if (auto s = sections.find(line); s != sections.end()) {
        section = s->second;
        level = depth;
      } else if (section && depth <= level) {
        section.reset();
      }
      key_table = false;
      continue;
    }
    if (!section || line.rfind('|', 0) != 0)
      continue;
    auto row = cells(line);
    if (row.size() < 2)
      continue;
    if (row[0] == "key" || row[0] == "`litellm_settings` key") {
      key_table = true;
      continue;
    }
    if (row[0].rfind("---", 0) == 0 || !key_table)
      continue;
    if (row[0].rfind("any other", 0) == 0 || row[0].rfind("anything else", 0) == 0)
      continue;
    for (const auto& name : code_spans(row[0])) {
      auto s = *section;
      std::string key = name;
      const std::string args = "routing_strategy_args.";
      if (s == key_section::router_settings && key.rfind(args, 0) == 0) {
        s = key_section::routing_strategy_args;
        key = key.substr(args.size());
      }
      out[{s, key}] = row[1];
    }
  }
  return out;
}

} // namespace

TEST_CASE("config keys: docs/configuration.md documents exactly the table's keys, with its "
          "defaults") {
  const auto docs = documented_keys();
  REQUIRE(docs.size() > 50);
  std::set<entry> table;
  for (const auto& k : config_keys()) {
    const entry e{k.section, std::string(k.name)};
    table.insert(e);
    // An object read through its own rows (routing_strategy_args.*).
    if (k.section == key_section::router_settings && k.name == "routing_strategy_args")
      continue;
    INFO("section " << static_cast<int>(k.section) << ", key " << k.name);
    auto d = docs.find(e);
    REQUIRE(d != docs.end());
    CHECK(d->second == k.default_text);
  }
  for (const auto& [e, text] : docs) {
    INFO("documented key " << e.second << " (section " << static_cast<int>(e.first) << ")");
    CHECK(table.count(e) == 1);
  }
}

TEST_CASE("config keys: the loader rejects a value just outside each table bound, at its path") {
  // One number key per section is enough to show the bounds come from the
  // table; every number and integer key of the router and the deployments.
  for (const auto& k : config_keys()) {
    if (k.type != key_type::number && k.type != key_type::integer)
      continue;
    if (k.section == key_section::request || k.min == -std::numeric_limits<double>::infinity())
      continue;
    const double below = k.above ? k.min : k.min - 1;
    nlohmann::ordered_json deployment = {
      {"model_name", "g"}, {"litellm_params", {{"model", "m"}, {"mock_response", "hi"}}}};
    nlohmann::ordered_json doc = {{"model_list", nlohmann::ordered_json::array()}};
    std::string path;
    switch (k.section) {
      case key_section::deployment:
        deployment[std::string(k.name)] = below;
        path = "model_list[0]." + std::string(k.name);
        break;
      case key_section::litellm_params:
        deployment["litellm_params"][std::string(k.name)] = below;
        path = "model_list[0].litellm_params." + std::string(k.name);
        break;
      case key_section::model_info:
        deployment["model_info"] = {{std::string(k.name), below}};
        path = "model_list[0].model_info." + std::string(k.name);
        break;
      case key_section::router_settings:
        doc["router_settings"] = {{std::string(k.name), below}};
        path = "router_settings." + std::string(k.name);
        break;
      case key_section::routing_strategy_args:
        doc["router_settings"] = {{"routing_strategy_args", {{std::string(k.name), below}}}};
        path = "router_settings.routing_strategy_args." + std::string(k.name);
        break;
      case key_section::litellm_settings:
        doc["litellm_settings"] = {{std::string(k.name), below}};
        path = "litellm_settings." + std::string(k.name);
        break;
      case key_section::request:
        break;
    }
    doc["model_list"].push_back(deployment);
    INFO(path << " = " << below);
    bool rejected = false;
    try {
      load_config(doc, test::fake_env());
    } catch (const config_error& e) {
      for (const auto& p : e.problems())
        rejected = rejected || p.path == path;
    }
    CHECK(rejected);
  }
}

TEST_CASE("config keys: the request parser takes its bounds from the table") {
  for (const char* key : {"timeout", "total_timeout", "cooldown_time", "num_retries"}) {
    const auto& k = config_key_of(key_section::request, key);
    INFO(key);
    const double below = k.above ? k.min : k.min - 1;
    auto parsed = parse_chat_request(
      nlohmann::json{{"model", "g"}, {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                     {key, below}});
    REQUIRE_FALSE(parsed.request);
    CHECK(parsed.error.message.find(std::string("body.") + key) == 0);
  }
}
