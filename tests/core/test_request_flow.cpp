#include "switchyard/request_flow.hpp"

#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <iomanip>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::scripted_random;
using switchyard::test::shared_config;

namespace {

using lines = std::vector<std::string>;

/// Plays the orchestrator by hand: feeds request_flow one event at a time
/// and renders each action it answers as a short line, so a test reads as
/// the exact conversation ("call test-model/A", "report ...", "wait 0.875s").
class flow_driver {
public:
  flow_driver(std::shared_ptr<const router_config> config, chat_request request)
    : config_(std::move(config)), before_(request),
      request_(std::make_shared<const chat_request>(std::move(request))),
      flow_(config_, request_) {}

  std::string start() { return show(flow_.start()); }

  std::string picked(const std::string& id) {
    return show(flow_.on_picked({switchyard::test::local_of(*config_, id)}, std::nullopt));
  }
  std::string picked_none(std::optional<double> retry_in_s = std::nullopt) {
    std::optional<seconds_d> retry_in;
    if (retry_in_s)
      retry_in = seconds_d(*retry_in_s);
    return show(flow_.on_picked({}, retry_in));
  }

  /// The group picker's answer: `id`, from the tier of `order`.
  std::string picked(const std::string& id, int order) {
    group_pick p;
    p.chosen = switchyard::test::local_of(*config_, id);
    p.order = order;
    return show(flow_.on_picked(p, std::nullopt));
  }
  /// Nothing left in the tier of `order` (its candidates all excluded).
  std::string picked_none_in_tier(int order) {
    group_pick p;
    p.order = order;
    return show(flow_.on_picked(p, std::nullopt));
  }
  /// Nothing left, and the pre-call checks removed some candidates for
  /// their context window.
  std::string picked_none_context_window() {
    group_pick p;
    p.context_window = true;
    return show(flow_.on_picked(p, std::nullopt));
  }

  /// A reply the provider's content filter cut (finish_reason content_filter).
  std::string filtered(std::string content = "[filtered]") {
    call_outcome o;
    o.ok = true;
    o.content = std::move(content);
    o.finish_reason = "content_filter";
    o.latency_ms = 12;
    return show(flow_.on_call(std::move(o)));
  }

  std::string ok(std::string content = "ok") {
    call_outcome o;
    o.ok = true;
    o.content = std::move(content);
    o.latency_ms = 12;
    return show(flow_.on_call(std::move(o)));
  }
  std::string fails(error_kind kind, std::optional<double> retry_after_s = std::nullopt) {
    call_outcome o;
    o.error = router_error::make(kind, "mock " + std::string(name_of(kind)), retry_after_s);
    return show(flow_.on_call(std::move(o)));
  }

  /// The health actor's answer. Without `jitter` the flow must not draw
  /// (no retry is expected); with it, one draw is scripted.
  std::string reported(std::size_t healthy) {
    scripted_random no_draws;
    return show(flow_.on_failure_reported(healthy, no_draws));
  }
  std::string reported(std::size_t healthy, double jitter) {
    scripted_random rng{jitter};
    return show(flow_.on_failure_reported(healthy, rng));
  }

  std::string waited() { return show(flow_.on_wait_done()); }

  std::string fallbacks(const std::vector<std::string>& groups) {
    std::vector<std::uint32_t> indices;
    for (const auto& g : groups)
      indices.push_back(switchyard::test::group_of(*config_, g));
    return show(flow_.on_fallbacks(indices));
  }

  route_result result() {
    REQUIRE(last_.what == flow_action::kind::finish);
    return flow_.take_result();
  }
  const flow_action& last() const noexcept { return last_; }
  request_flow& flow() noexcept { return flow_; }

  std::vector<std::string> excluded_ids() const {
    std::vector<std::string> out;
    for (auto i : flow_.excluded())
      out.push_back(id_at(last_.group, i));
    return out;
  }

  /// The caller's request is shared read-only: nothing in it may change.
  void check_request_unchanged() const {
    CHECK(flow_.shared_request() == request_);
    const auto& now = *request_;
    CHECK(now.model == before_.model);
    CHECK(now.messages == before_.messages);
    CHECK(now.mock.kind == before_.mock.kind);
    CHECK(now.mock_testing_context_fallbacks == before_.mock_testing_context_fallbacks);
    CHECK(now.num_retries == before_.num_retries);
    CHECK(now.disable_fallbacks == before_.disable_fallbacks);
  }

private:
  std::string id_at(std::uint32_t group, local_index i) const {
    return config_->deployments.at(config_->groups.at(group).deployments.at(i)).id;
  }

  std::string show(const flow_action& a) {
    last_ = a;
    using k = flow_action::kind;
    const std::string group = a.what == k::finish ? "" : config_->groups.at(a.group).name;
    switch (a.what) {
      case k::pick: {
        std::string s = "pick " + group;
        const auto ids = excluded_ids();
        for (std::size_t n = 0; n < ids.size(); ++n)
          s += (n == 0 ? " excluding " : ", ") + ids[n];
        if (auto floor = flow_.current_pick().min_order)
          s += " from order " + (*floor == group_pick::unordered ? std::string("unordered")
                                                                 : std::to_string(*floor));
        return s;
      }
      case k::call:
        return "call " + group + "/" + id_at(a.group, a.deployment)
               + (a.force_context_window ? " forcing ContextWindowExceededError" : "");
      case k::report_failure:
        return "report " + group + "/" + id_at(a.group, a.deployment) + " "
               + std::string(name_of(a.error));
      case k::wait: {
        std::ostringstream s;
        s << "wait " << std::setprecision(17) << a.delay.count() << "s";
        return s.str();
      }
      case k::resolve_fallbacks:
        return "resolve " + group + " " + std::string(name_of(a.error));
      case k::finish:
        return "finish";
      case k::idle:
        return "idle " + group;
    }
    return "?";
  }

