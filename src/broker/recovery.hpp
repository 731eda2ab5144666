#pragma once
// Recovery: each subtask may spoil max_attempts attempts (kill its worker while running
// alone, run past its timeout, throw a TransientError the job retries); then its job fails.
// The batches of a worker that crashed are suspects: each runs again alone on a worker
// reserved for it, and is halved each time its worker dies, until one subtask is left.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

#include "broker/batches.hpp"
#include "wire/protocol.hpp"

namespace dtask::detail {

struct BrokerJob;
struct WorkerPeer;

/// A job's part of the recovery.
struct JobRecovery {
    // Batches held by a worker that crashed or vanished: any subtask in them may have killed
    // it, so each batch runs again alone on a worker. If that worker dies too, the batch is
    // halved, until a single subtask killed it: only such a death counts against a subtask.
    BatchQueue quarantine;
    // Attempts each subtask spoiled. At settings.max_attempts the job fails.
    std::unordered_map<std::uint64_t, unsigned> spoiled;
};

/// A worker's part of the recovery. A worker is reserved for the quarantine when it is to
/// run a quarantined batch alone: it gets nothing more until it has finished what it holds.
struct WorkerRecovery {
    bool isolated = false;  // running one quarantined batch, and nothing else
    bool reserved = false;  // finishing what it holds, to run a quarantined batch alone
};

/// What became of a batch lost with a worker that crashed (Recovery::crashed).
enum class Suspect {
    quarantined,  // it runs again alone
    halved,       // it ran alone: its halves run again alone, each in turn
    failed,       // a single subtask killed its worker running alone, once too often
};

class Recovery {
public:
    /// Counts an attempt the subtask spoiled; true when that used up the job's attempts.
    static bool spoil(BrokerJob& job, std::uint64_t index);

    /// After an attempt the single subtask `single` spoiled: false if that used up the job's
    /// attempts (the job fails); otherwise it is queued to run again, at the back of the
    /// queue (the condition gets time to pass, and likely another worker takes it).
    static bool retry(BrokerJob& job, QueuedBatch single);

    /// Subtask `index` of `batch` hung its worker, and has attempts left. The subtasks
    /// before it ran there, but their results are lost with the worker's restart: they and
    /// those after it go back to the front of the queue, the hung one alone between them.
    static void requeue_around(BrokerJob& job, HeldBatch& batch, std::uint64_t index);

    /// What is left of a batch held by a worker that crashed; `isolated`: it ran that
    /// batch alone. On `failed`, the subtask is rest.first.
    Suspect crashed(BrokerJob& job, QueuedBatch rest, bool isolated);

    /// Whether the worker is (or now becomes) reserved to run a quarantined batch alone; a
    /// reserved worker is released once the quarantine has emptied. `serves(job)` says
    /// whether it serves a job.
    template <class Jobs, class Serves>
    bool reserve(WorkerRecovery& worker, Jobs& jobs, Serves&& serves) {
        if (worker.reserved) {
            if (quarantined_ > 0)
                return true;
            unreserve(worker);
            return false;
        }
        if (reserved_ >= quarantined_)
            return false;  // enough workers are on their way to it
        bool serves_one = false;
        for (auto& entry : jobs) {
            if (!entry.second.recovery.quarantine.empty() && serves(entry.second)) {
                serves_one = true;
                break;
            }
        }
        if (!serves_one)
            return false;
        worker.reserved = true;
        ++reserved_;
        return true;
    }

    /// Takes the quarantined batch a reserved worker, whose hands are free, is to run alone
    /// into `batch`, and marks the worker isolated; the worker is no longer reserved. Null
    /// if it serves no job with one.
    template <class Jobs, class Serves>
    BrokerJob* take(WorkerRecovery& worker, Jobs& jobs, Serves&& serves, QueuedBatch& batch) {
        unreserve(worker);
        for (auto& [job_id, job] : jobs) {
            if (job.recovery.quarantine.empty() || !serves(job))
                continue;
            batch = job.recovery.quarantine.take_front();
            --quarantined_;
            worker.isolated = true;
            return &job;
        }
        return nullptr;
    }

    /// A worker is no longer reserved: it is gone, or the quarantine emptied without it.
    void unreserve(WorkerRecovery& worker) noexcept {
        if (worker.reserved) {
            worker.reserved = false;
            --reserved_;
        }
    }
    /// A job ended: its quarantine goes with it.
    void forget(const JobRecovery& job) noexcept { quarantined_ -= job.quarantine.size(); }

    /// Batches in all jobs' quarantines.
    std::size_t quarantined() const noexcept { return quarantined_; }

    /// The failure of a job whose subtask `index` killed `worker` (named) running alone on
    /// each of its attempts, the last time as `how` says.
    static protocol::Failure killed_its_worker(BrokerJob& job, std::uint64_t index,
                                               const std::string& worker, const std::string& how);
    /// The failure of a job whose subtask `index` ran past its timeout on each attempt.
    static protocol::Failure timed_out(BrokerJob& job, std::uint64_t index,
                                       const std::string& worker);

private:
    std::size_t quarantined_ = 0;  // batches in all jobs' quarantines
    std::size_t reserved_ = 0;     // workers reserved to run one of them
};

}  // namespace dtask::detail
