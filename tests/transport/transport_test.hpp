#pragma once

// Helpers for the end-to-end transport tests: the real router (embedding
// API, its built-in HTTP transport) against the test upstream over
// loopback. A config is built as JSON (the file format) so that load_config
// resolves endpoints, keys and TLS exactly as for a user's file.
//
// Threading: each test owns its upstream and router; the observer below is
// called on the router's workers and only counts under a mutex.

#include "support/process_threads.hpp"
#include "support/upstream_process.hpp"

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchyard::test {

using ojson = nlohmann::ordered_json;

/// The proxies of the machine's environment never reach these loopback
/// tests (the process is a test binary: nothing to restore).
inline void drop_proxy_env() {
  for (const char* v : {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                        "ALL_PROXY", "no_proxy", "NO_PROXY"})
    unsetenv(v);
}

/// `base/scenario/<s>` (or `base` with no scenario): an api_base prefix
/// that makes the upstream play scenario `s` for every call through it.
inline std::string scenario_base(const upstream_process& up, const std::string& s) {
  return up.base_url() + (s.empty() ? "" : "/scenario/" + s);
}

/// One model_list entry: `model` (with its provider prefix), the api_base
/// the dialect needs, and a literal key; `extra` is merged into
/// litellm_params.
inline ojson deployment_entry(const std::string& group, const std::string& id,
                              const std::string& model, const std::string& api_base,
                              const ojson& extra = ojson::object()) {
  ojson p = {{"model", model}, {"api_base", api_base}, {"api_key", "sk-test-" + id + "-secret"}};
  for (auto it = extra.begin(); it != extra.end(); ++it)
    p[it.key()] = it.value();
  return {{"model_name", group}, {"litellm_params", p}, {"model_info", {{"id", id}}}};
}

/// An OpenAI deployment on the upstream, playing `scenario`.
inline ojson openai_at(const upstream_process& up, const std::string& group, const std::string& id,
                       const std::string& scenario = "", const ojson& extra = ojson::object()) {
  return deployment_entry(group, id, "openai/gpt-4o-mini", scenario_base(up, scenario) + "/v1",
                          extra);
}

/// An Azure deployment named `dep-<id>`, api-version 2024-10-21.
inline ojson azure_at(const upstream_process& up, const std::string& group, const std::string& id,
                      const std::string& scenario = "", const ojson& extra = ojson::object()) {
  ojson e = {{"api_version", "2024-10-21"}};
  for (auto it = extra.begin(); it != extra.end(); ++it)
    e[it.key()] = it.value();
  return deployment_entry(group, id, "azure/dep-" + id, scenario_base(up, scenario), e);
}

inline ojson anthropic_at(const upstream_process& up, const std::string& group,
                          const std::string& id, const std::string& scenario = "",
                          const ojson& extra = ojson::object()) {
  return deployment_entry(group, id, "anthropic/claude-3-5-haiku", scenario_base(up, scenario),
                          extra);
}

/// Groups "o", "a" and "n": one deployment each (o1, a1, n1) speaking
/// OpenAI, Azure and Anthropic, all playing `scenario`.
inline std::vector<ojson> three_dialects(const upstream_process& up,
                                         const std::string& scenario = "") {
  return {openai_at(up, "o", "o1", scenario), azure_at(up, "a", "a1", scenario),
          anthropic_at(up, "n", "n1", scenario)};
}

/// The tools list the test upstream's `tool_call` scenario answers to.
inline nlohmann::json weather_tool() {
  return {{{"type", "function"},
           {"function", {{"name", "get_weather"}, {"parameters", {{"type", "object"}}}}}}};
}

/// A config of `deployments` and `settings` (router_settings), no retries
/// unless the settings say.
inline router_config config_of(std::vector<ojson> deployments, ojson settings = ojson::object()) {
  if (!settings.contains("num_retries"))
    settings["num_retries"] = 0;
  ojson doc = {{"model_list", deployments}, {"router_settings", settings}};
  return load_config(doc);
}

/// A request from a body, as a caller's JSON would give it.
inline chat_request request_of(const nlohmann::json& body) {
  auto parsed = parse_chat_request(body);
  if (!parsed.request)
    FAIL("bad test request: " << parsed.error.message);
  return std::move(*parsed.request);
}

inline chat_request ask(const std::string& group, const std::string& text = "hi") {
  return request_of(
    {{"model", group}, {"messages", {{{"role", "user"}, {"content", text}}}}});
}

/// Counts of the router's events, for time-to-first-token and cooldowns.
class counting_observer final : public router_observer {
public:
  struct attempt_seen {
    std::string deployment_id;
    std::optional<error_kind> outcome;
    std::optional<double> first_token_ms;
    std::uint64_t prompt_tokens = 0;
  };
  struct cooldown_seen {
    std::string deployment_id;
    double seconds = 0;
  };
  void on_attempt(const attempt_event& e) override {
    std::lock_guard<std::mutex> lock(m_);
    attempts_.push_back(
      {std::string(e.deployment_id), e.outcome, e.first_token_ms, e.prompt_tokens});
  }
  void on_cooldown(const cooldown_event& e) override {
    if (!e.started)
      return;
    std::lock_guard<std::mutex> lock(m_);
    cooldowns_.push_back({std::string(e.deployment_id), e.seconds});
  }
  std::vector<attempt_seen> attempts() const {
    std::lock_guard<std::mutex> lock(m_);
    return attempts_;
  }
  std::vector<cooldown_seen> cooldowns() const {
    std::lock_guard<std::mutex> lock(m_);
    return cooldowns_;
  }

private:
  mutable std::mutex m_;
  std::vector<attempt_seen> attempts_;
  std::vector<cooldown_seen> cooldowns_;
};

/// What a streamed request delivered: its chunks in order, then its answer.
struct stream_capture {
  std::mutex m;
  std::condition_variable cv;
  std::vector<nlohmann::json> chunks;
  std::optional<route_result> result;
  bool chunk_after_done = false;

  chunk_handler on_chunk() {
    return [this](const nlohmann::json& c) {
      std::lock_guard<std::mutex> lock(m);
      chunk_after_done = chunk_after_done || result.has_value();
      chunks.push_back(c);
      cv.notify_all();
    };
  }
  completion_handler on_done() {
    return [this](route_result r) {
      std::lock_guard<std::mutex> lock(m);
      result = std::move(r);
      cv.notify_all();
    };
  }
  /// Waits (bounded) for the answer; the test fails without one.
  route_result wait(std::chrono::seconds cap = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(m);
    if (!cv.wait_for(lock, cap, [&] { return result.has_value(); }))
      FAIL("no answer within " << cap.count() << " s");
    return *result;
  }
  /// Waits (bounded) until at least `n` chunks arrived.
  void wait_chunks(std::size_t n, std::chrono::seconds cap = std::chrono::seconds(30)) {
    std::unique_lock<std::mutex> lock(m);
    if (!cv.wait_for(lock, cap, [&] { return chunks.size() >= n || result.has_value(); }))
      FAIL("fewer than " << n << " chunks within " << cap.count() << " s");
  }
  /// The `delta.content` of every chunk, joined.
  std::string text() {
    std::lock_guard<std::mutex> lock(m);
    std::string out;
    for (auto c : chunks)
      if (c.contains("choices") && !c["choices"].empty()) {
        const auto& d = c["choices"][0]["delta"];
        if (d.contains("content") && d["content"].is_string())
          out += d["content"].get<std::string>();
      }
    return out;
  }
};

/// The calls the upstream received whose path contains `part`.
inline std::vector<nlohmann::json> calls_to(const upstream_process& up, const std::string& part) {
  std::vector<nlohmann::json> out;
  for (auto c : up.calls())
    if (c["path"].get<std::string>().find(part) != std::string::npos)
      out.push_back(c);
  return out;
}

/// Polls `pred` every 10 ms for at most `cap`; false if it never held.
template <class Pred>
bool eventually(Pred pred, std::chrono::seconds cap = std::chrono::seconds(20)) {
  auto until = std::chrono::steady_clock::now() + cap;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

} // namespace switchyard::test
