#include "worker/worker.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <system_error>

#include <sys/signalfd.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define DTASK_LEAK_CHECK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define DTASK_LEAK_CHECK 1
#endif
#endif
#ifdef DTASK_LEAK_CHECK
#include <sanitizer/lsan_interface.h>
#endif

#include <dtask/error.hpp>

#include "log.hpp"
#include "thread_start.hpp"
#include "wire/protocol.hpp"
#include "worker/link.hpp"
#include "worker/worker_pulse.hpp"

namespace dtask::detail {

using namespace protocol;
using Clock = std::chrono::steady_clock;

sigset_t stop_signals() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    return signals;
}

void flush_standard_streams() noexcept {
    for (FILE* stream : {stdout, stderr}) {
        if (ftrylockfile(stream) == 0) {
            fflush_unlocked(stream);
            funlockfile(stream);
        }
    }
}

[[noreturn]] void end_worker_process(int code) noexcept {
    flush_standard_streams();
#ifdef DTASK_LEAK_CHECK
    // _Exit skips the sanitizer's leak check at exit: run it here, so that a leak in map or
    // in the worker's own code is reported like one in any other process.
    __lsan_do_recoverable_leak_check();
#endif
    std::_Exit(code);
}

[[noreturn]] void restart_process(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& arg : args)
        argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    flush_standard_streams();
    // The new image sets up its own signal handling; it must not start with ours blocked.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    execv("/proc/self/exe", argv.data());
    log_warning("worker", std::string("cannot restart after a hung subtask (execv: ") +
                              std::strerror(errno) + "); exiting");
    end_worker_process(worker_failed);
}

int run_worker(const WorkerOptions& options) {
    // SIGTERM and SIGINT end the worker cleanly through the poll loop; blocked before any
    // thread starts, so every thread inherits the mask and only the signalfd sees them.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    const int signal_fd = signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) {
        log_warning(
            "worker",
            "cannot watch for SIGTERM (signalfd failed); it will not stop the worker cleanly");
        pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
    }

    int code = worker_done;
    try {
        check_threads_start("this worker");
    } catch (const Error& e) {
        log(LogLevel::error, "worker", process_name(),
            std::string(e.what()).substr(7) + "; exiting");
        return worker_without_threads;
    }
    try {
        zmq::context_t context(1);
        PulseShared shared;
        Link link(context, options, signal_fd, shared);
        try {
            Pulse pulse(context, options.endpoint, options.token, process_name(), signal_fd, shared,
                        options.argv);
            code = link.run();
        } catch (const zmq::error_t& e) {
            log(LogLevel::error, "worker", process_name(),
                "cannot connect to '" + options.endpoint + "': " + e.what() +
                    " (an endpoint looks like tcp://host:5555)");
            code = worker_misused;
        }
    } catch (const std::system_error& e) {
        // The pulse thread or another could not start after all.
        log(LogLevel::error, "worker", process_name(),
            thread_start_message("this worker", e.code().message()).substr(7) + "; exiting");
        code = worker_without_threads;
    } catch (const std::bad_alloc&) {
        log(LogLevel::error, "worker", process_name(),
            "out of memory outside any subtask; exiting");
        code = worker_failed;
    }
    if (signal_fd >= 0)
        close(signal_fd);
    return code;
}

}  // namespace dtask::detail
