// Recovery (src/broker/recovery.hpp), tested directly: attempts, transient retries, timeouts
// and the halving that finds a poison subtask, as the broker's loop and dispatch call them.

#include <unordered_map>

#include <doctest/doctest.h>

#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "broker/recovery.hpp"
#include "broker_policies.hpp"

using namespace dtask::detail;
using namespace broker_policies;

TEST_CASE("Recovery.a_poison_subtask_in_a_batch_of_4096_is_isolated_in_at_most_12_halvings" *
          doctest::timeout(30)) {
    constexpr std::uint64_t poison = 1234;
    Jobs jobs;
    BrokerJob& job = submit(jobs, 7);  // 3 attempts
    Recovery recovery;
    WorkerRecovery worker;
    // The worker that held the batch crashed: the batch is a suspect.
    CHECK(recovery.crashed(job, batch(7, 0, 4096), false) == Suspect::quarantined);
    CHECK(recovery.quarantined() == 1);
    unsigned halvings = 0, runs = 0, single_deaths = 0;
    std::uint64_t failed = 0;
    const auto serves_all = [](const BrokerJob&) { return true; };
    for (;;) {
        REQUIRE(runs < 100);
        // A worker with free hands is reserved for the quarantine and runs one batch alone.
        REQUIRE(recovery.reserve(worker, jobs.all(), serves_all));
        QueuedBatch running;
        BrokerJob* from = recovery.take(worker, jobs.all(), serves_all, running);
        REQUIRE(from == &job);
        CHECK(worker.isolated);
        CHECK_FALSE(worker.reserved);
        ++runs;
        if (poison < running.first || poison >= running.first + running.count) {
            worker.isolated = false;  // it ran to the end
            continue;
        }
        // It dies running it alone.
        const std::uint64_t first = running.first;
        const bool single = running.count == 1;
        const Suspect verdict = recovery.crashed(job, std::move(running), true);
        worker.isolated = false;
        if (verdict == Suspect::halved)
            ++halvings;
        if (single)
            ++single_deaths;
        if (verdict == Suspect::failed) {
            failed = first;
            break;
        }
    }
    CHECK(halvings == 12);
    CHECK(failed == poison);
    CHECK(single_deaths == 3);  // a death counts only running alone, up to max_attempts
    CHECK(job.recovery.spoiled.size() == 1);
    CHECK(job.recovery.spoiled.at(poison) == 3);
    CHECK(runs == 1 + 2 * 12 + 2);  // every half ran once, the single 3 times
    const auto failure = Recovery::killed_its_worker(job, poison, "w1", "killed by signal 11");
    CHECK(failure.kind == protocol::FailureKind::worker_lost);
    CHECK(failure.message.find("subtask 1234 killed the worker running it, 3 time(s)") !=
          std::string::npos);
}

TEST_CASE("Recovery.a_transient_retry_goes_to_the_back_of_the_queue" * doctest::timeout(30)) {
    Jobs jobs;
    BrokerJob& job = submit(jobs, 1);
    job.queue.push_back(batch(1, 0, 4));
    job.queue.push_back(batch(1, 4, 4));
    CHECK(Recovery::retry(job, batch(1, 9, 1)));
    REQUIRE(job.queue.size() == 3);
    CHECK(job.queue.front().first == 0);
    CHECK(job.queue.back().first == 9);
    CHECK(job.queue.back().count == 1);
    CHECK(job.recovery.spoiled.at(9) == 1);
}

TEST_CASE("Recovery.the_attempt_limit_fails_the_job" * doctest::timeout(30)) {
    Jobs jobs;
    protocol::JobSettings settings;
    settings.max_attempts = 3;
    BrokerJob& job = submit(jobs, 1, settings);
    CHECK(Recovery::retry(job, batch(1, 5, 1)));
    CHECK(Recovery::retry(job, batch(1, 5, 1)));
    CHECK_FALSE(Recovery::retry(job, batch(1, 5, 1)));  // the third attempt spoiled: it fails
    CHECK(job.queue.size() == 2);
    CHECK(job.recovery.spoiled.at(5) == 3);
    // A timeout counts the same way.
    CHECK_FALSE(Recovery::spoil(job, 6));
    CHECK_FALSE(Recovery::spoil(job, 6));
    CHECK(Recovery::spoil(job, 6));
    const auto failure = Recovery::timed_out(job, 6, "w2");
    CHECK(failure.kind == protocol::FailureKind::timeout);
    CHECK(failure.message.find("on 3 attempt(s)") != std::string::npos);
    // max_attempts is bounded below by 1 on submit: the first spoiled attempt fails then.
    protocol::JobSettings once;
    once.max_attempts = 0;
    BrokerJob& strict = submit(jobs, 2, once);
    CHECK(strict.settings.max_attempts == 1);
    Recovery recovery;
    CHECK(recovery.crashed(strict, batch(2, 3, 1), true) == Suspect::failed);
    CHECK(recovery.quarantined() == 0);
}

TEST_CASE("Recovery.a_hung_subtask_runs_again_alone_between_the_rest_of_its_batch" *
          doctest::timeout(30)) {
    Jobs jobs;
    BrokerJob& job = submit(jobs, 1);
    job.queue.push_back(batch(1, 100, 1));
    QueuedBatch sent = batch(1, 10, 10);
    HeldBatch held{1, 10, 10, 12, std::move(sent.payload), {}, 0};  // 10 and 11 answered
    Recovery::requeue_around(job, held, 15);
    REQUIRE(job.queue.size() == 4);
    CHECK(job.queue[0].first == 12);
    CHECK(job.queue[0].count == 3);
    CHECK(job.queue[1].first == 15);
    CHECK(job.queue[1].count == 1);
    CHECK(job.queue[2].first == 16);
    CHECK(job.queue[2].count == 4);
    CHECK(job.queue[3].first == 100);
    // Each piece is a task frame of its own, saying so.
    CHECK(protocol::read_batch_frame(job.queue[1].payload).fields[1] == 15);
    CHECK(protocol::read_batch_frame(job.queue[2].payload).fields[2] == 4);
}

TEST_CASE("Recovery.a_reserved_worker_is_released_when_the_quarantine_empties" *
          doctest::timeout(30)) {
    Jobs jobs;
    BrokerJob& job = submit(jobs, 1);
    Recovery recovery;
    WorkerRecovery first, second;
    const auto serves_all = [](const BrokerJob&) { return true; };
    CHECK_FALSE(recovery.reserve(first, jobs.all(), serves_all));  // nothing quarantined
    recovery.crashed(job, batch(1, 0, 8), false);
    CHECK(recovery.reserve(first, jobs.all(), serves_all));
    CHECK(first.reserved);
    CHECK_FALSE(recovery.reserve(second, jobs.all(), serves_all));  // one is on its way
    // Once reserved, it stays so while the quarantine holds a batch.
    CHECK(recovery.reserve(first, jobs.all(), [](const BrokerJob&) { return false; }));
    recovery.forget(job.recovery);  // the job ended
    CHECK(recovery.quarantined() == 0);
    CHECK_FALSE(recovery.reserve(first, jobs.all(), serves_all));
    CHECK_FALSE(first.reserved);
}
