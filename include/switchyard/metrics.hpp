#pragma once

#include "switchyard/config.hpp"
#include "switchyard/observer.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace switchyard {

enum class metric_type : std::uint8_t { counter, gauge, histogram };

/// One histogram series: observations per bucket (not cumulative), the last
/// entry being the +Inf bucket, with their sum and count.
struct histogram_value {
  std::vector<std::uint64_t> buckets;
  double sum = 0;
  std::uint64_t count = 0;
};

/// One metric family at the time of a snapshot: its series keyed by label
/// values (in the order of label_names), sorted.
struct metric_family {
  std::string name;
  std::string help;
  metric_type type = metric_type::counter;
  std::vector<std::string> label_names;
  /// Histograms: the buckets' upper bounds, ascending, without +Inf.
  std::vector<double> bounds;
  /// Counters and gauges.
  std::map<std::vector<std::string>, double> values;
  /// Histograms.
  std::map<std::vector<std::string>, histogram_value> histograms;
};

/// A copy of every metric family (GATEWAY.md's table), for embedders that
/// export the counts their own way. Plain values: share freely.
struct metrics_snapshot {
  std::vector<metric_family> families;

  /// The family named `name`, or null.
  const metric_family* find(std::string_view name) const;
  /// A counter's or gauge's value; 0 when the series does not exist.
  double value(std::string_view name, const std::vector<std::string>& labels = {}) const;
  /// A histogram series, or null.
  const histogram_value* histogram(std::string_view name,
                                   const std::vector<std::string>& labels) const;
};

/// The router_observer behind `/metrics`: counts the router's events into
/// the metric families of GATEWAY.md and hands them out as a snapshot or as
/// Prometheus text exposition (format 0.0.4).
///
/// Thread-safe: the router calls it from its worker threads concurrently,
/// and snapshot() and prometheus_text() may run at the same time. Each
/// family has its own mutex, held for one map update (a hash lookup and an
/// add), so an event costs a few short uncontended locks. Labels are
/// deployment ids, group names and error kind names only.
class metrics : public router_observer {
public:
  using clock = std::chrono::steady_clock;
  using clock_fn = std::function<clock::time_point()>;

  /// `now` tells when a cooldown's announced length has run out (the
  /// cooling gauge drops to 0 then, even without an "ended" event);
  /// injected so tests can drive it. Null: steady_clock::now.
  explicit metrics(clock_fn now = nullptr);
  ~metrics() override;

  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  /// Creates the series every deployment of `config` has from the start
  /// (cooling at 0), so a scrape shows them before their first event, and
  /// from then on counts requests for a model that is no group of
  /// `config` under model_group="(unknown)". Call it before events flow.
  void declare(const router_config& config);

  void on_request(const request_event& e) override;
  void on_attempt(const attempt_event& e) override;
  void on_cooldown(const cooldown_event& e) override;
  void on_admission_refused(const admission_event& e) override;
  /// Resilience (README "Resilience beyond LiteLLM"): budget refusals come
  /// with each request_event; panic transitions are counted here.
  void on_panic(const panic_event& e) override;

  /// The observer interface has no "request started" event: whoever admits
  /// requests (the gateway) moves the in-flight gauge by +1 / -1.
  void add_in_flight(std::int64_t delta) noexcept;

  /// Deployment ids cooling down now, sorted.
  std::vector<std::string> cooling_deployments() const;

  metrics_snapshot snapshot() const;
  std::string prometheus_text() const;

  /// The upper bounds (seconds) of every duration histogram's buckets.
  static const std::vector<double>& duration_buckets();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Renders a snapshot as Prometheus text exposition format 0.0.4: `# HELP`
/// and `# TYPE` lines, label values escaped (backslash, quote, newline).
std::string prometheus_text(const metrics_snapshot& snapshot);

} // namespace switchyard
