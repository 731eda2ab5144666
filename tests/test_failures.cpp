// Failures: faults in what the user hands dtask (a map that throws, kills its worker or
// hangs; a job past the deadline it was given; a host program with signal handlers; an
// endpoint where no broker is) and what the caller gets for them: the error, its type and
// message, or the result where a retry is allowed; then the cluster runs the next job.
// Faults of the processes, links and machines under the job are Reliability's.

#include <atomic>
#include <cstring>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs.hpp"
#include "security/join_token.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

TEST_CASE("Failures.poison_pill_fails_its_job_naming_subtask_and_signal" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    auto handle = cluster.submit(kills_worker_on_three, std::uint64_t{10});
    REQUIRE(handle.wait_for(60s));
    try {
        handle.get();
        FAIL("the job should have failed");
    } catch (const dtask::PoisonSubtaskError& e) {
        const std::string what = e.what();
        CHECK(what.find("tests.kills_worker_on_three") != std::string::npos);
        CHECK(what.find("subtask 3 killed the worker running it") != std::string::npos);
        CHECK(what.find("killed by signal 9") != std::string::npos);
    }
    // The workers it killed were replaced: the next job runs.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Failures.subtask_that_kills_its_worker_fails_the_job_after_the_retry_limit" *
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
        const std::string what = error_of<dtask::PoisonSubtaskError>(handle).what();
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
        const std::string what = error_of<dtask::PoisonSubtaskError>(handle).what();
        CHECK_MESSAGE(contains(what, "subtask 5 killed the worker running it, 3 time(s)"), what);
        CHECK_MESSAGE(contains(what, "exited with status 42"), what);
    }
    // The dead workers were replaced: the next job runs.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Failures.hung_subtask_goes_to_another_worker_after_its_timeout" *
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
    CHECK(rendezvous_pids(cluster).size() == 2);
}

TEST_CASE("Failures.subtask_that_hangs_on_every_attempt_fails_with_a_timeout" *
          doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    TempDir attempts;
    dtask::RunOptions options;
    options.subtask_timeout = 500ms;
    options.max_attempts = 2;
    auto handle = cluster.submit(troubled, std::uint64_t{50},
                                 Trouble{attempts.path(), 7, Trouble::hang, 1000}, options);
    const dtask::TimeoutError error = error_of<dtask::TimeoutError>(handle);
    const std::string what = error.what();
    CHECK(error.reason() == dtask::TimeoutError::Reason::subtask_timeout);
    CHECK_MESSAGE(contains(what, "subtask 7 ran longer than its timeout of 500 ms on 2 attempt(s)"),
                  what);
    CHECK(attempts_made(attempts.path(), 7) == 2);
    // Both workers it hung restarted themselves: the next job runs.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Failures.transient_errors_are_retried_only_when_the_job_asks" * doctest::timeout(170)) {
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
        const std::string what = error_of<dtask::TaskError>(handle).what();
        CHECK_MESSAGE(contains(what, "dtask::TransientError"), what);
        CHECK_MESSAGE(contains(what, "a transient error on each of its 3 attempts"), what);
        CHECK(attempts_made(attempts.path(), 4) == 3);
    }
    {
        TempDir attempts;  // not opted in: the first exception fails the job
        auto handle = cluster.submit(troubled, std::uint64_t{30},
                                     Trouble{attempts.path(), 4, Trouble::transient, 1});
        const std::string what = error_of<dtask::TaskError>(handle).what();
        CHECK_MESSAGE(contains(what, "resource busy on attempt 1"), what);
        CHECK(attempts_made(attempts.path(), 4) == 1);
    }
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

TEST_CASE("Failures.job_past_its_deadline_is_cancelled_with_a_timeout" * doctest::timeout(170)) {
    dtask::Cluster cluster(small_cluster());
    dtask::RunOptions options;
    options.deadline = 300ms;
    auto handle = cluster.submit(busy, Busy{1'000'000, 1000}, options);  // minutes of work
    const dtask::TimeoutError error = error_of<dtask::TimeoutError>(handle);
    const std::string what = error.what();
    CHECK(error.reason() == dtask::TimeoutError::Reason::deadline);
    CHECK_MESSAGE(contains(what, "passed its deadline of 300 ms"), what);
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

namespace {

std::atomic<int> signals_seen{0};  // lock-free: safe in a handler on any thread
void count_signal(int) {
    signals_seen = signals_seen + 1;
}

}  // namespace

TEST_CASE("Failures.host_with_signal_handlers_keeps_working" * doctest::timeout(120)) {
    // A host that handles SIGALRM (without SA_RESTART) and SIGCHLD: every blocking call in
    // the broker and client threads sees EINTR again and again, and so, now and then, does
    // a receive of a message's later frame (libzmq looks at its commands every 100 frames).
    // Batching off makes a message per subtask.
    struct sigaction action {};
    action.sa_handler = count_signal;
    sigemptyset(&action.sa_mask);
    struct sigaction old_alarm {
    }, old_child{};
    sigaction(SIGALRM, &action, &old_alarm);
    sigaction(SIGCHLD, &action, &old_child);
    itimerval every_100us{{0, 100}, {0, 100}};
    setitimer(ITIMER_REAL, &every_100us, nullptr);
    {
        dtask::Cluster cluster(small_cluster());
        CHECK(run_within(cluster, squares, std::uint64_t{20'000}) == serial_squares(20'000));
        CHECK(run_within(cluster, squares, std::uint64_t{50'000},
                         dtask::RunOptions{.batch_size = 1}) == serial_squares(50'000));
        CHECK(run_within(cluster, concat_ordered, std::uint64_t{200}) == expected_concat(200));
    }
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    sigaction(SIGALRM, &old_alarm, nullptr);
    sigaction(SIGCHLD, &old_child, nullptr);
    CHECK(signals_seen > 10);
}

TEST_CASE("Failures.client_without_a_broker_fails_clearly" * doctest::timeout(60)) {
    dtask::ClientOptions options;
    options.heartbeat_interval = 100ms;
    options.heartbeat_liveness = 3;
    options.token = dtask::detail::new_join_token(dtask::detail::TokenRole::client,
                                                  dtask::detail::new_curve_keys().public_key)
                        .text();
    dtask::Client client("tcp://127.0.0.1:1", options);  // nothing listens on port 1
    auto handle = client.submit(squares, std::uint64_t{10});
    REQUIRE(handle.wait_for(30s));
    try {
        handle.get();
        FAIL("no broker: the job must fail");
    } catch (const dtask::TransportError& e) {
        const std::string what = e.what();
        CHECK(what.find("no answer from a broker at tcp://127.0.0.1:1") != std::string::npos);
    }
    CHECK_THROWS_AS(dtask::Client("not an endpoint"), dtask::TransportError);
}
