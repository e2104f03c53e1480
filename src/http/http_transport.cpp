#include "switchyard/http_transport.hpp"

#include "switchyard/provider.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>
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

// The calls in flight, so that stop() can end them.
struct call_registry {
  std::mutex mutex;
  bool stopped = false;
  std::unordered_map<http_call*, std::weak_ptr<http_call>> live;

  void erase(http_call* c) {
    std::lock_guard<std::mutex> lock(mutex);
    live.erase(c);
  }
};

// One call's state, touched only on the client's I/O thread (the
// callbacks), or by stop() once the client's cancel() has returned.
struct http_call {
  std::shared_ptr<call_registry> registry;
  std::shared_ptr<const provider_endpoint> endpoint;
  request_ptr request;
  std::shared_ptr<call_sink> sink;
  /// Weak: the client holds this call's callbacks until it ends.
  std::weak_ptr<http_client> client;
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

  bool streaming_ok() const { return stream && status >= 200 && status < 300; }

  ~http_call() { registry->erase(this); }

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
          if (auto c = client.lock(); c && id.load())
            c->cancel(id.load());
          return;
        case stream_decoder::event::kind::done:
          break;
      }
    }
    events.clear();
  }

  void on_head(long s, const http_headers& h) {
    status = s;
    headers = h;
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
    auto answer = decode_response(*endpoint, status, headers, body, now);
    if (!answer.ok) {
      fail(std::move(answer.error));
      return;
    }
    call_outcome o;
    o.ok = true;
    o.content = std::move(answer.content);
    o.finish_reason = answer.finish_reason.empty() ? "stop" : answer.finish_reason;
    o.response = std::move(answer.completion);
    o.prompt_tokens = answer.prompt_tokens;
    o.completion_tokens = answer.completion_tokens;
    done(std::move(o));
  }
};

class http_handle final : public call_handle {
public:
  http_handle(std::shared_ptr<http_client> client, std::uint64_t id)
    : client_(std::move(client)), id_(id) {}
  void cancel() noexcept override { client_->cancel(id_); }

private:
  std::shared_ptr<http_client> client_;
  std::uint64_t id_;
};

class no_op_handle final : public call_handle {
public:
  void cancel() noexcept override {}
};

class http_transport final : public transport {
public:
  explicit http_transport(http_client_options options)
    : client_(std::make_shared<http_client>(options)) {}

  void stop() override {
    std::vector<std::shared_ptr<http_call>> calls;
    {
      std::lock_guard<std::mutex> lock(registry_->mutex);
      registry_->stopped = true;
      for (auto& [p, w] : registry_->live)
        if (auto c = w.lock())
          calls.push_back(std::move(c));
    }
    for (auto& c : calls) {
      // Once cancel() has returned, the I/O thread never touches the call.
      client_->cancel(c->id.load());
      c->done(shutdown_outcome());
    }
  }

  call_handle_ptr start(const call_spec& spec, std::shared_ptr<call_sink> sink) override {
    const auto& d = *spec.deployment;
    if (!d.endpoint) {
      call_outcome o;
      o.error = router_error::make(error_kind::api_connection,
                                   "deployment '" + d.id + "' has no endpoint to call");
      sink->on_done(std::move(o));
      return std::make_unique<no_op_handle>();
    }
    const bool stream = spec.request->stream;
    auto built = build_upstream_request(*d.endpoint, *spec.request, stream);
    if (!built.ok) {
      call_outcome o;
      o.error = std::move(built.error);
      sink->on_done(std::move(o));
      return std::make_unique<no_op_handle>();
    }
    auto call = std::make_shared<http_call>();
    call->registry = registry_;
    call->endpoint = d.endpoint;
    call->request = spec.request;
    call->sink = std::move(sink);
    call->client = client_;
    call->stream = stream;

    http_call_options options;
    options.tls = d.endpoint->tls;
    if (stream)
      options.idle_timeout = whole_ms(spec.timeout);
    else
      options.total_timeout = whole_ms(spec.timeout);
    http_call_events events;
    events.on_head = [call](long s, const http_headers& h) { call->on_head(s, h); };
    events.on_body = [call](std::string_view b) { call->on_body(b); };
    events.on_done = [call](http_result r) { call->on_done(std::move(r)); };
    const auto id = client_->start(std::move(built.http), options, std::move(events));
    call->id.store(id);
    bool stopped;
    {
      std::lock_guard<std::mutex> lock(registry_->mutex);
      stopped = registry_->stopped;
      if (!stopped)
        registry_->live.emplace(call.get(), call);
    }
    if (stopped) {
      client_->cancel(id);
      call->done(shutdown_outcome());
      return std::make_unique<no_op_handle>();
    }
    return std::make_unique<http_handle>(client_, id);
  }

private:
  std::shared_ptr<http_client> client_;
  std::shared_ptr<call_registry> registry_ = std::make_shared<call_registry>();
};

} // namespace

std::shared_ptr<transport> make_http_transport(http_client_options options) {
  return std::make_shared<http_transport>(options);
}

} // namespace switchyard
