// Hostile or buggy peers (docs/reliability.md, "Limits and hostile input"): numbers a peer
// sets are range-checked where they are decoded, a result run is accepted only where it
// continues its batch, and a client names only its own jobs.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dtask/detail/archive.hpp>
#include <dtask/detail/job_model.hpp>

#include "broker/batches.hpp"
#include "job_registry.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "wire/batch.hpp"
#include "wire/protocol.hpp"

using namespace dtask::detail;
using namespace dtask::detail::protocol;
using namespace test_support;
using namespace std::chrono_literals;

namespace {

constexpr std::uint64_t last_index = std::numeric_limits<std::uint64_t>::max();

std::string encoded(const auto& value) {
    std::string bytes;
    save_to(bytes, value);
    return bytes;
}

/// The (name, signature) this binary registers for `name`, as its workers say in hello.
std::pair<std::string, std::string> registered(const std::string& name) {
    for (auto& job : registered_jobs()) {
        if (job.first == name)
            return job;
    }
    FAIL("no job " << name << " is registered");
    return {};
}

/// A held batch of `job`'s subtasks [first, first + count) whose results came up to `next`.
HeldBatch held_batch(std::uint64_t job, std::uint64_t first, std::uint64_t count,
                     std::uint64_t next) {
    HeldBatch batch;
    batch.job = job;
    batch.first = first;
    batch.count = count;
    batch.next = next;
    return batch;
}

/// A worker and a client by hand at `cluster`, the worker serving "by-hand.echo" with one
/// credit (it holds one batch at a time), the client welcomed.
struct HandPeers {
    HandPeers(zmq::context_t& context, dtask::Cluster& cluster)
        : worker(context, tcp_endpoint(cluster), cluster.join_token()),
          client(context, tcp_endpoint(cluster), cluster.client_token()) {
        worker.send(
            message_of(hello_header(),
                       {hello_body(Role::worker, 1, {{"by-hand.echo", "by-hand-signature"}})}));
        worker.expect(Command::welcome);
        client.send(message_of(hello_header(), {hello_body(Role::client)}));
        client.expect(Command::welcome);
        client.expect(Command::status);
    }
    /// The client submits job `id` and one task of `count` subtasks from 0.
    void submit(RawPeer& from, std::uint64_t id, std::uint64_t count = 1) {
        JobSettings settings;
        settings.backup_tasks = false;
        from.send(message_of(header(Command::submit, {id}),
                             {"by-hand.echo", "by-hand-signature", "", encoded(settings)}));
        const std::vector<std::string> subtasks(count, "subtask");
        from.send(one_frame(batch_frame(Command::task, id, {0, count}, subtasks)));
    }
    /// The broker's id of the job of the next task the worker gets (its definition first).
    std::uint64_t next_task() {
        for (;;) {
            auto message = worker.next(10s);
            REQUIRE_MESSAGE(message.has_value(), "the worker got no task");
            if (message->command == Command::task)
                return message->fields[0];
        }
    }

    RawPeer worker;
    RawPeer client;
};

}  // namespace

// ---- the decoder ----

TEST_CASE("Hostile.decoder_refuses_a_run_whose_indexes_wrap_or_that_is_empty" *
          doctest::timeout(30)) {
    for (const Command command : {Command::task, Command::result}) {
        const bool result = command == Command::result;
        const auto run = [&](std::uint64_t first, std::uint64_t count) {
            std::vector<std::string> records(
                static_cast<std::size_t>(std::min<std::uint64_t>(count, 2)), "x");
            return result ? batch_frame(command, 1, {first, count, 0}, records)
                          : batch_frame(command, 1, {first, count}, records);
        };
        const std::string wraps = parse_error(one_frame(run(last_index, 2)));
        CHECK_MESSAGE(contains(wraps,
                               "first index 18446744073709551615 and count 2 go past the "
                               "last subtask index"),
                      wraps);
        const std::string empty = parse_error(one_frame(run(5, 0)));
        CHECK_MESSAGE(contains(empty, "a run of no subtasks (first index 5)"), empty);
        CHECK(parse_error(one_frame(run(last_index - 1, 1))).empty());
        CHECK(parse_error(one_frame(run(0, 2))).empty());
    }
}

