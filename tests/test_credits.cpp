// Credits (src/broker/credits.hpp), tested directly: how many batches a worker may hold, as
// the broker sizes it from the intervals between the batches it finishes.

#include <chrono>
#include <vector>

#include <doctest/doctest.h>

#include "broker/credits.hpp"

using namespace dtask::detail;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// A worker's credits fed batches sent at `start`, finished one after the other.
struct Worker {
    Credits credits;
    Clock::time_point start = Clock::time_point{} + 1h;
    Clock::time_point at = start;
    unsigned offered = 64;

    void hold(std::int64_t expected_ns = 1000) {
        credits.hold(HeldBatch{1, 0, 1, 0, zmq::message_t(), start, expected_ns});
    }
    /// The oldest batch finishes `after` the one before; returns the limit then.
    unsigned finish(Clock::duration after) {
        at += after;
        credits.finished(credits.held.front(), at, offered);
        credits.release(credits.held.begin());
        hold();  // another behind it: it runs back to back
        return credits.limit;
    }
};

}  // namespace

TEST_CASE("Credits.the_limit_grows_and_shrinks_with_the_finish_intervals" * doctest::timeout(30)) {
    Worker worker;
    for (int i = 0; i < 3; ++i)
        worker.hold();
    // The first batch finished tells nothing: no batch finished before it.
    CHECK(worker.finish(1ms) == 2);
    CHECK(worker.credits.finish_interval_ns == 0);
    // Batches of 100 us: 2 ms of work is 20 of them.
    CHECK(worker.finish(100us) == 20);
    CHECK(worker.credits.finish_interval_ns == doctest::Approx(100'000));
    // Slower batches: the smoothed interval (0.75 old + 0.25 new) grows, the limit shrinks.
    CHECK(worker.finish(1ms) == 7);  // 325 us: ceil(2 ms / 325 us)
    CHECK(worker.finish(1ms) == 5);  // 493.75 us
    for (int i = 0; i < 20; ++i)
        worker.finish(2ms);
    CHECK(worker.credits.limit == 2);  // never below 2
    // Fast again: it grows, up to the credits the worker offered.
    worker.offered = 8;
    for (int i = 0; i < 40; ++i)
        worker.finish(10us);
    CHECK(worker.credits.limit == 8);
    CHECK(worker.credits.held_work_ns == 3 * 1000);
}

TEST_CASE("Credits.a_batch_finished_after_an_idle_spell_does_not_size_the_limit" *
          doctest::timeout(30)) {
    Worker worker;
    worker.hold();
    worker.credits.last_result_at = worker.start + 1ms;
    // It held this batch alone: the interval includes the wait for it, not its cost.
    worker.credits.finished(worker.credits.held.front(), worker.start + 50us + 1ms, 64);
    CHECK(worker.credits.limit == 2);
    CHECK(worker.credits.finish_interval_ns == 0);
    CHECK(worker.credits.last_result_at == worker.start + 50us + 1ms);
}

TEST_CASE("Credits.has_room_under_2_batches_or_under_the_limit_and_the_credit_time" *
          doctest::timeout(30)) {
    const std::int64_t credit_ns = std::chrono::nanoseconds(credit_time).count();
    Credits credits;
    CHECK(credits.has_room());
    // Below 2 batches, whatever their expected work.
    credits.hold(HeldBatch{1, 0, 1, 0, zmq::message_t(), {}, 10 * credit_ns});
    CHECK(credits.has_room());
    credits.hold(HeldBatch{1, 1, 1, 1, zmq::message_t(), {}, 100});
    CHECK_FALSE(credits.has_room());  // the limit of 2
    // A limit of 8: room while the expected work is under credit_time.
    credits.limit = 8;
    CHECK_FALSE(credits.has_room());  // 10 credit times held
    credits.release(credits.held.begin());
    CHECK(credits.held_work_ns == 100);
    for (std::uint64_t i = 2; i < 8; ++i) {
        CHECK(credits.has_room());
        credits.hold(HeldBatch{1, i, 1, i, zmq::message_t(), {}, 100});
    }
    CHECK(credits.held.size() == 7);
    CHECK(credits.has_room());
    credits.hold(HeldBatch{1, 8, 1, 8, zmq::message_t(), {}, 100});
    CHECK_FALSE(credits.has_room());  // 8 held: the limit
    credits.release(credits.find(1, 5));
    CHECK(credits.has_room());
    credits.release(credits.find(1, 6));
    credits.hold(HeldBatch{1, 9, 1, 9, zmq::message_t(), {}, credit_ns});
    CHECK_FALSE(credits.has_room());  // 7 batches, but more than credit_time of work
    // A worker that offered 1 credit holds 1 batch.
    Credits single;
    single.limit = 1;
    single.hold(HeldBatch{1, 0, 1, 0, zmq::message_t(), {}, 1});
    CHECK_FALSE(single.has_room());
}

TEST_CASE("Credits.expected_work_is_half_the_credit_time_until_a_result_tells" *
          doctest::timeout(30)) {
    WorkCost cost;
    CHECK(cost.expected_ns(1000) == std::chrono::nanoseconds(credit_time).count() / 2);
    // A report longer than the broker waited counts as the wait.
    cost.add(50'000, 30'000, 10);
    CHECK(cost.map_ns == doctest::Approx(30'000));
    CHECK(cost.expected_ns(5) == 15'000);
    cost.add(10'000, -5, 10);  // a clock step back counts as nothing
    CHECK(cost.expected_ns(20) == 30'000);
}

TEST_CASE("Credits.workers_with_room_are_listed_once_and_leave_in_O1" * doctest::timeout(30)) {
    struct Peer {
        Credits credits;
    };
    std::vector<Peer> peers(3);
    WithRoom<Peer> room;
    for (auto& peer : peers)
        room.add(peer);
    room.add(peers[0]);
    CHECK(room.size() == 3);
    room.remove(peers[0]);  // the last moves into its slot
    CHECK(room.size() == 2);
    CHECK(&room[0] == &peers[2]);
    CHECK(peers[2].credits.room_slot == 0);
    CHECK_FALSE(peers[0].credits.listed_with_room);
    room.remove(peers[0]);
    CHECK(room.size() == 2);
}
