#include "process.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace test_support {

int open_pidfd(pid_t pid) {
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

bool poll_readable(int fd, std::chrono::milliseconds timeout) {
    pollfd item{fd, POLLIN, 0};
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        const int ready = poll(&item, 1, static_cast<int>(std::max<long long>(0, left.count())));
        if (ready > 0)
            return true;
        if (ready == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
}

namespace {

/// In the child: writes errno to the parent and exits.
[[noreturn]] void fail_in_child(int report) {
    const int error = errno;
    [[maybe_unused]] auto written = write(report, &error, sizeof error);
    _exit(127);
}

/// In the child, between fork and exec: async-signal-safe calls only. Reports errno on
/// `report` (close-on-exec, so a successful exec closes it with nothing written). fork and
/// not posix_spawn, which has no way to set the parent-death signal.
[[noreturn]] void exec_child(const char* program, char** argv, char** envp, pid_t parent,
                             int stdout_fd, bool stderr_too, const char* output_file,
                             int report) {
    // Die with the test process, even when it is killed outright: nothing it started may
    // outlive it. The check after prctl closes the race with a parent that died before it.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0)
        fail_in_child(report);
    if (getppid() != parent)
        _exit(127);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0 || dup2(null_fd, STDIN_FILENO) < 0)
        fail_in_child(report);
    if (output_file != nullptr) {
        stdout_fd = open(output_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (stdout_fd < 0)
            fail_in_child(report);
        stderr_too = true;
    }
    if (stdout_fd >= 0) {
        if (dup2(stdout_fd, STDOUT_FILENO) < 0 || (stderr_too && dup2(stdout_fd, STDERR_FILENO) < 0))
            fail_in_child(report);
    }
    // A handler or a blocked signal of this process (the benchmark's, a test's, a
    // dtask thread's) must not be the child's.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    sigemptyset(&default_action.sa_mask);
    sigaction(SIGINT, &default_action, nullptr);
    sigaction(SIGTERM, &default_action, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(program, argv, envp);
    fail_in_child(report);
}

}  // namespace

Process::Process(const std::string& program, const std::vector<std::string>& args,
                 const std::string& output_file,
                 const std::vector<std::string>& extra_environment) {
    // Everything the child needs is built before fork: after it, only system calls.
    std::vector<std::string> environment(extra_environment);
    for (char** entry = environ; *entry != nullptr; ++entry)
        environment.emplace_back(*entry);
    std::vector<char*> envp;
    for (auto& entry : environment)
        envp.push_back(entry.data());
    envp.push_back(nullptr);
    std::vector<std::string> storage{program};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : storage)
        argv.push_back(arg.data());
    argv.push_back(nullptr);
    const bool piped = output_file == "|" || output_file == "|&";
    const char* file = piped || output_file.empty() ? nullptr : output_file.c_str();

    int pipe_ends[2] = {-1, -1};
    if (piped && pipe2(pipe_ends, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2: " + std::string(std::strerror(errno)));
    int report[2] = {-1, -1};
    if (pipe2(report, O_CLOEXEC) != 0) {
        const std::string why = std::strerror(errno);
        close(pipe_ends[0]);
        close(pipe_ends[1]);
        throw std::runtime_error("pipe2: " + why);
    }
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
        exec_child(program.c_str(), argv.data(), envp.data(), parent, pipe_ends[1],
                   output_file == "|&", file, report[1]);
    }
    const int fork_error = errno;
    close(report[1]);
    if (pipe_ends[1] >= 0)
        close(pipe_ends[1]);
    int exec_error = 0;
    if (pid_ > 0) {
        ssize_t got = 0;
        while ((got = read(report[0], &exec_error, sizeof exec_error)) < 0 && errno == EINTR) {
        }
        if (got != static_cast<ssize_t>(sizeof exec_error))
            exec_error = 0;  // closed by a successful exec
    }
    close(report[0]);
    if (pid_ < 0 || exec_error != 0) {
        if (pipe_ends[0] >= 0)
            close(pipe_ends[0]);
        if (pid_ > 0)
            kill_and_reap();
        throw std::runtime_error("cannot start " + program + ": " +
                                 std::strerror(pid_ < 0 ? fork_error : exec_error));
    }
    stdout_pipe_ = pipe_ends[0];
    pidfd_ = open_pidfd(pid_);
    if (pidfd_ < 0) {
        const std::string why = std::strerror(errno);
        kill_and_reap();
        throw std::runtime_error("pidfd_open failed: " + why);
    }
}

Process::Process(Process&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::exchange(other.pidfd_, -1)),
      stdout_pipe_(std::exchange(other.stdout_pipe_, -1)),
      buffered_(std::move(other.buffered_)),
      reaped_(std::exchange(other.reaped_, true)) {}

Process::~Process() {
    stop();
    if (pidfd_ >= 0)
        close(pidfd_);
    if (stdout_pipe_ >= 0)
        close(stdout_pipe_);
}

void Process::stop() noexcept {
    if (reaped_ || pid_ <= 0)
        return;
    // SIGTERM first, so that a worker or dtaskd ends the way it is meant to (and runs the
    // leak check of a sanitizer build); SIGKILL if it is still there after the grace.
    kill(pid_, SIGTERM);
    if (pidfd_ >= 0 && poll_readable(pidfd_, stop_grace))
        wait();
    kill_and_reap();
}

void Process::kill_and_reap() noexcept {
    if (reaped_ || pid_ <= 0)
        return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
}

std::optional<std::string> Process::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto newline = buffered_.find('\n'); newline != std::string::npos) {
            std::string line = buffered_.substr(0, newline);
            buffered_.erase(0, newline + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (stdout_pipe_ < 0 || left.count() <= 0 || !poll_readable(stdout_pipe_, left))
            return std::nullopt;
        char chunk[4096];
        const ssize_t got = read(stdout_pipe_, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return std::nullopt;
        buffered_.append(chunk, static_cast<std::size_t>(got));
    }
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
    if (reaped_)
        return std::nullopt;
    if (!poll_readable(pidfd_, timeout))
        return std::nullopt;
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
}

int Process::wait() {
    int status = 0;
    if (reaped_ || pid_ <= 0)
        return status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    return status;
}

void Process::signal(int signal_number) const {
    if (!reaped_)
        kill(pid_, signal_number);
}

std::string self_executable() {
    char path[4096] = {};
    const ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0)
        throw std::runtime_error("cannot read /proc/self/exe: " +
                                 std::string(std::strerror(errno)));
    return std::string(path, static_cast<std::size_t>(length));
}

}  // namespace test_support
