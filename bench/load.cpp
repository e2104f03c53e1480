#include "load.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <limits>
#include <stdexcept>
#include <thread>

#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define SWITCHYARD_BENCH_PAUSE() _mm_pause()
#else
#define SWITCHYARD_BENCH_PAUSE() ((void)0)
#endif

namespace switchyard::bench {

namespace {

constexpr double lost_request_timeout_s = 120;

double percentile_us(const std::vector<std::uint32_t>& sorted, double q) {
  if (sorted.empty())
    return 0;
  // Nearest rank: the smallest value with at least q of the sample <= it.
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1] / 1000.0;
}

std::uint32_t clamp_ns(std::int64_t d) {
  return static_cast<std::uint32_t>(
    std::clamp<std::int64_t>(d, 0, std::numeric_limits<std::uint32_t>::max()));
}

} // namespace

latency_summary summarize(std::vector<std::uint32_t>& ns) {
  std::sort(ns.begin(), ns.end());
  latency_summary s;
  s.p50_us = percentile_us(ns, 0.50);
  s.p99_us = percentile_us(ns, 0.99);
  s.p999_us = percentile_us(ns, 0.999);
  s.max_us = ns.empty() ? 0 : ns.back() / 1000.0;
  return s;
}

load_run::load_run(std::uint64_t requests, issue_fn issue)
  : requests_(requests), issue_(std::move(issue)), start_ns_(requests),
    latency_ns_(requests), hops_(requests) {
}

void load_run::launch(std::uint64_t id, std::int64_t start_ns) {
  start_ns_[id] = start_ns;
  issue_(*this, id);
}

void load_run::done(std::uint64_t id, std::uint32_t hops, bool ok) {
  const auto t = now_ns();
  latency_ns_[id] = clamp_ns(t - start_ns_[id]);
  hops_[id] = static_cast<std::uint8_t>(std::min<std::uint32_t>(hops, 255));
  if (!ok)
    failed_.fetch_add(1, std::memory_order_relaxed);
  if (closed_) {
    auto next = next_id_.fetch_add(1, std::memory_order_relaxed);
    if (next < requests_)
      launch(next, now_ns());
  }
  if (completed_.fetch_add(1, std::memory_order_acq_rel) + 1 == requests_)
    last_done_ns_.store(t, std::memory_order_release);
}

