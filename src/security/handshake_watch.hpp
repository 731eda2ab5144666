#pragma once
// A worker's or client's side of the secure handshake: its socket takes the token's keys
// (the broker's public key, which it verifies, and its own credential), and a ZeroMQ
// monitor on the socket reports each handshake to HandshakeVerdict, so that a refused token
// ends the process or the jobs with the reason instead of reconnecting for ever.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "security/handshake_verdict.hpp"
#include "security/join_token.hpp"

namespace dtask::detail {

/// Sets CurveZMQ client keys from `token` on `socket`, before it connects.
void use_token(zmq::socket_t& socket, const JoinToken& token);

/// A ZeroMQ monitor of some `events` of a socket: fd() is readable when events may wait,
/// next() reads them one by one. Used by HandshakeWatch, and by the broker for the
/// connections its listen endpoints fail to accept.
class SocketMonitor {
public:
    struct Event {
        std::uint16_t event = 0;
        std::uint32_t value = 0;  // an errno, a descriptor or a status, as the event says
    };
    /// Watches `events` (ZMQ_EVENT_... bits) of `socket`.
    SocketMonitor(zmq::context_t& context, zmq::socket_t& socket, int events);
    ~SocketMonitor();
    SocketMonitor(const SocketMonitor&) = delete;
    SocketMonitor& operator=(const SocketMonitor&) = delete;

    /// Readable when events may wait (a ZeroMQ descriptor: read every one with next()).
    int fd() const;
    /// The next waiting event, or nullopt once none waits.
    std::optional<Event> next();

private:
    zmq::socket_t& watched_;
    zmq::socket_t events_;
    std::vector<zmq::message_t> frames_;
};

class HandshakeWatch {
public:
    /// Watches the handshakes of `socket` (not connected yet) to `endpoint`.
    HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, std::string endpoint);

    /// Readable when events may wait (a ZeroMQ descriptor: read them with failure()).
    int fd() const { return monitor_.fd(); }
    /// Reads every waiting event: why to give up, or nullopt to go on.
    std::optional<std::string> failure();

private:
    SocketMonitor monitor_;
    std::string endpoint_;
    HandshakeVerdict verdict_;
};

}  // namespace dtask::detail
