#pragma once
// The client, shared by Cluster and Client: a thin facade over an I/O thread that runs a
// client loop (client_loop.hpp), the mailbox that user threads hand it jobs through
// (mailbox.hpp), the strands its jobs' split and reduce run on (user_code.hpp), and the spare
// loops that Cluster::run drives on the caller's thread.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include <dtask/detail/run_state.hpp>
#include <dtask/shared.hpp>

#include "security/join_token.hpp"

namespace dtask::detail {

class ClientLoop;
struct Mailbox;
class UserCode;

struct ClientCoreOptions {
    std::string endpoint;
    /// Until the broker's welcome says otherwise.
    std::chrono::milliseconds heartbeat_interval{250};
    unsigned heartbeat_liveness = 5;
    /// The broker runs in this process (a Cluster): it cannot vanish on its own, and a busy
    /// machine delaying its heartbeats must not fail the jobs, so neither side watches the
    /// other's silence.
    bool same_process = false;
    /// With same_process: the broker's count of workers, read from it directly (it sends
    /// such a client no status).
    std::function<std::size_t()> worker_count;
    /// The join token's keys for a broker that uses CurveZMQ; none for one that does not.
    std::optional<JoinToken> token;
    /// How long jobs wait for a broker that was lost to come back (broker_restart.hpp); 0:
    /// they fail at once. A broker in this process cannot come back without this client.
    std::chrono::milliseconds restart_grace{0};
};

class ClientCore {
public:
    ClientCore(zmq::context_t& context, ClientCoreOptions options);
    ~ClientCore();
    ClientCore(const ClientCore&) = delete;
    ClientCore& operator=(const ClientCore&) = delete;

    /// Hands a run to the I/O thread. Fails the run at once if the client has stopped.
    void enqueue(std::shared_ptr<RunState> run);
    /// Runs `run` to its end on the calling thread, on a connection to the broker of its own
    /// (kept for the next call): a blocking run saves the two hand-offs between the user's
    /// thread and the I/O thread. For a broker in this process only, which neither sends
    /// heartbeats to such a connection nor expects any while it is idle.
    void run_here(std::shared_ptr<RunState> run);
    /// A shared object of `owner` (the Cluster or Client), released through the mailbox.
    std::shared_ptr<SharedObject> share(const void* owner, std::string bytes);
    /// Workers connected to the broker, as it last said (or as it says now, in this process).
    std::size_t workers() const {
        return options_.worker_count ? options_.worker_count() : workers_.load();
    }
    /// Waits until the broker reports at least `count` workers; false on timeout. Not for
    /// same_process (a Cluster asks its broker).
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;
    /// Fails every job still running with an Error saying `reason`, then ends the I/O thread.
    void stop(const std::string& reason);

private:
    friend class ClientLoop;

    ClientCoreOptions options_;
    zmq::context_t& context_;
    std::shared_ptr<Mailbox> mailbox_;
    std::unique_ptr<UserCode> user_code_;  // the I/O thread's jobs' split and reduce
    std::unique_ptr<ClientLoop> loop_;
    std::vector<std::unique_ptr<ClientLoop>>
        spare_loops_;  // run_here's, idle; under mailbox_->mutex
    std::thread thread_;
    std::atomic<std::size_t> workers_{0};
    // The objects share() made, released when this client goes: a handle kept past it is
    // refused at submit, also by a later client at the same address.
    std::mutex shared_mutex_;
    std::vector<std::weak_ptr<SharedObject>> shared_made_;
    mutable std::mutex workers_mutex_;
    mutable std::condition_variable workers_changed_;
};

}  // namespace dtask::detail
