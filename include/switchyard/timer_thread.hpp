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

/// One thread that runs callbacks at their deadlines (steady clock): the
/// event loop of the mock transport, so a mock's latency is a timer, never
/// a sleeping actor. Thread-safe: schedule and cancel from any thread.
/// Callbacks run on the timer thread, one at a time; cancel() of a
/// callback that is running waits for it to return (unless called from the
/// callback itself), so once cancel() has returned the callback never runs.
/// Cost: O(log n) per timer, one wake-up per deadline.
class timer_thread {
public:
  using clock = std::chrono::steady_clock;
  using task = std::function<void()>;

  timer_thread();
  ~timer_thread(); ///< drops pending timers without running them
  timer_thread(const timer_thread&) = delete;
  timer_thread& operator=(const timer_thread&) = delete;

  std::uint64_t schedule(clock::time_point at, task t);
  /// True when the timer was still pending (it will never run).
  bool cancel(std::uint64_t id);
  /// Runs every pending timer now, on the timer thread, as if its deadline
  /// had come (a stopping owner's waits end at once).
  void fire_all();

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
