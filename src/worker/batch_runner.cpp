#include "worker/batch_runner.hpp"

#include <exception>
#include <new>
#include <optional>
#include <typeinfo>

#include <dtask/detail/type_name.hpp>
#include <dtask/error.hpp>

#include "job_registry.hpp"
#include "log.hpp"
#include "wire/failure.hpp"

namespace dtask::detail {

using namespace protocol;

namespace {

/// Tells the pulse thread which batch the main thread runs, for a scope.
class InBatch {
public:
    InBatch(PulseShared& shared, std::uint64_t job, std::uint64_t first) : shared_(shared) {
        shared_.batch_job.store(job, std::memory_order_relaxed);
        shared_.batch_first.store(first, std::memory_order_relaxed);
        shared_.in_batch.store(true, std::memory_order_release);
    }
    ~InBatch() { shared_.in_batch.store(false, std::memory_order_release); }
    InBatch(const InBatch&) = delete;
    InBatch& operator=(const InBatch&) = delete;

private:
    PulseShared& shared_;
};

}  // namespace

void BatchRunner::open_job(Inbound& message) {
    if (shared_.ended(message.fields[0]))
        shared_.has_ended.store(false, std::memory_order_release);  // the id is used again
    OpenJob& job = jobs_[message.fields[0]];
    job.timeout = std::chrono::milliseconds(message.fields[1]);
    const std::string name(as_text(message.body[0]));
    const std::string signature(as_text(message.body[1]));
    job.model = find_job(name);
    if (job.model == nullptr) {
        job.unusable = "this worker does not define job '" + name + "'";
    } else if (job.model->signature() != signature) {
        job.unusable = "this worker was built with a different definition of job '" + name +
                       "' (worker: " + job.model->signature() + "; client: " + signature + ")";
    } else {
        try {
            // A shared object (field 2), decoded once per job type, is the placed data of a
            // map that takes both; for any other map it stands for the data frame.
            const std::uint64_t object = message.fields[2];
            if (job.model->takes_placed() && object == 0)
                throw ProtocolError("the broker sent job '" + name +
                                    "', whose map takes placed data, without a shared object");
            if (object != 0)
                job.placed = shared_objects_.decoded(object, *job.model);
            if (object == 0 || job.model->takes_placed())
                job.shared = job.model->load_shared(as_bytes(message.body[2]));
            else
                job.shared = std::move(job.placed);
        } catch (...) {
            Failure failure;
            describe_current_exception(failure);
            job.unusable = failure.message;
        }
    }
    if (!job.unusable.empty())
        log_warning("worker", worker_name_, job.unusable);
}

/// Runs map on each subtask of a batch, in order, and sends the partial results back as
/// one batch. A failure ends the run of results before it: those go back first, then the
/// failure. After a TransientError the batch goes on (the broker may retry that subtask
/// alone); after any other failure the job fails, so the rest is not run.
BatchRunner::Clock::time_point BatchRunner::run_batch(Inbound& message, Clock::time_point now) {
    sent_at_ = now;
    const std::uint64_t job_id = message.fields[0];
    const std::uint64_t first = message.fields[1];
    const std::uint64_t count = message.fields[2];
    auto it = jobs_.find(job_id);
    if (it == jobs_.end() || !it->second.unusable.empty()) {
        Failure failure;
        failure.worker = worker_name_;
        if (it == jobs_.end()) {
            failure.kind = FailureKind::protocol;
            failure.message = "worker " + worker_name_ + " received subtask " +
                              std::to_string(first) + " of job " + std::to_string(job_id) +
                              " before the job's definition";
        } else {
            failure.kind = FailureKind::definition;
            failure.message = it->second.unusable;
        }
        send_failure(job_id, first, failure);
        return sent_at_;
    }
    const OpenJob& job = it->second;
    const bool watched = job.timeout.count() > 0;
    const InBatch in_batch(shared_, job_id, first);
    BatchReader reader(message.batch);
    Run run(job_id, first, now, run_buffer_);
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t index = first + i;
        if (shared_.ended(job_id)) {
            // The broker dropped the job: the failure gives the rest of the batch back.
            Failure skipped;
            skipped.kind = FailureKind::exception;
            skipped.worker = worker_name_;
            skipped.message = "worker " + worker_name_ + " skipped subtasks " +
                              std::to_string(index) + " and after: the job ended";
            send_run(run);
            send_failure(job_id, index, skipped);
            return sent_at_;
        }
        std::span<const std::byte> subtask;
        try {
            if (!reader.next(subtask, "task batch"))
                throw ProtocolError("malformed task batch: the header says " +
                                    std::to_string(count) + " subtasks, the frame holds " +
                                    std::to_string(i));
        } catch (const ProtocolError& e) {
            Failure failure;
            failure.kind = FailureKind::protocol;
            failure.worker = worker_name_;
            failure.message = "worker " + worker_name_ + ": " + e.what();
            send_run(run);
            send_failure(job_id, index, failure);
            return sent_at_;
        }
        if (watched)
            shared_.watch.start(job_id, index, job.timeout);
        const std::size_t record_start = run.bytes.size();
        run.writer.begin();
        std::optional<Failure> failure;
        try {
            job.model->run_map(job.placed.get(), job.shared.get(), subtask, index,
                               run.writer.out());
            run.writer.end();  // throws for a partial result over 4 GiB
            if (!fits(run, record_start, index))
                throw Error("subtask " + std::to_string(index) + "'s partial result is " +
                            std::to_string(run.bytes.size() - record_start) +
                            " bytes, more than the broker's maximum message size of " +
                            std::to_string(max_message_) +
                            " bytes (dtaskd --max-message-mib, "
                            "ClusterOptions::max_message_bytes)");
        } catch (const TransientError&) {
            failure = current_failure(FailureKind::transient);
        } catch (...) {
            failure = current_failure(FailureKind::exception);
        }
        if (watched)
            shared_.watch.stop();
        if (!failure) {
            ++run.count;
            continue;
        }
        run.writer.abandon();
        send_run(run);
        send_failure(job_id, index, *failure);
        if (failure->kind != FailureKind::transient)
            return sent_at_;
        run.restart(index + 1, sent_at_);
    }
    send_run(run);
    return sent_at_;
}

