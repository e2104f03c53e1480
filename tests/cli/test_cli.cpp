// The `switchyard` command run as a process on files: what a user sees.
// Each test starts the real binary, captures stdout, stderr and the exit
// status, and asserts on the parsed JSON lines or the printed text.

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using json = nlohmann::json;
using namespace switchyard::test;

const std::string data_dir = SWITCHYARD_TEST_DATA;

std::string data_file(const std::string& name) {
  return data_dir + "/" + name;
}

std::vector<std::string> custom_ids(const std::vector<json>& lines) {
  std::vector<std::string> ids;
  for (const auto& l : lines)
    ids.push_back(l["custom_id"].is_null() ? "<null>" : l["custom_id"].get<std::string>());
  return ids;
}

std::string run_args(const std::string& config, const std::string& input,
                     const std::string& extra = "") {
  return "run --config " + quoted(config) + " --input " + quoted(input) + " " + extra;
}

/// The good fixture run once per test process, concurrently (default 64),
/// with --ordered so that tests can find lines by position.
const std::vector<json>& good_run_lines() {
  static const std::vector<json> lines = [] {
    const cli_result r = run_cli(
      run_args(data_file("good_config.json"), data_file("requests.jsonl"), "--ordered --seed 1"));
    REQUIRE(r.status == 0);
    REQUIRE(r.err.empty());
    return json_lines(r.out);
  }();
  return lines;
}

const json& good_line(const std::string& custom_id) {
  for (const auto& l : good_run_lines())
    if (l["custom_id"] == custom_id)
      return l;
  FAIL("no output line for custom_id " << custom_id);
  throw std::logic_error("unreachable");
}

void require_served(const json& line, const std::string& deployment,
                    const std::string& group, const std::string& model,
                    const std::string& content, int depth) {
  REQUIRE(line["error"].is_null());
  REQUIRE(line["response"]["status_code"] == 200);
  const json& body = line["response"]["body"];
  CHECK(body["object"] == "chat.completion");
  CHECK(body["model"] == model);
  CHECK(body["choices"].size() == 1);
  CHECK(body["choices"][0]["message"]["content"] == content);
  CHECK(line["switchyard"]["deployment_id"] == deployment);
  CHECK(line["switchyard"]["model_group"] == group);
  CHECK(line["switchyard"]["fallback_depth"] == depth);
}

/// A malformed line's answer: BadRequestError 400, empty trace.
void require_bad_line(const json& line, const json& custom_id, const std::string& message) {
  check_failed(line, "BadRequestError", 400, 0);
  CHECK(line["custom_id"] == custom_id);
  CHECK(line["error"]["message"] == message);
  CHECK(line["switchyard"]["attempts"].empty());
}

/// A request whose message content is its custom_id.
std::string batch_line(const std::string& custom_id, const std::string& model) {
  return request_line(custom_id, chat_body(model, custom_id));
}

/// `n` requests cycling through `models`, custom ids "req-0", "req-1", ...
std::string write_batch(const std::string& name, std::size_t n,
                        const std::vector<std::string>& models) {
  return write_lines(name, n, [&](std::size_t i) {
    return batch_line("req-" + std::to_string(i), models[i % models.size()]);
  });
}

} // namespace

TEST_CASE("run: every non-blank input line gets one output line, in input order with --ordered") {
  const std::vector<std::string> expected{
    "success",         "failover",     "fallback",      "exhausted",   "unknown-model",
    "ctx-no-fallback", "ctx-fallback", "no-fallbacks",  "mock-rate-limit", "<null>",
    "<null>",          "bad-messages", "bad-method",    "bad-url",     "<null>",
    "<null>",          "last"};
  CHECK(custom_ids(good_run_lines()) == expected);
}

