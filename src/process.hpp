#pragma once
// Local worker processes: started with posix_spawn (never fork() in a multithreaded host),
// watched through pidfds that a poll loop can wait on, and always reaped.

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace dtask::detail {

struct ChildProcess {
    pid_t pid = -1;
    int pidfd = -1;  // readable once the process has exited
};

/// Starts this executable again as a worker of `endpoint`. Throws Error on failure.
ChildProcess spawn_worker(const std::string& endpoint, unsigned credits);

/// Reaps an exited child (non-blocking once its pidfd is readable) and closes its pidfd.
/// Returns the wait status.
int reap(ChildProcess& child);

/// "exited with status 3", "killed by signal 11 (Segmentation fault)".
std::string describe_wait_status(int status);

/// Waits up to `grace` for the children to exit by themselves, then kills the rest with
/// SIGKILL; reaps them all. Leaves no zombie.
void stop_children(std::vector<ChildProcess>& children, std::chrono::milliseconds grace);

/// Environment variable a local worker finds its parent's pid in.
inline constexpr const char* parent_pid_variable = "DTASK_PARENT_PID";

/// Whether this process is a local worker: started by a Cluster that is still its parent.
bool is_local_worker();

/// Exit status of a local worker whose main() went on to create a Cluster or a Client:
/// dtask::init(argc, argv) was not called. None of the worker's own (worker/worker.hpp).
inline constexpr int worker_without_init = 6;

/// In a local worker that has not run dtask::init (which serves and never returns, so main()
/// forgot it): says so on stderr and exits with worker_without_init, before the host's code
/// starts workers of its own. Returns in any other process, and in a worker's map.
void exit_if_local_worker(const char* what);

/// In a host about to start `local_workers` (ClusterOptions::local_workers, -1 for one per
/// core) without having run dtask::init: throws, naming the fix. Each local worker is this
/// binary started again, and without init it would run main() instead of serving.
void require_init_for_local_workers(int local_workers);

}  // namespace dtask::detail
