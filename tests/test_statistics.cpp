// Broker statistics without sockets: what they keep stays bounded whatever peers send, and
// with the endpoint off they keep nothing.

#include <chrono>
#include <string>

#include <doctest/doctest.h>

#include "broker/jobs.hpp"
#include "broker/peers.hpp"
#include "http/statistics.hpp"

using dtask::detail::BatchKind;
using dtask::detail::BrokerJob;
using dtask::detail::BrokerStatistics;
using dtask::detail::Jobs;
using dtask::detail::Peers;
using dtask::detail::WorkerPeer;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

WorkerPeer worker_named(std::string name) {
    WorkerPeer worker;
    worker.hello.name = std::move(name);
    return worker;
}

BrokerJob job_numbered(std::uint64_t id) {
    BrokerJob job;
    job.id = id;
    job.name = "job-" + std::to_string(id);
    return job;
}

}  // namespace

TEST_CASE("Statistics.events_finished_jobs_and_the_stream_are_bounded" * doctest::timeout(30)) {
    BrokerStatistics stats(true);
    Peers peers;
    Jobs jobs;
    const auto start = Clock::now();
    const WorkerPeer worker = worker_named("host:1");
    for (int i = 0; i < 300; ++i)
        stats.worker_joined(worker, start);
    for (std::uint64_t id = 1; id <= 80; ++id) {
        stats.job_started(job_numbered(id), "client:2", start);
        stats.results(id, 3, start);
        stats.job_ended(id, id % 2 ? "done" : "failed", std::string(5000, 'e'), start);
    }
    // Batches that never touch (a gap of 10 ms each) are one bar each, up to the cap.
    for (int i = 0; i < 7000; ++i)
        stats.batch_ended(worker, 1, start + i * 10ms, 1, BatchKind::batch, 1000,
                          start + i * 10ms + 1ms);
    const auto snapshot = stats.snapshot(peers, jobs, start + 70'000ms);
    CHECK(snapshot->events.size() == BrokerStatistics::max_events);
    CHECK(snapshot->jobs.size() == BrokerStatistics::max_finished_jobs);
    CHECK(snapshot->jobs.front().id == 31);  // the last 50, oldest first
    CHECK(snapshot->jobs.front().total == std::optional<std::uint64_t>(3));
    CHECK_FALSE(snapshot->jobs[1].total.has_value());  // failed: what it would have had is unknown
    CHECK(snapshot->jobs[1].error->size() <= BrokerStatistics::max_text + 3);
    CHECK(snapshot->stream.size() <= BrokerStatistics::max_stream);
    CHECK(!snapshot->stream.empty());
    CHECK(snapshot->counters.subtasks_done == 240);
    CHECK(snapshot->counters.map_time_count == 7000);
}

TEST_CASE("Statistics.a_workers_overlapping_batches_are_one_bar" * doctest::timeout(30)) {
    BrokerStatistics stats(true);
    Peers peers;
    Jobs jobs;
    const auto start = Clock::now();
    const WorkerPeer a = worker_named(std::string(1 << 20, 'a'));  // a name of 1 MiB
    const WorkerPeer b = worker_named("b:2");
    for (int i = 0; i < 1000; ++i) {
        // Each batch was sent while the one before it ran (credits), on both workers.
        stats.batch_ended(a, 1, start + i * 1ms, 4, BatchKind::batch, 10, start + i * 1ms + 2ms);
        stats.batch_ended(b, 1, start + i * 1ms, 4, BatchKind::batch, 10, start + i * 1ms + 2ms);
    }
    stats.batch_ended(b, 1, start + 999ms, 1, BatchKind::failure, -1, start + 1002ms);
    const auto snapshot = stats.snapshot(peers, jobs, start + 1100ms);
    REQUIRE(snapshot->stream.size() == 3);
    CHECK(snapshot->stream[0].subtasks == 4000);
    CHECK(snapshot->stream[0].worker.size() == BrokerStatistics::max_text);
    CHECK(snapshot->stream[1].subtasks == 4000);
    CHECK(std::string(snapshot->stream[2].kind) == "failure");
    CHECK(snapshot->stream[0].end - snapshot->stream[0].start == doctest::Approx(1.001));
}

TEST_CASE("Statistics.off_keeps_nothing" * doctest::timeout(30)) {
    BrokerStatistics stats(false);
    const auto now = Clock::now();
    const WorkerPeer worker = worker_named("host:1");
    stats.worker_joined(worker, now);
    stats.job_started(job_numbered(1), "client:2", now);
    stats.batch_ended(worker, 1, now, 1, BatchKind::batch, 1000, now);
    CHECK_FALSE(stats.due(now + 1h));
    Peers peers;
    Jobs jobs;
    const auto snapshot = stats.snapshot(peers, jobs, now);
    CHECK(snapshot->events.empty());
    CHECK(snapshot->jobs.empty());
    CHECK(snapshot->stream.empty());
}
