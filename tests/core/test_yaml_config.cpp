// LiteLLM proxy config.yaml files: load_config_file reads YAML into the same
// router_config, and reports the same problems at the same paths, as JSON.

#include "support/test_config.hpp"

#include "switchyard/config.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

using namespace switchyard;
namespace fs = std::filesystem;

namespace {

// Most deployments here are real ones with no key: about loading, not providers.
env_lookup fake_env(std::map<std::string, std::string> vars = {}) {
  return switchyard::test::fake_env_with_keys(std::move(vars));
}

// The variables the fixtures name in the sections Switchyard reads (not
// REDIS_PASSWORD, LITELLM_MASTER_KEY, DATABASE_URL: those sit in keys or
// sections it ignores; REDIS_HOST is router_settings.redis_host).
env_lookup proxy_env() {
  return fake_env({{"AZURE_API_BASE_EASTUS2", "https://eastus2.openai.azure.com/"},
                   {"AZURE_API_KEY_EASTUS2", "sk-test-eastus2"},
                   {"AZURE_API_KEY_SWEDEN", "sk-test-sweden"},
                   {"OPENAI_API_KEY", "sk-test-openai"},
                   {"ANTHROPIC_API_KEY", "sk-test-anthropic"},
                   {"REDIS_HOST", "redis.internal"}});
}

fs::path data_dir() { return fs::path(__FILE__).parent_path() / "data"; }

// A file in the temp directory, removed when the test ends.
class temp_file {
public:
  temp_file(const std::string& name, const std::string& text)
    // The pid keeps test cases that CTest runs in parallel apart.
    : path_(fs::temp_directory_path()
            / ("switchyard-yaml-test-" + std::to_string(::getpid()) + "-" + name)) {
    std::ofstream out(path_, std::ios::binary);
    out << text;
  }
  ~temp_file() { std::remove(path_.string().c_str()); }
  std::string path() const { return path_.string(); }

private:
  fs::path path_;
};

std::vector<config_problem> file_problems(const std::string& file,
                                          const env_lookup& env = fake_env()) {
  try {
    load_config_file(file, env);
  } catch (const config_error& e) {
    return e.problems();
  }
  FAIL("expected a config_error for " << file);
  return {};
}

std::vector<config_problem> yaml_problems(const std::string& text,
                                          const env_lookup& env = fake_env()) {
  temp_file f("problems.yaml", text);
  return file_problems(f.path(), env);
}

router_config load_yaml(const std::string& text, const env_lookup& env = fake_env()) {
  temp_file f("load.yaml", text);
  return load_config_file(f.path(), env);
}

std::string listed(const std::vector<config_problem>& problems) {
  std::ostringstream out;
  for (const auto& p : problems)
    out << p.path << ": " << p.message << "\n";
  return out.str();
}

void check_same(const per_kind_counts& a, const per_kind_counts& b) {
  CHECK(a.bad_request == b.bad_request);
  CHECK(a.authentication == b.authentication);
  CHECK(a.timeout == b.timeout);
  CHECK(a.rate_limit == b.rate_limit);
  CHECK(a.content_policy_violation == b.content_policy_violation);
  CHECK(a.internal_server == b.internal_server);
}

void check_same(const std::vector<fallback_rule>& a, const std::vector<fallback_rule>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].from == b[i].from);
    CHECK(a[i].to == b[i].to);
  }
}