TEST_CASE("Hostile.decoder_refuses_a_welcome_pace_or_job_out_of_range" * doctest::timeout(30)) {
    const auto welcome = [](std::uint64_t interval, std::uint64_t liveness) {
        return parse_error(one_frame(header(Command::welcome, {interval, liveness, 0, 1})));
    };
    CHECK(welcome(1, 1).empty());
    CHECK(welcome(max_heartbeat_interval_ms, max_heartbeat_liveness).empty());
    const std::string huge = welcome(std::uint64_t{1} << 63, 3);
    CHECK_MESSAGE(contains(huge,
                           "malformed welcome message: heartbeat interval (ms) "
                           "9223372036854775808 is out of range (1 to 3600000)"),
                  huge);
    CHECK(contains(welcome(0, 3), "heartbeat interval (ms) 0 is out of range"));
    CHECK(contains(welcome(250, 0), "heartbeat liveness 0 is out of range (1 to 1000)"));
    CHECK(contains(welcome(250, 1001), "heartbeat liveness 1001 is out of range"));
    const auto pace = [](std::uint64_t interval) {
        return parse_error(one_frame(header(Command::pace, {interval})));
    };
    CHECK(pace(1).empty());
    CHECK(pace(max_heartbeat_interval_ms).empty());
    CHECK(contains(pace(0), "malformed pace message: heartbeat interval (ms) 0 is out of range"));
    CHECK(contains(pace(max_heartbeat_interval_ms + 1), "is out of range (1 to 3600000)"));
    std::vector<zmq::message_t> job;
    job.push_back(header(Command::job, {7, max_duration_ms + 1, 0}));
    for (int i = 0; i < 3; ++i)
        job.emplace_back();
    const std::string timeout = parse_error(std::move(job));
    CHECK_MESSAGE(contains(timeout, "subtask timeout (ms) 315360000001 is out of range"), timeout);
}

TEST_CASE("Hostile.decoder_refuses_job_settings_out_of_range" * doctest::timeout(30)) {
    const auto error = [](JobSettings settings) -> std::string {
        const zmq::message_t frame = encode_body(settings);
        try {
            decode_body<JobSettings>(frame, "the job's settings");
        } catch (const dtask::ProtocolError& e) {
            return e.what();
        }
        return {};
    };
    CHECK(error(JobSettings{}).empty());
    JobSettings settings;
    settings.priority = 0;
    CHECK(contains(error(settings), "malformed the job's settings: priority 0 is out of range"));
    settings = {};
    settings.max_attempts = 1001;
    CHECK(contains(error(settings), "max_attempts 1001 is out of range (1 to 1000)"));
    settings = {};
    settings.subtask_timeout_ms = last_index;
    CHECK(contains(error(settings), "subtask_timeout (ms) 18446744073709551615 is out of range"));
    settings = {};
    settings.worker_wait_ms = max_duration_ms + 1;
    CHECK(contains(error(settings), "worker_wait (ms) 315360000001 is out of range"));
}

TEST_CASE("Hostile.client_saturates_a_run_option_beyond_the_protocol_bounds" *
          doctest::timeout(60)) {
    // RunOptions that mean "for ever" must still reach the broker within its bounds.
    dtask::Cluster cluster(small_cluster(1));
    dtask::RunOptions options;
    options.worker_wait = std::chrono::milliseconds::max();
    options.subtask_timeout = std::chrono::hours(24 * 365 * 100);
    options.priority = 1'000'000;
    options.max_attempts = 0;
    auto handle = cluster.submit(test_jobs::squares, std::uint64_t{20}, options);
    CHECK(get_within(handle) == test_jobs::serial_squares(20));
}

// ---- the broker: results ----

