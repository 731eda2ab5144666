#include "child_process.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace perf {
namespace {

// The pids of the children alive, for the signal handler: a fixed array of atomics, since a
// handler may neither lock nor allocate.
std::array<std::atomic<pid_t>, 1024> live_children{};

void remember(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t empty = 0;
        if (slot.compare_exchange_strong(empty, pid))
            return;
    }
}

void forget(pid_t pid) {
    for (auto& slot : live_children) {
        pid_t expected = pid;
        if (slot.compare_exchange_strong(expected, 0))
            return;
    }
}

extern "C" void kill_children_and_end(int signal_number) {
    for (auto& slot : live_children) {
        const pid_t pid = slot.load();
        if (pid > 0)
            kill(pid, SIGKILL);
    }
    for (auto& slot : live_children) {
        const pid_t pid = slot.exchange(0);
        if (pid > 0)
            waitpid(pid, nullptr, 0);
    }
    std::signal(signal_number, SIG_DFL);
    raise(signal_number);
}

}  // namespace

std::string self_executable() {
    char path[4096] = {};
    const ssize_t length = readlink("/proc/self/exe", path, sizeof path - 1);
    if (length <= 0)
        throw std::runtime_error("cannot read /proc/self/exe: " +
                                 std::string(std::strerror(errno)));
    return std::string(path, static_cast<std::size_t>(length));
}

ChildProcess::ChildProcess(const std::vector<std::string>& args, bool pipe_stdout) {
    std::vector<std::string> storage{self_executable()};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : storage)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int pipe_ends[2] = {-1, -1};
    if (pipe_stdout) {
        if (pipe2(pipe_ends, O_CLOEXEC) != 0) {
            posix_spawn_file_actions_destroy(&actions);
            throw std::runtime_error("pipe2: " + std::string(std::strerror(errno)));
        }
        posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
    }
    // The handler's signals stay default in the child: it is killed, not the benchmark.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGTERM);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGDEF);
    const int error = posix_spawn(&pid_, argv[0], &actions, &attributes, argv.data(), environ);
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (pipe_ends[1] >= 0)
        close(pipe_ends[1]);
    if (error != 0) {
        if (pipe_ends[0] >= 0)
            close(pipe_ends[0]);
        pid_ = -1;
        throw std::runtime_error("cannot start " + storage.front() + ": " + std::strerror(error));
    }
    remember(pid_);
    stdout_pipe_ = pipe_ends[0];
}

ChildProcess::ChildProcess(ChildProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      stdout_pipe_(std::exchange(other.stdout_pipe_, -1)),
      buffered_(std::move(other.buffered_)) {}

ChildProcess::~ChildProcess() {
    kill_and_reap();
    if (stdout_pipe_ >= 0)
        close(stdout_pipe_);
}

std::optional<std::string> ChildProcess::read_line(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (const auto newline = buffered_.find('\n'); newline != std::string::npos) {
            std::string line = buffered_.substr(0, newline);
            buffered_.erase(0, newline + 1);
            return line;
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (stdout_pipe_ < 0 || left.count() <= 0)
            return std::nullopt;
        pollfd item{stdout_pipe_, POLLIN, 0};
        const int ready = poll(&item, 1, static_cast<int>(left.count()));
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
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

int ChildProcess::wait() {
    int status = 0;
    if (pid_ <= 0)
        return status;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    forget(pid_);
    pid_ = -1;
    return status;
}

void ChildProcess::kill_and_reap() noexcept {
    if (pid_ <= 0)
        return;
    kill(pid_, SIGKILL);
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    forget(pid_);
    pid_ = -1;
}

void kill_children_on_termination_signals() {
    struct sigaction action {};
    action.sa_handler = kill_children_and_end;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
}

void die_with_parent(pid_t parent) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        std::_Exit(1);
}

}  // namespace perf
