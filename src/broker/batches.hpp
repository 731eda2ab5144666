#pragma once
// Batches: a run of one job's subtasks [first, first + count), their payloads packed in one
// frame. A QueuedBatch waits in a job's queue; a HeldBatch is one a worker holds, kept so that
// what it has not answered can run again if the worker is lost.

#include <chrono>
#include <cstdint>

#include <zmq.hpp>

#include "wire/batch.hpp"

namespace dtask::detail {

/// A batch waiting in a job's queue (or quarantine) for a worker.
struct QueuedBatch {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    zmq::message_t payload;  // the whole task message: its header has the broker's job id
};

/// A batch a worker holds. Its results come back in order, in runs: `next` is the first
/// subtask whose result has not.
struct HeldBatch {
    using Clock = std::chrono::steady_clock;

    std::uint64_t job = 0;
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    std::uint64_t next = 0;
    zmq::message_t payload;
    Clock::time_point sent;
    std::int64_t expected_ns = 0;  // map time, from its job's so far (expected_work_ns)
    bool job_ended = false;        // its job ended while the worker held it (Credits::stuck)

    std::uint64_t end() const noexcept { return first + count; }
    bool contains(std::uint64_t job_id, std::uint64_t index) const noexcept {
        return job == job_id && index >= first && index < end();
    }
};

/// What a held batch had left when its worker stopped: [next, end), to run again.
inline QueuedBatch remainder(HeldBatch& batch) {
    if (batch.next == batch.first)
        return QueuedBatch{batch.first, batch.count, std::move(batch.payload)};
    return QueuedBatch{batch.next, batch.end() - batch.next,
                       slice_batch(batch.payload, batch.next - batch.first, batch.count)};
}

}  // namespace dtask::detail
