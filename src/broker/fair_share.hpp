#pragma once
// Fair share: jobs with queued batches take turns of priority × turn_quantum subtasks (deficit
// round robin). A batch larger than what is left of a turn is sent, and the excess is taken
// from the job's next turns, so that a job's share is counted in subtasks whatever its
// batches' sizes. A job whose queue empties leaves the rotation.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <type_traits>
#include <utility>

#include "broker/batches.hpp"
#include "wire/batch_sizer.hpp"

namespace dtask::detail {

/// Subtasks per turn of a job of priority 1 when jobs compete for workers.
constexpr std::int64_t turn_quantum = 64;

/// A job's part of the fair share.
struct Turns {
    unsigned priority = 1;
    std::int64_t left = 0;     // subtasks left of its turn; below 0: owed
    bool in_rotation = false;  // its id is in the rotation
};

/// Whose turn it is: the job chosen and the batch taken off the front of its queue.
template <class Job>
struct Turn {
    Job* job = nullptr;
    QueuedBatch batch;
};

class FairShare {
public:
    /// Puts a job with queued batches at the back of the rotation, unless it is in it.
    void join(std::uint64_t job_id, Turns& turns) {
        if (turns.in_rotation)
            return;
        rotation_.push_back(job_id);
        turns.in_rotation = true;
    }

    bool empty() const noexcept { return rotation_.empty(); }

    /// The next batch of the job whose turn it is, among those `serves(job)` accepts, taken
    /// off its queue and charged to its turn; no job if none has one. `find(id)` gives a job
    /// by id, or null for one erased since (its stale id is dropped here). A job's queue
    /// holds a member `queue` of QueuedBatch and `turns`.
    template <class Find, class Serves>
    auto next(Find&& find, Serves&& serves) -> Turn<std::remove_pointer_t<decltype(find(0))>> {
        // Each pass either takes a batch or gives a job in debt a turn's worth of credit, so
        // this ends; the bound is the most passes a largest batch can owe.
        const std::size_t passes = rotation_.size() * (BatchSizer::max_batch / turn_quantum + 2);
        for (std::size_t pass = 0; pass < passes && !rotation_.empty(); ++pass) {
            const std::uint64_t job_id = rotation_.front();
            rotation_.pop_front();
            auto* found = find(job_id);
            if (found == nullptr)
                continue;
            auto& job = *found;
            Turns& turns = job.turns;
            if (job.queue.empty()) {
                turns.in_rotation = false;
                turns.left = 0;
                continue;
            }
            if (!serves(job)) {
                rotation_.push_back(job_id);
                continue;
            }
            if (turns.left <= 0) {
                turns.left += static_cast<std::int64_t>(turns.priority) * turn_quantum;
                if (turns.left <= 0 && !rotation_.empty()) {
                    rotation_.push_back(job_id);  // still in debt: the others go first
                    continue;
                }
                turns.left = std::max<std::int64_t>(turns.left, 1);
            }
            Turn<std::remove_reference_t<decltype(job)>> turn{&job, std::move(job.queue.front())};
            job.queue.pop_front();
            turns.left -= static_cast<std::int64_t>(turn.batch.count);
            if (job.queue.empty()) {
                turns.in_rotation = false;
                turns.left = 0;
            } else if (turns.left > 0) {
                rotation_.push_front(job_id);  // its turn goes on
            } else {
                rotation_.push_back(job_id);
            }
            return turn;
        }
        return {};
    }

private:
    std::deque<std::uint64_t> rotation_;  // jobs with queued batches, served in turn
};

}  // namespace dtask::detail
