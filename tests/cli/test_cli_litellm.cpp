// End-to-end scenarios on LiteLLM proxy configurations: the real
// `switchyard` binary runs `run` and `check` on the config.yaml files (and
// request files) under tests/cli/data/litellm/, and each test asserts the
// exact traces (deployment ids, outcomes, fallback_depth, error types and
// codes) that ROUTER_SEMANTICS.md and docs/configuration.md promise.
// `--concurrency 1 --seed N` makes the sequential scenarios deterministic;
// the strategy scenarios that depend on load or chance use counts with a
// tolerance instead.

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using json = nlohmann::json;
using strings = std::vector<std::string>;
using namespace switchyard::test;

const std::string litellm_dir = std::string(SWITCHYARD_TEST_DATA) + "/litellm";

std::string fixture(const std::string& name) {
  return litellm_dir + "/" + name;
}

/// A `run`'s result lines, by position and by custom_id.
struct run_output {
  cli_result raw;
  std::vector<json> lines;
  std::map<std::string, json> by_id;

  const json& operator[](const std::string& id) const {
    auto i = by_id.find(id);
    if (i == by_id.end())
      FAIL("no output line for custom_id " << id);
    return i->second;
  }
};

const std::string sequential = "--concurrency 1 --seed 7";

run_output run_config(const std::string& config, const std::string& input,
                      const std::string& options = sequential, const std::string& env = "") {
  run_output o;
  o.raw = run_cli("run --config " + quoted(config) + " --input " + quoted(input) + " " + options,
                  env);
  INFO(o.raw.err);
  REQUIRE(o.raw.status == 0);
  for (const auto& line : text_lines(o.raw.out)) {
    o.lines.push_back(json::parse(line));
    const json& id = o.lines.back()["custom_id"];
    if (id.is_string())
      o.by_id[id.get<std::string>()] = o.lines.back();
  }
  return o;
}

cli_result check_config(const std::string& config, const std::string& env = "") {
  return run_cli("check --config " + quoted(config), env);
}

/// `n` copies of "deployment@group:outcome".
strings repeated(const std::string& attempt, std::size_t n) {
  return strings(n, attempt);
}

strings concat(strings a, const strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

void check_served(const json& line, const std::string& deployment, const std::string& group,
                  const std::string& content, int depth,
                  const std::string& finish_reason = "stop") {
  INFO(line.dump());
  REQUIRE(line["error"].is_null());
  REQUIRE(line["response"]["status_code"] == 200);
  const json& choice = line["response"]["body"]["choices"][0];
  CHECK(choice["message"]["content"] == content);
  CHECK(choice["finish_reason"] == finish_reason);
  CHECK(line["switchyard"]["deployment_id"] == deployment);
  CHECK(line["switchyard"]["model_group"] == group);
  CHECK(line["switchyard"]["fallback_depth"] == depth);
}

std::string message_of(const json& line) {
  return line["error"]["message"].get<std::string>();
}

std::string batch_line(const std::string& custom_id, const std::string& model,
                       const std::string& content = "hi") {
  return request_line(custom_id, chat_body(model, content));
}

/// `n` requests cycling through `models`, custom ids "r-0", "r-1", ...
std::string write_batch(const std::string& name, std::size_t n, const strings& models) {
  return write_lines(name, n, [&](std::size_t i) {
    return batch_line("r-" + std::to_string(i), models[i % models.size()]);
  });
}

/// How many requests each deployment served (errors under "<error>").
std::map<std::string, int> served_counts(const std::vector<json>& lines) {
  std::map<std::string, int> n;
  for (const auto& l : lines)
    ++n[l["switchyard"]["deployment_id"].is_null()
          ? "<error>"
          : l["switchyard"]["deployment_id"].get<std::string>()];
  return n;
}

/// A copy of a fixture with one piece of text replaced, for variants that
/// differ from it in a single setting.
std::string variant(const std::string& name, const std::string& from, const std::string& to,
                    const std::string& new_name) {
  std::string text = read_text(fixture(name));
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  const std::string path = temp_file(new_name);
  write_text(path, text);
  return path;
}

/// rpm/tpm windows start on whole minutes of the monotonic clock (the
/// binary's steady_clock is the same CLOCK_MONOTONIC): start a run that
/// counts per minute only when at least `needed` is left of the minute, so
/// that it cannot straddle two windows.
void wait_for_minute_headroom(std::chrono::seconds needed = std::chrono::seconds(8)) {
  using namespace std::chrono;
  const auto now = steady_clock::now().time_since_epoch();
  const auto into_minute = now - duration_cast<minutes>(now);
  if (minutes(1) - into_minute < needed)
    std::this_thread::sleep_for(minutes(1) - into_minute + milliseconds(50));
}

} // namespace

// --- strategies by name -----------------------------------------------------

