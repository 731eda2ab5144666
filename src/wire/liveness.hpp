#pragma once
// Liveness, one rule for the broker, the client and the worker: a peer is silent when nothing
// came from it for interval × liveness, counted up to the last moment the reader knows it
// has read everything: now if nothing waits unread, else when a receive last found the
// socket empty; and only from the end of the reader's own last stall. A reader that stalled
// (descheduled, stopped, busy) blames no peer for it. A quiet peer whose connection keeps
// receiving data is moving, not silent: its heartbeats wait behind a big message on a slow
// link (judge(), wire/connection_progress).

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "wire/connection_progress.hpp"
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
        const auto since = std::max(last_heard, attentive_since_);
        if (now - since <= silence())
            return false;
        const auto read_all_until = unread() ? last_drained : now;
        return read_all_until - since > silence();
    }

    /// What a look at a peer finds: heard from lately; not, but its connection is receiving
    /// bytes (the caller counts it heard now); or silent.
    enum class Verdict { heard, moving, silent };

    /// silent(), with progress counted as life. While a peer has been quiet for an interval
    /// (half the silence, if less), each judgement looks at its connection: data received
    /// since the last look of this quiet spell makes it `moving`, heard now. So a peer whose
    /// big message is arriving is silent only after a whole silence without a byte.
    template <class Unread>
    Verdict judge(Clock::time_point last_heard, Clock::time_point now, Unread&& unread,
                  Clock::time_point last_drained, ConnectionProgress& progress) const {
        const auto since = std::max(last_heard, attentive_since_);
        if (now - since > std::min<Clock::duration>(interval_, silence() / 2) &&
            progress.advanced(since, now))
            return Verdict::moving;
        return silent(last_heard, now, unread, last_drained) ? Verdict::silent : Verdict::heard;
    }

    /// Notes a wake-up at `now` of a loop that planned to wake at `planned`. Later by more
    /// than an interval, the reader itself stalled: what peers sent meanwhile may still be on
    /// its way in (ZeroMQ's I/O thread stalled too), so silence counts again from now.
    void woke(Clock::time_point planned, Clock::time_point now) noexcept {
        if (now - planned > interval_)
            attentive_since_ = now;
    }

    /// Takes the broker's settings from its welcome; a zero keeps the current one. Both are
    /// bounded, so that the silence a broker sets cannot overflow a duration.
    void adopt(const protocol::Inbound& welcome) noexcept {
        if (welcome.fields[0] > 0)
            set_interval(std::chrono::milliseconds(
                std::min<std::uint64_t>(welcome.fields[0], max_interval_ms)));
        if (welcome.fields[1] > 0)
            liveness_ =
                static_cast<unsigned>(std::min<std::uint64_t>(welcome.fields[1], max_liveness));
    }

    /// Heartbeats at `interval` from now on: a broker's pace message (range checked by parse),
    /// or the broker's own pace.
    void set_interval(std::chrono::milliseconds interval) noexcept {
        interval_ = std::clamp(interval, std::chrono::milliseconds(1),
                               std::chrono::milliseconds(max_interval_ms));
    }

    /// Bounds of what a welcome may set: an hour between heartbeats, 1,000 of them missed.
    static constexpr std::uint64_t max_interval_ms = protocol::max_heartbeat_interval_ms;
    static constexpr std::uint64_t max_liveness = protocol::max_heartbeat_liveness;

private:
    std::chrono::milliseconds interval_;
    unsigned liveness_;
    Clock::time_point attentive_since_{};  // the end of the reader's last stall
};

}  // namespace dtask::detail