TEST_CASE("Hostile.result_run_continues_its_batch_or_is_wrong" * doctest::timeout(30)) {
    std::deque<HeldBatch> held;
    held.push_back(held_batch(1, 0, 994, 0));
    held.push_back(held_batch(2, 10, 5, 12));
    std::deque<HeldBatch>::iterator batch;
    std::string why;
    // Where each batch goes on.
    CHECK(fit_run(held, 1, 0, 994, batch, why) == RunFit::continues);
    CHECK(batch == held.begin());
    CHECK(fit_run(held, 2, 12, 3, batch, why) == RunFit::continues);
    CHECK(batch == held.begin() + 1);
    // The second half only: it would skip subtasks 0 to 496.
    CHECK(fit_run(held, 1, 497, 497, batch, why) == RunFit::wrong);
    CHECK_MESSAGE(why == "job 1's batch of subtasks 0 to 993 expects subtask 0 next", why);
    // A repeat of results already in, and a run past the batch's end.
    CHECK(fit_run(held, 2, 10, 1, batch, why) == RunFit::wrong);
    CHECK(fit_run(held, 2, 12, 4, batch, why) == RunFit::wrong);
    CHECK_MESSAGE(why == "the run goes past the end of job 2's batch of subtasks 10 to 14", why);
    // Of no batch held: a revoked copy's, or a job's that ended.
    CHECK(fit_run(held, 3, 0, 1, batch, why) == RunFit::stale);
    CHECK(fit_run(held, 2, 15, 1, batch, why) == RunFit::stale);
    CHECK(fit_run(held, 1, 994, 1, batch, why) == RunFit::stale);
    // A single retried while the batch it came from is held: the run at its index is its.
    held.push_back(held_batch(1, 3, 1, 3));
    held.front().next = 4;
    CHECK(fit_run(held, 1, 3, 1, batch, why) == RunFit::continues);
    CHECK(batch == held.begin() + 2);
    CHECK(fit_run(held, 1, 4, 990, batch, why) == RunFit::continues);
    CHECK(batch == held.begin());
}

TEST_CASE("Hostile.result_run_that_skips_part_of_its_batch_is_refused_and_the_job_ends_right" *
          doctest::timeout(120)) {
    // A worker by hand answers a batch of several subtasks with its second half only. It is
    // refused, naming the batch; the batch runs again on an honest worker and the job ends
    // with the right total.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    const std::string endpoint = tcp_endpoint(cluster);
    zmq::context_t context(1);
    RawPeer bad(context, endpoint, cluster.join_token());
    bad.send(
        message_of(hello_header(), {hello_body(Role::worker, 1, {registered("tests.squares")})}));
    bad.expect(Command::welcome);
    REQUIRE(cluster.wait_for_workers(1, 10s));
    constexpr std::uint64_t n = 3000;
    dtask::RunOptions options;
    options.backup_tasks = false;
    auto handle = cluster.submit(test_jobs::squares, n, options);
    std::optional<Inbound> answer;
    for (int batches = 0; batches < 200 && !answer; ++batches) {
        auto task = bad.next(10s);
        REQUIRE_MESSAGE(task.has_value(), "the worker by hand got no batch");
        if (task->command != Command::task)
            continue;
        const std::uint64_t job = task->fields[0];
        const std::uint64_t first = task->fields[1];
        const std::uint64_t count = task->fields[2];
        std::vector<std::string> partials;
        BatchReader reader(task->batch);
        std::span<const std::byte> record;
        while (reader.next(record, "task batch")) {
            const auto x = load_from<std::uint64_t>(record, "subtask");
            partials.push_back(encoded(x * x));
        }
        if (count == 1) {  // too small to skip part of: answered honestly
            bad.send(one_frame(batch_frame(Command::result, job, {first, 1, 1000}, partials)));
            continue;
        }
        const std::uint64_t half = count / 2;
        partials.erase(partials.begin(), partials.begin() + static_cast<std::ptrdiff_t>(half));
        bad.send(one_frame(
            batch_frame(Command::result, job, {first + half, count - half, 1000}, partials)));
        answer = bad.next(10s);
        REQUIRE_MESSAGE(answer.has_value(), "no answer to the run that skips subtasks");
        CHECK_MESSAGE(answer->command == Command::refuse,
                      "a " << command_name(answer->command) << " instead of a refuse");
        if (answer->command == Command::refuse) {
            const std::string why(as_text(answer->body[0]));
            CHECK_MESSAGE(
                contains(why,
                         "malformed message: results for subtasks " + std::to_string(first + half) +
                             " to " + std::to_string(first + count - 1) + ", but job " +
                             std::to_string(job) + "'s batch of subtasks " + std::to_string(first) +
                             " to " + std::to_string(first + count - 1) + " expects subtask " +
                             std::to_string(first) + " next"),
                why);
        }
    }
    REQUIRE_MESSAGE(answer.has_value(), "no batch of more than one subtask came");
    Process honest(self_executable(), {"--dtask-worker", endpoint}, {},
                   {"DTASK_TOKEN=" + cluster.join_token()});
    CHECK(get_within(handle, 30s) == test_jobs::serial_squares(n));
}

