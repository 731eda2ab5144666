// RunOptions::on_progress on real jobs: spaced calls, never per subtask, a last call with the
// final figures before get() returns, and a callback that throws.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

/// What a progress callback saw: each call's time, figures and thread.
struct Calls {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<Clock::time_point> at;
    std::vector<dtask::Progress> seen;
    std::vector<std::thread::id> threads;

    void record(const dtask::Progress& progress) {
        const auto now = Clock::now();
        {
            std::lock_guard lock(mutex);
            at.push_back(now);
            seen.push_back(progress);
            threads.push_back(std::this_thread::get_id());
        }
        changed.notify_all();
    }
    std::size_t count() {
        std::lock_guard lock(mutex);
        return seen.size();
    }
    /// Waits until `calls` calls were made, for the split below; false after `timeout`.
    bool wait_for(std::size_t calls, std::chrono::milliseconds timeout) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, timeout, [&] { return seen.size() >= calls; });
    }
};

/// The calls the progress_gated job's split waits for before its last piece, and how many.
Calls* gate = nullptr;
std::size_t gate_calls = 0;

}  // namespace

/// 1 for each of n pieces of a generator split, which holds back its last piece until the
/// progress callback was called gate_calls times (at most 60 s): the job runs for several
/// progress intervals, with its total unknown, whatever the machine's speed.
inline const dtask::Job<std::uint64_t> progress_gated{
    "tests.progress_gated",
    [](const std::uint64_t& n, dtask::SplitHint) {
        return [n, next = std::uint64_t{0}]() mutable -> std::optional<std::uint64_t> {
            if (next == n)
                return std::nullopt;
            if (next + 1 == n && gate != nullptr)
                (void)gate->wait_for(gate_calls, 60s);
            ++next;
            return std::uint64_t{1};
        };
    },
    [](const std::uint64_t& one) { return one; },
    [](std::uint64_t total, std::uint64_t part) { return total + part; }};

TEST_CASE("Progress.calls_are_spaced_few_and_end_with_the_total" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    Calls calls;
    gate = &calls;
    gate_calls = 5;
    const auto interval = 20ms;
    const std::uint64_t n = 20'000;
    dtask::RunOptions options;
    options.progress_interval = interval;
    options.on_progress = [&](const dtask::Progress& progress) { calls.record(progress); };
    const auto start = Clock::now();
    auto handle = cluster.submit(progress_gated, n, options);
    const std::uint64_t result = get_within(handle);
    const auto elapsed = Clock::now() - start;
    gate = nullptr;
    CHECK(result == n);

    // get() returned: the last call has been made, and no other comes.
    std::lock_guard lock(calls.mutex);
    REQUIRE(calls.seen.size() >= gate_calls + 1);
    const dtask::Progress& last = calls.seen.back();
    CHECK(last.ended);
    CHECK(last.total_known);
    CHECK(last.done == n);
    CHECK(last.total == n);
    CHECK(last.eta == std::chrono::milliseconds(0));
    for (std::size_t i = 0; i + 1 < calls.seen.size(); ++i) {
        const dtask::Progress& progress = calls.seen[i];
        CHECK_FALSE(progress.ended);
        CHECK(progress.done <= progress.total);
        if (i > 0) {
            CHECK(progress.done >= calls.seen[i - 1].done);
            CHECK(calls.at[i] - calls.at[i - 1] >= interval);
        }
        CHECK(calls.threads[i] != std::this_thread::get_id());  // the client's I/O thread
    }
    // The split held back its last piece until these calls: its total was not known then.
    for (std::size_t i = 0; i < gate_calls; ++i) {
        CHECK_FALSE(calls.seen[i].total_known);
        CHECK_FALSE(calls.seen[i].eta.has_value());
    }
    // Never per subtask: one call per interval at most, and the last.
    CHECK(calls.seen.size() <= static_cast<std::size_t>(elapsed / interval) + 2);
    CHECK(calls.seen.size() * 10 < n);
}

TEST_CASE("Progress.run_reports_on_the_calling_thread_and_handle_progress_has_the_rate" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    Calls calls;
    const std::uint64_t n = 100'000;
    dtask::RunOptions options;
    options.progress_interval = 10ms;
    options.on_progress = [&](const dtask::Progress& progress) { calls.record(progress); };
    const auto start = Clock::now();
    CHECK(cluster.run(squares, n, options) == serial_squares(n));
    const auto elapsed = Clock::now() - start;
    {
        std::lock_guard lock(calls.mutex);
        REQUIRE_FALSE(calls.seen.empty());
        CHECK(calls.seen.back().ended);
        CHECK(calls.seen.back().done == n);
        CHECK(calls.seen.back().total == n);
        CHECK(calls.seen.back().rate > 0);
        CHECK(calls.seen.size() <= static_cast<std::size_t>(elapsed / 10ms) + 2);
        for (const auto& thread : calls.threads)
            CHECK(thread == std::this_thread::get_id());
    }

    auto handle = cluster.submit(squares, std::uint64_t{1000});
    CHECK(get_within(handle) == serial_squares(1000));
    const dtask::Progress progress = handle.progress();
    CHECK(progress.ended);
    CHECK(progress.done == 1000);
    CHECK(progress.rate > 0);
    CHECK(progress.eta == std::chrono::milliseconds(0));
}

TEST_CASE("Progress.a_callback_that_throws_fails_its_job_and_nothing_else" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    for (const std::size_t held_for : {std::size_t{1}, std::size_t{0}}) {
        // Held for one call: it throws while the job runs; else most likely at its end.
        CAPTURE(held_for);
        Calls calls;
        gate = &calls;
        gate_calls = held_for;
        dtask::RunOptions options;
        options.progress_interval = 10ms;
        options.on_progress = [&](const dtask::Progress& progress) {
            calls.record(progress);
            throw std::runtime_error("the progress bar broke");
        };
        auto handle = cluster.submit(progress_gated, std::uint64_t{500}, options);
        const auto error = error_of<dtask::Error>(handle);
        gate = nullptr;
        CHECK_MESSAGE(contains(error.what(),
                               "job 'tests.progress_gated': its progress callback "
                               "(RunOptions::on_progress) threw: the progress bar "
                               "broke"),
                      error.what());
        CHECK(calls.count() == 1);  // not called again
    }
    // The client's I/O thread goes on serving jobs.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
}
