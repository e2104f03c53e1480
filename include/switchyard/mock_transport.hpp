#pragma once

#include "switchyard/transport.hpp"

#include <memory>

namespace switchyard {

/// The mock deployments of ROUTER_SEMANTICS.md section 3 as a transport:
/// plan_mock_call decides each answer, and a timer thread of its own
/// delivers it after the mock's latency (at once, inline in start(), when
/// there is none). A streamed request gets its reply as chunks: the first
/// one (role and content) at mock_first_token_ms, the finish chunk at the
/// end. Deadlines as a real transport's: a call slower than its timeout
/// ends with a Timeout at the deadline (for a stream: the first chunk, or
/// the gap after it). Each deployment has its own seeded random stream and
/// call counter (mock_failure_after_calls). Thread-safe.
std::shared_ptr<transport> make_mock_transport(std::shared_ptr<const router_config> config,
                                               std::uint64_t seed);

/// True when a call of `request` on `deployment` is answered by the mock
/// (a mock_response on either, mock_testing_context_fallbacks on the
/// request's own group, a mock_failure_rate), or the deployment has no
/// real endpoint. Pure.
bool is_mock_call(const router_config& config, const deployment_config& deployment,
                  const chat_request& request);

/// Sends each call to the mock or, for real deployments, to `http`
/// (null: the mock, which then answers that there is no transport).
std::shared_ptr<transport> make_dispatching_transport(std::shared_ptr<const router_config> config,
                                                      std::shared_ptr<transport> mock,
                                                      std::shared_ptr<transport> http);

/// The OpenAI `chat.completion` body of a successful reply: one choice
/// with `content` and `finish_reason`, and the usage given. `model` is the
/// deployment's model without its provider prefix.
nlohmann::json make_completion_body(const deployment_config& deployment,
                                    const std::string& content,
                                    const std::string& finish_reason,
                                    std::uint32_t prompt_tokens,
                                    std::uint32_t completion_tokens,
                                    std::int64_t created, std::uint64_t number);

} // namespace switchyard