  std::shared_ptr<const router_config> config_;
  chat_request before_;
  request_ptr request_;
  request_flow flow_;
  flow_action last_;
};

chat_request request_for(std::string model) {
  chat_request r;
  r.model = std::move(model);
  r.messages = nlohmann::json::array({{{"role", "user"}, {"content", "hi"}}});
  return r;
}

/// The attempt trace as "group/id outcome" lines.
lines trace(const route_result& r) {
  lines out;
  for (const auto& a : r.attempts)
    out.push_back(a.model_group + "/" + a.deployment_id + " "
                  + (a.outcome ? std::string(name_of(*a.outcome)) : "ok"));
  return out;
}

router_settings settings_with(int num_retries, bool weighted_failover) {
  router_settings s;
  s.num_retries = num_retries;
  s.enable_weighted_failover = weighted_failover;
  return s;
}

/// "test-model": A (weight 1000000), B (weight 1), C (weight 0), as in the
/// LiteLLM PR's chain test; "fallback-model": F.
std::shared_ptr<const router_config> abc_config(router_settings s) {
  return shared_config({deployment("test-model", "A").weight(1000000),
                        deployment("test-model", "B").weight(1),
                        deployment("test-model", "C").weight(0),
                        deployment("fallback-model", "F")},
                       std::move(s));
}

/// "g2": A and B; "solo": S.
std::shared_ptr<const router_config> pair_and_solo_config(router_settings s) {
  return shared_config({deployment("g2", "A"), deployment("g2", "B"), deployment("solo", "S")},
                       std::move(s));
}

constexpr auto internal = error_kind::internal_server;

} // namespace

// --- single hop -----------------------------------------------------------

TEST_CASE("flow: success on the first try", "[request_flow]") {
  flow_driver d(abc_config(settings_with(2, false)), request_for("test-model"));
  CHECK(d.start() == "pick test-model");
  CHECK(d.picked("A") == "call test-model/A");
  CHECK(d.ok("hello") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.content == "hello");
  CHECK(r.deployment_id == "A");
  CHECK(r.model_group == "test-model");
  CHECK(r.model == "test-model"); // litellm_params.model without "openai/"
  CHECK(r.fallback_depth == 0);
  CHECK(trace(r) == lines{"test-model/A ok"});
  CHECK(r.attempts[0].latency_ms == 12);
  d.check_request_unchanged();
}

TEST_CASE("flow: an unknown model group is a BadRequestError naming it", "[request_flow]") {
  flow_driver d(abc_config(settings_with(2, true)), request_for("gpt-9"));
  CHECK(d.start() == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::bad_request);
  CHECK(r.error.status == 400);
  CHECK(r.error.message.find("'gpt-9'") != std::string::npos);
  CHECK(r.attempts.empty());
  CHECK(r.fallback_depth == 0);
}

TEST_CASE("flow: a request built in code with an invalid field is answered with its error",
          "[request_flow]") {
  auto request = request_for("test-model");
  request.num_retries = 1000000;
  flow_driver d(abc_config(settings_with(2, true)), std::move(request));
  CHECK(d.start() == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::bad_request);
  CHECK(r.error.message
        == "request.num_retries: expected an integer <= " + std::to_string(max_num_retries));
  CHECK(r.attempts.empty());
}

TEST_CASE("flow: retries re-pick at once while the group has a healthy deployment",
          "[request_flow]") {
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("g2"));
  CHECK(d.start() == "pick g2");
  CHECK(d.picked("A") == "call g2/A");
  CHECK(d.fails(internal) == "report g2/A InternalServerError");
  CHECK(d.flow().last_error().deployment_id == "A");
  // No wait (no draw), and the deployment that failed is not picked again.
  CHECK(d.reported(2) == "pick g2 excluding A");
  CHECK(d.picked("B") == "call g2/B");
  CHECK(d.fails(internal) == "report g2/B InternalServerError");
  CHECK(d.reported(1) == "pick g2 excluding A, B");
  // Both failed in this round: a new round, not starting with B.
  CHECK(d.picked_none() == "pick g2 excluding B");
  CHECK(d.picked("A") == "call g2/A");
  // Retries are spent: the latest error is the hop's error.
  CHECK(d.fails(error_kind::service_unavailable) == "report g2/A ServiceUnavailableError");
  CHECK(d.reported(2) == "resolve g2 ServiceUnavailableError");
  CHECK(d.fallbacks({}) == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::service_unavailable);
  CHECK(r.error.status == 503);
  CHECK(r.error.deployment_id == "A");
  CHECK(trace(r) == lines{"g2/A InternalServerError", "g2/B InternalServerError",
                          "g2/A ServiceUnavailableError"});
  CHECK(r.fallback_depth == 0);
}

TEST_CASE("flow: a group of one waits the exact backoff before each retry", "[request_flow]") {
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("solo"));
  CHECK(d.start() == "pick solo");
  CHECK(d.picked("S") == "call solo/S");
  CHECK(d.fails(internal) == "report solo/S InternalServerError");
  CHECK(d.reported(1, 0.5) == "wait 0.4375s"); // 0.5 * 2^0 * (1 - 0.25 * 0.5)
  CHECK(d.last().delay.count() == 0.4375);
  // The retry avoids S; S is the only candidate, so it is retried.
  CHECK(d.waited() == "pick solo excluding S");
  CHECK(d.picked_none() == "pick solo");
  CHECK(d.picked("S") == "call solo/S");
  CHECK(d.fails(internal) == "report solo/S InternalServerError");
  CHECK(d.reported(1, 0.0) == "wait 1s"); // 0.5 * 2^1 * 1
  CHECK(d.waited() == "pick solo excluding S");
  CHECK(d.picked_none() == "pick solo");
  CHECK(d.picked("S") == "call solo/S");
  CHECK(d.ok() == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.fallback_depth == 0);
  CHECK(trace(r) == lines{"solo/S InternalServerError", "solo/S InternalServerError",
                          "solo/S ok"});
}

TEST_CASE("flow: Retry-After sets the wait in a group of one", "[request_flow]") {
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("solo"));
  d.start();
  d.picked("S");
  CHECK(d.fails(error_kind::rate_limit, 3.0) == "report solo/S RateLimitError");
  CHECK(d.reported(1) == "wait 3s"); // exactly, and no jitter drawn
  CHECK(d.waited() == "pick solo excluding S");
  d.picked_none();
  d.picked("S");
  d.fails(error_kind::rate_limit, 120.0);
  // Over 60 s it is ignored: the backoff, 0.5 * 2^1 * (1 - 0.25 * 0).
  CHECK(d.reported(1, 0.0) == "wait 1s");
}

