// The broker's facade: binds the socket, runs the loop (BrokerLoop) on its own thread, and
// publishes the number of workers to other threads.

#include "broker/broker.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "broker/broker_loop.hpp"
#include "log.hpp"
#include "thread_name.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

zmq::socket_t make_router(zmq::context_t& context) {
    try {
        zmq::socket_t socket(context, zmq::socket_type::router);
        tune(socket);
        // A send to a peer that is gone, or that has left too many messages unread, fails
        // instead of being dropped unseen (Outbox::flush_routed).
        socket.set(zmq::sockopt::router_mandatory, 1);
        return socket;
    } catch (const zmq::error_t& e) {
        throw TransportError(std::string("dtask: cannot create the broker's socket: ") + e.what());
    }
}

}  // namespace

Broker::Broker(zmq::context_t& context, BrokerOptions options)
    : options_(std::move(options)),
      context_(context),
      socket_(make_router(context)),
      credentials_(std::make_shared<CredentialStore>(options_.security.admitted)) {
    // ZeroMQ copies a socket's options into each endpoint as it binds: the private and
    // in-process ones are bound before CurveZMQ is set, the listen endpoints after.
    if (!options_.private_endpoint.empty()) {
        // Besides its directory, the private socket admits our own uid alone (libzmq checks
        // each connection's peer credentials).
        // If this libzmq lacks the filter, the directory alone keeps others out.
        const int self = static_cast<int>(getuid());
        const bool filtered =
            zmq_setsockopt(socket_.handle(), ZMQ_IPC_FILTER_UID, &self, sizeof self) == 0;
        bind(options_.private_endpoint, true);
        if (filtered)
            zmq_setsockopt(socket_.handle(), ZMQ_IPC_FILTER_UID, nullptr, 0);  // clears it
    }
    if (!options_.inproc_endpoint.empty())
        bind(options_.inproc_endpoint, false);
    if (!options_.endpoints.empty() && options_.security.curve) {
        gatekeeper_ = std::make_unique<Gatekeeper>(context, credentials_);
        socket_.set(zmq::sockopt::curve_server, 1);
        socket_.set(zmq::sockopt::curve_secretkey, options_.security.secret_key);
    }
    if (!options_.endpoints.empty())
        bound_for_the_network();
    for (const auto& endpoint : options_.endpoints) {
        bind(endpoint, true);
        if (!options_.security.curve)
            log_warning("broker", "listening on " + endpoints_.back() +
                                      " with plain TCP, as asked: no encryption, no "
                                      "authentication; whoever reaches it can join and read "
                                      "the jobs' data");
    }
    stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (stop_fd_ < 0)
        throw Error("dtask: cannot create the broker's stop event (eventfd)");
}

/// Bounds for what peers over the network may cost, set before the listen endpoints are
/// bound (each takes the socket's options then): a frame larger than the maximum is refused
/// by ZeroMQ from its size alone, before it is read, and its connection closed; a peer's
/// unread messages are bounded; a connection
/// that has not finished its handshake within a few seconds is cut, so that idle ones do not
/// keep descriptors; failed accepts are watched, to be logged.
void Broker::bound_for_the_network() {
    // ZeroMQ bounds the frame on the wire: with CurveZMQ, the message and its envelope.
    constexpr std::size_t envelope = 4096;
    if (options_.max_message_bytes > 0)
        socket_.set(zmq::sockopt::maxmsgsize,
                    static_cast<std::int64_t>(
                        std::min<std::size_t>(options_.max_message_bytes,
                                              std::numeric_limits<std::int64_t>::max() - envelope) +
                        envelope));
    // Messages of one peer received and not yet handled: past this, ZeroMQ stops reading
    // that peer's connection (it waits, nothing is dropped), so that a peer sending faster
    // than the broker handles its messages queues them on its own side, not in the broker.
    socket_.set(zmq::sockopt::rcvhwm, static_cast<int>(max_unread_per_peer));
    // Messages to one peer not yet read: past this, it is dropped (BrokerLoop::flush_outboxes).
    socket_.set(zmq::sockopt::sndhwm,
                static_cast<int>(std::min<std::size_t>(options_.max_unsent_per_peer,
                                                       std::numeric_limits<int>::max())));
    socket_.set(zmq::sockopt::handshake_ivl, static_cast<int>(handshake_limit.count()));
    // A thousand workers started at once connect at once: past ZeroMQ's backlog of 100, the
    // kernel drops their SYNs, and each retries after 1, 3, 7, 15 s... (the kernel caps this
    // at net.core.somaxconn).
    socket_.set(zmq::sockopt::backlog, listen_backlog);
    accepts_ = std::make_unique<SocketMonitor>(context_, socket_, ZMQ_EVENT_ACCEPT_FAILED);
}

void Broker::bind(const std::string& endpoint, bool listed) {
    try {
        retry_interrupted([&] { socket_.bind(endpoint); });
    } catch (const zmq::error_t& e) {
        throw TransportError("dtask: cannot listen on '" + endpoint + "': " + e.what());
    }
    if (listed)
        endpoints_.push_back(socket_.get(zmq::sockopt::last_endpoint));
}

Broker::~Broker() {
    stop();
    if (stop_fd_ >= 0)
        close(stop_fd_);
}

void Broker::start() {
    thread_ = std::thread([this] {
        name_this_thread("dtask-broker");
        run();
        loop_started();  // also if the loop ended before its first turn
    });
    // The first status is published before anything reads it (an HTTP endpoint started
    // with the broker would otherwise answer its first requests with none).
    std::unique_lock lock(mutex_);
    state_changed_.wait(lock, [&] { return started_; });
}

void Broker::loop_started() {
    {
        std::lock_guard lock(mutex_);
        started_ = true;
    }
    state_changed_.notify_all();
}

void Broker::run() noexcept {
    BrokerLoop loop(*this);
    loop.run();
    socket_.close();
}

void Broker::stop() {
    if (!thread_.joinable())
        return;
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = write(stop_fd_, &one, sizeof one);
    thread_.join();
}

bool Broker::wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const {
    std::unique_lock lock(mutex_);
    return state_changed_.wait_for(lock, timeout, [&] { return worker_count_.load() >= count; });
}

std::vector<pid_t> Broker::local_worker_pids() const {
    std::lock_guard lock(mutex_);
    return local_pids_;
}

}  // namespace dtask::detail
