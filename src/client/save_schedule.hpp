#pragma once
// When a checkpoint is written: at most once per interval, and only if something was folded
// since the last write, never per subtask; when the run is left unfinished (it failed or was
// cancelled), once more if something is unsaved. It decides; the checkpoint's writer writes.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace dtask::detail {

class SaveSchedule {
public:
    using Clock = std::chrono::steady_clock;
    /// The least interval: a shorter RunOptions::checkpoint_interval counts as this.
    static constexpr std::chrono::milliseconds min_interval{10};

    /// The first look is an interval after `start`.
    SaveSchedule(std::chrono::milliseconds interval, Clock::time_point start) noexcept
        : interval_(std::max(interval, min_interval)), next_(start + interval_) {}

    std::chrono::milliseconds interval() const noexcept { return interval_; }
    /// When the writer looks next.
    Clock::time_point next_look() const noexcept { return next_; }
    /// Whether to write at `now`, with `unsaved` subtasks folded since the last write.
    bool due(Clock::time_point now, std::uint64_t unsaved) const noexcept {
        return unsaved > 0 && now >= next_;
    }
    /// The writer looked at `now` (and wrote if it was due): the next look is an interval on.
    void looked(Clock::time_point now) noexcept { next_ = now + interval_; }
    /// Whether a run left unfinished writes once more.
    static bool due_at_end(std::uint64_t unsaved) noexcept { return unsaved > 0; }

private:
    std::chrono::milliseconds interval_;
    Clock::time_point next_;
};

}  // namespace dtask::detail
