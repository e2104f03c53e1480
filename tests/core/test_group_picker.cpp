#include "switchyard/group_picker.hpp"

#include "switchyard/simple_shuffle.hpp"

#include "support/scripted_random.hpp"
#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;
using switchyard::test::group_of;
using switchyard::test::local_of;
using switchyard::test::make_config;
using switchyard::test::scripted_random;

namespace {

/// The fake clock: whole minutes start at multiples of 60 s.
time_point at(int seconds) { return time_point{} + std::chrono::seconds(seconds); }

constexpr int unordered = group_pick::unordered;

router_settings with_strategy(std::string name, bool pre_call_checks = false) {
  router_settings s;
  s.routing_strategy = std::move(name);
  s.enable_pre_call_checks = pre_call_checks;
  return s;
}

router_settings pre_call_checks_on() { return with_strategy("simple-shuffle", true); }

/// A pick_request from ids (the group's local indices are looked up).
pick_request request(const router_config& c, std::vector<std::string> excluded_ids = {},
                     std::optional<int> min_order = std::nullopt,
                     std::uint32_t tokens = 0) {
  pick_request r;
  for (const auto& id : excluded_ids)
    r.excluded.push_back(local_of(c, id));
  r.min_order = min_order;
  r.estimated_tokens = tokens;
  return r;
}

/// Plays a group's picker actor: the picker, and the config for names.
class picker {
public:
  picker(const router_config& c, const std::string& group)
    : c_(c), group_(group_of(c, group)), p_(c, group_) {}

  /// The id picked with one scripted draw `u` (exactly one draw).
  std::string pick(double u, const pick_request& r, time_point now = at(0)) {
    scripted_random rng{u};
    last_ = p_.pick(r, now, rng);
    INFO("u = " << u);
    CHECK(rng.consumed() == 1);
    return name(last_);
  }
  std::string pick(double u) { return pick(u, pick_request{}); }

  /// A pick that must find nothing, and so draw nothing.
  group_pick pick_none(const pick_request& r, time_point now = at(0)) {
    scripted_random no_draws;
    last_ = p_.pick(r, now, no_draws);
    CHECK_FALSE(last_.chosen.has_value());
    CHECK(no_draws.consumed() == 0);
    return last_;
  }

  /// Cooling-down ids (the rest are available).
  void cooling(const std::vector<std::string>& ids) {
    std::vector<bool> available(c_.groups[group_].deployments.size(), true);
    for (const auto& id : ids)
      available[local_of(c_, id)] = false;
    p_.set_available(available);
  }

  void finished(const std::string& id, std::uint64_t tokens = 0, time_point now = at(0)) {
    call_feedback f;
    f.ok = true;
    f.tokens = tokens;
    p_.on_finished(local_of(c_, id), f, now);
  }

  const group_pick& last() const noexcept { return last_; }
  group_picker& get() noexcept { return p_; }

private:
  std::string name(const group_pick& r) const {
    if (!r.chosen)
      return "none";
    return c_.deployments[c_.groups[group_].deployments.at(*r.chosen)].id;
  }

  const router_config& c_;
  std::uint32_t group_;
  group_picker p_;
  group_pick last_;
};

/// "g": tier 1 A (weight 1), B (weight 3); tier 2 C, D; unordered E.
router_config tiered_config(router_settings s = {}) {
  return make_config({deployment("g", "A").order(1).weight(1),
                      deployment("g", "C").order(2),
                      deployment("g", "E"),
                      deployment("g", "B").order(1).weight(3),
                      deployment("g", "D").order(2)},
                     std::move(s));
}

} // namespace

// --- one tier ----------------------------------------------------------------