TEST_CASE("Hostile.a_failure_that_skips_part_of_its_batch_is_refused" * doctest::timeout(60)) {
    // A failure must be of the subtask its batch expects next: one further on would skip
    // the subtasks between.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    zmq::context_t context(1);
    HandPeers peers(context, cluster);
    peers.submit(peers.client, 1, 2);
    const std::uint64_t job = peers.next_task();
    Failure failure;
    failure.kind = FailureKind::transient;
    const std::string why =
        peers.worker.refusal_of(message_of(header(Command::failure, {job, 1}), {encoded(failure)}));
    CHECK_MESSAGE(
        contains(why, "malformed message: a failure of subtask 1, but job " + std::to_string(job) +
                          "'s batch of subtasks 0 to 1 expects subtask 0 next"),
        why);
}

// ---- the broker: indexes ----

TEST_CASE("Hostile.task_whose_indexes_wrap_is_refused" * doctest::timeout(60)) {
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    zmq::context_t context(1);
    HandPeers peers(context, cluster);
    JobSettings settings;
    peers.client.send(message_of(header(Command::submit, {1}),
                                 {"by-hand.echo", "by-hand-signature", "", encoded(settings)}));
    const std::string why = peers.client.refusal_of(
        one_frame(batch_frame(Command::task, 1, {last_index, 2}, {"a", "b"})));
    CHECK_MESSAGE(contains(why,
                           "malformed task message: first index 18446744073709551615 and "
                           "count 2 go past the last subtask index"),
                  why);
    // The worker was given nothing of it, and takes the next client's work.
    RawPeer other(context, tcp_endpoint(cluster), cluster.client_token());
    other.send(message_of(hello_header(), {hello_body(Role::client)}));
    other.expect(Command::welcome);
    peers.submit(other, 1);
    peers.next_task();
}

// ---- a hostile welcome ----

TEST_CASE("Hostile.worker_exits_on_a_welcome_out_of_range" * doctest::timeout(60)) {
    // A heartbeat interval of 2^63 ms would overflow the worker's clock arithmetic: the worker
    // says why and exits with the status of a refusal, instead of spinning.
    FakeBroker broker;
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    Process worker(self_executable(), {"--dtask-worker", broker.endpoint()}, log,
                   broker.worker_environment());
    broker.expect(Command::hello);
    broker.send(broker.peer(),
                message_of(header(Command::welcome, {std::uint64_t{1} << 63, 3, 0, 1})));
    const auto status = worker.wait_exit(30s);
    REQUIRE_MESSAGE(status.has_value(), "the worker took the welcome: " << read_file(log));
    CHECK_MESSAGE((WIFEXITED(*status) && WEXITSTATUS(*status) == 3), "wait status " << *status);
    const std::string said = read_file(log);
    CHECK_MESSAGE(contains(said,
                           "sent a welcome this worker cannot take: malformed welcome "
                           "message: heartbeat interval (ms) 9223372036854775808 is out "
                           "of range (1 to 3600000)"),
                  said);
}

TEST_CASE("Hostile.client_fails_its_jobs_on_a_welcome_out_of_range" * doctest::timeout(60)) {
    FakeBroker broker;
    dtask::Client client(broker.endpoint(), broker.client_options());
    auto handle = client.submit(test_jobs::squares, std::uint64_t{10});
    broker.expect(Command::hello);
    broker.send(broker.peer(), message_of(header(Command::welcome, {250, 1'000'000, 0, 1})));
    const std::string what = error_of<dtask::TransportError>(handle, 30s).what();
    CHECK_MESSAGE(contains(what, "the broker at " + broker.endpoint() +
                                     " sent a welcome this client cannot take: malformed welcome "
                                     "message: heartbeat liveness 1000000 is out of range"),
                  what);
}

