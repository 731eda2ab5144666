#pragma once
// A broker stand-in for tests that drive a client or a worker by hand: a ROUTER on a free
// loopback port, with the real wire codec.

#include <chrono>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include "wire/protocol.hpp"

namespace test_support {

/// A broker stand-in: a ROUTER on a free loopback port, driven by hand.
class FakeBroker {
public:
    FakeBroker() : socket_(context_, zmq::socket_type::router) {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.bind("tcp://127.0.0.1:*");
        endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    }
    const std::string& endpoint() const { return endpoint_; }
    /// The sender of the last message next() returned.
    const std::string& peer() const { return peer_; }
    /// The next message that is not a heartbeat, within `timeout` (valid until the next
    /// call), or nullopt.
    std::optional<dtask::detail::protocol::Inbound> next(std::chrono::milliseconds timeout) {
        const auto give_up = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                give_up - std::chrono::steady_clock::now());
            zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
            if (left.count() <= 0 || zmq::poll(&item, 1, left) != 1)
                return std::nullopt;
            frames_.clear();
            REQUIRE(zmq::recv_multipart(socket_, std::back_inserter(frames_)));
            peer_ = frames_[0].to_string();
            auto message = dtask::detail::protocol::parse(frames_, 1);
            if (message.command != dtask::detail::protocol::Command::heartbeat)
                return message;
        }
    }
    /// The next message, which must be a `command`.
    dtask::detail::protocol::Inbound expect(dtask::detail::protocol::Command command) {
        auto message = next(std::chrono::seconds(30));
        REQUIRE_MESSAGE(message.has_value(), "no " << dtask::detail::protocol::command_name(command) << " came");
        REQUIRE_MESSAGE(message->command == command, "a " << dtask::detail::protocol::command_name(message->command)
                                                          << " instead of a "
                                                          << dtask::detail::protocol::command_name(command));
        return *message;
    }
    void send(const std::string& to, std::vector<zmq::message_t> frames) {
        frames.insert(frames.begin(), zmq::message_t(to.data(), to.size()));
        zmq::send_multipart(socket_, frames);
    }

private:
    zmq::context_t context_{1};
    zmq::socket_t socket_;
    std::string endpoint_;
    std::string peer_;
    std::vector<zmq::message_t> frames_;
};

}  // namespace test_support
