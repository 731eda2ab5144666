// The split window (src/client/split_window.hpp), tested directly on the SplitWindow the
// client loop runs: its limits (subtasks, their bytes, batches, partials' bytes), the one
// batch it always lets out, and the round trips it hands the batch sizer.

#include <chrono>
#include <cstdint>

#include <doctest/doctest.h>

#include "client/split_window.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;

namespace {
const SplitWindow::Clock::time_point t0{};
}

TEST_CASE("SplitWindow.count_bounds_subtasks_split_off_and_not_folded" * doctest::timeout(30)) {
    SplitWindow window(10, 0);
    window.on_partials(1, 1);  // partials of a byte: their bound plays no part here
    CHECK(window.open());
    CHECK(window.room() == 10);
    CHECK(window.on_sent(4, 100, t0) == 0);
    CHECK(window.room() == 6);
    CHECK(window.on_sent(6, 100, t0) == 4);
    CHECK_FALSE(window.open());
    CHECK(window.room() == 0);
    // Results back but not folded (parked for ordered folding) still count.
    window.on_returned(0, 4, 4);
    CHECK_FALSE(window.open());
    for (int i = 0; i < 3; ++i)
        window.on_folded();
    CHECK(window.open());
    CHECK(window.room() == 3);
    CHECK(window.emitted() == 10);
    CHECK(window.folded() == 3);
    CHECK_FALSE(window.all_folded());
}

TEST_CASE("SplitWindow.bytes_bound_the_batches_out_but_one_always_goes" * doctest::timeout(30)) {
    SplitWindow window(0, 1000);
    window.on_partials(1, 1);
    CHECK(window.room() == SplitWindow::default_count);
    // With no batch out, one goes whatever its size.
    window.on_sent(1, 5000, t0);
    CHECK(window.bytes_out() == 5000);
    CHECK_FALSE(window.open());
    window.on_returned(0, 1, 1);
    CHECK(window.bytes_out() == 0);
    CHECK(window.batches_out() == 0);
    CHECK(window.open());
    window.on_sent(1, 400, t0);
    CHECK(window.open());
    window.on_sent(1, 600, t0);
    CHECK_FALSE(window.open());  // 1000 is not less than 1000
    window.on_returned(1, 1, 1);
    CHECK(window.bytes_out() == 600);
    CHECK(window.open());
}

TEST_CASE("SplitWindow.batches_out_are_bounded" * doctest::timeout(30)) {
    SplitWindow window(0, 0);
    window.on_partials(1, 1);
    CHECK(window.room() == SplitWindow::default_count);
    for (std::size_t i = 0; i < SplitWindow::max_batches_out; ++i) {
        REQUIRE(window.open());
        window.on_sent(1, 1, t0);
    }
    CHECK(window.batches_out() == 1024);
    CHECK_FALSE(window.open());
    window.on_returned(7, 1, 1);  // any batch wholly back frees a place
    CHECK(window.batches_out() == 1023);
    CHECK(window.open());
}

TEST_CASE("SplitWindow.round_trip_only_for_a_batch_back_whole_in_one_run" * doctest::timeout(30)) {
    SplitWindow window(0, 0);
    window.on_sent(4, 100, t0 + 1ms);
    window.on_sent(4, 100, t0 + 2ms);
    window.on_sent(4, 100, t0 + 3ms);
    // The first batch back in two runs: freed, but no round trip.
    CHECK_FALSE(window.on_returned(0, 2, 2).has_value());
    CHECK(window.batches_out() == 3);
    CHECK_FALSE(window.on_returned(2, 2, 2).has_value());
    CHECK(window.batches_out() == 2);
    CHECK(window.bytes_out() == 200);
    // A duplicate frees nothing.
    CHECK_FALSE(window.on_returned(4, 4, 0).has_value());
    CHECK(window.batches_out() == 2);
    // The third batch whole in one run, ahead of the second.
    const auto sent_at = window.on_returned(8, 4, 4);
    REQUIRE(sent_at.has_value());
    CHECK(*sent_at == t0 + 3ms);
    CHECK(window.on_returned(4, 4, 4) == t0 + 2ms);
    CHECK(window.batches_out() == 0);
    CHECK(window.bytes_out() == 0);
}

