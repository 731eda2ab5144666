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

}  // namespace dtask::detail