TEST_CASE("group picker: a single tier picks exactly as the plain strategy",
          "[group_picker]") {
  for (bool all_order_1 : {false, true}) {
    INFO((all_order_1 ? "every deployment order 1" : "no order set"));
    std::vector<deployment_config> ds;
    for (int i = 0; i < 4; ++i) {
      auto d = deployment("g", "d" + std::to_string(i)).weight(i + 1.0);
      if (all_order_1)
        d.order(1);
      ds.push_back(d);
    }
    auto c = make_config(ds);
    group_picker p(c, 0);
    auto plain = simple_shuffle::from_config(switchyard::test::group_deployments(c, 0));
    auto compare = [&](const exclusion_list& excluded) {
      for (double u : {0.0, 0.05, 0.1, 0.25, 0.35, 0.6, 0.75, 0.999}) {
        INFO("u = " << u << ", " << excluded.size() << " excluded");
        scripted_random a{u};
        scripted_random b{u};
        pick_request r;
        r.excluded = excluded;
        auto got = p.pick(r, at(0), a);
        auto want = plain->pick(excluded, b);
        CHECK(got.chosen == want.chosen);
        CHECK(got.order == (all_order_1 ? 1 : unordered));
        CHECK_FALSE(got.context_window);
      }
    };
    compare({});
    compare({1});
    compare({0, 2});
    compare({3, 2, 1});
    p.set_available({true, false, true, true});
    plain->set_available({true, false, true, true});
    compare({});
    compare({2});

    scripted_random no_draws;
    pick_request everything;
    everything.excluded = {0, 2, 3};
    auto r = p.pick(everything, at(0), no_draws);
    CHECK_FALSE(r.chosen);
    CHECK(r.order == (all_order_1 ? 1 : unordered));
  }
}

// --- order tiers ----------------------------------------------------------------

TEST_CASE("group picker: the lowest order tier with a candidate wins", "[group_picker]") {
  auto c = tiered_config();
  picker p(c, "g");
  // Tier 1 by weight: [0, 0.25) A, [0.25, 1) B; C, D and E are never picked.
  CHECK(p.pick(0.0) == "A");
  CHECK(p.last().order == 1);
  CHECK(p.pick(0.24) == "A");
  CHECK(p.pick(0.25) == "B");
  CHECK(p.pick(0.999) == "B");
  CHECK(p.last().order == 1);
  CHECK_FALSE(p.last().context_window);
  // An exclusion in another tier changes nothing here.
  CHECK(p.pick(0.0, request(c, {"C", "E"})) == "A");
}

TEST_CASE("group picker: with all of tier 1 cooling down, tier 2 in the same pick",
          "[group_picker]") {
  auto c = tiered_config();
  picker p(c, "g");
  p.cooling({"A", "B"});
  // C and D set no metric: uniform.
  CHECK(p.pick(0.0) == "C");
  CHECK(p.last().order == 2);
  CHECK(p.pick(0.5) == "D");
  CHECK(p.last().order == 2);

  p.cooling({"A", "B", "C", "D"});
  CHECK(p.pick(0.5) == "E");
  CHECK(p.last().order == unordered);

  p.cooling({"A", "B", "C", "D", "E"});
  auto none = p.pick_none(pick_request{});
  CHECK_FALSE(none.context_window);

  p.cooling({});
  CHECK(p.pick(0.0) == "A");
  CHECK(p.last().order == 1);
}

TEST_CASE("group picker: a tier whose candidates are all excluded gives none, never the next tier",
          "[group_picker]") {
  auto c = tiered_config();
  picker p(c, "g");
  SECTION("both excluded") {
    auto r = p.pick_none(request(c, {"A", "B"}));
    CHECK(r.order == 1);
    CHECK_FALSE(r.context_window);
  }
  SECTION("one cooling down, the other excluded") {
    p.cooling({"A"});
    auto r = p.pick_none(request(c, {"B"}));
    CHECK(r.order == 1);
  }
  SECTION("the excluded one cooling too") {
    // Nothing of tier 1 is available: tier 2 is the lowest with a candidate.
    p.cooling({"A", "B"});
    CHECK(p.pick(0.0, request(c, {"A", "B"})) == "C");
    CHECK(p.last().order == 2);
  }
  SECTION("in tier 2 as well") {
    p.cooling({"A", "B"});
    auto r = p.pick_none(request(c, {"C", "D"}));
    CHECK(r.order == 2);
  }
}

