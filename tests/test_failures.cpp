// What goes wrong around a job: workers killed mid-job, a subtask that kills every worker
// it reaches, a host full of signals, a broker that is not there.

#include <atomic>
#include <cstring>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

TEST_CASE("Failures.local_worker_killed_mid_job_is_replaced_and_nothing_is_lost" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto before = cluster.local_worker_pids();
    REQUIRE(before.size() == 2);
    constexpr std::uint64_t n = 2000;
    auto handle = cluster.submit(slow, n);
    // Mid-job: results have come back, and the job is not over after the kill.
    REQUIRE(wait_until([&] { return handle.progress().done >= 50; }, 60s));
    kill(before[0], SIGKILL);
    REQUIRE_MESSAGE(handle.progress().done < n, "the job ended before the worker was killed");
    CHECK(get_within(handle) == n * (n - 1) / 2);
    // The cluster keeps its parallelism: a new worker took the dead one's place.
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto after = cluster.local_worker_pids();
    CHECK(after.size() == 2);
    CHECK(std::find(after.begin(), after.end(), before[0]) == after.end());
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}

// A host that forks (without exec) after its workers started shares their pidfds with the
// child. The broker must still see a worker die, reap it, and start another.
TEST_CASE("Failures.worker_death_is_seen_after_the_host_forked" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster(1));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const auto before = cluster.local_worker_pids();
    REQUIRE(before.size() == 1);
    int release[2];
    REQUIRE(pipe2(release, O_CLOEXEC) == 0);  // not inherited by the workers started later
    const pid_t forked = fork();
    if (forked == 0) {
        // The child of a threaded process: async-signal-safe calls only. It ends when the
        // test closes the pipe, or when the test process ends.
        close(release[1]);
        char byte = 0;
        [[maybe_unused]] auto got = read(release[0], &byte, 1);
        _exit(0);
    }
    close(release[0]);
    REQUIRE(forked > 0);
    kill(before[0], SIGKILL);
    // The replacement runs the next job; a broker stuck on the dead worker would not.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
    const auto after = cluster.local_worker_pids();
    CHECK(std::find(after.begin(), after.end(), before[0]) == after.end());
    close(release[1]);
    int status = 0;
    CHECK(waitpid(forked, &status, 0) == forked);
}

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

TEST_CASE("Failures.client_submits_to_a_listening_cluster" * doctest::timeout(60)) {
    auto options = small_cluster();
    options.listen.push_back("tcp://127.0.0.1:*");
    dtask::Cluster cluster(options);
    dtask::Client client(cluster.endpoints().back());
    REQUIRE(client.wait_for_workers(2, 30s));
    CHECK(run_within(client, squares, std::uint64_t{5000}) == serial_squares(5000));
    CHECK(run_within(client, concat_ordered, std::uint64_t{100}) == expected_concat(100));
}
