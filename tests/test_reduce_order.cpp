// Reduce order (src/client/reduce_order.hpp), tested directly on the FoldOrder the client
// loop runs: results fold in index order whatever order their runs come back in, each index
// folds once, a parked run cut short is replaced by a longer copy, and the bytes parked and
// handed out are counted for the partials' bound.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <doctest/doctest.h>

#include "client/reduce_order.hpp"
#include "raw_peers.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;

namespace {

/// A result message as a worker sends it: the run [first, first + count) of job 1, each
/// partial "<tag><index>", parsed as the client parses it.
struct ResultRun {
    ResultRun(std::uint64_t first, std::uint64_t count, const std::string& tag) {
        std::vector<std::string> partials;
        for (std::uint64_t index = first; index < first + count; ++index)
            partials.push_back(tag + std::to_string(index));
        frames.push_back(
            test_support::batch_frame(Command::result, 1, {first, count, 0}, partials));
        message = parse(frames, 0);
    }

    std::vector<zmq::message_t> frames;
    Inbound message;
};

/// What reduce saw, in order: "index:partial".
struct Folds {
    void operator()(std::span<const std::byte> partial, std::uint64_t index) {
        seen.push_back(std::to_string(index) + ":" +
                       std::string(reinterpret_cast<const char*>(partial.data()), partial.size()));
    }
    std::vector<std::string> seen;
};

/// Folds what the order handed out, as a strand does.
void fold_all(std::vector<FoldRun>& out, Folds& folds) {
    for (const FoldRun& run : out)
        FoldOrder::fold(run, folds);
    out.clear();
}

/// What the client loop does with a result in subtask order: returns the fresh count.
std::uint64_t take_in_order(FoldOrder& order, ResultRun& run, Folds& folds) {
    const std::uint64_t first = run.message.fields[1];
    const std::uint64_t count = run.message.fields[2];
    const std::uint64_t fresh = order.arrive(first, count);
    std::vector<FoldRun> out;
    if (fresh != 0)
        order.take_in_order(first, count, *run.message.frame, out);
    fold_all(out, folds);
    return fresh;
}

/// The same in arrival order.
std::uint64_t take_arrived(FoldOrder& order, ResultRun& run, Folds& folds) {
    std::vector<FoldRun> out;
    const std::uint64_t fresh =
        order.take_arrived(run.message.fields[1], run.message.fields[2], *run.message.frame, out);
    fold_all(out, folds);
    return fresh;
}

}  // namespace

TEST_CASE("ReduceOrder.out_of_order_runs_fold_in_index_order" * doctest::timeout(30)) {
    FoldOrder order(dtask::ReduceOrder::subtask_order);
    Folds folds;
    ResultRun late(4, 2, "r"), middle(2, 2, "r"), early(0, 2, "r");

    CHECK(take_in_order(order, late, folds) == 2);
    CHECK(take_in_order(order, middle, folds) == 2);
    CHECK(folds.seen.empty());
    CHECK(order.parked() == 2);
    CHECK(order.next_to_fold() == 0);

    CHECK(take_in_order(order, early, folds) == 2);
    CHECK(folds.seen == std::vector<std::string>{"0:r0", "1:r1", "2:r2", "3:r3", "4:r4", "5:r5"});
    CHECK(order.parked() == 0);
    CHECK(order.next_to_fold() == 6);
}

TEST_CASE("ReduceOrder.duplicates_fold_once" * doctest::timeout(30)) {
    SUBCASE("subtask order") {
        FoldOrder order(dtask::ReduceOrder::subtask_order);
        Folds folds;
        ResultRun first_copy(0, 3, "a"), second_copy(0, 3, "b"), overlapping(2, 3, "c");
        CHECK(take_in_order(order, first_copy, folds) == 3);
        CHECK(take_in_order(order, second_copy, folds) == 0);
        // Index 2 came back already: only 3 and 4 are new, and only they fold.
        CHECK(take_in_order(order, overlapping, folds) == 2);
        CHECK(folds.seen == std::vector<std::string>{"0:a0", "1:a1", "2:a2", "3:c3", "4:c4"});
        CHECK(order.next_to_fold() == 5);
    }
    SUBCASE("arrival order") {
        FoldOrder order(dtask::ReduceOrder::arrival_order);
        Folds folds;
        ResultRun late(3, 2, "a"), again(3, 2, "b"), early(0, 4, "c");
        CHECK(take_arrived(order, late, folds) == 2);
        CHECK(take_arrived(order, again, folds) == 0);
        CHECK(take_arrived(order, early, folds) == 3);
        CHECK(folds.seen == std::vector<std::string>{"3:a3", "4:a4", "0:c0", "1:c1", "2:c2"});
        CHECK(order.parked() == 0);
    }
}

