#include "switchyard/http_transport.hpp"

#include "switchyard/provider.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchyard {

namespace {

using steady = std::chrono::steady_clock;

/// The most body a non-streamed answer (or an error body) may have: past
/// it the call fails rather than grow without bound.
constexpr std::size_t max_answer_bytes = 64u << 20;

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

std::chrono::milliseconds whole_ms(seconds_d s) {
  const double ms = s.count() * 1000.0;
  if (!(ms > 0))
    return std::chrono::milliseconds(1);
  // A deadline beyond a day is no deadline the client need track apart.
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::min(ms, 86'400'000.0)) + 0);
}

struct http_call;

// The calls in flight, so that shutdown() can end them. Guarded by its
// mutex: start() and cancel() run on any thread, ends on the I/O thread.
// Cost: one map insert and erase per call.
struct call_registry {
  std::mutex m;
  std::unordered_map<std::uint64_t, std::weak_ptr<http_call>> calls;
  bool stopping = false;

  void erase(std::uint64_t id) {
    std::lock_guard<std::mutex> lock(m);
    calls.erase(id);
  }
  /// The call's id read under the lock that start() holds until the id is
  /// stored: a callback that comes that early still sees it. Then erased.
  std::uint64_t take(const std::atomic<std::uint64_t>& id) {
    std::lock_guard<std::mutex> lock(m);
    const auto v = id.load();
    calls.erase(v);
    return v;
  }
};

// One call's state, touched only on the client's I/O thread (the
// callbacks), or by shutdown() once the client's cancel() has returned
// (after which no callback of the call runs). A whole non-streamed answer
// goes to the sink as this very object (pending_answer): decode() then runs
// on the sink's thread, and nothing else touches the call any more.
struct http_call final : pending_answer, std::enable_shared_from_this<http_call> {
  std::shared_ptr<const provider_endpoint> endpoint;
  request_ptr request;
  std::shared_ptr<call_sink> sink;
  /// Weak: the client holds this call's callbacks until it ends.
  std::weak_ptr<http_client> client;
  std::shared_ptr<call_registry> registry;
  bool stream = false;
  long status = 0;
  http_headers headers;
  std::string body;
  bool too_large = false;
  std::unique_ptr<stream_decoder> decoder;
  steady::time_point started = steady::now();
  std::optional<double> first_token_ms;
  std::atomic<std::uint64_t> id{0};
  bool finished = false;
  /// When the whole answer was in (for Retry-After dates).
  std::chrono::system_clock::time_point received{};

  bool streaming_ok() const { return stream && status >= 200 && status < 300; }

  void done(call_outcome o) {
    if (finished)
      return;
    finished = true;
    o.first_token_ms = first_token_ms;
    sink->on_done(std::move(o));
    sink.reset();
  }

  void fail(router_error e, bool timed_out = false) {
    call_outcome o;
    o.timed_out = timed_out;
    o.error = std::move(e);
    done(std::move(o));
  }

  // A stream's events: chunks to the sink, an in-band error ends the call.
  void handle(std::vector<stream_decoder::event>& events) {
    for (auto& ev : events) {
      if (finished)
        return;
      switch (ev.what) {
        case stream_decoder::event::kind::chunk:
          if (!first_token_ms)
            first_token_ms = ms_between(started, steady::now());
          sink->on_chunk(std::move(ev.chunk));
          break;
        case stream_decoder::event::kind::error:
          fail(std::move(ev.error));
          // Its bytes stop flowing: the provider already said it is over.
          if (auto c = client.lock()) {
            if (const auto i = registry->take(id))
              c->cancel(i);
          }
          return;
        case stream_decoder::event::kind::done:
          break;
      }
    }
    events.clear();
  }

  void on_head(long s, http_headers h) {
    status = s;
    headers = std::move(h);
    if (streaming_ok())
      decoder = make_stream_decoder(*endpoint, *request, std::chrono::system_clock::now());
  }

  void on_body(std::string_view bytes) {
    if (finished)
      return;
    if (decoder) {
      std::vector<stream_decoder::event> events;
      decoder->feed(bytes, events);
      handle(events);
      return;
    }
    if (body.size() + bytes.size() > max_answer_bytes) {
      too_large = true;
      return;
    }
    body.append(bytes);
  }

  void on_done(http_result r) {
    if (finished)
      return;
    if (!r.transport_ok) {
      // No (complete) answer: refused, reset, TLS, a timeout, or a stream
      // cut in the middle.
      std::string cause = r.error;
      if (auto colon = cause.find(": "); colon != std::string::npos
                                         && cause.compare(0, 4, "http") == 0)
        cause = cause.substr(colon + 2);
      if (cause.empty())
        cause = r.timed_out ? "no answer within the timeout" : "the connection failed";
      if (decoder && first_token_ms)
        cause = "the stream was cut after it started: " + cause;
      fail(connection_error(*endpoint, cause, r.timed_out), r.timed_out);
      return;
    }
    const auto now = std::chrono::system_clock::now();
    if (too_large) {
      fail(router_error::make(error_kind::internal_server,
                              "the answer from " + endpoint->host + " is larger than "
                                + std::to_string(max_answer_bytes >> 20) + " MiB"));
      return;
    }
    if (decoder) {
      std::vector<stream_decoder::event> events;
      decoder->finish(events);
      handle(events);
      if (finished)
        return;
      auto summary = decoder->summary();
      call_outcome o;
      o.ok = summary.ok || summary.error.message.empty();
      if (!o.ok) {
        fail(std::move(summary.error));
        return;
      }
      o.content = std::move(summary.content);
      o.finish_reason = summary.finish_reason.empty() ? "stop" : summary.finish_reason;
      o.response = std::move(summary.completion);
      o.prompt_tokens = summary.prompt_tokens;
      o.completion_tokens = summary.completion_tokens;
      done(std::move(o));
      return;
    }
    // The answer as it came, for the sink to decode where it likes.
    received = now;
    finished = true;
    auto s = std::move(sink);
    s->on_answer(shared_from_this());
  }