TEST_CASE("litellm e2e: simple-shuffle follows weights, then rpm, and never picks weight 0") {
  const std::string input = write_batch("shuffle.jsonl", 4000, {"weighted", "by-rpm"});
  const run_output run = run_config(fixture("shuffle.yaml"), input, "--seed 11");
  REQUIRE(run.lines.size() == 4000);
  auto n = served_counts(run.lines);
  INFO("w-light " << n["w-light"] << ", w-mid " << n["w-mid"] << ", w-heavy " << n["w-heavy"]
                  << ", r-small " << n["r-small"] << ", r-big " << n["r-big"]);
  CHECK(n["<error>"] == 0);
  CHECK(n["w-zero"] == 0);
  // 2000 requests per group; weights 1:3:6 and rpm 100:300. The bands are
  // about 4 standard deviations of the binomial counts.
  CHECK(n["w-light"] + n["w-mid"] + n["w-heavy"] == 2000);
  CHECK(n["w-light"] == Approx(200).margin(55));
  CHECK(n["w-mid"] == Approx(600).margin(85));
  CHECK(n["w-heavy"] == Approx(1200).margin(90));
  CHECK(n["r-small"] + n["r-big"] == 2000);
  CHECK(n["r-small"] == Approx(500).margin(80));
  CHECK(n["r-big"] == Approx(1500).margin(80));
}

TEST_CASE("litellm e2e: usage-based-routing-v2 keeps each deployment under its rpm and tpm") {
  wait_for_minute_headroom();
  const run_output run = run_config(fixture("usage_v2.yaml"), fixture("usage_v2.jsonl"));
  REQUIRE(run.lines.size() == 9);
  // u-two (rpm 2) and u-three (rpm 3): five requests fit this minute, the
  // sixth finds no deployment under its limits.
  std::map<std::string, int> n;
  for (int i = 0; i < 5; ++i) {
    const json& line = run["metered-" + std::to_string(i)];
    INFO(line.dump());
    REQUIRE(line["error"].is_null());
    const std::string id = line["switchyard"]["deployment_id"];
    ++n[id];
    CHECK(trace(line) == strings{id + "@metered:ok"});
    CHECK(line["response"]["body"]["choices"][0]["message"]["content"] == "from " + id);
  }
  CHECK(n == std::map<std::string, int>{{"u-two", 2}, {"u-three", 3}});
  const json& none_left = run["metered-5"];
  check_failed(none_left, "NoDeploymentsAvailable", 429, 0);
  CHECK(trace(none_left).empty());
  CHECK(message_of(none_left).rfind("No deployments available for selected model", 0) == 0);
  CHECK(contains(message_of(none_left), "Passed model=metered"));
  // ~107 estimated prompt tokens never fit u-tiny's tpm of 20.
  for (int i = 0; i < 3; ++i) {
    const json& line = run["tokens-long-" + std::to_string(i)];
    check_served(line, "u-roomy", "token-metered", "from u-roomy", 0);
    CHECK(trace(line) == strings{"u-roomy@token-metered:ok"});
  }
}

TEST_CASE("litellm e2e: cost-based-routing picks the cheapest deployment under its limits") {
  wait_for_minute_headroom();
  const std::string input = write_batch("priced.jsonl", 6, {"priced"});
  const run_output run = run_config(fixture("cost.yaml"), input);
  REQUIRE(run.lines.size() == 6);
  // c-cheap until its rpm of 2 is used up, then c-mid (costs from
  // model_info); never c-pricey, nor c-unknown whose cost is unknown.
  const strings expected{"c-cheap", "c-cheap", "c-mid", "c-mid", "c-mid", "c-mid"};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const json& line = run.lines[i];
    const std::string content = expected[i] == "c-cheap" ? "cheap" : "mid";
    check_served(line, expected[i], "priced", content, 0);
    CHECK(trace(line) == strings{expected[i] + "@priced:ok"});
  }
}

TEST_CASE("litellm e2e: latency-based-routing settles on the faster deployment") {
  const std::string input = write_batch("timed.jsonl", 30, {"timed"});
  for (const char* seed : {"1", "3"}) {
    INFO("seed " << seed);
    const run_output run = run_config(fixture("latency.yaml"), input,
                                      std::string("--concurrency 1 --seed ") + seed);
    REQUIRE(run.lines.size() == 30);
    auto n = served_counts(run.lines);
    CHECK(n["<error>"] == 0);
    // Unseen deployments count as 0 ms, so l-slow is tried early; once both
    // have samples (2 ms vs 40 ms) l-fast wins every pick.
    CHECK(n["l-slow"] >= 1);
    CHECK(n["l-slow"] <= 3);
    for (std::size_t i = 5; i < run.lines.size(); ++i) {
      INFO("request " << i);
      CHECK(run.lines[i]["switchyard"]["deployment_id"] == "l-fast");
    }
  }
}

TEST_CASE("litellm e2e: check names the valid strategies for an unknown routing_strategy") {
  const std::string valid = "expected one of: cost-based-routing, latency-based-routing, "
                            "least-busy, simple-shuffle, usage-based-routing-v2\n";
  for (const auto& [file, name] :
       std::vector<std::pair<std::string, std::string>>{{"unknown_strategy.yaml", "fastest-first"},
                                                        {"strategy_v1.yaml", "usage-based-routing"}}) {
    INFO(file);
    const cli_result r = check_config(fixture(file));
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(r.err == "switchyard: configuration " + fixture(file) + " has 1 problem:\n"
                     "router_settings.routing_strategy: unknown routing strategy '" + name
                     + "'; " + valid);
    // `run` refuses the same configuration with the same report.
    const cli_result run = run_cli("run --config " + quoted(fixture(file)) + " --input "
                                   + quoted(fixture("alias.jsonl")));
    CHECK(run.status == 1);
    CHECK(run.out.empty());
    CHECK(run.err == r.err);
  }
  for (const char* strategy : {"simple-shuffle", "least-busy", "usage-based-routing-v2",
                               "cost-based-routing", "latency-based-routing"}) {
    INFO(strategy);
    const std::string config = variant("unknown_strategy.yaml", "fastest-first", strategy,
                                       std::string("strategy-") + strategy + ".yaml");
    const cli_result r = check_config(config);
    CHECK(r.status == 0);
    CHECK(contains(r.out, std::string("  routing_strategy:         ") + strategy + "\n"));
  }
}

