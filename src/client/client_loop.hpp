#pragma once
// The client loop: one connection to the broker and the active jobs on it. It takes the
// mailbox's requests, splits each job's subtasks as its split window allows, folds results
// as its reduce order allows, and fails jobs past their deadline. The policies decide; the
// loop acts, and the connection sends. The I/O thread runs one, and hands split and reduce
// to the jobs' strands (user_code.hpp); Cluster::run drives others, which run them inline.

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <dtask/detail/run_state.hpp>

#include "client/active_job.hpp"
#include "client/client_core.hpp"
#include "client/connection.hpp"
#include "client/mailbox.hpp"
#include "wire/lazy_clock.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

class ClientLoop {
public:
    using Clock = std::chrono::steady_clock;

    explicit ClientLoop(ClientCore& core);

    /// The I/O thread's loop, until the client stops.
    void run();
    /// Runs one job on the calling thread until it ends, with no other job on this loop:
    /// its messages and the user's thread need no hand-off through the I/O thread.
    void drive(std::shared_ptr<RunState> run);
    /// Whether the broker refused this connection: it is of no use for another job.
    bool refused() const noexcept { return !connection_.refusal().empty(); }
    void say_goodbye_if_possible() noexcept { connection_.say_goodbye_if_possible(); }
    /// After an unexpected error on the I/O thread: no job may wait for it any more.
    void abandon(const std::string& why);

    // ---- what the connection routes here ----
    void on_status(std::uint64_t workers);
    void on_result(protocol::Inbound& message);
    void on_failure(protocol::Inbound& message);
    void on_notice(protocol::Inbound& message);
    /// Fails every job with a TransportError saying `why`.
    void fail_all(const std::string& why);
    /// The broker restarted, `pause` after it was lost: the jobs go on there.
    void resume(std::chrono::milliseconds pause);

private:
    void turn(bool driving = false);
    /// The time of this turn or message (clock_).
    Clock::time_point now() const noexcept { return clock_.last(); }
    void fail_overdue();
    /// Calls the progress callbacks that are due.
    void report_progress();
    /// Calls a job's progress callback for the end (`last`) or on time; false if it threw
    /// and the job failed of it.
    bool report(std::uint64_t id, ActiveJob& job, bool last);
    /// The last call of a job that fails: what the callback throws is dropped.
    void end_report(ActiveJob& job);
    void stop_driving();
    void stop_jobs(const std::string& reason);
    void take_requests();
    /// Sends the unshares taken from the mailbox that go before (or after) its new runs.
    void send_unshares(const std::vector<Mailbox::Unshare>& unshared, bool before_incoming);
    void start(std::shared_ptr<RunState> run);
    void pump(std::uint64_t id, ActiveJob& job);
    void split_elsewhere(std::uint64_t id, ActiveJob& job, std::size_t want, std::size_t room,
                         std::optional<std::uint64_t> remaining, std::size_t workers);
    /// False if the job failed instead (its batch too large for the broker).
    bool send_split(std::uint64_t id, ActiveJob& job, std::uint64_t count, std::string& bytes);
    std::exception_ptr too_large(const RunState& run, const char* what, std::size_t bytes) const;
    void end_split(std::uint64_t id, ActiveJob& job);
    void pump_unpumped();
    void hold(ActiveJob& job);
    void post_folds();
    void fold_elsewhere(std::uint64_t id, ActiveJob& job);
    void on_done(UserCodeDone& done);
    void finish(std::uint64_t id, ActiveJob& job);
    void fail(std::uint64_t id, std::exception_ptr error);
    /// Forgets a job here and, with `how`, at the broker.
    void drop(std::uint64_t id, protocol::Command how);
    void check_range(const ActiveJob& job, std::uint64_t first, std::uint64_t count) const;
    void settle(ActiveJob& job, std::uint64_t first, std::uint64_t count, std::uint64_t fresh,
                std::chrono::nanoseconds map_time);

    ClientCore& core_;
    // Read once per turn, then every few messages received or one-subtask batches sent.
    LazyClock clock_;
    Connection connection_;
    std::string batch_buffer_;  // the batch being built
    Clock::time_point slice_end_;
    // No job's deadline is before this; a job that ended may leave it early, which costs
    // one needless look in fail_overdue.
    Clock::time_point next_deadline_ = Clock::time_point::max();
    // No job's progress report is due before this (the same way).
    Clock::time_point next_report_ = Clock::time_point::max();
    std::unordered_set<std::uint64_t>
        unpumped_;  // jobs that ran out of time slice, not split window
    std::unordered_map<std::uint64_t, ActiveJob> jobs_;
    std::vector<std::uint64_t> fold_list_;  // jobs with results in this burst
    std::uint64_t next_job_id_ = 1;
    bool stopped_ = false;
    // drive(): split and reduce run here, in time slices. run(): on the jobs' strands, and
    // this thread runs no user code.
    bool inline_ = true;
};

}  // namespace dtask::detail
