#include "switchyard/fallback.hpp"

#include "support/test_config.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

using namespace switchyard;
using switchyard::test::deployment;

namespace {

using names = std::vector<std::string>;

/// One deployment per group, named after the group.
router_config groups_with(router_settings settings) {
  std::vector<deployment_config> ds;
  for (const char* g : {"gpt-4o", "openai/gpt-4o", "gpt-4o-mini", "claude", "backup",
                        "big-context", "safe"})
    ds.push_back(deployment(g, std::string(g) + "-1"));
  return switchyard::test::make_config(std::move(ds), std::move(settings));
}

/// resolve_fallbacks, answered as group names.
names fallbacks_for(const router_config& c, const std::string& group, error_kind kind) {
  names out;
  for (auto g : resolve_fallbacks(c, switchyard::test::group_of(c, group), kind))
    out.push_back(c.groups.at(g).name);
  return out;
}

bool has_generic(const router_config& c, const std::string& group) {
  return has_generic_fallbacks(c, switchyard::test::group_of(c, group));
}

const auto rate_limit = error_kind::rate_limit;

} // namespace

TEST_CASE("fallbacks: exact key, in configured order", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"claude", {"backup"}}, {"gpt-4o", {"gpt-4o-mini", "claude"}}};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit) == names{"gpt-4o-mini", "claude"});
  CHECK(fallbacks_for(c, "claude", rate_limit) == names{"backup"});
  CHECK(fallbacks_for(c, "backup", rate_limit).empty());
  CHECK(has_generic(c, "gpt-4o"));
  CHECK_FALSE(has_generic(c, "backup"));
}

TEST_CASE("fallbacks: the key without its provider/ prefix", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "openai/gpt-4o", rate_limit) == names{"gpt-4o-mini"});
  CHECK(has_generic(c, "openai/gpt-4o"));

  SECTION("the exact key wins over the stripped one, whatever the order") {
    s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}, {"openai/gpt-4o", {"claude"}}};
    auto c2 = groups_with(s);
    CHECK(fallbacks_for(c2, "openai/gpt-4o", rate_limit) == names{"claude"});
    CHECK(fallbacks_for(c2, "gpt-4o", rate_limit) == names{"gpt-4o-mini"});
  }
}

TEST_CASE("fallbacks: '*' applies to every group without its own entry", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"*", {"backup"}}, {"claude", {"gpt-4o-mini"}}};
  s.default_fallbacks = {"safe"};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit) == names{"backup"});
  CHECK(fallbacks_for(c, "claude", rate_limit) == names{"gpt-4o-mini"});
  CHECK(has_generic(c, "big-context"));
}

TEST_CASE("fallbacks: default_fallbacks act as '*'", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"claude", {"gpt-4o-mini"}}};
  s.default_fallbacks = {"backup", "safe"};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit) == names{"backup", "safe"});
  CHECK(fallbacks_for(c, "claude", rate_limit) == names{"gpt-4o-mini"});
  CHECK(has_generic(c, "gpt-4o"));
}

TEST_CASE("fallbacks: an exact entry with no targets means none", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"gpt-4o", {}}, {"*", {"backup"}}};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit).empty());
  CHECK_FALSE(has_generic(c, "gpt-4o"));
  CHECK(fallbacks_for(c, "claude", rate_limit) == names{"backup"});
}

TEST_CASE("fallbacks: every non-400 error uses the generic list", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}};
  auto c = groups_with(s);
  for (auto kind : {error_kind::authentication, error_kind::permission_denied,
                    error_kind::not_found, error_kind::timeout,
                    error_kind::unprocessable_entity, error_kind::rate_limit,
                    error_kind::internal_server, error_kind::api_connection,
                    error_kind::bad_gateway, error_kind::service_unavailable,
                    error_kind::no_deployments_available}) {
    INFO(name_of(kind));
    CHECK(fallbacks_for(c, "gpt-4o", kind) == names{"gpt-4o-mini"});
  }
}

TEST_CASE("fallbacks: ContextWindowExceeded uses context_window_fallbacks by exact key only",
          "[fallback]") {
  router_settings s;
  s.context_window_fallbacks = {{"gpt-4o", {"big-context"}}, {"*", {"safe"}}};
  s.fallbacks = {{"*", {"backup"}}, {"claude", {"gpt-4o-mini"}}};
  s.default_fallbacks = {"backup"};
  auto c = groups_with(s);
  const auto cw = error_kind::context_window_exceeded;
  CHECK(fallbacks_for(c, "gpt-4o", cw) == names{"big-context"});
  // A non-empty list without an entry for the group: raise, never the
  // generic list.
  CHECK(fallbacks_for(c, "claude", cw).empty());
  // Nor the stripped key.
  CHECK(fallbacks_for(c, "openai/gpt-4o", cw).empty());
  // Generic failures of the same group still use the generic list.
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit) == names{"backup"});
}

TEST_CASE("fallbacks: ContentPolicyViolation uses content_policy_fallbacks by exact key only",
          "[fallback]") {
  router_settings s;
  s.content_policy_fallbacks = {{"gpt-4o", {"safe"}}};
  s.context_window_fallbacks = {{"claude", {"big-context"}}};
  s.fallbacks = {{"claude", {"gpt-4o-mini"}}};
  s.default_fallbacks = {"backup"};
  auto c = groups_with(s);
  const auto cp = error_kind::content_policy_violation;
  CHECK(fallbacks_for(c, "gpt-4o", cp) == names{"safe"});
  CHECK(fallbacks_for(c, "claude", cp).empty());
  CHECK(fallbacks_for(c, "openai/gpt-4o", cp).empty());
}

