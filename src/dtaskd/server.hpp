#pragma once
// The running dtaskd: the broker on its listen endpoints, guarded by the keys of its keys
// directory (or plain TCP when asked by name), and its main thread, which waits for a stop
// signal or a request on the control socket.

#include <optional>
#include <string>

#include "broker/broker.hpp"

namespace dtask::dtaskd {

struct ServerOptions {
    detail::BrokerOptions broker;  // endpoints, heartbeat; security is set from the keys
    std::string keys_directory;    // unused with insecure_tcp
    bool insecure_tcp = false;
    /// The HTTP endpoint's address (--http); empty: none.
    std::string http;
    /// It may listen beyond loopback (--http-allow-remote); readers then need the
    /// monitoring token of the keys directory.
    bool http_allow_remote = false;
};

/// Runs until SIGINT or SIGTERM; the exit status. Throws dtask::Error if it cannot start.
int run_server(ServerOptions options);

}  // namespace dtask::dtaskd
