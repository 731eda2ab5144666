#pragma once
// Local workers: the worker processes a Cluster's broker starts itself, watched through their
// pidfds and replaced when they die, for as long as the host lives: RespawnBackoff decides
// when, so that deaths in a row slow the replacements down instead of stopping them. A local
// worker that ran the host's main() (no dtask::init) ends the replacements: each would too.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <sys/epoll.h>

#include "broker/batches.hpp"
#include "broker/respawn_backoff.hpp"
#include "process.hpp"

namespace dtask::detail {

class LocalWorkers {
public:
    using Clock = std::chrono::steady_clock;

    /// `published`: the pids of the local workers, kept under `mutex` for other threads.
    LocalWorkers(const std::vector<std::string>& endpoints, unsigned credits,
                 const RespawnLimits& limits, std::mutex& mutex, std::vector<pid_t>& published);
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
        Clock::duration lived{};    // from its start to its death
        bool without_init = false;  // it ran the host's main(): dtask::init was not called
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
            schedule_respawn(*exit);
        }
    }
    /// A local worker ended before it joined: says why, for the failures of jobs waiting.
    void exited_early(const Exit& exit);

    /// When the next replacement is due, or `otherwise` if sooner or none is.
    Clock::time_point wake_at(Clock::time_point otherwise) const {
        return respawns_.empty() ? otherwise : std::min(otherwise, respawns_.front());
    }
    /// Why no local worker may serve soon ("local workers keep dying at start: ..."), for the
    /// jobs that wait for a worker; empty while replacements are not held back.
    std::string why_none(Clock::time_point now) const;
    /// Whether jobs waiting for a worker should fail at once instead of after their wait:
    /// local workers die before they join (a fork loop), or run main() without dtask::init.
    bool fail_waiting_jobs() const noexcept { return without_init_ || backoff_.fork_loop(); }
    /// Starts the replacements due at `now`.
    void respawn_due(Clock::time_point now);

    /// Stops every local worker (SIGTERM, SIGKILL after `grace`) and reaps it.
    void stop(std::chrono::milliseconds grace);

    const std::string& early_exits() const noexcept { return early_exits_; }
    /// Why replacements started to wait, once per row (and once more when it turns into a
    /// fork loop), for the jobs waiting for a worker; empty if nothing new.
    std::string take_announcement() { return std::exchange(announcement_, {}); }

private:
    std::optional<Exit> reap(int pidfd);
    void schedule_respawn(const Exit& exit);

    const std::vector<std::string>& endpoints_;
    unsigned credits_;
    std::mutex& mutex_;
    std::vector<pid_t>& published_;
    std::vector<ChildProcess> children_;
    int exits_fd_ = -1;
    std::unordered_map<std::int64_t, Clock::time_point> started_at_;
    std::unordered_map<std::int64_t, Clock::time_point> joined_pids_;  // joined at
    std::deque<Clock::time_point> respawns_;  // when to start a replacement, in order
    RespawnBackoff backoff_;
    std::string early_exits_;    // why the last local worker that never joined ended
    bool without_init_ = false;  // a local worker ran main(): start no more
    std::string announcement_;   // for take_announcement
};

}  // namespace dtask::detail