TEST_CASE("fallbacks: ContextWindowExceeded and ContentPolicyViolation without a list of "
          "their own continue into the generic fallbacks", "[fallback]") {
  // LiteLLM: "No context_window_fallback set. Defaulting to fallbacks";
  // both lists default to None there, and an empty one counts as unset.
  router_settings s;
  s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}, {"*", {"backup"}}};
  auto c = groups_with(s);
  for (auto kind : {error_kind::context_window_exceeded,
                    error_kind::content_policy_violation}) {
    INFO(name_of(kind));
    CHECK(fallbacks_for(c, "gpt-4o", kind) == names{"gpt-4o-mini"}); // exact key
    CHECK(fallbacks_for(c, "openai/gpt-4o", kind) == names{"gpt-4o-mini"}); // stripped key
    CHECK(fallbacks_for(c, "claude", kind) == names{"backup"}); // '*'
  }
  SECTION("default_fallbacks too") {
    router_settings d;
    d.default_fallbacks = {"safe"};
    auto only_default = groups_with(d);
    CHECK(fallbacks_for(only_default, "claude", error_kind::context_window_exceeded)
          == names{"safe"});
    CHECK(fallbacks_for(only_default, "claude", error_kind::content_policy_violation)
          == names{"safe"});
  }
  SECTION("the other error's list does not count as its own") {
    auto with_cw = s;
    with_cw.context_window_fallbacks = {{"claude", {"big-context"}}};
    auto c2 = groups_with(with_cw);
    // A non-empty context-window list without the group: raised.
    CHECK(fallbacks_for(c2, "gpt-4o", error_kind::context_window_exceeded).empty());
    // The content-policy list is still empty: generic.
    CHECK(fallbacks_for(c2, "gpt-4o", error_kind::content_policy_violation)
          == names{"gpt-4o-mini"});
  }
  SECTION("no generic fallback either: raised") {
    auto none = groups_with(router_settings{});
    CHECK(fallbacks_for(none, "gpt-4o", error_kind::context_window_exceeded).empty());
    CHECK(fallbacks_for(none, "gpt-4o", error_kind::content_policy_violation).empty());
  }
}

TEST_CASE("fallbacks: a plain BadRequest is never re-sent elsewhere", "[fallback]") {
  router_settings s;
  s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}, {"*", {"backup"}}};
  s.default_fallbacks = {"backup"};
  s.context_window_fallbacks = {{"gpt-4o", {"big-context"}}};
  auto c = groups_with(s);
  CHECK(fallbacks_for(c, "gpt-4o", error_kind::bad_request).empty());
  CHECK(fallbacks_for(c, "claude", error_kind::bad_request).empty());
}

TEST_CASE("fallbacks: has_generic_fallbacks ignores the special lists", "[fallback]") {
  router_settings s;
  s.context_window_fallbacks = {{"gpt-4o", {"big-context"}}};
  s.content_policy_fallbacks = {{"gpt-4o", {"safe"}}};
  auto c = groups_with(s);
  CHECK_FALSE(has_generic(c, "gpt-4o"));
  CHECK(fallbacks_for(c, "gpt-4o", rate_limit).empty());
}

// --- content_policy_fallback_exists -------------------------------------------------

namespace {

bool cp_fallback(const router_config& c, const std::string& group) {
  return content_policy_fallback_exists(c, switchyard::test::group_of(c, group));
}

} // namespace

TEST_CASE("content_policy_fallback_exists: a content_policy_fallbacks entry for the group",
          "[fallback][content_policy]") {
  router_settings s;
  s.content_policy_fallbacks = {{"gpt-4o", {"safe"}}};
  auto c = groups_with(s);
  CHECK(cp_fallback(c, "gpt-4o"));
  // By exact key only, like resolve_fallbacks.
  CHECK_FALSE(cp_fallback(c, "openai/gpt-4o"));
  CHECK_FALSE(cp_fallback(c, "claude"));
  CHECK_FALSE(cp_fallback(c, "safe"));
}

TEST_CASE("content_policy_fallback_exists: a '*' or default fallback counts for every group",
          "[fallback][content_policy]") {
  SECTION("'*'") {
    router_settings s;
    s.fallbacks = {{"*", {"backup"}}};
    auto c = groups_with(s);
    CHECK(cp_fallback(c, "gpt-4o"));
    CHECK(cp_fallback(c, "claude"));
  }
  SECTION("default_fallbacks") {
    router_settings s;
    s.default_fallbacks = {"backup"};
    auto c = groups_with(s);
    CHECK(cp_fallback(c, "gpt-4o"));
    CHECK(cp_fallback(c, "big-context"));
  }
}

TEST_CASE("content_policy_fallback_exists: other lists do not count", "[fallback][content_policy]") {
  router_settings s;
  s.fallbacks = {{"gpt-4o", {"gpt-4o-mini"}}};            // generic, for the group itself
  s.context_window_fallbacks = {{"gpt-4o", {"big-context"}}};
  s.content_policy_fallbacks = {{"claude", {"safe"}}};   // another group's
  auto c = groups_with(s);
  CHECK_FALSE(cp_fallback(c, "gpt-4o"));
  CHECK(cp_fallback(c, "claude"));
  CHECK_FALSE(cp_fallback(groups_with(router_settings{}), "gpt-4o"));
}
