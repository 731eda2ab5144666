#pragma once
// Credits: a worker holds at most its credit limit of batches. The limit follows how fast it
// finishes them, to cover credit_time of work, from 2 up to the credits it offered; the work
// it is expected to hold in time bounds it too, so that a limit grown on tiny batches does
// not fill with large ones.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "broker/batches.hpp"

namespace dtask::detail {

/// How much work a worker should hold in time: while one batch travels back and the next
/// one out, and while the broker handles a burst before it sends (Outbox), the batches
/// queued behind keep it busy.
constexpr auto credit_time = std::chrono::milliseconds(2);

/// What map took for a job's results so far, as the workers report it, and how many subtasks
/// that covers: the work a batch of it brings a worker. The broker's own view of a batch's
/// time also holds its trip and, on a busy machine, the wait for the worker to be scheduled;
/// credit limits sized from that would shrink as workers are added to few cores.
struct WorkCost {
    double map_ns = 0;
    std::uint64_t mapped = 0;

    /// A run of `count` results whose map took `reported_ns`, `waited_ns` after the batch
    /// was sent: a run cannot have taken longer than the broker waited for it, so that a
    /// worker's absurd report cannot hold every worker to 2 batches for the rest of the job.
    void add(std::uint64_t reported_ns, std::int64_t waited_ns, std::uint64_t count) noexcept {
        map_ns += static_cast<double>(std::min(
            reported_ns, static_cast<std::uint64_t>(std::max<std::int64_t>(0, waited_ns))));
        mapped += count;
    }

    /// The map time `count` subtasks are expected to take. A batch of a job none of whose
    /// results has come back counts as half of credit_time: a worker whose limit grew on
    /// another job's tiny batches takes two of them, not its whole limit, and the others get
    /// the rest until the job's cost is known.
    std::int64_t expected_ns(std::uint64_t count) const noexcept {
        constexpr auto credit_ns = std::chrono::nanoseconds(credit_time).count();
        if (mapped == 0)
            return credit_ns / 2;
        // Bounded so that the conversion, and the sum of what a worker holds, cannot overflow.
        const double expected = map_ns / static_cast<double>(mapped) * static_cast<double>(count);
        return static_cast<std::int64_t>(std::min(expected, 1e15));
    }
};

/// A worker's part of the credits: the batches it holds and how many it may.
struct Credits {
    using Clock = std::chrono::steady_clock;

    unsigned limit = 2;  // batches it may hold now
    // The batches it holds, in the order sent, which is the order it runs them in.
    std::deque<HeldBatch> held;
    Clock::time_point last_result_at;  // when it last finished a batch
    double finish_interval_ns = 0;     // between batches finished back to back, smoothed
    std::int64_t held_work_ns = 0;     // map time its batches are expected to take, in all
    bool listed_with_room = false;     // in the list of workers with room (WithRoom)
    std::size_t room_slot = 0;         // where in that list
    // It holds a batch of a job that ended: its map may never return, so it gets nothing
    // and serves no job until that batch is given back or the worker restarts.
    bool stuck = false;

    /// Whether it may take another batch: it holds fewer than 2, or fewer than its limit and
    /// less than credit_time of expected work.
    bool has_room() const noexcept {
        if (stuck)
            return false;
        return held.size() < std::min(2u, limit) ||
               (held.size() < limit &&
                held_work_ns < std::chrono::nanoseconds(credit_time).count());
    }

    /// Counts a batch handed to it.
    void hold(HeldBatch batch) {
        held_work_ns += batch.expected_ns;
        held.push_back(std::move(batch));
    }

    /// The batch holding subtask `index` of `job`: nearly always the oldest.
    std::deque<HeldBatch>::iterator find(std::uint64_t job, std::uint64_t index) {
        return std::find_if(held.begin(), held.end(),
                            [&](const HeldBatch& batch) { return batch.contains(job, index); });
    }

    /// Forgets a batch it held: finished, revoked, or failed.
    void release(std::deque<HeldBatch>::iterator batch) {
        held_work_ns -= batch->expected_ns;
        if (batch == held.begin())
            held.pop_front();  // nearly always: batches finish in the order sent
        else
            held.erase(batch);
    }

    /// Every result of `batch` came back at `now`: if it ran right after the batch before,
    /// the time between them is what a batch costs the worker, transport included, and sizes
    /// the limit. Returns when the batch started running. `offered`: the worker's credits.
    Clock::time_point finished(const HeldBatch& batch, Clock::time_point now, unsigned offered) {
        const auto started = std::max(batch.sent, last_result_at);
        if (held.size() > 1 && last_result_at > batch.sent) {
            const double interval = static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(now - last_result_at).count());
            finish_interval_ns =
                finish_interval_ns == 0 ? interval : 0.75 * finish_interval_ns + 0.25 * interval;
            size_limit(offered);
        }
        last_result_at = now;
        return started;
    }

    /// The limit from the measured cost of a batch: enough batches to cover credit_time, at
    /// least 2, at most what the worker offered.
    void size_limit(unsigned offered) {
        if (finish_interval_ns <= 0)
            return;
        const double wanted =
            std::ceil(static_cast<double>(std::chrono::nanoseconds(credit_time).count()) /
                      finish_interval_ns);
        limit = static_cast<unsigned>(
            std::min(std::max(wanted, 2.0), static_cast<double>(std::max(offered, 1u))));
    }
};

/// The workers with room for more batches, in no order. No allocation: a worker goes in and
/// out with nearly every result. A worker leaves it before its record is destroyed. `Peer`
/// has a member `credits` (Credits).
template <class Peer>
class WithRoom {
public:
    /// Notes that the worker has room.
    void add(Peer& worker) {
        if (worker.credits.listed_with_room || worker.credits.stuck)
            return;
        worker.credits.listed_with_room = true;
        worker.credits.room_slot = workers_.size();
        workers_.push_back(&worker);
    }
    /// Notes that it has none, or must get nothing; the last one moves into its slot.
    void remove(Peer& worker) {
        Credits& credits = worker.credits;
        if (!credits.listed_with_room)
            return;
        credits.listed_with_room = false;
        if (credits.room_slot + 1 != workers_.size()) {
            workers_[credits.room_slot] = workers_.back();
            workers_[credits.room_slot]->credits.room_slot = credits.room_slot;
        }
        workers_.pop_back();
    }
    std::size_t size() const noexcept { return workers_.size(); }
    Peer& operator[](std::size_t slot) const noexcept { return *workers_[slot]; }
    const std::vector<Peer*>& workers() const noexcept { return workers_; }

private:
    std::vector<Peer*> workers_;
};

}  // namespace dtask::detail
