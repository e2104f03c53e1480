#include "switchyard/usage_window.hpp"

namespace switchyard {

usage_window::usage_window(std::size_t deployments) : counts_(deployments) {
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
  return c.minute == minute_of(now) ? c.requests : 0;
}

std::uint64_t usage_window::tokens(local_index i, time_point now) const {
  const auto& c = counts_.at(i);
  return c.minute == minute_of(now) ? c.tokens : 0;
}

} // namespace switchyard