TEST_CASE("run: a successful request gets a chat.completion body and a one-attempt trace") {
  const json& line = good_line("success");
  require_served(line, "solo-1", "solo", "solo-model", "solo reply", 0);
  CHECK(trace(line) == std::vector<std::string>{"solo-1@solo:ok"});
  const json& body = line["response"]["body"];
  CHECK(body["choices"][0]["index"] == 0);
  CHECK(body["choices"][0]["message"]["role"] == "assistant");
  CHECK(body["choices"][0]["finish_reason"] == "stop");
  CHECK(body["created"].is_number_integer());
  CHECK(body["id"].get<std::string>().rfind("chatcmpl-", 0) == 0);
  // The core's estimator: 3 priming + 3 for the message + "user" (1) +
  // "Hello there, router!" (20 bytes -> 5) = 12; "solo reply" (10) -> 3.
  CHECK(body["usage"] == json{{"prompt_tokens", 12}, {"completion_tokens", 3}, {"total_tokens", 15}});
  CHECK(line["switchyard"]["attempts"][0]["latency_ms"].is_number());
}

TEST_CASE("run: token usage counts the text of content parts") {
  const json& body = good_line("last")["response"]["body"];
  // 3 priming + 3 for the message + "user" (1) + "twelve chars" (12 -> 3).
  CHECK(body["usage"]["prompt_tokens"] == 10);
}

TEST_CASE("run: completion ids are unique within a run") {
  std::set<std::string> ids;
  std::size_t served = 0;
  for (const auto& l : good_run_lines())
    if (l["response"].is_object()) {
      ids.insert(l["response"]["body"]["id"].get<std::string>());
      ++served;
    }
  CHECK(served == 5);
  CHECK(ids.size() == served);
}

TEST_CASE("run: weighted failover moves a failed call to the other deployment in the same request") {
  const json& line = good_line("failover");
  require_served(line, "fo-b", "failover", "fo-b", "reply from fo-b", 1);
  CHECK(trace(line) == std::vector<std::string>{"fo-a@failover:InternalServerError",
                                                "fo-b@failover:ok"});
}

TEST_CASE("run: cross-group fallback is served by the fallback group") {
  const json& line = good_line("fallback");
  require_served(line, "fb-dst-1", "fallback-dst", "fb-dst", "reply from fallback", 1);
  CHECK(trace(line) == std::vector<std::string>{"fb-src-1@fallback-src:ServiceUnavailableError",
                                                "fb-dst-1@fallback-dst:ok"});
}

TEST_CASE("run: an exhausted request returns the original error kind with the whole trace") {
  const json& line = good_line("exhausted");
  check_failed(line, "RateLimitError", 429, 1);
  CHECK(trace(line) == std::vector<std::string>{"ex-1@exhausted:RateLimitError",
                                                "ex-fb-1@exhausted-fb:InternalServerError"});
}

TEST_CASE("run: an unknown model is a BadRequestError 400 naming the model") {
  const json& line = good_line("unknown-model");
  check_failed(line, "BadRequestError", 400, 0);
  CHECK(contains(line["error"]["message"].get<std::string>(), "'gpt-9-turbo'"));
  CHECK(line["switchyard"]["attempts"].empty());
}

TEST_CASE("run: mock_testing_context_fallbacks without context_window_fallbacks fails") {
  const json& line = good_line("ctx-no-fallback");
  check_failed(line, "ContextWindowExceededError", 400, 0);
  CHECK(trace(line)
        == std::vector<std::string>{"ctx-small-1@ctx-small:ContextWindowExceededError"});
}

TEST_CASE("run: mock_testing_context_fallbacks with context_window_fallbacks is served by the fallback") {
  const json& line = good_line("ctx-fallback");
  require_served(line, "ctx-large-1", "ctx-large", "ctx-large", "ctx-large reply", 1);
  CHECK(trace(line) == std::vector<std::string>{"ctx-with-fb-1@ctx-with-fb:ContextWindowExceededError",
                                                "ctx-large-1@ctx-large:ok"});
}

TEST_CASE("run: disable_fallbacks stops at the first group's error") {
  const json& line = good_line("no-fallbacks");
  check_failed(line, "ServiceUnavailableError", 503, 0);
  CHECK(trace(line)
        == std::vector<std::string>{"fb-src-1@fallback-src:ServiceUnavailableError"});
}

