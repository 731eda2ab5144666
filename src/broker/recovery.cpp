// Recovery: attempts, transient retries, timeouts, and poison subtasks found by halving.

#include "broker/recovery.hpp"

#include "broker/jobs.hpp"

namespace dtask::detail {

using namespace protocol;

bool Recovery::spoil(BrokerJob& job, std::uint64_t index) {
    return ++job.recovery.spoiled[index] >= job.settings.max_attempts;
}

bool Recovery::retry(BrokerJob& job, QueuedBatch single) {
    if (spoil(job, single.first))
        return false;
    job.queue.push_back(std::move(single));
    return true;
}

void Recovery::requeue_around(BrokerJob& job, HeldBatch& batch, std::uint64_t index) {
    const std::uint64_t from = batch.next - batch.first;
    const std::uint64_t at = index - batch.first;
    if (at + 1 < batch.count)
        job.queue.push_front(QueuedBatch{index + 1, batch.count - at - 1,
                                         slice_batch(batch.payload, at + 1, batch.count)});
    job.queue.push_front(QueuedBatch{index, 1, slice_batch(batch.payload, at, at + 1)});
    if (from < at)
        job.queue.push_front(
            QueuedBatch{batch.next, at - from, slice_batch(batch.payload, from, at)});
}

Suspect Recovery::crashed(BrokerJob& job, QueuedBatch rest, bool isolated) {
    auto& quarantine = job.recovery.quarantine;
    if (isolated) {
        // It ran this batch and nothing else: a subtask in it killed the worker.
        if (rest.count > 1) {
            // Which one is found by halving: each half runs alone in turn.
            const std::uint64_t half = rest.count / 2;
            quarantine.push_back(QueuedBatch{rest.first, half, slice_batch(rest.payload, 0, half)});
            quarantine.push_back(QueuedBatch{rest.first + half, rest.count - half,
                                             slice_batch(rest.payload, half, rest.count)});
            quarantined_ += 2;
            return Suspect::halved;
        }
        if (spoil(job, rest.first))
            return Suspect::failed;
    }
    quarantine.push_back(std::move(rest));
    ++quarantined_;
    return Suspect::quarantined;
}

Failure Recovery::killed_its_worker(BrokerJob& job, std::uint64_t index, const std::string& worker,
                                    const std::string& how) {
    Failure failure;
    failure.kind = FailureKind::worker_lost;
    failure.worker = worker;
    failure.message = "job '" + job.name + "': subtask " + std::to_string(index) +
                      " killed the worker running it, " +
                      std::to_string(job.recovery.spoiled[index]) +
                      " time(s), each time running alone, the limit set by "
                      "RunOptions::max_attempts; the last, " +
                      worker + ": " + how;
    return failure;
}

Failure Recovery::timed_out(BrokerJob& job, std::uint64_t index, const std::string& worker) {
    Failure failure;
    failure.kind = FailureKind::timeout;
    failure.worker = worker;
    failure.message =
        "job '" + job.name + "': subtask " + std::to_string(index) +
        " ran longer than its timeout of " + std::to_string(job.settings.subtask_timeout_ms) +
        " ms" +
        (job.broker_timeout ? std::string(" (the broker's maximum subtask time, for a job that "
                                          "sets no RunOptions::subtask_timeout)")
                            : std::string()) +
        " on " + std::to_string(job.recovery.spoiled[index]) +
        " attempt(s), the limit (RunOptions::max_attempts); the last on worker " + worker;
    return failure;
}

}  // namespace dtask::detail
