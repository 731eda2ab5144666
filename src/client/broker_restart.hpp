#pragma once
// Broker restart: a client that loses the broker that welcomed it (silence, or `reconnect`)
// keeps its jobs and says hello again, for up to the grace period
// (ClientOptions::broker_restart_grace). The next welcome's incarnation tells a restarted
// broker, to which the jobs are registered again, from the same broker that dropped this
// client, whose jobs are gone: they fail. The grace counts from the loss until a job hears a
// result again, or the session has held for a grace period: a broker that keeps coming back
// and vanishing uses up one grace period, not one per return. It decides; the connection and
// the loop act.

#include <chrono>
#include <cstdint>
#include <optional>

namespace dtask::detail {

class BrokerRestart {
public:
    using Clock = std::chrono::steady_clock;

    /// What a welcome means for the jobs running.
    enum class Welcome {
        carry_on,   // the first welcome, or one not after a loss: the jobs go on as they are
        resume,     // a restarted broker: register the jobs again and send what is not back
        forgotten,  // the same broker dropped this client, and its jobs with it: they fail
    };

    /// `grace`: how long the jobs wait for a lost broker; 0: they fail at once.
    explicit BrokerRestart(std::chrono::milliseconds grace) noexcept : grace_(grace) {}

    std::chrono::milliseconds grace() const noexcept { return grace_; }
    /// Whether the client waits for its broker to come back: its jobs send nothing meanwhile.
    bool waiting() const noexcept { return waiting_; }
    /// Whether a restart is behind the jobs until they hear a result (heard() is then due).
    bool resumed() const noexcept { return resumed_; }

    /// The broker was lost at `now`: true to wait for it, false to fail the jobs now (no
    /// grace, or no broker ever welcomed this client: its endpoint may be wrong).
    bool lost(Clock::time_point now) noexcept {
        if (grace_.count() <= 0 || incarnation_ == 0)
            return false;
        // Lost again soon after a restart that brought no result: the same wait goes on.
        if (!counting_ || (!waiting_ && now - resumed_at_ >= grace_)) {
            counting_ = true;
            lost_at_ = now;
        }
        waiting_ = true;
        return true;
    }

    /// A welcome from the broker of `incarnation` (never 0) at `now`.
    Welcome welcomed(std::uint64_t incarnation, Clock::time_point now) noexcept {
        const std::uint64_t before = incarnation_;
        incarnation_ = incarnation;
        if (!waiting_)
            return Welcome::carry_on;
        waiting_ = false;
        if (incarnation == before) {
            counting_ = false;
            resumed_ = false;
            return Welcome::forgotten;
        }
        resumed_ = true;
        resumed_at_ = now;
        return Welcome::resume;
    }

    /// A job heard a result after a restart: the broker is back for good.
    void heard() noexcept {
        resumed_ = false;
        counting_ = false;
    }

    /// While waiting: how long since the broker was lost, once that is the grace period or
    /// more; then the wait ends (the jobs fail), and the next loss starts a new one.
    std::optional<std::chrono::milliseconds> expired(Clock::time_point now) noexcept {
        if (!waiting_ || now - lost_at_ < grace_)
            return std::nullopt;
        const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(now - lost_at_);
        waiting_ = false;
        resumed_ = false;
        counting_ = false;
        return waited;
    }

private:
    std::chrono::milliseconds grace_;
    std::uint64_t incarnation_ = 0;  // of the broker that last welcomed this client; 0: none
    bool waiting_ = false;           // lost, and no welcome since
    bool resumed_ = false;           // after a restart, until a result
    bool counting_ = false;          // a wait is under way (lost_at_ holds when it began)
    Clock::time_point lost_at_{};
    Clock::time_point resumed_at_{};  // the last restart's welcome
};

}  // namespace dtask::detail