/// Whether the run, with the record of subtask `index` last (from `record_start`), can go
/// to the broker: if only without that record, the run before it is sent first and the
/// record begins the next. False if the record alone is too large.
bool BatchRunner::fits(Run& run, std::size_t record_start, std::uint64_t index) {
    if (max_message_ == 0 || run.bytes.size() <= max_message_)
        return true;
    const std::size_t record = run.bytes.size() - record_start;
    if (run.count == 0 || record + result_header_room > max_message_)
        return false;
    std::string last = run.bytes.substr(record_start);
    run.bytes.resize(record_start);
    send_run(run);
    run.restart(index, sent_at_);
    run.bytes += last;
    return true;
}

Failure BatchRunner::current_failure(FailureKind kind) const {
    Failure failure;
    failure.kind = kind;
    failure.worker = worker_name_;
    describe_current_exception(failure);
    return failure;
}

/// Sends the results of a run, with the time map took for them (the client sizes its
/// batches by it).
void BatchRunner::send_run(Run& run) {
    if (run.count == 0)
        return;
    const auto now = Clock::now();
    const auto spent = std::chrono::duration_cast<std::chrono::nanoseconds>(now - run.started);
    const std::size_t start = write_batch_header(
        std::as_writable_bytes(std::span(run.bytes).first(result_header_room)), Command::result,
        run.job, {run.first, run.count, static_cast<std::uint64_t>(spent.count())});
    std::array frames{payload_frame(std::move(run.bytes), start)};
    send_frames(frames, now);
}

void BatchRunner::send_failure(std::uint64_t job_id, std::uint64_t index, const Failure& failure) {
    std::array frames{header(Command::failure, {job_id, index}), encode_body(failure)};
    send_frames(frames, Clock::now());
}

void BatchRunner::send_frames(std::span<zmq::message_t> frames, Clock::time_point now) {
    send(broker_, {}, frames);
    shared_.note_sent(now);
    sent_at_ = now;
}

}  // namespace dtask::detail
