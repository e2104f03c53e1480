#pragma once

// The router's actor interface, for applications that are CAF actor systems
// themselves. Include this only where CAF is already included; the rest of
// the embedding API (switchyard/router.hpp) does not need it.

#include "switchyard/request.hpp"
#include "switchyard/router.hpp"

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>

namespace switchyard {

/// `(route_atom, request_ptr) -> route_result`: route one request. Send it
/// to router::handle(); the answer always comes (errors are in the result).
using route_atom = caf::atom_constant<caf::atom("route")>;

} // namespace switchyard

// Local-only types: requests and results are shared by pointer inside one
// process and never serialised.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::request_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::route_result)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchyard::completion_handler)
