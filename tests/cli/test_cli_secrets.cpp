// Secrets never leave the process: api keys (literal or from the
// environment) and every value resolved from `os.environ/` must not appear
// in anything `switchyard check` or `switchyard run` writes -- stdout,
// stderr (logs at trace level included) or the --output file -- whether the
// run succeeds, fails, meets malformed lines or unknown models, or the
// configuration is broken in the very field that holds the secret.
//
// Each test writes its configuration and input to a scratch directory,
// plants distinctive values in the environment, runs the real binary with
// SWITCHYARD_LOG_LEVEL=trace, and greps everything it wrote.

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;
using switchyard::test::cli_result;
using switchyard::test::contains;
using switchyard::test::json_lines;
using switchyard::test::quoted;
using switchyard::test::temp_file;
using switchyard::test::write_text;

/// Writes `text` to `name` in the scratch directory; returns its path.
std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = temp_file(name);
  write_text(path, text);
  return path;
}

/// The planted values, by environment variable. All distinctive, so a hit
/// can only be a leak.
const std::map<std::string, std::string>& planted() {
  static const std::map<std::string, std::string> values{
    {"SY_SECRET_KEY", "sk-planted-key-3f9a1c7e55"},
    {"SY_SECRET_KEY_2", "sk-planted-key-two-81d0b2"},
    {"SY_SECRET_BASE", "http://127.0.0.1:9/planted-base-6c2e/v1"},
    {"SY_SECRET_VERSION", "planted-api-version-4b7d"},
    {"SY_SECRET_AWS", "planted-aws-secret-9e1f0a"},
    {"SY_SECRET_RPM", "planted-rpm-not-a-number-2a8c"},
    {"SY_SECRET_TIMEOUT", "planted-timeout-5d3b"},
    {"SY_SECRET_RETRIES", "planted-retries-7f2e"},
    {"SY_SECRET_STRATEGY", "planted-strategy-0c4a"},
    {"SY_SECRET_GROUP", "planted-group-1b9d"},
    {"SY_SECRET_KIND", "planted-kind-6e5f"},
    {"SY_SECRET_WEIGHT", "planted-weight-8a1b"},
    {"SY_SECRET_BOOL", "planted-bool-3c7d"},
    {"SY_SECRET_MOCK_KIND", "litellm.PlantedNoSuchError-9d2c"},
  };
  return values;
}

/// A literal api key written in the config file itself: a secret too.
const std::string literal_key = "sk-literal-in-file-0d6a44e1";

std::string planted_env() {
  std::string env = "env SWITCHYARD_LOG_LEVEL=trace";
  for (const auto& [name, value] : planted())
    env += " " + name + "=" + quoted(value);
  return env;
}

/// Runs `switchyard <arguments>` with the planted environment.
/// (`output`: passed as --output and read back into output_file.)
cli_result run_cli(const std::string& arguments, const std::string& output = "") {
  return switchyard::test::run_cli(arguments, planted_env(), output);
}

/// Every planted value (and the literal key) is absent from all the run
/// wrote. Also checks pieces of them, in case one is cut or quoted.
void require_no_secret(const cli_result& r) {
  std::vector<std::string> secrets{literal_key, "sk-planted", "planted-"};
  for (const auto& [name, value] : planted())
    secrets.push_back(value);
  for (const auto& s : secrets) {
    INFO("secret: " << s);
    CHECK_FALSE(contains(r.out, s));
    CHECK_FALSE(contains(r.err, s));
    CHECK_FALSE(contains(r.output_file, s));
  }
}

// --- configurations ---------------------------------------------------------

