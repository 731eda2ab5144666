#include <algorithm>
#include <utility>

#include <dtask/detail/run_state.hpp>

namespace dtask::detail {

RunState::RunState(std::string job_name, std::string signature, std::string shared,
                   RunOptions run_options, JobOptions job_options)
    : job_name_(std::move(job_name)),
      signature_(std::move(signature)),
      shared_(std::move(shared)),
      run_options_(run_options),
      job_options_(job_options) {}

void RunState::declare_total(std::uint64_t total) noexcept {
    declared_total_.store(total, std::memory_order_relaxed);
    total_known_.store(true, std::memory_order_release);
}

bool RunState::complete(const std::function<void()>& publish) {
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::running)
            return false;
        publish();
        status_ = Status::succeeded;
        cancel_hook_ = nullptr;
    }
    ended_.notify_all();
    return true;
}

bool RunState::fail(std::exception_ptr error) {
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::running)
            return false;
        error_ = std::move(error);
        status_ = Status::failed;
        closing_ = true;
    }
    close_unfinished();
    return true;
}

void RunState::close_unfinished() {
    ended_unfinished();
    {
        std::lock_guard lock(mutex_);
        closing_ = false;
    }
    ended_.notify_all();
}

void RunState::cancel() {
    std::function<void()> hook;
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::running)
            return;
        error_ = std::make_exception_ptr(CancelledError("job '" + job_name_ + "' was cancelled"));
        status_ = Status::failed;
        closing_ = true;
        hook = std::move(cancel_hook_);
        cancel_hook_ = nullptr;
    }
    close_unfinished();
    if (hook)
        hook();
}

bool RunState::set_cancel_hook(std::function<void()> hook) {
    std::lock_guard lock(mutex_);
    if (status_ != Status::running)
        return false;
    cancel_hook_ = std::move(hook);
    return true;
}

bool RunState::finished() const {
    return status_.load(std::memory_order_acquire) != Status::running;
}

void RunState::wait() const {
    std::unique_lock lock(mutex_);
    ended_.wait(lock, [&] { return status_ != Status::running && !reporting_ && !closing_; });
}

bool RunState::wait_until(std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    return ended_.wait_until(
        lock, deadline, [&] { return status_ != Status::running && !reporting_ && !closing_; });
}

std::unique_lock<std::mutex> RunState::wait_for_result() const {
    std::unique_lock lock(mutex_);
    ended_.wait(lock, [&] { return status_ != Status::running && !reporting_ && !closing_; });
    if (status_ == Status::failed)
        std::rethrow_exception(error_);
    return lock;
}

Progress RunState::counts() const noexcept {
    Progress progress;
    progress.done = done_.load(std::memory_order_relaxed);
    progress.total_known = total_known_.load(std::memory_order_acquire);
    progress.total = progress.total_known ? declared_total_.load(std::memory_order_relaxed)
                                          : emitted_.load(std::memory_order_relaxed);
    return progress;
}

Progress RunState::progress() const noexcept {
    using namespace std::chrono;
    Progress progress = counts();
    progress.ended = finished();
    const auto elapsed = steady_clock::now() - submitted_;
    progress.elapsed = duration_cast<milliseconds>(elapsed);
    const double seconds = duration<double>(elapsed).count();
    if (seconds > 0)
        progress.rate = static_cast<double>(progress.done) / seconds;
    if (progress.total_known && progress.done > 0 && progress.rate > 0) {
        const double left =
            static_cast<double>(progress.total - std::min(progress.total, progress.done));
        progress.eta = milliseconds(static_cast<std::int64_t>(left / progress.rate * 1000.0));
    }
    return progress;
}

std::exception_ptr RunState::report_progress(bool last) {
    const auto& callback = run_options_.on_progress;
    if (!callback)
        return nullptr;
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::running)
            return nullptr;
        reporting_ = true;
    }
    Progress progress = this->progress();
    progress.ended = last;
    std::exception_ptr error;
    try {
        callback(progress);
    } catch (...) {
        error = std::current_exception();
    }
    {
        std::lock_guard lock(mutex_);
        reporting_ = false;
    }
    ended_.notify_all();
    return error;
}

}  // namespace dtask::detail
