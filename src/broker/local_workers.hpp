#pragma once
// Local workers: the worker processes a Cluster's broker starts itself, watched through their
// pidfds and replaced when they die: at once the first few times in a row, then after a
// backoff that doubles, and not at all after max_restarts_in_a_row deaths in a row (a worker
// that cannot live must not turn the host into a fork loop). RespawnSchedule decides when.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>

#include "broker/batches.hpp"
#include "process.hpp"

namespace dtask::detail {

/// Local worker deaths in a row after which the cluster stops replacing them.
constexpr unsigned max_restarts_in_a_row = 20;

/// A death this long after the one before starts a new row; a worker that served this long
/// died of something else than a crash loop.
constexpr auto new_row_after = std::chrono::seconds(30);

/// When to replace a local worker that died: the first 3 deaths in a row at once, then after
/// 100 ms, doubling with each death up to 2 s; after max_restarts_in_a_row, never.
class RespawnSchedule {
public:
    using Clock = std::chrono::steady_clock;

    struct Decision {
        bool respawn = false;     // start a replacement...
        Clock::duration delay{};  // ...this long after the death
        bool stopped = false;     // this death is the one that stops the replacements
    };

    /// A local worker died at `now`.
    Decision on_death(Clock::time_point now);
    /// A local worker that joined at `joined` dies at `now` (before on_death).
    void on_death_of_joined(Clock::time_point joined, Clock::time_point now) {
        if (now - joined > new_row_after)
            deaths_in_a_row_ = 0;
    }
    unsigned deaths_in_a_row() const noexcept { return deaths_in_a_row_; }

private:
    Clock::time_point last_death_;
    unsigned deaths_in_a_row_ = 0;
};

class LocalWorkers {
public:
    using Clock = std::chrono::steady_clock;

    /// `published`: the pids of the local workers, kept under `mutex` for other threads.
    LocalWorkers(const std::vector<std::string>& endpoints, unsigned credits, std::mutex& mutex,
                 std::vector<pid_t>& published);
    ~LocalWorkers();
    LocalWorkers(const LocalWorkers&) = delete;
    LocalWorkers& operator=(const LocalWorkers&) = delete;

    /// Readable when a local worker exited: the pidfds, watched as one (a poll costs the same
    /// for 1 or 100 of them).
    int exits_fd() const noexcept { return exits_fd_; }

    /// Starts a worker of the broker's first endpoint; logs a failure.
    void spawn();
    /// Whether `pid` is a child of this broker: only those are local workers.
    bool is_child(std::int64_t pid) const;
    /// A local worker said hello.
    void joined(std::int64_t pid, Clock::time_point now);

    struct Exit {
        pid_t pid = -1;
        std::string how;  // "exited with status 3", ...
        bool had_joined = false;
    };
    /// Reaps the local workers that exited, calls `on_exit(exit)` for each and schedules its
    /// replacement.
    template <class OnExit>
    void on_exits(OnExit&& on_exit) {
        std::array<epoll_event, 16> exited{};  // more wait for the next poll
        const int count = epoll_wait(exits_fd_, exited.data(), exited.size(), 0);
        for (int i = 0; i < count; ++i) {
            std::optional<Exit> exit = reap(exited[static_cast<std::size_t>(i)].data.fd);
            if (!exit)
                continue;
            on_exit(*exit);
            schedule_respawn();
        }
    }
    /// A local worker ended before it joined: says why, for the failures of jobs waiting.
    void exited_early(const Exit& exit);

    /// When the next replacement is due, or `otherwise` if sooner or none is.
    Clock::time_point wake_at(Clock::time_point otherwise) const {
        return respawns_.empty() ? otherwise : std::min(otherwise, respawns_.front());
    }
    /// Starts the replacements due at `now`.
    void respawn_due(Clock::time_point now);

    /// Stops every local worker (SIGTERM, SIGKILL after `grace`) and reaps it.
    void stop(std::chrono::milliseconds grace);

    const std::string& early_exits() const noexcept { return early_exits_; }
    const std::string& restarts_stopped() const noexcept { return restarts_stopped_; }

private:
    std::optional<Exit> reap(int pidfd);
    void schedule_respawn();

    const std::vector<std::string>& endpoints_;
    unsigned credits_;
    std::mutex& mutex_;
    std::vector<pid_t>& published_;
    std::vector<ChildProcess> children_;
    int exits_fd_ = -1;
    std::unordered_map<std::int64_t, Clock::time_point> joined_pids_;  // joined at
    std::deque<Clock::time_point> respawns_;  // when to start a replacement, in order
    RespawnSchedule schedule_;
    std::string early_exits_;       // why the last local worker that never joined ended
    std::string restarts_stopped_;  // why no local worker is started any more
};

}  // namespace dtask::detail
