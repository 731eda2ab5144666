// Fair share (src/broker/fair_share.hpp), tested directly: the turns the broker's dispatch
// takes, counted in subtasks, without sockets.

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <doctest/doctest.h>

#include "broker/fair_share.hpp"
#include "broker/jobs.hpp"

using namespace dtask::detail;

namespace {

/// Jobs as the broker keeps them, and the rotation over them.
struct Rotation {
    std::unordered_map<std::uint64_t, BrokerJob> jobs;
    FairShare fair_share;

    /// A job of `priority` with `batches` batches of `size` subtasks queued, in the rotation.
    BrokerJob& add(std::uint64_t id, unsigned priority, std::size_t batches, std::uint64_t size) {
        BrokerJob& job = jobs[id];
        job.id = id;
        job.turns.priority = priority;
        job.name = "tests.job";
        job.signature = "signature";
        for (std::size_t i = 0; i < batches; ++i)
            job.queue.push_back(QueuedBatch{i * size, size, zmq::message_t()});
        fair_share.join(id, job.turns);
        return job;
    }

    /// The next turn, for a worker that serves every job: the job's id, 0 if none.
    std::uint64_t next(std::uint64_t* subtasks = nullptr) {
        auto turn = fair_share.next(
            [&](std::uint64_t id) -> BrokerJob* {
                auto it = jobs.find(id);
                return it == jobs.end() ? nullptr : &it->second;
            },
            [](const BrokerJob&) { return true; });
        if (turn.job == nullptr)
            return 0;
        if (subtasks != nullptr)
            *subtasks = turn.batch.count;
        return turn.job->id;
    }
};

}  // namespace

TEST_CASE("FairShare.priorities_3_and_1_give_a_3_to_1_ratio" * doctest::timeout(30)) {
    Rotation rotation;
    rotation.add(1, 3, 1000, 8);
    rotation.add(2, 1, 1000, 8);
    std::map<std::uint64_t, std::uint64_t> handed_out;
    // 10 rounds: a turn of 3 × 64 subtasks for job 1, then one of 64 for job 2.
    for (int i = 0; i < 320; ++i) {
        std::uint64_t subtasks = 0;
        const std::uint64_t job = rotation.next(&subtasks);
        REQUIRE(job != 0);
        handed_out[job] += subtasks;
    }
    CHECK(handed_out[1] == 1920);
    CHECK(handed_out[2] == 640);
    CHECK(handed_out[1] == 3 * handed_out[2]);
    // A turn is whole: job 1's first 24 batches come in a row.
    Rotation fresh;
    fresh.add(1, 3, 100, 8);
    fresh.add(2, 1, 100, 8);
    std::vector<std::uint64_t> order;
    for (int i = 0; i < 33; ++i)
        order.push_back(fresh.next());
    CHECK(std::count(order.begin(), order.begin() + 24, 1u) == 24);
    CHECK(std::count(order.begin() + 24, order.begin() + 32, 2u) == 8);
    CHECK(order[32] == 1);
}

TEST_CASE(
    "FairShare.a_batch_larger_than_the_rest_of_a_turn_is_sent_and_its_excess_carried_as_debt" *
    doctest::timeout(30)) {
    Rotation rotation;
    BrokerJob& large = rotation.add(1, 1, 100, 100);  // batches above a turn of 64
    rotation.add(2, 1, 100, 16);
    std::vector<std::uint64_t> order;
    for (int i = 0; i < 15; ++i)
        order.push_back(rotation.next());
    // Job 1 takes 100 (owes 36), job 2 its 64; job 1's next turn (28) takes 100 more (owes 72);
    // job 2; job 1's turn still leaves a debt (-8), so job 2 goes again; then job 1.
    const std::vector<std::uint64_t> expected{1, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 2, 2, 1};
    CHECK(order == expected);
    CHECK(large.turns.left == -44);
    // Over many turns each job gets the same number of subtasks, within one large batch.
    std::map<std::uint64_t, std::int64_t> handed_out;
    for (int i = 0; i < 60; ++i) {
        std::uint64_t subtasks = 0;
        const std::uint64_t job = rotation.next(&subtasks);
        handed_out[job] += static_cast<std::int64_t>(subtasks);
    }
    CHECK(std::abs(handed_out[1] - handed_out[2]) <= 100);
}

TEST_CASE("FairShare.a_job_whose_queue_empties_leaves_the_rotation_and_the_others_continue" *
          doctest::timeout(30)) {
    Rotation rotation;
    BrokerJob& brief = rotation.add(1, 1, 2, 8);
    BrokerJob& longer = rotation.add(2, 1, 10, 8);
    CHECK(rotation.next() == 1);
    CHECK(brief.turns.in_rotation);
    CHECK(rotation.next() == 1);
    CHECK_FALSE(brief.turns.in_rotation);  // its queue emptied
    CHECK(brief.turns.left == 0);
    for (int i = 0; i < 10; ++i)
        CHECK(rotation.next() == 2);  // turn after turn, alone
    CHECK(rotation.next() == 0);
    CHECK_FALSE(longer.turns.in_rotation);
    CHECK(rotation.fair_share.empty());
    // Work queued again puts a job back; an erased job's stale id is skipped.
    rotation.add(3, 1, 1, 8);
    rotation.jobs.erase(3);
    brief.queue.push_back(QueuedBatch{16, 8, zmq::message_t()});
    rotation.fair_share.join(1, brief.turns);
    CHECK(rotation.next() == 1);
    CHECK(rotation.next() == 0);
}

