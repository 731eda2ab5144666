#pragma once
// Backup copies (MapReduce's backup tasks): at the tail of a job, a worker with a free credit
// gets a copy of the batch that has run longest, well past what the job's average subtask
// predicts for it and at least backup_min_age. The first copy to finish wins; the others are
// revoked. A batch gets one copy at most, and none once one of its subtasks spoiled an attempt.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/batches.hpp"

namespace dtask::detail {

struct BrokerJob;
struct WorkerPeer;
class Jobs;
class Peers;

/// A subtask no older than this gets no backup copy, however fast its job's others were.
constexpr auto backup_min_age = std::chrono::milliseconds(10);

/// A batch running on two workers. Keyed by its first index in its job; the count tells it
/// apart from another batch that starts there (a retried single).
struct Copies {
    std::uint64_t count = 0;
    std::vector<std::string> holders;

    bool of(std::uint64_t batch_count, const std::string& worker) const {
        return count == batch_count &&
               std::find(holders.begin(), holders.end(), worker) != holders.end();
    }
};

/// A job's part of the backups.
struct JobBackups {
    using Clock = std::chrono::steady_clock;

    // The client sends no more subtasks for now (split_done): its split is over, or its window
    // is held by partials waiting for a slow subtask. The tail has begun; a task ends it.
    bool split_done = false;
    Clock::duration run_time{};  // of the batches finished, for the backup threshold
    std::uint64_t runs = 0;      // subtasks in those batches
    // Batches running on two workers: first index -> the workers holding it.
    std::unordered_map<std::uint64_t, Copies> copies;

    /// A batch of `count` subtasks finished, having run for `took`.
    void finished(Clock::duration took, std::uint64_t count) noexcept {
        run_time += took;
        runs += count;
    }
};

/// A job whose running batches may get backup copies: it allows them, is at its tail (all
/// sent, none queued or in quarantine), and has finished one to compare with.
bool may_back_up(const BrokerJob& job);

/// Whether a subtask of the batch has spoiled an attempt already: such a batch gets no
/// backup copy, since its retries are counted and copies would not be.
bool holds_spoiled(const BrokerJob& job, const HeldBatch& batch);

/// Whether `idle` may take a backup copy at all: it runs no quarantined batch and is not
/// reserved for one, and some job is at its tail. Cheap: dispatch asks it after every result;
/// it looks at the jobs or at the workers' running batches, whichever are fewer, so that
/// many jobs waiting (for a worker that serves them) cost nothing here.
bool may_take_backup(const WorkerPeer& idle, Peers& peers, Jobs& jobs);

/// A running batch chosen for a backup copy: its holder and its job.
struct Backup {
    WorkerPeer* holder = nullptr;
    BrokerJob* job = nullptr;
};

/// For an `idle` worker that may_take_backup: the worker whose running batch (the oldest it
/// holds) gets a copy on `idle` at `now`; of those that qualify, the one that has run
/// longest; no holder if none does.
Backup choose_backup(WorkerPeer& idle, Peers& peers, Jobs& jobs,
                     std::chrono::steady_clock::time_point now);

/// Notes the chosen batch as running on two workers: its holder and `idle`.
void record_copy(const Backup& backup, const WorkerPeer& idle);

/// A batch ended on `winner`: the other holders of its copies, whose copy is to be revoked.
/// Empty if it had no copies (or they were of another batch that starts at the same index).
std::vector<std::string> settle_copies(JobBackups& job, std::uint64_t first, std::uint64_t count,
                                       const std::string& winner);

/// Whether another worker still runs a copy of `holder`'s batch; forgets that copy.
bool other_copy_runs(JobBackups& job, const HeldBatch& batch, const std::string& holder);

}  // namespace dtask::detail