bool load_run::wait(double timeout_s) const {
  const auto deadline = now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  while (!finished()) {
    if (now_ns() > deadline)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

run_figures load_run::figures(std::int64_t first_start_ns) {
  run_figures f;
  f.requests = requests_;
  f.seconds = static_cast<double>(last_done_ns_.load() - first_start_ns) / 1e9;
  f.req_per_s = f.seconds > 0 ? static_cast<double>(requests_) / f.seconds : 0;
  f.failed = failed_.load();
  double hops = 0;
  for (auto h : hops_)
    hops += h;
  f.hops_per_request = requests_ ? hops / static_cast<double>(requests_) : 0;
  f.latency = summarize(latency_ns_);
  return f;
}

namespace {

// One closed-loop run; its raw latencies are appended to `pooled` if given.
run_figures run_closed(std::size_t in_flight, std::uint64_t requests,
                       const load_run::issue_fn& issue,
                       std::vector<std::uint32_t>* pooled) {
  load_run run(requests, issue);
  run.set_closed_loop(true);
  const auto first = std::min<std::uint64_t>(in_flight, requests);
  // Ids below `first` are launched here; answers take the following ones.
  run.reserve_ids(first);
  const auto t0 = now_ns();
  for (std::uint64_t id = 0; id < first; ++id)
    run.launch(id, now_ns());
  if (!run.wait(lost_request_timeout_s))
    throw std::runtime_error("closed loop: requests never answered");
  auto f = run.figures(t0);
  if (pooled)
    run.append_latencies(*pooled);
  return f;
}

} // namespace

run_figures closed_loop(std::size_t in_flight, std::uint64_t requests,
                        const load_run::issue_fn& issue) {
  return run_closed(in_flight, requests, issue, nullptr);
}

run_figures measure_closed(std::size_t in_flight, double seconds, int trials,
                           const load_run::issue_fn& issue) {
  return measure_interleaved(in_flight, seconds, trials, {issue}).front();
}

std::vector<run_figures> measure_interleaved(std::size_t in_flight, double seconds,
                                             int trials,
                                             const std::vector<load_run::issue_fn>& subjects) {
  auto clamp_count = [&](double n) {
    return static_cast<std::uint64_t>(
      std::clamp(n, static_cast<double>(in_flight) * 8, 5e6));
  };
  // Probe each, warm it up for ~0.3 s at the probed rate, size its trials.
  std::vector<std::uint64_t> per_trial;
  for (const auto& issue : subjects) {
    auto probe = closed_loop(in_flight, clamp_count(2000), issue);
    auto warm = closed_loop(in_flight, clamp_count(probe.req_per_s * 0.3), issue);
    per_trial.push_back(clamp_count(warm.req_per_s * seconds / trials));
  }
  std::vector<run_figures> out(subjects.size());
  std::vector<std::vector<std::uint32_t>> pooled(subjects.size());
  std::vector<double> hops(subjects.size());
  std::vector<background_meter> background(subjects.size());
  for (int t = 0; t < trials; ++t)
    for (std::size_t s = 0; s < subjects.size(); ++s) {
      // The others ran meanwhile: wake this one's threads and caches first.
      closed_loop(in_flight, clamp_count(static_cast<double>(per_trial[s]) / 10), subjects[s]);
      const auto before = cpu_snapshot::now();
      auto f = run_closed(in_flight, per_trial[s], subjects[s], &pooled[s]);
      background[s].add(before, cpu_snapshot::now());
      auto& o = out[s];
      o.requests += f.requests;
      o.seconds += f.seconds;
      o.failed += f.failed;
      hops[s] += f.hops_per_request * static_cast<double>(f.requests);
      o.trial_req_per_s.push_back(f.req_per_s);
    }
  for (std::size_t s = 0; s < subjects.size(); ++s) {
    auto& o = out[s];
    auto rates = o.trial_req_per_s;
    std::sort(rates.begin(), rates.end());
    o.req_per_s = rates[rates.size() / 2];
    o.hops_per_request = o.requests ? hops[s] / static_cast<double>(o.requests) : 0;
    o.latency = summarize(pooled[s]);
    o.background_cpu = background[s].share();
    o.cpu_us_per_request = background[s].self_us_per(o.requests);
  }
  return out;
}

namespace {

// One open-loop run; its raw latencies and send lags are appended to
// `pooled` and `pooled_lag` if given.
run_figures run_open(double rate, std::uint64_t requests, const load_run::issue_fn& issue,
                     std::vector<std::uint32_t>* pooled,
                     std::vector<std::uint32_t>* pooled_lag) {
  load_run run(requests, issue);
  std::vector<std::uint32_t> lag(requests);
  const double interval_ns = 1e9 / rate;
  const auto before = cpu_snapshot::now();
  const auto t0 = now_ns() + 1'000'000;
  for (std::uint64_t id = 0; id < requests; ++id) {
    const auto due = t0 + static_cast<std::int64_t>(std::llround(static_cast<double>(id) * interval_ns));
    auto t = now_ns();
    while (t < due) {
      SWITCHYARD_BENCH_PAUSE();
      t = now_ns();
    }
    lag[id] = clamp_ns(t - due);
    run.launch(id, due);
  }
  if (!run.wait(lost_request_timeout_s))
    throw std::runtime_error("open loop: requests never answered");
  background_meter background;
  background.add(before, cpu_snapshot::now());
  auto f = run.figures(t0);
  if (pooled)
    run.append_latencies(*pooled);
  if (pooled_lag)
    pooled_lag->insert(pooled_lag->end(), lag.begin(), lag.end());
  f.issue_lag = summarize(lag);
  f.background_cpu = background.share();
  f.cpu_us_per_request = background.self_us_per(requests);
  return f;
}

} // namespace

run_figures open_loop(double rate, std::uint64_t requests,
                      const load_run::issue_fn& issue) {
  return run_open(rate, requests, issue, nullptr, nullptr);
}

run_figures measure_open(double rate, double seconds, const load_run::issue_fn& issue) {
  return measure_open_interleaved(rate, seconds, 1, {issue}).front();
}

std::vector<run_figures> measure_open_interleaved(double rate, double seconds, int trials,
                                                  const std::vector<load_run::issue_fn>& subjects) {
  const auto warm_up = static_cast<std::uint64_t>(std::max(1000.0, rate * 0.3));
  const auto per_trial = static_cast<std::uint64_t>(
    std::max(5000.0 / trials, rate * seconds / trials));
  for (const auto& issue : subjects)
    open_loop(rate, warm_up, issue);
  std::vector<run_figures> out(subjects.size());
  std::vector<std::vector<std::uint32_t>> pooled(subjects.size());
  std::vector<std::vector<std::uint32_t>> lags(subjects.size());
  std::vector<double> cpu_us(subjects.size());
  std::vector<double> background(subjects.size());
  for (int t = 0; t < trials; ++t)
    for (std::size_t s = 0; s < subjects.size(); ++s) {
      // The others ran meanwhile: a short warm-up wakes this one's threads.
      if (trials > 1)
        open_loop(rate, std::max<std::uint64_t>(200, per_trial / 20), subjects[s]);
      auto f = run_open(rate, per_trial, subjects[s], &pooled[s], &lags[s]);
      auto& o = out[s];
      o.requests += f.requests;
      o.seconds += f.seconds;
      o.failed += f.failed;
      o.trial_req_per_s.push_back(f.req_per_s);
      cpu_us[s] += f.cpu_us_per_request * static_cast<double>(f.requests);
      background[s] += f.background_cpu * f.seconds;
    }
  for (std::size_t s = 0; s < subjects.size(); ++s) {
    auto& o = out[s];
    o.req_per_s = o.seconds > 0 ? static_cast<double>(o.requests) / o.seconds : 0;
    o.latency = summarize(pooled[s]);
    o.issue_lag = summarize(lags[s]);
    o.cpu_us_per_request = o.requests ? cpu_us[s] / static_cast<double>(o.requests) : 0;
    o.background_cpu = o.seconds > 0 ? background[s] / o.seconds : 0;
  }
  return out;
}

cpu_snapshot cpu_snapshot::now() {
  cpu_snapshot c;
  {
    std::ifstream stat("/proc/stat");
    std::string cpu;
    stat >> cpu; // "cpu": the sum over all cores
    std::uint64_t v[8] = {};
    for (auto& x : v)
      stat >> x;
    // user nice system idle iowait irq softirq steal
    for (auto x : v)
      c.total += x;
    c.busy = c.total - v[3] - v[4];
  }
  {
    std::ifstream self("/proc/self/stat");
    std::string text((std::istreambuf_iterator<char>(self)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may hold spaces) in parentheses;
    // utime and stime are fields 14 and 15, i.e. 12th and 13th after it.
    auto close = text.rfind(')');
    std::istringstream rest(close == std::string::npos ? std::string{} : text.substr(close + 2));
    std::string field;
    std::uint64_t utime = 0;
    std::uint64_t stime = 0;
    for (int i = 3; i <= 15 && rest >> field; ++i) {
      if (i == 14)
        utime = std::stoull(field);
      if (i == 15)
        stime = std::stoull(field);
    }
    c.self = utime + stime;
  }
  return c;
}

void background_meter::add(const cpu_snapshot& from, const cpu_snapshot& to) {
  total += to.total - from.total;
  const auto busy = to.busy - from.busy;
  const auto mine = to.self - from.self;
  others += busy > mine ? busy - mine : 0;
  self += mine;
}

double background_meter::self_us_per(std::uint64_t requests) const {
  static const double us_per_tick = 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
  return requests ? static_cast<double>(self) * us_per_tick / static_cast<double>(requests) : 0;
}

std::int64_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::int64_t size = 0;
  std::int64_t resident = 0;
  statm >> size >> resident;
  return resident * static_cast<std::int64_t>(sysconf(_SC_PAGESIZE));
}

std::int64_t peak_rss_while(std::int64_t deadline_ns, const std::function<bool()>& held) {
  std::int64_t peak = 0;
  std::int64_t last = 0;
  int stable = 0;
  while (now_ns() < deadline_ns && stable < 5) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    auto rss = resident_bytes();
    if (!held())
      break;
    peak = std::max(peak, rss);
    stable = std::llabs(rss - last) < rss / 500 ? stable + 1 : 0;
    last = rss;
  }
  return peak;
}

} // namespace switchyard::bench
