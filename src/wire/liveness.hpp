#pragma once
// Liveness, one rule for the broker, the client and the worker: a peer is silent when nothing
// came from it for interval × liveness. Messages still unread may be the very heartbeats in
// question, so there is no verdict while they wait, unless reading has been behind as long.

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "wire/protocol.hpp"

namespace dtask::detail {

class Liveness {
public:
    using Clock = std::chrono::steady_clock;

    Liveness(std::chrono::milliseconds interval, unsigned liveness) noexcept
        : interval_(interval), liveness_(liveness) {}

    std::chrono::milliseconds interval() const noexcept { return interval_; }
    unsigned liveness() const noexcept { return liveness_; }
    /// How long a peer may be silent: interval × liveness.
    Clock::duration silence() const noexcept { return interval_ * liveness_; }

    /// Whether a peer last heard at `last_heard` is silent at `now`. `unread()` says whether
    /// messages wait on the socket (asked only when the peer is overdue); `last_drained` is
    /// when a receive last found the socket empty.
    template <class Unread>
    bool silent(Clock::time_point last_heard, Clock::time_point now, Unread&& unread,
                Clock::time_point last_drained) const {
        return now - last_heard > silence() && (now - last_drained >= silence() || !unread());
    }

    /// Takes the broker's settings from its welcome; a zero keeps the current one. Both are
    /// bounded, so that the silence a broker sets cannot overflow a duration.
    void adopt(const protocol::Inbound& welcome) noexcept {
        if (welcome.fields[0] > 0)
            interval_ = std::chrono::milliseconds(std::min<std::uint64_t>(welcome.fields[0], max_interval_ms));
        if (welcome.fields[1] > 0)
            liveness_ = static_cast<unsigned>(std::min<std::uint64_t>(welcome.fields[1], max_liveness));
    }

    /// Bounds of what a welcome may set: an hour between heartbeats, 1,000 of them missed.
    static constexpr std::uint64_t max_interval_ms = 3'600'000;
    static constexpr std::uint64_t max_liveness = 1000;

private:
    std::chrono::milliseconds interval_;
    unsigned liveness_;
};

}  // namespace dtask::detail
