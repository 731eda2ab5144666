#include "support.hpp"

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace test_support {
namespace {

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

}  // namespace

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
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    int pipe_ends[2] = {-1, -1};
    if (output_file == "|" || output_file == "|&") {
        REQUIRE(pipe2(pipe_ends, O_CLOEXEC) == 0);
        posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
        if (output_file == "|&")
            posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDERR_FILENO);
        stdout_pipe_ = pipe_ends[0];
    } else if (!output_file.empty()) {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output_file.c_str(),
                                         O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
    }
    const int error =
        posix_spawn(&pid_, program.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (pipe_ends[1] >= 0)
        close(pipe_ends[1]);
    if (error != 0)
        throw std::runtime_error("cannot start " + program + ": " + std::strerror(error));
    pidfd_ = open_pidfd(pid_);
    if (pidfd_ < 0)
        throw std::runtime_error("pidfd_open failed: " + std::string(std::strerror(errno)));
}

Process::~Process() {
    if (!reaped_) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
    }
    close(pidfd_);
    if (stdout_pipe_ >= 0)
        close(stdout_pipe_);
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
    waitpid(pid_, &status, 0);
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
    REQUIRE(length > 0);
    return std::string(path, static_cast<std::size_t>(length));
}

std::string examples_directory() {
    return DTASK_TEST_EXAMPLES_DIR;
}
std::string helpers_directory() {
    return DTASK_TEST_HELPERS_DIR;
}

std::vector<pid_t> children_of_this_process() {
    std::vector<pid_t> children;
    const pid_t self = getpid();
    DIR* proc = opendir("/proc");
    REQUIRE(proc != nullptr);
    while (dirent* entry = readdir(proc)) {
        const char* name = entry->d_name;
        if (name[0] < '0' || name[0] > '9')
            continue;
        std::ifstream stat(std::string("/proc/") + name + "/stat");
        std::string line;
        if (!std::getline(stat, line))
            continue;
        // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
        const auto close_paren = line.rfind(')');
        if (close_paren == std::string::npos)
            continue;
        std::istringstream rest(line.substr(close_paren + 1));
        std::string state;
        pid_t parent = 0;
        rest >> state >> parent;
        if (parent == self)
            children.push_back(std::stoi(name));
    }
    closedir(proc);
    return children;
}

bool wait_gone(pid_t pid, std::chrono::milliseconds timeout) {
    const int fd = open_pidfd(pid);
    if (fd < 0)
        return errno == ESRCH;
    const bool gone = poll_readable(fd, timeout);
    close(fd);
    return gone;
}

std::string read_file(const std::string& path) {
    std::ifstream file(path, std::ios::binary);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

std::string temp_path(const std::string& stem) {
    static std::atomic<int> counter{0};
    return "/tmp/dtask-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++) + "-" +
           stem;
}

ScopedEnvAppend::ScopedEnvAppend(std::string name, const std::string& value)
    : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()))
        old_ = old;
    const std::string updated = old_ && !old_->empty() ? *old_ + ":" + value : value;
    setenv(name_.c_str(), updated.c_str(), 1);
}

ScopedEnvAppend::~ScopedEnvAppend() {
    if (old_)
        setenv(name_.c_str(), old_->c_str(), 1);
    else
        unsetenv(name_.c_str());
}

dtask::ClusterOptions small_cluster(int local_workers) {
    dtask::ClusterOptions options;
    options.local_workers = local_workers;
    // The default heartbeats: tests that are about failure detection set their own, and
    // shorter ones would only make a loaded machine look like a failing one.
    return options;
}

}  // namespace test_support
