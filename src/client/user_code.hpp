#pragma once
// User code (split and reduce) runs off the client's I/O thread, on strands: each job's work
// runs in order, one piece at a time, on a small elastic pool. A thread that ends a piece
// takes the next strand waiting, so short pieces of many jobs share few threads; a strand
// that has waited `patience` for a thread gets a new one (a slow job holds up another's
// strand for no longer, unless max_threads are busy: then it waits its turn), and a thread
// idle for a while exits. The I/O thread posts work, starts those threads when it is time
// (unstick), and hears of the work's end through the mailbox; it never waits for it.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <dtask/detail/run_state.hpp>

#include "client/reduce_order.hpp"

namespace dtask::detail {

struct Mailbox;

/// A batch of subtasks split off: its bytes, with room for the header in front.
struct SplitBatch {
    std::string bytes;
    std::uint64_t count = 0;
};

/// What split may make in one request: up to `subtasks` in batches of up to `per_batch`,
/// until the batches hold `bytes`.
struct SplitRequest {
    std::uint64_t subtasks = 0;
    std::uint64_t per_batch = 0;
    std::size_t bytes = 0;
    // The subtasks left when asked, if the total is known, and the workers: each batch is
    // cut for the job's tail as the batch sizer would (BatchSizer::tail_cut).
    std::optional<std::uint64_t> remaining;
    std::size_t workers = 1;
};

/// One piece of a job's user code: fold `runs`, or else split as `split` says.
struct UserCodeWork {
    std::shared_ptr<RunState> run;
    std::uint64_t job = 0;  // the client loop's id
    std::vector<FoldRun> runs;
    SplitRequest split;
};

/// What a piece did, for the I/O thread.
struct UserCodeDone {
    std::uint64_t job = 0;
    bool split = false;               // else a fold
    std::uint64_t folded = 0;         // fold: results folded
    std::vector<SplitBatch> batches;  // split: batches made
    bool exhausted = false;           // split: it has no more
    std::exception_ptr error;         // what split or reduce threw
};

/// How long split fills one request before its batches are sent.
inline constexpr auto split_slice = std::chrono::milliseconds(20);

/// Splits up to `want` subtasks of `run` into `bytes` (header room, then the batch); returns
/// how many. Sets `exhausted` when split has no more; closes the batch early at `until`.
std::uint64_t split_batch(RunState& run, std::size_t want, std::string& bytes, bool& exhausted,
                          std::chrono::steady_clock::time_point until);
/// Folds the runs' results, in order, into the run's result; returns how many it folded.
std::uint64_t fold_runs(RunState& run, const std::vector<FoldRun>& runs);
/// Does `work`, catching what user code throws.
UserCodeDone perform(UserCodeWork& work);

/// One job's queue of user-code work, run in the order posted, one piece at a time.
struct Strand {
    std::deque<UserCodeWork> work;  // under UserCode's mutex
    bool queued = false;            // waiting for or held by a thread
};

class UserCode {
public:
    using Clock = std::chrono::steady_clock;
    /// Threads idle this long exit.
    static constexpr auto idle_time = std::chrono::seconds(2);
    /// How long a strand with work waits for a busy thread before it gets one of its own.
    static constexpr auto patience = std::chrono::milliseconds(2);

    /// The default bound on threads: 4 per hardware thread, at least 16. Past it, a strand
    /// waits for a busy thread to take it in turn, however long it has waited: N slow jobs
    /// do not make N threads.
    static std::size_t default_max_threads();

    /// Each piece's UserCodeDone goes to `mailbox`; at most `max_threads` threads (at least 1).
    explicit UserCode(std::shared_ptr<Mailbox> mailbox,
                      std::size_t max_threads = default_max_threads());
    /// Discards the work not yet begun and waits for the pieces under way to return: a
    /// reduce that never returns hangs here, as it would on the user's own thread.
    ~UserCode();
    UserCode(const UserCode&) = delete;
    UserCode& operator=(const UserCode&) = delete;

    /// Runs `work` on `strand` after the work posted there before, `now`; starts a thread if
    /// there is none.
    void post(const std::shared_ptr<Strand>& strand, UserCodeWork work, Clock::time_point now);
    /// When a strand will have waited `patience` for a thread; max if none waits, or if
    /// there are max_threads already.
    Clock::time_point stuck_at() const;
    /// Starts a thread for each strand that has waited `patience` for one by `now`, up to
    /// max_threads.
    void unstick(Clock::time_point now);
    /// Threads started and not yet exited.
    std::size_t threads() const;

private:
    struct Pool;
    static void serve(const std::shared_ptr<Pool>& pool);
    void start_thread();  // under the pool's mutex

    std::shared_ptr<Pool> pool_;  // shared with the threads, which outlive the last wait
    std::size_t max_threads_;
};

}  // namespace dtask::detail