TEST_CASE("run: a request-level mock_response litellm.RateLimitError fails with 429") {
  const json& line = good_line("mock-rate-limit");
  check_failed(line, "RateLimitError", 429, 0);
  CHECK(trace(line) == std::vector<std::string>{"solo-1@solo:RateLimitError"});
}

TEST_CASE("run: malformed lines each get an error line naming the line and the problem") {
  const auto& lines = good_run_lines();
  // Physical line numbers: line 5 of requests.jsonl is blank.
  const std::string not_json = lines[9]["error"]["message"];
  check_failed(lines[9], "BadRequestError", 400, 0);
  CHECK(lines[9]["custom_id"].is_null());
  CHECK(not_json.rfind("line 11: not valid JSON: ", 0) == 0);
  require_bad_line(lines[10], nullptr, "line 12: custom_id: is required");
  require_bad_line(lines[11], "bad-messages", "line 13: body.messages: expected a non-empty array");
  require_bad_line(lines[12], "bad-method", "line 14: method: expected \"POST\"");
  require_bad_line(lines[13], "bad-url", "line 15: url: expected \"/v1/chat/completions\"");
  require_bad_line(lines[14], nullptr, "line 16: expected a JSON object");
  require_bad_line(lines[15], nullptr, "line 17: custom_id: expected a string");
  // The lines around them were routed normally.
  require_served(lines[16], "solo-1", "solo", "solo-model", "solo reply", 0);
}

TEST_CASE("run: a number too large for a double or too many retries is an error line, not the end of the run") {
  json huge_retries = json::parse(batch_line("many-retries", "solo"));
  huge_retries["body"]["num_retries"] = 1000000;
  const std::string input = temp_file("overflow.jsonl");
  write_text(input, batch_line("before", "solo") + "\n"
                      + R"({"custom_id": "big", "method": "POST", "url": "/v1/chat/completions", "body": {"model": "solo", "timeout": 1e999}})"
                      + "\n" + huge_retries.dump() + "\n" + batch_line("after", "solo") + "\n");
  const cli_result r = run_cli(run_args(data_file("good_config.json"), input, "--ordered"));
  REQUIRE(r.status == 0);
  const auto lines = json_lines(r.out);
  REQUIRE(lines.size() == 4);
  require_served(lines[0], "solo-1", "solo", "solo-model", "solo reply", 0);
  require_bad_line(lines[1], nullptr, "line 2: not valid JSON: a number is too large");
  require_bad_line(lines[2], "many-retries",
                   "line 3: body.num_retries: expected an integer <= 100");
  require_served(lines[3], "solo-1", "solo", "solo-model", "solo reply", 0);
}

TEST_CASE("run: --ordered output follows input order with --concurrency 8 and mixed latencies") {
  // Every other request takes 15 ms, the rest answer at once: completion
  // order differs from input order, the output must not.
  const std::string input = write_batch("order.jsonl", 200, {"slow", "solo", "solo", "solo"});
  const cli_result r =
    run_cli(run_args(data_file("good_config.json"), input, "--concurrency 8 --ordered"));
  REQUIRE(r.status == 0);
  const auto lines = json_lines(r.out);
  REQUIRE(lines.size() == 200);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CHECK(lines[i]["custom_id"] == "req-" + std::to_string(i));
    CHECK(lines[i]["switchyard"]["model_group"] == (i % 4 == 0 ? "slow" : "solo"));
  }
}

