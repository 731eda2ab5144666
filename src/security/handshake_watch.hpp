#pragma once
// A worker's or client's side of the secure handshake: its socket takes the token's keys
// (the broker's public key, which it verifies, and its own credential), and a ZeroMQ
// monitor on the socket reports each handshake to HandshakeVerdict, so that a refused token
// ends the process or the jobs with the reason instead of reconnecting for ever.

#include <optional>
#include <string>

#include <zmq.hpp>

#include "security/handshake_verdict.hpp"
#include "security/join_token.hpp"

namespace dtask::detail {

/// Sets CurveZMQ client keys from `token` on `socket`, before it connects.
void use_token(zmq::socket_t& socket, const JoinToken& token);

class HandshakeWatch {
public:
    /// Watches the handshakes of `socket` (not connected yet) to `endpoint`.
    HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, std::string endpoint);
    ~HandshakeWatch();
    HandshakeWatch(const HandshakeWatch&) = delete;
    HandshakeWatch& operator=(const HandshakeWatch&) = delete;

    /// Readable when events may wait (a ZeroMQ descriptor: read them with failure()).
    int fd() const;
    /// Reads every waiting event: why to give up, or nullopt to go on.
    std::optional<std::string> failure();

private:
    zmq::socket_t& watched_;
    zmq::socket_t events_;
    std::string endpoint_;
    HandshakeVerdict verdict_;
};

}  // namespace dtask::detail