  call_outcome decode() override {
    call_outcome o;
    auto answer = decode_response(*endpoint, status, headers, body, received);
    if (!answer.ok) {
      o.error = std::move(answer.error);
      return o;
    }
    o.ok = true;
    o.content = std::move(answer.content);
    o.finish_reason = answer.finish_reason.empty() ? "stop" : answer.finish_reason;
    o.response = std::move(answer.completion);
    o.prompt_tokens = answer.prompt_tokens;
    o.completion_tokens = answer.completion_tokens;
    return o;
  }
};

class http_handle final : public call_handle {
public:
  http_handle(std::shared_ptr<http_client> client, std::shared_ptr<call_registry> registry,
              std::uint64_t id)
    : client_(std::move(client)), registry_(std::move(registry)), id_(id) {}
  void cancel() noexcept override {
    client_->cancel(id_);
    registry_->erase(id_);
  }

private:
  std::shared_ptr<http_client> client_;
  std::shared_ptr<call_registry> registry_;
  std::uint64_t id_;
};

call_handle_ptr answer_at_once(call_sink& sink, router_error e);

class no_op_handle final : public call_handle {
public:
  void cancel() noexcept override {}
};

class http_transport final : public transport {
public:
  explicit http_transport(http_client_options options)
    : client_(std::make_shared<http_client>(options)) {}

  call_handle_ptr start(const call_spec& spec, std::shared_ptr<call_sink> sink) override {
    const auto& d = *spec.deployment;
    if (!d.endpoint)
      return answer_at_once(*sink, router_error::make(error_kind::api_connection,
                                                      "deployment '" + d.id
                                                        + "' has no endpoint to call"));
    const bool stream = spec.request->stream;
    auto built = build_upstream_request(*d.endpoint, *spec.request, stream);
    if (!built.ok)
      return answer_at_once(*sink, std::move(built.error));
    auto call = std::make_shared<http_call>();
    call->endpoint = d.endpoint;
    call->request = spec.request;
    call->sink = std::move(sink);
    call->client = client_;
    call->registry = registry_;
    call->stream = stream;

    http_call_options options;
    options.tls = d.endpoint->tls;
    if (stream)
      options.idle_timeout = whole_ms(spec.timeout);
    else
      options.total_timeout = whole_ms(spec.timeout);
    // Plain pointers in the callbacks (stored inline, no allocation each):
    // `owner` keeps the call alive as long as the client holds them.
    http_call_events events;
    auto* c = call.get();
    events.on_head = [c](long s, http_headers h) { c->on_head(s, std::move(h)); };
    events.on_body = [c](std::string_view b) { c->on_body(b); };
    events.on_done = [c](http_result r) {
      c->on_done(std::move(r));
      c->registry->take(c->id);
    };
    events.owner = call;
    // Registered before it starts, so that shutdown() never misses it.
    std::unique_lock<std::mutex> lock(registry_->m);
    if (registry_->stopping) {
      lock.unlock();
      return answer_at_once(*call->sink, stopped_error());
    }
    const auto id = client_->start(std::move(built.http), options, std::move(events));
    call->id.store(id);
    registry_->calls.emplace(id, call);
    return std::make_unique<http_handle>(client_, registry_, id);
  }

  void stop() override {
    // Strong references first: cancel() lets the client drop the call's
    // callbacks, and with them the last reference to the call and to its
    // sink, whose orchestrator would then vanish unanswered.
    std::vector<std::pair<std::uint64_t, std::shared_ptr<http_call>>> live;
    {
      std::lock_guard<std::mutex> lock(registry_->m);
      registry_->stopping = true;
      for (auto& [id, weak] : registry_->calls)
        if (auto call = weak.lock())
          live.emplace_back(id, std::move(call));
      registry_->calls.clear();
    }
    for (auto& [id, call] : live) {
      client_->cancel(id);
      // After cancel() no callback of this call runs: its state is ours.
      call->fail(stopped_error());
    }
  }

private:
  static router_error stopped_error() {
    return router_error::make(error_kind::shutdown,
                              "the router stopped while the call was in flight");
  }

  std::shared_ptr<http_client> client_;
  std::shared_ptr<call_registry> registry_ = std::make_shared<call_registry>();
};

call_handle_ptr answer_at_once(call_sink& sink, router_error e) {
  call_outcome o;
  o.error = std::move(e);
  sink.on_done(std::move(o));
  return std::make_unique<no_op_handle>();
}

} // namespace

std::shared_ptr<transport> make_http_transport(http_client_options options) {
  return std::make_shared<http_transport>(options);
}

} // namespace switchyard
