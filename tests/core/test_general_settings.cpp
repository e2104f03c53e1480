#include "switchyard/config.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace switchyard;

namespace {

// A config file in the temp directory, removed at the end of the test.
struct temp_config {
  std::string path;
  temp_config(const std::string& name, const std::string& text)
    : path((std::filesystem::temp_directory_path()
            / ("switchyard-gs-" + std::to_string(getpid()) + "-" + name))
             .string()) {
    std::ofstream(path) << text;
  }
  ~temp_config() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
};

env_lookup env_with(std::string name, std::string value) {
  return [name, value](const std::string& n) -> std::optional<std::string> {
    if (n == name)
      return value;
    return std::nullopt;
  };
}

std::vector<config_problem> problems_of(const std::string& file, const env_lookup& env) {
  try {
    load_general_settings_file(file, env);
  } catch (const config_error& e) {
    return e.problems();
  }
  return {};
}

} // namespace

TEST_CASE("general_settings: master_key from the file, JSON and YAML") {
  temp_config json("a.json", R"({"model_list": [], "general_settings": {"master_key": "sk-1"}})");
  CHECK(load_general_settings_file(json.path, env_with("X", "y")).master_key.reveal() == "sk-1");
  temp_config yaml("a.yaml", "general_settings:\n  master_key: sk-2\n");
  CHECK(load_general_settings_file(yaml.path, env_with("X", "y")).master_key.reveal() == "sk-2");
}

TEST_CASE("general_settings: no section or no key means no master key") {
  temp_config none("b.json", R"({"model_list": []})");
  CHECK(load_general_settings_file(none.path, env_with("X", "y")).master_key.empty());
  temp_config empty("c.json", R"({"general_settings": {"database_url": "x"}})");
  CHECK(load_general_settings_file(empty.path, env_with("X", "y")).master_key.empty());
}

TEST_CASE("general_settings: master_key from os.environ/") {
  temp_config f("d.json", R"({"general_settings": {"master_key": "os.environ/GW_KEY"}})");
  CHECK(load_general_settings_file(f.path, env_with("GW_KEY", "sk-env")).master_key.reveal()
        == "sk-env");
  const auto problems = problems_of(f.path, env_with("OTHER", "v"));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "general_settings.master_key");
  CHECK(problems[0].message == "environment variable GW_KEY is not set");
}

TEST_CASE("general_settings: a master_key that is not a string is reported without its value") {
  temp_config f("e.json", R"({"general_settings": {"master_key": 12345}})");
  const auto problems = problems_of(f.path, env_with("X", "y"));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "general_settings.master_key");
  CHECK(problems[0].message == "expected a non-empty string");
  temp_config g("f.json", R"({"general_settings": ["sk-secret"]})");
  const auto p2 = problems_of(g.path, env_with("X", "y"));
  REQUIRE(p2.size() == 1);
  CHECK(p2[0].path == "general_settings");
  CHECK(p2[0].message.find("sk-secret") == std::string::npos);
}
