#include "process.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dtask/error.hpp>

extern char** environ;

namespace dtask::detail {
namespace {

int open_pidfd(pid_t pid) {
    return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

/// Through the pidfd, so that the signal cannot reach another process that got the pid
/// after someone else reaped ours.
void signal_child(const ChildProcess& child, int signal_number) {
    syscall(SYS_pidfd_send_signal, child.pidfd, signal_number, nullptr, 0);
}

}  // namespace

ChildProcess spawn_worker(const std::string& endpoint, unsigned credits) {
    // /proc/self/exe runs the same binary even if its file was replaced since the host
    // started (a rebuild while it runs), so the workers match the host's job definitions.
    const char* executable = "/proc/self/exe";
    std::string argv0 = program_invocation_name;
    std::string credits_text = std::to_string(credits);
    std::vector<char*> argv{argv0.data(),
                            const_cast<char*>("--dtask-worker"),
                            const_cast<char*>(endpoint.c_str()),
                            const_cast<char*>("--dtask-credits"),
                            credits_text.data(),
                            nullptr};

    std::vector<std::string> environment;
    const std::string parent_prefix = std::string(parent_pid_variable) + "=";
    for (char** entry = environ; *entry != nullptr; ++entry) {
        if (std::strncmp(*entry, parent_prefix.c_str(), parent_prefix.size()) == 0)
            continue;
        if (std::strncmp(*entry, "DTASK_WORKER=", 13) == 0)
            continue;
        environment.emplace_back(*entry);
    }
    environment.push_back(parent_prefix + std::to_string(getpid()));
    std::vector<char*> envp;
    for (auto& entry : environment)
        envp.push_back(entry.data());
    envp.push_back(nullptr);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    // Its own process group, so that Ctrl-C in a terminal reaches the host alone (which then
    // stops its workers, or takes them along through the parent-death signal); and the
    // default signal handling, whatever the host had set up.
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    for (int signal_number : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD, SIGQUIT})
        sigaddset(&defaults, signal_number);
    posix_spawnattr_setsigmask(&attributes, &none);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setpgroup(&attributes, 0);
    posix_spawnattr_setflags(
        &attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    ChildProcess child;
    const int error =
        posix_spawn(&child.pid, executable, &actions, &attributes, argv.data(), envp.data());
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    if (error != 0) {
        throw Error(std::string("dtask: cannot start a local worker process (posix_spawn of ") +
                    executable + "): " + std::strerror(error));
    }
    child.pidfd = open_pidfd(child.pid);
    if (child.pidfd < 0) {
        const int open_error = errno;
        kill(child.pid, SIGKILL);
        waitpid(child.pid, nullptr, 0);
        throw Error(std::string("dtask: cannot watch local worker process ") +
                    std::to_string(child.pid) + " (pidfd_open): " + std::strerror(open_error));
    }
    return child;
}

int reap(ChildProcess& child) {
    int status = 0;
    if (child.pid > 0) {
        while (waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (child.pidfd >= 0)
        close(child.pidfd);
    child.pid = -1;
    child.pidfd = -1;
    return status;
}

std::string describe_wait_status(int status) {
    if (WIFEXITED(status))
        return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int signal_number = WTERMSIG(status);
        const char* description = strsignal(signal_number);
        return "killed by signal " + std::to_string(signal_number) + " (" +
               (description != nullptr ? description : "unknown") + ")";
    }
    return "ended with wait status " + std::to_string(status);
}

void stop_children(std::vector<ChildProcess>& children, std::chrono::milliseconds grace) {
    for (auto& child : children) {
        if (child.pid > 0)
            signal_child(child, SIGTERM);  // a worker leaves cleanly on SIGTERM
    }
    const auto deadline = std::chrono::steady_clock::now() + grace;
    for (;;) {
        std::vector<pollfd> fds;
        for (auto& child : children) {
            if (child.pid > 0)
                fds.push_back({child.pidfd, POLLIN, 0});
        }
        if (fds.empty())
            break;
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        if (poll(fds.data(), fds.size(), static_cast<int>(left.count())) < 0 && errno != EINTR)
            break;
        for (auto& child : children) {
            if (child.pid <= 0)
                continue;
            pollfd one{child.pidfd, POLLIN, 0};
            if (poll(&one, 1, 0) == 1)
                reap(child);
        }
    }
    for (auto& child : children) {
        if (child.pid > 0) {
            signal_child(child, SIGKILL);
            reap(child);
        }
    }
}

}  // namespace dtask::detail
