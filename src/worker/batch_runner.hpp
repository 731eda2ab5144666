#pragma once
// The part of a worker that runs map: it opens jobs (their definition and job-wide data),
// runs batches of subtasks in order and sends their results, or failures, to the broker.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>

#include <zmq.hpp>

#include <dtask/detail/job_model.hpp>

#include "wire/batch.hpp"
#include "wire/protocol.hpp"
#include "worker/shared_table.hpp"
#include "worker/worker_pulse.hpp"

namespace dtask::detail {

class BatchRunner {
public:
    using Clock = std::chrono::steady_clock;

    /// Sends on `broker` (which the caller may replace by a new socket between batches), and
    /// notes each send in `shared` so that the pulse thread knows the link is alive.
    BatchRunner(zmq::socket_t& broker, std::string worker_name, PulseShared& shared)
        : broker_(broker), worker_name_(std::move(worker_name)), shared_(shared) {}

    void open_job(protocol::Inbound& message);
    /// Runs a task message received at `now`; returns the time its last message was sent,
    /// which serves as the next batch's start (the clock is read once per batch).
    Clock::time_point run_batch(protocol::Inbound& message, Clock::time_point now);
    void end_job(std::uint64_t job) { jobs_.erase(job); }
    /// The largest frame the broker takes (its welcome says; 0: no bound): a run of results
    /// is sent in parts below it, and a partial result larger fails its subtask.
    void set_max_message(std::uint64_t bytes) noexcept { max_message_ = bytes; }
    /// The shared objects the broker placed here (share, unshare).
    SharedTable& shared_objects() noexcept { return shared_objects_; }
    /// A new session with the broker: the old one's jobs will not be ended, nor its shared
    /// objects released.
    void forget_all() {
        jobs_.clear();
        shared_objects_.clear();
    }

private:
    struct OpenJob {
        const JobModel* model = nullptr;
        std::shared_ptr<const void> placed;  // a shared object, for a map that takes both
        std::shared_ptr<const void> shared;
        std::string unusable;                  // why this worker cannot run it, if it cannot
        std::chrono::milliseconds timeout{0};  // RunOptions::subtask_timeout; 0: none
    };

    /// Consecutive partial results of one batch, on their way back as one message.
    struct Run {
        /// `buffer`: the runner's, whose memory a small run reuses from batch to batch.
        Run(std::uint64_t job_id, std::uint64_t first_index, Clock::time_point now,
            std::string& buffer)
            : job(job_id), first(first_index), bytes(buffer), started(now) {
            bytes.assign(protocol::result_header_room, '\0');
        }
        void restart(std::uint64_t next, Clock::time_point now) {
            first = next;
            count = 0;
            bytes.assign(protocol::result_header_room, '\0');
            started = now;
        }

        std::uint64_t job;
        std::uint64_t first;
        std::uint64_t count = 0;
        std::string& bytes;  // send_run writes the header in front
        BatchWriter writer{bytes};
        Clock::time_point started;
    };

    void send_run(Run& run);
    void send_failure(std::uint64_t job_id, std::uint64_t index, const protocol::Failure& failure);
    void send_frames(std::span<zmq::message_t> frames, Clock::time_point now);
    /// A failure of `kind`: the exception being handled, on this worker.
    protocol::Failure current_failure(protocol::FailureKind kind) const;

    bool fits(Run& run, std::size_t record_start, std::uint64_t index);

    std::uint64_t max_message_ = 0;  // the broker's bound on a frame, 0: none
    std::string run_buffer_;         // of the run being built
    Clock::time_point sent_at_;      // when the last message was sent
    zmq::socket_t& broker_;
    std::string worker_name_;
    PulseShared& shared_;
    std::unordered_map<std::uint64_t, OpenJob> jobs_;
    SharedTable shared_objects_;
};

}  // namespace dtask::detail
