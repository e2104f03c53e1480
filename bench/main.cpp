// switchyard-bench: measures the router against the bare CAF cost of its
// message pattern, in one run, and checks the performance targets against
// that run's own figures. `--json` prints one JSON object on stdout; without
// it, a table. Progress goes to stderr. See bench/README.md.

#include "baseline.hpp"
#include "load.hpp"
#include "machine.hpp"
#include "pick.hpp"
#include "route.hpp"
#include "nginx_upstream.hpp"
#include "redis.hpp"
#include "transport.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>

#include <unistd.h>

namespace sb = switchyard::bench;
using nlohmann::json;
using load_run_issue = sb::load_run::issue_fn;

namespace {

const std::set<std::string> scenario_names = {
  "baseline", "route_healthy", "route_failover", "route_sharded",
  "latency_at_load", "pick", "memory", "transport",
  "redis_propagation", "redis_cost", "redis_fleet"};
const std::set<std::string> redis_scenarios = {"redis_propagation", "redis_cost",
                                               "redis_fleet"};

struct options {
  bool json = false;
  bool quick = false;
  std::set<std::string> only;
  std::uint64_t seed = 42;
  std::uint64_t memory_requests = 100'000;
  /// Internal: run only the transport memory figure, in this fresh process,
  /// and print it as one JSON line (the parent re-executes itself so).
  std::uint64_t transport_memory_child = 0;
  /// Internal: be the second replica of redis_propagation (this Redis port).
  int redis_child_port = 0;
  /// Print the table of an earlier --json run instead of running.
  std::string print_file;

  bool wants(const std::string& name) const {
    return only.empty() || only.count(name) > 0;
  }
};

void usage(std::ostream& out) {
  out << "usage: switchyard-bench [--json] [--quick] [--only NAME[,NAME...]] [--seed N]\n"
         "                        [--memory-requests N] [--print FILE]\n"
         "  --json    one JSON object on stdout (default: a table)\n"
         "  --quick   short measurements (for profilers; figures are rougher)\n"
         "  --only    run only these scenarios: baseline, route_healthy,\n"
         "            route_failover, route_sharded, latency_at_load, pick, memory,\n"
         "            transport, redis_propagation, redis_cost, redis_fleet (these\n"
         "            start their own redis-server; skipped without one)\n"
         "  --print   print the table of a saved --json run and exit\n";
}

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        usage(std::cerr);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--json") {
      o.json = true;
    } else if (a == "--quick") {
      o.quick = true;
    } else if (a == "--only") {
      std::stringstream names{value()};
      std::string n;
      while (std::getline(names, n, ','))
        if (scenario_names.count(n))
          o.only.insert(n);
        else {
          std::cerr << "switchyard-bench: unknown scenario '" << n << "'\n";
          std::exit(2);
        }
    } else if (a == "--seed") {
      o.seed = std::stoull(value());
    } else if (a == "--memory-requests") {
      o.memory_requests = std::stoull(value());
    } else if (a == "--print") {
      o.print_file = value();
    } else if (a == "--redis-child") {
      o.redis_child_port = std::stoi(value());
    } else if (a == "--transport-memory-child") {
      o.transport_memory_child = std::stoull(value());
    } else if (a == "--help" || a == "-h") {
      usage(std::cout);
      std::exit(0);
    } else {
      usage(std::cerr);
      std::exit(2);
    }
  }
  return o;
}

void progress(const std::string& what) {
  std::cerr << "[switchyard-bench] " << what << std::endl;
}

double round_to(double v, int digits) {
  const double f = std::pow(10.0, digits);
  return std::round(v * f) / f;
}

