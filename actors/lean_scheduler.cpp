#include "switchyard/lean_scheduler.hpp"

#include <caf/actor_system.hpp>
#include <caf/detail/set_thread_name.hpp>
#include <caf/detail/thread_safe_actor_clock.hpp>
#include <caf/logger.hpp>
#include <caf/policy/work_stealing.hpp>
#include <caf/scheduler/coordinator.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace switchyard {

namespace {

/// CAF's thread-safe clock, keeping the ids of the actors that set a
/// timeout so that only their exits reach the clock thread.
///
/// Threading: called from any worker (an actor sets its timeouts and runs
/// its cleanup on whichever worker runs it) and from the clock thread;
/// the set is guarded by a mutex, the counters are atomics.
class lean_clock final : public caf::detail::thread_safe_actor_clock {
public:
  using super = caf::detail::thread_safe_actor_clock;

  void set_ordinary_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                            uint64_t id) override {
    note(self);
    super::set_ordinary_timeout(t, self, type, id);
  }

  void set_request_timeout(time_point t, caf::abstract_actor* self,
                           caf::message_id id) override {
    note(self);
    super::set_request_timeout(t, self, id);
  }

  void set_multi_timeout(time_point t, caf::abstract_actor* self, caf::atom_value type,
                         uint64_t id) override {
    note(self);
    super::set_multi_timeout(t, self, type, id);
  }

  /// Called once per actor, from its cleanup: the clock holds nothing of
  /// an actor that never set a timeout, so there is nothing to cancel.
  void cancel_timeouts(caf::abstract_actor* self) override {
    bool had;
    {
      std::lock_guard lock(mu_);
      had = timed_.erase(self->id()) > 0;
    }
    if (!had) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    forwarded_.fetch_add(1, std::memory_order_relaxed);
    super::cancel_timeouts(self);
  }

  lean_clock_stats stats() const noexcept {
    return {skipped_.load(std::memory_order_relaxed),
            forwarded_.load(std::memory_order_relaxed)};
  }

private:
  void note(caf::abstract_actor* self) {
    std::lock_guard lock(mu_);
    timed_.insert(self->id());
  }

  std::mutex mu_;
  std::unordered_set<caf::actor_id> timed_;
  std::atomic<std::uint64_t> skipped_{0};
  std::atomic<std::uint64_t> forwarded_{0};
};

/// CAF's work-stealing policy, with one change: the first job a worker
/// runs takes its thread's logger away. CAF 0.17.6's worker tags every job
/// it runs with the actor's id for the logger (CAF_PUSH_AID: two lookups in
/// a map under a spinlock, before and after each job) whenever the thread
/// has a logger, even when the library logs nothing at all (Debian builds
/// it with CAF_LOG_LEVEL_QUIET): about 10 % of a routed request's CPU in a
/// profile of route_healthy. Without a logger on the thread, the tagging is
/// skipped. Only for a library that cannot log anyway.
struct lean_policy : caf::policy::work_stealing {
  template <class Worker>
  void before_resume(Worker* self, caf::resumable* job) {
#if CAF_LOG_LEVEL == CAF_LOG_LEVEL_QUIET
    static thread_local bool untagged = false;
    if (!untagged) {
      untagged = true;
      caf::logger::set_current_actor_system(nullptr);
    }
#endif
    work_stealing::before_resume(self, job);
  }
};

/// CAF's work-stealing coordinator whose clock is the lean clock. The
/// base class's own clock (a private member) still gets its thread, which
/// waits on an empty queue for the system's lifetime: nothing reaches it,
/// as every caller asks clock() for the clock.
///
/// Threading: CAF's; start() and stop() run on the thread that builds and
/// destroys the actor system.
class lean_coordinator final
  : public caf::scheduler::coordinator<lean_policy> {
public:
  using super = caf::scheduler::coordinator<lean_policy>;

  explicit lean_coordinator(caf::actor_system& sys) : super(sys) {}

  lean_clock& clock() noexcept override { return clock_; }

protected:
  void start() override {
    // The clock's thread first: starting the workers and the utility
    // actors may already set timeouts.
    clock_thread_ = std::thread([this] {
      caf::detail::set_thread_name("caf.lean-clock");
      system().thread_started();
      clock_.run_dispatch_loop();
      system().thread_terminates();
    });
    super::start();
  }

  void stop() override {
    // The workers first (their actors' cleanups still reach the clock),
    // then the clock.
    super::stop();
    clock_.cancel_dispatch_loop();
    clock_thread_.join();
  }

private:
  lean_clock clock_;
  std::thread clock_thread_;
};

} // namespace

void use_lean_scheduler(caf::actor_system_config& cfg) {
  cfg.module_factories.push_back(
    [](caf::actor_system& sys) -> caf::actor_system::module* { return new lean_coordinator(sys); });
}

std::optional<lean_clock_stats> lean_clock_stats_of(caf::actor_system& sys) {
  auto* c = dynamic_cast<lean_coordinator*>(&sys.scheduler());
  if (!c)
    return std::nullopt;
  return c->clock().stats();
}

} // namespace switchyard