TEST_CASE("FairShare.a_job_the_worker_does_not_serve_keeps_its_place" * doctest::timeout(30)) {
    Rotation rotation;
    rotation.add(1, 1, 4, 8);
    rotation.add(2, 1, 4, 8);
    auto find = [&](std::uint64_t id) -> BrokerJob* { return &rotation.jobs.at(id); };
    // Another worker offers both.
    rotation.fair_share.worker_joined(
        std::map<std::string, std::string>{{"tests.job", "signature"}}, find);
    auto turn = rotation.fair_share.next(find, [](const BrokerJob& job) { return job.id == 2; });
    REQUIRE(turn.job != nullptr);
    CHECK(turn.job->id == 2);
    CHECK(rotation.jobs.at(1).queue.size() == 4);
    CHECK(rotation.next() == 2);  // job 2's turn goes on
    auto none = rotation.fair_share.next(find, [](const BrokerJob&) { return false; });
    CHECK(none.job == nullptr);
    CHECK(rotation.jobs.at(1).turns.in_rotation);
}

TEST_CASE("FairShare.jobs_no_worker_offers_are_parked_and_cost_a_feed_nothing" *
          doctest::timeout(30)) {
    // The steps (jobs looked at) of 100 turns for a worker beside `unserved` jobs that no
    // connected worker offers: the same for 10 of them as for 20,000.
    const std::map<std::string, std::string> offered{{"tests.job", "signature"}};
    const auto steps_beside = [&](std::uint64_t unserved) {
        Rotation rotation;
        std::size_t steps = 0;
        auto find = [&](std::uint64_t id) -> BrokerJob* {
            ++steps;
            auto it = rotation.jobs.find(id);
            return it == rotation.jobs.end() ? nullptr : &it->second;
        };
        auto serves = [](const BrokerJob& job) { return job.name == "tests.job"; };
        rotation.fair_share.worker_joined(offered, find);
        for (std::uint64_t id = 1; id <= unserved; ++id)
            rotation.add(id, 1, 1, 8).name = "tests.nobody";
        rotation.add(unserved + 1, 1, 1000, 8);
        REQUIRE(rotation.fair_share.next(find, serves).job != nullptr);  // finds them
        steps = 0;
        for (int turn = 0; turn < 100; ++turn) {
            auto next = rotation.fair_share.next(find, serves);
            REQUIRE(next.job != nullptr);
            CHECK(next.job->id == unserved + 1);
        }
        return steps;
    };
    const std::size_t few = steps_beside(10);
    const std::size_t many = steps_beside(20'000);
    CHECK(few == many);
    CHECK(few <= 200);
}

TEST_CASE("FairShare.parked_jobs_come_back_when_a_worker_that_offers_them_joins" *
          doctest::timeout(30)) {
    Rotation rotation;
    auto find = [&](std::uint64_t id) -> BrokerJob* {
        auto it = rotation.jobs.find(id);
        return it == rotation.jobs.end() ? nullptr : &it->second;
    };
    rotation.fair_share.worker_joined(
        std::map<std::string, std::string>{{"tests.job", "signature"}}, find);
    constexpr std::uint64_t unserved = 10;
    for (std::uint64_t id = 1; id <= unserved; ++id)
        rotation.add(id, 1, 1, 8).name = "tests.nobody";
    rotation.add(unserved + 1, 1, 1000, 8);
    auto serves = [](const BrokerJob& job) { return job.name == "tests.job"; };
    REQUIRE(rotation.fair_share.next(find, serves).job != nullptr);
    CHECK(rotation.fair_share.parked() == unserved);
    CHECK_FALSE(rotation.jobs.at(1).turns.in_rotation);
    rotation.fair_share.worker_joined(
        std::map<std::string, std::string>{{"tests.nobody", "signature"}}, find);
    CHECK(rotation.fair_share.parked() == 0);
    CHECK(rotation.jobs.at(1).turns.in_rotation);
    std::set<std::uint64_t> ran;
    for (int turn = 0; turn < 100 && ran.size() < unserved; ++turn) {
        auto next = rotation.fair_share.next(find, [](const BrokerJob&) { return true; });
        REQUIRE(next.job != nullptr);
        if (next.job->id <= unserved)
            ran.insert(next.job->id);
    }
    CHECK(ran.size() == unserved);
}

TEST_CASE("FairShare.a_parked_job_erased_is_forgotten" * doctest::timeout(30)) {
    Rotation rotation;
    auto find = [&](std::uint64_t id) -> BrokerJob* {
        auto it = rotation.jobs.find(id);
        return it == rotation.jobs.end() ? nullptr : &it->second;
    };
    BrokerJob& nobody = rotation.add(1, 1, 1, 8);
    CHECK(rotation.fair_share.next(find, [](const BrokerJob&) { return false; }).job == nullptr);
    REQUIRE(rotation.fair_share.parked() == 1);
    CHECK_FALSE(nobody.turns.in_rotation);
    rotation.fair_share.join(1, nobody.turns);  // more subtasks came: it stays parked
    CHECK_FALSE(nobody.turns.in_rotation);
    rotation.fair_share.forget(1, nobody.name, nobody.signature, nobody.turns);
    rotation.jobs.erase(1);
    CHECK(rotation.fair_share.parked() == 0);
    rotation.fair_share.worker_joined(
        std::map<std::string, std::string>{{"tests.job", "signature"}}, find);
    CHECK(rotation.fair_share.in_rotation() == 0);
}
