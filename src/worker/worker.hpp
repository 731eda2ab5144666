#pragma once
// The worker process: its main thread runs the link to the broker (link.hpp: hello,
// heartbeats, reconnecting) and map on the batches it receives (batch_runner.hpp), with no
// hand-off to another thread per message. While a map runs, a pulse thread speaks for it
// (worker_pulse.hpp), so that a long map never silences the worker and a frozen process is
// told apart from a busy one.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <signal.h>

#include "security/join_token.hpp"

namespace dtask::detail {

/// Credits of a worker when none are set: enough batches in flight for tiny ones. The
/// broker sends in bursts (Outbox), so a worker needs a deep queue to stay busy between
/// them.
inline constexpr unsigned default_worker_credits = 256;

struct WorkerOptions {
    std::string endpoint;
    /// Batches it may hold at most; the broker holds it to fewer when batches are long.
    unsigned credits = default_worker_credits;
    /// How long to keep trying to reach a silent broker before leaving.
    std::chrono::milliseconds give_up{std::chrono::seconds(60)};
    /// Started by a Cluster of this machine (it dies with its parent).
    bool local = false;
    /// The join token's keys for a broker that uses CurveZMQ; none for one that does not
    /// (the private socket, or insecure TCP).
    std::optional<JoinToken> token;
    /// The process's command line, to start it again after a subtask hung (a thread stuck in
    /// map cannot be stopped, only the process replaced).
    std::vector<std::string> argv;
};

/// Exit codes of a worker process.
enum WorkerExit : int {
    worker_done = 0,     // told to leave, or SIGTERM/SIGINT
    worker_misused = 2,  // bad command line
    worker_refused = 3,  // the broker refused it
    worker_gave_up = 4,  // the broker stayed silent
    worker_failed = 5,   // an unexpected error stopped it
    // 6 is worker_without_init (process.hpp)
    worker_without_threads = 7,  // it cannot start its threads (ulimit -u, -s, -v)
};

/// Serves the broker at options.endpoint until told to stop; returns the exit code.
int run_worker(const WorkerOptions& options);

/// The signals that stop a worker cleanly: blocked in every thread, read from a signalfd.
sigset_t stop_signals();
/// Flushes stdout and stderr if no other thread holds them (a stuck map may: blocked writing
/// to a full pipe, say), so that ending the process never hangs on a stdio lock.
void flush_standard_streams() noexcept;
/// Ends the worker process with `code`: flushes what it can, runs the leak check of an
/// AddressSanitizer build (which _Exit would skip), then _Exit, so that neither the host's
/// main() nor static destructors run under whatever map left behind.
[[noreturn]] void end_worker_process(int code) noexcept;
/// Replaces this process with a fresh copy of itself, same command line, same pid: the one
/// way to get rid of a thread stuck in map. Never returns.
[[noreturn]] void restart_process(const std::vector<std::string>& args);

}  // namespace dtask::detail
