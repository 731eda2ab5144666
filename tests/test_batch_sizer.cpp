// The batch sizer (src/wire/batch_sizer.hpp), tested directly: one subtask until map's cost
// is known, then 200 message costs of work within 2 to 20 ms, at most 4096, and at the tail a
// quarter of what is left per worker.

#include <chrono>
#include <optional>

#include <doctest/doctest.h>

#include "wire/batch_sizer.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

TEST_CASE("BatchSizer.one_subtask_until_a_result_came_back" * doctest::timeout(30)) {
    BatchSizer sizer(0);
    CHECK_FALSE(sizer.measured());
    CHECK(sizer.next(std::nullopt, 4) == 1);
    CHECK(sizer.next(1'000'000, 4) == 1);
    sizer.observe(0, 1ms, std::nullopt);  // an empty run tells nothing
    CHECK_FALSE(sizer.measured());
    sizer.observe(1, 100us, std::nullopt);
    CHECK(sizer.measured());
}

TEST_CASE("BatchSizer.batches_run_for_200_message_costs_within_2_to_20_ms" * doctest::timeout(30)) {
    BatchSizer sizer(0);
    // 100 us per subtask, message cost not yet measured (50 us): 10 ms.
    sizer.observe(1, 100us, std::nullopt);
    CHECK(sizer.batch_time() == 10ms);
    CHECK(sizer.next(std::nullopt, 1) == 100);
    // A round trip 20 us longer than map: 200 × 20 us = 4 ms.
    sizer.observe(1, 100us, 120us);
    CHECK(sizer.batch_time() == 4ms);
    CHECK(sizer.next(std::nullopt, 1) == 40);
    // The least cost is kept, and 200 × 1 us is raised to 2 ms.
    sizer.observe(1, 100us, 101us);
    sizer.observe(1, 100us, 5ms);
    CHECK(sizer.batch_time() == 2ms);
    CHECK(sizer.next(std::nullopt, 1) == 20);
    // Map's cost is smoothed: a quarter of the new sample.
    sizer.observe(2, 400us, std::nullopt);  // 200 us each: 0.75 × 100 + 0.25 × 200 = 125 us
    CHECK(sizer.next(std::nullopt, 1) == 16);
    // A slow network: 200 × 1 ms is cut to 20 ms.
    BatchSizer far(0);
    far.observe(1, 1ms, 2ms);
    CHECK(far.batch_time() == 20ms);
    CHECK(far.next(std::nullopt, 1) == 20);
}

TEST_CASE("BatchSizer.at_most_4096_and_a_quarter_per_worker_at_the_tail" * doctest::timeout(30)) {
    BatchSizer sizer(0);
    sizer.observe(1000, 1000ns, std::nullopt);  // 1 ns per subtask
    CHECK(sizer.next(std::nullopt, 1) == BatchSizer::max_batch);
    CHECK(BatchSizer::max_batch == 4096);
    CHECK(sizer.next(800, 2) == 100);  // 800 / (4 × 2)
    CHECK(sizer.next(7, 2) == 1);      // at least one
    CHECK(sizer.next(100'000, 0) == 4096);
}

TEST_CASE("BatchSizer.fixed_size_is_kept_within_the_bounds" * doctest::timeout(30)) {
    BatchSizer five(5);
    CHECK(five.measured());
    CHECK(five.next(std::nullopt, 1) == 5);
    CHECK(five.next(8, 1) == 2);  // the tail still spreads
    CHECK(BatchSizer(1).next(std::nullopt, 1) == 1);
    CHECK(BatchSizer(100'000).next(std::nullopt, 1) == 4096);
}
