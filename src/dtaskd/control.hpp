#pragma once
// dtaskd's control socket: how 'dtaskd rotate' reaches the dtaskd that runs on the same keys
// directory, so that the new credential is in force when the command returns. A REP socket
// on ipc://DIR/control, owner-only like the directory it is in; a request is one short line
// of text, answered "ok TEXT" or "error TEXT".

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include "security/join_token.hpp"

namespace dtask::dtaskd {

/// The request to rotate `role`'s credential, and the role a request asks to rotate.
std::string rotate_request(detail::TokenRole role);
std::optional<detail::TokenRole> rotated_role(std::string_view request);

/// The running dtaskd's end. Its socket file goes when it does; a stale one (of a dtaskd
/// killed outright) is replaced, which is safe because the caller holds the keys lock.
class ControlSocket {
public:
    ControlSocket(zmq::context_t& context, const std::string& directory);
    ~ControlSocket();
    ControlSocket(const ControlSocket&) = delete;
    ControlSocket& operator=(const ControlSocket&) = delete;

    /// For zmq::poll: readable when a request may wait.
    zmq::socket_t& socket() noexcept { return socket_; }
    /// Answers the request that waits, if any, with `answer(request)`: the text after "ok",
    /// or an Error whose text follows "error". A request that is not one line of text gets
    /// an error without reaching `answer`.
    void serve(const std::function<std::string(std::string_view)>& answer);

private:
    std::string path_;
    zmq::socket_t socket_;
};

/// Sends `request` to the dtaskd on `directory` and returns its "ok" text; throws
/// dtask::Error with its "error" text, or if no answer comes within `timeout`.
std::string ask_dtaskd(const std::string& directory, const std::string& request,
                       std::chrono::milliseconds timeout);

}  // namespace dtask::dtaskd
