// Jobs on an embedded Cluster with real local worker processes.

#include <algorithm>
#include <future>
#include <memory>
#include <thread>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "../examples/sum_squares_job.hpp"
#include "jobs.hpp"
#include "support.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;

TEST_CASE("Cluster.sum_squares_equals_serial" * doctest::timeout(120)) {
    using namespace sum_squares_example;
    dtask::Cluster cluster(small_cluster());
    for (std::uint64_t n : {1ULL, 10ULL, 1000ULL, 1'000'000ULL}) {
        for (std::uint64_t pieces : {1ULL, 3ULL, 10ULL, 64ULL}) {
            auto handle = cluster.submit(sum_squares, Problem{n, pieces});
            const u128 total = get_within(handle);
            u128 serial = 0;
            for (std::uint64_t x = 1; x <= n; ++x)
                serial += static_cast<u128>(x) * x;
            CHECK(to_string(total) == to_string(serial));
        }
    }
    auto handle = cluster.submit(sum_squares, Problem{1'000'000, 10});
    CHECK(to_string(get_within(handle)) == "333333833333500000");
}

TEST_CASE("Cluster.hundred_thousand_tiny_subtasks" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    auto handle = cluster.submit(squares, std::uint64_t{100'000});
    CHECK(get_within(handle) == serial_squares(100'000));
    const auto progress = handle.progress();
    CHECK(progress.done == 100'000);
    CHECK(progress.total == 100'000);
    CHECK(progress.total_known);
}

TEST_CASE("Cluster.ordered_reduce_is_deterministic" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    for (int run = 0; run < 5; ++run) {
        CHECK(run_within(cluster, concat_ordered, std::uint64_t{300}) == expected_concat(300));
    }
}

TEST_CASE("Cluster.unordered_reduce_folds_every_partial_once" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    const std::string text = run_within(cluster, concat_unordered, std::uint64_t{300});
    std::vector<std::uint64_t> numbers;
    std::size_t start = 0;
    for (std::size_t comma = text.find(','); comma != std::string::npos;
         comma = text.find(',', start)) {
        numbers.push_back(std::stoull(text.substr(start, comma - start)));
        start = comma + 1;
    }
    std::sort(numbers.begin(), numbers.end());
    REQUIRE(numbers.size() == 300);
    for (std::uint64_t i = 0; i < 300; ++i)
        CHECK(numbers[i] == i);
}

TEST_CASE("Cluster.map_that_throws_fails_the_job_and_the_next_job_runs" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    auto handle = cluster.submit(throws_on_seven, std::uint64_t{20});
    REQUIRE(handle.wait_for(60s));
    try {
        handle.get();
        FAIL("the job should have failed");
    } catch (const dtask::TaskError& e) {
        CHECK(e.job() == "tests.throws_on_seven");
        CHECK(e.subtask() == 7);
        CHECK(e.exception_type() == "std::invalid_argument");
        CHECK(e.exception_message() == "bad input 7");
        CHECK(e.worker().find(':') != std::string::npos);  // host:pid
        const std::string what = e.what();
        CHECK(what.find("tests.throws_on_seven") != std::string::npos);
        CHECK(what.find("subtask 7") != std::string::npos);
        CHECK(what.find("bad input 7") != std::string::npos);
    }
    // The subtasks before 7 alone are fine, and so is the cluster.
    CHECK(run_within(cluster, throws_on_seven, std::uint64_t{7}) == 21);
    CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
}

TEST_CASE("Cluster.four_threads_submit_at_once" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    std::vector<std::thread> threads;
    std::vector<std::uint64_t> results(4);
    std::vector<std::string> texts(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            results[t] = cluster.submit(squares, std::uint64_t{5000 + 1000u * t}).get();
            texts[t] = cluster.submit(concat_ordered, std::uint64_t{100 + 10u * t}).get();
        });
    }
    for (auto& thread : threads)
        thread.join();
    for (int t = 0; t < 4; ++t) {
        CHECK(results[t] == serial_squares(5000 + 1000u * t));
        CHECK(texts[t] == expected_concat(100 + 10u * t));
    }
}

TEST_CASE("Cluster.both_workers_take_part" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    REQUIRE(cluster.wait_for_workers(2, 30s));
    const auto pids = rendezvous_pids(cluster);
    const auto local = cluster.local_worker_pids();
    CHECK(pids.size() == 2);
    for (auto pid : pids)
        CHECK(std::find(local.begin(), local.end(), pid) != local.end());
}

TEST_CASE("Cluster.job_wide_data_reaches_each_worker_once" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    Scale scale;
    scale.factor = 3;
    scale.table.assign(1 << 20, 1);  // 8 MiB: more than any subtask window
    auto handle = cluster.submit(scaled, std::uint64_t{2000}, scale);
    const ScaledTotal total = get_within(handle);
    CHECK(total.sum == 3 * (2000 * 2001 / 2) + 2000);
    CHECK(total.most_loads == 1);  // each worker process decoded the data once for 2000 subtasks
}

TEST_CASE("Cluster.split_stays_within_the_window" * doctest::timeout(120)) {
    generated = 0;
    folded = 0;
    most_ahead = 0;
    dtask::Cluster cluster(small_cluster());
    dtask::RunOptions options;
    options.window = 16;
    auto handle = cluster.submit(windowed, std::uint64_t{20'000}, options);
    CHECK(get_within(handle) == 20'000ULL * 19'999 / 2);
    CHECK(folded == 20'000);
    CHECK(most_ahead <= 16);
    CHECK(most_ahead >= 2);
}

// A job cancelled while the broker holds its queued subtasks: the broker drops them, so
// that only the batches already on the workers (at most 2 each) still run, and the next job
// does not wait behind the rest.
TEST_CASE("Cluster.cancel_drops_the_job_and_the_cluster_goes_on" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    // A worker that serves sum_squares alone: it runs the job that shows the broker has read
    // the cancel while the other two are held up.
    Process squares_worker(examples_directory() + "/sum_squares",
                           {"--dtask-worker", cluster.endpoints().front()});
    REQUIRE(cluster.wait_for_workers(3, 30s));
    TempDir gate;
    constexpr std::uint64_t n = 200;
    auto handle = cluster.submit(gated, n, Gate{gate.path(), 60'000},
                                 dtask::RunOptions{.batch_size = 1, .backup_tasks = false});
    auto started = [&] {
        std::uint64_t count = 0;
        for (std::uint64_t i = 0; i < n; ++i)
            count += attempts_made(gate.path(), i);
        return count;
    };
    // Both local workers wait in map for the release; the broker holds the rest queued.
    REQUIRE(wait_until([&] { return started() == 2; }, 60s));
    handle.cancel();
    REQUIRE(handle.wait_for(10s));
    CHECK_THROWS_AS(handle.get(), dtask::CancelledError);
    // The client's I/O thread sends the cancel before it reads a result of the next job, which
    // only the third worker can run: once that job is done, the cancel has reached the
    // broker, ahead of the results that the release below brings.
    {
        using namespace sum_squares_example;
        auto after = cluster.submit(sum_squares, Problem{1000, 4});
        CHECK(to_string(get_within(after)) == "333833500");
    }
    const int fd = open(gate_release(gate.path()).c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    // The next job on the local workers runs behind what they held, not behind the queue.
    CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
    // Held: 2 per worker; a broker that read the cancel late may have handed out one or two
    // more. Its queue would have given the local workers 64 subtasks (a turn) before that job.
    CHECK_MESSAGE(started() <= 8, started() << " of the cancelled job's " << n
                                            << " subtasks ran: the broker kept its queue");
    CHECK(handle.progress().done == 0);
}

TEST_CASE("Cluster.wrong_input_type_is_a_clear_error" * doctest::timeout(60)) {
    dtask::Cluster cluster(small_cluster(0));
    try {
        cluster.submit(squares, 5);  // int, where the job takes std::uint64_t
        FAIL("submit should have thrown");
    } catch (const dtask::JobDefinitionError& e) {
        const std::string what = e.what();
        CHECK(what.find("tests.squares") != std::string::npos);
        CHECK(what.find("unsigned long") != std::string::npos);
        CHECK(what.find("int") != std::string::npos);
    }
    CHECK_THROWS_AS(cluster.submit(scaled, std::uint64_t{5}),
                    dtask::JobDefinitionError);  // needs a Scale
}

TEST_CASE("Cluster.job_without_workers_fails_after_its_wait" * doctest::timeout(60)) {
    dtask::Cluster cluster(small_cluster(0));
    dtask::RunOptions options;
    options.worker_wait = 300ms;
    auto handle = cluster.submit(squares, std::uint64_t{10}, options);
    REQUIRE(handle.wait_for(30s));
    try {
        handle.get();
        FAIL("the job should have timed out");
    } catch (const dtask::TimeoutError& e) {
        CHECK(e.reason() == dtask::TimeoutError::Reason::no_worker);
        const std::string what = e.what();
        CHECK(what.find("no connected worker serves it") != std::string::npos);
        CHECK(what.find(cluster.endpoints().front()) != std::string::npos);
    }
}

TEST_CASE("Cluster.destroying_it_fails_running_jobs" * doctest::timeout(60)) {
    dtask::JobHandle<std::uint64_t> handle;
    {
        dtask::Cluster cluster(small_cluster(0));
        handle = cluster.submit(squares, std::uint64_t{10});
    }
    REQUIRE(handle.wait_for(10s));
    CHECK_THROWS_AS(handle.get(), dtask::Error);
}

// run() drives its job on the calling thread, over a connection to the broker of its own
// that the next run() on that Cluster takes over. Each run is bounded by its deadline.
TEST_CASE("Cluster.run_on_the_calling_thread" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    const dtask::RunOptions bounded{.deadline = 60s};
    for (std::uint64_t n : {1ULL, 10ULL, 1000ULL, 20'000ULL})
        CHECK(cluster.run(squares, n, bounded) == serial_squares(n));
    // A failed job leaves the connection fit for the next run.
    CHECK_THROWS_AS(cluster.run(throws_on_seven, std::uint64_t{20}, bounded), dtask::TaskError);
    CHECK(cluster.run(squares, std::uint64_t{100}, bounded) == serial_squares(100));
    // A run past its deadline is cancelled, and the next one is unaffected.
    CHECK_THROWS_AS(cluster.run(busy, Busy{4, 100'000}, dtask::RunOptions{.deadline = 1ms}),
                    dtask::TimeoutError);
    CHECK(cluster.run(squares, std::uint64_t{100}, bounded) == serial_squares(100));
}

TEST_CASE("Cluster.run_from_many_threads_at_once" * doctest::timeout(120)) {
    dtask::Cluster cluster(small_cluster());
    std::vector<std::future<bool>> threads;
    for (int thread = 0; thread < 4; ++thread) {
        threads.push_back(std::async(std::launch::async, [&cluster, thread] {
            bool all_right = true;
            for (std::uint64_t job = 0; job < 20; ++job) {
                const std::uint64_t n = 50 + 10 * job + static_cast<std::uint64_t>(thread);
                all_right =
                    all_right && cluster.run(squares, n, dtask::RunOptions{.deadline = 60s}) ==
                                     serial_squares(n);
            }
            return all_right;
        }));
    }
    for (auto& thread : threads) {
        REQUIRE(thread.wait_for(90s) == std::future_status::ready);
        CHECK(thread.get());
    }
}

TEST_CASE("Cluster.destroying_it_fails_a_blocking_run" * doctest::timeout(60)) {
    std::promise<void> driving;
    first_piece_made = &driving;
    auto cluster = std::make_unique<dtask::Cluster>(small_cluster(0));  // the job cannot end
    dtask::Cluster* shared = cluster.get();
    auto outcome = std::async(std::launch::async, [shared]() -> std::string {
        try {
            shared->run(signals_first_piece, std::uint64_t{10});
            return "it returned";
        } catch (const dtask::Error& e) {
            return e.what();
        }
    });
    // Split makes its first piece inside run(), on that thread: run() is under way.
    REQUIRE(driving.get_future().wait_for(30s) == std::future_status::ready);
    cluster.reset();
    first_piece_made = nullptr;
    REQUIRE(outcome.wait_for(10s) == std::future_status::ready);
    CHECK(outcome.get().find("the Cluster was destroyed while the job ran") != std::string::npos);
}

TEST_CASE("Cluster.leaves_no_process_behind" * doctest::timeout(60)) {
    std::vector<pid_t> pids;
    {
        dtask::Cluster cluster(small_cluster(3));
        REQUIRE(cluster.wait_for_workers(3, 30s));
        pids = cluster.local_worker_pids();
        CHECK(pids.size() == 3);
        CHECK(run_within(cluster, squares, std::uint64_t{100}) == serial_squares(100));
    }
    CHECK(children_of_this_process().empty());  // reaped: no zombie, no live child
    for (pid_t pid : pids)
        CHECK(kill(pid, 0) == -1);
}

TEST_CASE("Cluster.client_submits_to_a_listening_cluster" * doctest::timeout(60)) {
    auto options = small_cluster();
    options.listen.push_back("tcp://127.0.0.1:*");
    dtask::Cluster cluster(options);
    dtask::ClientOptions client_options;
    client_options.token = cluster.client_token();
    dtask::Client client(cluster.endpoints().back(), client_options);
    REQUIRE(client.wait_for_workers(2, 30s));
    CHECK(run_within(client, squares, std::uint64_t{5000}) == serial_squares(5000));
    CHECK(run_within(client, concat_ordered, std::uint64_t{100}) == expected_concat(100));
}

TEST_CASE("Cluster.options_out_of_range_are_refused_naming_them" * doctest::timeout(30)) {
    auto options = small_cluster(1);
    options.heartbeat_interval = 0ms;
    CHECK_THROWS_WITH_AS(dtask::Cluster{options},
                         doctest::Contains("ClusterOptions::heartbeat_interval"), dtask::Error);
    options = small_cluster(1);
    options.respawn_max_delay = 0ms;
    CHECK_THROWS_WITH_AS(dtask::Cluster{options},
                         doctest::Contains("ClusterOptions::respawn_max_delay must be from 1 ms"),
                         dtask::Error);
    options.respawn_max_delay = std::chrono::hours(2);
    CHECK_THROWS_AS(dtask::Cluster{options}, dtask::Error);
}