json load_result(const std::string& name, std::size_t workers,
                 std::optional<std::size_t> in_flight, const sb::run_figures& f) {
  json r = {{"name", name}, {"workers", workers}};
  if (in_flight)
    r["in_flight"] = *in_flight;
  r["requests"] = f.requests;
  r["req_per_s"] = std::round(f.req_per_s);
  r["p50_us"] = round_to(f.latency.p50_us, 2);
  r["p99_us"] = round_to(f.latency.p99_us, 2);
  r["p999_us"] = round_to(f.latency.p999_us, 2);
  r["max_us"] = round_to(f.latency.max_us, 2);
  r["failed"] = f.failed;
  r["background_cpu"] = round_to(f.background_cpu, 3);
  r["cpu_us_per_request"] = round_to(f.cpu_us_per_request, 2);
  if (!f.trial_req_per_s.empty()) {
    json trials = json::array();
    for (auto t : f.trial_req_per_s)
      trials.push_back(std::round(t));
    r["trial_req_per_s"] = trials;
  }
  return r;
}

// The figures targets are computed from, keyed "scenario/workers".
struct figures {
  std::map<std::string, double> v;
  /// Share of the CPU other processes used while v[key] was measured.
  std::map<std::string, double> noise;
  double noise_of(std::initializer_list<std::string> keys) const {
    double n = 0;
    for (const auto& k : keys)
      if (auto i = noise.find(k); i != noise.end())
        n = std::max(n, i->second);
    return n;
  }
  std::optional<double> get(const std::string& k) const {
    auto i = v.find(k);
    return i == v.end() ? std::nullopt : std::optional<double>(i->second);
  }
};

