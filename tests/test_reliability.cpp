// Fault tolerance (docs/reliability.md): workers killed, frozen, cut off by the network or
// left without their broker; subtasks that crash their worker, hang, straggle or fail
// transiently; jobs past their deadline. Each case ends in the right result or a clear
// error, and the cluster then runs the next job.

#include <cstdlib>
#include <random>
#include <set>

#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include "jobs.hpp"
#include "remote_network.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

std::uint64_t sum_below(std::uint64_t n) {
    return n * (n - 1) / 2;
}

/// The text of the error `handle` ended with, checked to be an ErrorType.
template <class ErrorType, class T>
std::string error_of(dtask::JobHandle<T>& handle) {
    REQUIRE_MESSAGE(handle.wait_for(120s), "job '" << handle.job_name() << "' did not end");
    try {
        handle.get();
    } catch (const ErrorType& e) {
        return e.what();
    } catch (const std::exception& e) {
        FAIL("job '" << handle.job_name() << "' failed with another error: " << e.what());
    }
    FAIL("job '" << handle.job_name() << "' should have failed");
    return {};
}

bool contains(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("Reliability.workers_killed_again_and_again_do_not_change_the_result" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    constexpr std::uint64_t n = 20'000;
    // About 50 µs each, so that the job lasts long enough to lose a worker many times.
    auto handle = cluster.submit(busy, Busy{n, 50});
    std::mt19937 random(20261127);
    unsigned kills = 0;
    std::uint64_t next_kill_at = 1'500;
    const auto give_up = std::chrono::steady_clock::now() + 150s;
    while (!handle.wait_for(2ms)) {
        REQUIRE(std::chrono::steady_clock::now() < give_up);
        if (handle.progress().done < next_kill_at)
            continue;
        const auto pids = cluster.local_worker_pids();
        if (pids.empty())
            continue;  // both are being replaced
        kill(pids[random() % pids.size()], SIGKILL);
        ++kills;
        next_kill_at += 2'000;
    }
    MESSAGE(kills << " workers killed during the job");
    CHECK(kills >= 5);
    CHECK(handle.get() == n);  // each subtask counted once
    REQUIRE(cluster.wait_for_workers(2, 60s));
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.frozen_worker_is_replaced_and_its_late_results_count_once" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    TempDir attempts;
    constexpr std::uint64_t n = 8'000;
    auto handle = cluster.submit(troubled, n, Trouble{attempts.path(), n});  // no trouble
    REQUIRE(wait_until([&] { return handle.progress().done >= 200; }, 60s));
    const pid_t frozen = cluster.local_worker_pids().front();
    kill(frozen, SIGSTOP);
    // The broker notices the silence and gives the subtasks it held to the other worker.
    const bool dropped = wait_until([&] { return cluster.workers() == 1; }, 30s);
    kill(frozen, SIGCONT);  // its results for those subtasks now arrive late
    REQUIRE(dropped);
    const Tally tally = get_within(handle, 120s);
    CHECK(tally.count == n);
    CHECK(tally.sum == sum_below(n));
    // It rejoins by itself and serves again.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    CHECK(run_within(cluster, worker_pids, std::uint64_t{200}).contains(frozen));
}

TEST_CASE("Reliability.subtask_that_kills_its_worker_fails_the_job_after_the_retry_limit" *
          doctest::timeout(170)) {
    // Under a sanitizer a segfault becomes a report and an abort; the test wants the signal.
    ScopedEnvAppend asan("ASAN_OPTIONS", "handle_segv=0");
    ScopedEnvAppend tsan("TSAN_OPTIONS", "handle_segv=0");
    dtask::Cluster cluster(small_cluster());
    {
        TempDir attempts;
        dtask::RunOptions two_attempts;
        two_attempts.max_attempts = 2;
        two_attempts.batch_size = 8;  // so that halving its batch takes 3 steps at most
        // Nor a backup copy of its batch at the tail (seen under ASan, where the batch runs
        // long enough): that would be one more death with others, not counted either.
        two_attempts.backup_tasks = false;
        auto handle =
            cluster.submit(troubled, std::uint64_t{40},
                           Trouble{attempts.path(), 13, Trouble::segfault, 1000}, two_attempts);
        const std::string what = error_of<dtask::WorkerLostError>(handle);
        CHECK_MESSAGE(contains(what, "subtask 13 killed the worker running it, 2 time(s)"), what);
        CHECK_MESSAGE(contains(what, "killed by signal 11"), what);
        // Once with others (then any of them could be the culprit), up to 3 times while its
        // batch of 8 is halved down to itself, then twice alone.
        CHECK(attempts_made(attempts.path(), 13) <= 6);
    }
    {
        TempDir attempts;
        auto handle = cluster.submit(troubled, std::uint64_t{40},
                                     Trouble{attempts.path(), 5, Trouble::exit, 1000});
        const std::string what = error_of<dtask::WorkerLostError>(handle);
        CHECK_MESSAGE(contains(what, "subtask 5 killed the worker running it, 3 time(s)"), what);
        CHECK_MESSAGE(contains(what, "exited with status 42"), what);
    }
    // The dead workers were replaced: the next job runs.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.hung_subtask_goes_to_another_worker_after_its_timeout" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    TempDir attempts;
    dtask::RunOptions options;
    options.subtask_timeout = 1000ms;  // the others take well under a millisecond
    options.backup_tasks = false;      // or a backup copy would win before the timeout
    const Tally tally = run_within(cluster, troubled, std::uint64_t{50},
                                   Trouble{attempts.path(), 7, Trouble::hang, 1}, options);
    CHECK(tally.count == 50);
    CHECK(tally.sum == sum_below(50));
    CHECK_FALSE(tally.troubled_by_first_attempt);
    CHECK(attempts_made(attempts.path(), 7) == 2);
    // The worker that hung restarted itself and serves again.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    CHECK(run_within(cluster, worker_pids, std::uint64_t{200}).size() == 2);
}

TEST_CASE("Reliability.subtask_that_hangs_on_every_attempt_fails_with_a_timeout" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    TempDir attempts;
    dtask::RunOptions options;
    options.subtask_timeout = 500ms;
    options.max_attempts = 2;
    auto handle = cluster.submit(troubled, std::uint64_t{50},
                                 Trouble{attempts.path(), 7, Trouble::hang, 1000}, options);
    const std::string what = error_of<dtask::TimeoutError>(handle);
    CHECK_MESSAGE(contains(what, "subtask 7 ran longer than its timeout of 500 ms on 2 attempt(s)"),
                  what);
    CHECK(attempts_made(attempts.path(), 7) == 2);
    // Both workers it hung restarted themselves: the next job runs.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.transient_errors_are_retried_only_when_the_job_asks" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    dtask::RunOptions retry;
    retry.retry_transient = true;  // max_attempts: 3
    {
        TempDir attempts;  // fails twice, then succeeds
        const Tally tally = run_within(cluster, troubled, std::uint64_t{30},
                                       Trouble{attempts.path(), 4, Trouble::transient, 2}, retry);
        CHECK(tally.count == 30);
        CHECK(tally.sum == sum_below(30));
        CHECK(attempts_made(attempts.path(), 4) == 3);
    }
    {
        TempDir attempts;  // fails every time
        auto handle = cluster.submit(troubled, std::uint64_t{30},
                                     Trouble{attempts.path(), 4, Trouble::transient, 1000}, retry);
        const std::string what = error_of<dtask::TaskError>(handle);
        CHECK_MESSAGE(contains(what, "dtask::TransientError"), what);
        CHECK_MESSAGE(contains(what, "a transient error on each of its 3 attempts"), what);
        CHECK(attempts_made(attempts.path(), 4) == 3);
    }
    {
        TempDir attempts;  // not opted in: the first exception fails the job
        auto handle = cluster.submit(troubled, std::uint64_t{30},
                                     Trouble{attempts.path(), 4, Trouble::transient, 1});
        const std::string what = error_of<dtask::TaskError>(handle);
        CHECK_MESSAGE(contains(what, "resource busy on attempt 1"), what);
        CHECK(attempts_made(attempts.path(), 4) == 1);
    }
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.straggler_gets_a_backup_copy_and_the_first_result_wins" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    {
        TempDir attempts;
        dtask::RunOptions no_backups;
        no_backups.backup_tasks = false;
        const Tally tally =
            run_within(cluster, troubled, std::uint64_t{60},
                       Trouble{attempts.path(), 20, Trouble::sleep, 1, 300}, no_backups);
        CHECK(tally.count == 60);
        CHECK(tally.troubled_by_first_attempt);  // nobody else ran it
        CHECK(attempts_made(attempts.path(), 20) == 1);
    }
    // Last: the loser of the race below sleeps on, and this cluster takes no more jobs.
    {
        TempDir attempts;  // the first attempt at subtask 20 takes 5 s, any other a moment
        const Tally tally = run_within(cluster, troubled, std::uint64_t{60},
                                       Trouble{attempts.path(), 20, Trouble::sleep, 1, 5000});
        CHECK(tally.count == 60);
        CHECK(tally.sum == sum_below(60));
        CHECK_FALSE(tally.troubled_by_first_attempt);  // the backup copy won
        CHECK(attempts_made(attempts.path(), 20) == 2);
    }
}

