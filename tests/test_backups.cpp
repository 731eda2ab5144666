// Backup copies (src/broker/backups.hpp), tested directly: which running batch gets a copy
// on an idle worker, when, and which copy is revoked when the other finishes first.

#include <chrono>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "broker/backups.hpp"
#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "broker_policies.hpp"

using namespace dtask::detail;
using namespace broker_policies;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// A job at its tail whose subtasks took 1 us each so far, two workers running one batch of
/// it each (a from t0, b from t0 + 5 ms), and an idle worker c.
struct Tail {
    Peers peers;
    Jobs jobs;
    BrokerJob& job = submit(jobs, 1);
    WorkerPeer& a = add_worker(peers, "a");
    WorkerPeer& b = add_worker(peers, "b");
    WorkerPeer& c = add_worker(peers, "c");
    Clock::time_point t0 = Clock::time_point{} + 1h;

    Tail() {
        job.backups.split_done = true;
        job.backups.finished(10us, 10);
        run(a, 0, t0);
        run(b, 1, t0 + 5ms);
    }
    void run(WorkerPeer& worker, std::uint64_t first, Clock::time_point sent) {
        worker.credits.hold(
            HeldBatch{job.id, first, 1, first, task_frame(job.id, first, 1), sent, 0});
    }
    /// What dispatch does for an idle worker c: the holder of the batch copied, or null.
    WorkerPeer* choose(Clock::time_point now) {
        if (!may_take_backup(c, peers, jobs))
            return nullptr;
        const Backup backup = choose_backup(c, peers, jobs, now);
        if (backup.holder != nullptr)
            record_copy(backup, c);
        return backup.holder;
    }
};

}  // namespace

TEST_CASE("Backups.no_copy_before_the_minimum_age" * doctest::timeout(30)) {
    Tail tail;
    CHECK(tail.choose(tail.t0 + backup_min_age - 1ms) == nullptr);
    CHECK(tail.job.backups.copies.empty());
    WorkerPeer* holder = tail.choose(tail.t0 + backup_min_age);
    REQUIRE(holder == &tail.a);
    const Copies& copies = tail.job.backups.copies.at(0);
    CHECK(copies.count == 1);
    CHECK(copies.holders == std::vector<std::string>{"a", "c"});
    // One copy at most: a's batch has one, and b's is too young.
    CHECK(tail.choose(tail.t0 + backup_min_age + 1ms) == nullptr);
}

TEST_CASE("Backups.the_longest_running_batch_is_chosen" * doctest::timeout(30)) {
    Tail tail;
    CHECK(tail.choose(tail.t0 + 30ms) == &tail.a);  // 30 ms against b's 25 ms
    Tail later;
    later.a.credits.held.front().sent = later.t0 + 8ms;  // now b's has run longer
    CHECK(later.choose(later.t0 + 30ms) == &later.b);
    // A batch runs from when it was sent or from its worker's last result, the later.
    Tail queued;
    queued.a.credits.last_result_at = queued.t0 + 20ms;
    CHECK(queued.choose(queued.t0 + 30ms) == &queued.b);
}

TEST_CASE("Backups.only_a_job_at_its_tail_and_past_twice_its_expected_time_gets_a_copy" *
          doctest::timeout(30)) {
    Tail before_the_tail;
    before_the_tail.job.backups.split_done = false;
    CHECK(before_the_tail.choose(before_the_tail.t0 + 1s) == nullptr);
    Tail queued;
    queued.job.queue.push_back(batch(1, 9, 1));
    CHECK(queued.choose(queued.t0 + 1s) == nullptr);
    Tail off;
    off.job.settings.backup_tasks = false;
    CHECK(off.choose(off.t0 + 1s) == nullptr);
    // Subtasks of 20 ms on average: a batch of one is late past 40 ms.
    Tail slow;
    slow.job.backups.finished(200ms, 0);
    CHECK(slow.choose(slow.t0 + 40ms) == nullptr);
    CHECK(slow.choose(slow.t0 + 41ms) == &slow.a);
    // A batch one of whose subtasks spoiled an attempt gets none.
    Tail spoiled;
    spoiled.job.recovery.spoiled[0] = 1;
    CHECK(spoiled.choose(spoiled.t0 + 1s) == &spoiled.b);
}

TEST_CASE("Backups.the_loser_is_revoked_when_the_first_result_wins" * doctest::timeout(30)) {
    Tail tail;
    REQUIRE(tail.choose(tail.t0 + 50ms) == &tail.a);
    // The copy on c finishes first: a's is revoked.
    CHECK(settle_copies(tail.job.backups, 0, 1, "c") == std::vector<std::string>{"a"});
    CHECK(tail.job.backups.copies.empty());
    CHECK(settle_copies(tail.job.backups, 0, 1, "a").empty());  // settled once
    // The original wins instead: the copy is revoked.
    Tail other;
    REQUIRE(other.choose(other.t0 + 50ms) == &other.a);
    CHECK(settle_copies(other.job.backups, 0, 2, "a").empty());  // another batch at index 0
    CHECK(settle_copies(other.job.backups, 0, 1, "a") == std::vector<std::string>{"c"});
    // A holder lost: the other copy carries on, an ordinary batch again.
    Tail lost;
    REQUIRE(lost.choose(lost.t0 + 50ms) == &lost.a);
    CHECK(other_copy_runs(lost.job.backups, lost.a.credits.held.front(), "a"));
    CHECK(lost.job.backups.copies.empty());
    CHECK_FALSE(other_copy_runs(lost.job.backups, lost.a.credits.held.front(), "c"));
}