TEST_CASE("run: --output writes the lines to the file and nothing to stdout") {
  const std::string output = temp_file("out.jsonl");
  const cli_result r = run_cli(run_args(data_file("good_config.json"), data_file("requests.jsonl"),
                                        "--ordered --output " + quoted(output)));
  REQUIRE(r.status == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
  CHECK(custom_ids(json_lines(read_text(output))) == custom_ids(good_run_lines()));
}

TEST_CASE("run: --concurrency 1 with the same --seed gives identical runs") {
  const std::string input = write_batch("coin.jsonl", 60, {"coin"});
  const std::string args = run_args(data_file("random_config.json"), input, "--concurrency 1 ");
  const cli_result first = run_cli(args + "--seed 42");
  const cli_result second = run_cli(args + "--seed 42");
  const cli_result other = run_cli(args + "--seed 43");
  REQUIRE(first.status == 0);
  REQUIRE(second.status == 0);
  REQUIRE(other.status == 0);
  REQUIRE(json_lines(first.out).size() == 60);
  CHECK(without_volatile_fields(first.out) == without_volatile_fields(second.out));
  // 60 weighted coin flips with 30% failures: another seed gives other traces.
  CHECK(without_volatile_fields(first.out) != without_volatile_fields(other.out));
}

TEST_CASE("run: bad usage exits 2 with a message and the usage") {
  const std::string config = quoted(data_file("good_config.json"));
  const std::string input = quoted(data_file("requests.jsonl"));
  const std::vector<std::pair<std::string, std::string>> cases{
    {"run --input " + input, "--config FILE is required"},
    {"run --config " + config, "--input FILE is required"},
    {"run --config " + config + " --input " + input + " --frobnicate 3", "unknown option '--frobnicate'"},
    {"run --config " + config + " --input " + input + " --concurrency many",
     "--concurrency: expected a whole number >= 1, got 'many'"},
    {"run --config " + config + " --input " + input + " --concurrency 0",
     "--concurrency: expected a whole number >= 1, got '0'"},
    {"run --config " + config + " --input " + input + " --seed -1",
     "--seed: expected a whole number"},
    {"run --config", "--config needs a value"},
    {"explode", "unknown command 'explode'"},
  };
  check_usage_errors(cases);
}

TEST_CASE("run: an invalid config exits 1 listing its problems") {
  const cli_result r = run_cli(run_args(data_file("broken_config.json"), data_file("requests.jsonl")));
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "model_list[0].litellm_params.weight: expected a number >= 0\n"));
}

TEST_CASE("run: an unreadable input file exits 1 with a clear error") {
  const cli_result r =
    run_cli(run_args(data_file("good_config.json"), data_file("no-such-input.jsonl")));
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  CHECK(contains(r.err, "cannot read input file " + data_file("no-such-input.jsonl")
                          + ": No such file or directory"));
}

TEST_CASE("check: a good config prints its summary and exits 0") {
  const cli_result r = run_cli("check --config " + quoted(data_file("good_config.json")));
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  const auto lines = text_lines(r.out);
  REQUIRE(lines.size() >= 2);
  CHECK(lines[0] == "config OK: " + data_file("good_config.json"));
  CHECK(lines[1] == "10 model groups, 11 deployments");
  CHECK(contains(r.out, "  enable_weighted_failover: true\n"));
  CHECK(contains(r.out, "  num_retries:              0\n"));
  CHECK(contains(r.out, "model group failover: 2 deployments\n"
                        "  fo-a  weight=1 order=- rpm=- tpm=- mock\n"
                        "  fo-b  weight=0 order=- rpm=- tpm=- mock\n"));
  CHECK(contains(r.out, "fallbacks:\n  fallback-src -> fallback-dst\n  exhausted -> exhausted-fb\n"));
  CHECK(contains(r.out, "context_window_fallbacks:\n  ctx-with-fb -> ctx-large\n"));
}

TEST_CASE("check: prints each deployment's transport and endpoint, never a key or a "
          "secret from the environment") {
  const std::string env =
    "SY_CHECK_KEY=sk-env-check-5e6f7a8b SY_CHECK_BASE=https://secret-base-9c8d.example.net";
  const cli_result r = run_cli("check --config " + quoted(data_file("real_config.json")), env);
  REQUIRE(r.status == 0);
  INFO(r.out);
  CHECK(contains(r.out, "  chat-openai     weight=- order=- rpm=- tpm=- openai "
                        "https://api.openai.com/v1/chat/completions\n"));
  CHECK(contains(r.out, "  chat-azure      weight=- order=- rpm=- tpm=- azure "
                        "https://eastus.openai.azure.com/openai/deployments/eastus-gpt4o/"
                        "chat/completions?api-version=2024-10-21\n"));
  CHECK(contains(r.out, "  chat-anthropic  weight=- order=- rpm=- tpm=- anthropic "
                        "<redacted api_base>/v1/messages\n"));
  CHECK(contains(r.out, "  chat-mock       weight=- order=- rpm=- tpm=- mock\n"));
  for (const char* secret : {"sk-literal-check-7a1b2c3d", "sk-env-check-5e6f7a8b",
                             "secret-base-9c8d"}) {
    INFO(secret);
    CHECK_FALSE(contains(r.out, secret));
    CHECK_FALSE(contains(r.err, secret));
  }
}