// --- pre-call checks and order tiers ------------------------------------------

TEST_CASE("litellm e2e: enable_pre_call_checks skips deployments whose context window is too small") {
  wait_for_minute_headroom();
  const run_output run = run_config(fixture("pre_call.yaml"), fixture("pre_call.jsonl"));
  REQUIRE(run.lines.size() == 14);
  // 400 characters: 3 + 3 + 1 + 100 = 107 estimated tokens; m-small has 50.
  for (int i = 0; i < 6; ++i) {
    const json& line = run["long-" + std::to_string(i)];
    check_served(line, "m-large", "mixed-ctx", "from m-large", 0);
    CHECK(trace(line) == strings{"m-large@mixed-ctx:ok"});
  }
  // A short prompt fits either deployment of tiny-ctx.
  CHECK(run["tiny-short"]["error"].is_null());
  // Nothing in tiny-ctx fits: ContextWindowExceededError without a call.
  // context_window_fallbacks is set (non-empty) and has no entry for
  // tiny-ctx, so the error is raised; its generic fallbacks do not apply.
  const json& too_long = run["tiny-long"];
  check_failed(too_long, "ContextWindowExceededError", 400, 0);
  CHECK(trace(too_long).empty());
  CHECK(message_of(too_long)
        == "the request's estimated 107 prompt tokens exceed max_input_tokens of every "
           "deployment of model group 'tiny-ctx' (enable_pre_call_checks)");
  // With context_window_fallbacks the fallback group serves.
  const json& fb = run["tiny-fb-long"];
  check_served(fb, "big", "big-ctx", "from big", 1);
  CHECK(trace(fb) == strings{"big@big-ctx:ok"});
  check_served(run["tiny-fb-short"], "tf-one", "tiny-ctx-fb", "from tf-one", 0);
  // rpm is a pre-call limit too: rl-a (weight 1000, rpm 1) takes the first
  // request of the minute, rl-b the rest.
  check_served(run["rpm-0"], "rl-a", "rpm-limited", "from rl-a", 0);
  for (int i = 1; i < 4; ++i)
    check_served(run["rpm-" + std::to_string(i)], "rl-b", "rpm-limited", "from rl-b", 0);
}

TEST_CASE("litellm e2e: the next order tier of a group serves before cross-group fallbacks") {
  std::string text;
  for (int i = 0; i < 3; ++i)
    text += batch_line("tiered-" + std::to_string(i), "tiered") + "\n";
  for (int i = 0; i < 3; ++i)
    text += batch_line("down-" + std::to_string(i), "tiered-down") + "\n";
  const std::string input = temp_file("order.jsonl");
  write_text(input, text);
  const run_output run = run_config(fixture("order.yaml"), input);
  REQUIRE(run.lines.size() == 6);
  for (int i = 0; i < 3; ++i) {
    const json& line = run["tiered-" + std::to_string(i)];
    check_served(line, "tier2", "tiered", "from tier2", 1);
    CHECK(trace(line) == strings{"tier1@tiered:InternalServerError", "tier2@tiered:ok"});
    CHECK(line["response"]["body"]["model"] == "secondary"); // no provider prefix, as LiteLLM
  }
  // Both tiers down: then the group's fallbacks, one more hop.
  for (int i = 0; i < 3; ++i) {
    const json& line = run["down-" + std::to_string(i)];
    check_served(line, "backup-1", "backup", "from backup", 2);
    CHECK(trace(line) == strings{"down1@tiered-down:ServiceUnavailableError",
                                 "down2@tiered-down:BadGatewayError", "backup-1@backup:ok"});
  }
}

// --- retries ------------------------------------------------------------------

