#pragma once
// The processes dtask_perf starts itself: echo servers of the raw baselines, remote dtask
// workers, the fresh process that measures memory, each this binary started again; and a
// dtaskd. Each is a test_support::Process (shared with the tests), killed and reaped on every path
// out: by its owner's destructor, and by a handler of SIGINT and SIGTERM for the case where
// the benchmark is stopped from outside.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "process.hpp"

namespace perf {

/// This binary started again with `args`; SIGKILLed and reaped when it goes.
class BenchChild {
public:
    /// With `pipe_stdout`, the child's stdout is readable with read_line. `environment`:
    /// NAME=VALUE entries added to this process's (a remote worker's join token, as users
    /// give it: never on the command line).
    explicit BenchChild(const std::vector<std::string>& args, bool pipe_stdout = false,
                        const std::vector<std::string>& environment = {});
    /// Another program than this binary (dtaskd).
    struct Program {
        std::string path;
    };
    BenchChild(const Program& program, const std::vector<std::string>& args,
               bool pipe_stdout = false, const std::vector<std::string>& environment = {});
    ~BenchChild();
    BenchChild(BenchChild&& other) noexcept;
    BenchChild& operator=(BenchChild&&) = delete;
    BenchChild(const BenchChild&) = delete;
    BenchChild& operator=(const BenchChild&) = delete;

    pid_t pid() const noexcept { return process_.pid(); }
    /// The next line of the child's stdout, or nullopt on timeout or end of output.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout) {
        return process_.read_line(timeout);
    }
    /// Waits for the child to exit and reaps it; its wait status.
    int wait();
    /// SIGKILL and reap (no effect once reaped).
    void kill_and_reap() noexcept;

private:
    test_support::Process process_;
    bool watched_ = true;  // in the list the signal handler kills
};

/// Installs SIGINT and SIGTERM handlers that SIGKILL every BenchChild alive, then end the
/// benchmark with the same signal. Call once, in the host, before starting children.
void kill_children_on_termination_signals();

/// In a child: die with the process `parent` (PR_SET_PDEATHSIG), even if it is SIGKILLed;
/// exits at once if it is already gone.
void die_with_parent(pid_t parent);

using test_support::self_executable;

}  // namespace perf
