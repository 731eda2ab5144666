#pragma once
/// \file dtask::Cluster: a broker embedded in the host application, with local worker
/// processes started for you, and room for workers on other machines.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

#include <dtask/submitter.hpp>

namespace dtask {

struct ClusterOptions {
    /// Local worker processes to start (this binary started again in worker mode):
    /// -1 for one per core, 0 for none (then only remote workers serve).
    int local_workers = -1;
    /// Endpoints to listen on for workers on other machines, e.g. "tcp://0.0.0.0:5555", or
    /// "tcp://127.0.0.1:*" for a free port (read it back with endpoints()). Empty: the
    /// cluster listens only on a private local socket that other machines cannot reach.
    std::vector<std::string> listen;
    /// Batches of subtasks a local worker may hold at once: one running, the rest queued
    /// behind it so that the worker never waits for the broker between two batches. 0:
    /// automatic, sized by the broker from how fast the worker finishes batches (2 for
    /// batches of a millisecond or more, up to 256 for tiny ones). n: at most n.
    unsigned worker_credits = 0;
    /// How often broker and workers show each other they are alive.
    std::chrono::milliseconds heartbeat_interval{250};
    /// Missed heartbeats after which a peer counts as gone. With the defaults a dead or
    /// frozen worker is noticed within 1.5 s (silent for 1.25 s, seen at the next beat).
    unsigned heartbeat_liveness = 5;
};

class Cluster final : public Submitter {
public:
    /// Starts the broker and the local workers. Returns once the broker listens; the local
    /// workers join in the background (see wait_for_workers). Throws TransportError if an
    /// endpoint cannot be bound.
    explicit Cluster(ClusterOptions options = {});
    /// Fails the jobs still running with an Error, stops and reaps the local workers.
    ~Cluster();

    /// Every endpoint the broker listens on, ports resolved: the private local one first.
    const std::vector<std::string>& endpoints() const;
    /// Workers connected now, local and remote.
    std::size_t workers() const override;
    /// Waits until at least `count` workers are connected; false on timeout.
    bool wait_for_workers(std::size_t count, std::chrono::milliseconds timeout) const;
    /// Process ids of the local workers alive now.
    std::vector<pid_t> local_worker_pids() const;

private:
    void enqueue(std::shared_ptr<detail::RunState> run) override;
    void run_to_end(std::shared_ptr<detail::RunState> run) override;
    std::size_t planned_workers() const override;

    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace dtask