TEST_CASE("group picker: min_order skips the lower tiers", "[group_picker]") {
  auto c = tiered_config();
  picker p(c, "g");
  CHECK(p.pick(0.0, request(c, {}, 2)) == "C");
  CHECK(p.last().order == 2);
  CHECK(p.pick(0.5, request(c, {}, 2)) == "D");
  // Exclusions of the skipped tier do not matter; those of tier 2 do.
  CHECK(p.pick(0.0, request(c, {"A", "B", "C"}, 2)) == "D");
  auto r = p.pick_none(request(c, {"A", "C", "D"}, 2));
  CHECK(r.order == 2);
  // A floor between tiers starts at the next one.
  CHECK(p.pick(0.0, request(c, {}, 3)) == "E");
  CHECK(p.last().order == unordered);
  CHECK(p.pick(0.0, request(c, {}, unordered)) == "E");
  // A floor at or below tier 1 changes nothing.
  CHECK(p.pick(0.0, request(c, {}, 1)) == "A");
  CHECK(p.pick(0.999, request(c, {}, -7)) == "B");
  // With tier 2 cooling, the floor moves on to the unordered tier.
  p.cooling({"C", "D"});
  CHECK(p.pick(0.0, request(c, {}, 2)) == "E");
}

TEST_CASE("group picker: deployments without order form the last tier", "[group_picker]") {
  auto c = make_config({deployment("g", "U1"), deployment("g", "Seven").order(7),
                        deployment("g", "U2"), deployment("g", "Five").order(5)});
  picker p(c, "g");
  CHECK(p.pick(0.999) == "Five");
  CHECK(p.last().order == 5);
  p.cooling({"Five"});
  CHECK(p.pick(0.999) == "Seven");
  CHECK(p.last().order == 7);
  p.cooling({"Five", "Seven"});
  CHECK(p.pick(0.0) == "U1");
  CHECK(p.pick(0.5) == "U2");
  CHECK(p.last().order == unordered);
}

// --- pre-call checks ---------------------------------------------------------------

TEST_CASE("group picker: pre-call checks remove deployments whose max_input_tokens is below the estimate",
          "[group_picker][pre_call]") {
  auto c = make_config({deployment("g", "Small").max_input_tokens(10),
                        deployment("g", "Mid").max_input_tokens(50),
                        deployment("g", "Unlimited")},
                       pre_call_checks_on());
  picker p(c, "g");
  // 10 tokens fit everywhere: uniform over three.
  CHECK(p.pick(0.0, request(c, {}, {}, 10)) == "Small");
  CHECK(p.pick(0.34, request(c, {}, {}, 10)) == "Mid");
  // 50: Small is removed, Mid fits exactly.
  CHECK(p.pick(0.0, request(c, {}, {}, 50)) == "Mid");
  CHECK(p.pick(0.5, request(c, {}, {}, 50)) == "Unlimited");
  CHECK_FALSE(p.last().context_window);
  // 51: only the deployment without a limit stays.
  CHECK(p.pick(0.0, request(c, {}, {}, 51)) == "Unlimited");
  CHECK(p.pick(0.0, request(c, {}, {}, 4000000)) == "Unlimited");
  CHECK_FALSE(p.last().context_window);
}

TEST_CASE("group picker: pre-call checks remove deployments at their rpm limit",
          "[group_picker][pre_call]") {
  auto c = make_config({deployment("g", "A").rpm(1), deployment("g", "B").rpm(1)},
                       pre_call_checks_on());
  picker p(c, "g");
  CHECK(p.pick(0.0, {}, at(0)) == "A"); // rpm weights 1:1, [0, 0.5) A
  CHECK(p.pick(0.0, {}, at(1)) == "B"); // A's one request of the minute is used
  auto r = p.pick_none({}, at(2));
  CHECK_FALSE(r.context_window);
  // The next minute frees both.
  CHECK(p.pick(0.0, {}, at(60)) == "A");
  CHECK(p.pick(0.999, {}, at(61)) == "B");
}