TEST_CASE("litellm e2e: retry_policy and model_group_retry_policy decide the attempts per error kind") {
  const run_output run = run_config(fixture("retries.yaml"), fixture("retries.jsonl"));
  REQUIRE(run.lines.size() == 9);

  // RateLimitErrorRetries: 3 over num_retries 1: four attempts on the only
  // deployment; the mock's message and kind come back.
  const json& rl = run["rl-policy"];
  check_failed(rl, "RateLimitError", 429, 0);
  CHECK(message_of(rl) == "slow down");
  CHECK(trace(rl) == repeated("plain-rl-1@plain-rl:RateLimitError", 4));

  // InternalServerErrorRetries: 0: one attempt, even when the request asks
  // for 5 retries (a retry_policy overrides num_retries).
  for (const char* id : {"ise-policy-zero", "ise-policy-over-request"}) {
    INFO(id);
    check_failed(run[id], "InternalServerError", 500, 0);
    CHECK(trace(run[id]) == strings{"ise-a@plain-ise:InternalServerError"});
  }

  // No entry for 503: num_retries (router 1, then request 3), then the
  // group's fallback serves. Each retry avoids the deployment that just
  // failed: sua-a and sua-b alternate.
  const strings a_then_b = {"sua-a@plain-503:ServiceUnavailableError",
                            "sua-b@plain-503:ServiceUnavailableError"};
  const json& router_retries = run["no-entry-num-retries"];
  check_served(router_retries, "safety-1", "safety", "from safety", 1);
  CHECK(trace(router_retries) == concat(a_then_b, {"safety-1@safety:ok"}));
  const json& request_retries = run["request-num-retries"];
  check_served(request_retries, "safety-1", "safety", "from safety", 1);
  CHECK(trace(request_retries)
        == concat(concat(a_then_b, a_then_b), {"safety-1@safety:ok"}));

  // grp's own policy: InternalServerErrorRetries 2 instead of 0.
  check_failed(run["group-policy"], "InternalServerError", 500, 0);
  CHECK(trace(run["group-policy"])
        == strings{"grp-a@grp:InternalServerError", "grp-b@grp:InternalServerError",
                   "grp-a@grp:InternalServerError"});
  // ... and it replaces retry_policy rather than merging with it: a
  // RateLimitError in grp gets num_retries (1), not RateLimitErrorRetries (3).
  check_failed(run["group-policy-replaces"], "RateLimitError", 429, 0);
  CHECK(trace(run["group-policy-replaces"])
        == strings{"grp-a@grp:RateLimitError", "grp-b@grp:RateLimitError"});

  // A 400 is never retried (BadRequestErrorRetries: 4 notwithstanding) and
  // never goes to the generic fallbacks.
  check_failed(run["bad-request"], "BadRequestError", 400, 0);
  CHECK(trace(run["bad-request"]) == strings{"sua-a@plain-503:BadRequestError"});

  // A deployment's num_retries (2) over the router's (1).
  check_failed(run["deployment-num-retries"], "ServiceUnavailableError", 503, 0);
  CHECK(trace(run["deployment-num-retries"])
        == repeated("dep-retries-1@dep-retries:ServiceUnavailableError", 3));
}

// --- timeouts -----------------------------------------------------------------

TEST_CASE("litellm e2e: litellm_settings.request_timeout, deployment and request timeouts") {
  const run_output run = run_config(fixture("timeouts_litellm.yaml"),
                                    fixture("timeouts_litellm.jsonl"));
  REQUIRE(run.lines.size() == 5);
  // request_timeout 0.05 s against a 200 ms mock: Timeout (408).
  check_failed(run["slow"], "Timeout", 408, 0);
  CHECK(trace(run["slow"]) == strings{"slow-1@slow:Timeout"});
  CHECK(message_of(run["slow"]) == "deployment 'slow-1' did not answer within the timeout");
  check_served(run["fast"], "fast-1", "fast", "fast reply", 0);
  // The request's timeout wins over the router's.
  check_served(run["slow-request-timeout"], "slow-1", "slow", "slow reply", 0);
  // The deployment's timeout (5 s) wins over the router's.
  check_served(run["deployment-timeout"], "slow-patient-1", "slow-patient", "patient reply", 0);
  // The request's timeout wins over the deployment's.
  check_failed(run["request-over-deployment"], "Timeout", 408, 0);
  CHECK(trace(run["request-over-deployment"]) == strings{"slow-patient-1@slow-patient:Timeout"});
}

TEST_CASE("litellm e2e: router timeout over request_timeout, and stream_timeout for streams") {
  const run_output run = run_config(fixture("timeouts_router.yaml"),
                                    fixture("timeouts_router.jsonl"));
  REQUIRE(run.lines.size() == 5);
  // router_settings.timeout (5 s) wins over litellm_settings.request_timeout.
  check_served(run["router-over-litellm"], "slow-1", "slow", "slow reply", 0);
  check_failed(run["deployment-timeout"], "Timeout", 408, 0);
  CHECK(trace(run["deployment-timeout"]) == strings{"slow-impatient-1@slow-impatient:Timeout"});
  // stream: true uses router_settings.stream_timeout (0.05 s) ...
  check_failed(run["stream"], "Timeout", 408, 0);
  CHECK(trace(run["stream"]) == strings{"slow-1@slow:Timeout"});
  // ... which wins over the request's plain timeout ...
  check_failed(run["stream-over-request-timeout"], "Timeout", 408, 0);
  // ... and the deployment's stream_timeout wins over the router's.
  check_served(run["deployment-stream-timeout"], "slow-stream-ok-1", "slow-stream-ok",
               "streamed reply", 0);
}

// --- content policy -----------------------------------------------------------

