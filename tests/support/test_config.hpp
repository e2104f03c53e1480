#pragma once

#include "switchyard/config.hpp"
#include "switchyard/routing_strategy.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchyard::test {

/// A mock reply with `content`.
inline mock_spec reply_mock(std::string content) {
  mock_spec m;
  m.kind = mock_spec::mode::reply;
  m.content = std::move(content);
  return m;
}

/// A mock failure of `kind` (status from the kind), as `litellm.<Kind>` or
/// an `{"error": ...}` object would give.
inline mock_spec failure_mock(error_kind kind,
                              std::optional<double> retry_after_s = std::nullopt,
                              std::string message = "mock failure") {
  mock_spec m;
  m.kind = mock_spec::mode::fail;
  m.error = router_error::make(kind, std::move(message), retry_after_s);
  return m;
}

/// Builds one deployment_config by hand, fluently:
///   deployment("gpt-4o", "A").weight(3).reply("hi")
class deployment_builder {
public:
  deployment_builder(std::string group, std::string id) {
    d_.model_name = std::move(group);
    d_.id = std::move(id);
    d_.model = "openai/" + d_.model_name;
  }
  deployment_builder& weight(double v) { d_.weight = v; return *this; }
  deployment_builder& rpm(double v) { d_.rpm = v; return *this; }
  deployment_builder& tpm(double v) { d_.tpm = v; return *this; }
  deployment_builder& model(std::string v) { d_.model = std::move(v); return *this; }
  deployment_builder& cooldown_time(double s) { d_.cooldown_time_s = s; return *this; }
  deployment_builder& num_retries(int n) { d_.num_retries = n; return *this; }
  deployment_builder& order(int v) { d_.order = v; return *this; }
  deployment_builder& max_input_tokens(std::int64_t v) { d_.max_input_tokens = v; return *this; }
  deployment_builder& timeout(double s) { d_.timeout_s = s; return *this; }
  deployment_builder& stream_timeout(double s) { d_.stream_timeout_s = s; return *this; }
  deployment_builder& input_cost(double per_token) {
    d_.input_cost_per_token = per_token;
    return *this;
  }
  deployment_builder& output_cost(double per_token) {
    d_.output_cost_per_token = per_token;
    return *this;
  }
  /// input_cost_per_token and output_cost_per_token together.
  deployment_builder& costs(double input_per_token, double output_per_token) {
    return input_cost(input_per_token).output_cost(output_per_token);
  }
  /// A reply whose finish_reason is `finish_reason` ("content_filter"...).
  deployment_builder& reply(std::string content, std::string finish_reason) {
    d_.mock = reply_mock(std::move(content));
    d_.mock.finish_reason = std::move(finish_reason);
    return *this;
  }
  deployment_builder& reply(std::string content) {
    d_.mock = reply_mock(std::move(content));
    return *this;
  }
  deployment_builder& fails(error_kind kind,
                            std::optional<double> retry_after_s = std::nullopt) {
    d_.mock = failure_mock(kind, retry_after_s);
    return *this;
  }
  deployment_builder& latency_ms(double ms) { d_.mock_latency_ms = ms; return *this; }
  deployment_builder& failure_rate(double rate, error_kind kind = error_kind::internal_server,
                                   std::uint64_t after_calls = 0) {
    d_.mock_failure_rate = rate;
    d_.mock_failure = kind;
    d_.mock_failure_after_calls = after_calls;
    return *this;
  }

  operator deployment_config() const { return d_; }
  const deployment_config& get() const noexcept { return d_; }

private:
  deployment_config d_;
};

inline deployment_builder deployment(std::string group, std::string id) {
  return deployment_builder(std::move(group), std::move(id));
}

/// A router_config as load_config would leave it: groups in order of first
/// appearance, each deployment's group/index_in_group set, the index built.
inline router_config make_config(std::vector<deployment_config> deployments,
                                 router_settings settings = {}) {
  router_config c;
  c.deployments = std::move(deployments);
  c.settings = std::move(settings);
  c.index_groups();
  return c;
}

inline std::shared_ptr<const router_config>
shared_config(std::vector<deployment_config> deployments,
              router_settings settings = {}) {
  return std::make_shared<const router_config>(
    make_config(std::move(deployments), std::move(settings)));
}

/// The group's index; the test fails if it does not exist.
inline std::uint32_t group_of(const router_config& c, std::string_view name) {
  auto g = c.find_group(name);
  if (!g)
    FAIL("no model group '" << std::string(name) << "' in the test config");
  return *g;
}

/// The local index (position inside its group) of the deployment `id`.
inline local_index local_of(const router_config& c, std::string_view id) {
  for (const auto& d : c.deployments)
    if (d.id == id)
      return d.index_in_group;
  FAIL("no deployment '" << std::string(id) << "' in the test config");
  return 0;
}

/// An environment (for `os.environ/` values) holding exactly these
/// variables.
inline env_lookup fake_env(std::map<std::string, std::string> vars = {}) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto i = vars.find(name);
    if (i == vars.end())
      return std::nullopt;
    return i->second;
  };
}

/// fake_env plus what a real (unmocked) deployment needs to load: an
/// OpenAI key and an Azure base. For tests about loading, not providers
/// (tests/core/test_provider_config.cpp covers their absence).
inline env_lookup fake_env_with_keys(std::map<std::string, std::string> vars = {}) {
  vars.emplace("OPENAI_API_KEY", "sk-test");
  vars.emplace("AZURE_API_BASE", "https://test.openai.azure.com");
  return fake_env(std::move(vars));
}

/// The deployments of a group, as strategy factories take them.
inline std::vector<const deployment_config*>
group_deployments(const router_config& c, std::uint32_t group) {
  std::vector<const deployment_config*> out;
  for (auto d : c.groups.at(group).deployments)
    out.push_back(&c.deployments[d]);
  return out;
}

} // namespace switchyard::test
