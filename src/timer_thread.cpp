#include "switchyard/timer_thread.hpp"

namespace switchyard {

timer_thread::timer_thread() : thread_([this] { run(); }) {
}

timer_thread::~timer_thread() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    tasks_.clear();
    by_deadline_.clear();
  }
  wake_.notify_all();
  thread_.join();
}

std::uint64_t timer_thread::schedule(clock::time_point at, task t) {
  std::uint64_t id;
  bool earliest;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    id = next_id_++;
    auto pos = by_deadline_.emplace(at, id);
    earliest = pos == by_deadline_.begin();
    tasks_.emplace(id, entry{pos, std::move(t)});
  }
  if (earliest)
    wake_.notify_one();
  return id;
}

bool timer_thread::cancel(std::uint64_t id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto i = tasks_.find(id);
  if (i != tasks_.end()) {
    by_deadline_.erase(i->second.at);
    tasks_.erase(i);
    return true;
  }
  // Running right now on the timer thread: wait it out, so the caller
  // knows it is over (not when the callback cancels itself).
  if (running_ == id && std::this_thread::get_id() != thread_.get_id())
    idle_.wait(lock, [&] { return running_ != id; });
  return false;
}

void timer_thread::fire_all() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = clock::now();
    std::multimap<clock::time_point, std::uint64_t> due;
    for (auto& [at, id] : by_deadline_) {
      auto pos = due.emplace(now, id);
      tasks_.at(id).at = pos;
    }
    by_deadline_.swap(due);
  }
  wake_.notify_one();
}

void timer_thread::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stop_) {
    if (by_deadline_.empty()) {
      wake_.wait(lock);
      continue;
    }
    auto first = by_deadline_.begin();
    // A copy: wait_until reads the deadline again after waking, and a
    // cancel() may erase its node meanwhile.
    const auto at = first->first;
    if (clock::now() < at) {
      wake_.wait_until(lock, at);
      continue;
    }
    const auto id = first->second;
    by_deadline_.erase(first);
    auto node = tasks_.extract(id);
    running_ = id;
    lock.unlock();
    node.mapped().t();
    node = {};  // destroy the callback's captures outside the lock too
    lock.lock();
    running_ = 0;
    idle_.notify_all();
  }
}

} // namespace switchyard