TEST_CASE("litellm e2e: a content_filter reply goes to content_policy_fallbacks") {
  const run_output run = run_config(fixture("content_policy.yaml"),
                                    fixture("content_policy.jsonl"));
  REQUIRE(run.lines.size() == 4);
  // finish_reason content_filter with a content-policy fallback: a
  // ContentPolicyViolationError (never retried), served by the fallback.
  const json& filtered = run["filtered"];
  check_served(filtered, "lenient-1", "lenient", "here you go", 1);
  CHECK(trace(filtered)
        == strings{"filtered-1@filtered:ContentPolicyViolationError", "lenient-1@lenient:ok"});
  // A raised ContentPolicyViolationError takes the same way.
  const json& raised = run["raises"];
  check_served(raised, "lenient-1", "lenient", "here you go", 1);
  CHECK(trace(raised) == strings{"filtered-raises-1@filtered-raises:ContentPolicyViolationError",
                                 "lenient-1@lenient:ok"});
  // Only generic fallbacks (which never serve a content-policy error): the
  // filtered reply stays a success, finish_reason and all.
  const json& generic = run["generic-only"];
  check_served(generic, "filtered-generic-1", "filtered-generic-only",
               "I cannot help with that.", 0, "content_filter");
  CHECK(trace(generic) == strings{"filtered-generic-1@filtered-generic-only:ok"});
  // disable_fallbacks: the violation is raised, as LiteLLM raises it.
  const json& disabled = run["filtered-no-fallbacks"];
  check_failed(disabled, "ContentPolicyViolationError", 400, 0);
  CHECK(trace(disabled) == strings{"filtered-1@filtered:ContentPolicyViolationError"});
}

TEST_CASE("litellm e2e: a content_filter reply with only `*` fallbacks is served by them") {
  // content_policy_star.yaml: default_fallbacks (the `*` rule) but no
  // content_policy_fallbacks. The issue (and LiteLLM's
  // _should_raise_content_policy_error): a filtered reply becomes a
  // ContentPolicyViolationError when a content-policy fallback OR a `*`
  // default fallback exists. Spec 8: with no content_policy_fallbacks of
  // its own the violation continues into the generic fallbacks, as
  // LiteLLM's "No content_policy_fallback set. Defaulting to fallbacks":
  // the `*` target serves it.
  const std::string input = temp_file("star.jsonl");
  write_text(input, batch_line("filtered", "filtered") + "\n");
  const run_output run = run_config(fixture("content_policy_star.yaml"), input);
  REQUIRE(run.lines.size() == 1);
  const json& line = run["filtered"];
  check_served(line, "lenient-1", "lenient", "here you go", 1);
  CHECK(trace(line) == strings{"filtered-1@filtered:ContentPolicyViolationError",
                               "lenient-1@lenient:ok"});
}

// --- cooldowns ----------------------------------------------------------------

TEST_CASE("litellm e2e: allowed_fails, allowed_fails_policy and cooldown lengths") {
  const run_output run = run_config(fixture("cooldown.yaml"), fixture("cooldown.jsonl"), sequential,
                                    "SWITCHYARD_LOG_LEVEL=info");
  REQUIRE(run.lines.size() == 30);
  const auto check_bad = [&](const std::string& id, const std::string& attempt,
                             const std::string& type, int code) {
    INFO(id);
    check_failed(run[id], type, code, 0);
    CHECK(trace(run[id]) == strings{attempt});
  };
  const auto check_good = [&](const std::string& id, const std::string& deployment,
                              const std::string& group) {
    INFO(id);
    check_served(run[id], deployment, group, "from " + deployment, 0);
    CHECK(trace(run[id]) == strings{deployment + "@" + group + ":ok"});
  };
  // allowed_fails: 2: the third failure starts a 30 s cooldown, and af-good
  // (weight 0, so never picked while af-bad is available) serves.
  for (const char* id : {"af-1", "af-2", "af-3"})
    check_bad(id, "af-bad@af:InternalServerError", "InternalServerError", 500);
  check_good("af-4", "af-good", "af");
  check_good("af-5", "af-good", "af");
  // RateLimitErrorAllowedFails: 0: the first rate limit cools rl-bad down.
  check_bad("rl-1", "rl-bad@afp-rl:RateLimitError", "RateLimitError", 429);
  check_good("rl-2", "rl-good", "afp-rl");
  check_good("rl-3", "rl-good", "afp-rl");
  // TimeoutErrorAllowedFails: 1: the second timeout does.
  check_bad("to-1", "to-bad@afp-timeout:Timeout", "Timeout", 408);
  check_bad("to-2", "to-bad@afp-timeout:Timeout", "Timeout", 408);
  check_good("to-3", "to-good", "afp-timeout");
  check_good("to-4", "to-good", "afp-timeout");
  // The only deployment of a group cooling down: NoDeploymentsAvailable
  // (429) at once, saying when to try again.
  check_bad("solo-1", "solo-1@solo:RateLimitError", "RateLimitError", 429);
  check_failed(run["solo-2"], "NoDeploymentsAvailable", 429, 0);
  CHECK(trace(run["solo-2"]).empty());
  CHECK(message_of(run["solo-2"]) == "No deployments available for selected model, Try again in "
                                     "30 seconds. Passed model=solo");
  // Request cooldown_time 0: no cooldown at all, even past allowed_fails.
  for (const char* id : {"pr-zero-1", "pr-zero-2", "pr-zero-3"})
    check_bad(id, "pr-bad@per-request:InternalServerError", "InternalServerError", 500);
  // Request cooldown_time 0.2 s; a Retry-After of 0.2 s over the router's
  // 30 s; a deployment's cooldown_time of 0.2 s over a Retry-After of 30 s:
  // each is out until a 600 ms request has passed ...
  check_bad("pr-short", "pr-bad@per-request:InternalServerError", "InternalServerError", 500);
  check_good("pr-while-short", "pr-good", "per-request");
  check_bad("ra-1", "ra-bad@retry-after:RateLimitError", "RateLimitError", 429);
  check_good("ra-2", "ra-good", "retry-after");
  check_bad("dc-1", "dc-bad@dep-cooldown:RateLimitError", "RateLimitError", 429);
  check_good("dc-2", "dc-good", "dep-cooldown");
  check_served(run["sleep-1"], "sleeper-1", "sleeper", "zzz", 0);
  // ... then back; pr-bad's next failure takes the router's 30 s.
  check_bad("pr-after-short", "pr-bad@per-request:InternalServerError", "InternalServerError",
            500);
  check_bad("ra-3", "ra-bad@retry-after:RateLimitError", "RateLimitError", 429);
  check_bad("dc-3", "dc-bad@dep-cooldown:RateLimitError", "RateLimitError", 429);
  check_good("pr-while-long", "pr-good", "per-request");
  check_served(run["sleep-2"], "sleeper-1", "sleeper", "zzz", 0);
  check_good("pr-still-long", "pr-good", "per-request");
  // One info line per cooldown started, with its length.
  strings cooldowns;
  for (const auto& l : text_lines(run.raw.err)) {
    const auto at = l.find("deployment '");
    if (at != std::string::npos && contains(l, "cooling down for"))
      cooldowns.push_back(l.substr(at));
  }
  CHECK(cooldowns == strings{"deployment 'af-bad' cooling down for 30 s",
                             "deployment 'rl-bad' cooling down for 30 s",
                             "deployment 'to-bad' cooling down for 30 s",
                             "deployment 'solo-1' cooling down for 30 s",
                             "deployment 'pr-bad' cooling down for 0.2 s",
                             "deployment 'ra-bad' cooling down for 0.2 s",
                             "deployment 'dc-bad' cooling down for 0.2 s",
                             "deployment 'pr-bad' cooling down for 30 s",
                             "deployment 'ra-bad' cooling down for 0.2 s",
                             "deployment 'dc-bad' cooling down for 0.2 s"});
}

