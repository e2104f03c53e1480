#include "switchyard/mock_transport.hpp"

#include "switchyard/timer_thread.hpp"

#include "switchyard/request_flow.hpp"
#include "switchyard/token_estimate.hpp"

#include <atomic>
#include <chrono>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace switchyard {

namespace {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

class no_op_handle final : public call_handle {
public:
  void cancel() noexcept override {}
};

std::int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

json chunk_body(const std::string& model, std::int64_t created, std::uint64_t number,
                json delta, json finish_reason) {
  return json{{"id", "chatcmpl-mock-" + std::to_string(number)},
              {"object", "chat.completion.chunk"},
              {"created", created},
              {"model", model},
              {"choices", json::array({json{{"index", 0},
                                            {"delta", std::move(delta)},
                                            {"finish_reason", std::move(finish_reason)}}})}};
}

router_error timeout_error(const deployment_config& d, bool stream, bool committed) {
  std::string what = !stream    ? "did not answer within the timeout"
                     : committed ? "stopped streaming: no chunk within stream_timeout"
                                 : "sent no first chunk within the timeout";
  return router_error::make(error_kind::timeout, "deployment '" + d.id + "' " + what);
}

// One call's timers, shared by its handle, its callbacks and the
// transport's registry (for stop()). `finished`: its outcome was delivered.
struct pending_call {
  std::mutex mutex;
  bool cancelled = false;
  bool finished = false;
  std::uint64_t timers[2] = {0, 0};
  std::shared_ptr<call_sink> sink;
};

// A planned outcome while its call waits on its timer: a plain success
// as its few fields, anything else boxed. The whole call_outcome (~230 B,
// most of it an empty router_error) would sit in every parked timer task.
class parked_outcome {
public:
  explicit parked_outcome(call_outcome o) {
    static const router_error no_error{};
    const auto& e = o.error;
    const bool plain_error = e.kind == no_error.kind && e.status == no_error.status
                             && e.message.empty() && e.deployment_id.empty()
                             && !e.retry_after_s;
    if (!o.ok || !plain_error || o.timed_out || o.latency_ms != 0 || !o.response.is_null()) {
      boxed_ = std::make_shared<const call_outcome>(std::move(o));
      return;
    }
    content_ = std::move(o.content);
    finish_reason_ = std::move(o.finish_reason);
    first_token_ms_ = o.first_token_ms;
    prompt_tokens_ = o.prompt_tokens;
    completion_tokens_ = o.completion_tokens;
  }

  /// The outcome as planned; once (it moves the strings out).
  call_outcome take() {
    if (boxed_)
      return *boxed_;
    call_outcome o;
    o.ok = true;
    o.content = std::move(content_);
    o.finish_reason = std::move(finish_reason_);
    o.first_token_ms = first_token_ms_;
    o.prompt_tokens = prompt_tokens_;
    o.completion_tokens = completion_tokens_;
    return o;
  }

private:
  std::string content_;
  std::string finish_reason_;
  std::optional<double> first_token_ms_;
  std::optional<std::uint32_t> prompt_tokens_;
  std::optional<std::uint32_t> completion_tokens_;
  /// Copyable, as a timer task must be.
  std::shared_ptr<const call_outcome> boxed_;
};

json completion_json(const std::string& model, const std::string& content,
                     const std::string& finish_reason, std::uint32_t prompt_tokens,
                     std::uint32_t completion_tokens, std::int64_t created,
                     std::uint64_t number);

// A mock reply's chat.completion, built when first read. `created` is taken
// when the reply is delivered, as an eager body's was. Immutable.
class mock_body final : public lazy_json::source {
public:
  mock_body(std::string model, const call_outcome& o, request_ptr request,
            std::uint64_t number)
    : model_(std::move(model)), content_(o.content), finish_reason_(o.finish_reason),
      request_(std::move(request)), created_(unix_seconds()), number_(number) {}

  json build() const override {
    return completion_json(model_, content_, finish_reason_,
                           estimate_prompt_tokens(request_->messages),
                           estimate_text_tokens(content_), created_, number_);
  }

private:
  std::string model_;
  std::string content_;
  std::string finish_reason_;
  request_ptr request_;
  std::int64_t created_;
  std::uint64_t number_;
};

class mock_transport;

class mock_handle final : public call_handle {
public:
  mock_handle(std::shared_ptr<pending_call> call, mock_transport* owner)
    : call_(std::move(call)), owner_(owner) {}
  void cancel() noexcept override;

private:
  std::shared_ptr<pending_call> call_;
  mock_transport* owner_;
};

class mock_transport final : public transport {
public:
  mock_transport(std::shared_ptr<const router_config> config, std::uint64_t seed)
    : config_(std::move(config)), states_(config_->deployments.size()) {
    for (std::size_t i = 0; i < states_.size(); ++i)
      states_[i].rng.emplace(derive_seed(seed, 2000003ULL * (i + 1)));
  }

