#pragma once
// What a worker's map is running now, shared between the thread that runs it and the pulse
// thread that enforces the job's subtask timeout (a thread stuck in map cannot enforce it).

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

#include "wire/deadline.hpp"

namespace dtask::detail {

class SubtaskWatch {
public:
    using Clock = std::chrono::steady_clock;

    struct Running {
        std::uint64_t job = 0;
        std::uint64_t index = 0;
        std::chrono::milliseconds timeout{0};
        Clock::time_point deadline;
    };

    void start(std::uint64_t job, std::uint64_t index, std::chrono::milliseconds timeout) {
        std::lock_guard lock(mutex_);
        // Saturating: a timeout of milliseconds::max() means none, not an overflow.
        running_ = Running{job, index, timeout, deadline_after(Clock::now(), timeout)};
    }
    void stop() {
        std::lock_guard lock(mutex_);
        running_.reset();
    }
    std::optional<Running> running() const {
        std::lock_guard lock(mutex_);
        return running_;
    }

private:
    mutable std::mutex mutex_;
    std::optional<Running> running_;
};

}  // namespace dtask::detail
