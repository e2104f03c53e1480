#pragma once

#include "load.hpp"

#include <memory>

namespace switchyard::bench {

/// The bare CAF cost of the router's per-request message pattern, with no
/// routing logic. Its own caf::actor_system with `threads` scheduler threads
/// (configured as the router configures its own) and three long-lived
/// actors, "picker", "deployment" and "health". Each request spawns one
/// actor that does request/response to the picker, request/response to the
/// deployment, a one-way send to health, then invokes a std::function
/// callback and quits: the router's hops for a healthy request.
class baseline_bench {
public:
  explicit baseline_bench(std::size_t threads);
  ~baseline_bench();
  baseline_bench(const baseline_bench&) = delete;
  baseline_bench& operator=(const baseline_bench&) = delete;

  /// Issues request `id`; its callback reports to the load run.
  load_run::issue_fn issue();

private:
  struct impl; // keeps CAF out of this header
  std::unique_ptr<impl> impl_;
};

} // namespace switchyard::bench