TEST_CASE("litellm e2e: default cooldown rules take a failing deployment out after 5 calls") {
  const std::string input = write_batch("flaky.jsonl", 8, {"flaky"});
  const run_output run = run_config(fixture("cooldown_default.yaml"), input);
  REQUIRE(run.lines.size() == 8);
  // More than half of at least 5 calls failed: from the 6th request on,
  // flaky-primary is cooling down and the order-2 deployment serves at once.
  for (int i = 0; i < 8; ++i) {
    INFO("request " << i);
    const json& line = run.lines[i];
    if (i < 5) {
      check_served(line, "flaky-secondary", "flaky", "from secondary", 1);
      CHECK(trace(line)
            == strings{"flaky-primary@flaky:InternalServerError", "flaky-secondary@flaky:ok"});
    } else {
      check_served(line, "flaky-secondary", "flaky", "from secondary", 0);
      CHECK(trace(line) == strings{"flaky-secondary@flaky:ok"});
    }
  }
}

// --- aliases, litellm_settings, formats ---------------------------------------

TEST_CASE("litellm e2e: model_group_alias routes the alias to its group") {
  const run_output run = run_config(fixture("alias.yaml"), fixture("alias.jsonl"));
  REQUIRE(run.lines.size() == 4);
  check_served(run["alias"], "gpt-4o-eastus2", "gpt-4o", "from gpt-4o", 0);
  CHECK(trace(run["alias"]) == strings{"gpt-4o-eastus2@gpt-4o:ok"});
  CHECK(run["alias"]["response"]["body"]["model"] == "gpt-4o-eastus2");
  // The object form; the target group's fallbacks apply.
  check_served(run["alias-object"], "gpt-4o-eastus2", "gpt-4o", "from gpt-4o", 1);
  CHECK(trace(run["alias-object"]) == strings{"claude-sonnet-1@claude-sonnet:ServiceUnavailableError",
                                              "gpt-4o-eastus2@gpt-4o:ok"});
  check_served(run["group"], "gpt-4o-eastus2", "gpt-4o", "from gpt-4o", 0);
  check_failed(run["unknown"], "BadRequestError", 400, 0);
  CHECK(trace(run["unknown"]).empty());
  CHECK(contains(message_of(run["unknown"]), "'gpt-5'"));
}

