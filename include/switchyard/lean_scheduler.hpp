#pragma once

// CAF 0.17's work-stealing scheduler with a clock that hears of an actor's
// exit only when the actor ever set a timeout.
//
// Why: in CAF 0.17.6 every actor that quits cancels its timeouts through
// the clock (local_actor::cleanup -> clock().cancel_timeouts), whether it
// set one or not. For the thread-safe clock that is an allocation, a push
// onto the clock thread's queue and a wake-up of that thread, per actor.
// The router spawns one orchestrator per request, and almost none of them
// sets a timeout (retry waits and deadlines run on the timer_service; CAF
// requests are made with infinite timeouts): profiles showed
// local_actor::cleanup and the clock thread's dispatch loop taking a
// quarter to a third of the router's CPU per request.
//
// Also, with a CAF built CAF_LOG_LEVEL_QUIET (Debian's), a worker drops its
// thread's logger at its first job: CAF 0.17.6 otherwise tags every job
// with its actor's id for that logger (CAF_PUSH_AID, a map lookup under a
// spinlock before and after each job), though it never logs.
//
// Everything else is CAF's own: the same worker threads, the same stealing
// policy and settings (scheduler.max-threads, work-stealing.*), the same
// clock for every timeout and delayed message.

#include <caf/actor_system_config.hpp>

#include <cstdint>
#include <optional>

namespace switchyard {

/// What the lean clock did with actor exits so far (for tests and
/// diagnostics).
struct lean_clock_stats {
  /// Exits of actors that never set a timeout: not sent to the clock.
  std::uint64_t exits_skipped = 0;
  /// Exits of actors that set one: their timeouts cancelled by the clock.
  std::uint64_t exits_forwarded = 0;
};

/// Makes systems built from `cfg` run the lean scheduler (CAF's
/// work-stealing coordinator with the lean clock). Call before the
/// caf::actor_system is constructed; the router does it for the system it
/// owns, an application that brings its own system may do it too.
void use_lean_scheduler(caf::actor_system_config& cfg);

/// The lean clock's counts for `sys`; nullopt when `sys` does not run the
/// lean scheduler. Safe from any thread.
std::optional<lean_clock_stats> lean_clock_stats_of(caf::actor_system& sys);

} // namespace switchyard
