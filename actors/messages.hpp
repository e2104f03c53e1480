#pragma once

// Messages between the router's own actors (not part of the public API).

#include "switchyard/actor_protocol.hpp"
#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/deployment_call.hpp"
#include "switchyard/group_picker.hpp"
#include "switchyard/observer.hpp"
#include "switchyard/routing_strategy.hpp"
#include "switchyard/shared_state.hpp"
#include "switchyard/timer_thread.hpp"
#include "switchyard/transport.hpp"

#include <caf/actor.hpp>

#include <atomic>
#include <exception>
#include <string>
#include <memory>
#include <mutex>
#include <vector>

namespace switchyard {

using pick_atom = caf::atom_constant<caf::atom("pick")>;
using call_atom = caf::atom_constant<caf::atom("call")>;
using outcome_atom = caf::atom_constant<caf::atom("outcome")>;
using cool_atom = caf::atom_constant<caf::atom("cool")>;
using healthy_atom = caf::atom_constant<caf::atom("healthy")>;
using avail_atom = caf::atom_constant<caf::atom("avail")>;
using expire_atom = caf::atom_constant<caf::atom("expire")>;
using finished_atom = caf::atom_constant<caf::atom("finished")>;
using fallback_atom = caf::atom_constant<caf::atom("fallback")>;
using done_atom = caf::atom_constant<caf::atom("done")>;
using wake_atom = caf::atom_constant<caf::atom("wake")>;
using call_done_atom = caf::atom_constant<caf::atom("calldone")>;
using chunk_atom = caf::atom_constant<caf::atom("chunk")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
/// From another replica, through the shared state: `(remote_cool_atom,
/// local, deadline wall ms, error kind, status)` to a cooldown actor;
/// `(fleet_atom, local, others' requests, others' tokens or failures,
/// wall minute)` to a picker (usage) or a health actor (outcomes).
using remote_cool_atom = caf::atom_constant<caf::atom("rcool")>;
using fleet_atom = caf::atom_constant<caf::atom("fleet")>;
/// Fault injection (tests): `(fault_atom, role)` to the router actor arms
/// the named actor of a group ("picker", "cooldown", "health") to throw on
/// its next request, as a bug would.
using fault_atom = caf::atom_constant<caf::atom("fault")>;

/// One chunk of a streamed call, from the transport's thread to the
/// request's orchestrator.
struct stream_chunk {
  nlohmann::json chunk;
};

/// The picker's answer: a deployment, or none and how long until the first
/// cooldown ends.
struct pick_reply {
  group_pick picked;
  std::optional<seconds_d> retry_in;
};

/// A finished call as the orchestrator reports it to the group's health
/// actor (which forwards the feedback to the picker when its strategy or the
/// pre-call checks need it).
struct call_report {
  call_feedback feedback;
  /// Failures only: the error, and the request's own cooldown_time.
  router_error error;
  std::optional<double> request_cooldown_s;
};

/// The cooldown actor's view, pushed to the picker when it changes.
struct cooldown_snapshot {
  std::vector<bool> available;
  std::optional<time_point> next_expiry;
};

/// The actors of one model group.
struct group_actors {
  caf::actor picker;
  caf::actor cooldown;
  caf::actor health;
};

/// Where a group's actors are found. The supervisor swaps in a new set
/// when one of them fails; orchestrators read it at each step, several
/// times per request, from every worker. Thread-safe; get() is one atomic
/// load (std::atomic_load of a shared_ptr takes a lock from a process-wide
/// pool, which the workers contended for). Every set stays alive as long as
/// the slot, so a pointer read before a swap never dangles: restarts are
/// rare (a bug in an actor), and a dead set is a few handles.
class group_slot {
public:
  explicit group_slot(group_actors a) : sets_(std::make_shared<sets>()) { set(std::move(a)); }
  const group_actors* get() const { return sets_->current.load(std::memory_order_acquire); }
  void set(group_actors a) const {
    std::lock_guard<std::mutex> lock(sets_->mutex);
    sets_->all.push_back(std::make_unique<const group_actors>(std::move(a)));
    sets_->current.store(sets_->all.back().get(), std::memory_order_release);
  }

private:
  struct sets {
    std::mutex mutex;
    std::vector<std::unique_ptr<const group_actors>> all;
    std::atomic<const group_actors*> current{nullptr};
  };
  std::shared_ptr<sets> sets_;
};

class fleet_listener;

/// Wall-clock milliseconds now (shared deadlines and minutes are
/// wall-clock; local state keeps the steady clock).
inline wall_ms wall_clock_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Everything an orchestrator needs to find its way: immutable once the
/// router has started, shared by every orchestrator.
struct routing_table {
  std::shared_ptr<const router_config> config;
  std::vector<group_slot> groups;
  /// Restarts a group's actors when one fails (router_actor.cpp).
  caf::actor supervisor;
  /// Set by stop_routing: failures of peers are then a shutdown.
  mutable std::atomic<bool> stopping{false};
  caf::actor fallback;
  /// Performs every deployment call (the mock, or HTTP for real ones).
  std::shared_ptr<transport> calls;
  /// Retry waits and total_timeout deadlines: fired at once by
  /// stop_routing, so no request outlives its router in a timer.
  std::shared_ptr<timer_service> timers;
  /// Receives typed events; may be null.
  std::shared_ptr<router_observer> observer;
  std::uint64_t seed = 0;
  /// Numbers requests, so each orchestrator draws from its own stream.
  mutable std::atomic<std::uint64_t> next_request{0};
  /// Admission control: requests admitted and not yet answered.
  mutable std::atomic<std::size_t> in_flight{0};
  std::size_t max_in_flight = 0; ///< 0: no cap
  /// The state shared with other replicas (a local_shared_state when no
  /// Redis is configured), and what hears from them.
  std::shared_ptr<shared_state> shared;
  std::shared_ptr<fleet_listener> fleet;
  /// `shared` when Redis is configured, else null: the group actors share
  /// nothing and the hot path stays as it is without Redis.
  std::shared_ptr<shared_state> sharing() const {
    return config->settings.redis ? shared : nullptr;
  }

  /// Takes a place for one request; false when the cap is reached.
  bool admit() const {
    if (max_in_flight == 0) {
      in_flight.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    if (in_flight.fetch_add(1, std::memory_order_relaxed) < max_in_flight)
      return true;
    in_flight.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  void release() const { in_flight.fetch_sub(1, std::memory_order_relaxed); }
};

using routing_table_ptr = std::shared_ptr<const routing_table>;

/// The text of an exception an actor's handler threw (its what(), or
/// "unknown exception"), for the error the actor ends with.
inline std::string exception_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
  }
  return "unknown exception";
}

} // namespace switchyard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::pick_reply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::pick_request)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::call_report)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::call_feedback)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::cooldown_snapshot)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::call_outcome)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::pending_answer_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::router_error)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::stream_chunk)
