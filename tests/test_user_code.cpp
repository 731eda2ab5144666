// User code off the client's I/O thread (src/client/user_code.hpp): a slow reduce costs only
// its own job (the client's other jobs go on, its deadline still holds), and the partials
// waiting to be folded stay under RunOptions::reduce_bytes.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include <dtask/dtask.hpp>

#include "attempt_markers.hpp"
#include "client/mailbox.hpp"
#include "client/user_code.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "temp_dir.hpp"
#include "wire/protocol.hpp"

using namespace std::chrono_literals;
using namespace test_support;

namespace {

/// 0 + 1 + ... + (n - 1), each fold taking 30 ms on the host.
const dtask::Job<std::uint64_t> slow_fold{"tests.user_code.slow_fold",
                                          [](const std::uint64_t& n, dtask::SplitHint) {
                                              return dtask::pieces(
                                                  n, [](std::uint64_t i) { return i; });
                                          },
                                          [](const std::uint64_t& x) { return x; },
                                          [](std::uint64_t total, std::uint64_t part) {
                                              std::this_thread::sleep_for(30ms);
                                              return total + part;
                                          }};

// A reduce that stays in its first call until the test lets it go (at most 60 s).
std::atomic<bool> reduce_entered{false};
std::atomic<bool> reduce_released{false};

const dtask::Job<std::uint64_t> held_reduce{
    "tests.user_code.held_reduce",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& x) { return x; },
    [](std::uint64_t total, std::uint64_t part) {
        reduce_entered = true;
        wait_until([] { return reduce_released.load(); }, 60s);
        return total + part;
    }};

constexpr std::size_t big_partial = std::size_t{16} << 20;

/// Partials of 16 MiB; subtask 0 takes 3 s, so that in subtask order the others wait for it.
const dtask::Job<std::uint64_t> big_partials_behind_a_slow_one{
    "tests.user_code.big_partials",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return dtask::pieces(n, [](std::uint64_t i) { return i; });
    },
    [](const std::uint64_t& i) {
        if (i == 0)
            std::this_thread::sleep_for(3s);
        return std::string(big_partial, static_cast<char>('a' + i % 26));
    },
    [](std::uint64_t total, std::string part) {
        return total + part.size() + static_cast<unsigned char>(part.front());
    }};

/// A subtask of stuck_first: its index, and where its attempts are counted.
struct Marked {
    std::string directory;
    std::uint64_t index = 0;
    template <class Archive>
    void serialize(Archive& archive) {
        archive(directory, index);
    }
};

/// Partials of 1 MiB; the first attempt at subtask 0 sleeps 60 s, so that in subtask order the
/// others wait for it, until a backup copy of it runs.
const dtask::Job<std::uint64_t> stuck_first{
    "tests.user_code.stuck_first",
    [](const std::string& directory, dtask::SplitHint) {
        return dtask::pieces(40, [directory](std::uint64_t i) { return Marked{directory, i}; });
    },
    [](const Marked& subtask) {
        if (subtask.index == 0 && test_jobs::attempt_number(subtask.directory, 0) == 1)
            std::this_thread::sleep_for(60s);
        return std::string(std::size_t{1} << 20, 'x');
    },
    [](std::uint64_t total, std::string part) { return total + part.size(); }};

/// A line of /proc/self/status ("VmHWM:", "VmRSS:"), in KiB.
std::uint64_t status_kib(const std::string& field) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind(field, 0) == 0)
            return std::stoull(line.substr(field.size()));
    }
    FAIL("no " << field << " in /proc/self/status");
    return 0;
}

/// A run whose fold waits for `gate` (when given), and counts its folds.
class GatedRun : public dtask::detail::RunState {
public:
    GatedRun(std::string name, const std::atomic<bool>* gate)
        : RunState(std::move(name), "", "", {}, {}), gate_(gate) {}
    bool next_subtask(std::string&) override { return false; }
    void fold(std::span<const std::byte>, std::uint64_t) override {
        entered = true;
        if (gate_ != nullptr)
            test_support::wait_until([this] { return gate_->load(); }, 60s);
        ++folds;
    }
    void finish() override {}

    std::atomic<bool> entered{false};
    std::atomic<int> folds{0};

private:
    const std::atomic<bool>* gate_;
};

/// A fold of one result of `run`, job `id` of the loop.
dtask::detail::UserCodeWork fold_of(std::shared_ptr<GatedRun> run, std::uint64_t id) {
    using namespace dtask::detail;
    UserCodeWork work;
    work.run = std::move(run);
    work.job = id;
    FoldRun fold;
    fold.frame = batch_frame(protocol::Command::result, id, {0, 1, 0}, {"partial"});
    fold.to = 1;
    work.runs.push_back(std::move(fold));
    return work;
}

