#include "switchyard/metrics.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace switchyard {

namespace {

using labels = std::vector<std::string>;

// Upper bounds in seconds: LLM calls take from milliseconds (a cache or a
// mock) to minutes (long generations), so the buckets span 5 ms to 5 min.
const std::vector<double> duration_bounds = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                             2.5,   5,    10,    30,   60,  120,  300};

constexpr char label_separator = '\x1f';
constexpr std::string_view unknown_group = "(unknown)";

std::string outcome_label(const std::optional<error_kind>& error) {
  return error ? std::string(name_of(*error)) : std::string("ok");
}

// One family: its series under a mutex of its own. A series is found by its
// label values joined with a separator, so that an event for an existing
// series allocates nothing (the key is built in a thread-local buffer).
class family {
public:
  family(std::string name, std::string help, metric_type type, labels label_names)
    : data_{std::move(name), std::move(help), type, std::move(label_names), {}, {}, {}} {
    if (type == metric_type::histogram)
      data_.bounds = duration_bounds;
  }

  void add(std::initializer_list<std::string_view> values, double v) {
    std::lock_guard<std::mutex> lock(mutex_);
    series(values).value += v;
  }
  void set(std::initializer_list<std::string_view> values, double v) {
    std::lock_guard<std::mutex> lock(mutex_);
    series(values).value = v;
  }
  void observe(std::initializer_list<std::string_view> values, double v) {
    // A negative or NaN duration is a bug upstream; count it in the first
    // bucket rather than lose it or poison the sum.
    if (!(v >= 0))
      v = 0;
    const auto bucket = static_cast<std::size_t>(
      std::lower_bound(data_.bounds.begin(), data_.bounds.end(), v) - data_.bounds.begin());
    std::lock_guard<std::mutex> lock(mutex_);
    auto& s = series(values);
    if (s.hist.buckets.empty())
      s.hist.buckets.assign(data_.bounds.size() + 1, 0);
    ++s.hist.buckets[bucket];
    s.hist.sum += v;
    ++s.hist.count;
  }

  metric_family copy() const {
    metric_family out{data_.name, data_.help, data_.type, data_.label_names, data_.bounds, {}, {}};
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [key, s] : series_) {
      if (data_.type == metric_type::histogram)
        out.histograms.emplace(s.label_values, s.hist);
      else
        out.values.emplace(s.label_values, s.value);
    }
    return out;
  }

private:
  struct entry {
    labels label_values;
    double value = 0;
    histogram_value hist;
  };

  // Called with mutex_ held.
  entry& series(std::initializer_list<std::string_view> values) {
    thread_local std::string key;
    key.clear();
    for (auto v : values) {
      key.append(v.data(), v.size());
      key += label_separator;
    }
    auto it = series_.find(key);
    if (it == series_.end()) {
      entry e;
      for (auto v : values)
        e.label_values.emplace_back(v);
      it = series_.emplace(key, std::move(e)).first;
    }
    return it->second;
  }

  mutable std::mutex mutex_;
  metric_family data_;
  std::unordered_map<std::string, entry> series_;
};

// Shortest text that reads back as the same double; integers without a
// fraction, infinities as Prometheus spells them.
std::string format_value(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

void append_escaped(std::string& out, std::string_view text, bool quote_too) {
  for (char c : text) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote_too)
      out += "\\\"";
    else
      out += c;
  }
}

// `{a="x",b="y"}` with an optional extra label (`le` of a bucket); empty
// when there are no labels at all.
std::string label_block(const labels& names, const labels& values,
                        std::string_view extra_name = {}, std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty())
    return {};
  std::string out = "{";
  for (std::size_t i = 0; i < names.size() && i < values.size(); ++i) {
    if (i)
      out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty())
      out += ',';
    out += extra_name;
    out += "=\"";
    append_escaped(out, extra_value, true);
    out += '"';
  }
  out += '}';
  return out;
}

const char* type_name(metric_type t) {
  switch (t) {
  case metric_type::counter:
    return "counter";
  case metric_type::gauge:
    return "gauge";
  case metric_type::histogram:
    return "histogram";
  }
  return "untyped";
}

void append_histogram(std::string& out, const metric_family& f, const labels& values,
                      const histogram_value& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= f.bounds.size(); ++i) {
    cumulative += i < h.buckets.size() ? h.buckets[i] : 0;
    const std::string le = i < f.bounds.size() ? format_value(f.bounds[i]) : "+Inf";
    out += f.name + "_bucket" + label_block(f.label_names, values, "le", le) + ' '
           + std::to_string(cumulative) + '\n';
  }
  const std::string block = label_block(f.label_names, values);
  out += f.name + "_sum" + block + ' ' + format_value(h.sum) + '\n';
  out += f.name + "_count" + block + ' ' + std::to_string(h.count) + '\n';
}

} // namespace