TEST_CASE("check: a real deployment without a key is a load error at its api_key") {
  const cli_result r = run_cli("check --config " + quoted(data_file("real_config.json")),
                               "env -u SY_CHECK_KEY SY_CHECK_BASE=https://b.example");
  CHECK(r.status == 1);
  CHECK(contains(r.err, "model_list[1].litellm_params.api_key: environment variable "
                        "SY_CHECK_KEY is not set\n"));
}

TEST_CASE("check: a broken config prints every problem with its path and exits 1") {
  const cli_result r = run_cli("check --config " + quoted(data_file("broken_config.json")));
  CHECK(r.status == 1);
  CHECK(r.out.empty());
  for (const char* expected : {
         "model_list[0].litellm_params.weight: expected a number >= 0\n",
         "model_list[1].model_name: is required\n",
         "model_list[2].litellm_params.mock_failure_rate: expected a number between 0 and 1\n",
         "model_list[2].litellm_params.mock_failure: unknown error kind",
         "router_settings.routing_strategy: unknown routing strategy 'fastest-please'",
         "router_settings.num_retries: expected an integer >= 0\n",
       }) {
    INFO(expected);
    CHECK(contains(r.err, expected));
  }
  CHECK(contains(r.err, "has 6 problems:\n"));
}

TEST_CASE("check: a missing environment variable is a problem naming the field") {
  const cli_result r = run_cli("check --config " + quoted(data_file("secret_config.json")),
                               "env -u SY_TEST_SECRET");
  CHECK(r.status == 1);
  CHECK(contains(r.err, "model_list[0].litellm_params.api_key: environment variable "
                        "SY_TEST_SECRET is not set\n"));
  CHECK(contains(r.err, "model_list[1].litellm_params.api_key: "));
}

TEST_CASE("secrets resolved from the environment never appear in check or run output") {
  const std::string planted = "sk-planted-5e6f7a8b9c";
  const std::string env = "SY_TEST_SECRET=" + planted + " SWITCHYARD_LOG_LEVEL=trace";
  const cli_result check = run_cli("check --config " + quoted(data_file("secret_config.json")), env);
  REQUIRE(check.status == 0);
  CHECK(contains(check.out, "secretive-1"));
  const cli_result run = run_cli(
    run_args(data_file("secret_config.json"), data_file("secret_requests.jsonl"), "--seed 5"), env);
  REQUIRE(run.status == 0);
  REQUIRE(json_lines(run.out).size() == 3);
  for (const cli_result* r : {&check, &run}) {
    CHECK_FALSE(contains(r->out, planted));
    CHECK_FALSE(contains(r->err, planted));
  }
}

