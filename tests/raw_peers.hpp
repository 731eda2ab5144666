#pragma once
// Peers driven by hand over real ZeroMQ sockets with the real wire codec: a client or worker
// (RawPeer, a DEALER) at a real broker, or a broker (FakeBroker, a ROUTER) for a real client
// or worker.

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>
#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <dtask/client.hpp>
#include <dtask/cluster.hpp>
#include <dtask/detail/archive.hpp>

#include "security/handshake_watch.hpp"
#include "security/join_token.hpp"
#include "support.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

namespace test_support {

/// A task or result frame for `job` with header `fields` and these records, as a client or
/// a worker writes it.
inline zmq::message_t batch_frame(dtask::detail::protocol::Command command, std::uint64_t job,
                                  std::initializer_list<std::uint64_t> fields,
                                  const std::vector<std::string>& records) {
    using namespace dtask::detail;
    std::string bytes(protocol::result_header_room, '\0');
    BatchWriter writer(bytes);
    for (const auto& record : records) {
        writer.begin();
        bytes += record;
        writer.end();
    }
    const std::size_t start = protocol::write_batch_header(
        std::as_writable_bytes(std::span(bytes).first(protocol::result_header_room)), command, job,
        fields);
    return protocol::payload_frame(std::move(bytes), start);
}

/// A message of this one frame.
inline std::vector<zmq::message_t> one_frame(zmq::message_t frame) {
    std::vector<zmq::message_t> frames;
    frames.push_back(std::move(frame));
    return frames;
}

/// A message of `header_frame` then one frame per body.
inline std::vector<zmq::message_t> message_of(zmq::message_t header_frame,
                                              std::vector<std::string> bodies = {}) {
    std::vector<zmq::message_t> frames;
    frames.push_back(std::move(header_frame));
    for (auto& body : bodies)
        frames.emplace_back(body.data(), body.size());
    return frames;
}

/// The body of a hello from a peer by hand.
inline std::string hello_body(dtask::detail::protocol::Role role, std::uint32_t credits = 0,
                              std::vector<std::pair<std::string, std::string>> jobs = {},
                              std::string platform_tag = dtask::detail::protocol::platform()) {
    dtask::detail::protocol::Hello hello;
    hello.role = role;
    hello.name = "by-hand:1";
    hello.platform = std::move(platform_tag);
    hello.credits = credits;
    hello.jobs = std::move(jobs);
    std::string body;
    dtask::detail::save_to(body, hello);
    return body;
}

/// The ProtocolError parse() throws for `frames`, or "" if it accepts them.
inline std::string parse_error(std::vector<zmq::message_t> frames) {
    try {
        dtask::detail::protocol::parse(frames, 0);
    } catch (const dtask::ProtocolError& e) {
        return e.what();
    }
    return {};
}

/// A Cluster with no local worker, listening on a free loopback port, whose broker waits
/// 10 s of silence before it drops a peer: the peers driven by hand are not in a hurry.
inline dtask::ClusterOptions cluster_for_peers_by_hand() {
    auto options = small_cluster(0);
    options.listen.push_back("tcp://127.0.0.1:*");
    options.heartbeat_liveness = 40;
    return options;
}

/// The token a peer of `role` joins `cluster` with.
inline std::string token_for(const dtask::Cluster& cluster, dtask::detail::protocol::Role role) {
    return role == dtask::detail::protocol::Role::worker ? cluster.join_token()
                                                         : cluster.client_token();
}

/// The first message on `socket` within `timeout` that `wanted` (shown each one) accepts, or
/// nullopt. It is parsed from frame `first` on (a ROUTER's routing id comes before) and
/// points into `frames`, so it is valid until the next call.
template <class Wanted>
std::optional<dtask::detail::protocol::Inbound> receive_within(zmq::socket_t& socket,
                                                               std::vector<zmq::message_t>& frames,
                                                               std::size_t first,
                                                               std::chrono::milliseconds timeout,
                                                               Wanted wanted) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            give_up - std::chrono::steady_clock::now());
        zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
        if (left.count() <= 0 || zmq::poll(&item, 1, left) != 1)
            return std::nullopt;
        frames.clear();
        REQUIRE(zmq::recv_multipart(socket, std::back_inserter(frames)));
        auto message = dtask::detail::protocol::parse(frames, first);
        if (wanted(message))
            return message;
    }
}

/// Fails the test unless `message` came and is a `command`.
inline dtask::detail::protocol::Inbound expected(
    std::optional<dtask::detail::protocol::Inbound> message,
    dtask::detail::protocol::Command command) {
    using dtask::detail::protocol::command_name;
    REQUIRE_MESSAGE(message.has_value(), "no " << command_name(command) << " came");
    REQUIRE_MESSAGE(message->command == command, "a " << command_name(message->command)
                                                      << " instead of a " << command_name(command));
    return *message;
}

/// A client or worker driven by hand: a DEALER connected to a broker. It answers the
/// broker's heartbeats, so that it never looks silent, and counts them.
class RawPeer {
public:
    using Command = dtask::detail::protocol::Command;
    using Inbound = dtask::detail::protocol::Inbound;