// Every field of two configs, one CHECK each, so a difference names itself.
void check_same(const router_config& a, const router_config& b) {
  REQUIRE(a.deployments.size() == b.deployments.size());
  for (std::size_t i = 0; i < a.deployments.size(); ++i) {
    INFO("deployment " << i);
    const auto& x = a.deployments[i];
    const auto& y = b.deployments[i];
    CHECK(x.id == y.id);
    CHECK(x.model_name == y.model_name);
    CHECK(x.model == y.model);
    CHECK(x.api_base == y.api_base);
    CHECK(x.api_key.reveal() == y.api_key.reveal());
    CHECK(x.weight == y.weight);
    CHECK(x.rpm == y.rpm);
    CHECK(x.tpm == y.tpm);
    CHECK(x.order == y.order);
    CHECK(x.timeout_s == y.timeout_s);
    CHECK(x.stream_timeout_s == y.stream_timeout_s);
    CHECK(x.cooldown_time_s == y.cooldown_time_s);
    CHECK(x.num_retries == y.num_retries);
    CHECK(x.max_input_tokens == y.max_input_tokens);
    CHECK(x.input_cost_per_token == y.input_cost_per_token);
    CHECK(x.output_cost_per_token == y.output_cost_per_token);
    CHECK(x.mock.kind == y.mock.kind);
    CHECK(x.mock.content == y.mock.content);
    CHECK(x.mock.error.kind == y.mock.error.kind);
    CHECK(x.mock.error.status == y.mock.error.status);
    CHECK(x.mock.error.message == y.mock.error.message);
    CHECK(x.mock.error.retry_after_s == y.mock.error.retry_after_s);
    CHECK(x.mock_latency_ms == y.mock_latency_ms);
    CHECK(x.mock_failure_rate == y.mock_failure_rate);
    CHECK(x.mock_failure == y.mock_failure);
    CHECK(x.mock_failure_after_calls == y.mock_failure_after_calls);
    CHECK(x.group == y.group);
    CHECK(x.index_in_group == y.index_in_group);
  }
  REQUIRE(a.groups.size() == b.groups.size());
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    CHECK(a.groups[g].name == b.groups[g].name);
    CHECK(a.groups[g].deployments == b.groups[g].deployments);
  }
  const auto& s = a.settings;
  const auto& t = b.settings;
  CHECK(s.routing_strategy == t.routing_strategy);
  CHECK(s.num_retries == t.num_retries);
  CHECK(s.timeout_s == t.timeout_s);
  CHECK(s.stream_timeout_s == t.stream_timeout_s);
  CHECK(s.allowed_fails == t.allowed_fails);
  check_same(s.allowed_fails_policy, t.allowed_fails_policy);
  check_same(s.retry_policy, t.retry_policy);
  REQUIRE(s.model_group_retry_policy.size() == t.model_group_retry_policy.size());
  for (const auto& [group, policy] : s.model_group_retry_policy) {
    INFO("model_group_retry_policy." << group);
    REQUIRE(t.model_group_retry_policy.count(group) == 1);
    check_same(policy, t.model_group_retry_policy.at(group));
  }
  CHECK(s.model_group_alias == t.model_group_alias);
  CHECK(s.cooldown_time_s == t.cooldown_time_s);
  CHECK(s.disable_cooldowns == t.disable_cooldowns);
  CHECK(s.enable_weighted_failover == t.enable_weighted_failover);
  CHECK(s.enable_pre_call_checks == t.enable_pre_call_checks);
  check_same(s.fallbacks, t.fallbacks);
  check_same(s.context_window_fallbacks, t.context_window_fallbacks);
  check_same(s.content_policy_fallbacks, t.content_policy_fallbacks);
  CHECK(s.default_fallbacks == t.default_fallbacks);
  CHECK(s.max_fallbacks == t.max_fallbacks);
  CHECK(s.lowest_latency_buffer == t.lowest_latency_buffer);
}

const char* minimal_yaml = "model_list:\n  - model_name: g\n    litellm_params: {model: m}\n";

// minimal_yaml plus one router_settings entry.
router_config with_router_setting(const std::string& line) {
  return load_yaml(std::string(minimal_yaml) + "router_settings:\n  " + line + "\n");
}

std::vector<config_problem> router_setting_problems(const std::string& line) {
  return yaml_problems(std::string(minimal_yaml) + "router_settings:\n  " + line + "\n");
}

} // namespace

