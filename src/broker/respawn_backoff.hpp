#pragma once
// Respawn backoff: when to replace a local worker that died. Replacements never stop while the
// host lives; deaths in a row only slow them down (at once the first few times, then a delay
// that doubles up to a cap), and a worker that lived long enough ends the row. Deaths before
// joining, many in a row, are a fork loop: jobs waiting for workers are failed at once.

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace dtask::detail {

/// The bounds of RespawnBackoff: they limit the rate of replacements, never their number.
struct RespawnLimits {
    using Duration = std::chrono::steady_clock::duration;
    /// Deaths in a row replaced at once.
    unsigned at_once = 3;
    /// The delay after the first death past `at_once`, doubled with each death after it...
    Duration first_delay = std::chrono::milliseconds(100);
    /// ...up to this.
    Duration max_delay = std::chrono::seconds(30);
    /// A worker that lived this long died of something else than a crash loop: the row ends.
    Duration calm_after = std::chrono::seconds(10);
    /// Deaths before joining in a row (no worker joined in between) that make a fork loop.
    unsigned fork_loop_after = 5;
};

/// Decides, for each death of a local worker, when its replacement starts. Pure: the clock is
/// passed in, and the caller acts on the decision.
class RespawnBackoff {
public:
    using Clock = std::chrono::steady_clock;

    struct Decision {
        Clock::duration delay{};        // start the replacement this long after the death
        bool pause_begins = false;      // the first delayed replacement of this row: say why once
        bool fork_loop_begins = false;  // this death makes the row a fork loop: say so once
    };

    explicit RespawnBackoff(RespawnLimits limits = {}) : limits_(limits) {}

    /// A local worker died at `now` after living `lived`; `joined`: it had said hello.
    Decision on_death(Clock::time_point now, Clock::duration lived, bool joined) {
        if (lived >= limits_.calm_after)
            end_row();
        if (deaths_in_a_row_ == 0)
            row_began_ = now;
        ++deaths_in_a_row_;
        early_deaths_in_a_row_ = joined ? 0 : early_deaths_in_a_row_ + 1;

        Decision decision;
        decision.delay = delay_after(deaths_in_a_row_);
        decision.pause_begins = decision.delay > Clock::duration::zero() && !paused_;
        paused_ = paused_ || decision.pause_begins;
        decision.fork_loop_begins = fork_loop() && !fork_loop_said_;
        fork_loop_said_ = fork_loop_said_ || decision.fork_loop_begins;
        return decision;
    }

    /// A local worker joined: deaths before joining no longer form a fork loop.
    void on_join() noexcept {
        early_deaths_in_a_row_ = 0;
        fork_loop_said_ = false;
    }

    /// Whether the last deaths were a fork loop: workers that die before they ever join.
    bool fork_loop() const noexcept { return early_deaths_in_a_row_ >= limits_.fork_loop_after; }
    /// Whether replacements are delayed now (the row went past `at_once`).
    bool paused() const noexcept { return paused_; }
    unsigned deaths_in_a_row() const noexcept { return deaths_in_a_row_; }
    unsigned early_deaths_in_a_row() const noexcept { return early_deaths_in_a_row_; }
    Clock::time_point row_began() const noexcept { return row_began_; }
    const RespawnLimits& limits() const noexcept { return limits_; }

private:
    /// The delay before replacing the `deaths`-th death in a row.
    Clock::duration delay_after(unsigned deaths) const {
        if (deaths <= limits_.at_once)
            return Clock::duration::zero();
        Clock::duration delay = std::min(limits_.first_delay, limits_.max_delay);
        for (unsigned i = limits_.at_once + 1; i < deaths && delay < limits_.max_delay; ++i)
            delay = std::min(delay * 2, limits_.max_delay);
        return delay;
    }
    void end_row() noexcept {
        deaths_in_a_row_ = 0;
        paused_ = false;
    }

    RespawnLimits limits_;
    unsigned deaths_in_a_row_ = 0;
    unsigned early_deaths_in_a_row_ = 0;  // of the row's last deaths, those before joining
    Clock::time_point row_began_{};
    bool paused_ = false;
    bool fork_loop_said_ = false;
};

}  // namespace dtask::detail