std::string fmt_num(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

json target(const std::string& name, double value, const std::string& comparison,
            double limit, const std::string& unit, double noise,
            const std::string& detail = {}) {
  const bool met = comparison == "<=" ? value <= limit : value >= limit;
  json t = {{"name", name},         {"value", round_to(value, 3)},
            {"limit", limit},       {"comparison", comparison},
            {"unit", unit},         {"met", met}};
  if (!detail.empty())
    t["detail"] = detail;
  // The most CPU other processes took while its inputs were measured.
  t["background_cpu"] = round_to(noise, 3);
  return t;
}

json compute_targets(const figures& f) {
  json out = json::array();
  for (int w : {1, 2}) {
    auto ws = std::to_string(w);
    auto b = f.get("baseline/" + ws);
    auto h = f.get("route_healthy/" + ws);
    if (b && h)
      out.push_back(target("route_healthy req/s / baseline req/s, " + ws + " worker(s)",
                           *h / *b, ">=", 0.6, "ratio",
                           f.noise_of({"baseline/" + ws, "route_healthy/" + ws})));
  }
  for (int w : {1, 2}) {
    auto ws = std::to_string(w);
    if (auto p = f.get("latency_at_load.p99/" + ws)) {
      std::string detail = w == 1 ? "the open-loop sender spins on the other core"
                                  : "the open-loop sender shares the 2 cores with the 2 workers";
      // The floor: bare CAF's p99 with the same pattern and offered rate.
      for (const char* pct : {"50", "25", "5"}) {
        const auto key = std::string("@") + pct + "/" + ws;
        auto r = f.get("latency.p99" + key);
        auto b = f.get("baseline.p99" + key);
        if (r && b)
          detail += std::string("; at ") + pct + "% load p99 " + fmt_num("%.0f", *r)
                    + " us, bare CAF " + fmt_num("%.0f", *b) + " us";
      }
      out.push_back(target("latency_at_load p99, " + ws + " worker(s)", *p, "<=", 50,
                           "us", f.noise_of({"latency_at_load.p99/" + ws}), detail));
      // Issue 12.9: within 2x of bare CAF's own pattern at the same offered
      // rate, in the same run.
      if (auto b = f.get("baseline.p99@50/" + ws); b && *b > 0)
        out.push_back(target("latency_at_load p99 / baseline_at_load p99, " + ws + " worker(s)",
                             *p / *b, "<=", 2, "ratio",
                             f.noise_of({"latency_at_load.p99/" + ws, "baseline.p99@50/" + ws})));
    }
  }
  if (auto p = f.get("pick/8"))
    out.push_back(target("pick, 8 deployments", *p, "<=", 50, "ns", 0));
  if (auto p = f.get("pick/1000"))
    out.push_back(target("pick, 1000 deployments", *p, "<=", 200, "ns", 0));
  for (const char* n : {"64", "512"}) {
    auto t = f.get(std::string("transport/") + n);
    auto b = f.get(std::string("transport_bare/") + n);
    if (t && b)
      out.push_back(target(std::string("transport req/s / bare libcurl req/s, ") + n + " in flight",
                           *t / *b, ">=", 0.7, "ratio",
                           f.noise_of({std::string("transport/") + n,
                                       std::string("transport_bare/") + n})));
  }
  if (auto m = f.get("transport.bytes_per_call"))
    out.push_back(target("transport memory per in-flight HTTP call", *m, "<=", 65536, "bytes", 0));
  if (auto m = f.get("memory"))
    out.push_back(target("memory per in-flight request", *m, "<=", 4096, "bytes", 0));
  {
    auto s1 = f.get("route_sharded/1");
    auto s2 = f.get("route_sharded/2");
    if (s1 && s2)
      out.push_back(target("route_sharded req/s, 2 workers / 1 worker", *s2 / *s1, ">=",
                           1.2, "ratio", f.noise_of({"route_sharded/1", "route_sharded/2"})));
  }
  for (int w : {1, 2}) {
    auto ws = std::to_string(w);
    auto h = f.get("route_healthy/" + ws);
    auto fo = f.get("route_failover/" + ws);
    auto hops = f.get("route_failover.hops/" + ws);
    if (h && fo && hops && *hops > 1) {
      // Throughput cost per request (wall time of the whole system), and
      // what each extra hop adds to it.
      const double healthy_us = 1e6 / *h;
      const double failover_us = 1e6 / *fo;
      const double hop_us = (failover_us - healthy_us) / (*hops - 1);
      char detail[160];
      std::snprintf(detail, sizeof detail,
                    "hop %.2f us vs healthy request %.2f us (1e6 / req_per_s), "
                    "%.3f hops per request",
                    hop_us, healthy_us, *hops);
      out.push_back(target("failover hop cost / healthy request cost, " + ws + " worker(s)",
                           hop_us / healthy_us, "<=", 1.0, "ratio",
                           f.noise_of({"route_healthy/" + ws, "route_failover/" + ws}), detail));
    }
  }
  return out;
}

// Resident bytes per in-flight HTTP call, measured by this program
// re-executed with --transport-memory-child (a fresh heap); its JSON line.
json transport_memory(const options& opt, std::size_t calls) {
  // popen runs a shell: /proc/self/exe would be the shell, so resolve it here.
  char self[4096];
  const auto len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0)
    return json{{"skipped", "cannot resolve /proc/self/exe for the memory child"}};
  self[len] = 0;
  const std::string cmd = "'" + std::string(self) + "' --transport-memory-child "
                          + std::to_string(calls) + " --seed " + std::to_string(opt.seed);
  FILE* child = popen(cmd.c_str(), "r");
  if (!child)
    return json{{"skipped", "could not re-execute switchyard-bench for the memory figure"}};
  std::string out;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, child))
    out += buf;
  const int status = pclose(child);
  auto j = json::parse(out, nullptr, false);
  if (status != 0 || j.is_discarded() || !j.is_object())
    return json{{"skipped", "the memory child failed (status " + std::to_string(status) + ")"}};
  return j;
}