TEST_CASE("yaml: a LiteLLM proxy config.yaml loads as its JSON twin does") {
  const auto from_yaml =
    load_config_file((data_dir() / "litellm_proxy_config.yaml").string(), proxy_env());
  const auto from_json =
    load_config_file((data_dir() / "litellm_proxy_config.json").string(), proxy_env());
  check_same(from_yaml, from_json);
  REQUIRE(from_yaml.settings.redis);
  REQUIRE(from_json.settings.redis);
  CHECK(from_yaml.settings.redis->host == "redis.internal");
  CHECK(from_json.settings.redis->host == "redis.internal");
  CHECK(from_yaml.settings.redis->port == 6379);

  // And the values are the ones written, not merely equal to each other.
  REQUIRE(from_yaml.deployments.size() == 5);
  const auto& d = from_yaml.deployments;
  CHECK(d[0].id == "gpt-4o-eastus2");
  CHECK(d[0].api_base == "https://eastus2.openai.azure.com/");
  CHECK(d[0].api_key.reveal() == "sk-test-eastus2");
  CHECK(d[0].stream_timeout_s == 10.0);
  CHECK(d[0].max_input_tokens == 128000);
  // Generated ids: LiteLLM's Router._generate_model_id run by python3 on
  // PyYAML's safe_load of the same file (api_version 2024-06-01 is a date
  // there, str() of which is the same text), with the variables resolved.
  CHECK(d[1].id == "fc1c0ebc4c5eddd2593bd07f3aed5cc45db7562a5cadfc5936c7ec4d82614659");
  CHECK(d[2].id == "4d2cef9fc46f482b2f7a6c95f42b521211251d8221e44f92f1254686aacb3756");
  // `<<: *openai_mini`: merged keys first, own keys over them (PyYAML's order).
  CHECK(d[3].id == "2cdcd3595c96ff29b8d0afa2d7cfc7bb97ddce7cdb8eb43003603a4281233314");
  CHECK(d[3].model == "openai/gpt-4o-mini");
  CHECK(d[3].order == 2);
  CHECK(d[3].mock.content == "hello from the mock");
  CHECK(d[3].mock_failure == error_kind::rate_limit);
  CHECK(d[3].mock_failure_after_calls == 100);
  CHECK(d[4].id == "e3664333f427b93a4ff93b5eb2c39dfbf1c56661c107fd39de63ee829aef040e");
  CHECK(d[4].rpm == 100.0);
  CHECK(d[4].mock.error.kind == error_kind::rate_limit);
  CHECK(d[4].mock.error.retry_after_s == 2.0);

  const auto& s = from_yaml.settings;
  CHECK(s.num_retries == 2);  // router_settings over litellm_settings' 3
  CHECK(s.timeout_s == 120);  // litellm_settings.request_timeout
  CHECK(s.allowed_fails == 4); // litellm_settings
  CHECK(s.cooldown_time_s == 30);
  CHECK(s.stream_timeout_s == 15.0);
  CHECK(s.enable_weighted_failover);
  REQUIRE(s.fallbacks.size() == 1); // litellm_settings
  CHECK(s.fallbacks[0].to == std::vector<std::string>{"claude-3-5-sonnet"});
  REQUIRE(s.context_window_fallbacks.size() == 1);
  REQUIRE(s.content_policy_fallbacks.size() == 1);
  CHECK(s.default_fallbacks == std::vector<std::string>{"gpt-4o-mini"});
  CHECK(s.retry_policy.timeout == 3);
  CHECK(s.retry_policy.rate_limit == 5);
  CHECK(s.retry_policy.bad_request == 0);
  CHECK(s.allowed_fails_policy.rate_limit == 10);
  CHECK(s.allowed_fails_policy.content_policy_violation == 2);
  CHECK(s.model_group_retry_policy.at("gpt-4o-mini").rate_limit == 0);
  CHECK(s.model_group_retry_policy.at("gpt-4o-mini").internal_server == 1);
  CHECK(s.model_group_alias
        == std::map<std::string, std::string>{{"gpt-4", "gpt-4o"}, {"claude", "claude-3-5-sonnet"}});
  CHECK(s.max_fallbacks == 3);
  CHECK(s.lowest_latency_buffer == 0.5);
}

