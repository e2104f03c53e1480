#pragma once

#include "load.hpp"

#include <memory>

namespace switchyard::bench {

/// The bare CAF cost of the router's per-request message pattern, with no
/// routing logic. Its own caf::actor_system with `threads` scheduler threads
/// (configured as the router configures its own) and the same long-lived
/// actors as a router over `groups` model groups: per group a "picker", a
/// "cooldown" and a "health" actor, plus the router's three shared ones
/// (supervisor, fallback, router actor), which stay idle as in a healthy
/// run. Like the router, no actor per deployment: a call is started from
/// the request actor and its answer arrives as a message sent from outside
/// the actor (what the zero-latency mock transport does inline in start()).
/// Each request spawns one actor that does request/response to its group's
/// picker, starts the "call", takes its answer, sends one-way to health,
/// then invokes a std::function callback and quits: the router's hops for
/// a healthy request.
class baseline_bench {
public:
  explicit baseline_bench(std::size_t threads, std::size_t groups = 1);
  ~baseline_bench();
  baseline_bench(const baseline_bench&) = delete;
  baseline_bench& operator=(const baseline_bench&) = delete;

  /// Issues request `id` (to group id % groups); its callback reports to
  /// the load run.
  load_run::issue_fn issue();

  /// Long-lived actors spawned (for the report).
  std::size_t long_lived_actors() const;

private:
  struct impl; // keeps CAF out of this header
  std::unique_ptr<impl> impl_;
};

} // namespace switchyard::bench
