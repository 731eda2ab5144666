#pragma once
/// \file dtask::JobHandle<T>: a submitted job, to wait for, watch, cancel, or take the result of.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include <dtask/detail/run_state.hpp>

namespace dtask {

template <class T>
class JobHandle {
public:
    JobHandle() = default;
    explicit JobHandle(std::shared_ptr<detail::ResultState<T>> state) : state_(std::move(state)) {}

    /// Blocks until the job ends; returns its result or throws its error (TaskError,
    /// CancelledError, TimeoutError, ...). Like std::future::get, once only.
    T get() { return state().take_result(); }

    /// Blocks until the job ends, successfully or not.
    void wait() const { state().wait(); }

    /// Waits at most `timeout`; true if the job has ended.
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

    /// True once the job has a result or an error.
    bool ready() const { return state().finished(); }

    /// Subtasks folded so far, of how many, and how fast.
    Progress progress() const;

    /// Drops the job's queued subtasks and makes get() throw CancelledError. Results still
    /// on their way are ignored; the workers stay in service. No effect on an ended job.
    void cancel() { state().cancel(); }

    bool valid() const noexcept { return state_ != nullptr; }
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