    /// Connects with the keys of `token` (a Cluster's or dtaskd's), or plain if it is empty;
    /// `receive_queue` messages may wait unread on this side (ZMQ_RCVHWM).
    RawPeer(zmq::context_t& context, const std::string& endpoint, const std::string& token = {},
            int receive_queue = 1000)
        : socket_(context, zmq::socket_type::dealer) {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.set(zmq::sockopt::rcvhwm, receive_queue);
        if (!token.empty())
            dtask::detail::use_token(socket_, dtask::detail::parse_join_token(token));
        socket_.connect(endpoint);
    }
    void send(std::vector<zmq::message_t> frames) { zmq::send_multipart(socket_, frames); }
    /// The next message that is not a heartbeat, within `timeout` (valid until the next
    /// call), or nullopt.
    std::optional<Inbound> next(std::chrono::milliseconds timeout) {
        return receive(timeout, false);
    }
    /// The next message, which must be a `command`.
    Inbound expect(Command command) { return expected(next(std::chrono::seconds(10)), command); }
    /// The protocol version in the header of the last message next() returned.
    std::uint8_t version_heard() const {
        REQUIRE(!frames_.empty());
        return static_cast<const std::uint8_t*>(frames_[0].data())[2];
    }
    /// The text of the refusal that answers `frames`.
    std::string refusal_of(std::vector<zmq::message_t> frames) {
        send(std::move(frames));
        auto reply = next(std::chrono::seconds(10));
        REQUIRE_MESSAGE(reply.has_value(), "no answer from the broker");
        REQUIRE_MESSAGE(reply->command == Command::refuse,
                        "a " << command_name(reply->command) << " instead of a refuse");
        return std::string(dtask::detail::protocol::as_text(reply->body[0]));
    }
    /// Reads what comes until the broker's `count`-th heartbeat from now (each one a tick
    /// of its loop), waiting at most `each` for every message; the commands of the other
    /// messages, or nullopt if it fell silent.
    std::optional<std::vector<Command>> until_heartbeats(
        unsigned count, std::chrono::milliseconds each = std::chrono::seconds(30)) {
        std::vector<Command> others;
        for (const unsigned goal = heartbeats_ + count; heartbeats_ < goal;) {
            const auto message = receive(each, true);
            if (!message)
                return std::nullopt;
            if (message->command != Command::heartbeat)
                others.push_back(message->command);
        }
        return others;
    }

private:
    /// The next message within `timeout`, heartbeats answered and counted, and returned too
    /// if `heartbeats_too`.
    std::optional<Inbound> receive(std::chrono::milliseconds timeout, bool heartbeats_too) {
        return receive_within(socket_, frames_, 0, timeout, [&](const Inbound& message) {
            if (message.command != Command::heartbeat)
                return true;
            ++heartbeats_;
            send(message_of(dtask::detail::protocol::header(Command::heartbeat)));
            return heartbeats_too;
        });
    }

    zmq::socket_t socket_;
    std::vector<zmq::message_t> frames_;
    unsigned heartbeats_ = 0;
};

/// A broker stand-in for a client or worker driven by hand: a ROUTER on a free loopback
/// port, with CurveZMQ keys of its own. It admits any key (it has no gatekeeper), skips
/// heartbeats, and never sends one.
class FakeBroker {
public:
    using Command = dtask::detail::protocol::Command;
    using Inbound = dtask::detail::protocol::Inbound;

    FakeBroker()
        : socket_(context_, zmq::socket_type::router), keys_(dtask::detail::new_curve_keys()) {
        socket_.set(zmq::sockopt::linger, 0);
        socket_.set(zmq::sockopt::curve_server, 1);
        socket_.set(zmq::sockopt::curve_secretkey, keys_.secret_key);
        socket_.bind("tcp://127.0.0.1:*");
        endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    }
    const std::string& endpoint() const { return endpoint_; }
    /// The environment a worker joins this broker with.
    std::vector<std::string> worker_environment() const {
        return {"DTASK_TOKEN=" + token(dtask::detail::TokenRole::worker)};
    }
    /// Options a dtask::Client connects to this broker with.
    dtask::ClientOptions client_options() const {
        dtask::ClientOptions options;
        options.token = token(dtask::detail::TokenRole::client);
        return options;
    }
    /// The sender of the last message next() returned.
    const std::string& peer() const { return peer_; }
    /// The next message that is not a heartbeat, within `timeout` (valid until the next
    /// call), or nullopt.
    std::optional<Inbound> next(std::chrono::milliseconds timeout) {
        auto message = receive_within(socket_, frames_, 1, timeout, [](const Inbound& any) {
            return any.command != Command::heartbeat;
        });
        if (message)
            peer_ = frames_[0].to_string();
        return message;
    }
    /// The next message, which must be a `command`.
    Inbound expect(Command command) { return expected(next(std::chrono::seconds(30)), command); }
    void send(const std::string& to, std::vector<zmq::message_t> frames) {
        frames.insert(frames.begin(), zmq::message_t(to.data(), to.size()));
        zmq::send_multipart(socket_, frames);
    }

private:
    std::string token(dtask::detail::TokenRole role) const {
        return dtask::detail::new_join_token(role, keys_.public_key).text();
    }

    zmq::context_t context_{1};
    zmq::socket_t socket_;
    dtask::detail::CurveKeys keys_;
    std::string endpoint_;
    std::string peer_;
    std::vector<zmq::message_t> frames_;
};

}  // namespace test_support
