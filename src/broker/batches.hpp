#pragma once
// Batches: a run of one job's subtasks [first, first + count), their payloads packed in one
// frame. A QueuedBatch waits in a job's queue; a HeldBatch is one a worker holds, kept so that
// what it has not answered can run again if the worker is lost.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include <zmq.hpp>

#include "wire/batch.hpp"

namespace dtask::detail {

/// A batch waiting in a job's queue (or quarantine) for a worker.
struct QueuedBatch {
    std::uint64_t first = 0;
    std::uint64_t count = 0;
    zmq::message_t payload;  // the whole task message: its header has the broker's job id
};

/// Batches waiting for a worker, the first to go first, and the bytes they hold. Every
/// change to a job's queue or quarantine goes through here, so that its client's queued
/// bytes (Jobs::queued_bytes, for ClientLimits) are counted in one place.
class BatchQueue {
public:
    BatchQueue() = default;
    BatchQueue(BatchQueue&& other) noexcept
        : batches_(std::move(other.batches_)),
          bytes_(std::exchange(other.bytes_, 0)),
          total_(std::exchange(other.total_, nullptr)) {
        other.batches_.clear();
    }
    BatchQueue& operator=(BatchQueue&& other) noexcept {
        if (this != &other) {
            add_total(0, bytes_);
            batches_ = std::move(other.batches_);
            other.batches_.clear();
            bytes_ = std::exchange(other.bytes_, 0);
            total_ = std::exchange(other.total_, nullptr);
        }
        return *this;
    }
    ~BatchQueue() { add_total(0, bytes_); }

    /// Counts its bytes into `total` too from now on (its client's); it must outlive this.
    void count_into(std::size_t* total) noexcept {
        add_total(0, bytes_);
        total_ = total;
        add_total(bytes_, 0);
    }

    bool empty() const noexcept { return batches_.empty(); }
    std::size_t size() const noexcept { return batches_.size(); }
    /// Bytes of the batches' frames.
    std::size_t bytes() const noexcept { return bytes_; }
    const QueuedBatch& front() const { return batches_.front(); }
    const QueuedBatch& back() const { return batches_.back(); }
    const QueuedBatch& operator[](std::size_t i) const { return batches_[i]; }
    auto begin() const noexcept { return batches_.begin(); }
    auto end() const noexcept { return batches_.end(); }

    void push_back(QueuedBatch batch) {
        const std::size_t size = batch.payload.size();
        batches_.push_back(std::move(batch));
        add(size);
    }
    void push_front(QueuedBatch batch) {
        const std::size_t size = batch.payload.size();
        batches_.push_front(std::move(batch));
        add(size);
    }
    /// Takes the first batch out (the queue must not be empty).
    QueuedBatch take_front() {
        QueuedBatch batch = std::move(batches_.front());
        batches_.pop_front();
        const std::size_t size = batch.payload.size();
        bytes_ -= size;
        add_total(0, size);
        return batch;
    }

private:
    void add(std::size_t size) noexcept {
        bytes_ += size;
        add_total(size, 0);
    }
    void add_total(std::size_t plus, std::size_t minus) noexcept {
        if (total_ != nullptr)
            *total_ = *total_ + plus - minus;
    }

    std::deque<QueuedBatch> batches_;
    std::size_t bytes_ = 0;
    std::size_t* total_ = nullptr;  // its client's queued bytes, or null
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
    std::uint8_t kind = 0;         // a BatchKind, for the task stream
    std::uint64_t map_ns = 0;      // map time its worker reported for its results so far

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

/// What a run of results is to the batches a worker holds (fit_run).
enum class RunFit {
    continues,  // the next results of one of them: accepted
    stale,      // of no batch it holds (revoked, requeued, its job ended): ignored
    wrong,      // inside a batch it holds but not where that batch goes on: a protocol error
};

/// Which held batch a run of `job`'s results [first, first + count) continues (`batch`),
/// and if none, why (`why`, naming the batch). An honest worker answers its batches in order, each
/// in runs that start at its next index: a run that starts elsewhere in a batch it holds would skip
/// or repeat subtasks, and one that goes past its batch's end would answer subtasks it was
/// not given. Failures (a run of one) follow the same rule. `count` is at least 1 and
/// first + count does not wrap (protocol::parse checks both).
inline RunFit fit_run(std::deque<HeldBatch>& held, std::uint64_t job, std::uint64_t first,
                      std::uint64_t count, std::deque<HeldBatch>::iterator& batch,
                      std::string& why) {
    const auto span = [&](const HeldBatch& held_batch) {
        return "job " + std::to_string(job) + "'s batch of subtasks " +
               std::to_string(held_batch.first) + " to " + std::to_string(held_batch.end() - 1);
    };
    HeldBatch* inside = nullptr;
    for (auto it = held.begin(); it != held.end(); ++it) {
        if (!it->contains(job, first))
            continue;
        if (it->next == first) {
            if (count > it->end() - first) {
                why = "the run goes past the end of " + span(*it);
                return RunFit::wrong;
            }
            batch = it;
            return RunFit::continues;
        }
        if (inside == nullptr)
            inside = &*it;
    }
    if (inside == nullptr)
        return RunFit::stale;
    why = span(*inside) + " expects subtask " + std::to_string(inside->next) + " next";
    return RunFit::wrong;
}

}  // namespace dtask::detail