/// Waits (bounded) until the mailbox has heard that job `id` is done; false if it did not.
bool heard_done(dtask::detail::Mailbox& mailbox, std::uint64_t id) {
    bool heard = false;
    wait_until(
        [&] {
            for (const auto& done : mailbox.take().done)
                heard = heard || (done.job == id && !done.error);
            return heard;
        },
        30s);
    return heard;
}

}  // namespace

TEST_CASE("UserCode.a_strand_held_in_reduce_holds_up_no_other" * doctest::timeout(60)) {
    using namespace dtask::detail;
    auto mailbox = std::make_shared<Mailbox>();
    std::atomic<bool> gate{false};
    auto held = std::make_shared<GatedRun>("held", &gate);
    auto other = std::make_shared<GatedRun>("other", nullptr);
    auto held_strand = std::make_shared<Strand>();
    auto other_strand = std::make_shared<Strand>();
    UserCode user_code(mailbox);
    const auto t0 = UserCode::Clock::now();
    user_code.post(held_strand, fold_of(held, 1), t0);
    user_code.post(held_strand, fold_of(held, 1), t0);  // after the first, on the same strand
    CHECK(user_code.threads() == 1);
    REQUIRE(wait_until([&] { return held->entered.load(); }, 30s));
    for (int i = 0; i < 3; ++i)
        user_code.post(other_strand, fold_of(other, 2), t0);
    // The only thread is held: the other strand waits for it, for `patience` at most.
    CHECK(user_code.threads() == 1);
    CHECK(user_code.stuck_at() == t0 + UserCode::patience);
    user_code.unstick(t0 + UserCode::patience - 1ns);
    CHECK(user_code.threads() == 1);
    user_code.unstick(t0 + UserCode::patience);
    CHECK(user_code.threads() == 2);
    CHECK(user_code.stuck_at() == UserCode::Clock::time_point::max());
    CHECK(heard_done(*mailbox, 2));
    CHECK(wait_until([&] { return other->folds == 3; }, 30s));
    CHECK(held->folds == 0);
    gate = true;
    CHECK(heard_done(*mailbox, 1));
    REQUIRE(wait_until([&] { return held->folds == 2; }, 30s));
}

TEST_CASE("UserCode.slow_strands_get_no_more_threads_than_the_bound" * doctest::timeout(60)) {
    using namespace dtask::detail;
    auto mailbox = std::make_shared<Mailbox>();
    std::atomic<bool> gate{false};
    std::vector<std::shared_ptr<GatedRun>> runs;
    std::vector<std::shared_ptr<Strand>> strands;
    UserCode user_code(mailbox, 2);
    const auto t0 = UserCode::Clock::now();
    for (std::uint64_t id = 1; id <= 4; ++id) {
        runs.push_back(std::make_shared<GatedRun>("held", &gate));
        strands.push_back(std::make_shared<Strand>());
        user_code.post(strands.back(), fold_of(runs.back(), id), t0);
    }
    REQUIRE(wait_until([&] { return runs[0]->entered.load(); }, 30s));
    // Every strand has waited long enough for a thread of its own; two threads at most.
    user_code.unstick(t0 + UserCode::patience);
    CHECK(user_code.threads() == 2);
    CHECK(user_code.stuck_at() == UserCode::Clock::time_point::max());
    user_code.unstick(t0 + 10 * UserCode::patience);
    CHECK(user_code.threads() == 2);
    CHECK(UserCode::default_max_threads() >= 16);
    // Once they return, the strands that waited run in turn.
    gate = true;
    CHECK(wait_until(
        [&] {
            return std::all_of(runs.begin(), runs.end(),
                               [](const auto& run) { return run->folds == 1; });
        },
        30s));
    CHECK(user_code.threads() <= 2);
}

TEST_CASE("UserCode.small_job_is_not_held_up_by_another_jobs_slow_folds" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    auto slow = cluster.submit(slow_fold, std::uint64_t{100});
    REQUIRE(wait_until([&] { return slow.progress().done >= 1; }, 60s));
    auto small = cluster.submit(test_jobs::squares, std::uint64_t{10});
    CHECK(get_within(small) == test_jobs::serial_squares(10));
    const std::uint64_t slow_done = slow.progress().done;
    MESSAGE("when the small job ended, the slow one had folded " << slow_done << " of 100");
    // A count, not a time: on the I/O thread the small job waited for nearly all 100 folds.
    CHECK(slow_done < 50);
    CHECK(get_within(slow) == 100ULL * 99 / 2);
}