TEST_CASE("Reliability.job_past_its_deadline_is_cancelled_with_a_timeout" * doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    dtask::RunOptions options;
    options.deadline = 300ms;
    auto handle = cluster.submit(busy, Busy{1'000'000, 1000}, options);  // minutes of work
    const std::string what = error_of<dtask::TimeoutError>(handle);
    CHECK_MESSAGE(contains(what, "passed its deadline of 300 ms"), what);
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Reliability.remote_worker_rejoins_a_cluster_restarted_on_the_same_endpoint" *
          doctest::timeout(170)) {
    std::string endpoint;
    std::optional<Process> worker;
    {
        auto options = small_cluster(0);
        options.listen.push_back("tcp://127.0.0.1:*");
        dtask::Cluster first(options);
        endpoint = first.endpoints().back();
        worker.emplace(self_executable(), std::vector<std::string>{"--dtask-worker", endpoint});
        REQUIRE(first.wait_for_workers(1, 30s));
        CHECK(run_within(first, squares, std::uint64_t{100}) == serial_squares(100));
    }  // the broker is gone; the worker keeps looking for it
    auto options = small_cluster(0);
    options.listen.push_back(endpoint);
    dtask::Cluster second(options);
    REQUIRE(second.wait_for_workers(1, 60s));
    const auto pids = run_within(second, worker_pids, std::uint64_t{50});
    CHECK(pids == std::set<std::int64_t>{worker->pid()});
}

