#pragma once
// Whether this process can start a thread. libzmq aborts the process when it cannot start
// its I/O thread (at the first socket), so a worker, a Cluster and a Client try one first,
// to fail with a message that says why instead.

#include <string>
#include <system_error>
#include <thread>

#include <dtask/error.hpp>

namespace dtask::detail {

/// The text of an error for `what` that could not start a thread: `reason`, and where to
/// look (the limits that make thread creation fail).
inline std::string thread_start_message(const std::string& what, const std::string& reason) {
    return "dtask: " + what + " cannot start a thread (" + reason +
           "): the process is at its limit of threads or of memory for their stacks (ulimit -u, "
           "ulimit -s, ulimit -v, cgroup pids.max)";
}

/// Throws Error naming `what` if a thread cannot be started now.
inline void check_threads_start(const std::string& what) {
    try {
        std::thread([] {}).join();
    } catch (const std::system_error& e) {
        throw Error(thread_start_message(what, e.code().message()));
    }
}

}  // namespace dtask::detail
