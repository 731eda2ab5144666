// Limits in the broker (docs/reliability.md, "Limits and hostile input"): a job's end frees
// a worker stuck in its map, the broker's own maximum subtask time, jobs that no worker
// serves cost the others nothing, and the limits per client (jobs, job-wide data, queued
// bytes). Real brokers, workers and sockets; the policies directly.

#include <chrono>
#include <set>
#include <string>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include "attempt_markers.hpp"
#include "broker/client_limits.hpp"
#include "broker/jobs.hpp"
#include "dtaskd.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;
using dtask::detail::protocol::Command;
using dtask::detail::protocol::Failure;
using dtask::detail::protocol::FailureKind;
using dtask::detail::protocol::header;
using dtask::detail::protocol::hello_header;
using dtask::detail::protocol::Inbound;
using dtask::detail::protocol::JobSettings;
using dtask::detail::protocol::Role;

namespace {

/// A gate already open: its subtasks return at once.
Gate open_gate(const TempDir& directory) {
    const int fd = open(gate_release(directory.path()).c_str(), O_CREAT | O_WRONLY, 0600);
    REQUIRE(fd >= 0);
    close(fd);
    return Gate{directory.path(), 60'000};
}

/// A gate that stays shut for 10 minutes: its map runs far past any test.
Gate shut_gate(const TempDir& directory) {
    return Gate{directory.path(), 600'000};
}

std::string encoded(const JobSettings& settings) {
    std::string body;
    dtask::detail::save_to(body, settings);
    return body;
}

}  // namespace

TEST_CASE("Limits.cancelled_job_frees_the_local_worker_stuck_in_its_map" * doctest::timeout(150)) {
    // One local worker, inside a map that would run for 10 minutes. Once the job is
    // cancelled, the worker skips it: it restarts itself after ended_job_grace (5 s), and
    // serves the next job of the same name. Before, that job waited for the map's end.
    dtask::Cluster cluster(small_cluster(1));
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const pid_t worker = cluster.local_worker_pids().front();
    TempDir stuck_gate;
    auto stuck = cluster.submit(gated, std::uint64_t{1}, shut_gate(stuck_gate));
    REQUIRE(wait_until([&] { return attempts_made(stuck_gate.path(), 0) == 1; }, 60s));
    stuck.cancel();
    REQUIRE(stuck.wait_for(30s));
    CHECK_THROWS_AS(stuck.get(), dtask::CancelledError);
    TempDir later_gate;
    auto later = cluster.submit(gated, std::uint64_t{3}, open_gate(later_gate));
    // The same process, restarted in place (exec keeps the pid).
    CHECK(get_within(later, 60s) == std::set<std::int64_t>{worker});
}

TEST_CASE("Limits.client_that_leaves_frees_the_remote_worker_stuck_in_its_map" *
          doctest::timeout(150)) {
    // The same through dtaskd, with a remote worker, which restarts itself (exec with its
    // own arguments and environment, its token included), and a client that leaves.
    Dtaskd broker;
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    TempDir stuck_gate;
    {
        dtask::Client leaving(broker.endpoint(), broker.client_options());
        REQUIRE(leaving.wait_for_workers(1, 30s));
        auto stuck = leaving.submit(gated, std::uint64_t{1}, shut_gate(stuck_gate));
        REQUIRE(wait_until([&] { return attempts_made(stuck_gate.path(), 0) == 1; }, 60s));
    }  // the client leaves with its job
    dtask::Client client(broker.endpoint(), broker.client_options());
    TempDir later_gate;
    auto later = client.submit(gated, std::uint64_t{3}, open_gate(later_gate));
    CHECK(get_within(later, 60s) == std::set<std::int64_t>{worker.pid()});
    CHECK(attempts_made(stuck_gate.path(), 0) == 1);  // not run again
}

TEST_CASE("Limits.broker_maximum_subtask_time_applies_to_a_job_that_sets_none" *
          doctest::timeout(150)) {
    // A job without RunOptions::subtask_timeout, whose map would run for 10 minutes: dtaskd's
    // --max-subtask-seconds times it out, and the worker restarts and serves on.
    Dtaskd broker({"--max-subtask-seconds", "1"});
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client client(broker.endpoint(), broker.client_options());
    REQUIRE(client.wait_for_workers(1, 30s));
    TempDir stuck_gate;
    dtask::RunOptions once;
    once.max_attempts = 1;
    auto stuck = client.submit(gated, std::uint64_t{1}, shut_gate(stuck_gate), once);
    REQUIRE_MESSAGE(stuck.wait_for(60s), "the job did not time out");
    try {
        stuck.get();
        FAIL("the job should have timed out");
    } catch (const dtask::TimeoutError& e) {
        CHECK(e.reason() == dtask::TimeoutError::Reason::subtask_timeout);
        const std::string what = e.what();
        CHECK_MESSAGE(contains(what, "1000 ms"), what);
        CHECK_MESSAGE(contains(what, "the broker's maximum subtask time"), what);
    }
    TempDir later_gate;
    auto later = client.submit(gated, std::uint64_t{3}, open_gate(later_gate));
    CHECK(get_within(later, 60s) == std::set<std::int64_t>{worker.pid()});
}

TEST_CASE("Limits.jobs_no_worker_serves_wait_aside_and_run_when_one_joins" *
          doctest::timeout(150)) {
    // Thousands of jobs of a name no worker offers, each with a queued subtask, beside a job
    // a local worker serves: that job's result is right, and the waiting jobs' subtasks go
    // to the first worker that offers their name.
    auto options = cluster_for_peers_by_hand();
    options.local_workers = 1;
    options.max_jobs_per_client = 0;  // thousands of jobs from one client
    dtask::Cluster cluster(options);
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    RawPeer client(context, endpoint, cluster.client_token());
    client.send(message_of(hello_header(), {hello_body(Role::client)}));
    client.expect(Command::welcome);
    constexpr std::uint64_t waiting = 5'000;
    JobSettings settings;
    settings.worker_wait_ms = 600'000;
    const std::string settings_body = encoded(settings);
    for (std::uint64_t job = 1; job <= waiting; ++job) {
        client.send(message_of(header(Command::submit, {job}),
                               {"by-hand.nobody", "by-hand-signature", "", settings_body}));
        std::vector<zmq::message_t> task;
        task.push_back(batch_frame(Command::task, job, {0, 1}, {"subtask"}));
        client.send(std::move(task));
    }
    for (int round = 0; round < 3; ++round) {
        CHECK(run_within(cluster, squares, std::uint64_t{1000}) == serial_squares(1000));
        client.send(message_of(header(Command::heartbeat)));  // never silent for long
    }
    RawPeer worker(context, endpoint, cluster.join_token());
    worker.send(message_of(
        hello_header(), {hello_body(Role::worker, 1, {{"by-hand.nobody", "by-hand-signature"}})}));
    worker.expect(Command::welcome);
    bool defined = false;
    bool task = false;
    while (!task) {
        auto message = worker.next(30s);
        REQUIRE_MESSAGE(message.has_value(),
                        "the joining worker got no subtask of the waiting jobs");
        defined = defined || message->command == Command::job;
        task = message->command == Command::task;
    }
    CHECK(defined);
}

TEST_CASE("Limits.jobs_past_a_client_limit_fail_at_once_and_nothing_else_is_lost" *
          doctest::timeout(150)) {
    // dtaskd with at most 2 jobs per client and 1 MiB of job-wide data per job, and no
    // worker yet: the jobs wait. A third job, and a job with 2 MiB of data, fail at once
    // with a LimitError saying which limit; the client stays, its waiting job runs when a
    // worker joins, and a job submitted once there is room again runs too.
    Dtaskd broker({"--max-jobs-per-client", "2", "--max-job-data-mib", "1"});
    dtask::Client client(broker.endpoint(), broker.client_options());
    TempDir first_gate;
    TempDir second_gate;
    auto first = client.submit(gated, std::uint64_t{2}, open_gate(first_gate));
    auto second = client.submit(gated, std::uint64_t{2}, open_gate(second_gate));
    auto third = client.submit(squares, std::uint64_t{10});
    REQUIRE_MESSAGE(third.wait_for(30s), "the third job was not refused");
    try {
        third.get();
        FAIL("the third job should have been refused");
    } catch (const dtask::LimitError& e) {
        const std::string what = e.what();
        CHECK_MESSAGE(contains(what, "has 2 jobs, the limit is --max-jobs-per-client=2"), what);
    }
    first.cancel();
    REQUIRE(first.wait_for(30s));
    TempDir big_gate;
    Gate big = open_gate(big_gate);
    big.directory += std::string(std::size_t{2} << 20, '/');  // 2 MiB of job-wide data
    auto too_big = client.submit(gated, std::uint64_t{1}, big);
    REQUIRE_MESSAGE(too_big.wait_for(30s), "the job with 2 MiB of job-wide data was not refused");
    try {
        too_big.get();
        FAIL("the job with 2 MiB of job-wide data should have been refused");
    } catch (const dtask::LimitError& e) {
        const std::string what = e.what();
        CHECK_MESSAGE(contains(what, "the limit is 1048576 bytes (--max-job-data-mib"), what);
    }
    auto later = client.submit(squares, std::uint64_t{10});
    CHECK_FALSE(second.wait_for(0s));  // still waiting for a worker: nothing was dropped
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    CHECK(get_within(second, 60s) == std::set<std::int64_t>{worker.pid()});
    CHECK(get_within(later, 60s) == serial_squares(10));
}

TEST_CASE("Limits.task_batch_past_the_client_queued_bytes_fails_its_job_only" *
          doctest::timeout(150)) {
    // dtaskd with at most 1 MiB of one client's subtasks waiting for workers. A client by
    // hand, ignoring any window, queues 768 KiB for a job no worker serves, then sends a
    // second job batches of 256 KiB: the batch that would pass 1 MiB fails that job, naming
    // the limit. The first job and the client stay, and another client's job runs right.
    Dtaskd broker({"--max-queued-mib-per-client", "1"});
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, {},
                   broker.worker_environment());
    dtask::Client other(broker.endpoint(), broker.client_options());
    zmq::context_t context(1);
    RawPeer hostile(context, broker.endpoint(), broker.token("client"));
    hostile.send(message_of(hello_header(), {hello_body(Role::client)}));
    hostile.expect(Command::welcome);
    JobSettings settings;
    settings.worker_wait_ms = 600'000;
    const std::string settings_body = encoded(settings);
    const std::string subtask(std::size_t{256} << 10, 's');
    for (std::uint64_t job = 1; job <= 2; ++job)
        hostile.send(message_of(header(Command::submit, {job}),
                                {"by-hand.nobody", "by-hand-signature", "", settings_body}));
    for (std::uint64_t job = 1; job <= 2; ++job) {
        for (std::uint64_t first = 0; first < 3; ++first) {
            std::vector<zmq::message_t> task;
            task.push_back(batch_frame(Command::task, job, {first, 1}, {subtask}));
            hostile.send(std::move(task));
        }
    }
    std::optional<Inbound> failure;
    while (!failure) {  // heartbeats are answered meanwhile
        auto message = hostile.next(30s);
        REQUIRE_MESSAGE(message.has_value(), "no job was refused past the queued bytes");
        if (message->command == Command::failure)
            failure = std::move(message);
    }
    CHECK(failure->fields[0] == 2);
    const auto report = dtask::detail::protocol::decode_body<Failure>(failure->body[0], "failure");
    CHECK(report.kind == FailureKind::limit);
    CHECK_MESSAGE(
        contains(report.message, "the limit of 1048576 bytes (--max-queued-mib-per-client"),
        report.message);
    // The other client's job runs while the client by hand stays, answering heartbeats.
    auto others_job = other.submit(squares, std::uint64_t{100});
    std::vector<Command> after;
    while (!others_job.wait_for(0s)) {
        const auto seen = hostile.until_heartbeats(1);
        REQUIRE_MESSAGE(seen.has_value(), "the broker fell silent");
        after.insert(after.end(), seen->begin(), seen->end());
    }
    CHECK(get_within(others_job, 60s) == serial_squares(100));
    const auto seen = hostile.until_heartbeats(2);
    REQUIRE(seen.has_value());
    after.insert(after.end(), seen->begin(), seen->end());
    // Not dropped, nor its first job failed.
    for (const Command command : after) {
        CHECK(command != Command::refuse);
        CHECK(command != Command::failure);
    }
}

TEST_CASE("ClientLimits.refusals_name_the_limit_and_zero_means_none" * doctest::timeout(30)) {
    using dtask::detail::batch_refusal;
    using dtask::detail::ClientLimits;
    using dtask::detail::job_refusal;
    const ClientLimits limits{2, 100, 1000};
    CHECK(job_refusal(limits, "h:1", 1, 100).empty());
    CHECK(contains(job_refusal(limits, "h:1", 2, 0),
                   "client h:1 has 2 jobs, the limit is --max-jobs-per-client=2"));
    CHECK(contains(job_refusal(limits, "h:1", 0, 101),
                   "its job-wide data is 101 bytes, the limit is 100 bytes (--max-job-data-mib"));
    CHECK(batch_refusal(limits, "h:1", 600, 400).empty());  // exactly at the limit
    CHECK(contains(batch_refusal(limits, "h:1", 601, 400),
                   "client h:1 has 601 bytes of subtasks waiting for workers"));
    CHECK(contains(batch_refusal(limits, "h:1", 0, 1001), "the limit of 1000 bytes"));
    // No wrap: a batch larger than the limit, with much queued, is refused.
    CHECK_FALSE(batch_refusal(limits, "h:1", SIZE_MAX - 10, 1001).empty());
    const ClientLimits none{};
    CHECK(job_refusal(none, "h:1", 1'000'000, SIZE_MAX).empty());
    CHECK(batch_refusal(none, "h:1", SIZE_MAX - 1, 1).empty());
}

TEST_CASE("ClientLimits.queued_bytes_follow_every_change_of_a_client_queues" *
          doctest::timeout(30)) {
    // Jobs count the bytes of each client's queues and quarantines as batches come and go,
    // and a job's end takes its bytes off.
    using namespace dtask::detail;
    const auto batch = [](std::uint64_t first, std::size_t bytes) {
        return QueuedBatch{first, 1, zmq::message_t(bytes)};
    };
    Jobs jobs;
    const auto now = std::chrono::steady_clock::now();
    BrokerJob& a1 = jobs.submit(1, "a", 1, {}, "n", "s", zmq::message_t(), now);
    BrokerJob& a2 = jobs.submit(2, "a", 2, {}, "n", "s", zmq::message_t(), now);
    BrokerJob& b1 = jobs.submit(3, "b", 1, {}, "n", "s", zmq::message_t(), now);
    a1.queue.push_back(batch(0, 100));
    a1.queue.push_front(batch(1, 10));
    a2.queue.push_back(batch(0, 1000));
    a2.recovery.quarantine.push_back(batch(1, 5));
    b1.queue.push_back(batch(0, 7));
    CHECK(jobs.queued_bytes("a") == 1115);
    CHECK(jobs.queued_bytes("b") == 7);
    CHECK(a1.queue.take_front().payload.size() == 10);
    CHECK(a1.queue.bytes() == 100);
    CHECK(jobs.queued_bytes("a") == 1105);
    jobs.erase(jobs.all().find(2));
    CHECK(jobs.queued_bytes("a") == 100);
    jobs.erase(jobs.all().find(1));
    CHECK(jobs.queued_bytes("a") == 0);
    CHECK(jobs.queued_bytes("b") == 7);
}
