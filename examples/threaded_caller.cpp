// A standalone multi-threaded program: the router owns its actor system and
// plain threads call it, some with the blocking call, some with callbacks.

#include "switchyard/config.hpp"
#include "switchyard/router.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr const char* config_json = R"({
  "model_list": [
    {"model_name": "gpt-4o", "litellm_params": {"model": "openai/gpt-4o", "weight": 1,
      "mock_response": "primary", "mock_latency_ms": 1}, "model_info": {"id": "primary"}},
    {"model_name": "gpt-4o-mini", "litellm_params": {"model": "openai/gpt-4o-mini",
      "mock_response": "mini"}, "model_info": {"id": "mini"}}
  ],
  "router_settings": {"fallbacks": [{"gpt-4o": ["gpt-4o-mini"]}], "num_retries": 0}
})";

switchyard::chat_request make_request(const std::string& model, int i) {
  switchyard::chat_request r;
  r.model = model;
  r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "question " + std::to_string(i)}}});
  return r;
}

} // namespace

int main() {
  switchyard::router router{switchyard::load_config(nlohmann::ordered_json::parse(config_json))};

  constexpr int threads = 4;
  constexpr int per_thread = 250;
  std::atomic<int> ok{0};
  std::atomic<int> wrong{0};

  // Half the threads block on each call.
  auto blocking = [&](int t) {
    for (int i = 0; i < per_thread; ++i) {
      auto r = router.complete(make_request("gpt-4o", i));
      (r.ok && r.deployment_id == "primary" ? ok : wrong)++;
    }
  };
  // The other half fire callbacks and wait for all of them at the end. Each
  // asks for a failing mock so the fallback group answers.
  std::mutex m;
  std::condition_variable cv;
  int pending = 0;
  auto callbacks = [&](int t) {
    for (int i = 0; i < per_thread; ++i) {
      {
        std::lock_guard<std::mutex> g{m};
        ++pending;
      }
      auto req = make_request("gpt-4o", i);
      req.mock.kind = switchyard::mock_spec::mode::fail;
      req.mock.error = switchyard::router_error::make(
        switchyard::error_kind::service_unavailable, "primary overloaded");
      router.async_complete(std::move(req), [&](switchyard::route_result r) {
        // The request-level mock fails every hop, so the caller gets the
        // original error after the fallback hop: exactly one answer each.
        bool expected = !r.ok && r.error.kind == switchyard::error_kind::service_unavailable
                        && r.attempts.size() == 2 && r.attempts[1].model_group == "gpt-4o-mini";
        (expected ? ok : wrong)++;
        std::lock_guard<std::mutex> g{m};
        if (--pending == 0)
          cv.notify_all();
      });
    }
  };

  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back(t % 2 == 0 ? std::function<void(int)>(blocking)
                                 : std::function<void(int)>(callbacks),
                      t);
  for (auto& th : pool)
    th.join();
  {
    std::unique_lock<std::mutex> g{m};
    cv.wait(g, [&] { return pending == 0; });
  }

  std::cout << "answered as expected: " << ok << " of " << threads * per_thread
            << ", unexpected: " << wrong << "\n";
  return ok == threads * per_thread && wrong == 0 ? 0 : 1;
}
