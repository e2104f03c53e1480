// The configuration examples the README shows load as they are, and
// `check` shows their endpoints without the keys.

#include "support/cli_runner.hpp"

#include <catch2/catch.hpp>

using namespace switchyard::test;

TEST_CASE("examples/real_config.yaml loads, and check shows each endpoint, never a key") {
  const std::string config = std::string(SWITCHYARD_TEST_DATA) + "/../../../examples/real_config.yaml";
  auto r = run_cli("check --config " + quoted(config),
                   "AZURE_API_KEY=az-secret-1 OPENAI_API_KEY=sk-secret-2 ANTHROPIC_API_KEY=ant-secret-3");
  INFO(r.err);
  REQUIRE(r.status == 0);
  CHECK(contains(r.out, "https://my-eastus2.openai.azure.com/openai/deployments/gpt-4o-eastus2/"
                        "chat/completions?api-version=2024-10-21"));
  CHECK(contains(r.out, "https://api.openai.com/v1/chat/completions"));
  CHECK(contains(r.out, "https://api.anthropic.com/v1/messages"));
  for (const char* key : {"az-secret-1", "sk-secret-2", "ant-secret-3"}) {
    CHECK_FALSE(contains(r.out, key));
    CHECK_FALSE(contains(r.err, key));
  }
  // Without the keys it is a load error naming the variable's field.
  auto missing = run_cli("check --config " + quoted(config), "env -u AZURE_API_KEY -u OPENAI_API_KEY -u ANTHROPIC_API_KEY");
  CHECK(missing.status == 1);
  CHECK(contains(missing.err, "model_list[0].litellm_params.api_key"));
}