// Secrets in every place a LiteLLM config puts them: api_key, api_base, and
// keys Switchyard does not read but hashes into generated ids (api_version,
// aws_secret_access_key). Groups that succeed, fail, fail over, fall back,
// time out, cool down, and one deployment without a mock.
std::string good_config_json() {
  return R"({
  "model_list": [
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/east", "api_key": "os.environ/SY_SECRET_KEY",
       "api_base": "os.environ/SY_SECRET_BASE", "api_version": "os.environ/SY_SECRET_VERSION",
       "weight": 1000, "mock_response": "litellm.AuthenticationError"}},
    {"model_name": "gpt-4o",
     "litellm_params": {"model": "azure/west", "api_key": "os.environ/SY_SECRET_KEY_2",
       "api_base": "os.environ/SY_SECRET_BASE", "weight": 1, "mock_response": "west reply"},
     "model_info": {"id": "west"}},
    {"model_name": "flaky",
     "litellm_params": {"model": "bedrock/flaky", "aws_secret_access_key": "os.environ/SY_SECRET_AWS",
       "api_key": ")" + literal_key + R"(", "mock_response": "flaky reply",
       "mock_failure_rate": 1, "mock_failure": "RateLimitError"},
     "model_info": {"id": "flaky-1"}},
    {"model_name": "flaky",
     "litellm_params": {"model": "bedrock/flaky2", "api_key": "os.environ/SY_SECRET_KEY",
       "mock_response": "litellm.InternalServerError"},
     "model_info": {"id": "flaky-2"}},
    {"model_name": "backup",
     "litellm_params": {"model": "openai/backup", "api_key": "os.environ/SY_SECRET_KEY_2",
       "mock_response": "backup reply"},
     "model_info": {"id": "backup-1"}},
    {"model_name": "slow",
     "litellm_params": {"model": "openai/slow", "api_key": "os.environ/SY_SECRET_KEY",
       "mock_response": "too late", "mock_latency_ms": 500, "timeout": 0.02},
     "model_info": {"id": "slow-1"}},
    {"model_name": "lonely",
     "litellm_params": {"model": "openai/lonely", "api_key": "os.environ/SY_SECRET_KEY_2",
       "mock_response": "lonely reply"},
     "model_info": {"id": "lonely-1"}},
    {"model_name": "unmocked",
     "litellm_params": {"model": "openai/unmocked", "api_key": "os.environ/SY_SECRET_KEY",
       "api_base": "os.environ/SY_SECRET_BASE"},
     "model_info": {"id": "unmocked-1"}}
  ],
  "router_settings": {"enable_weighted_failover": true, "num_retries": 1, "cooldown_time": 0.5,
                      "fallbacks": [{"flaky": ["backup"]}, {"slow": ["backup"]}]},
  "general_settings": {"master_key": "os.environ/SY_SECRET_KEY"}
})";
}

// The same in YAML, as a LiteLLM proxy config.yaml.
std::string good_config_yaml() {
  return R"(model_list:
  - model_name: gpt-4o
    litellm_params:
      model: azure/east
      api_key: os.environ/SY_SECRET_KEY
      api_base: os.environ/SY_SECRET_BASE
      api_version: os.environ/SY_SECRET_VERSION
      weight: 1000
      mock_response: litellm.AuthenticationError
  - model_name: gpt-4o
    litellm_params:
      model: azure/west
      api_key: os.environ/SY_SECRET_KEY_2
      weight: 1
      mock_response: west reply
    model_info: {id: west}
  - model_name: backup
    litellm_params:
      model: openai/backup
      api_key: )" + literal_key + R"(
      mock_response: backup reply
router_settings:
  enable_weighted_failover: true
  num_retries: 0
  fallbacks: [{gpt-4o: [backup]}]
general_settings:
  master_key: os.environ/SY_SECRET_KEY
)";
}

std::string batch_line(const std::string& id, const json& body) {
  return switchyard::test::request_line(id, body);
}

json body_for(const std::string& model) {
  return switchyard::test::chat_body(model, "hi");
}

// Successes, failures, failover, fallback, timeout, a deployment without
// a transport, request-level mock errors, unknown models, malformed lines.
std::string input_lines() {
  std::string text;
  const auto add = [&text](const std::string& line) { text += line + "\n"; };
  for (int i = 0; i < 4; ++i)
    add(batch_line("failover-" + std::to_string(i), body_for("gpt-4o")));
  for (int i = 0; i < 4; ++i)
    add(batch_line("fallback-" + std::to_string(i), body_for("flaky")));
  add(batch_line("timeout", body_for("slow")));
  add(batch_line("unmocked", body_for("unmocked")));
  add(batch_line("no-fallbacks", [] {
    auto b = body_for("flaky");
    b["disable_fallbacks"] = true;
    return b;
  }()));
  // (A 401 cools its deployment down: not on the fallback group.)
  add(batch_line("mock-auth", [] {
    auto b = body_for("lonely");
    b["mock_response"] = {{"error", "AuthenticationError"}, {"message", "bad key"}};
    return b;
  }()));
  add(batch_line("unknown-model", body_for("gpt-9")));
  add(batch_line("bad-messages", {{"model", "gpt-4o"}, {"messages", json::object()}}));
  add(batch_line("bad-mock", [] {
    auto b = body_for("gpt-4o");
    b["mock_response"] = "litellm.NoSuchError";
    return b;
  }()));
  add("{this is not json");
  add(R"({"custom_id": 7})");
  add("[1, 2, 3]");
  add(batch_line("last", body_for("backup")));
  return text;
}

const std::size_t input_line_count = 19;

