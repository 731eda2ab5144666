// Local workers: spawn, pidfd watch, reaping, and acting on RespawnBackoff's decisions.

#include "broker/local_workers.hpp"

#include <algorithm>

#include <sys/wait.h>
#include <unistd.h>

#include <dtask/error.hpp>

#include "log.hpp"

namespace dtask::detail {

using Clock = std::chrono::steady_clock;

namespace {

/// "2.5 s", to one decimal.
std::string seconds_text(Clock::duration duration) {
    const auto tenths =
        std::chrono::duration_cast<std::chrono::milliseconds>(duration).count() / 100;
    return std::to_string(tenths / 10) + "." + std::to_string(tenths % 10) + " s";
}

}  // namespace

LocalWorkers::LocalWorkers(const std::vector<std::string>& endpoints, unsigned credits,
                           const RespawnLimits& limits, std::mutex& mutex,
                           std::vector<pid_t>& published)
    : endpoints_(endpoints),
      credits_(credits),
      mutex_(mutex),
      published_(published),
      backoff_(limits) {
    exits_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (exits_fd_ < 0)
        throw Error("dtask: cannot create the broker's epoll set of local workers");
}

LocalWorkers::~LocalWorkers() {
    close(exits_fd_);
}

void LocalWorkers::spawn() {
    if (without_init_)
        return;
    try {
        children_.push_back(spawn_worker(endpoints_.front(), credits_));
    } catch (const Error& e) {
        log_warning("broker", e.what());
        return;
    }
    started_at_[children_.back().pid] = Clock::now();
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
    backoff_.on_join();
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
    const int status = detail::reap(*child);
    exit.how = describe_wait_status(status);
    children_.erase(child);
    const auto now = Clock::now();
    if (auto started = started_at_.find(exit.pid); started != started_at_.end()) {
        exit.lived = now - started->second;
        started_at_.erase(started);
    }
    exit.had_joined = joined_pids_.erase(exit.pid) > 0;
    exit.without_init =
        !exit.had_joined && WIFEXITED(status) && WEXITSTATUS(status) == worker_without_init;
    std::lock_guard lock(mutex_);
    std::erase(published_, exit.pid);
    return exit;
}

void LocalWorkers::exited_early(const Exit& exit) {
    if (exit.without_init) {
        early_exits_ = "local worker process " + std::to_string(exit.pid) +
                       " ran the host's main() instead of serving: call dtask::init(argc, "
                       "argv) first thing in main(), before anything else runs; the cluster "
                       "starts no more local workers";
    } else {
        early_exits_ = "local worker process " + std::to_string(exit.pid) + " " + exit.how +
                       " before it joined (does main() call dtask::init(argc, argv) first?)";
    }
    log_warning("broker", early_exits_);
}

void LocalWorkers::schedule_respawn(const Exit& exit) {
    if (exit.without_init)
        without_init_ = true;  // each replacement would run main() too
    if (without_init_) {
        respawns_.clear();
        return;
    }
    const auto now = Clock::now();
    const RespawnBackoff::Decision decision = backoff_.on_death(now, exit.lived, exit.had_joined);
    const auto at = now + decision.delay;
    respawns_.insert(std::upper_bound(respawns_.begin(), respawns_.end(), at), at);
    if (decision.pause_begins || decision.fork_loop_begins) {
        announcement_ = why_none(now);
        log_warning("broker", announcement_);
    }
}

std::string LocalWorkers::why_none(Clock::time_point now) const {
    if (without_init_)
        return early_exits_;
    // A row of deaths explains a missing worker only while a replacement is held back, or
    // while the replacements die before joining.
    const bool held_back = backoff_.paused() && !respawns_.empty();
    if (!held_back && !backoff_.fork_loop())
        return {};
    std::string text =
        backoff_.fork_loop() ? "local workers keep dying at start: " : "local workers keep dying: ";
    text += std::to_string(backoff_.deaths_in_a_row()) + " deaths in the last " +
            seconds_text(now - backoff_.row_began());
    if (backoff_.fork_loop())
        text += ", the last " + std::to_string(backoff_.early_deaths_in_a_row()) +
                " before they joined";
    if (respawns_.empty())
        return text + "; a replacement is starting";
    return text + "; restarting again in " +
           seconds_text(std::max(respawns_.front() - now, Clock::duration::zero()));
}

void LocalWorkers::respawn_due(Clock::time_point now) {
    while (!respawns_.empty() && respawns_.front() <= now) {
        respawns_.pop_front();
        spawn();
    }
}

void LocalWorkers::stop(std::chrono::milliseconds grace) {
    // Workers still starting have no link to receive a bye on: SIGTERM reaches them all.
    respawns_.clear();
    stop_children(children_, grace);
    std::lock_guard lock(mutex_);
    published_.clear();
}

}  // namespace dtask::detail
