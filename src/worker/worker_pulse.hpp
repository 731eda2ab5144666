#pragma once
// A worker runs map on the thread that talks to the broker, so a subtask costs no hand-off
// between threads. While map runs, that thread is deaf and mute; the pulse thread speaks
// for it on a second socket of its own: it tells the broker the worker is alive when the
// worker has sent nothing for a heartbeat interval, reports a subtask that ran past its
// timeout and restarts the process, and ends the process on SIGTERM while map runs.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "security/join_token.hpp"
#include "wire/protocol.hpp"
#include "worker/subtask_watch.hpp"

namespace dtask::detail {

/// How long a map of a job that ended may run on before the worker restarts: its results
/// are useless, and until it returns the worker serves nothing (docs/reliability.md).
constexpr std::chrono::seconds ended_job_grace{5};

/// What the worker's main thread shares with its pulse thread.
struct PulseShared {
    using Clock = std::chrono::steady_clock;

    SubtaskWatch watch;
    /// The batch the main thread runs (job, first index), if in_batch.
    std::atomic<bool> in_batch{false};
    std::atomic<std::uint64_t> batch_job{0};
    std::atomic<std::uint64_t> batch_first{0};
    /// The last job the broker told the pulse thread had ended, if has_ended: the main thread
    /// skips the rest of its batches.
    std::atomic<bool> has_ended{false};
    std::atomic<std::uint64_t> ended_job{0};

    bool ended(std::uint64_t job) const noexcept {
        return has_ended.load(std::memory_order_acquire) &&
               ended_job.load(std::memory_order_relaxed) == job;
    }
    bool running(std::uint64_t job) const noexcept {
        return in_batch.load(std::memory_order_acquire) &&
               batch_job.load(std::memory_order_relaxed) == job;
    }
    /// When the main thread last sent the broker anything (a heartbeat, a result).
    std::atomic<Clock::rep> last_sent{0};
    /// The main thread is running a batch: it reads neither its socket nor its signals.
    std::atomic<bool> busy{false};
    std::atomic<long> interval_ms{250};

    /// Stamps a message to the broker: whatever the worker sends shows it alive.
    void note_sent() noexcept { note_sent(Clock::now()); }
    /// The same, with the time already read.
    void note_sent(Clock::time_point now) noexcept {
        last_sent.store(now.time_since_epoch().count(), std::memory_order_relaxed);
    }
    Clock::time_point last_sent_at() const noexcept {
        return Clock::time_point(Clock::duration(last_sent.load(std::memory_order_relaxed)));
    }

    void set_routing_id(std::string id) {
        std::lock_guard lock(mutex);
        routing_id = std::move(id);
    }
    std::string current_routing_id() const {
        std::lock_guard lock(mutex);
        return routing_id;
    }

private:
    mutable std::mutex mutex;
    std::string routing_id;  // of the main thread's socket, which the pulses speak for
};

class Pulse {
public:
    using Clock = std::chrono::steady_clock;

    /// Starts the thread. `argv` restarts the process after a hung subtask.
    Pulse(zmq::context_t& context, std::string endpoint, const std::optional<JoinToken>& token,
          std::string worker_name, int signal_fd, PulseShared& shared,
          std::vector<std::string> argv);
    /// Stops and joins the thread.
    ~Pulse();
    Pulse(const Pulse&) = delete;
    Pulse& operator=(const Pulse&) = delete;

private:
    void run();
    /// Tells the broker that a subtask hung, waits briefly for its acknowledgement, and
    /// restarts the process. Never returns.
    [[noreturn]] void report_hung(const SubtaskWatch::Running& hung);
    /// Reports subtask `index` of `job` as hung (`failure`), waits briefly for the broker's
    /// acknowledgement, and restarts the process. Never returns.
    [[noreturn]] void restart_after(std::uint64_t job, std::uint64_t index,
                                    const protocol::Failure& failure, const std::string& why);
    /// The broker says `job` ended: its batches are skipped, and the one running now, if
    /// any, has until ended_job_grace to return (`abandon`).
    void on_job_ended(std::uint64_t job, Clock::time_point now);

    /// SIGTERM while map runs: the broker hears the worker leave, and the process ends.
    [[noreturn]] void leave();
    void send_pulse(std::uint64_t kind);

    zmq::socket_t socket_;
    std::string worker_name_;
    int signal_fd_;
    int wake_fd_ = -1;
    PulseShared& shared_;
    std::vector<std::string> argv_;
    struct Abandoned {
        std::uint64_t job = 0;
        Clock::time_point deadline;
    };
    std::optional<Abandoned> abandoned_;  // a batch of an ended job, running still
    std::thread thread_;
};

}  // namespace dtask::detail
