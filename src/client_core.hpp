#pragma once
// The submitting side, shared by Cluster and Client: an I/O thread with a DEALER socket to
// the broker that pulls subtasks from split as the window allows, sends them, and folds
// the partial results that come back.

#include <dtask/detail/run_state.hpp>

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace dtask::detail {

struct ClientOptions {
    std::string endpoint;
    /// Until the broker's welcome says otherwise.
    std::chrono::milliseconds heartbeat_interval{500};
    unsigned heartbeat_liveness = 4;
};

class ClientCore {
public:
    ClientCore(zmq::context_t& context, ClientOptions options);
    ~ClientCore();
    ClientCore(const ClientCore&) = delete;
    ClientCore& operator=(const ClientCore&) = delete;

    /// Hands a run to the I/O thread. Fails the run at once if the client has stopped.
    void enqueue(std::shared_ptr<RunState> run);
    /// Workers connected to the broker, as it last said.
    std::size_t workers() const noexcept { return workers_.load(); }
    /// Waits until the broker reports at least `count` workers; false on timeout.
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;
    /// Fails every job still running with an Error saying `reason`, then ends the I/O thread.
    void stop(const std::string& reason);

private:
    class Loop;

    ClientOptions options_;
    zmq::context_t& context_;
    int wake_fd_ = -1;
    std::unique_ptr<Loop> loop_;
    std::thread thread_;
    std::atomic<std::size_t> workers_{0};
    mutable std::mutex workers_mutex_;
    mutable std::condition_variable workers_changed_;

    std::mutex mutex_;  // guards what user threads hand to the I/O thread
    std::vector<std::shared_ptr<RunState>> incoming_;
    std::vector<std::weak_ptr<RunState>> cancelled_;
    bool stopping_ = false;
    std::string stop_reason_;
};

}  // namespace dtask::detail