TEST_CASE("group picker: removed for the context window, the empty pick says so",
          "[group_picker][pre_call]") {
  SECTION("every deployment too small") {
    auto c = make_config({deployment("g", "A").max_input_tokens(10),
                          deployment("g", "B").max_input_tokens(20)},
                         pre_call_checks_on());
    picker p(c, "g");
    CHECK(p.pick_none(request(c, {}, {}, 50)).context_window);
    CHECK(p.pick(0.0, request(c, {}, {}, 20)) == "B");
  }
  SECTION("some too small, the rest at their rpm limit") {
    auto c = make_config({deployment("g", "A").max_input_tokens(10),
                          deployment("g", "B").rpm(1)},
                         pre_call_checks_on());
    picker p(c, "g");
    CHECK(p.pick(0.0, request(c, {}, {}, 50)) == "B");
    CHECK(p.pick_none(request(c, {}, {}, 50)).context_window);
  }
  SECTION("only rpm limits: not a context-window problem") {
    auto c = make_config({deployment("g", "A").max_input_tokens(100).rpm(1)},
                         pre_call_checks_on());
    picker p(c, "g");
    CHECK(p.pick(0.0, request(c, {}, {}, 50)) == "A");
    CHECK_FALSE(p.pick_none(request(c, {}, {}, 50)).context_window);
  }
  SECTION("a cooling deployment's limit says nothing") {
    auto c = make_config({deployment("g", "A").max_input_tokens(10), deployment("g", "B")},
                         pre_call_checks_on());
    picker p(c, "g");
    p.cooling({"A", "B"});
    CHECK_FALSE(p.pick_none(request(c, {}, {}, 50)).context_window);
  }
  SECTION("a tier removed for its context window passes to the next tier") {
    auto c = make_config({deployment("g", "A").order(1).max_input_tokens(10),
                          deployment("g", "B").order(2)},
                         pre_call_checks_on());
    picker p(c, "g");
    CHECK(p.pick(0.0, request(c, {}, {}, 50)) == "B");
    CHECK(p.last().order == 2);
    CHECK_FALSE(p.last().context_window);
    CHECK(p.pick(0.0, request(c, {}, {}, 10)) == "A");
    CHECK(p.last().order == 1);
  }
}

TEST_CASE("group picker: without pre-call checks nothing is removed", "[group_picker][pre_call]") {
  auto c = make_config({deployment("g", "A").max_input_tokens(10).rpm(1),
                        deployment("g", "B").max_input_tokens(10).rpm(1)});
  REQUIRE_FALSE(c.settings.enable_pre_call_checks);
  picker p(c, "g");
  for (int k = 0; k < 3; ++k) {
    CHECK(p.pick(0.0, request(c, {}, {}, 5000), at(k)) == "A");
    CHECK_FALSE(p.last().context_window);
  }
  CHECK(p.pick(0.999, request(c, {}, {}, 5000), at(3)) == "B");
}

// --- feedback -----------------------------------------------------------------------

TEST_CASE("group picker: on_finished reaches the finished deployment's tier strategy",
          "[group_picker]") {
  SECTION("least-busy in-flight counts") {
    auto c = make_config({deployment("g", "B").order(2), deployment("g", "A").order(1),
                          deployment("g", "C").order(2)},
                         with_strategy("least-busy"));
    picker p(c, "g");
    CHECK(p.pick(0.999) == "A"); // tier 1 alone, however busy
    CHECK(p.pick(0.999) == "A");
    p.cooling({"A"});
    CHECK(p.pick(0.0) == "B");   // B 1, C 0
    CHECK(p.pick(0.0) == "C");   // B 1, C 1
    CHECK(p.pick(0.0) == "B");   // B 2, C 1
    p.finished("C");             // B 2, C 0
    CHECK(p.pick(0.999) == "C"); // B 2, C 1
    p.finished("B");
    p.finished("B");             // B 0, C 1
    CHECK(p.pick(0.999) == "B");
    p.cooling({});
    p.finished("A");
    p.finished("A");
    p.finished("A"); // one too many: stays at 0
    CHECK(p.pick(0.999) == "A");
  }
  SECTION("usage-based tokens, with tier positions unlike group positions") {
    auto c = make_config({deployment("g", "X").order(2), deployment("g", "A").order(1),
                          deployment("g", "Y").order(2), deployment("g", "B").order(1)},
                         with_strategy("usage-based-routing-v2"));
    picker p(c, "g");
    p.finished("B", 50, at(1));
    CHECK(p.pick(0.999, {}, at(2)) == "A");
    p.finished("A", 80, at(3));
    CHECK(p.pick(0.0, {}, at(4)) == "B");
    p.cooling({"A", "B"});
    p.finished("X", 5, at(5));
    CHECK(p.pick(0.0, {}, at(6)) == "Y");
    CHECK(p.last().order == 2);
  }
}