  call_handle_ptr start(const call_spec& spec, std::shared_ptr<call_sink> sink) override {
    const auto& d = *spec.deployment;
    const auto& request = *spec.request;
    const bool first_hop = request.mock_testing_context_fallbacks
                           && config_->resolve_group(request.model) == d.group;
    mock_call plan;
    auto& st = states_[&d - config_->deployments.data()];
    {
      std::lock_guard<std::mutex> lock(st.mutex);
      plan = plan_mock_call(d, request, first_hop, st.calls++, *st.rng);
    }
    const auto number = next_number_.fetch_add(1, std::memory_order_relaxed);
    const double timeout_ms = spec.timeout.count() * 1000.0;
    if (!plan.outcome.ok)
      plan.outcome.first_token_ms.reset();
    const std::string reply = plan.outcome.content;
    const double end_ms = plan.delay.count() * 1000.0;
    auto& out = plan.outcome;

    // What happens when: the first chunk (streams), then the end.
    std::optional<double> chunk_ms;
    double done_ms = end_ms;
    if (request.stream && out.ok && out.first_token_ms) {
      if (*out.first_token_ms > timeout_ms) {
        done_ms = timeout_ms;
        out = timed_out(d, true, false);
      } else {
        chunk_ms = *out.first_token_ms;
        if (end_ms - *chunk_ms > timeout_ms) {
          done_ms = *chunk_ms + timeout_ms;
          auto first = out.first_token_ms;
          out = timed_out(d, true, true);
          out.first_token_ms = first;
        }
      }
    } else if (end_ms > timeout_ms) {
      done_ms = timeout_ms;
      out = timed_out(d, request.stream, false);
    }

    const bool stream_reply = request.stream && chunk_ms.has_value();
    const auto created = unix_seconds();
    auto first_chunk = [=, model = public_model_name(d)] {
      return chunk_body(model, created, number,
                        json{{"role", "assistant"}, {"content", reply}}, nullptr);
    };
    // The reply body is made at delivery, and built only when read: a call
    // in flight holds no JSON, and a result nobody reads costs no tree.
    // `d` lives as long as this transport's config; a pending call holds
    // the reference, not a copy of its model name.
    auto finish = [stream_reply, created, number, &d, request = spec.request](
                    call_sink& s, call_outcome o) {
      if (stream_reply && o.ok)
        s.on_chunk(chunk_body(public_model_name(d), created, number, json::object(),
                              o.finish_reason));
      if (o.ok && (stream_reply || !request->stream))
        o.response = lazy_json(
          std::make_shared<const mock_body>(public_model_name(d), o, request, number));
      s.on_done(std::move(o));
    };

    if (done_ms <= 0) {
      if (stream_reply)
        sink->on_chunk(first_chunk());
      finish(*sink, std::move(out));
      return std::make_unique<no_op_handle>();
    }
    auto call = std::make_shared<pending_call>();
    call->sink = sink;
    if (!track(call)) {
      sink->on_done(shutdown_outcome());
      return std::make_unique<no_op_handle>();
    }
    const auto t0 = steady::now();
    auto at = [t0](double ms) {
      return t0 + std::chrono::duration_cast<steady::duration>(
                    std::chrono::duration<double, std::milli>(ms));
    };
    std::lock_guard<std::mutex> lock(call->mutex);
    if (stream_reply) {
      if (*chunk_ms <= 0)
        sink->on_chunk(first_chunk());
      else
        call->timers[0] = timers_->schedule(at(*chunk_ms), [sink, first_chunk] {
          sink->on_chunk(first_chunk());
        });
    }
    std::weak_ptr<pending_call> weak = call;
    call->timers[1] = timers_->schedule(
      at(done_ms), [this, weak, finish, o = parked_outcome(std::move(out))]() mutable {
        auto c = weak.lock();
        if (!c)
          return;
        // The call's own sink (a cancelled call has none left).
        std::shared_ptr<call_sink> sink;
        {
          std::lock_guard<std::mutex> lock(c->mutex);
          if (c->finished || !c->sink)
            return;
          c->finished = true;
          sink = c->sink;
        }
        untrack(c.get());
        finish(*sink, o.take());
      });
    return std::make_unique<mock_handle>(call, this);
  }

  void stop() override {
    std::vector<std::shared_ptr<pending_call>> calls;
    {
      std::lock_guard<std::mutex> lock(live_mutex_);
      stopped_ = true;
      for (auto& [p, w] : live_)
        if (auto c = w.lock())
          calls.push_back(std::move(c));
      live_.clear();
    }
    for (auto& c : calls) {
      std::uint64_t ids[2];
      {
        std::lock_guard<std::mutex> lock(c->mutex);
        ids[0] = c->timers[0];
        ids[1] = c->timers[1];
      }
      for (auto id : ids)
        if (id)
          timers_->cancel(id); // waits for one that is running
      std::shared_ptr<call_sink> sink;
      {
        std::lock_guard<std::mutex> lock(c->mutex);
        if (c->finished || c->cancelled)
          continue;
        c->finished = true;
        sink = std::move(c->sink);
      }
      sink->on_done(shutdown_outcome());
    }
  }

