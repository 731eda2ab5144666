// When a worker gives up on its socket (src/worker/rejoin.hpp), tested directly: after the
// broker's silence plus the backoff; a hello not yet welcomed waits at least hello_patience,
// so that a join storm does not make every worker start over. And a worker whose broker is
// silent sleeps between its looks, as hundreds of them at once would fill the machine.

#include <chrono>

#include <doctest/doctest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include "process.hpp"
#include "worker/rejoin.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

TEST_CASE("Rejoin.a_welcomed_worker_rejoins_after_silence_and_backoff" * doctest::timeout(10)) {
    CHECK_FALSE(time_to_rejoin(1500ms, 1250ms, 250ms, true));
    CHECK(time_to_rejoin(1501ms, 1250ms, 250ms, true));
}

TEST_CASE("Rejoin.a_hello_not_yet_welcomed_waits_at_least_hello_patience" * doctest::timeout(10)) {
    CHECK_FALSE(time_to_rejoin(1501ms, 1250ms, 250ms, false));
    CHECK_FALSE(time_to_rejoin(hello_patience, 1250ms, 250ms, false));
    CHECK(time_to_rejoin(hello_patience + 1ms, 1250ms, 250ms, false));
    // A longer silence than the patience counts as it is.
    CHECK_FALSE(time_to_rejoin(20s, 12s, 8s, false));
    CHECK(time_to_rejoin(20s + 1ms, 12s, 8s, false));
}

TEST_CASE("Rejoin.backoff_doubles_up_to_8_s" * doctest::timeout(10)) {
    CHECK(next_rejoin_backoff(250ms) == 500ms);
    CHECK(next_rejoin_backoff(5s) == 8s);
    CHECK(next_rejoin_backoff(8s) == 8s);
}

TEST_CASE("Rejoin.a_worker_whose_broker_is_silent_sleeps_between_looks" * doctest::timeout(60)) {
    // Nothing listens on port 1: the worker hears nothing for its whole give-up time of 6 s,
    // and is overdue from 1.25 s on. It used to poll without sleeping from then on.
    const auto cpu_seconds_of_children = [] {
        rusage usage{};
        getrusage(RUSAGE_CHILDREN, &usage);
        return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
               1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
    };
    const double before = cpu_seconds_of_children();
    test_support::Process worker(
        test_support::self_executable(),
        {"--dtask-worker", "tcp://127.0.0.1:1", "--dtask-insecure-tcp", "--dtask-give-up", "6"},
        "/dev/null");
    const auto status = worker.wait_exit(std::chrono::seconds(50));
    REQUIRE(status.has_value());
    CHECK(WIFEXITED(*status));
    CHECK(WEXITSTATUS(*status) == 4);  // gave up
    // Spinning, it took most of a core for 4.75 s; sleeping, a few hundred milliseconds at
    // most, even in a sanitizer build.
    CHECK(cpu_seconds_of_children() - before < 2.0);
}
