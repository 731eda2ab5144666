#include "security/handshake_watch.hpp"

#include <atomic>
#include <cstring>
#include <vector>

#include <dtask/error.hpp>

#include "wire/protocol.hpp"

namespace dtask::detail {

void use_token(zmq::socket_t& socket, const JoinToken& token) {
    socket.set(zmq::sockopt::curve_serverkey, token.broker_public_key);
    socket.set(zmq::sockopt::curve_publickey, token.credential.public_key);
    socket.set(zmq::sockopt::curve_secretkey, token.credential.secret_key);
}

namespace {

std::string monitor_endpoint() {
    static std::atomic<unsigned> counter{0};
    return "inproc://dtask-handshakes-" + std::to_string(counter++);
}

}  // namespace

SocketMonitor::SocketMonitor(zmq::context_t& context, zmq::socket_t& socket, int events)
    : watched_(socket), events_(context, zmq::socket_type::pair) {
    const std::string name = monitor_endpoint();
    if (zmq_socket_monitor(socket.handle(), name.c_str(), events) != 0)
        throw TransportError("dtask: cannot watch a socket's connections (zmq_socket_monitor): " +
                             std::string(zmq_strerror(zmq_errno())));
    events_.set(zmq::sockopt::linger, 0);
    events_.connect(name);
    // fd() signals only a change from empty to not: a first read that finds nothing arms it.
    zmq::message_t none;
    (void)events_.recv(none, zmq::recv_flags::dontwait);
}

SocketMonitor::~SocketMonitor() {
    zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

int SocketMonitor::fd() const {
    return events_.get(zmq::sockopt::fd);
}

std::optional<SocketMonitor::Event> SocketMonitor::next() {
    // An event is two frames: 6 bytes (event, value), then the endpoint.
    while (protocol::receive(events_, frames_, false)) {
        const zmq::message_t& head = frames_.front();
        if (head.size() < 6)
            continue;
        Event event;
        std::memcpy(&event.event, head.data(), sizeof event.event);
        std::memcpy(&event.value, static_cast<const char*>(head.data()) + 2, sizeof event.value);
        return event;
    }
    return std::nullopt;
}

HandshakeWatch::HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, std::string endpoint)
    : monitor_(context, socket, handshake_events), endpoint_(std::move(endpoint)) {}

std::optional<std::string> HandshakeWatch::failure() {
    while (const auto event = monitor_.next()) {
        if (auto verdict = verdict_.on_event(event->event, event->value, endpoint_))
            return verdict;
    }
    return std::nullopt;
}

}  // namespace dtask::detail