TEST_CASE("flow: num_retries comes from the request, then the deployment", "[request_flow]") {
  SECTION("the request asks for none") {
    auto req = request_for("g2");
    req.num_retries = 0;
    flow_driver d(pair_and_solo_config(settings_with(2, false)), req);
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve g2 InternalServerError");
    d.check_request_unchanged();
  }
  SECTION("the deployment allows one although the router allows none") {
    auto config = shared_config({deployment("g2", "A").num_retries(1), deployment("g2", "B")},
                                settings_with(0, false));
    flow_driver d(config, request_for("g2"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick g2 excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve g2 InternalServerError");
  }
}

TEST_CASE("flow: 400, 404 and 422 are not retried", "[request_flow]") {
  for (auto kind : {error_kind::bad_request, error_kind::not_found,
                    error_kind::unprocessable_entity}) {
    INFO(name_of(kind));
    flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("g2"));
    d.start();
    d.picked("A");
    d.fails(kind);
    CHECK(d.reported(2) == "resolve g2 " + std::string(name_of(kind)));
    CHECK(d.fallbacks({}) == "finish");
    CHECK(d.result().error.kind == kind);
  }
}

TEST_CASE("flow: no retry once no deployment is healthy", "[request_flow]") {
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("g2"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(0) == "resolve g2 InternalServerError");
}

TEST_CASE("flow: a retry that finds nothing ends the hop with the latest error",
          "[request_flow]") {
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("g2"));
  d.start();
  d.picked("A");
  d.fails(error_kind::timeout);
  CHECK(d.reported(1) == "pick g2 excluding A");
  // A is all the round had: the next pick may retry it, and finds nothing.
  CHECK(d.picked_none(2.0) == "pick g2");
  CHECK(d.picked_none(2.0) == "resolve g2 Timeout");
  CHECK(d.fallbacks({}) == "finish");
  auto r = d.result();
  CHECK(r.error.kind == error_kind::timeout);
  CHECK(r.error.deployment_id == "A");
}

TEST_CASE("flow: NoDeploymentsAvailable on the first pick says when to try again",
          "[request_flow]") {
  flow_driver d(abc_config(settings_with(2, true)), request_for("test-model"));
  d.start();
  // No deployment id on the error: no weighted failover either.
  CHECK(d.picked_none(3.2) == "resolve test-model NoDeploymentsAvailable");
  CHECK(d.flow().excluded().empty());
  CHECK(d.fallbacks({}) == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::no_deployments_available);
  CHECK(r.error.status == 429);
  CHECK(r.error.deployment_id.empty());
  CHECK(r.error.message.find("Try again in 4 seconds") != std::string::npos);
  CHECK(r.error.message.find("test-model") != std::string::npos);
  REQUIRE(r.error.retry_after_s.has_value());
  CHECK(*r.error.retry_after_s == 3.2);
  CHECK(r.attempts.empty());
}

// --- weighted failover ------------------------------------------------------

TEST_CASE("failover: the failed deployment is excluded and the next pick is a probe",
          "[request_flow][failover]") {
  flow_driver d(abc_config(settings_with(0, true)), request_for("test-model"));
  CHECK(d.start() == "pick test-model");
  CHECK(d.picked("A") == "call test-model/A");
  CHECK(d.fails(internal) == "report test-model/A InternalServerError");
  CHECK(d.reported(2) == "pick test-model excluding A");
  CHECK(d.excluded_ids() == lines{"A"});
  CHECK(d.picked("B") == "call test-model/B");
  CHECK(d.ok("from B") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.deployment_id == "B");
  CHECK(r.content == "from B");
  CHECK(r.fallback_depth == 1);
  CHECK(trace(r) == lines{"test-model/A InternalServerError", "test-model/B ok"});
  d.check_request_unchanged();
}

