#pragma once
// The worker process: an I/O thread that keeps the link to the broker alive (hello,
// heartbeats, reconnecting) and an executor thread that runs map, so that a long map never
// silences the heartbeats and a frozen process is told apart from a busy one.

#include <chrono>
#include <string>
#include <vector>

namespace dtask::detail {

/// Credits of a worker when none are set: enough batches in flight for tiny ones.
inline constexpr unsigned default_worker_credits = 64;

struct WorkerOptions {
    std::string endpoint;
    /// Batches it may hold at most; the broker holds it to fewer when batches are long.
    unsigned credits = default_worker_credits;
    /// How long to keep trying to reach a silent broker before leaving.
    std::chrono::milliseconds give_up{std::chrono::seconds(60)};
    /// Started by a Cluster of this machine (it dies with its parent).
    bool local = false;
    /// The process's command line, to start it again after a subtask hung (a thread stuck in
    /// map cannot be stopped, only the process replaced).
    std::vector<std::string> argv;
};

/// Exit codes of a worker process.
enum WorkerExit : int {
    worker_done = 0,     // told to leave, or SIGTERM/SIGINT
    worker_usage = 2,    // bad command line
    worker_refused = 3,  // the broker refused it
    worker_gave_up = 4,  // the broker stayed silent
    worker_failed = 5,   // the executor thread stopped
    worker_restart = 6,  // a subtask hung: run_worker replaces the process (never exits so)
};

/// Serves the broker at options.endpoint until told to stop; returns the exit code.
int run_worker(const WorkerOptions& options);

}  // namespace dtask::detail
