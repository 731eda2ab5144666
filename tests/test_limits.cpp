// Limits in the broker (docs/reliability.md, "Limits and hostile input"): a job's end frees
// a worker stuck in its map, the broker's own maximum subtask time, and jobs that no worker
// serves cost the others nothing. Real brokers, workers and sockets.

#include <chrono>
#include <set>
#include <string>

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include "attempt_markers.hpp"
#include "dtaskd.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;
using dtask::detail::protocol::Command;
using dtask::detail::protocol::header;
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
    dtask::Cluster cluster(options);
    REQUIRE(cluster.wait_for_workers(1, 30s));
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    RawPeer client(context, endpoint, cluster.client_token());
    client.send(message_of(header(Command::hello), {hello_body(Role::client)}));
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
    worker.send(
        message_of(header(Command::hello),
                   {hello_body(Role::worker, 1, {{"by-hand.nobody", "by-hand-signature"}})}));
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
