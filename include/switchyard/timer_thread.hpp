#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace switchyard {

/// Runs callbacks after a delay: the router's retry waits and total_timeout
/// deadlines. Thread-safe. Once cancel() has returned, that callback never
/// runs. Replaceable (router_options::timers) so tests can drive it on a
/// simulated clock.
class timer_service {
public:
  using task = std::function<void()>;
  virtual ~timer_service() = default;
  virtual std::uint64_t schedule_after(std::chrono::nanoseconds delay, task t) = 0;
  /// True when the timer was still pending (it will never run).
  virtual bool cancel(std::uint64_t id) = 0;
  /// Runs every pending timer now, as if its time had come (a stopping
  /// owner's waits end at once).
  virtual void fire_all() = 0;
};

/// One thread that runs callbacks at their deadlines (steady clock): the
/// event loop of the mock transport, so a mock's latency is a timer, never
/// a sleeping actor. Thread-safe: schedule and cancel from any thread.
/// Callbacks run on the timer thread, one at a time; cancel() of a
/// callback that is running waits for it to return (unless called from the
/// callback itself), so once cancel() has returned the callback never runs.
/// Cost: O(log n) per timer, one wake-up per deadline.
class timer_thread final : public timer_service {
public:
  using clock = std::chrono::steady_clock;

  timer_thread();
  ~timer_thread(); ///< drops pending timers without running them
  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;

  std::uint64_t schedule(clock::time_point at, task t);
  std::uint64_t schedule_after(std::chrono::nanoseconds delay, task t) override {
    return schedule(clock::now() + delay, std::move(t));
  }
  bool cancel(std::uint64_t id) override;
  /// Runs them on the timer thread.
  void fire_all() override;

private:
  void run();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  std::multimap<clock::time_point, std::uint64_t> by_deadline_;
  struct entry {
    std::multimap<clock::time_point, std::uint64_t>::iterator at;
    task t;
  };
  std::unordered_map<std::uint64_t, entry> tasks_;
  std::uint64_t next_id_ = 1;
  std::uint64_t running_ = 0; ///< id of the callback running now, 0: none
  bool stop_ = false;
  std::thread thread_;
};

} // namespace switchyard