TEST_CASE("litellm e2e: litellm_settings supply num_retries, fallbacks and default_fallbacks") {
  const std::string env = "SY_E2E_PRIMARY_KEY=sk-e2e-planted-91c2";
  const run_output run = run_config(fixture("settings.yaml"), fixture("settings.jsonl"),
                                    sequential, env);
  REQUIRE(run.lines.size() == 4);
  // num_retries 1 and fallbacks from litellm_settings.
  check_served(run["fallback"], "secondary-1", "secondary", "from secondary", 1);
  CHECK(trace(run["fallback"]) == concat(repeated("primary-1@primary:ServiceUnavailableError", 2),
                                         {"secondary-1@secondary:ok"}));
  // default_fallbacks (the `*` rule) from litellm_settings.
  check_served(run["default-fallback"], "catch-all-1", "catch-all", "from catch-all", 1);
  CHECK(trace(run["default-fallback"]) == concat(repeated("orphan-1@orphan:InternalServerError", 2),
                                                 {"catch-all-1@catch-all:ok"}));
  // A request's num_retries wins over them.
  check_served(run["request-retries"], "secondary-1", "secondary", "from secondary", 1);
  CHECK(trace(run["request-retries"])
        == strings{"primary-1@primary:ServiceUnavailableError", "secondary-1@secondary:ok"});
  // The group that is itself the `*` target is never its own fallback.
  check_served(run["catch-all"], "catch-all-1", "catch-all", "from catch-all", 0);
  CHECK_FALSE(contains(run.raw.out, "sk-e2e-planted-91c2"));
  CHECK_FALSE(contains(run.raw.err, "sk-e2e-planted-91c2"));

  // check: the merged settings; general_settings (with unset os.environ/
  // references) and environment_variables are ignored, with one info line.
  const cli_result check = check_config(fixture("settings.yaml"), env + " SWITCHYARD_LOG_LEVEL=info");
  REQUIRE(check.status == 0);
  CHECK(contains(check.out, "  num_retries:              1\n"));
  CHECK(contains(check.out, "  timeout:                  30 s\n"));
  CHECK(contains(check.out, "  cooldown_time:            0 s\n"));
  CHECK(contains(check.out, "fallbacks:\n  primary -> secondary\n"));
  CHECK(contains(check.out, "default_fallbacks:\n  * -> catch-all\n"));
  CHECK(contains(check.err, "config: ignoring sections Switchyard does not use: "
                            "general_settings, environment_variables"));
  // environment_variables is not applied: the key must come from the process.
  const cli_result unset = check_config(fixture("settings.yaml"), "env -u SY_E2E_PRIMARY_KEY");
  CHECK(unset.status == 1);
  CHECK(contains(unset.err, "model_list[0].litellm_params.api_key: environment variable "
                            "SY_E2E_PRIMARY_KEY is not set\n"));
}

TEST_CASE("litellm e2e: router_settings wins over litellm_settings per key, even with 0 and an empty list") {
  std::string text;
  for (const char* id : {"fallback", "request-retries"})
    text += batch_line(id, "primary") + "\n";
  const std::string input = temp_file("precedence.jsonl");
  write_text(input, text);
  const run_output run = run_config(fixture("settings_precedence.yaml"), input);
  REQUIRE(run.lines.size() == 2);
  // num_retries 0 and fallbacks [] from router_settings; default_fallbacks,
  // which router_settings does not set, still comes from litellm_settings.
  check_served(run["fallback"], "catch-all-1", "catch-all", "from catch-all", 1);
  CHECK(trace(run["fallback"])
        == strings{"primary-1@primary:ServiceUnavailableError", "catch-all-1@catch-all:ok"});
  const cli_result check = check_config(fixture("settings_precedence.yaml"));
  REQUIRE(check.status == 0);
  CHECK(contains(check.out, "  num_retries:              0\n"));
  CHECK_FALSE(contains(check.out, "primary -> secondary"));
}

TEST_CASE("litellm e2e: the YAML config and its JSON twin route identically") {
  const std::string env = "SY_E2E_PRIMARY_KEY=sk-e2e-twin";
  const run_output yaml = run_config(fixture("settings.yaml"), fixture("settings.jsonl"),
                                     sequential, env);
  const run_output json_run = run_config(fixture("settings.json"), fixture("settings.jsonl"),
                                         sequential, env);
  REQUIRE(yaml.lines.size() == 4);
  CHECK(without_volatile_fields(yaml.lines) == without_volatile_fields(json_run.lines));
  // check prints the same summary, but for the file name.
  const cli_result a = check_config(fixture("settings.yaml"), env);
  const cli_result b = check_config(fixture("settings.json"), env);
  REQUIRE(a.status == 0);
  REQUIRE(b.status == 0);
  auto la = text_lines(a.out);
  auto lb = text_lines(b.out);
  REQUIRE(la.size() > 1);
  CHECK(la[0] == "config OK: " + fixture("settings.yaml"));
  CHECK(lb[0] == "config OK: " + fixture("settings.json"));
  la.erase(la.begin());
  lb.erase(lb.begin());
  CHECK(la == lb);
}