TEST_CASE("ReduceOrder.cut_short_parked_run_is_replaced_by_a_longer_copy" * doctest::timeout(30)) {
    FoldOrder order(dtask::ReduceOrder::subtask_order);
    Folds folds;
    // The batch [2, 5) first comes back cut short before 4 (a retried subtask in it), then
    // whole from another copy; both are ahead of their turn.
    ResultRun cut_short(2, 2, "a"), whole(2, 3, "b"), shorter(6, 1, "d"), longer(6, 2, "e");
    CHECK(take_in_order(order, cut_short, folds) == 2);
    CHECK(order.parked() == 1);
    CHECK(take_in_order(order, whole, folds) == 1);
    CHECK(order.parked() == 1);  // replaced, not added
    // A longer copy that brings nothing new is not taken: its results are all in.
    CHECK(take_in_order(order, longer, folds) == 2);
    CHECK(take_in_order(order, shorter, folds) == 0);
    CHECK(order.parked() == 2);
    CHECK(folds.seen.empty());

    ResultRun early(0, 2, "c"), gap(5, 1, "f");
    CHECK(take_in_order(order, early, folds) == 2);
    CHECK(folds.seen == std::vector<std::string>{"0:c0", "1:c1", "2:b2", "3:b3", "4:b4"});
    CHECK(take_in_order(order, gap, folds) == 1);
    CHECK(folds.seen.back() == "7:e7");
    CHECK(folds.seen.size() == 8);
    CHECK(order.next_to_fold() == 8);
}

TEST_CASE("ReduceOrder.parked_bytes_are_counted_until_handed_out" * doctest::timeout(30)) {
    FoldOrder order(dtask::ReduceOrder::subtask_order);
    ResultRun early(0, 1, "a"), late(1, 2, "b"), later(3, 1, "c"), longer_late(1, 2, "bb");
    const std::size_t late_bytes = late.message.frame->size();
    const std::size_t later_bytes = later.message.frame->size();
    std::vector<FoldRun> out;
    REQUIRE(order.arrive(1, 2) == 2);
    order.take_in_order(1, 2, *late.message.frame, out);
    REQUIRE(order.arrive(3, 1) == 1);
    order.take_in_order(3, 1, *later.message.frame, out);
    CHECK(out.empty());
    CHECK(order.parked_bytes() == late_bytes + later_bytes);

    REQUIRE(order.arrive(0, 1) == 1);
    order.take_in_order(0, 1, *early.message.frame, out);
    CHECK(order.parked_bytes() == 0);
    // Each frame is handed out once, with its own bytes, in index order.
    REQUIRE(out.size() == 3);
    CHECK(out[0].from == 0);
    CHECK(out[1].from == 1);
    CHECK(out[1].to == 3);
    CHECK(out[1].bytes == late_bytes);
    CHECK(out[2].bytes == later_bytes);
    Folds folds;
    fold_all(out, folds);
    CHECK(folds.seen == std::vector<std::string>{"0:a0", "1:b1", "2:b2", "3:c3"});
}

TEST_CASE("ReduceOrder.arrival_gaps_share_one_frame_counted_once" * doctest::timeout(30)) {
    FoldOrder order(dtask::ReduceOrder::arrival_order);
    ResultRun middle(2, 1, "a"), whole(0, 5, "b");
    Folds folds;
    CHECK(take_arrived(order, middle, folds) == 1);
    const std::size_t whole_bytes = whole.message.frame->size();
    std::vector<FoldRun> out;
    // 2 came back already: [0, 2) and [3, 5) are new, two runs of the same frame.
    CHECK(order.take_arrived(0, 5, *whole.message.frame, out) == 4);
    REQUIRE(out.size() == 2);
    CHECK(out[0].bytes + out[1].bytes == whole_bytes);
    fold_all(out, folds);
    CHECK(folds.seen == std::vector<std::string>{"2:a2", "0:b0", "1:b1", "3:b3", "4:b4"});
}