const metric_family* metrics_snapshot::find(std::string_view name) const {
  for (const auto& f : families)
    if (f.name == name)
      return &f;
  return nullptr;
}

double metrics_snapshot::value(std::string_view name, const std::vector<std::string>& l) const {
  const auto* f = find(name);
  if (!f)
    return 0;
  auto it = f->values.find(l);
  return it == f->values.end() ? 0 : it->second;
}

const histogram_value* metrics_snapshot::histogram(std::string_view name,
                                                   const std::vector<std::string>& l) const {
  const auto* f = find(name);
  if (!f)
    return nullptr;
  auto it = f->histograms.find(l);
  return it == f->histograms.end() ? nullptr : &it->second;
}

struct metrics::impl {
  clock_fn now;
  family requests{"switchyard_requests_total",
                  "Requests answered, by model group and outcome (ok or the error kind).",
                  metric_type::counter,
                  {"model_group", "outcome"}};
  family request_duration{"switchyard_request_duration_seconds",
                          "Time from admission to the answer, by model group.",
                          metric_type::histogram,
                          {"model_group"}};
  family deployment_calls{"switchyard_deployment_calls_total",
                          "Deployment calls, by deployment and outcome.",
                          metric_type::counter,
                          {"deployment", "outcome"}};
  family deployment_latency{"switchyard_deployment_latency_seconds",
                            "Duration of deployment calls, by deployment.",
                            metric_type::histogram,
                            {"deployment"}};
  family first_token{"switchyard_time_to_first_token_seconds",
                     "Time to the first token of streamed deployment calls, by deployment.",
                     metric_type::histogram,
                     {"deployment"}};
  family failovers{"switchyard_failovers_total", "Weighted-failover hops, by model group.",
                   metric_type::counter,
                   {"model_group"}};
  family fallbacks{"switchyard_fallbacks_total", "Cross-group fallback hops, by model group.",
                   metric_type::counter,
                   {"model_group"}};
  family retries{"switchyard_retries_total", "Retries within a hop, by model group.",
                 metric_type::counter,
                 {"model_group"}};
  family cooldowns{"switchyard_cooldowns_total", "Cooldowns started, by deployment.",
                   metric_type::counter,
                   {"deployment"}};
  family budget_refused{"switchyard_retry_budget_refused_total",
                        "Extra calls (retries, failovers, hedges) the retry budget refused, by model group.",
                        metric_type::counter,
                        {"model_group"}};
  family panics{"switchyard_panic_transitions_total",
                "Times a model group entered or left panic (panic_threshold), by group and state.",
                metric_type::counter,
                {"model_group", "state"}};
  family tokens{"switchyard_tokens_total",
                "Tokens of deployment calls, by deployment and type (prompt, completion).",
                metric_type::counter,
                {"deployment", "type"}};

  // The cooling gauge is computed at read time: a cooldown ends on its own
  // when its length runs out, and the router need not say so.
  mutable std::mutex cooling_mutex;
  /// Deployment -> end of its cooldown (time_point::max(): until "ended").
  std::map<std::string, std::optional<clock::time_point>, std::less<>> cooling;

  // Set by declare(), before any event: the groups a model_group label may
  // name. A request for a name that is no group (a client's typo, or junk)
  // counts under unknown_group, so clients cannot mint label values.
  std::unordered_set<std::string> known_groups;
  bool groups_declared = false;

  std::string_view group_label(std::string_view name) const {
    if (!groups_declared || known_groups.count(std::string(name)))
      return name;
    return unknown_group;
  }

  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::uint64_t> overload_rejections{0};

  bool is_cooling(const std::optional<clock::time_point>& until,
                  clock::time_point t) const {
    return until && t < *until;
  }
};

metrics::metrics(clock_fn now) : impl_(std::make_unique<impl>()) {
  impl_->now = now ? std::move(now) : clock_fn([] { return clock::now(); });
}

metrics::~metrics() = default;

const std::vector<double>& metrics::duration_buckets() {
  return duration_bounds;
}

void metrics::declare(const router_config& config) {
  impl_->groups_declared = true;
  for (const auto& g : config.groups)
    impl_->known_groups.insert(g.name);
  std::lock_guard<std::mutex> lock(impl_->cooling_mutex);
  for (const auto& d : config.deployments)
    impl_->cooling.try_emplace(d.id, std::nullopt);
}

void metrics::on_request(const request_event& e) {
  auto& m = *impl_;
  const auto group = m.group_label(e.model_group);
  m.requests.add({group, outcome_label(e.error)}, 1);
  m.request_duration.observe({group}, e.duration_ms / 1000.0);
  m.failovers.add({group}, e.failovers);
  m.fallbacks.add({group}, e.fallbacks);
  m.retries.add({group}, e.retries);
  if (e.budget_refused > 0)
    m.budget_refused.add({group}, e.budget_refused);
}