TEST_CASE("failover: a probe that finds nothing goes to fallbacks without spending a hop",
          "[request_flow][failover]") {
  flow_driver d(abc_config(settings_with(0, true)), request_for("test-model"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(0) == "pick test-model excluding A");
  CHECK(d.picked_none(4.0) == "resolve test-model InternalServerError");
  CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model"); // fresh exclusions
  CHECK(d.picked("F") == "call fallback-model/F");
  CHECK(d.ok() == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.deployment_id == "F");
  CHECK(r.model_group == "fallback-model");
  CHECK(r.fallback_depth == 1);
  CHECK(trace(r) == lines{"test-model/A InternalServerError", "fallback-model/F ok"});
}

TEST_CASE("failover: chain A and B fail, C answers", "[request_flow][failover]") {
  flow_driver d(abc_config(settings_with(0, true)), request_for("test-model"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(2) == "pick test-model excluding A");
  CHECK(d.picked("B") == "call test-model/B");
  CHECK(d.fails(error_kind::rate_limit) == "report test-model/B RateLimitError");
  CHECK(d.reported(1) == "pick test-model excluding A, B");
  CHECK(d.picked("C") == "call test-model/C");
  CHECK(d.ok("ok from C") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.deployment_id == "C");
  CHECK(r.fallback_depth == 2);
  CHECK(r.attempts.size() == 3);
  d.check_request_unchanged();
}

TEST_CASE("failover: retries inside a failover hop keep its exclusions",
          "[request_flow][failover]") {
  flow_driver d(abc_config(settings_with(1, true)), request_for("test-model"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(3) == "pick test-model excluding A"); // hop 0's retry
  d.picked("B");
  d.fails(internal);
  // The failover hop excludes every deployment that failed in hop 0.
  CHECK(d.reported(3) == "pick test-model excluding A, B");
  d.picked("C");
  d.fails(internal);
  CHECK(d.reported(2) == "pick test-model excluding A, B, C"); // a retry, not a new hop
  // C is the only candidate left: it is retried.
  CHECK(d.picked_none() == "pick test-model excluding A, B");
  CHECK(d.picked("C") == "call test-model/C");
  CHECK(d.ok() == "finish");
  auto r = d.result();
  CHECK(r.fallback_depth == 1);
  CHECK(trace(r) == lines{"test-model/A InternalServerError", "test-model/B InternalServerError",
                          "test-model/C InternalServerError", "test-model/C ok"});
}

TEST_CASE("failover: max_fallbacks bounds failover and fallback hops together",
          "[request_flow][failover]") {
  auto with_max = [](int max) {
    auto s = settings_with(0, true);
    s.max_fallbacks = max;
    s.fallbacks = {{"test-model", {"fallback-model"}}};
    return abc_config(s);
  };
  SECTION("0: neither") {
    flow_driver d(with_max(0), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "finish");
    auto r = d.result();
    CHECK(r.error.deployment_id == "A");
    CHECK(r.fallback_depth == 0);
  }
  SECTION("1: one failover hop, then nothing") {
    flow_driver d(with_max(1), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick test-model excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(1) == "finish");
    CHECK(d.result().fallback_depth == 1);
  }
  SECTION("2: two failover hops, then nothing") {
    flow_driver d(with_max(2), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick test-model excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(1) == "pick test-model excluding A, B");
    d.picked("C");
    d.fails(internal);
    CHECK(d.reported(0) == "finish");
    auto r = d.result();
    CHECK(r.fallback_depth == 2);
    CHECK(r.attempts.size() == 3);
  }
  SECTION("2: a failover hop and a fallback hop") {
    flow_driver d(with_max(2), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick test-model excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(1) == "pick test-model excluding A, B");
    CHECK(d.picked_none() == "resolve test-model InternalServerError");
    CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
    d.picked("F");
    d.fails(internal);
    CHECK(d.reported(1) == "finish"); // no failover on F: the budget is spent
    auto r = d.result();
    CHECK(r.fallback_depth == 2);
    CHECK(trace(r) == lines{"test-model/A InternalServerError",
                            "test-model/B InternalServerError",
                            "fallback-model/F InternalServerError"});
  }
}

TEST_CASE("failover: off without the flag, or with another strategy",
          "[request_flow][failover]") {
  SECTION("flag off") {
    flow_driver d(abc_config(settings_with(0, false)), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve test-model InternalServerError");
    CHECK(d.flow().excluded().empty());
  }
  SECTION("latency-based-routing") {
    auto s = settings_with(0, true);
    s.routing_strategy = "latency-based-routing";
    flow_driver d(abc_config(s), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve test-model InternalServerError");
    CHECK(d.flow().excluded().empty());
  }
}

TEST_CASE("failover: not for ContextWindowExceeded or ContentPolicyViolation",
          "[request_flow][failover]") {
  for (auto kind : {error_kind::context_window_exceeded, error_kind::content_policy_violation}) {
    INFO(name_of(kind));
    flow_driver d(abc_config(settings_with(2, true)), request_for("test-model"));
    d.start();
    d.picked("A");
    d.fails(kind);
    CHECK(d.reported(2) == "resolve test-model " + std::string(name_of(kind)));
    CHECK(d.flow().excluded().empty());
    CHECK(d.fallbacks({}) == "finish");
    CHECK(d.result().error.kind == kind);
  }
}

TEST_CASE("flow: mock_testing_context_fallbacks fails the first hop only", "[request_flow]") {
  auto s = settings_with(2, true);
  s.context_window_fallbacks = {{"test-model", {"fallback-model"}}};
  auto req = request_for("test-model");
  req.mock_testing_context_fallbacks = true;
  flow_driver d(abc_config(s), req);
  CHECK(d.start() == "pick test-model");
  CHECK(d.picked("A") == "call test-model/A forcing ContextWindowExceededError");
  CHECK(d.fails(error_kind::context_window_exceeded)
        == "report test-model/A ContextWindowExceededError");
  CHECK(d.reported(3) == "resolve test-model ContextWindowExceededError");
  CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
  CHECK(d.picked("F") == "call fallback-model/F");
  CHECK(d.fails(internal) == "report fallback-model/F InternalServerError");
  CHECK(d.reported(1, 0.0) == "wait 0.5s");
  CHECK(d.waited() == "pick fallback-model excluding F");
  CHECK(d.picked_none() == "pick fallback-model");
  CHECK(d.picked("F") == "call fallback-model/F"); // still not forced
  CHECK(d.ok() == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.fallback_depth == 1);
  d.check_request_unchanged();
}

// --- fallbacks ---------------------------------------------------------------

namespace {

/// Groups O, F1, F2, G1 with one deployment each (o, f1, f2, g1).
std::shared_ptr<const router_config> fallback_tree_config(router_settings s = settings_with(0, false)) {
  return shared_config({deployment("O", "o"), deployment("F1", "f1"), deployment("F2", "f2"),
                        deployment("G1", "g1")},
                       std::move(s));
}

} // namespace

TEST_CASE("fallbacks: a fallback group's own fallbacks come before the next sibling",
          "[request_flow][fallback]") {
  flow_driver d(fallback_tree_config(), request_for("O"));
  CHECK(d.start() == "pick O");
  CHECK(d.picked("o") == "call O/o");
  CHECK(d.fails(error_kind::service_unavailable) == "report O/o ServiceUnavailableError");
  CHECK(d.reported(1) == "resolve O ServiceUnavailableError");
  CHECK(d.fallbacks({"F1", "F2"}) == "pick F1");
  CHECK(d.picked("f1") == "call F1/f1");
  CHECK(d.fails(error_kind::rate_limit) == "report F1/f1 RateLimitError");
  CHECK(d.reported(1) == "resolve F1 RateLimitError");
  CHECK(d.fallbacks({"G1"}) == "pick G1");
  CHECK(d.picked("g1") == "call G1/g1");
  CHECK(d.fails(internal) == "report G1/g1 InternalServerError");
  CHECK(d.reported(1) == "resolve G1 InternalServerError");
  CHECK(d.fallbacks({}) == "pick F2");
  CHECK(d.picked("f2") == "call F2/f2");
  CHECK(d.ok("from F2") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.deployment_id == "f2");
  CHECK(r.model_group == "F2");
  CHECK(r.fallback_depth == 3);
  CHECK(trace(r) == lines{"O/o ServiceUnavailableError", "F1/f1 RateLimitError",
                          "G1/g1 InternalServerError", "F2/f2 ok"});
}

TEST_CASE("fallbacks: the origin group and a group listing itself are skipped",
          "[request_flow][fallback]") {
  flow_driver d(fallback_tree_config(), request_for("O"));
  d.start();
  d.picked("o");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve O InternalServerError");
  CHECK(d.fallbacks({"O", "F1"}) == "pick F1");
  d.picked("f1");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve F1 InternalServerError");
  CHECK(d.fallbacks({"O", "F1", "F2"}) == "pick F2");
  d.picked("f2");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve F2 InternalServerError");
  CHECK(d.fallbacks({"F2"}) == "finish");
  auto r = d.result();
  CHECK(r.fallback_depth == 2);
  CHECK(trace(r) == lines{"O/o InternalServerError", "F1/f1 InternalServerError",
                          "F2/f2 InternalServerError"});
}

TEST_CASE("fallbacks: max_fallbacks stops the walk between siblings", "[request_flow][fallback]") {
  auto s = settings_with(0, false);
  s.max_fallbacks = 1;
  flow_driver d(fallback_tree_config(s), request_for("O"));
  d.start();
  d.picked("o");
  d.fails(internal);
  d.reported(1);
  CHECK(d.fallbacks({"F1", "F2"}) == "pick F1");
  d.picked("f1");
  d.fails(internal);
  CHECK(d.reported(1) == "finish");
  auto r = d.result();
  CHECK(r.fallback_depth == 1);
  CHECK(r.error.deployment_id == "o");
}

TEST_CASE("fallbacks: disable_fallbacks finishes with the original error",
          "[request_flow][fallback]") {
  auto req = request_for("test-model");
  req.disable_fallbacks = true;
  SECTION("no cross-group fallback") {
    auto s = settings_with(0, false);
    s.fallbacks = {{"test-model", {"fallback-model"}}};
    flow_driver d(abc_config(s), req);
    d.start();
    d.picked("A");
    d.fails(error_kind::rate_limit);
    CHECK(d.reported(2) == "finish");
    auto r = d.result();
    CHECK(r.error.kind == error_kind::rate_limit);
    CHECK(r.error.deployment_id == "A");
    CHECK(r.fallback_depth == 0);
    d.check_request_unchanged();
  }
  SECTION("and no weighted failover either (section 8: it stops all of it)") {
    flow_driver d(abc_config(settings_with(0, true)), req);
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "finish");
    CHECK(d.flow().excluded().empty());
    auto r = d.result();
    CHECK(r.error.kind == internal);
    CHECK(trace(r) == lines{"test-model/A InternalServerError"});
  }
  SECTION("retries inside the hop still happen") {
    flow_driver d(abc_config(settings_with(1, true)), req);
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick test-model excluding A");
  }
}

TEST_CASE("fallbacks: exhausted, the caller gets the first hop's error and the full trace",
          "[request_flow][fallback]") {
  flow_driver d(abc_config(settings_with(0, true)), request_for("test-model"));
  d.start();
  d.picked("A");
  CHECK(d.fails(error_kind::rate_limit, 7.0) == "report test-model/A RateLimitError");
  CHECK(d.reported(2) == "pick test-model excluding A");
  d.picked("B");
  d.fails(internal);
  CHECK(d.reported(1) == "pick test-model excluding A, B");
  d.picked("C");
  d.fails(error_kind::service_unavailable);
  CHECK(d.reported(0) == "pick test-model excluding A, B, C");
  CHECK(d.picked_none() == "resolve test-model ServiceUnavailableError");
  CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
  d.picked("F");
  CHECK(d.fails(error_kind::bad_gateway) == "report fallback-model/F BadGatewayError");
  CHECK(d.reported(0) == "pick fallback-model excluding F");
  CHECK(d.picked_none() == "resolve fallback-model BadGatewayError");
  CHECK(d.fallbacks({}) == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::rate_limit);
  CHECK(r.error.status == 429);
  CHECK(r.error.deployment_id == "A");
  CHECK(r.error.message == "mock RateLimitError");
  REQUIRE(r.error.retry_after_s.has_value());
  CHECK(*r.error.retry_after_s == 7.0);
  CHECK(r.fallback_depth == 3);
  CHECK(trace(r) == lines{"test-model/A RateLimitError", "test-model/B InternalServerError",
                          "test-model/C ServiceUnavailableError",
                          "fallback-model/F BadGatewayError"});
  d.check_request_unchanged();
}

// --- model group aliases -------------------------------------------------------

TEST_CASE("flow: a model_group_alias resolves to its group", "[request_flow][alias]") {
  auto s = settings_with(0, false);
  s.model_group_alias = {{"gpt-4-latest", "test-model"}};
  s.fallbacks = {{"test-model", {"fallback-model"}}};
  SECTION("success is served and reported as the group") {
    flow_driver d(abc_config(s), request_for("gpt-4-latest"));
    CHECK(d.start() == "pick test-model");
    CHECK(d.picked("A") == "call test-model/A");
    CHECK(d.ok("hi") == "finish");
    auto r = d.result();
    CHECK(r.ok);
    CHECK(r.model_group == "test-model");
    CHECK(trace(r) == lines{"test-model/A ok"});
    d.check_request_unchanged();
  }
  SECTION("the group's fallbacks apply, and the group is the origin") {
    flow_driver d(abc_config(s), request_for("gpt-4-latest"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve test-model InternalServerError");
    CHECK(d.fallbacks({"test-model", "fallback-model"}) == "pick fallback-model");
  }
  SECTION("a name that is neither a group nor an alias is still a BadRequestError") {
    flow_driver d(abc_config(s), request_for("gpt-4-oldest"));
    CHECK(d.start() == "finish");
    auto r = d.result();
    CHECK_FALSE(r.ok);
    CHECK(r.error.kind == error_kind::bad_request);
    CHECK(r.error.status == 400);
    CHECK(r.error.message.find("'gpt-4-oldest'") != std::string::npos);
    CHECK(r.attempts.empty());
  }
}

// --- order tiers -------------------------------------------------------------------

namespace {

/// "tiered": A and B of order 1, C of order 2; "fallback-model": F.
std::shared_ptr<const router_config> tiered_config(router_settings s) {
  return shared_config({deployment("tiered", "A").order(1), deployment("tiered", "B").order(1),
                        deployment("tiered", "C").order(2), deployment("fallback-model", "F")},
                       std::move(s));
}

router_settings tiered_settings(int num_retries, bool weighted_failover) {
  auto s = settings_with(num_retries, weighted_failover);
  s.fallbacks = {{"tiered", {"fallback-model"}}};
  return s;
}

} // namespace

TEST_CASE("tiers: a failed tier moves to the next tier of the group before any fallback",
          "[request_flow][tiers]") {
  flow_driver d(tiered_config(tiered_settings(0, false)), request_for("tiered"));
  CHECK(d.start() == "pick tiered");
  CHECK_FALSE(d.flow().current_pick().min_order);
  CHECK(d.picked("A", 1) == "call tiered/A");
  CHECK(d.fails(internal) == "report tiered/A InternalServerError");
  // Failover is off: the next tier, as a hop of its own.
  CHECK(d.reported(2) == "pick tiered from order 2");
  CHECK(d.flow().current_pick().min_order == std::optional<int>(2));
  CHECK(d.flow().excluded().empty());
  CHECK(d.picked("C", 2) == "call tiered/C");
  SECTION("the next tier answers") {
    CHECK(d.ok("from C") == "finish");
    auto r = d.result();
    CHECK(r.ok);
    CHECK(r.deployment_id == "C");
    CHECK(r.content == "from C");
    CHECK(r.fallback_depth == 1);
    CHECK(trace(r) == lines{"tiered/A InternalServerError", "tiered/C ok"});
  }
  SECTION("the last tier fails too: then the fallbacks, with fresh tiers") {
    CHECK(d.fails(error_kind::service_unavailable) == "report tiered/C ServiceUnavailableError");
    CHECK(d.reported(2) == "resolve tiered ServiceUnavailableError");
    CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
    CHECK_FALSE(d.flow().current_pick().min_order);
    CHECK(d.picked("F") == "call fallback-model/F");
    CHECK(d.fails(internal) == "report fallback-model/F InternalServerError");
    CHECK(d.reported(0) == "resolve fallback-model InternalServerError");
    CHECK(d.fallbacks({}) == "finish");
    auto r = d.result();
    CHECK_FALSE(r.ok);
    // The original error: the first tier's.
    CHECK(r.error.kind == internal);
    CHECK(r.error.deployment_id == "A");
    CHECK(r.fallback_depth == 2);
    CHECK(trace(r) == lines{"tiered/A InternalServerError", "tiered/C ServiceUnavailableError",
                            "fallback-model/F InternalServerError"});
  }
}

TEST_CASE("tiers: retries stay inside the hop before the tier moves", "[request_flow][tiers]") {
  flow_driver d(tiered_config(tiered_settings(1, false)), request_for("tiered"));
  d.start();
  d.picked("A", 1);
  d.fails(internal);
  CHECK(d.reported(2) == "pick tiered excluding A"); // a retry: no floor
  CHECK(d.picked("B", 1) == "call tiered/B");
  d.fails(internal);
  CHECK(d.reported(1) == "pick tiered from order 2");
  CHECK(d.picked("C", 2) == "call tiered/C");
  CHECK(d.ok() == "finish");
  CHECK(d.result().fallback_depth == 1);
}

TEST_CASE("tiers: a tier exhausted by weighted failover moves to the next tier",
          "[request_flow][tiers][failover]") {
  flow_driver d(tiered_config(tiered_settings(0, true)), request_for("tiered"));
  d.start();
  CHECK(d.picked("A", 1) == "call tiered/A");
  d.fails(internal);
  CHECK(d.reported(2) == "pick tiered excluding A");
  CHECK(d.picked("B", 1) == "call tiered/B");
  CHECK(d.fails(error_kind::rate_limit) == "report tiered/B RateLimitError");
  CHECK(d.reported(1) == "pick tiered excluding A, B");
  // The probe finds tier 1 exhausted (never widened to tier 2 by the
  // picker): the flow moves to tier 2 itself.
  CHECK(d.picked_none_in_tier(1) == "pick tiered excluding A, B from order 2");
  CHECK(d.picked("C", 2) == "call tiered/C");
  CHECK(d.ok("from C") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.deployment_id == "C");
  CHECK(r.fallback_depth == 2);
  CHECK(trace(r) == lines{"tiered/A InternalServerError", "tiered/B RateLimitError",
                          "tiered/C ok"});
  d.check_request_unchanged();
}

TEST_CASE("tiers: the last tier exhausted by failover goes to the fallbacks",
          "[request_flow][tiers][failover]") {
  flow_driver d(tiered_config(tiered_settings(0, true)), request_for("tiered"));
  d.start();
  CHECK(d.picked("C", 2) == "call tiered/C"); // tier 1 was cooling down
  d.fails(internal);
  CHECK(d.reported(0) == "pick tiered excluding C");
  CHECK(d.picked_none_in_tier(2) == "resolve tiered InternalServerError");
  CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
}

TEST_CASE("tiers: disable_fallbacks and max_fallbacks stop the tiers too",
          "[request_flow][tiers]") {
  SECTION("disable_fallbacks") {
    auto req = request_for("tiered");
    req.disable_fallbacks = true;
    flow_driver d(tiered_config(tiered_settings(0, false)), req);
    d.start();
    d.picked("A", 1);
    d.fails(internal);
    CHECK(d.reported(2) == "finish");
    auto r = d.result();
    CHECK_FALSE(r.ok);
    CHECK(r.error.deployment_id == "A");
    CHECK(r.fallback_depth == 0);
    CHECK(trace(r) == lines{"tiered/A InternalServerError"});
    d.check_request_unchanged();
  }
  SECTION("max_fallbacks 0") {
    auto s = tiered_settings(0, false);
    s.max_fallbacks = 0;
    flow_driver d(tiered_config(s), request_for("tiered"));
    d.start();
    d.picked("A", 1);
    d.fails(internal);
    CHECK(d.reported(2) == "finish");
    CHECK(d.result().fallback_depth == 0);
  }
  SECTION("max_fallbacks 1: the tier hop spends it") {
    auto s = tiered_settings(0, false);
    s.max_fallbacks = 1;
    flow_driver d(tiered_config(s), request_for("tiered"));
    d.start();
    d.picked("A", 1);
    d.fails(internal);
    CHECK(d.reported(2) == "pick tiered from order 2");
    d.picked("C", 2);
    d.fails(internal);
    CHECK(d.reported(2) == "finish");
    auto r = d.result();
    CHECK(r.fallback_depth == 1);
    CHECK(r.error.deployment_id == "A");
  }
}

// --- pre-call context window -------------------------------------------------------

TEST_CASE("flow: the pre-call checks' context-window verdict is a ContextWindowExceededError",
          "[request_flow][pre_call]") {
  auto s = settings_with(2, true);
  s.fallbacks = {{"test-model", {"fallback-model"}}};
  SECTION("with a context-window fallback") {
    s.context_window_fallbacks = {{"test-model", {"fallback-model"}}};
    flow_driver d(abc_config(s), request_for("test-model"));
    CHECK(d.start() == "pick test-model");
    // No deployment id on the error: no weighted failover, no exclusion.
    CHECK(d.picked_none_context_window() == "resolve test-model ContextWindowExceededError");
    CHECK(d.flow().excluded().empty());
    CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
    CHECK(d.picked("F") == "call fallback-model/F");
    CHECK(d.ok("roomy") == "finish");
    auto r = d.result();
    CHECK(r.ok);
    CHECK(r.deployment_id == "F");
    CHECK(r.fallback_depth == 1);
    CHECK(trace(r) == lines{"fallback-model/F ok"});
  }
  SECTION("without one, the caller gets it") {
    flow_driver d(abc_config(s), request_for("test-model"));
    d.start();
    CHECK(d.picked_none_context_window() == "resolve test-model ContextWindowExceededError");
    CHECK(d.fallbacks({}) == "finish");
    auto r = d.result();
    CHECK_FALSE(r.ok);
    CHECK(r.error.kind == error_kind::context_window_exceeded);
    CHECK(r.error.status == 400);
    CHECK(r.error.deployment_id.empty());
    CHECK(r.error.message.find("test-model") != std::string::npos);
    CHECK(r.attempts.empty());
    CHECK(r.fallback_depth == 0);
  }
}

// --- filtered replies --------------------------------------------------------------

TEST_CASE("flow: a content_filter reply is a ContentPolicyViolationError when a fallback exists",
          "[request_flow][content_policy]") {
  SECTION("a content_policy_fallbacks entry for the group") {
    auto s = settings_with(2, true);
    s.content_policy_fallbacks = {{"test-model", {"fallback-model"}}};
    flow_driver d(abc_config(s), request_for("test-model"));
    d.start();
    CHECK(d.picked("A") == "call test-model/A");
    CHECK(d.filtered() == "report test-model/A ContentPolicyViolationError");
    CHECK(d.flow().last_error().deployment_id == "A");
    CHECK(d.flow().last_error().status == 400);
    // A 400: no retry; ContentPolicy: no weighted failover.
    CHECK(d.reported(3) == "resolve test-model ContentPolicyViolationError");
    CHECK(d.flow().excluded().empty());
    CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
    CHECK(d.picked("F") == "call fallback-model/F");
    CHECK(d.ok("clean") == "finish");
    auto r = d.result();
    CHECK(r.ok);
    CHECK(r.content == "clean");
    CHECK(r.fallback_depth == 1);
    CHECK(trace(r) == lines{"test-model/A ContentPolicyViolationError", "fallback-model/F ok"});
  }
  for (bool via_default : {false, true}) {
    DYNAMIC_SECTION((via_default ? "default_fallbacks" : "a '*' fallback")
                    << ": the error, taken by the generic fallbacks") {
      auto s = settings_with(2, false);
      if (via_default)
        s.default_fallbacks = {"fallback-model"};
      else
        s.fallbacks = {{"*", {"fallback-model"}}};
      flow_driver d(abc_config(s), request_for("test-model"));
      d.start();
      d.picked("A");
      CHECK(d.filtered() == "report test-model/A ContentPolicyViolationError");
      CHECK(d.reported(3) == "resolve test-model ContentPolicyViolationError");
      // No content_policy_fallbacks: the generic targets take it.
      CHECK(d.fallbacks({"fallback-model"}) == "pick fallback-model");
      d.picked("F");
      CHECK(d.ok("clean") == "finish");
      auto r = d.result();
      CHECK(r.ok);
      CHECK(trace(r) == lines{"test-model/A ContentPolicyViolationError", "fallback-model/F ok"});
    }
  }
}

TEST_CASE("flow: a content_filter reply stays a success with nowhere to send it",
          "[request_flow][content_policy]") {
  auto s = settings_with(2, true);
  s.fallbacks = {{"test-model", {"fallback-model"}}}; // generic, not '*'
  s.content_policy_fallbacks = {{"fallback-model", {"test-model"}}}; // another group's
  flow_driver d(abc_config(s), request_for("test-model"));
  d.start();
  d.picked("A");
  CHECK(d.filtered("partly [filtered]") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.content == "partly [filtered]");
  CHECK(r.deployment_id == "A");
  CHECK(trace(r) == lines{"test-model/A ok"});
}

// --- call timeouts -------------------------------------------------------------------

TEST_CASE("flow: a call action's delay is the call's timeout", "[request_flow][timeout]") {
  auto s = settings_with(0, false);
  s.timeout_s = 30;
  s.stream_timeout_s = 20;
  auto config = shared_config({deployment("g2", "A").timeout(10).stream_timeout(3),
                               deployment("g2", "B")},
                              s);
  auto delay_for = [&](chat_request req, const std::string& id) {
    flow_driver d(config, std::move(req));
    d.start();
    CHECK(d.picked(id) == "call g2/" + id);
    const double delay = d.last().delay.count();
    // Whatever the rule, the action carries call_timeout's answer.
    CHECK(delay == call_timeout(config->settings, d.flow().current_deployment(),
                                d.flow().request()).count());
    return delay;
  };
  auto plain = request_for("g2");
  auto with_timeout = request_for("g2");
  with_timeout.timeout_s = 5;
  auto streamed = request_for("g2");
  streamed.stream = true;

  // request > deployment > router
  CHECK(delay_for(plain, "A") == 10);
  CHECK(delay_for(plain, "B") == 30);
  CHECK(delay_for(with_timeout, "A") == 5);
  CHECK(delay_for(with_timeout, "B") == 5);
  // stream_timeout for a streamed request: the deployment's, then the router's.
  CHECK(delay_for(streamed, "A") == 3);
  CHECK(delay_for(streamed, "B") == 20);

  SECTION("the router's default is 600 s") {
    auto defaults = shared_config({deployment("g2", "B")}, settings_with(0, false));
    flow_driver d(defaults, request_for("g2"));
    d.start();
    d.picked("B");
    CHECK(d.last().delay.count() == 600);
  }
}

// --- retry policies ----------------------------------------------------------------------

TEST_CASE("flow: retry policies set the retries per error kind", "[request_flow][retry]") {
  SECTION("retry_policy over num_retries") {
    auto s = settings_with(0, false);
    s.retry_policy.internal_server = 1;
    flow_driver d(pair_and_solo_config(s), request_for("g2"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick g2 excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve g2 InternalServerError");
  }
  SECTION("model_group_retry_policy over retry_policy") {
    auto s = settings_with(0, false);
    s.retry_policy.internal_server = 1;
    s.model_group_retry_policy["g2"].internal_server = 2;
    s.model_group_retry_policy["solo"].internal_server = 0;
    flow_driver d(pair_and_solo_config(s), request_for("g2"));
    d.start();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "pick g2 excluding A");
    d.picked("B");
    d.fails(internal);
    CHECK(d.reported(2) == "pick g2 excluding A, B");
    d.picked_none();
    d.picked("A");
    d.fails(internal);
    CHECK(d.reported(2) == "resolve g2 InternalServerError");
  }
  SECTION("a policy over the request's own num_retries") {
    auto s = settings_with(0, false);
    s.retry_policy.rate_limit = 0;
    auto req = request_for("g2");
    req.num_retries = 3;
    flow_driver d(pair_and_solo_config(s), req);
    d.start();
    d.picked("A");
    d.fails(internal); // no policy for 500: the request's 3
    CHECK(d.reported(2) == "pick g2 excluding A");
    d.picked("B");
    d.fails(error_kind::rate_limit); // the policy's 0 for 429
    CHECK(d.reported(2) == "resolve g2 RateLimitError");
  }
  SECTION("a 400 is never retried, even with BadRequestErrorRetries") {
    auto s = settings_with(0, false);
    s.retry_policy.bad_request = 3;
    s.model_group_retry_policy["g2"].bad_request = 3;
    flow_driver d(pair_and_solo_config(s), request_for("g2"));
    d.start();
    d.picked("A");
    d.fails(error_kind::bad_request);
    CHECK(d.reported(2) == "resolve g2 BadRequestError");
  }
}

// --- retries avoid what already failed (docs/reliability.md section 2) -------------

namespace {

/// "g3": A, B and C.
std::shared_ptr<const router_config> three_config(router_settings s) {
  return shared_config({deployment("g3", "A"), deployment("g3", "B"), deployment("g3", "C")},
                       std::move(s));
}

} // namespace

TEST_CASE("retries: a deployment that failed is not picked again while another candidate remains",
          "[request_flow][retry_exclusion]") {
  flow_driver d(three_config(settings_with(2, false)), request_for("g3"));
  CHECK(d.start() == "pick g3");
  CHECK(d.picked("B") == "call g3/B");
  d.fails(internal);
  CHECK(d.reported(3) == "pick g3 excluding B");
  CHECK(d.picked("A") == "call g3/A");
  d.fails(error_kind::timeout);
  CHECK(d.reported(3) == "pick g3 excluding B, A");
  CHECK(d.picked("C") == "call g3/C");
  CHECK(d.ok("from C") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(trace(r) == lines{"g3/B InternalServerError", "g3/A Timeout", "g3/C ok"});
  // The exclusions are the request's own: nothing in it changed.
  d.check_request_unchanged();
}

TEST_CASE("retries: two deployments that both fail, num_retries 3: A, B, A, B",
          "[request_flow][retry_exclusion]") {
  flow_driver d(pair_and_solo_config(settings_with(3, false)), request_for("g2"));
  d.start();
  CHECK(d.picked("A") == "call g2/A");
  d.fails(internal);
  CHECK(d.reported(2) == "pick g2 excluding A");
  CHECK(d.picked("B") == "call g2/B");
  d.fails(internal);
  // Round one is over (A and B failed): round two avoids only B, the last.
  CHECK(d.reported(2) == "pick g2 excluding A, B");
  CHECK(d.picked_none() == "pick g2 excluding B");
  CHECK(d.picked("A") == "call g2/A");
  d.fails(internal);
  // Round two: A failed in it, so B.
  CHECK(d.reported(2) == "pick g2 excluding A");
  CHECK(d.picked("B") == "call g2/B");
  d.fails(error_kind::bad_gateway);
  CHECK(d.reported(2) == "resolve g2 BadGatewayError"); // 3 retries spent
  CHECK(d.fallbacks({}) == "finish");
  auto r = d.result();
  CHECK_FALSE(r.ok);
  CHECK(r.error.kind == error_kind::bad_gateway);
  CHECK(r.error.deployment_id == "B");
  CHECK(trace(r) == lines{"g2/A InternalServerError", "g2/B InternalServerError",
                          "g2/A InternalServerError", "g2/B BadGatewayError"});
}

TEST_CASE("retries: with the other deployment cooling down, the failed one is retried",
          "[request_flow][retry_exclusion]") {
  // B cools down after its failure: A is the only healthy candidate, and
  // it failed already; the new round may pick it (the picker skips B).
  flow_driver d(pair_and_solo_config(settings_with(2, false)), request_for("g2"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(2) == "pick g2 excluding A");
  d.picked("B");
  d.fails(error_kind::rate_limit);
  CHECK(d.reported(1) == "pick g2 excluding A, B");
  CHECK(d.picked_none() == "pick g2 excluding B");
  CHECK(d.picked("A") == "call g2/A");
  CHECK(d.ok() == "finish");
  CHECK(trace(d.result()) == lines{"g2/A InternalServerError", "g2/B RateLimitError", "g2/A ok"});
}

TEST_CASE("retries: the first pick of a new hop has no retry exclusions",
          "[request_flow][retry_exclusion]") {
  auto s = settings_with(1, false);
  s.fallbacks = {{"g2", {"solo"}}};
  flow_driver d(pair_and_solo_config(s), request_for("g2"));
  d.start();
  d.picked("A");
  d.fails(internal);
  CHECK(d.reported(2) == "pick g2 excluding A");
  d.picked("B");
  d.fails(internal);
  CHECK(d.reported(2) == "resolve g2 InternalServerError");
  CHECK(d.fallbacks({"solo"}) == "pick solo");
  CHECK(d.flow().excluded().empty());
}

// --- each fallback group at most once per request ------------------------------------

TEST_CASE("fallbacks: a group named twice in a list is attempted once",
          "[request_flow][fallback]") {
  flow_driver d(fallback_tree_config(), request_for("O"));
  d.start();
  d.picked("o");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve O InternalServerError");
  CHECK(d.fallbacks({"F1", "F1", "F2"}) == "pick F1");
  d.picked("f1");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve F1 InternalServerError");
  // F1's own list is empty; the second F1 of O's list is skipped, no hop spent.
  CHECK(d.fallbacks({}) == "pick F2");
  d.picked("f2");
  CHECK(d.ok("from F2") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.fallback_depth == 2);
  CHECK(trace(r) == lines{"O/o InternalServerError", "F1/f1 InternalServerError", "F2/f2 ok"});
}

TEST_CASE("fallbacks: a group reached again through nested fallbacks is skipped",
          "[request_flow][fallback]") {
  // O -> [F1, F2, G1], F1 -> [F2]: F2 is tried once, then G1 is reached
  // within max_fallbacks 3.
  auto s = settings_with(0, false);
  s.max_fallbacks = 3;
  flow_driver d(fallback_tree_config(s), request_for("O"));
  d.start();
  d.picked("o");
  d.fails(internal);
  d.reported(1);
  CHECK(d.fallbacks({"F1", "F2", "G1"}) == "pick F1");
  d.picked("f1");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve F1 InternalServerError");
  CHECK(d.fallbacks({"F2"}) == "pick F2");
  d.picked("f2");
  d.fails(internal);
  CHECK(d.reported(1) == "resolve F2 InternalServerError");
  CHECK(d.fallbacks({"F1", "O"}) == "pick G1"); // both entered already
  d.picked("g1");
  CHECK(d.ok("from G1") == "finish");
  auto r = d.result();
  CHECK(r.ok);
  CHECK(r.fallback_depth == 3);
  CHECK(trace(r) == lines{"O/o InternalServerError", "F1/f1 InternalServerError",
                          "F2/f2 InternalServerError", "G1/g1 ok"});
}

TEST_CASE("flow: the reply's model has no provider prefix", "[request_flow]") {
  CHECK(response_model_name("openai/gpt-4o") == "gpt-4o");
  CHECK(response_model_name("azure/gpt-4o-eastus2") == "gpt-4o-eastus2");
  CHECK(response_model_name("openrouter/anthropic/claude-3") == "anthropic/claude-3");
  CHECK(response_model_name("gpt-4o") == "gpt-4o");
  CHECK(response_model_name("odd/") == "odd/");
  auto config = shared_config({deployment("g", "A").model("azure/eastus2")}, settings_with(0, false));
  flow_driver d(config, request_for("g"));
  d.start();
  d.picked("A");
  d.ok();
  CHECK(d.result().model == "eastus2");
}
