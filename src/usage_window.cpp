#include "switchyard/usage_window.hpp"

namespace switchyard {

usage_window::usage_window(std::size_t deployments)
  : counts_(deployments), remote_(deployments) {
}

const usage_window::remote_counts* usage_window::remote(local_index i,
                                                        time_point now) const {
  const auto& r = remote_.at(i);
  const bool fresh = (r.requests > 0 || r.tokens > 0)
                     && now - r.received < std::chrono::minutes(1);
  return fresh ? &r : nullptr;
}

void usage_window::set_remote(local_index i, std::uint64_t requests,
                              std::uint64_t tokens, time_point now) {
  remote_.at(i) = remote_counts{now, requests, tokens};
}

std::int64_t usage_window::minute_of(time_point now) {
  return std::chrono::duration_cast<std::chrono::minutes>(now.time_since_epoch()).count();
}

usage_window::counts& usage_window::current(local_index i, time_point now) {
  auto& c = counts_.at(i);
  auto m = minute_of(now);
  if (c.minute != m)
    c = counts{m, 0, 0};
  return c;
}

void usage_window::add_request(local_index i, time_point now) {
  ++current(i, now).requests;
}

void usage_window::add_tokens(local_index i, std::uint64_t tokens, time_point now) {
  current(i, now).tokens += tokens;
}

std::uint64_t usage_window::requests(local_index i, time_point now) const {
  const auto& c = counts_.at(i);
  const auto* r = remote(i, now);
  return (c.minute == minute_of(now) ? c.requests : 0) + (r ? r->requests : 0);
}

std::uint64_t usage_window::tokens(local_index i, time_point now) const {
  const auto& c = counts_.at(i);
  const auto* r = remote(i, now);
  return (c.minute == minute_of(now) ? c.tokens : 0) + (r ? r->tokens : 0);
}

} // namespace switchyard
