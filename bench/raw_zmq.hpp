#pragma once
// The baselines: the same traffic as a dtask job, sent with bare ZeroMQ sockets and nothing
// else (no serialization, no bookkeeping), so that a dtask figure can be read as a fraction
// of what the transport itself allows on this machine.
//
//   pair:  a DEALER here <-> a ROUTER in an echo process
//   relay: a DEALER here -> a ROUTER on a thread here -> DEALERs in echo worker processes
//          that pull with credits, and back: the path of a subtask through dtask's broker

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <zmq.hpp>

#include "bench_child.hpp"

namespace perf::raw {

/// What an echo process answers to each message.
enum class Reply {
    echo,  // the message itself
    size,  // its size, as 8 bytes: one-way payload traffic, like a map that returns a size
};

/// The hidden modes of dtask_perf that serve the baselines in a child process; each runs
/// until killed, and dies with `parent`. Return an exit status.
int serve_echo(pid_t parent, const std::string& bind_endpoint, Reply reply);
int serve_relay_worker(pid_t parent, const std::string& relay_endpoint, unsigned credits);

/// A fresh abstract ipc endpoint (no file on disk) private to this process, like the one a
/// dtask::Cluster listens on.
std::string private_ipc_endpoint();

/// An echo process: a ROUTER bound to an endpoint, answering every message.
class EchoProcess {
public:
    /// `bind_endpoint` may end in ":*" for a free tcp port.
    EchoProcess(const std::string& bind_endpoint, Reply reply);
    /// The endpoint bound, port resolved.
    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    BenchChild process_;
    std::string endpoint_;
};

/// The client side: a DEALER in this process.
class RawClient {
public:
    explicit RawClient(const std::string& endpoint);

    /// Sends `count` messages of `bytes` bytes (at least 4), at most `window` without an
    /// answer yet, and waits for every answer; seconds from the first send to the last
    /// answer. Throws if the answers do not add up to what was sent.
    double pipelined(std::uint64_t count, std::size_t window, std::size_t bytes, Reply reply);
    /// `count` round trips of a 4-byte message, one at a time; the duration of each in
    /// microseconds.
    std::vector<double> lockstep(std::uint64_t count);

private:
    zmq::context_t context_{1};
    zmq::socket_t socket_;
};

/// A relay thread in this process with `workers` echo worker processes behind it, each
/// pulling up to `credits` messages at once. Clients connect to endpoint().
class Relay {
public:
    /// Binds `bind_endpoint` (a private ipc one by default; ":*" for a free tcp port).
    Relay(unsigned workers, unsigned credits, const std::string& bind_endpoint = {});
    ~Relay();
    Relay(const Relay&) = delete;
    Relay& operator=(const Relay&) = delete;

    const std::string& endpoint() const noexcept { return endpoint_; }

private:
    /// Stops the thread and the worker processes.
    void stop() noexcept;

    std::string endpoint_;
    zmq::context_t context_{1};
    std::vector<BenchChild> workers_;
    std::thread thread_;
};

}  // namespace perf::raw