/// A config broken in the fields that hold environment values: every
/// problem must name its path, none may quote the value.
std::string broken_config_json() {
  return R"({
  "model_list": [
    {"model_name": "g",
     "litellm_params": {"model": "m", "api_key": "os.environ/SY_SECRET_KEY",
       "rpm": "os.environ/SY_SECRET_RPM", "weight": "os.environ/SY_SECRET_WEIGHT",
       "timeout": "os.environ/SY_SECRET_TIMEOUT",
       "num_retries": "os.environ/SY_SECRET_RETRIES",
       "mock_failure": "os.environ/SY_SECRET_KIND",
       "mock_response": "os.environ/SY_SECRET_MOCK_KIND"},
     "model_info": {"id": "g-1"}},
    {"model_name": "h",
     "litellm_params": {"model": "m2", "api_key": "os.environ/SY_SECRET_NOT_SET_ANYWHERE"},
     "model_info": {"id": "h-1"}}
  ],
  "router_settings": {
    "routing_strategy": "os.environ/SY_SECRET_STRATEGY",
    "fallbacks": [{"g": ["os.environ/SY_SECRET_GROUP"]}],
    "default_fallbacks": ["os.environ/SY_SECRET_GROUP"],
    "model_group_alias": {"alias": "os.environ/SY_SECRET_GROUP"},
    "enable_weighted_failover": "os.environ/SY_SECRET_BOOL",
    "cooldown_time": "os.environ/SY_SECRET_TIMEOUT"
  },
  "litellm_settings": {"request_timeout": "os.environ/SY_SECRET_TIMEOUT",
                       "num_retries": "os.environ/SY_SECRET_RETRIES"}
})";
}

} // namespace

TEST_CASE("secrets: check prints the summary of a config full of secrets without any of them") {
  const cli_result r = run_cli("check --config " + quoted(write_file("good.json", good_config_json())));
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "config OK"));
  CHECK(contains(r.out, "model group gpt-4o: 2 deployments"));
  // Trace level: the ignored section and unknown keys are logged (names only).
  CHECK(contains(r.err, "general_settings"));
  CHECK(contains(r.err, "api_version"));
  require_no_secret(r);
}

TEST_CASE("secrets: run output and trace logs never show a secret on any path") {
  const std::string config = write_file("good.json", good_config_json());
  const std::string input = write_file("input.jsonl", input_lines());

  SECTION("results on stdout, concurrently") {
    const cli_result r =
      run_cli("run --config " + quoted(config) + " --input " + quoted(input) + " --seed 9");
    REQUIRE(r.status == 0);
    const auto lines = json_lines(r.out);
    REQUIRE(lines.size() == input_line_count);
    std::map<std::string, json> by_id;
    for (const auto& l : lines)
      if (l["custom_id"].is_string())
        by_id[l["custom_id"].get<std::string>()] = l;
    // The run went down every path.
    CHECK(by_id["failover-0"]["switchyard"]["deployment_id"] == "west");
    CHECK(by_id["fallback-0"]["switchyard"]["model_group"] == "backup");
    CHECK(by_id["timeout"]["switchyard"]["attempts"][0]["outcome"] == "Timeout");
    CHECK(by_id["unmocked"]["error"]["type"] == "APIConnectionError");
    CHECK(by_id["no-fallbacks"]["error"]["code"].get<int>() >= 429);
    CHECK(by_id["mock-auth"]["error"]["message"] == "bad key");
    CHECK(by_id["unknown-model"]["error"]["code"] == 400);
    CHECK(by_id["bad-messages"]["error"]["code"] == 400);
    CHECK(by_id["bad-mock"]["error"]["code"] == 400);
    CHECK(by_id["last"]["response"]["status_code"] == 200);
    // Trace logging was on and said something about the cooldowns.
    CHECK(contains(r.err, "cooling down"));
    require_no_secret(r);
  }

  SECTION("results in --output, one at a time") {
    const std::string output = temp_file("out.jsonl");
    const cli_result r = run_cli(
      "run --config " + quoted(config) + " --input " + quoted(input) + " --concurrency 1", output);
    REQUIRE(r.status == 0);
    CHECK(r.out.empty());
    CHECK(json_lines(r.output_file).size() == input_line_count);
    require_no_secret(r);
  }
}

TEST_CASE("secrets: a YAML config keeps its secrets out of check and run") {
  const std::string config = write_file("good.yaml", good_config_yaml());
  const cli_result check = run_cli("check --config " + quoted(config));
  REQUIRE(check.status == 0);
  require_no_secret(check);

  std::string input;
  for (int i = 0; i < 4; ++i)
    input += batch_line("y" + std::to_string(i), body_for(i == 3 ? "nope" : "gpt-4o")) + "\n";
  const cli_result run =
    run_cli("run --config " + quoted(config) + " --input " + quoted(write_file("y.jsonl", input)));
  REQUIRE(run.status == 0);
  CHECK(json_lines(run.out).size() == 4);
  require_no_secret(run);
}