  timer_thread& timers() { return *timers_; }

  void untrack(pending_call* c) {
    std::lock_guard<std::mutex> lock(live_mutex_);
    live_.erase(c);
  }

private:
  struct deployment_state {
    std::mutex mutex;
    std::optional<seeded_random> rng;
    std::uint64_t calls = 0;
  };

  static call_outcome timed_out(const deployment_config& d, bool stream, bool committed) {
    call_outcome o;
    o.timed_out = true;
    o.error = timeout_error(d, stream, committed);
    return o;
  }

  std::shared_ptr<const router_config> config_;
  std::vector<deployment_state> states_;
  bool track(const std::shared_ptr<pending_call>& c) {
    std::lock_guard<std::mutex> lock(live_mutex_);
    if (stopped_)
      return false;
    live_.emplace(c.get(), c);
    return true;
  }

  std::atomic<std::uint64_t> next_number_{0};
  std::mutex live_mutex_;
  bool stopped_ = false;
  std::unordered_map<pending_call*, std::weak_ptr<pending_call>> live_;
  // Started on first use of a delay would race; a timer thread is cheap.
  std::shared_ptr<timer_thread> timers_ = std::make_shared<timer_thread>();
};

void mock_handle::cancel() noexcept {
  std::uint64_t ids[2];
  {
    std::lock_guard<std::mutex> lock(call_->mutex);
    call_->cancelled = true;
    ids[0] = call_->timers[0];
    ids[1] = call_->timers[1];
    call_->sink.reset();
  }
  for (auto id : ids)
    if (id)
      owner_->timers().cancel(id);
  owner_->untrack(call_.get());
}

class dispatching_transport final : public transport {
public:
  dispatching_transport(std::shared_ptr<const router_config> config,
                        std::shared_ptr<transport> mock, std::shared_ptr<transport> http)
    : config_(std::move(config)), mock_(std::move(mock)), http_(std::move(http)) {}

  call_handle_ptr start(const call_spec& spec, std::shared_ptr<call_sink> sink) override {
    if (http_ && !is_mock_call(*config_, *spec.deployment, *spec.request))
      return http_->start(spec, std::move(sink));
    return mock_->start(spec, std::move(sink));
  }
  void stop() override {
    mock_->stop();
    if (http_)
      http_->stop();
  }

private:
  std::shared_ptr<const router_config> config_;
  std::shared_ptr<transport> mock_;
  std::shared_ptr<transport> http_;
};

} // namespace

call_outcome shutdown_outcome() {
  call_outcome o;
  o.error = router_error::make(error_kind::shutdown,
                               "the router stopped before the call finished");
  return o;
}

bool is_mock_call(const router_config& config, const deployment_config& deployment,
                  const chat_request& request) {
  return !deployment.endpoint || request.mock.is_set() || deployment.mock.is_set()
         || deployment.mock_failure_rate > 0
         || (request.mock_testing_context_fallbacks
             && config.resolve_group(request.model) == deployment.group);
}

std::shared_ptr<transport> make_mock_transport(std::shared_ptr<const router_config> config,
                                               std::uint64_t seed) {
  return std::make_shared<mock_transport>(std::move(config), seed);
}

std::shared_ptr<transport> make_dispatching_transport(std::shared_ptr<const router_config> config,
                                                      std::shared_ptr<transport> mock,
                                                      std::shared_ptr<transport> http) {
  return std::make_shared<dispatching_transport>(std::move(config), std::move(mock),
                                                 std::move(http));
}

namespace {

// Built by assignment: nlohmann's initializer lists copy every nested value.
json completion_json(const std::string& model, const std::string& content,
                     const std::string& finish_reason, std::uint32_t prompt_tokens,
                     std::uint32_t completion_tokens, std::int64_t created,
                     std::uint64_t number) {
  json message(json::value_t::object);
  message["role"] = "assistant";
  message["content"] = content;
  json choice(json::value_t::object);
  choice["index"] = 0;
  choice["message"] = std::move(message);
  choice["finish_reason"] = finish_reason;
  json usage(json::value_t::object);
  usage["prompt_tokens"] = prompt_tokens;
  usage["completion_tokens"] = completion_tokens;
  usage["total_tokens"] = prompt_tokens + completion_tokens;
  json body(json::value_t::object);
  body["id"] = "chatcmpl-mock-" + std::to_string(number);
  body["object"] = "chat.completion";
  body["created"] = created;
  body["model"] = model;
  json choices(json::value_t::array);
  choices.push_back(std::move(choice));
  body["choices"] = std::move(choices);
  body["usage"] = std::move(usage);
  return body;
}

} // namespace

json make_completion_body(const deployment_config& d, const std::string& content,
                          const std::string& finish_reason, std::uint32_t prompt_tokens,
                          std::uint32_t completion_tokens, std::int64_t created,
                          std::uint64_t number) {
  return completion_json(public_model_name(d), content, finish_reason, prompt_tokens,
                         completion_tokens, created, number);
}

} // namespace switchyard