TEST_CASE("demo: routes the requests and prints a table consistent with itself") {
  const cli_result r = run_cli("demo --requests 500 --concurrency 64 --seed 3");
  REQUIRE(r.status == 0);
  INFO(r.out);
  std::map<std::string, std::vector<long>> rows; // id -> calls, served, failed
  std::map<std::string, long> failed_calls_routed;  // id -> sum of "id -> ..." rows
  std::string section;
  for (const auto& line : text_lines(r.out)) {
    if (!line.empty() && line[0] != ' ') {
      section = line;
      continue;
    }
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;)
      words.push_back(w);
    if (section == "per deployment (from attempt traces)" && words.size() == 5
        && words[0] != "deployment")
      rows[words[0]] = {std::stol(words[2]), std::stol(words[3]), std::stol(words[4])};
    if (section == "failed calls, by where the request went next" && words.size() >= 4)
      failed_calls_routed[words[0]] += std::stol(words.back());
  }
  REQUIRE(rows.size() == 3);
  long total_served = 0;
  for (const auto& [id, v] : rows) {
    CHECK(v[0] == v[1] + v[2]);
    total_served += v[1];
  }
  // No call of gpt-4o-mini fails, so every request is served exactly once.
  CHECK(total_served == 500);
  CHECK(rows["westus3-mini"][2] == 0);
  // eastus2 serves its first 200 calls, then every call fails.
  CHECK(rows["eastus2"][1] == 200);
  CHECK(rows["eastus2"][2] > 0);
  // Every failed call went somewhere: the routes table accounts for each.
  for (const auto& [id, v] : rows)
    CHECK(failed_calls_routed[id] == v[2]);
  CHECK(contains(r.out, "  eastus2          gpt-4o       weight 50   fails 100% of calls "
                        "(InternalServerError) after its first 200 calls\n"));
  CHECK(contains(r.out, "  requests     500  (concurrency 64, seed 3)\n"));
  CHECK(contains(r.out, "  errors       0\n"));
  CHECK(contains(r.out, "latency      p50 "));
  CHECK(contains(r.out, "throughput   "));
  const std::string summary = "eastus2 failed " + std::to_string(rows["eastus2"][2]) + " calls: ";
  CHECK(contains(r.out, summary));
  CHECK(contains(r.out, "failed over to northcentralus in the same request"));
  CHECK(contains(r.out, "; 0 of 500 requests reached the caller as errors.\n"));
}

TEST_CASE("logging: quiet by default, SWITCHYARD_LOG_LEVEL=info shows the run's info lines") {
  const std::string args = run_args(data_file("good_config.json"), data_file("requests.jsonl"));
  const cli_result quiet = run_cli(args);
  REQUIRE(quiet.status == 0);
  CHECK(quiet.err.empty());
  const cli_result chatty = run_cli(args, "SWITCHYARD_LOG_LEVEL=info");
  REQUIRE(chatty.status == 0);
  CHECK(contains(chatty.err, "[info] run: 10 model groups, 11 deployments;"));
  CHECK(contains(chatty.err, "[info] run: wrote 17 result lines from 18 input lines"));
  // Logs never mix into the results on stdout.
  CHECK(json_lines(chatty.out).size() == 17);
}

TEST_CASE("check: warns about fallback cycles and names them") {
  const std::string file = temp_file("cycle_config.json");
  write_text(file, R"({"model_list": [
      {"model_name": "a", "litellm_params": {"model": "openai/a", "mock_response": "x"}},
      {"model_name": "b", "litellm_params": {"model": "openai/b", "mock_response": "x"}},
      {"model_name": "c", "litellm_params": {"model": "openai/c", "mock_response": "x"}}],
    "router_settings": {"fallbacks": [{"a": ["b"]}, {"b": ["c"]}],
                        "context_window_fallbacks": [{"c": ["a"]}]}})");
  const cli_result r = run_cli("check --config " + quoted(file));
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "warning: fallback cycle: a -> b -> c -> a\n"));
  const cli_result good = run_cli("check --config " + quoted(data_file("good_config.json")));
  CHECK_FALSE(contains(good.out, "warning: fallback cycle"));
}

TEST_CASE("demo --scenario outage: each resilience rule off and on, on one workload") {
  const cli_result r = run_cli("demo --scenario outage --requests 400 --concurrency 32 --seed 3");
  REQUIRE(r.status == 0);
  INFO(r.out);
  CHECK(contains(r.out, "switchyard demo --scenario outage: 400 requests for gpt-4o"));
  CHECK(contains(r.out, "extra calls (retry_budget 0.1, 10/s, 1 s)"));
  CHECK(contains(r.out, "errors (panic_threshold 50)"));
  CHECK(contains(r.out, "p99 latency ms (hedge_after_ms 8)"));
  const cli_result bad = run_cli("demo --scenario flood");
  CHECK(bad.status == 2);
  CHECK(contains(bad.err, "--scenario: unknown scenario 'flood'; expected: outage"));
}