TEST_CASE("UserCode.a_reduce_that_does_not_return_stops_neither_deadline_nor_other_jobs" *
          doctest::timeout(120)) {
    reduce_entered = false;
    reduce_released = false;
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    auto held = cluster.submit(held_reduce, std::uint64_t{20}, dtask::RunOptions{.deadline = 1s});
    REQUIRE(wait_until([] { return reduce_entered.load(); }, 60s));
    // The client's other jobs go on while the reduce is held...
    CHECK(run_within(cluster, test_jobs::squares, std::uint64_t{1000}) ==
          test_jobs::serial_squares(1000));
    // ...and the held job's deadline is kept, although its reduce has not returned.
    const auto error = error_of<dtask::TimeoutError>(held, 30s);
    CHECK(contains(error.what(), "tests.user_code.held_reduce"));
    CHECK_FALSE(reduce_released.load());
    reduce_released = true;  // the Cluster's destructor waits for the reduce under way
}

TEST_CASE("UserCode.partials_waiting_behind_a_slow_subtask_stay_under_the_bound" *
          doctest::timeout(170)) {
    // Under a sanitizer, shadow memory makes the host's RSS meaningless and 16 MiB copies slow:
    // a shorter run with a smaller bound checks the result alone.
    // A sanitizer's shadow memory counts in the host's RSS, and its slowness in 16 MiB copies.
    const std::uint64_t n = sanitized ? 12 : 100;
    dtask::RunOptions options;
    if (sanitized)
        options.reduce_bytes = std::size_t{48} << 20;
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    const std::uint64_t before_kib = status_kib("VmRSS:");
    auto handle = cluster.submit(big_partials_behind_a_slow_one, n, options);
    std::uint64_t expected = 0;
    for (std::uint64_t i = 0; i < n; ++i)
        expected += big_partial + static_cast<unsigned char>('a' + i % 26);
    CHECK(get_within(handle, 150s) == expected);
    if (sanitized)
        return;
    const std::uint64_t grown_mib = (status_kib("VmHWM:") - before_kib) / 1024;
    MESSAGE("the host grew by " << grown_mib << " MiB at its peak; 100 partials are 1600 MiB");
    // The default bound (256 MiB), and room for the results in transit through the broker
    // and the one being folded.
    CHECK(grown_mib < 256 + 160);
}

TEST_CASE("UserCode.a_window_held_by_partials_lets_the_slow_subtask_get_a_backup_copy" *
          doctest::timeout(120)) {
    // 4 MiB of partials fill the bound long before subtask 0 is back: split stops, and only a
    // backup copy of the stuck subtask (which the broker makes at a job's tail) can end it.
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 60s));
    const test_support::TempDir markers;
    auto handle =
        cluster.submit(stuck_first, markers.path(), dtask::RunOptions{.reduce_bytes = 4 << 20});
    CHECK(get_within(handle, 40s) == 40 * (std::uint64_t{1} << 20));
    CHECK(test_jobs::attempts_made(markers.path(), 0) == 2);
}

/// A run whose split makes `total` one-byte subtasks.
class CountedRun : public dtask::detail::RunState {
public:
    explicit CountedRun(std::uint64_t total)
        : RunState("tests.counted", "", "", {}, {}), left_(total) {}
    bool next_subtask(std::string& out) override {
        if (left_ == 0)
            return false;
        --left_;
        out.push_back('x');
        return true;
    }
    void fold(std::span<const std::byte>, std::uint64_t) override {}
    void finish() override {}

private:
    std::uint64_t left_;
};

TEST_CASE("UserCode.a_split_request_cuts_each_batch_for_the_tail" * doctest::timeout(30)) {
    // As the I/O thread did batch by batch: at most a quarter of what is left per worker.
    using namespace dtask::detail;
    UserCodeWork work;
    work.run = std::make_shared<CountedRun>(400);
    work.split.per_batch = 50;
    work.split.subtasks = 200;
    work.split.bytes = std::size_t{1} << 20;
    work.split.remaining = 400;
    work.split.workers = 2;
    const UserCodeDone done = perform(work);
    REQUIRE_FALSE(done.error);
    std::vector<std::uint64_t> counts;
    for (const auto& batch : done.batches)
        counts.push_back(batch.count);
    REQUIRE(counts.size() >= 3);
    CHECK(counts[0] == 50);  // 400 / 8
    CHECK(counts[1] == 43);  // 350 / 8
    CHECK(counts[2] == 38);  // 307 / 8
}
