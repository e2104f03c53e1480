// `switchyard run` as a process against the test upstream: an Azure
// primary that answers 429, an OpenAI secondary, an Anthropic fallback.

#include "support/cli_runner.hpp"
#include "transport/transport_test.hpp"

#include <map>
#include <set>

using namespace switchyard;
using namespace switchyard::test;
using json = nlohmann::json;

TEST_CASE("run answers every line through 429, next tier and fallback, and leaks no key",
          "[transport][cli]") {
  drop_proxy_env();
  upstream_process up;
  const std::string az_key = "sk-az-7f3e9d1c-env-secret";
  const std::string oa_key = "sk-oa-5b2a8e4f-literal-secret";
  const std::string an_key = "sk-an-9c6d1b3a-env-secret";
  // The secondary fails its first 3 calls, so some lines take the fallback.
  ojson doc = {
    {"model_list",
     {{{"model_name", "chat"},
       {"litellm_params", {{"model", "azure/primary-dep"},
                           {"api_base", scenario_base(up, "status=429,retry_after=7,key=az")},
                           {"api_version", "2024-10-21"},
                           {"api_key", "os.environ/SY_T_AZ_KEY"},
                           {"order", 1}}},
       {"model_info", {{"id", "azure-primary"}}}},
      {{"model_name", "chat"},
       {"litellm_params", {{"model", "openai/gpt-4o-mini"},
                           {"api_base", scenario_base(up, "status=500,fail_first=3,key=oa") + "/v1"},
                           {"api_key", oa_key},
                           {"extra_headers", {{"X-Org-Token", "os.environ/SY_T_AZ_KEY"}}},
                           {"order", 2}}},
       {"model_info", {{"id", "openai-secondary"}}}},
      {{"model_name", "claude"},
       {"litellm_params", {{"model", "anthropic/claude-3-5-haiku"},
                           {"api_base", scenario_base(up, "key=an")},
                           {"api_key", "os.environ/SY_T_AN_KEY"}}},
       {"model_info", {{"id", "anthropic-fallback"}}}}}},
    {"router_settings", {{"num_retries", 0}, {"fallbacks", {{{"chat", {"claude"}}}}}}}};
  const std::string config = temp_file("transport_run_config.json");
  write_text(config, doc.dump(2));
  constexpr std::size_t n = 20;
  const std::string input = write_lines("transport_run.jsonl", n, [](std::size_t i) {
    return request_line("line-" + std::to_string(i), chat_body("chat", "hello " + std::to_string(i)));
  });
  const std::string output = temp_file("transport_run_out.jsonl");
  const std::string env = "SY_T_AZ_KEY=" + az_key + " SY_T_AN_KEY=" + an_key
                          + " SWITCHYARD_LOG_LEVEL=debug";
  const cli_result run = run_cli("run --config " + quoted(config) + " --input " + quoted(input)
                                   + " --concurrency 4",
                                 env, output);
  INFO(run.err);
  REQUIRE(run.status == 0);

  std::map<std::string, int> served;
  auto lines = json_lines(run.output_file.empty() ? run.out : run.output_file);
  REQUIRE(lines.size() == n);
  std::set<std::string> ids;
  for (auto line : lines) {
    INFO(line.dump());
    ids.insert(line["custom_id"].get<std::string>());
    REQUIRE(line["response"].is_object());
    CHECK(line["response"]["status_code"] == 200);
    auto& body = line["response"]["body"];
    CHECK(body["object"] == "chat.completion");
    CHECK(body["choices"][0]["message"]["content"] == "Hello from the test upstream");
    CHECK(body["usage"]["prompt_tokens"] == 10);
    const std::string id = body["id"];
    const std::string dep = line["switchyard"]["deployment_id"];
    ++served[dep];
    if (dep == "anthropic-fallback")
      CHECK(id.rfind("msg_", 0) == 0);
    else
      CHECK(id.rfind("chatcmpl-", 0) == 0);
  }
  CHECK(ids.size() == n);
  CHECK(served["azure-primary"] == 0);
  CHECK(served["anthropic-fallback"] == 3);
  CHECK(served["openai-secondary"] == static_cast<int>(n) - 3);
  // The primary was asked until its 429 cooled it, never after.
  const auto az_calls = calls_to(up, "key=az").size();
  CHECK(az_calls >= 1);
  CHECK(az_calls <= 4); // at most the lines in flight when the first 429 came
  for (auto c : calls_to(up, "key=az"))
    CHECK(c["headers"]["api-key"] == az_key);
  for (auto c : calls_to(up, "key=oa"))
    CHECK(c["headers"]["x-org-token"] == az_key);

  // The run logged at debug level, so the keys had every chance to leak.
  CHECK(contains(run.err, "[debug]"));
  for (const std::string& key : {az_key, oa_key, an_key}) {
    INFO(key);
    CHECK_FALSE(contains(run.out, key));
    CHECK_FALSE(contains(run.err, key));
    CHECK_FALSE(contains(run.output_file, key));
    CHECK_FALSE(contains(read_text(output), key));
  }
}
