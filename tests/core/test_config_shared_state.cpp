// router_settings for shared state (Redis), and the same deployment ids
// from every entry point (SHARED_STATE.md: ids must match across replicas).

#include "support/test_config.hpp"

#include "switchyard/config.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <type_traits>

using namespace switchyard;
using switchyard::test::fake_env;

namespace {

router_config with_settings(const std::string& settings, const env_lookup& env = fake_env()) {
  return load_config_text(R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m", "mock_response": "hi"}}],
                              "router_settings": )" + settings + "}",
                          env);
}

std::vector<config_problem> problems_with(const std::string& settings,
                                          const env_lookup& env = fake_env()) {
  try {
    with_settings(settings, env);
  } catch (const config_error& e) {
    return e.problems();
  }
  FAIL("expected a config_error for: " << settings);
  return {};
}

// load_config on nlohmann::json would hash sorted keys: it must not compile.
template <class J, class = void>
struct loads : std::false_type {};
template <class J>
struct loads<J, std::void_t<decltype(load_config(std::declval<const J&>()))>> : std::true_type {};

} // namespace

TEST_CASE("config: without redis settings there is no shared state") {
  CHECK_FALSE(with_settings("{}").settings.redis);
  // A prefix alone does not name a Redis.
  CHECK_FALSE(with_settings(R"({"redis_key_prefix": "p:"})").settings.redis);
}

TEST_CASE("config: redis_host, redis_port, redis_password and redis_key_prefix") {
  const auto cfg = with_settings(
    R"({"redis_host": "127.0.0.1", "redis_port": 6380, "redis_password": "pw-1",
        "redis_key_prefix": "team-a:"})");
  REQUIRE(cfg.settings.redis);
  const auto& r = *cfg.settings.redis;
  CHECK(r.host == "127.0.0.1");
  CHECK(r.port == 6380);
  CHECK(r.password.reveal() == "pw-1");
  CHECK(r.key_prefix == "team-a:");
  CHECK(r.db == 0);
  CHECK_FALSE(r.host_from_env);
  // Defaults.
  const auto d = with_settings(R"({"redis_host": "localhost"})");
  CHECK(d.settings.redis->port == 6379);
  CHECK(d.settings.redis->key_prefix == "switchyard:");
  CHECK(d.settings.redis->password.empty());
}

TEST_CASE("config: redis settings may come from os.environ/, the port as a string") {
  const auto cfg = with_settings(
    R"({"redis_host": "os.environ/REDIS_HOST", "redis_port": "os.environ/REDIS_PORT",
        "redis_password": "os.environ/REDIS_PASSWORD"})",
    fake_env({{"REDIS_HOST", "10.0.0.5"}, {"REDIS_PORT", "6390"}, {"REDIS_PASSWORD", "env-pw"}}));
  const auto& r = *cfg.settings.redis;
  CHECK(r.host == "10.0.0.5");
  CHECK(r.port == 6390);
  CHECK(r.password.reveal() == "env-pw");
  CHECK(r.host_from_env);
  const auto url = with_settings(R"({"redis_url": "os.environ/REDIS_URL"})",
                                 fake_env({{"REDIS_URL", "redis://:u-pw@cache:7000/2"}}));
  CHECK(url.settings.redis->host == "cache");
  CHECK(url.settings.redis->password.reveal() == "u-pw");
  CHECK(url.settings.redis->host_from_env);
}

TEST_CASE("config: redis_url wins over host and port, and its password over redis_password") {
  const auto cfg = with_settings(
    R"({"redis_url": "redis://:url-pw@cache.internal:7001/3", "redis_host": "other",
        "redis_port": 1, "redis_password": "key-pw"})");
  const auto& r = *cfg.settings.redis;
  CHECK(r.host == "cache.internal");
  CHECK(r.port == 7001);
  CHECK(r.db == 3);
  CHECK(r.password.reveal() == "url-pw");
  // A url without a password takes redis_password.
  const auto p = with_settings(R"({"redis_url": "redis://cache", "redis_password": "key-pw"})");
  CHECK(p.settings.redis->port == 6379);
  CHECK(p.settings.redis->password.reveal() == "key-pw");
}