TEST_CASE("Reliability.partitioned_worker_is_replaced_and_rejoins_when_the_link_heals" *
          doctest::timeout(170)) {
    test_support::RemoteNetwork network;
    if (!network.why_not().empty()) {
        MESSAGE("skipped: " << network.why_not());
        return;
    }
    auto options = small_cluster(1);
    options.listen.push_back("tcp://" + network.host_address() + ":*");
    dtask::Cluster cluster(options);
    Process remote(test_support::RemoteNetwork::ip_program(),
                   {"netns", "exec", network.name(), self_executable(), "--dtask-worker",
                    cluster.endpoints().back(), "--dtask-give-up", "600"});
    REQUIRE(cluster.wait_for_workers(2, 30s));
    TempDir attempts;
    constexpr std::uint64_t n = 8'000;
    auto handle = cluster.submit(troubled, n, Trouble{attempts.path(), n});  // no trouble
    REQUIRE(wait_until([&] { return handle.progress().done >= 200; }, 60s));
    REQUIRE(network.cut());  // the remote worker holds subtasks now
    // They finish elsewhere: re-run once the broker notices the silence, or as backup copies
    // at the tail of the job, whichever comes first.
    const Tally tally = get_within(handle, 120s);
    CHECK(tally.count == n);
    CHECK(tally.sum == sum_below(n));
    REQUIRE(wait_until([&] { return cluster.workers() == 1; }, 30s));
    REQUIRE(network.heal());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    // `ip netns exec` runs the worker in its own process: the pid is the worker's.
    CHECK(run_within(cluster, worker_pids, std::uint64_t{200}).contains(remote.pid()));
}
