#pragma once

// A real router on simulated time: its actors run on CAF's deterministic
// test coordinator (scheduler.policy "testing"), whose clock is the actors'
// clock, and every call of a deployment with an endpoint goes to a
// scripted transport that the test answers. Nothing runs on its own: run()
// and advance() execute the actors' jobs on the test's thread, so a test
// asserts exact orders, times and outcomes. For tests/actors only (CAF).

#include "switchyard/config.hpp"
#include "switchyard/request.hpp"
#include "switchyard/router.hpp"
#include "switchyard/transport.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchyard::test {

/// A transport whose calls stay open until the test answers them, or until
/// their deadline passes on the simulated clock (a Timeout then, as a real
/// transport's). A responder, when set, answers each call inside start().
/// Single-threaded: start() and cancel() run in the actors' jobs, which the
/// test coordinator runs on the test's thread.
class scripted_transport final : public transport {
public:
  struct call {
    std::string deployment_id;
    request_ptr request;
    seconds_d timeout{0};
    time_point started{};
    std::shared_ptr<call_sink> sink;
    bool cancelled = false;
    bool done = false;
    bool open() const noexcept { return !cancelled && !done; }
  };
  /// An answer for a call at its start, or none to hold it open.
  using responder = std::function<std::optional<call_outcome>(const call&)>;

  explicit scripted_transport(std::function<time_point()> now) : now_(std::move(now)) {}

  void respond_with(responder r) { responder_ = std::move(r); }

  call_handle_ptr start(const call_spec& spec, std::shared_ptr<call_sink> sink) override {
    const std::size_t i = calls_.size();
    calls_.push_back(call{spec.deployment->id, spec.request, spec.timeout, now_(),
                          std::move(sink)});
    if (responder_)
      if (auto o = responder_(calls_[i]))
        finish(i, std::move(*o));
    return std::make_unique<handle>(this, i);
  }

  const std::vector<call>& calls() const noexcept { return calls_; }
  /// Indices of the calls still open, oldest first.
  std::vector<std::size_t> open_calls() const {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < calls_.size(); ++i)
      if (calls_[i].open())
        out.push_back(i);
    return out;
  }
  /// Deployment ids of every call so far, in order.
  std::vector<std::string> called() const {
    std::vector<std::string> out;
    for (const auto& c : calls_)
      out.push_back(c.deployment_id);
    return out;
  }

  void answer(std::size_t i, const std::string& content) { finish(i, success(content)); }
  void finish(std::size_t i, call_outcome o) {
    auto& c = calls_.at(i);
    if (!c.open())
      throw std::logic_error("scripted_transport: call " + std::to_string(i) + " is not open");
    c.done = true;
    c.sink->on_done(std::move(o));
  }

  /// The earliest deadline of an open call.
  std::optional<time_point> next_deadline() const {
    std::optional<time_point> t;
    for (const auto& c : calls_)
      if (c.open() && (!t || deadline(c) < *t))
        t = deadline(c);
    return t;
  }
  /// Ends every open call whose deadline is not after `now` with a Timeout.
  void expire(time_point now) {
    for (std::size_t i = 0; i < calls_.size(); ++i)
      if (calls_[i].open() && deadline(calls_[i]) <= now) {
        call_outcome o;
        o.timed_out = true;
        o.error = router_error::make(error_kind::timeout,
                                     "deployment '" + calls_[i].deployment_id
                                       + "' did not answer within the timeout");
        finish(i, std::move(o));
      }
  }

  static call_outcome success(const std::string& content) {
    call_outcome o;
    o.ok = true;
    o.content = content;
    return o;
  }
  static call_outcome failure(error_kind kind, const std::string& message,
                              std::optional<double> retry_after = std::nullopt) {
    call_outcome o;
    o.error = router_error::make(kind, message, retry_after);
    return o;
  }

private:
  struct handle final : call_handle {
    handle(scripted_transport* t, std::size_t i) : t_(t), i_(i) {}
    void cancel() noexcept override {
      auto& c = t_->calls_[i_];
      if (!c.done)
        c.cancelled = true;
    }
    scripted_transport* t_;
    std::size_t i_;
  };

  static time_point deadline(const call& c) {
    return c.started + std::chrono::duration_cast<clock_type::duration>(c.timeout);
  }

  std::function<time_point()> now_;
  responder responder_;
  std::vector<call> calls_;
};