TEST_CASE("config: parse_redis_url") {
  std::string error;
  auto r = parse_redis_url("redis://user:pw@[::1]:6381/0?timeout=1", error);
  REQUIRE(r);
  CHECK(r->host == "::1");
  CHECK(r->port == 6381);
  CHECK(r->username == "user");
  CHECK(r->password.reveal() == "pw");
  r = parse_redis_url("redis://h", error);
  REQUIRE(r);
  CHECK(r->host == "h");
  CHECK(r->port == 6379);
  CHECK(r->username.empty());
  for (const char* bad : {"http://h", "rediss://:pw@h", "redis://", "redis://:pw@h:0",
                          "redis://:pw@h:99999", "redis://:pw@h:x", "redis://:pw@h/db",
                          "redis://[::1"}) {
    INFO(bad);
    error.clear();
    CHECK_FALSE(parse_redis_url(bad, error));
    CHECK(!error.empty());
    CHECK(error.find("pw") == std::string::npos);
  }
}

TEST_CASE("config: a bad redis setting names its path and never echoes a secret") {
  auto problems = problems_with(R"({"redis_url": "redis://:hunter2@h:70000"})");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "router_settings.redis_url");
  CHECK(problems[0].message.find("hunter2") == std::string::npos);
  CHECK(problems[0].message.find("port") != std::string::npos);

  problems = problems_with(R"({"redis_host": "h", "redis_port": 0})");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "router_settings.redis_port");
  problems = problems_with(R"({"redis_host": "h", "redis_port": "os.environ/P"})",
                           fake_env({{"P", "63x79"}}));
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "router_settings.redis_port");
  CHECK(problems[0].message.find("63x79") == std::string::npos);
  problems = problems_with(R"({"redis_host": "h", "redis_password": 5})");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].path == "router_settings.redis_password");
  problems = problems_with(R"({"redis_password": "os.environ/NOT_SET"})");
  REQUIRE(problems.size() == 1);
  CHECK(problems[0].message == "environment variable NOT_SET is not set");
}

TEST_CASE("config: every entry point computes the same deployment ids") {
  // Params in an order that is not sorted: a sorted copy would hash otherwise.
  const std::string text = R"({"model_list": [
      {"model_name": "gpt-4o", "litellm_params":
        {"model": "azure/eastus2", "api_key": "sk-test-123", "weight": 50, "api_base": "https://a"}},
      {"model_name": "gpt-4o", "litellm_params": {"rpm": 5, "model": "openai/gpt-4o", "api_key": "sk-2"}}]})";
  const std::string yaml = R"(model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/eastus2
      api_key: sk-test-123
      weight: 50
      api_base: https://a
  - model_name: gpt-4o
    litellm_params:
      rpm: 5
      model: openai/gpt-4o
      api_key: sk-2
)";
  const auto dir = std::filesystem::temp_directory_path();
  const auto json_file = (dir / "switchyard-same-ids.json").string();
  const auto yaml_file = (dir / "switchyard-same-ids.yaml").string();
  std::ofstream(json_file) << text;
  std::ofstream(yaml_file) << yaml;
  const auto from_text = load_config_text(text, fake_env());
  const auto from_doc = load_config(nlohmann::ordered_json::parse(text), fake_env());
  const auto from_json_file = load_config_file(json_file, fake_env());
  const auto from_yaml_file = load_config_file(yaml_file, fake_env());
  std::remove(json_file.c_str());
  std::remove(yaml_file.c_str());
  for (std::size_t i = 0; i < 2; ++i) {
    INFO("deployment " << i);
    const auto& id = from_text.deployments.at(i).id;
    CHECK(from_doc.deployments.at(i).id == id);
    CHECK(from_json_file.deployments.at(i).id == id);
    CHECK(from_yaml_file.deployments.at(i).id == id);
  }
  CHECK(from_text.deployments[0].id
        == litellm_deployment_id("gpt-4o", nlohmann::ordered_json::parse(
                                             R"({"model": "azure/eastus2", "api_key": "sk-test-123",
                                                 "weight": 50, "api_base": "https://a"})")));
  // The sorted document type, which has lost the file order, is refused at
  // compile time rather than hashed in another order.
  STATIC_REQUIRE(loads<nlohmann::ordered_json>::value);
  STATIC_REQUIRE_FALSE(loads<nlohmann::json>::value);
}