TEST_CASE("SplitWindow.results_are_only_of_subtasks_sent" * doctest::timeout(30)) {
    SplitWindow window(0, 0);
    CHECK_FALSE(window.sent_all_of(0, 1));
    window.on_sent(5, 10, t0);
    CHECK(window.sent_all_of(0, 5));
    CHECK(window.sent_all_of(4, 1));
    CHECK_FALSE(window.sent_all_of(4, 2));
    CHECK_FALSE(window.sent_all_of(2, 0));
    CHECK_FALSE(window.sent_all_of(6, 1));
    CHECK_FALSE(window.sent_all_of(1, UINT64_MAX));
}

TEST_CASE("SplitWindow.few_subtasks_out_until_a_result_size_is_known" * doctest::timeout(30)) {
    SplitWindow window(0, 0, 1000);
    const std::size_t workers = 3;
    const std::size_t limit = SplitWindow::unmeasured_per_worker * workers;
    CHECK(window.room(workers) == limit);
    window.on_sent(limit - 1, 10, t0);
    CHECK(window.open(workers));
    CHECK(window.room(workers) == 1);
    window.on_sent(1, 10, t0);
    CHECK_FALSE(window.open(workers));
    // The first result tells the size: 100 bytes each, so 10 fit in the bound, and 5 are out.
    window.on_returned(0, 1, 1);
    window.on_partials(1, 100);
    window.set_held(100);
    CHECK(window.out() == limit - 1);
    CHECK(window.open(workers));
    CHECK(window.room(workers) == (1000 - 100 - (limit - 1) * 100) / 100);
}

TEST_CASE("SplitWindow.partials_held_and_foretold_bound_the_split" * doctest::timeout(30)) {
    SplitWindow window(0, 0, 1000);
    window.on_partials(1, 100);
    window.on_sent(5, 10, t0);
    CHECK(window.room() == 5);
    window.on_sent(5, 10, t0);
    CHECK_FALSE(window.open());  // ten results of 100 bytes foretold
    // Subtask 0 is slow: the nine others come back and wait, parked, for their turn.
    for (std::uint64_t i = 1; i < 10; ++i)
        window.on_returned(i, 1, 1);
    window.set_held(900);
    CHECK_FALSE(window.open());
    // Subtask 0 comes back and all ten are handed to reduce: held until folded.
    window.on_returned(0, 1, 1);
    window.set_held(1000);
    CHECK_FALSE(window.open());
    window.on_folded(10);
    window.set_held(0);
    CHECK(window.open());
    CHECK(window.room() == 10);
}

TEST_CASE("SplitWindow.a_partial_over_the_bound_still_goes_one_at_a_time" * doctest::timeout(30)) {
    SplitWindow window(0, 0, 1000);
    window.on_partials(1, 5000);
    CHECK(window.open());  // nothing out, nothing held: one always goes
    CHECK(window.room() == 1);
    window.on_sent(1, 10, t0);
    CHECK_FALSE(window.open());
    window.on_returned(0, 1, 1);
    window.set_held(5000);
    CHECK_FALSE(window.open());  // waits for its fold
    window.on_folded();
    window.set_held(0);
    CHECK(window.open());
}

TEST_CASE("SplitWindow.partial_bound_defaults" * doctest::timeout(30)) {
    SplitWindow window(0, 0, 0);
    window.on_partials(1, 1 << 20);
    window.on_sent(255, 10, t0);
    CHECK(window.open());
    window.on_sent(1, 10, t0);
    CHECK_FALSE(window.open());  // 256 MiB foretold
}
