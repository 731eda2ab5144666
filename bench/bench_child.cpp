#include "bench_child.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <utility>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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

BenchChild::BenchChild(const std::vector<std::string>& args, bool pipe_stdout,
                       const std::vector<std::string>& environment)
    : BenchChild(Program{self_executable()}, args, pipe_stdout, environment) {}

BenchChild::BenchChild(const Program& program, const std::vector<std::string>& args,
                       bool pipe_stdout, const std::vector<std::string>& environment)
    : process_(program.path, args, pipe_stdout ? "|" : "", environment) {
    remember(process_.pid());
}

BenchChild::BenchChild(BenchChild&& other) noexcept
    : process_(std::move(other.process_)), watched_(std::exchange(other.watched_, false)) {}

BenchChild::~BenchChild() {
    kill_and_reap();
}

int BenchChild::wait() {
    const int status = process_.wait();
    if (std::exchange(watched_, false))
        forget(process_.pid());
    return status;
}

void BenchChild::kill_and_reap() noexcept {
    process_.kill_and_reap();
    if (std::exchange(watched_, false))
        forget(process_.pid());
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