// transport and transport_bare at 64 and 512 in flight against the static
// nginx upstream, by turns (measure_interleaved), and bytes per call.
void run_transport(const options& opt, double seconds, int trials, json& results,
                   figures& f) {
  const std::size_t workers = 2;
  const std::size_t memory_calls = 512;
  progress("transport memory, " + std::to_string(memory_calls)
           + " calls held by the test upstream (node), in a fresh process");
  const auto mem = transport_memory(opt, memory_calls);
  if (mem.contains("bytes_per_call"))
    f.v["transport.bytes_per_call"] = mem["bytes_per_call"].get<double>();
  std::unique_ptr<sb::nginx_upstream> upstream;
  try {
    upstream = std::make_unique<sb::nginx_upstream>();
  } catch (const std::exception& e) {
    progress(std::string("transport skipped: ") + e.what());
    for (const char* name : {"transport", "transport_bare"})
      results.push_back({{"name", name}, {"skipped", e.what()}});
    return;
  }
  progress("transport upstream: nginx on " + upstream->base_url());
  for (std::size_t n : {64, 512}) {
    sb::bare_curl_loop bare{upstream->base_url() + "/v1/chat/completions",
                            sb::bench_chat_body(), n + 64};
    switchyard::router_options ro;
    ro.seed = opt.seed;
    ro.threads = workers;
    ro.http_client.max_connections_per_host = 0; // n connections at once
    ro.http_client.connection_cache = n + 64;
    sb::route_bench router{sb::make_http_config({upstream->base_url() + "/v1"}, 2),
                           std::move(ro), 1};
    progress("transport, " + std::to_string(n) + " in flight, " + std::to_string(trials)
             + " rounds of: transport_bare transport");
    auto figs = sb::measure_interleaved(n, seconds, trials, {bare.issue(), router.issue()});
    const auto ns = std::to_string(n);
    auto jb = load_result("transport_bare", 1, n, figs[0]);
    jb["upstream"] = "nginx static, 127.0.0.1";
    auto jt = load_result("transport", workers, n, figs[1]);
    jt["upstream"] = "nginx static, 127.0.0.1";
    jt["deployments"] = 2;
    if (mem.contains("bytes_per_call")) {
      jt["bytes_per_call"] = mem["bytes_per_call"];
      jt["memory_calls"] = mem["calls"];
      jt["memory_rss_idle_bytes"] = mem["rss_idle_bytes"];
      jt["memory_rss_in_flight_bytes"] = mem["rss_in_flight_bytes"];
      jt["memory_upstream"] = "tests/upstream/upstream.mjs, delay_ms=" + fmt_num("%.0f", mem["delay_ms"].get<double>());
    } else if (mem.contains("skipped")) {
      jt["bytes_per_call_skipped"] = mem["skipped"];
    }
    results.push_back(jb);
    results.push_back(jt);
    f.v["transport_bare/" + ns] = figs[0].req_per_s;
    f.noise["transport_bare/" + ns] = figs[0].background_cpu;
    f.v["transport/" + ns] = figs[1].req_per_s;
    f.noise["transport/" + ns] = figs[1].background_cpu;
  }
}

