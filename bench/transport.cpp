#include "transport.hpp"

#include "route.hpp"

#include "upstream_process.hpp" // tests/support: the test upstream as a child

#include <curl/curl.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace switchyard::bench {

std::string bench_chat_body() {
  return nlohmann::json{{"model", "gpt-4o-mini"},
                        {"messages", nlohmann::json::array({{{"role", "user"},
                                                             {"content", "hello"}}})}}
    .dump();
}

struct bare_curl_loop::impl {
  struct call {
    CURL* easy = nullptr;
    load_run* run = nullptr;
    std::uint64_t id = 0;
  };
  struct queued {
    load_run* run;
    std::uint64_t id;
  };

  std::string url;
  std::string body;
  CURLM* multi = nullptr;
  curl_slist* headers = nullptr;
  std::vector<std::unique_ptr<call>> calls; ///< every easy handle made
  std::vector<call*> idle;                  ///< loop thread only
  std::mutex mutex;
  std::vector<queued> queue; ///< guarded by mutex
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::thread::id loop_id;

  static std::size_t discard(char*, std::size_t size, std::size_t n, void*) {
    return size * n;
  }

  // Loop thread only.
  void start(load_run& run, std::uint64_t id) {
    call* c;
    if (idle.empty()) {
      calls.push_back(std::make_unique<call>());
      c = calls.back().get();
      c->easy = curl_easy_init();
      curl_easy_setopt(c->easy, CURLOPT_URL, url.c_str());
      curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body.c_str());
      curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
      curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
      curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, &impl::discard);
      curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(c->easy, CURLOPT_NOPROXY, "*");
      curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
    } else {
      c = idle.back();
      idle.pop_back();
    }
    c->run = &run;
    c->id = id;
    curl_multi_add_handle(multi, c->easy);
  }

  void loop() {
    std::vector<queued> batch;
    while (!stopping.load(std::memory_order_acquire)) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        batch.swap(queue);
      }
      for (auto q : batch)
        start(*q.run, q.id);
      batch.clear();
      int running = 0;
      curl_multi_perform(multi, &running);
      int left = 0;
      while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
        if (m->msg != CURLMSG_DONE)
          continue;
        call* c = nullptr;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &c);
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        const bool ok = m->data.result == CURLE_OK && status == 200;
        curl_multi_remove_handle(multi, m->easy_handle);
        idle.push_back(c);
        // The closed loop's next request is started right here (start()).
        c->run->done(c->id, 1, ok);
      }
      curl_multi_poll(multi, nullptr, 0, 100, nullptr);
    }
  }
};

bare_curl_loop::bare_curl_loop(std::string url, std::string body, std::size_t connections)
  : impl_(std::make_unique<impl>()) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  impl_->url = std::move(url);
  impl_->body = std::move(body);
  impl_->multi = curl_multi_init();
  curl_multi_setopt(impl_->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
  curl_multi_setopt(impl_->multi, CURLMOPT_MAXCONNECTS, static_cast<long>(connections));
  impl_->headers = curl_slist_append(nullptr, "Content-Type: application/json");
  impl_->headers = curl_slist_append(impl_->headers, "Authorization: Bearer sk-bench");
  impl_->thread = std::thread([d = impl_.get()] { d->loop(); });
  // Read by issue() on the loop thread only after a first request was
  // queued, which happens after this constructor returned.
  impl_->loop_id = impl_->thread.get_id();
}

bare_curl_loop::~bare_curl_loop() {
  impl_->stopping.store(true, std::memory_order_release);
  curl_multi_wakeup(impl_->multi);
  impl_->thread.join();
  for (auto& c : impl_->calls) {
    curl_multi_remove_handle(impl_->multi, c->easy);
    curl_easy_cleanup(c->easy);
  }
  curl_multi_cleanup(impl_->multi);
  curl_slist_free_all(impl_->headers);
}

load_run::issue_fn bare_curl_loop::issue() {
  return [d = impl_.get()](load_run& run, std::uint64_t id) {
    if (std::this_thread::get_id() == d->loop_id) {
      d->start(run, id);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(d->mutex);
      d->queue.push_back({&run, id});
    }
    curl_multi_wakeup(d->multi);
  };
}

call_memory_figures measure_call_memory(std::size_t threads, std::uint64_t calls,
                                        double delay_ms, std::uint64_t seed) {
  std::unique_ptr<test::upstream_process> upstream;
  try {
    upstream = std::make_unique<test::upstream_process>();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("the test upstream (node) did not start: ") + e.what());
  }
  const auto base = upstream->base_url();
  char slow[64];
  std::snprintf(slow, sizeof slow, "/scenario/delay_ms=%.0f/v1", delay_ms);
  router_options options;
  options.seed = seed;
  options.threads = threads;
  options.http_client.max_connections_per_host = 0;
  options.http_client.connection_cache = static_cast<std::size_t>(calls) + 64;
  // g0 answers at once (the warm-up), g1 after delay_ms.
  route_bench bench{make_http_config({base + "/v1", base + slow}, 2), options, 2};
  struct counters {
    std::atomic<std::uint64_t> completed{0};
    std::atomic<std::uint64_t> failed{0};
  };
  auto send = [&](counters& c, std::uint64_t n, std::uint64_t group) {
    for (std::uint64_t i = 0; i < n; ++i)
      bench.get().async_complete(bench.request_for(group), [c = &c](route_result r) {
        if (!r.ok)
          c->failed.fetch_add(1, std::memory_order_relaxed);
        c->completed.fetch_add(1, std::memory_order_release);
      });
  };
  auto wait_all = [](counters& c, std::uint64_t n, double seconds) {
    const auto limit = now_ns() + static_cast<std::int64_t>(seconds * 1e9);
    while (c.completed.load(std::memory_order_acquire) < n) {
      if (now_ns() > limit)
        throw std::runtime_error("transport memory: calls never answered");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  // Warm-up: the transport's thread, curl's caches, the codec's first use.
  counters warm;
  send(warm, 16, 0);
  wait_all(warm, 16, 30);
  if (warm.failed.load() > 0)
    throw std::runtime_error("transport memory: the warm-up calls failed");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));

  call_memory_figures m;
  m.calls = calls;
  m.delay_ms = delay_ms;
  m.rss_idle = resident_bytes();
  counters held;
  const auto t0 = now_ns();
  send(held, calls, 1);
  m.rss_in_flight = peak_rss_while(t0 + static_cast<std::int64_t>(delay_ms * 0.8e6), [&] {
    return held.completed.load(std::memory_order_acquire) == 0;
  });
  if (m.rss_in_flight == 0)
    throw std::runtime_error("transport memory: calls answered before RSS was sampled; "
                             "raise the delay");
  m.bytes_per_call = static_cast<double>(m.rss_in_flight - m.rss_idle)
                     / static_cast<double>(calls);
  wait_all(held, calls, delay_ms / 1000 + 60);
  m.failed = held.failed.load();
  return m;
}

} // namespace switchyard::bench
