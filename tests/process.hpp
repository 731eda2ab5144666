#pragma once
// A child process that ends with its owner: stopped and reaped when the object goes, and
// killed by the kernel (PR_SET_PDEATHSIG) if the owner dies first, so that a crashed test
// leaves nothing running. The one way the tests, the benchmarks and the fault measurements
// start processes. Free of doctest, so that the benchmarks can use it.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace test_support {

class Process {
public:
    /// Starts `program` with `args`; stdout and stderr go to `output_file` if not empty, or
    /// stdout to a pipe that read_line() reads if `output_file` is "|" (stdout and stderr
    /// if it is "|&"). SIGINT and SIGTERM have their default action in the child, whatever
    /// handlers this process has. The child gets SIGKILL when the thread that started it
    /// ends (PR_SET_PDEATHSIG): start processes from a thread that outlives them. Throws
    /// std::runtime_error if it cannot start.
    Process(const std::string& program, const std::vector<std::string>& args,
            const std::string& output_file = {},
            const std::vector<std::string>& extra_environment = {});
    /// stop().
    ~Process();
    Process(Process&& other) noexcept;
    Process& operator=(Process&&) = delete;
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    /// Waits up to `timeout` for the process to exit; its wait status, or nullopt.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    /// Waits for the process to exit, however long; its wait status (0 if reaped before).
    int wait();
    void signal(int signal_number) const;
    /// SIGTERM, up to stop_grace for it to exit, then SIGKILL; reaps it. Nothing once reaped.
    void stop() noexcept;
    /// SIGKILL and reap; nothing once reaped.
    void kill_and_reap() noexcept;

    /// How long stop() waits after SIGTERM: a worker or dtaskd ends in milliseconds; one that
    /// is stopped (SIGSTOP) or stuck does not, and is killed.
    static constexpr std::chrono::milliseconds stop_grace{10'000};
    /// The next line of the child's stdout (piped); nullopt on timeout or end of output.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout);

private:
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int stdout_pipe_ = -1;
    std::string buffered_;
    bool reaped_ = false;
};

/// This binary's path, to start it again (as a worker, an echo server, ...).
std::string self_executable();

/// A pidfd for `pid` (readable once it has exited), or -1.
int open_pidfd(pid_t pid);
/// Whether `fd` becomes readable within `timeout`; a signal does not cut the wait short.
bool poll_readable(int fd, std::chrono::milliseconds timeout);

}  // namespace test_support
