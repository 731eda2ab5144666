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
#include <spawn.h>
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

Process::Process(const std::string& program, const std::vector<std::string>& args,
                 const std::string& output_file,
                 const std::vector<std::string>& extra_environment) {
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

    int pipe_ends[2] = {-1, -1};
    if ((output_file == "|" || output_file == "|&") && pipe2(pipe_ends, O_CLOEXEC) != 0)
        throw std::runtime_error("pipe2: " + std::string(std::strerror(errno)));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    if (pipe_ends[1] >= 0) {
        posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
        if (output_file == "|&")
            posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
    } else if (!output_file.empty()) {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_file.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    // A handler of this process (the benchmark's, a test's) must not be the child's.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    const int error =
        posix_spawn(&pid_, program.c_str(), &actions, &attributes, argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (pipe_ends[1] >= 0)
        close(pipe_ends[1]);
    if (error != 0) {
        if (pipe_ends[0] >= 0)
            close(pipe_ends[0]);
        throw std::runtime_error("cannot start " + program + ": " + std::strerror(error));
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
    kill_and_reap();
    if (pidfd_ >= 0)
        close(pidfd_);
    if (stdout_pipe_ >= 0)
        close(stdout_pipe_);
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
