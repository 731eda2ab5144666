// Local workers (src/broker/local_workers.hpp), tested directly: when a dead local worker is
// replaced, as the broker's LocalWorkers asks RespawnSchedule, without processes.

#include <algorithm>
#include <chrono>
#include <vector>

#include <doctest/doctest.h>

#include "broker/local_workers.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// The delays before each replacement, for `deaths` deaths 1 s apart; -1 ms for none.
std::vector<std::chrono::milliseconds> delays(RespawnSchedule& schedule, Clock::time_point& at,
                                              unsigned deaths) {
    std::vector<std::chrono::milliseconds> out;
    for (unsigned i = 0; i < deaths; ++i) {
        at += 1s;
        const auto decision = schedule.on_death(at);
        out.push_back(decision.respawn
                          ? std::chrono::duration_cast<std::chrono::milliseconds>(decision.delay)
                          : -1ms);
    }
    return out;
}

}  // namespace

TEST_CASE("LocalWorkers.respawn_at_once_three_times_then_from_100_ms_doubling_up_to_2_s" *
          doctest::timeout(30)) {
    RespawnSchedule schedule;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto got = delays(schedule, at, 10);
    const std::vector<std::chrono::milliseconds> expected{0ms,   0ms,   0ms,    100ms,  200ms,
                                                          400ms, 800ms, 1600ms, 2000ms, 2000ms};
    CHECK(got == expected);
    CHECK(schedule.deaths_in_a_row() == 10);
}

TEST_CASE("LocalWorkers.restarts_stop_after_20_deaths_in_a_row" * doctest::timeout(30)) {
    RespawnSchedule schedule;
    Clock::time_point at = Clock::time_point{} + 1h;
    const auto got = delays(schedule, at, max_restarts_in_a_row);
    CHECK(got.back() == 2000ms);
    CHECK(std::count(got.begin(), got.end(), -1ms) == 0);
    at += 1s;
    const auto last = schedule.on_death(at);  // the 21st
    CHECK_FALSE(last.respawn);
    CHECK(last.stopped);
    at += 1s;
    const auto after = schedule.on_death(at);
    CHECK_FALSE(after.respawn);
    CHECK_FALSE(after.stopped);  // said once
    CHECK(schedule.deaths_in_a_row() == 22);
}

TEST_CASE("LocalWorkers.a_death_30_s_after_the_last_or_after_30_s_of_service_starts_a_new_row" *
          doctest::timeout(30)) {
    RespawnSchedule schedule;
    Clock::time_point at = Clock::time_point{} + 1h;
    delays(schedule, at, 25);  // stopped
    at += 31s;
    const auto again = schedule.on_death(at);
    CHECK(again.respawn);
    CHECK(again.delay == Clock::duration::zero());
    CHECK(schedule.deaths_in_a_row() == 1);
    delays(schedule, at, 5);
    CHECK(schedule.deaths_in_a_row() == 6);
    // A worker that joined 31 s ago dies: not a crash loop.
    schedule.on_death_of_joined(at - 30s, at + 1s);
    CHECK(schedule.deaths_in_a_row() == 0);
    at += 1s;
    CHECK(schedule.on_death(at).delay == Clock::duration::zero());
    // One that joined 10 s ago: the row goes on.
    delays(schedule, at, 4);
    schedule.on_death_of_joined(at - 10s, at + 1s);
    CHECK(schedule.deaths_in_a_row() == 5);
    at += 1s;
    CHECK(schedule.on_death(at).delay == 400ms);  // the 6th in a row
}