// ---- what a client is believed, and what it hears ----

TEST_CASE("Hostile.same_process_is_believed_only_over_inproc" * doctest::timeout(60)) {
    // A client over TCP that claims to be in the broker's process, with the broker's very pid,
    // is a client like any other: the same answer as with another pid (a status after the
    // welcome), so that trying pids finds nothing, and it is dropped for silence like others.
    auto options = cluster_for_peers_by_hand();
    options.insecure_tcp = true;  // its peers are the owner's: still not in its process
    dtask::Cluster cluster(options);
    zmq::context_t context(1);
    for (const std::int64_t pid : {std::int64_t{getpid()}, std::int64_t{getpid()} + 1}) {
        RawPeer client(context, tcp_endpoint(cluster));
        Hello hello;
        hello.role = Role::client;
        hello.name = "by-hand:1";
        hello.platform = platform();
        hello.pid = pid;
        hello.same_process = true;
        client.send(message_of(hello_header(), {encoded(hello)}));
        client.expect(Command::welcome);
        CAPTURE(pid);
        client.expect(Command::status);
    }
}

TEST_CASE("Hostile.a_client_names_only_jobs_it_submitted" * doctest::timeout(60)) {
    // Client B sends end, then task, for job 1, which only client A submitted: B is refused,
    // naming the job, and A's job goes on.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    zmq::context_t context(1);
    HandPeers peers(context, cluster);
    JobSettings settings;
    peers.client.send(message_of(header(Command::submit, {1}),
                                 {"by-hand.echo", "by-hand-signature", "", encoded(settings)}));
    for (const Command command : {Command::end, Command::task}) {
        RawPeer other(context, tcp_endpoint(cluster), cluster.client_token());
        other.send(message_of(hello_header(), {hello_body(Role::client)}));
        other.expect(Command::welcome);
        other.expect(Command::status);
        std::vector<zmq::message_t> message;
        if (command == Command::end)
            message = message_of(header(Command::end, {1}));
        else
            message = one_frame(batch_frame(Command::task, 1, {0, 1}, {"subtask"}));
        const std::string why = other.refusal_of(std::move(message));
        CHECK_MESSAGE(contains(why, "malformed message: a " + std::string(command_name(command)) +
                                        " for job 1, which this client never submitted"),
                      why);
    }
    peers.client.send(one_frame(batch_frame(Command::task, 1, {0, 1}, {"subtask"})));
    peers.next_task();
}

TEST_CASE("Hostile.a_notice_to_a_client_from_elsewhere_names_no_worker" * doctest::timeout(60)) {
    // A worker built with another definition of the job: the client (admitted with the
    // client token) hears that its job is not served, not the worker's host:pid nor its
    // definition.
    dtask::Cluster cluster(cluster_for_peers_by_hand());
    zmq::context_t context(1);
    RawPeer worker(context, tcp_endpoint(cluster), cluster.join_token());
    Hello hello;
    hello.role = Role::worker;
    hello.name = "secret-host:4242";
    hello.platform = platform();
    hello.credits = 1;
    hello.jobs = {{"by-hand.echo", "the worker's own definition"}};
    worker.send(message_of(hello_header(), {encoded(hello)}));
    worker.expect(Command::welcome);
    RawPeer client(context, tcp_endpoint(cluster), cluster.client_token());
    client.send(message_of(hello_header(), {hello_body(Role::client)}));
    client.expect(Command::welcome);
    client.expect(Command::status);
    JobSettings settings;
    client.send(message_of(header(Command::submit, {1}),
                           {"by-hand.echo", "by-hand-signature", "", encoded(settings)}));
    const auto notice = client.expect(Command::notice);
    const std::string text(as_text(notice.body[0]));
    CHECK_MESSAGE(contains(text, "different definition of job 'by-hand.echo'"), text);
    CHECK_MESSAGE(!contains(text, "secret-host"), text);
    CHECK_MESSAGE(!contains(text, "the worker's own definition"), text);
}
