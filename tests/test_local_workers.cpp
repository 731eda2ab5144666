// Local workers (src/broker/respawn_backoff.hpp), tested directly: when a dead local worker is
// replaced, as the broker's LocalWorkers asks RespawnBackoff, with fake time points.

#include <chrono>
#include <vector>

#include <doctest/doctest.h>

#include "broker/respawn_backoff.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

using Decision = RespawnBackoff::Decision;

/// The decisions for `count` deaths `apart` from each other, of workers that lived `lived`
/// and had joined or not.
std::vector<Decision> deaths(RespawnBackoff& backoff, Clock::time_point& at, unsigned count,
                             bool joined = true, Clock::duration lived = 1s,
                             Clock::duration apart = 1s) {
    std::vector<Decision> out;
    for (unsigned i = 0; i < count; ++i) {
        at += apart;
        out.push_back(backoff.on_death(at, lived, joined));
    }
    return out;
}

/// The delays before each replacement, for `count` deaths 1 s apart.
std::vector<std::chrono::milliseconds> delays(RespawnBackoff& backoff, Clock::time_point& at,
                                              unsigned count, bool joined = true,
                                              Clock::duration lived = 1s) {
    std::vector<std::chrono::milliseconds> out;
    for (const Decision& decision : deaths(backoff, at, count, joined, lived))
        out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(decision.delay));
    return out;
}

/// One flag of each decision.
std::vector<bool> flags(const std::vector<Decision>& decisions, bool Decision::*flag) {
    std::vector<bool> out;
    for (const Decision& decision : decisions)
        out.push_back(decision.*flag);
    return out;
}

}  // namespace

TEST_CASE("LocalWorkers.respawn_at_once_three_times_then_from_100_ms_doubling_up_to_30_s" *
          doctest::timeout(30)) {
    RespawnBackoff backoff;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto got = delays(backoff, at, 14);
    const std::vector<std::chrono::milliseconds> expected{0ms,     0ms,     0ms,     100ms,  200ms,
                                                          400ms,   800ms,   1600ms,  3200ms, 6400ms,
                                                          12800ms, 25600ms, 30000ms, 30000ms};
    CHECK(got == expected);
    CHECK(backoff.deaths_in_a_row() == 14);
}

TEST_CASE("LocalWorkers.restarts_never_stop_however_many_deaths" * doctest::timeout(30)) {
    // The bound is on the rate: a thousand deaths in a row, each still replaced, 30 s apart.
    RespawnBackoff backoff;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto got = delays(backoff, at, 1000);
    CHECK(got.back() == 30s);
    CHECK(backoff.deaths_in_a_row() == 1000);
    CHECK_FALSE(backoff.fork_loop());  // they had joined: killed from outside
}

TEST_CASE("LocalWorkers.the_pause_is_announced_once_per_row" * doctest::timeout(30)) {
    RespawnBackoff backoff;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto announced = flags(deaths(backoff, at, 8), &Decision::pause_begins);
    CHECK(announced == std::vector<bool>{false, false, false, true, false, false, false, false});
    CHECK(backoff.paused());
    // A worker that lived 10 s ends the row: at once again, and a new pause is announced.
    at += 1s;
    CHECK(backoff.on_death(at, 10s, true).delay == Clock::duration::zero());
    CHECK_FALSE(backoff.paused());
    CHECK(backoff.row_began() == at);
    delays(backoff, at, 2);
    at += 1s;
    CHECK(backoff.on_death(at, 1s, true).pause_begins);
}

TEST_CASE("LocalWorkers.a_worker_that_lived_long_enough_ends_the_row" * doctest::timeout(30)) {
    RespawnBackoff backoff;
    Clock::time_point at = Clock::time_point{} + 1h;
    delays(backoff, at, 6);
    CHECK(backoff.deaths_in_a_row() == 6);
    at += 1s;
    CHECK(backoff.on_death(at, 9s, true).delay == 800ms);  // 9 s is not enough: the 7th
    at += 1s;
    CHECK(backoff.on_death(at, 10s, true).delay == Clock::duration::zero());
    CHECK(backoff.deaths_in_a_row() == 1);
}

TEST_CASE("LocalWorkers.deaths_before_joining_in_a_row_are_a_fork_loop" * doctest::timeout(30)) {
    RespawnBackoff backoff;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto begins =
        flags(deaths(backoff, at, 7, false, 5ms, 10ms), &Decision::fork_loop_begins);
    // The 5th death before joining makes it a fork loop, said once; restarts go on, slowly.
    CHECK(begins == std::vector<bool>{false, false, false, false, true, false, false});
    CHECK(backoff.fork_loop());
    CHECK(backoff.early_deaths_in_a_row() == 7);
    CHECK(delays(backoff, at, 20, false, 5ms).back() == 30s);
    // A worker that joins ends the fork loop; the rate bound stays until one lives long.
    backoff.on_join();
    CHECK_FALSE(backoff.fork_loop());
    at += 1s;
    const auto after_join = backoff.on_death(at, 2s, true);
    CHECK(after_join.delay == 30s);
    CHECK_FALSE(after_join.fork_loop_begins);
    // Deaths of joined workers between early ones break the row of early deaths.
    RespawnBackoff mixed;
    for (int i = 0; i < 20; ++i) {
        at += 1s;
        mixed.on_death(at, 1s, i % 4 == 3);
    }
    CHECK_FALSE(mixed.fork_loop());
}

TEST_CASE("LocalWorkers.limits_are_settable_and_the_delay_never_exceeds_its_cap" *
          doctest::timeout(30)) {
    RespawnLimits limits;
    limits.at_once = 1;
    limits.first_delay = 50ms;
    limits.max_delay = 120ms;
    limits.fork_loop_after = 2;
    RespawnBackoff backoff(limits);
    Clock::time_point at = Clock::time_point{} + 1h;
    CHECK(delays(backoff, at, 5) ==
          std::vector<std::chrono::milliseconds>{0ms, 50ms, 100ms, 120ms, 120ms});
    RespawnBackoff early(limits);
    early.on_death(at, 1ms, false);
    CHECK(early.on_death(at, 1ms, false).fork_loop_begins);
}