/// A router on an actor system running CAF's test coordinator, with a
/// scripted transport for every deployment with an endpoint. Owns both;
/// single-threaded (the test's thread drives everything).
class sim_router {
public:
  explicit sim_router(router_config config, std::uint64_t seed = 1)
    : system_(configure(cfg_)),
      sched_(dynamic_cast<caf::scheduler::test_coordinator&>(system_.scheduler())),
      upstream_(std::make_shared<scripted_transport>([this] { return now(); })) {
    router_options options;
    options.seed = seed;
    options.http = upstream_;
    router_.emplace(system_, std::move(config), options);
    run();
  }

  // The router stops its own actors; requests still waiting for a call or
  // a timer end when the clock reaches them (a call's deadline at the
  // latest), as they would on a real clock. Only then can the actor system
  // go, which waits for every actor.
  ~sim_router() {
    router_.reset();
    run();
    for (int i = 0; i < 100000; ++i) {
      auto next = next_event();
      if (!next)
        break;
      step_to(*next);
    }
  }

  sim_router(const sim_router&) = delete;
  sim_router& operator=(const sim_router&) = delete;

  switchyard::router& router() { return *router_; }
  scripted_transport& upstream() { return *upstream_; }
  time_point now() const { return sched_.clock().now(); }

  /// Sends a request; its answer is in the returned slot once the actors
  /// have produced it (after run() or advance()).
  std::shared_ptr<std::optional<route_result>> send(chat_request request) {
    auto slot = std::make_shared<std::optional<route_result>>();
    router_->async_complete(std::move(request), [slot](route_result r) {
      if (*slot)
        throw std::logic_error("sim_router: a request was answered twice");
      *slot = std::move(r);
    });
    return slot;
  }
  /// Sends a request and runs the actors until nothing is left to do now.
  route_result complete(chat_request request) {
    auto slot = send(std::move(request));
    run();
    if (!*slot)
      throw std::logic_error("sim_router: the request is still waiting (a timer or a call)");
    return std::move(**slot);
  }

  /// Runs every job that is ready, without moving the clock.
  void run() { sched_.run(); }

  /// Moves the simulated clock on by `d`: actor timers and call deadlines
  /// fire in time order, each followed by the jobs it makes ready.
  void advance(seconds_d d) {
    const time_point target = now() + std::chrono::duration_cast<clock_type::duration>(d);
    for (;;) {
      auto next = next_event();
      if (!next || *next > target)
        break;
      step_to(*next);
    }
    step_to(target);
  }

private:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    cfg.set("scheduler.policy", caf::atom("testing"));
    cfg.set("logger.console", caf::atom("none"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    return cfg;
  }

  /// The next actor timer or call deadline.
  std::optional<time_point> next_event() const {
    std::optional<time_point> next = upstream_->next_deadline();
    const auto& timers = sched_.clock().schedule();
    if (!timers.empty() && (!next || timers.begin()->first < *next))
      next = timers.begin()->first;
    return next;
  }

  void step_to(time_point t) {
    if (t > now())
      sched_.clock().advance_time(t - now());
    else
      sched_.clock().advance_time(clock_type::duration::zero());
    upstream_->expire(now());
    run();
  }

  caf::actor_system_config cfg_;
  caf::actor_system system_;
  caf::scheduler::test_coordinator& sched_;
  std::shared_ptr<scripted_transport> upstream_;
  std::optional<switchyard::router> router_;
};

/// A config where every deployment is real ("openai/..." with a test key),
/// so the scripted transport serves it: `ids` in one group `model`, with
/// `settings` as the router_settings object (JSON text).
inline std::string real_group(const std::string& model, const std::vector<std::string>& ids,
                              const std::string& settings,
                              const std::vector<std::string>& extra_params = {}) {
  std::string text = R"({"model_list": [)";
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i)
      text += ",";
    text += R"({"model_name": ")" + model
            + R"(", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-test")";
    if (i < extra_params.size() && !extra_params[i].empty())
      text += ", " + extra_params[i];
    text += R"(}, "model_info": {"id": ")" + ids[i] + R"("}})";
  }
  return text + R"(], "router_settings": )" + settings + "}";
}

} // namespace switchyard::test
