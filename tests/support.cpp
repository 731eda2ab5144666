#include "support.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test_support {

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

std::string ending_within(Process& process, std::chrono::milliseconds timeout) {
    const auto status = process.wait_exit(timeout);
    if (!status)
        return "still running";
    if (WIFEXITED(*status))
        return "exit status " + std::to_string(WEXITSTATUS(*status));
    return "killed by signal " + std::to_string(WTERMSIG(*status));
}

void skip_test(const std::string& reason) {
    // The same words as SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt.
    std::cout << "dtask-test skipped: " << reason << std::endl;
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
