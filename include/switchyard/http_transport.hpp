#pragma once

#include "switchyard/http_client.hpp"
#include "switchyard/transport.hpp"

#include <memory>

namespace switchyard {

/// The transport of real deployments: each call is its deployment's
/// provider codec (switchyard/provider.hpp: the request built, the answer,
/// the error and the stream decoded) over one shared http_client (libcurl
/// multi on its own I/O thread). The sink's events come on that I/O
/// thread. A non-streamed call is bounded by its timeout in total; a
/// streamed one by the timeout to its first body byte and between bytes.
/// Thread-safe: start() and cancel() from any thread, never blocking.
std::shared_ptr<transport> make_http_transport(http_client_options options = {});

} // namespace switchyard
