#pragma once
// The time for loops that handle many small messages: read once per wake-up and then every
// few messages, since a clock read costs as much as a good part of handling a message
// (docs/performance.md).

#include <chrono>

namespace dtask::detail {

class LazyClock {
public:
    using Clock = std::chrono::steady_clock;

    /// Messages handled between two reads: the time is at most this many messages old.
    static constexpr unsigned reads_every = 8;

    /// Reads the clock.
    Clock::time_point fresh() noexcept {
        uses_ = 0;
        return now_ = Clock::now();
    }
    /// The time for the next message: read again every reads_every calls.
    Clock::time_point next() noexcept { return ++uses_ >= reads_every ? fresh() : now_; }
    /// The last time read.
    Clock::time_point last() const noexcept { return now_; }

private:
    Clock::time_point now_ = Clock::now();
    unsigned uses_ = 0;
};

}  // namespace dtask::detail