TEST_CASE("litellm e2e: a broken YAML config and its JSON twin report the same problems at the same paths") {
  const cli_result yaml = check_config(fixture("broken.yaml"));
  const cli_result json_check = check_config(fixture("broken.json"));
  CHECK(yaml.status == 1);
  CHECK(json_check.status == 1);
  CHECK(yaml.out.empty());
  CHECK(json_check.out.empty());
  auto ly = text_lines(yaml.err);
  auto lj = text_lines(json_check.err);
  REQUIRE(ly.size() == 12);
  REQUIRE(lj.size() == 12);
  CHECK(ly[0] == "switchyard: configuration " + fixture("broken.yaml") + " has 11 problems:");
  CHECK(lj[0] == "switchyard: configuration " + fixture("broken.json") + " has 11 problems:");
  ly.erase(ly.begin());
  lj.erase(lj.begin());
  CHECK(ly == lj);
  strings paths;
  for (const auto& l : ly)
    paths.push_back(l.substr(0, l.find(": ")));
  CHECK(paths == strings{"model_list[0].litellm_params.weight",
                         "model_list[0].litellm_params.order",
                         "model_list[0].model_info.max_input_tokens",
                         "model_list[1].litellm_params.mock_response",
                         "litellm_settings.num_retries",
                         "litellm_settings.request_timeout",
                         "router_settings.routing_strategy",
                         "router_settings.retry_policy.TimeoutRetries",
                         "router_settings.fallbacks[0].gpt-4o[0]",
                         "router_settings.allowed_fails_policy.RateLimitErrorAllowedFails",
                         "router_settings.model_group_alias.gpt-4"});
  CHECK(ly[4] == "litellm_settings.num_retries: expected an integer >= 0");
  CHECK(ly[5] == "litellm_settings.request_timeout: expected a number > 0");
  CHECK(ly[8] == "router_settings.fallbacks[0].gpt-4o[0]: unknown model group 'gpt-3.5-turbo'");
  CHECK(ly[10] == "router_settings.model_group_alias.gpt-4: unknown model group 'gpt-5'");
  // general_settings' unset os.environ/ reference is not among them.
  CHECK_FALSE(contains(yaml.err, "SY_E2E_MASTER_KEY_NOT_SET"));
}

TEST_CASE("litellm e2e: general_settings is ignored by check") {
  const cli_result r = check_config(fixture("shuffle.yaml"), "env -u SY_E2E_MASTER_KEY_NOT_SET");
  CHECK(r.status == 0);
  CHECK(r.err.empty());
  CHECK(text_lines(r.out).at(0) == "config OK: " + fixture("shuffle.yaml"));
  CHECK(contains(r.out, "model group by-rpm: 2 deployments\n"
                        "  r-small  weight=- order=- rpm=100 tpm=- mock\n"
                        "  r-big    weight=- order=- rpm=300 tpm=- mock\n"));
}

// --- fallbacks ----------------------------------------------------------------

TEST_CASE("litellm e2e: nested fallbacks, the provider/ prefix and disable_fallbacks") {
  const run_output run = run_config(fixture("nested.yaml"), fixture("nested.jsonl"));
  REQUIRE(run.lines.size() == 4);
  // n-a -> n-b (exhausted) -> n-b's own n-d (exhausted) -> n-d's list skips
  // n-a (asked for) and reaches n-c.
  check_served(run["nested"], "n-c-1", "n-c", "from n-c", 3);
  CHECK(trace(run["nested"]) == strings{"n-a-1@n-a:ServiceUnavailableError",
                                        "n-b-1@n-b:InternalServerError",
                                        "n-d-1@n-d:BadGatewayError", "n-c-1@n-c:ok"});
  check_failed(run["disabled"], "ServiceUnavailableError", 503, 0);
  CHECK(trace(run["disabled"]) == strings{"n-a-1@n-a:ServiceUnavailableError"});
  // From n-b: n-d, then n-d's n-a, whose list skips n-b and reaches n-c.
  check_served(run["from-b"], "n-c-1", "n-c", "from n-c", 3);
  CHECK(trace(run["from-b"]) == strings{"n-b-1@n-b:InternalServerError",
                                        "n-d-1@n-d:BadGatewayError",
                                        "n-a-1@n-a:ServiceUnavailableError", "n-c-1@n-c:ok"});
  // azure/p-x has no entry of its own; `p-x` matches without the prefix.
  check_served(run["provider-prefix"], "n-c-1", "n-c", "from n-c", 1);
  CHECK(trace(run["provider-prefix"])
        == strings{"p-x-1@azure/p-x:RateLimitError", "n-c-1@n-c:ok"});
}

TEST_CASE("litellm e2e: max_fallbacks caps the hops and the original error comes back") {
  const std::string input = temp_file("nested-one.jsonl");
  write_text(input, batch_line("nested", "n-a") + "\n");
  const strings full{"n-a-1@n-a:ServiceUnavailableError", "n-b-1@n-b:InternalServerError",
                     "n-d-1@n-d:BadGatewayError", "n-c-1@n-c:ok"};
  for (int max : {0, 1, 2, 3}) {
    INFO("max_fallbacks " << max);
    const std::string config = variant("nested.yaml", "max_fallbacks: 5",
                                       "max_fallbacks: " + std::to_string(max),
                                       "nested-max" + std::to_string(max) + ".yaml");
    const run_output run = run_config(config, input);
    REQUIRE(run.lines.size() == 1);
    const json& line = run["nested"];
    if (max < 3) {
      // The first hop's error, with every attempt made.
      check_failed(line, "ServiceUnavailableError", 503, max);
      CHECK(trace(line) == strings(full.begin(), full.begin() + 1 + max));
    } else {
      check_served(line, "n-c-1", "n-c", "from n-c", 3);
      CHECK(trace(line) == full);
    }
  }
}