TEST_CASE("secrets: errors in the fields that hold environment values name the path and never the value") {
  const std::string config = write_file("broken.json", broken_config_json());
  const cli_result check = run_cli("check --config " + quoted(config));
  CHECK(check.status == 1);
  CHECK(check.out.empty());
  for (const char* expected : {
         "model_list[0].litellm_params.rpm: expected a number >= 0\n",
         "model_list[0].litellm_params.weight: expected a number >= 0\n",
         "model_list[0].litellm_params.timeout: expected a number > 0\n",
         "model_list[0].litellm_params.num_retries: expected an integer >= 0\n",
         "model_list[0].litellm_params.mock_failure: unknown error kind",
         "model_list[0].litellm_params.mock_response: unknown error kind",
         "model_list[1].litellm_params.api_key: environment variable "
         "SY_SECRET_NOT_SET_ANYWHERE is not set\n",
         "router_settings.routing_strategy: unknown routing strategy; expected one of: ",
         "router_settings.fallbacks[0].g[0]: unknown model group\n",
         "router_settings.default_fallbacks[0]: unknown model group\n",
         "router_settings.model_group_alias.alias: unknown model group\n",
         "router_settings.enable_weighted_failover: expected true or false\n",
         "router_settings.cooldown_time: expected a number >= 0\n",
         "litellm_settings.request_timeout: expected a number > 0\n",
         "litellm_settings.num_retries: expected an integer >= 0\n",
       }) {
    INFO(expected);
    CHECK(contains(check.err, expected));
  }
  require_no_secret(check);

  // run reports the same problems the same way before reading any input.
  const cli_result run = run_cli("run --config " + quoted(config) + " --input "
                                 + quoted(write_file("one.jsonl", batch_line("a", body_for("g")) + "\n")));
  CHECK(run.status == 1);
  CHECK(run.out.empty());
  CHECK(contains(run.err, "model_list[0].litellm_params.rpm: expected a number >= 0\n"));
  require_no_secret(run);
}

TEST_CASE("secrets: a syntax error next to a literal api key does not quote the text") {
  SECTION("JSON") {
    const std::string config = write_file(
      "syntax.json", R"({"model_list": [{"model_name": "g", "litellm_params": {"model": "m",
        "api_key": ")" + literal_key + R"(" "weight": 1}}]})");
    const cli_result r = run_cli("check --config " + quoted(config));
    CHECK(r.status == 1);
    CHECK(contains(r.err, "line 2, column "));
    require_no_secret(r);
  }
  SECTION("YAML") {
    const std::string config = write_file(
      "syntax.yaml", "model_list:\n  - model_name: g\n    litellm_params:\n      model: m\n"
                     "      api_key: " + literal_key + "\n     weight: [1\n");
    const cli_result r = run_cli("check --config " + quoted(config));
    CHECK(r.status == 1);
    CHECK(contains(r.err, "line "));
    require_no_secret(r);
  }
}

TEST_CASE("secrets: a provider model name resolved from the environment stays out of run output") {
  // `model: os.environ/...` is a value resolved from the environment like
  // any other (ROUTER_SEMANTICS.md section 1: "anything resolved from
  // os.environ/" never appears in output). run echoes the deployment's
  // `model` in the chat.completion body, and the no-transport error quotes it.
  const std::string config = write_file("model_env.json", R"({
    "model_list": [
      {"model_name": "g", "litellm_params": {"model": "os.environ/SY_SECRET_VERSION",
        "mock_response": "hello"}, "model_info": {"id": "g-1"}},
      {"model_name": "bare", "litellm_params": {"model": "os.environ/SY_SECRET_AWS",
        "api_key": "sk-test", "api_base": "http://127.0.0.1:9/v1"},
       "model_info": {"id": "bare-1"}}
    ],
    "router_settings": {"num_retries": 0}
  })");
  const std::string input =
    write_file("model_env.jsonl", batch_line("served", body_for("g")) + "\n"
                                    + batch_line("unserved", body_for("bare")) + "\n");
  const cli_result check = run_cli("check --config " + quoted(config));
  REQUIRE(check.status == 0);
  require_no_secret(check);
  const cli_result run = run_cli("run --config " + quoted(config) + " --input " + quoted(input));
  REQUIRE(run.status == 0);
  REQUIRE(json_lines(run.out).size() == 2);
  require_no_secret(run);
}
