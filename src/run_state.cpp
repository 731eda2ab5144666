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
    }
    ended_.notify_all();
    return true;
}

void RunState::cancel() {
    std::function<void()> hook;
    {
        std::lock_guard lock(mutex_);
        if (status_ != Status::running)
            return;
        error_ = std::make_exception_ptr(CancelledError("job '" + job_name_ + "' was cancelled"));
        status_ = Status::failed;
        hook = std::move(cancel_hook_);
        cancel_hook_ = nullptr;
    }
    ended_.notify_all();
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
    ended_.wait(lock, [&] { return status_ != Status::running; });
}

bool RunState::wait_until(std::chrono::steady_clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    return ended_.wait_until(lock, deadline, [&] { return status_ != Status::running; });
}

std::unique_lock<std::mutex> RunState::wait_for_result() const {
    std::unique_lock lock(mutex_);
    ended_.wait(lock, [&] { return status_ != Status::running; });
    if (status_ == Status::failed)
        std::rethrow_exception(error_);
    return lock;
}

Progress RunState::progress() const noexcept {
    Progress progress;
    progress.done = done_.load(std::memory_order_relaxed);
    progress.total_known = total_known_.load(std::memory_order_acquire);
    progress.total = progress.total_known ? declared_total_.load(std::memory_order_relaxed)
                                          : emitted_.load(std::memory_order_relaxed);
    return progress;
}

}  // namespace dtask::detail
