#pragma once
/// \file The state of one submitted job, shared by its JobHandle (any thread), the client's
/// I/O thread, which sends subtasks and takes results, and the job's strand, which splits and
/// folds partial results (or, for Cluster::run, the calling thread, which does both).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include <dtask/error.hpp>
#include <dtask/export.hpp>
#include <dtask/options.hpp>

namespace dtask::detail {

class SharedObject;  // dtask/shared.hpp

class DTASK_EXPORT RunState {
public:
    RunState(std::string job_name, std::string signature, std::string shared,
             RunOptions run_options, JobOptions job_options);
    virtual ~RunState() = default;
    RunState(const RunState&) = delete;
    RunState& operator=(const RunState&) = delete;

    const std::string& job_name() const noexcept { return job_name_; }
    const std::string& signature() const noexcept { return signature_; }
    const std::string& shared() const noexcept { return shared_; }
    /// The shared object used as job-wide data instead of shared(), or null.
    const SharedObject* shared_object() const noexcept { return shared_object_.get(); }
    /// Before the run is handed to the client: its job-wide data is `object`.
    void use_shared_object(std::shared_ptr<const SharedObject> object) noexcept {
        shared_object_ = std::move(object);
    }
    const RunOptions& run_options() const noexcept { return run_options_; }
    const JobOptions& job_options() const noexcept { return job_options_; }

    // ---- one thread at a time: the job's strand, or the thread that drives the job ----
    /// Serializes the next piece of split into `out`; false once split has no more.
    virtual bool next_subtask(std::string& out) = 0;
    /// Folds the partial result of one subtask into the accumulator.
    virtual void fold(std::span<const std::byte> partial, std::uint64_t index) = 0;
    /// Publishes the accumulator as the result.
    virtual void finish() = 0;
    /// The job-wide data is a shared object of these bytes (RunOptions::checkpoint checks
    /// them as it checks the input). Before the run is handed to the client.
    virtual void confirm_shared(const std::string& bytes) { (void)bytes; }
    void count_emitted(std::uint64_t count) noexcept {
        emitted_.fetch_add(count, std::memory_order_relaxed);
    }
    void count_done() noexcept { done_.fetch_add(1, std::memory_order_relaxed); }
    /// Split has produced its last piece: the total is what was emitted.
    void declare_total(std::uint64_t total) noexcept;

    // ---- any thread ----
    /// Ends the job with an error, unless it has ended already. Returns whether it did.
    bool fail(std::exception_ptr error);
    bool finished() const;
    void wait() const;
    bool wait_until(std::chrono::steady_clock::time_point deadline) const;
    /// Done, total and total_known only: cheap enough for every batch.
    Progress counts() const noexcept;
    /// The counts, with the time since submission, the rate and the time left.
    Progress progress() const noexcept;
    /// On the thread that drives the job: calls RunOptions::on_progress with the progress
    /// (`last`: marked as the end) unless the job has ended. Returns what it threw, or null.
    std::exception_ptr report_progress(bool last);
    /// Fails the job with CancelledError and tells the client to drop its subtasks.
    void cancel();
    /// Set by the client when it takes the job: how cancel() reaches the I/O thread.
    /// False (and no hook kept) if the job has already ended, e.g. was cancelled.
    bool set_cancel_hook(std::function<void()> hook);

protected:
    /// The job failed or was cancelled (on the thread that ended it, before get() returns):
    /// a checkpoint writes what is unsaved and lets go of its file.
    virtual void ended_unfinished() noexcept {}
    /// Ends the job with a result; `publish` stores it, under the lock. False if it had ended.
    bool complete(const std::function<void()>& publish);
    /// Waits for the end (and for a progress report in progress), then rethrows the error if there
    /// was one (under the lock).
    std::unique_lock<std::mutex> wait_for_result() const;

private:
    enum class Status { running, succeeded, failed };

    /// After the job failed: ended_unfinished(), then waiting for the end is over.
    void close_unfinished();

    std::string job_name_;
    std::string signature_;
    std::string shared_;
    std::shared_ptr<const SharedObject> shared_object_;
    RunOptions run_options_;
    JobOptions job_options_;

    std::atomic<std::uint64_t> done_{0};
    std::atomic<std::uint64_t> emitted_{0};
    std::atomic<std::uint64_t> declared_total_{0};
    std::atomic<bool> total_known_{false};
    std::chrono::steady_clock::time_point submitted_ = std::chrono::steady_clock::now();

    mutable std::mutex mutex_;
    mutable std::condition_variable ended_;
    // Changed under mutex_; atomic so that finished(), asked for every result, takes no lock.
    std::atomic<Status> status_{Status::running};
    std::exception_ptr error_;
    std::function<void()> cancel_hook_;
    bool reporting_ = false;  // on_progress runs: waiting for the end waits for it too
    bool closing_ = false;    // ended_unfinished() runs: so does waiting for the end
};

/// The part of a run that knows the result type, so JobHandle<T> can take the result.
template <class T>
class ResultState : public RunState {
public:
    using RunState::RunState;

    /// Blocks until the job ends; returns the result or throws its error. Once only.
    T take_result() {
        auto lock = wait_for_result();
        if (!result_)
            throw Error("the result of job '" + job_name() + "' was already taken");
        T value = std::move(*result_);
        result_.reset();
        return value;
    }

protected:
    bool publish(T&& value) {
        return complete([&] { result_.emplace(std::move(value)); });
    }

private:
    std::optional<T> result_;
};

}  // namespace dtask::detail

// JobHandle holds a run. Included last, so that either header may come first.
#include <dtask/job_handle.hpp>
