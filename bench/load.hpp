#pragma once

// Load drivers shared by every end-to-end scenario: a closed loop that keeps
// N requests in flight, and an open loop that sends at a fixed rate. They
// know nothing about CAF or the router: a scenario passes an `issue_fn` that
// starts request `id` and, when its answer arrives (on any thread), calls
// `load_run::done(id, ...)`.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace switchyard::bench {

using bench_clock = std::chrono::steady_clock;

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           bench_clock::now().time_since_epoch())
    .count();
}

/// p50/p99/p999 of a latency sample, in microseconds (nearest rank).
struct latency_summary {
  double p50_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double max_us = 0;
};

/// Sorts `ns` in place.
latency_summary summarize(std::vector<std::uint32_t>& ns);

/// What one measurement produced (possibly pooled over several trials).
struct run_figures {
  std::uint64_t requests = 0;
  double seconds = 0;
  double req_per_s = 0;
  latency_summary latency;
  std::uint64_t failed = 0;       ///< answers that were not ok
  double hops_per_request = 0;    ///< mean deployment calls per request
  std::vector<double> trial_req_per_s;
  /// Open loop only: how late the sender issued requests (already part of
  /// the latency, since that is measured from the scheduled time).
  latency_summary issue_lag;
  /// Share of the machine's CPU time (all cores) that other processes used
  /// while this was measured: the noise level, 0 on a quiet machine.
  double background_cpu = 0;
  /// CPU time this process spent per request (all its threads: workers,
  /// CAF's clock thread, the sender), in microseconds; 10 ms tick resolution.
  double cpu_us_per_request = 0;
};

/// CPU time counters, to tell how busy the rest of the machine was.
struct cpu_snapshot {
  std::uint64_t total = 0; ///< all cores, every state (/proc/stat), ticks
  std::uint64_t busy = 0;  ///< all cores, not idle or iowait
  std::uint64_t self = 0;  ///< this process, user + system (/proc/self/stat)
  static cpu_snapshot now();
};

/// Accumulates the CPU time other processes used over measured intervals.
struct background_meter {
  std::uint64_t total = 0;
  std::uint64_t others = 0;
  std::uint64_t self = 0;
  void add(const cpu_snapshot& from, const cpu_snapshot& to);
  double share() const { return total ? static_cast<double>(others) / total : 0; }
  /// This process's CPU time per request, in microseconds.
  double self_us_per(std::uint64_t requests) const;
};

/// The shared state of one run. Thread-safe: `done` may run on any thread,
/// concurrently with `launch` on others. Each id is launched and done once.
class load_run {
public:
  using issue_fn = std::function<void(load_run&, std::uint64_t id)>;

  load_run(std::uint64_t requests, issue_fn issue);

  /// Records `start_ns` as request `id`'s reference time and issues it.
  void launch(std::uint64_t id, std::int64_t start_ns);
  /// Request `id` answered after `hops` deployment calls.
  void done(std::uint64_t id, std::uint32_t hops, bool ok);

  /// Closed loop: done() launches the next id while ids remain.
  void set_closed_loop(bool on) { closed_ = on; }
  void reserve_ids(std::uint64_t n) { next_id_.store(n); }
  bool finished() const { return completed_.load(std::memory_order_acquire) >= requests_; }
  std::int64_t last_done_ns() const { return last_done_ns_.load(); }

  /// Blocks (polling) until every request answered or `timeout_s` passed.
  bool wait(double timeout_s) const;
  /// The run's figures (call after wait(); sorts the latencies).
  run_figures figures(std::int64_t first_start_ns);
  /// Appends the raw latencies (ns) to `out`, for pooling trials.
  void append_latencies(std::vector<std::uint32_t>& out) const {
    out.insert(out.end(), latency_ns_.begin(), latency_ns_.end());
  }

private:
  std::uint64_t requests_;
  issue_fn issue_;
  bool closed_ = false;
  std::vector<std::int64_t> start_ns_;
  std::vector<std::uint32_t> latency_ns_;
  std::vector<std::uint8_t> hops_;
  std::atomic<std::uint64_t> next_id_{0};
  std::atomic<std::uint64_t> completed_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::atomic<std::int64_t> last_done_ns_{0};
};

/// One closed-loop run: `in_flight` requests at once, each answer issuing
/// the next, `requests` in all. Latency: from issue to answer.
run_figures closed_loop(std::size_t in_flight, std::uint64_t requests,
                        const load_run::issue_fn& issue);

/// A warmed-up, adaptive closed-loop measurement: a probe run estimates the
/// rate, a warm-up runs ~0.3 s, then `trials` runs of `seconds / trials`
/// each. req/s is the median trial's; latencies are pooled over all trials.
run_figures measure_closed(std::size_t in_flight, double seconds, int trials,
                           const load_run::issue_fn& issue);

/// Several subjects measured by turns, so background load that drifts over
/// the run hits them alike: each is probed and warmed up (~0.3 s), then in
/// each of `trials` rounds every subject runs once (after a short warm-up of
/// its own) for about `seconds / trials`. Per subject: req/s is the median
/// trial's, latencies are pooled over its trials.
std::vector<run_figures> measure_interleaved(std::size_t in_flight, double seconds,
                                             int trials,
                                             const std::vector<load_run::issue_fn>& subjects);

/// Open loop: request i is due at t0 + i / rate; the calling thread sends it
/// then (spinning between sends) and its latency is measured from that due
/// time, so a late send or a queue is never hidden (no coordinated omission).
run_figures open_loop(double rate, std::uint64_t requests,
                      const load_run::issue_fn& issue);

/// open_loop after a warm-up of ~0.3 s at the same rate, for ~`seconds`.
run_figures measure_open(double rate, double seconds, const load_run::issue_fn& issue);

/// Several subjects open loop at the same rate, by turns (as
/// measure_interleaved): each is warmed up (~0.3 s), then in each of
/// `trials` rounds every subject runs for ~`seconds / trials` after a short
/// warm-up of its own. Per subject: latencies and send lags pooled over its
/// trials, req/s over all of them.
std::vector<run_figures> measure_open_interleaved(double rate, double seconds, int trials,
                                                  const std::vector<load_run::issue_fn>& subjects);

/// Resident set size of this process in bytes (/proc/self/statm).
std::int64_t resident_bytes();

/// Samples resident_bytes() every 25 ms while `held()` (nothing answered
/// yet), until it stops growing (5 samples within 0.2 %) or `deadline_ns`
/// (now_ns() time) passes; the largest sample taken while held, 0 if none.
std::int64_t peak_rss_while(std::int64_t deadline_ns, const std::function<bool()>& held);

} // namespace switchyard::bench
