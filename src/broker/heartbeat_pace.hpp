#pragma once
// Heartbeat pace: how often the broker heartbeats its peers, from how many there are. Each
// heartbeat is a message out and, from the peer, one back in; with a thousand peers at the
// configured interval they would take a fifth of a core. So at most `per_second` go out each
// second: the interval doubles from the configured one as peers join (up to max_doublings
// times) and halves again as they leave, with a margin so that a count near a step does not
// flap. Silence is judged with the longer interval until every peer has heard of a shorter
// one and had time to keep it.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace dtask::detail {

class HeartbeatPace {
public:
    using Clock = std::chrono::steady_clock;

    /// The interval doubles at most this many times: 32 × the configured one.
    static constexpr unsigned max_doublings = 5;

    /// `base`: the configured interval; `per_second`: heartbeats sent each second at most
    /// (0: no bound, always `base`).
    HeartbeatPace(std::chrono::milliseconds base, unsigned liveness, unsigned per_second) noexcept
        : base_(base), liveness_(liveness), per_second_(per_second) {}

    /// Takes the number of peers heartbeated at `now`; true if the interval changed, which
    /// the peers must then be told.
    bool update(std::size_t peers, Clock::time_point now) noexcept {
        const unsigned before = doublings_;
        while (doublings_ < max_doublings && too_many(peers, interval_of(doublings_)))
            ++doublings_;
        // Halved only if the shorter interval would keep a quarter of the budget spare.
        while (doublings_ > 0 && !too_many(peers + peers / 3, interval_of(doublings_ - 1)))
            --doublings_;
        if (doublings_ < before) {
            // Peers heartbeat at the longer interval until they hear of the shorter one (at
            // the next tick at most) and then within one shorter interval.
            const auto longer = std::max(judged(now), interval_of(before));
            longer_ = longer;
            longer_until_ = now + longer * liveness_ + 2 * interval();
        }
        return doublings_ != before;
    }

    /// The interval to heartbeat at and to tell peers.
    std::chrono::milliseconds interval() const noexcept { return interval_of(doublings_); }
    /// The interval silence is judged with at `now` (× liveness).
    std::chrono::milliseconds judged(Clock::time_point now) const noexcept {
        return now < longer_until_ ? std::max(longer_, interval()) : interval();
    }

private:
    std::chrono::milliseconds interval_of(unsigned doublings) const noexcept {
        return base_ * (std::int64_t{1} << doublings);
    }
    /// Whether `peers` heartbeats every `interval` exceed the budget.
    bool too_many(std::size_t peers, std::chrono::milliseconds interval) const noexcept {
        return per_second_ != 0 &&
               static_cast<double>(peers) * 1000.0 >
                   static_cast<double>(per_second_) * static_cast<double>(interval.count());
    }

    std::chrono::milliseconds base_;
    unsigned liveness_;
    unsigned per_second_;
    unsigned doublings_ = 0;
    std::chrono::milliseconds longer_{0};
    Clock::time_point longer_until_{};
};

}  // namespace dtask::detail