TEST_CASE("yaml: a broken config gives the same problems at the same paths as JSON") {
  const std::string yaml = R"(# every kind of problem, once
model_list:
  - model_name: g
    litellm_params:
      model: m
      weight: -1
      stream_timeout: "10"
      api_key: os.environ/MISSING_KEY
  - model_name: ""
    litellm_params: {model: n}
  - model_name: h
    litellm_params:
      model: o
      mock_failure: NopeError
    model_info: {id: 5, max_input_tokens: -1}
litellm_settings:
  request_timeout: 0
  fallbacks: [{g: [x]}]
router_settings:
  routing_strategy: round-robin
  enable_pre_call_checks: yes
  retry_policy: {RateLimitErrorRetries: -1, TimeoutRetries: 2}
  allowed_fails_policy: [1]
  model_group_retry_policy: {nope: {}}
  model_group_alias: {g: h, a: zz, b: {model: g, hidden: "no"}}
  stream_timeout: -.5
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
)";
  const std::string json = R"({
  "model_list": [
    {"model_name": "g", "litellm_params": {"model": "m", "weight": -1, "stream_timeout": "10",
                                           "api_key": "os.environ/MISSING_KEY"}},
    {"model_name": "", "litellm_params": {"model": "n"}},
    {"model_name": "h", "litellm_params": {"model": "o", "mock_failure": "NopeError"},
     "model_info": {"id": 5, "max_input_tokens": -1}}],
  "litellm_settings": {"request_timeout": 0, "fallbacks": [{"g": ["x"]}]},
  "router_settings": {"routing_strategy": "round-robin", "enable_pre_call_checks": "yes",
                      "retry_policy": {"RateLimitErrorRetries": -1, "TimeoutRetries": 2},
                      "allowed_fails_policy": [1], "model_group_retry_policy": {"nope": {}},
                      "model_group_alias": {"g": "h", "a": "zz", "b": {"model": "g", "hidden": "no"}},
                      "stream_timeout": -0.5},
  "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"}})";
  temp_file yaml_file("broken.yaml", yaml);
  temp_file json_file("broken.json", json);
  const auto from_yaml = file_problems(yaml_file.path());
  const auto from_json = file_problems(json_file.path());
  CHECK(listed(from_yaml) == listed(from_json));
  const std::vector<std::string> paths = {
    "model_list[0].litellm_params.api_key",
    "model_list[0].litellm_params.weight",
    "model_list[0].litellm_params.stream_timeout",
    "model_list[1].model_name",
    "model_list[2].litellm_params.mock_failure",
    "model_list[2].model_info.max_input_tokens",
    "litellm_settings.request_timeout",
    "litellm_settings.fallbacks[0].g[0]",
    "router_settings.routing_strategy",
    "router_settings.retry_policy.RateLimitErrorRetries",
    "router_settings.retry_policy.TimeoutRetries",
    "router_settings.stream_timeout",
    "router_settings.allowed_fails_policy",
    "router_settings.model_group_retry_policy.nope",
    "router_settings.model_group_alias.g",
    "router_settings.model_group_alias.a",
    "router_settings.model_group_alias.b.hidden",
    "router_settings.enable_pre_call_checks",
  };
  std::vector<std::string> got;
  for (const auto& p : from_yaml)
    got.push_back(p.path);
  CHECK(got == paths);
}

