#pragma once

#include "switchyard/config.hpp"
#include "switchyard/cooldown.hpp"
#include "switchyard/deployment_call.hpp"
#include "switchyard/request.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>

namespace switchyard {

/// A non-streamed call's answer as it came, not decoded yet. Decoding it
/// (parsing the JSON body into the chat.completion, mapping an error
/// status) is the costliest step of a loopback call, so a sink that
/// forwards to another thread forwards this and decodes it there, off the
/// transport's I/O thread. Once handed to the sink, it is the sink's alone:
/// decode() may run on any thread, once.
class pending_answer {
public:
  virtual ~pending_answer() = default;
  virtual call_outcome decode() = 0;
};

using pending_answer_ptr = std::shared_ptr<pending_answer>;

/// Receives the events of one deployment call. Called on the transport's
/// own thread, or inline inside transport::start for an answer known at
/// once: an implementation only forwards (to an actor's mailbox, a queue)
/// and never blocks. Events of one call arrive in order and never
/// concurrently.
class call_sink {
public:
  virtual ~call_sink() = default;
  /// Streamed calls: one OpenAI `chat.completion.chunk` object, in the
  /// order the provider sent it (already translated for Anthropic).
  virtual void on_chunk(nlohmann::json chunk) = 0;
  /// The call's end, exactly once and last: success (the whole
  /// chat.completion for a non-streamed call; usage and finish_reason for
  /// a stream) or the mapped failure. Not called after cancel() returned.
  virtual void on_done(call_outcome outcome) = 0;
  /// Instead of on_done, for an answer a transport leaves to the sink to
  /// decode: the call's end, exactly once and last, as on_done. The
  /// default decodes it here, on the calling thread.
  virtual void on_answer(pending_answer_ptr answer) { on_done(answer->decode()); }
};

/// Cancels one call: its connection is released, its timers dropped, and
/// its sink hears nothing more once cancel() has returned. Safe to call
/// from any thread, more than once, and after the call finished.
class call_handle {
public:
  virtual ~call_handle() = default;
  virtual void cancel() noexcept = 0;
};

using call_handle_ptr = std::unique_ptr<call_handle>;

/// One call of a request on a deployment.
struct call_spec {
  /// Owned by the router's config, which outlives every call.
  const deployment_config* deployment = nullptr;
  request_ptr request;
  /// A non-streamed call's whole deadline; for a stream, the bound on the
  /// first chunk and on each gap between chunks (TRANSPORT.md section 5).
  seconds_d timeout{600};
};

/// "Perform one call of a request on a deployment": the boundary between
/// the router and whatever talks to providers (the mock, HTTP). CAF-free;
/// start() never blocks and may be called from any thread at once.
class transport {
public:
  virtual ~transport() = default;
  /// Starts the call. The sink gets the outcome by the deadline at the
  /// latest (a Timeout then). The returned handle cancels it.
  virtual call_handle_ptr start(const call_spec& spec,
                                std::shared_ptr<call_sink> sink) = 0;
  /// The router is stopping: every call in flight ends now with a
  /// ShutdownError outcome, and calls started later get one at once, so no
  /// request waits on a provider while its router goes away.
  virtual void stop() {}
};

/// The outcome a stopping transport gives its calls.
call_outcome shutdown_outcome();

} // namespace switchyard