void print_table(const json& doc) {
  const auto& m = doc["machine"];
  std::printf("Switchyard benchmark\n");
  std::printf("machine: %s, %d cores, %.1f GiB, %s\n", m["cpu"].get<std::string>().c_str(),
              m["cores"].get<int>(),
              m["memory_bytes"].get<double>() / (1024.0 * 1024 * 1024),
              m.value("kernel", std::string("?")).c_str());
  std::printf("build:   %s, CAF %s, %s; load average at start %s\n",
              m["compiler"].get<std::string>().c_str(),
              m["caf_version"].get<std::string>().c_str(),
              m["build_type"].get<std::string>().c_str(),
              m["load_average_at_start"].dump().c_str());
  std::printf("elapsed: %.1f s\n\n", doc["elapsed_s"].get<double>());

  std::printf("%-16s %7s %9s %9s %10s %9s %9s %9s %7s  %s\n", "scenario", "workers",
              "in_flight", "requests", "req/s", "p50_us", "p99_us", "p999_us", "cpu_us", "notes");
  for (const auto& r : doc["results"]) {
    const auto name = r["name"].get<std::string>();
    if (name == "pick" || name == "group_pick" || name == "memory"
        || redis_scenarios.count(name))
      continue;
    if (r.contains("skipped")) {
      std::printf("%-16s skipped: %s\n", name.c_str(), r["skipped"].get<std::string>().c_str());
      continue;
    }
    std::string notes;
    if (r.contains("hops_per_request"))
      notes += "hops/request " + fmt_num("%.3f", r["hops_per_request"].get<double>()) + "  ";
    if (r.contains("cores_note"))
      notes += r["cores_note"].get<std::string>() + "  ";
    if (r.contains("bytes_per_call_skipped"))
      notes += "bytes per call skipped: " + r["bytes_per_call_skipped"].get<std::string>() + "  ";
    if (r.contains("bytes_per_call"))
      notes += "bytes per in-flight call " + fmt_num("%.0f", r["bytes_per_call"].get<double>())
               + " (" + std::to_string(r["memory_calls"].get<int>()) + " held)  ";
    if (r.contains("upstream"))
      notes += r["upstream"].get<std::string>() + "  ";
    if (r.contains("load_fraction"))
      notes += fmt_num("%.0f", 100 * r["load_fraction"].get<double>()) + "% of saturation, ";
    if (r.contains("offered_req_per_s"))
      notes += "offered " + fmt_num("%.0f", r["offered_req_per_s"].get<double>())
               + " req/s, send lag p99 " + fmt_num("%.2f", r["send_lag_p99_us"].get<double>())
               + " us  ";
    if (r["background_cpu"].get<double>() >= 0.05)
      notes += "others used " + fmt_num("%.0f", 100 * r["background_cpu"].get<double>())
               + "% of the CPU  ";
    if (r["failed"].get<std::uint64_t>() > 0)
      notes += "FAILED " + std::to_string(r["failed"].get<std::uint64_t>()) + "  ";
    std::printf("%-16s %7d %9s %9llu %10.0f %9.2f %9.2f %9.2f %7.2f  %s\n", name.c_str(),
                r["workers"].get<int>(),
                r.contains("in_flight") ? std::to_string(r["in_flight"].get<int>()).c_str() : "open",
                static_cast<unsigned long long>(r["requests"].get<std::uint64_t>()),
                r["req_per_s"].get<double>(), r["p50_us"].get<double>(),
                r["p99_us"].get<double>(), r["p999_us"].get<double>(),
                r["cpu_us_per_request"].get<double>(), notes.c_str());
  }
  for (const auto& r : doc["results"])
    if (r["name"] == "pick")
      std::printf("pick             %5d deployments: %7.1f ns/pick (median of 7 rounds; min %.1f)\n",
                  r["deployments"].get<int>(), r["ns_per_pick"].get<double>(),
                  r["min_ns_per_pick"].get<double>());
  for (const auto& r : doc["results"])
    if (r["name"] == "group_pick")
      std::printf("group_pick       %-22s %5d deployments (%d cooling, 2 excluded): "
                  "%7.1f ns/pick+on_finished (median; min %.1f)\n",
                  r["strategy"].get<std::string>().c_str(), r["deployments"].get<int>(),
                  r["cooling"].get<int>(), r["ns_per_pick"].get<double>(),
                  r["min_ns_per_pick"].get<double>());
  for (const auto& r : doc["results"])
    if (r["name"] == "memory")
      std::printf("memory           %llu in flight, %d workers: %.0f bytes/request "
                  "(RSS %.1f MiB -> %.1f MiB; mock latency %.0f ms)\n",
                  static_cast<unsigned long long>(r["in_flight"].get<std::uint64_t>()),
                  r["workers"].get<int>(), r["bytes_per_request"].get<double>(),
                  r["rss_before_bytes"].get<double>() / 1048576.0,
                  r["rss_in_flight_bytes"].get<double>() / 1048576.0,
                  r["mock_latency_ms"].get<double>());
  sb::print_redis_results(doc["results"]);

  std::printf("\ntargets\n");
  for (const auto& t : doc["targets"]) {
    std::printf("  [%s] %-52s %10.3f %s %g %s\n", t["met"].get<bool>() ? " met  " : "MISSED",
                t["name"].get<std::string>().c_str(), t["value"].get<double>(),
                t["comparison"].get<std::string>().c_str(), t["limit"].get<double>(),
                t["unit"].get<std::string>().c_str());
    if (t.contains("detail"))
      std::printf("           %s\n", t["detail"].get<std::string>().c_str());
    if (t["background_cpu"].get<double>() >= 0.2)
      std::printf("           noisy: other processes used %.0f%% of the CPU meanwhile\n",
                  100 * t["background_cpu"].get<double>());
  }
}

} // namespace