TEST_CASE("yaml: plain scalars take YAML 1.2 core types, quoted ones stay strings") {
  SECTION("numbers") {
    CHECK(with_router_setting("num_retries: 3").settings.num_retries == 3);
    CHECK(with_router_setting("num_retries: +3").settings.num_retries == 3);
    CHECK(with_router_setting("num_retries: 0x10").settings.num_retries == 16);
    CHECK(with_router_setting("num_retries: 0o17").settings.num_retries == 15);
    CHECK(with_router_setting("num_retries: 010").settings.num_retries == 10); // 1.2: decimal
    CHECK(with_router_setting("timeout: 1e3").settings.timeout_s == 1000);
    CHECK(with_router_setting("timeout: 2.5").settings.timeout_s == 2.5);
    CHECK(with_router_setting("timeout: .5").settings.timeout_s == 0.5);
    CHECK(with_router_setting("timeout: 5.").settings.timeout_s == 5);
    CHECK(with_router_setting("timeout: 1.5E+1").settings.timeout_s == 15);
    CHECK(with_router_setting("timeout: 30").settings.timeout_s == 30);
  }
  SECTION("booleans and null") {
    CHECK(with_router_setting("disable_cooldowns: true").settings.disable_cooldowns);
    CHECK(with_router_setting("disable_cooldowns: True").settings.disable_cooldowns);
    CHECK(with_router_setting("disable_cooldowns: TRUE").settings.disable_cooldowns);
    CHECK_FALSE(with_router_setting("disable_cooldowns: false").settings.disable_cooldowns);
    CHECK(with_router_setting("num_retries: ~").settings.num_retries == 2);
    CHECK(with_router_setting("num_retries: null").settings.num_retries == 2);
    CHECK(with_router_setting("num_retries:").settings.num_retries == 2);
  }
  SECTION("tags") {
    CHECK(with_router_setting("num_retries: !!int \"4\"").settings.num_retries == 4);
    CHECK(with_router_setting("timeout: !!float 4").settings.timeout_s == 4);
    CHECK(with_router_setting("disable_cooldowns: !!bool \"true\"").settings.disable_cooldowns);
  }
  SECTION("what is not a number or a boolean in YAML 1.2 is a string, and fails as JSON's would") {
    const std::pair<const char*, const char*> cases[] = {
      {"timeout: \"30\"", "expected a number > 0"},
      {"timeout: '30'", "expected a number > 0"},
      {"timeout: !!str 30", "expected a number > 0"},
      {"timeout: 30s", "expected a number > 0"},
      {"timeout: 1_000", "expected a number > 0"},
      {"timeout: .inf", "expected a number > 0"},
      {"timeout: -.inf", "expected a number > 0"},
      {"timeout: .nan", "expected a number > 0"},
      {"num_retries: 1.0", "expected an integer >= 0"},
      {"num_retries: !!float 1", "expected an integer >= 0"},
      // YAML 1.1 (PyYAML) booleans are strings in 1.2: an error, not a guess.
      {"disable_cooldowns: yes", "expected true or false"},
      {"disable_cooldowns: on", "expected true or false"},
      {"disable_cooldowns: \"true\"", "expected true or false"},
    };
    for (const auto& [line, message] : cases) {
      INFO(line);
      const auto problems = router_setting_problems(line);
      REQUIRE(problems.size() == 1);
      CHECK(problems[0].path.rfind("router_settings.", 0) == 0);
      CHECK(problems[0].message == message);
    }
  }
  SECTION("a quoted model_info.id keeps its spelling; a plain one is a number") {
    const auto cfg = load_yaml(R"(model_list:
  - {model_name: g, litellm_params: {model: a}, model_info: {id: "007"}}
  - {model_name: g, litellm_params: {model: b}, model_info: {id: 007}}
  - {model_name: g, litellm_params: {model: c}, model_info: {id: 2.50}}
)");
    CHECK(cfg.deployments.at(0).id == "007");
    CHECK(cfg.deployments.at(1).id == "7");
    CHECK(cfg.deployments.at(2).id == "2.5");
  }
  SECTION("block scalars are strings") {
    const auto cfg = load_yaml(R"(model_list:
  - model_name: g
    litellm_params:
      model: m
      mock_response: |
        line one
        line two
)");
    CHECK(cfg.deployments.at(0).mock.content == "line one\nline two\n");
  }
}

TEST_CASE("yaml: merge keys apply as in PyYAML") {
  const auto cfg = load_yaml(R"(
base: &base {model: base-model, rpm: 1, tpm: 2}
other: &other {model: other-model, rpm: 10, weight: 5}
model_list:
  - model_name: g
    litellm_params:
      <<: [*base, *other]
      tpm: 20
)");
  const auto& d = cfg.deployments.at(0);
  // The first mapping listed wins over later ones; the node's own keys win
  // over all of them.
  CHECK(d.model == "base-model");
  CHECK(d.rpm == 1.0);
  CHECK(d.weight == 5.0);
  CHECK(d.tpm == 20.0);
  // Key order (hashed by the id): merged keys first, later sources first,
  // then own keys. Computed with PyYAML and LiteLLM's formula.
  CHECK(d.id == "4639fac953df31ccc2457b68a4de606e245b12faa75f73285bb02bacb32ae48e");

  SECTION("a quoted \"<<\" is an ordinary key") {
    const auto quoted = load_yaml(R"(model_list:
  - model_name: g
    litellm_params: {model: m, "<<": {rpm: 5}}
)");
    CHECK_FALSE(quoted.deployments.at(0).rpm);
  }
  SECTION("merging a scalar is an error at its line") {
    const auto problems = yaml_problems("model_list:\n  - <<: 5\n");
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 2, column 9");
    CHECK(problems[0].message == "expected a mapping or a list of mappings to merge");
  }
}

