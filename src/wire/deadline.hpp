#pragma once
// Deadlines that saturate: a wait of milliseconds::max() means "for ever", and must not
// overflow into a time point in the past.

#include <chrono>

namespace dtask::detail {

/// now + wait, or time_point::max() when that would overflow.
inline std::chrono::steady_clock::time_point deadline_after(
    std::chrono::steady_clock::time_point now, std::chrono::milliseconds wait) {
    using Clock = std::chrono::steady_clock;
    if (wait >=
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::time_point::max() - now))
        return Clock::time_point::max();
    return now + wait;
}

}  // namespace dtask::detail