int main(int argc, char** argv) {
  const auto opt = parse(argc, argv);
  // The library logs through spdlog's default logger: keep stdout for us.
  spdlog::set_default_logger(spdlog::stderr_color_mt("switchyard"));
  spdlog::set_level(spdlog::level::warn);

  if (opt.redis_child_port > 0)
    return sb::redis_propagation_child(opt.redis_child_port);

  if (!opt.print_file.empty()) {
    std::ifstream in{opt.print_file};
    auto saved = json::parse(in, nullptr, false);
    if (!in || saved.is_discarded()) {
      std::cerr << "switchyard-bench: " << opt.print_file << " is not a --json run\n";
      return 2;
    }
    print_table(saved);
    return 0;
  }

  if (opt.transport_memory_child > 0) {
    // A fresh heap: nothing freed by other scenarios for these calls to reuse.
    try {
      auto m = sb::measure_call_memory(2, opt.transport_memory_child, 4000, opt.seed);
      std::cout << json{{"calls", m.calls},          {"rss_idle_bytes", m.rss_idle},
                        {"rss_in_flight_bytes", m.rss_in_flight},
                        {"bytes_per_call", std::round(m.bytes_per_call)},
                        {"delay_ms", m.delay_ms},    {"failed", m.failed}}
                     .dump()
                << std::endl;
    } catch (const std::exception& e) {
      std::cout << json{{"skipped", e.what()}}.dump() << std::endl;
    }
    return 0;
  }

  // Measured seconds per subject (scenario and thread count), in rounds.
  const double seconds = opt.quick ? 0.6 : 2.5;
  const int trials = 5;
  const std::size_t in_flight = 256;
  const auto started = sb::now_ns();

  json doc;
  doc["machine"] = sb::machine_info();
  json results = json::array();
  figures f;

  try {
    if (opt.wants("memory")) {
      const std::size_t w = 2;
      const auto n = opt.quick ? std::min<std::uint64_t>(opt.memory_requests, 20'000)
                               : opt.memory_requests;
      // First, in a fresh heap: later scenarios would leave freed memory in
      // malloc's arenas for these requests to reuse, hiding part of their
      // cost. The mock latency is long enough for every request to be
      // parked at its deployment before the first answers: 100 us per
      // request to get there (about ten times a healthy request's cost, for
      // a busy 2-core machine), plus 1.5 s.
      const double latency_ms = std::clamp(0.1 * static_cast<double>(n) + 1500, 3000.0, 30000.0);
      progress("memory, " + std::to_string(n) + " requests in flight, mock latency "
               + fmt_num("%.0f", latency_ms) + " ms");
      auto m = sb::measure_memory(w, n, latency_ms, opt.seed);
      results.push_back({{"name", "memory"},
                         {"workers", w},
                         {"in_flight", m.in_flight_at_sample},
                         {"requests", m.requests},
                         {"bytes_per_request", std::round(m.bytes_per_request)},
                         {"rss_before_bytes", m.rss_before},
                         {"rss_in_flight_bytes", m.rss_in_flight},
                         {"mock_latency_ms", latency_ms},
                         {"issue_seconds", round_to(m.issue_seconds, 3)},
                         {"failed", m.failed}});
      f.v["memory"] = m.bytes_per_request;
    }

    if (opt.wants("pick"))
      for (std::size_t n : {8, 100, 1000}) {
        progress("pick, " + std::to_string(n) + " deployments");
        auto p = sb::measure_pick(n, opt.quick ? 0.1 : 0.35, opt.seed);
        results.push_back({{"name", "pick"},
                           {"deployments", n},
                           {"ns_per_pick", round_to(p.ns_per_pick, 2)},
                           {"min_ns_per_pick", round_to(p.min_ns_per_pick, 2)},
                           {"picks", p.picks}});
        f.v["pick/" + std::to_string(n)] = p.ns_per_pick;
      }
    if (opt.wants("pick"))
      for (const char* strategy : {"simple-shuffle", "least-busy", "latency-based-routing",
                                   "usage-based-routing-v2", "cost-based-routing"})
        for (std::size_t n : {8, 1000}) {
          progress(std::string("group_pick, ") + strategy + ", " + std::to_string(n)
                   + " deployments");
          auto p = sb::measure_group_pick(strategy, n, opt.quick ? 0.05 : 0.2, opt.seed);
          results.push_back({{"name", "group_pick"},
                             {"strategy", strategy},
                             {"deployments", n},
                             {"cooling", (n + 7) / 8},
                             {"excluded", 2},
                             {"ns_per_pick", round_to(p.ns_per_pick, 2)},
                             {"min_ns_per_pick", round_to(p.min_ns_per_pick, 2)},
                             {"picks", p.picks}});
        }

    if (opt.wants("transport"))
      run_transport(opt, seconds, trials, results, f);

    std::set<std::string> redis_wanted;
    for (const auto& name : redis_scenarios)
      if (opt.wants(name))
        redis_wanted.insert(name);
    if (!redis_wanted.empty())
      sb::run_redis(redis_wanted, opt.quick, opt.seed, results);

    // Every closed-loop subject lives at once and they run by turns
    // (measure_interleaved), so the ratios compare figures taken under the
    // same background load.
    {
      struct subject {
        std::string name;
        std::size_t workers;
        load_run_issue issue;
        sb::bench_shape shape;
      };
      std::vector<std::unique_ptr<sb::baseline_bench>> baselines;
      std::map<std::size_t, sb::baseline_bench*> baseline_at;
      std::vector<std::unique_ptr<sb::route_bench>> routers;
      std::map<std::size_t, sb::route_bench*> healthy;
      std::vector<subject> subjects;
      sb::bench_shape healthy_shape;
      sb::bench_shape failover_shape;
      failover_shape.failing = 3;
      failover_shape.failover = true;
      sb::bench_shape sharded_shape;
      sharded_shape.groups = 4;
      const bool need_healthy = opt.wants("route_healthy") || opt.wants("latency_at_load");
      for (std::size_t w : {1, 2}) {
        if (opt.wants("baseline")) {
          // As many long-lived actors as the router it is compared with
          // (route_healthy: one group), and no deployment actors either.
          baselines.push_back(std::make_unique<sb::baseline_bench>(w, healthy_shape.groups));
          baseline_at[w] = baselines.back().get();
          subjects.push_back({"baseline", w, baselines.back()->issue(), {}});
        }
        auto add_router = [&](const std::string& name, const sb::bench_shape& shape) {
          routers.push_back(std::make_unique<sb::route_bench>(shape, w, opt.seed));
          subjects.push_back({name, w, routers.back()->issue(), shape});
          return routers.back().get();
        };
        if (need_healthy)
          healthy[w] = add_router("route_healthy", healthy_shape);
        if (opt.wants("route_failover"))
          add_router("route_failover", failover_shape);
        if (opt.wants("route_sharded"))
          add_router("route_sharded", sharded_shape);
      }
      if (!subjects.empty()) {
        std::vector<load_run_issue> issues;
        std::string names;
        for (const auto& s : subjects) {
          issues.push_back(s.issue);
          names += " " + s.name + "/" + std::to_string(s.workers);
        }
        progress("closed loop, " + std::to_string(in_flight) + " in flight, "
                 + std::to_string(trials) + " rounds of:" + names);
        auto figs = sb::measure_interleaved(in_flight, seconds, trials, issues);
        for (std::size_t i = 0; i < subjects.size(); ++i) {
          const auto& s = subjects[i];
          const auto& r = figs[i];
          const auto key = s.name + "/" + std::to_string(s.workers);
          f.v[key] = r.req_per_s;
          f.noise[key] = r.background_cpu;
          if (s.name == "route_healthy" && !opt.wants("route_healthy"))
            continue; // measured only as latency_at_load's saturation
          auto j = load_result(s.name, s.workers, in_flight, r);
          if (s.name == "route_failover") {
            j["hops_per_request"] = round_to(r.hops_per_request, 4);
            j["failing_deployments"] = s.shape.failing;
            j["deployments"] = s.shape.deployments;
            f.v["route_failover.hops/" + std::to_string(s.workers)] = r.hops_per_request;
          }
          if (s.name == "route_sharded")
            j["groups"] = s.shape.groups;
          results.push_back(j);
        }
      }
      if (opt.wants("latency_at_load"))
        for (auto [w, bench] : healthy) {
          const auto ws = std::to_string(w);
          const double saturation = f.v["route_healthy/" + ws];
          // The target is at half the saturation; 25 % and 5 % show the
          // floor, router and bare CAF alike (bare CAF only with baseline).
          for (const double fraction : {0.5, 0.25, 0.05}) {
            const bool target_point = fraction == 0.5;
            const double rate = saturation * fraction;
            const double secs = target_point ? seconds : seconds / 2;
            const auto pct = fmt_num("%.0f", fraction * 100);
            const auto open_result = [&](const std::string& name, const sb::run_figures& o) {
              auto r = load_result(name, w, std::nullopt, o);
              r["load_fraction"] = fraction;
              r["offered_req_per_s"] = std::round(rate);
              r["saturation_req_per_s"] = std::round(saturation);
              r["send_lag_p99_us"] = round_to(o.issue_lag.p99_us, 2);
              r["send_lag_max_us"] = round_to(o.issue_lag.max_us, 2);
              // What a 2-worker figure is on this machine: the sender holds
              // a core, so the workers get what is left.
              if (w >= sb::machine_cores())
                r["cores_note"] = std::to_string(w) + " workers and the spinning sender share "
                                  + std::to_string(sb::machine_cores())
                                  + " cores: about one core for the router";
              else
                r["cores_note"] = "the sender spins on a core of its own";
              return r;
            };
            progress("latency at " + pct + "% load, " + ws + " worker(s), "
                     + fmt_num("%.0f", rate) + " req/s");
            // With bare CAF's pattern to compare with, the two run by turns
            // (5 rounds), so drifting background load hits both alike.
            auto b = baseline_at.find(w);
            std::vector<sb::run_figures> both;
            if (b != baseline_at.end())
              both = sb::measure_open_interleaved(rate, secs, 5,
                                                  {bench->issue(), b->second->issue()});
            else
              both = {bench->open(rate, secs)};
            const auto& o = both.front();
            results.push_back(open_result(target_point ? "latency_at_load" : "latency_at_fraction", o));
            const auto key = "@" + pct + "/" + ws;
            f.v["latency.p99" + key] = o.latency.p99_us;
            if (target_point) {
              f.v["latency_at_load.p99/" + ws] = o.latency.p99_us;
              f.noise["latency_at_load.p99/" + ws] = o.background_cpu;
            }
            // For reference: bare CAF's pattern at the same offered rate.
            if (both.size() > 1) {
              const auto& bo = both[1];
              results.push_back(
                open_result(target_point ? "baseline_at_load" : "baseline_at_fraction", bo));
              f.v["baseline.p99" + key] = bo.latency.p99_us;
              f.noise["baseline.p99" + key] = bo.background_cpu;
            }
          }
        }
      if (!opt.wants("route_healthy"))
        for (std::size_t w : {1, 2})
          f.v.erase("route_healthy/" + std::to_string(w));
    }

  } catch (const std::exception& e) {
    std::cerr << "switchyard-bench: " << e.what() << "\n";
    return 1;
  }

  doc["results"] = results;
  doc["targets"] = compute_targets(f);
  doc["elapsed_s"] = round_to(static_cast<double>(sb::now_ns() - started) / 1e9, 1);
  if (opt.json)
    std::cout << doc.dump(2) << std::endl;
  else
    print_table(doc);
  return 0;
}