TEST_CASE("yaml: syntax errors name the line and column, never the text") {
  SECTION("an unclosed flow sequence") {
    const auto problems = yaml_problems("model_list: [\n  {model_name: g}\nrouter_settings: {}\n");
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 3, column 1");
    CHECK(problems[0].message == "end of sequence flow not found");
  }
  SECTION("a bad indentation right after a secret") {
    const std::string text = "model_list:\n  - model_name: g\n    litellm_params:\n"
                             "      api_key: sk-PLANTED-SECRET\n   bad: [\n";
    const auto problems = yaml_problems(text);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 5, column 4");
    CHECK(problems[0].message == "end of sequence not found");
    temp_file f("secret.yaml", text);
    try {
      load_config_file(f.path(), fake_env());
      FAIL("expected a config_error");
    } catch (const config_error& e) {
      CHECK(std::string(e.what()).find("PLANTED") == std::string::npos);
    }
  }
  SECTION("an unknown alias") {
    const auto problems = yaml_problems("model_list: *nowhere\n");
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 1, column 13");
  }
  SECTION("two documents") {
    const auto problems = yaml_problems(std::string(minimal_yaml) + "---\n" + minimal_yaml);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 4, column 1"); // the second document's "---"
    CHECK(problems[0].message == "expected one YAML document, found a second one");
  }
  SECTION("a mapping as a key, and an unknown tag: both reported") {
    const auto problems =
      yaml_problems("model_list:\n  - ? {a: 1}\n    : x\n    model_name: !secret g\n");
    REQUIRE(problems.size() == 2);
    CHECK(problems[0].path == "line 2, column 7");
    CHECK(problems[0].message == "expected a string as mapping key");
    CHECK(problems[1].path == "line 4, column 17");
    CHECK(problems[1].message.rfind("unsupported YAML tag", 0) == 0);
  }
}

TEST_CASE("yaml: documents that are not a mapping fail as JSON's do") {
  for (const char* text : {"", "# only a comment\n", "- a\n- b\n", "just text\n"}) {
    INFO('"' << text << '"');
    const auto problems = yaml_problems(text);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "(root)");
    CHECK(problems[0].message == "expected a JSON object");
  }
}

TEST_CASE("yaml: the format comes from the extension, else from the first character") {
  const std::string yaml = minimal_yaml;
  const std::string json =
    R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m"}}]})";
  for (const char* name : {"c.yaml", "c.yml", "c.YAML", "c.Yml", "c.conf", "config"}) {
    INFO(name);
    temp_file f(name, yaml);
    CHECK(load_config_file(f.path(), fake_env()).deployments.at(0).model == "m");
  }
  for (const char* name : {"c.json", "c.JSON", "c.conf", "c.txt"}) {
    INFO(name);
    temp_file f(name, "\xEF\xBB\xBF  \n" + json);
    CHECK(load_config_file(f.path(), fake_env()).deployments.at(0).model == "m");
  }
  SECTION("a .json file is JSON even when it holds YAML") {
    temp_file f("yaml-inside.json", yaml);
    const auto problems = file_problems(f.path());
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path.rfind("line 1, column ", 0) == 0);
    CHECK(problems[0].message.find("syntax error") != std::string::npos);
  }
  SECTION("a .yaml file may be written as JSON (JSON is YAML)") {
    temp_file f("json-inside.yaml", json);
    CHECK(load_config_file(f.path(), fake_env()).deployments.at(0).model == "m");
  }
  SECTION("broken JSON in an unknown extension is reported as JSON") {
    temp_file f("broken.conf", R"({"model_list": [}")");
    const auto problems = file_problems(f.path());
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "line 1, column 17");
  }
}