void metrics::on_panic(const panic_event& e) {
  impl_->panics.add({e.model_group, e.entered ? "entered" : "left"}, 1);
}

void metrics::on_attempt(const attempt_event& e) {
  auto& m = *impl_;
  m.deployment_calls.add({e.deployment_id, outcome_label(e.outcome)}, 1);
  m.deployment_latency.observe({e.deployment_id}, e.latency_ms / 1000.0);
  if (e.first_token_ms)
    m.first_token.observe({e.deployment_id}, *e.first_token_ms / 1000.0);
  m.tokens.add({e.deployment_id, "prompt"}, static_cast<double>(e.prompt_tokens));
  m.tokens.add({e.deployment_id, "completion"}, static_cast<double>(e.completion_tokens));
}

void metrics::on_cooldown(const cooldown_event& e) {
  auto& m = *impl_;
  if (e.started)
    m.cooldowns.add({e.deployment_id}, 1);
  std::optional<clock::time_point> until;
  if (e.started) {
    // No usable length: cooling until the router says it ended.
    until = e.seconds > 0 && std::isfinite(e.seconds)
              ? m.now() + std::chrono::duration_cast<clock::duration>(
                  std::chrono::duration<double>(e.seconds))
              : clock::time_point::max();
  }
  std::lock_guard<std::mutex> lock(m.cooling_mutex);
  auto it = m.cooling.find(e.deployment_id);
  if (it == m.cooling.end())
    m.cooling.emplace(std::string(e.deployment_id), until);
  else
    it->second = until;
}

void metrics::on_admission_refused(const admission_event&) {
  impl_->overload_rejections.fetch_add(1, std::memory_order_relaxed);
}

void metrics::add_in_flight(std::int64_t delta) noexcept {
  impl_->in_flight.fetch_add(delta, std::memory_order_relaxed);
}

std::vector<std::string> metrics::cooling_deployments() const {
  const auto t = impl_->now();
  std::vector<std::string> out;
  std::lock_guard<std::mutex> lock(impl_->cooling_mutex);
  for (const auto& [id, until] : impl_->cooling)
    if (impl_->is_cooling(until, t))
      out.push_back(id);
  return out;
}

metrics_snapshot metrics::snapshot() const {
  const auto& m = *impl_;
  metrics_snapshot s;
  s.families.push_back(m.requests.copy());
  s.families.push_back(m.request_duration.copy());
  s.families.push_back(m.deployment_calls.copy());
  s.families.push_back(m.deployment_latency.copy());
  s.families.push_back(m.first_token.copy());
  s.families.push_back(m.failovers.copy());
  s.families.push_back(m.fallbacks.copy());
  s.families.push_back(m.retries.copy());
  s.families.push_back(m.cooldowns.copy());

  metric_family cooling{"switchyard_deployment_cooling",
                        "1 while the deployment is cooling down, else 0.",
                        metric_type::gauge,
                        {"deployment"},
                        {},
                        {},
                        {}};
  {
    const auto t = m.now();
    std::lock_guard<std::mutex> lock(m.cooling_mutex);
    for (const auto& [id, until] : m.cooling)
      cooling.values[{id}] = m.is_cooling(until, t) ? 1 : 0;
  }
  s.families.push_back(std::move(cooling));

  metric_family in_flight{"switchyard_in_flight", "Requests in flight.", metric_type::gauge,
                          {}, {}, {}, {}};
  in_flight.values[{}] = static_cast<double>(m.in_flight.load(std::memory_order_relaxed));
  s.families.push_back(std::move(in_flight));
  metric_family rejections{"switchyard_overload_rejections_total",
                           "Requests refused at admission (max_in_flight).",
                           metric_type::counter, {}, {}, {}, {}};
  rejections.values[{}] =
    static_cast<double>(m.overload_rejections.load(std::memory_order_relaxed));
  s.families.push_back(std::move(rejections));

  s.families.push_back(m.tokens.copy());
  s.families.push_back(m.budget_refused.copy());
  s.families.push_back(m.panics.copy());
  return s;
}

std::string metrics::prometheus_text() const {
  return switchyard::prometheus_text(snapshot());
}

std::string prometheus_text(const metrics_snapshot& snapshot) {
  std::string out;
  for (const auto& f : snapshot.families) {
    out += "# HELP " + f.name + ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE " + f.name + ' ' + type_name(f.type) + '\n';
    if (f.type == metric_type::histogram) {
      for (const auto& [values, h] : f.histograms)
        append_histogram(out, f, values, h);
      continue;
    }
    for (const auto& [values, v] : f.values)
      out += f.name + label_block(f.label_names, values) + ' ' + format_value(v) + '\n';
  }
  return out;
}

} // namespace switchyard
