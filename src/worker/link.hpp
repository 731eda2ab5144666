#pragma once
// The link: the worker's main thread's connection loop. It says hello on a fresh socket with
// a routing id of its own, sends a heartbeat only after an interval in which it sent nothing
// else, reconnects with a doubling backoff while the broker is silent (the Liveness rule,
// worker/rejoin.hpp), gives up after WorkerOptions::give_up, and hands job, task and end to
// the batch runner.

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "security/handshake_watch.hpp"
#include "wire/connection_progress.hpp"
#include "wire/liveness.hpp"
#include "wire/socket_poll.hpp"
#include "worker/batch_runner.hpp"
#include "worker/worker.hpp"
#include "worker/worker_pulse.hpp"

namespace dtask::detail {

class Link {
public:
    using Clock = std::chrono::steady_clock;

    /// Stops when `signal_fd` is readable; tells the pulse thread, through `shared`, what it
    /// sends and which routing id it has.
    Link(zmq::context_t& context, const WorkerOptions& options, int signal_fd, PulseShared& shared);

    /// Serves the broker until told to stop; returns the exit code.
    int run();

private:
    void connect();
    void send_to_broker(std::span<zmq::message_t> frames);
    int serve();
    std::optional<int> on_message(std::vector<zmq::message_t>& frames);

    zmq::context_t& context_;
    const WorkerOptions& options_;
    PulseShared& shared_;
    std::string name_;
    zmq::socket_t broker_;
    BatchRunner runner_;
    Liveness liveness_{std::chrono::milliseconds(250), 5};  // the broker's heartbeat settings
    Clock::time_point last_drained_ = Clock::now();         // a receive last found the socket empty
    Clock::time_point last_heard_;
    ConnectionProgress progress_;  // the connection the welcome came on: moving bytes is life
    bool welcomed_ = false;        // the socket's hello was answered
    // The time: read after each poll, then carried from batch to batch, whose runs read it
    // when they end.
    Clock::time_point now_;
    std::optional<HandshakeWatch> handshakes_;  // with a join token
    SocketPoll<2> poller_;  // the socket, the signals' descriptor, the handshake watch
};

}  // namespace dtask::detail