// --- next_order ------------------------------------------------------------------------

TEST_CASE("next_order: the group's next tier above an order", "[group_picker]") {
  auto c = make_config({deployment("g", "A").order(1), deployment("h", "H").order(2),
                        deployment("g", "B").order(1), deployment("g", "C").order(3),
                        deployment("g", "D"), deployment("plain", "P1"),
                        deployment("plain", "P2")});
  const auto g = group_of(c, "g");
  CHECK(next_order(c, g, 1) == std::optional<int>(3)); // h's order 2 is another group's
  CHECK(next_order(c, g, 2) == std::optional<int>(3));
  CHECK(next_order(c, g, 3) == std::optional<int>(unordered));
  CHECK(next_order(c, g, unordered) == std::nullopt);
  CHECK(next_order(c, g, 0) == std::optional<int>(1));
  CHECK(next_order(c, g, -5) == std::optional<int>(1));

  const auto h = group_of(c, "h");
  CHECK(next_order(c, h, 2) == std::nullopt); // no unordered tier in h
  CHECK(next_order(c, h, 1) == std::optional<int>(2));

  const auto plain = group_of(c, "plain");
  CHECK(next_order(c, plain, unordered) == std::nullopt);
}

// --- the fleet's usage (shared state) ----------------------------------------

TEST_CASE("group picker: other replicas' requests count toward the pre-call rpm check",
          "[group_picker][pre_call][shared_state]") {
  auto c = make_config({deployment("g", "A").rpm(2), deployment("g", "B").rpm(2)},
                       pre_call_checks_on());
  picker p(c, "g");
  CHECK(p.pick(0.0, {}, at(0)) == "A");
  // The fleet used A's second request this minute: A is at its limit.
  p.get().set_remote_usage(local_of(c, "A"), 1, 0, at(1));
  CHECK(p.pick(0.0, {}, at(2)) == "B");
  CHECK(p.pick(0.0, {}, at(3)) == "B");
  p.pick_none({}, at(4));
  CHECK(p.get().counts_usage());
}

TEST_CASE("group picker: other replicas' usage reaches usage-based-routing-v2",
          "[group_picker][shared_state]") {
  auto c = make_config({deployment("g", "A").rpm(5), deployment("g", "B").rpm(5)},
                       with_strategy("usage-based-routing-v2"));
  picker p(c, "g");
  CHECK(p.get().counts_usage());
  // The fleet's tokens make A the busier one: B has the lowest tpm.
  p.get().set_remote_usage(local_of(c, "A"), 0, 1000, at(0));
  CHECK(p.pick(0.0, {}, at(1)) == "B");
  CHECK(p.pick(0.999, {}, at(1)) == "B");
  // The fleet used B's rpm: A, though busier, is the one under its limits.
  p.get().set_remote_usage(local_of(c, "B"), 5, 0, at(2));
  CHECK(p.pick(0.0, {}, at(3)) == "A");
}

TEST_CASE("group picker: simple-shuffle without pre-call checks counts no usage",
          "[group_picker][shared_state]") {
  auto c = make_config({deployment("g", "A")}, with_strategy("simple-shuffle"));
  picker p(c, "g");
  CHECK_FALSE(p.get().counts_usage());
}
