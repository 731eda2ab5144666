// Local workers: spawn, pidfd watch, reaping and the respawn schedule.

#include "broker/local_workers.hpp"

#include <algorithm>

#include <unistd.h>

#include <dtask/error.hpp>

#include "log.hpp"

namespace dtask::detail {

using Clock = std::chrono::steady_clock;

RespawnSchedule::Decision RespawnSchedule::on_death(Clock::time_point now) {
    if (now - last_death_ > new_row_after)
        deaths_in_a_row_ = 0;
    last_death_ = now;
    ++deaths_in_a_row_;
    Decision decision;
    if (deaths_in_a_row_ > max_restarts_in_a_row) {
        decision.stopped = deaths_in_a_row_ == max_restarts_in_a_row + 1;
        return decision;
    }
    decision.respawn = true;
    const unsigned doublings = deaths_in_a_row_ > 3 ? deaths_in_a_row_ - 4 : 0;
    decision.delay = deaths_in_a_row_ <= 3
                         ? std::chrono::milliseconds(0)
                         : std::min(std::chrono::milliseconds(100 << std::min(doublings, 5u)),
                                    std::chrono::milliseconds(2000));
    return decision;
}

LocalWorkers::LocalWorkers(const std::vector<std::string>& endpoints, unsigned credits,
                           std::mutex& mutex, std::vector<pid_t>& published)
    : endpoints_(endpoints), credits_(credits), mutex_(mutex), published_(published) {
    exits_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (exits_fd_ < 0)
        throw Error("dtask: cannot create the broker's epoll set of local workers");
}

LocalWorkers::~LocalWorkers() {
    close(exits_fd_);
}

void LocalWorkers::spawn() {
    try {
        children_.push_back(spawn_worker(endpoints_.front(), credits_));
    } catch (const Error& e) {
        log_warning("broker", e.what());
        return;
    }
    epoll_event watch{};
    watch.events = EPOLLIN;
    watch.data.fd = children_.back().pidfd;
    if (epoll_ctl(exits_fd_, EPOLL_CTL_ADD, watch.data.fd, &watch) != 0)
        log_warning("broker", "cannot watch a local worker for its exit (epoll_ctl)");
    std::lock_guard lock(mutex_);
    published_.push_back(children_.back().pid);
}

bool LocalWorkers::is_child(std::int64_t pid) const {
    return std::any_of(children_.begin(), children_.end(),
                       [&](const auto& child) { return child.pid == pid; });
}

void LocalWorkers::joined(std::int64_t pid, Clock::time_point now) {
    early_exits_.clear();
    joined_pids_.emplace(pid, now);
}

std::optional<LocalWorkers::Exit> LocalWorkers::reap(int pidfd) {
    // Out of the set before reaping closes the pidfd: closing takes it out only if no other
    // process shares the fd (a host that forked keeps a copy), and a stale entry would stay
    // readable, or name the next pidfd given the same number.
    epoll_ctl(exits_fd_, EPOLL_CTL_DEL, pidfd, nullptr);
    auto child = std::find_if(children_.begin(), children_.end(),
                              [&](const auto& c) { return c.pidfd == pidfd; });
    if (child == children_.end())
        return std::nullopt;
    Exit exit;
    exit.pid = child->pid;
    exit.how = describe_wait_status(detail::reap(*child));
    children_.erase(child);
    auto joined = joined_pids_.find(exit.pid);
    exit.had_joined = joined != joined_pids_.end();
    if (exit.had_joined) {
        schedule_.on_death_of_joined(joined->second, Clock::now());
        joined_pids_.erase(joined);
    }
    std::lock_guard lock(mutex_);
    std::erase(published_, exit.pid);
    return exit;
}

void LocalWorkers::exited_early(const Exit& exit) {
    early_exits_ = "local worker process " + std::to_string(exit.pid) + " " + exit.how +
                   " before it joined (does main() call dtask::init(argc, argv) first?)";
    log_warning("broker", early_exits_);
}

void LocalWorkers::schedule_respawn() {
    const auto now = Clock::now();
    const RespawnSchedule::Decision decision = schedule_.on_death(now);
    if (!decision.respawn) {
        if (decision.stopped) {
            restarts_stopped_ = "local workers died " +
                                std::to_string(schedule_.deaths_in_a_row()) +
                                " times in a row, so the cluster stopped restarting them";
            log_warning("broker", restarts_stopped_);
        }
        return;
    }
    restarts_stopped_.clear();
    respawns_.push_back(now + decision.delay);
}

void LocalWorkers::respawn_due(Clock::time_point now) {
    while (!respawns_.empty() && respawns_.front() <= now) {
        respawns_.pop_front();
        spawn();
    }
}

void LocalWorkers::stop(std::chrono::milliseconds grace) {
    // Workers still starting have no link to receive a bye on: SIGTERM reaches them all.
    stop_children(children_, grace);
    std::lock_guard lock(mutex_);
    published_.clear();
}

}  // namespace dtask::detail
