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

HandshakeWatch::HandshakeWatch(zmq::context_t& context, zmq::socket_t& socket, std::string endpoint)
    : watched_(socket), events_(context, zmq::socket_type::pair), endpoint_(std::move(endpoint)) {
    const std::string name = monitor_endpoint();
    if (zmq_socket_monitor(socket.handle(), name.c_str(), handshake_events) != 0)
        throw TransportError("dtask: cannot watch the handshakes with the broker: " +
                             std::string(zmq_strerror(zmq_errno())));
    events_.set(zmq::sockopt::linger, 0);
    events_.connect(name);
    // fd() signals only a change from empty to not: a first read that finds nothing arms it.
    zmq::message_t none;
    (void)events_.recv(none, zmq::recv_flags::dontwait);
}

HandshakeWatch::~HandshakeWatch() {
    zmq_socket_monitor(watched_.handle(), nullptr, 0);
}

int HandshakeWatch::fd() const {
    return events_.get(zmq::sockopt::fd);
}

std::optional<std::string> HandshakeWatch::failure() {
    // An event is two frames: 6 bytes (event, value), then the endpoint.
    std::vector<zmq::message_t> frames;
    while (protocol::receive(events_, frames, false)) {
        const zmq::message_t& head = frames.front();
        if (head.size() < 6)
            continue;
        std::uint16_t event = 0;
        std::uint32_t value = 0;
        std::memcpy(&event, head.data(), sizeof event);
        std::memcpy(&value, static_cast<const char*>(head.data()) + 2, sizeof value);
        if (auto verdict = verdict_.on_event(event, value, endpoint_))
            return verdict;
    }
    return std::nullopt;
}

}  // namespace dtask::detail
