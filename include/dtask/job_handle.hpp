#pragma once
/// \file
/// dtask::JobHandle<T>: a submitted job, to wait for, watch, cancel, or take the result of.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <dtask/detail/run_state.hpp>

namespace dtask {

/// A submitted job, as submit() returns it: wait for it, watch its progress, cancel it or
/// take its result. Copies refer to the same job, and any thread
/// may use them. The job does not depend on the handle: dropping every copy does not cancel
/// it (it runs to its end and its result is discarded), and a handle may outlive its Cluster
/// or Client (a job still running then fails with Error). Every member but valid() throws
/// Error on a handle that refers to no job.
template <class T>
class JobHandle {
public:
    /// A handle that refers to no job (valid() is false), to assign a submit()'s result to.
    JobHandle() = default;
    /// \cond internal
    explicit JobHandle(std::shared_ptr<detail::ResultState<T>> state) : state_(std::move(state)) {}
    /// \endcond

    /// Blocks until the job ends; returns its result or throws its error (TaskError,
    /// CancelledError, TimeoutError, ...: see error.hpp). Like std::future::get, once only: a
    /// second call, from any copy, throws Error. Never call it from the job's own reduce or
    /// on_progress, which run before the job can end.
    T get() { return state().take_result(); }

    /// Blocks until the job ends, successfully or not; throws nothing for a failed job (get()
    /// then throws its error).
    void wait() const { state().wait(); }

    /// Waits at most `timeout`, any std::chrono duration (duration::max() waits for ever);
    /// true if the job has ended.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> timeout) const {
        using Clock = std::chrono::steady_clock;
        const auto now = Clock::now();
        // Saturate: duration::max() means "for ever", not an overflow into the past.
        if (std::chrono::duration<double>(timeout) >=
            std::chrono::duration<double>(Clock::time_point::max() - now)) {
            state().wait();
            return true;
        }
        return state().wait_until(now + std::chrono::duration_cast<Clock::duration>(timeout));
    }

    /// True once the job has a result or an error; never blocks.
    bool ready() const { return state().finished(); }

    /// Subtasks folded so far, of how many, and how fast: a snapshot, cheap enough to poll.
    Progress progress() const;

    /// Drops the job's queued subtasks and makes get() throw CancelledError. Results still
    /// on their way are ignored; the workers stay in service. No effect on an ended job.
    /// Returns at once, without waiting for the workers; callable from any thread, the job's
    /// own on_progress included.
    void cancel() { state().cancel(); }

    /// Whether the handle refers to a job: false only for a default-constructed one.
    bool valid() const noexcept { return state_ != nullptr; }
    /// The name of the job it refers to.
    const std::string& job_name() const { return state().job_name(); }

private:
    detail::ResultState<T>& state() const {
        if (!state_)
            throw Error("dtask::JobHandle: this handle refers to no job");
        return *state_;
    }

    std::shared_ptr<detail::ResultState<T>> state_;
};

template <class T>
Progress JobHandle<T>::progress() const {
    return state().progress();
}

}  // namespace dtask
