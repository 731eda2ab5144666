// Broker restarts: the grace policy and the kept batches without sockets; then dtaskd killed
// and started again under running jobs, a broker that never comes back, and a broker that
// forgot a client without restarting.

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include "client/broker_restart.hpp"
#include "client/kept_batches.hpp"
#include "dtaskd.hpp"
#include "jobs.hpp"
#include "raw_peers.hpp"
#include "support.hpp"
#include "wire/protocol.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;
using dtask::detail::BrokerRestart;
using dtask::detail::KeptBatches;
using Welcome = BrokerRestart::Welcome;

namespace {

const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);

zmq::message_t frame_of(const std::string& text) {
    return zmq::message_t(text.data(), text.size());
}

std::vector<std::string> frames_out(KeptBatches& kept) {
    std::vector<std::string> out;
    kept.for_each_out([&](zmq::message_t& frame) { out.push_back(frame.to_string()); });
    return out;
}

}  // namespace

TEST_CASE("BrokerRestart.no_grace_or_no_broker_ever_met_fails_at_once" * doctest::timeout(10)) {
    BrokerRestart none(0ms);
    CHECK(none.welcomed(7, t0) == Welcome::carry_on);
    CHECK_FALSE(none.lost(t0 + 1s));
    CHECK_FALSE(none.waiting());

    // Never welcomed: the endpoint may be wrong, and no job would wait a minute for it.
    BrokerRestart never(60s);
    CHECK_FALSE(never.lost(t0));
    CHECK_FALSE(never.waiting());
}

TEST_CASE("BrokerRestart.a_new_incarnation_resumes_the_same_one_forgot_the_client" *
          doctest::timeout(10)) {
    BrokerRestart restart(60s);
    CHECK(restart.welcomed(7, t0) == Welcome::carry_on);
    CHECK(restart.lost(t0 + 1s));
    CHECK(restart.waiting());
    CHECK(restart.lost(t0 + 2s));  // silent again while waiting: still waiting
    CHECK(restart.welcomed(8, t0 + 3s) == Welcome::resume);
    CHECK_FALSE(restart.waiting());
    CHECK(restart.resumed());
    restart.heard();
    CHECK_FALSE(restart.resumed());

    // The same broker, dropped this client: its jobs are gone, not paused.
    CHECK(restart.lost(t0 + 10s));
    CHECK(restart.welcomed(8, t0 + 11s) == Welcome::forgotten);
    CHECK_FALSE(restart.waiting());
    // A welcome not after a loss changes nothing for the jobs.
    CHECK(restart.welcomed(9, t0 + 12s) == Welcome::carry_on);
}

TEST_CASE("BrokerRestart.past_the_grace_the_wait_ends_saying_how_long" * doctest::timeout(10)) {
    BrokerRestart restart(5s);
    restart.welcomed(1, t0);
    CHECK(restart.lost(t0 + 1s));
    CHECK_FALSE(restart.expired(t0 + 5999ms).has_value());
    const auto waited = restart.expired(t0 + 6500ms);
    REQUIRE(waited.has_value());
    CHECK(*waited == 5500ms);
    CHECK_FALSE(restart.waiting());
    CHECK_FALSE(restart.expired(t0 + 7s).has_value());  // once
    // The next loss is a new wait, of a whole grace period.
    CHECK(restart.lost(t0 + 20s));
    CHECK_FALSE(restart.expired(t0 + 24s).has_value());
    CHECK(restart.expired(t0 + 25s) == 5s);
}

TEST_CASE("BrokerRestart.a_broker_that_keeps_vanishing_without_a_result_uses_one_grace" *
          doctest::timeout(10)) {
    // Each return, with no result before the next loss, goes on with the same wait: a broker
    // that comes back and vanishes for ever cannot keep the jobs waiting for ever.
    BrokerRestart restart(10s);
    restart.welcomed(1, t0);
    std::uint64_t incarnation = 2;
    auto now = t0 + 1s;
    CHECK(restart.lost(now));
    for (int i = 0; i < 3; ++i) {
        now += 2s;
        CHECK(restart.welcomed(incarnation++, now) == Welcome::resume);
        now += 1s;
        CHECK(restart.lost(now));
        CHECK_FALSE(restart.expired(now).has_value());
    }
    CHECK(restart.expired(t0 + 11s) == 10s);

    // A result after the return ends the wait for good: the next loss waits a whole grace.
    BrokerRestart healed(10s);
    healed.welcomed(1, t0);
    CHECK(healed.lost(t0 + 1s));
    CHECK(healed.welcomed(2, t0 + 2s) == Welcome::resume);
    healed.heard();
    CHECK(healed.lost(t0 + 9s));
    CHECK_FALSE(healed.expired(t0 + 18s).has_value());
    CHECK(healed.expired(t0 + 19s) == 10s);

    // So does a session that held for a grace period, even without a result (long subtasks).
    BrokerRestart held(10s);
    held.welcomed(1, t0);
    CHECK(held.lost(t0 + 1s));
    CHECK(held.welcomed(2, t0 + 2s) == Welcome::resume);
    CHECK(held.lost(t0 + 12s));
    CHECK_FALSE(held.expired(t0 + 21s).has_value());
    CHECK(held.expired(t0 + 22s) == 10s);
}

TEST_CASE("KeptBatches.keeps_what_is_out_and_lets_go_what_came_back" * doctest::timeout(10)) {
    KeptBatches kept;
    kept.keep(0, 4, 0, frame_of("a"));
    kept.keep(4, 2, 0, frame_of("b"));
    kept.keep(6, 3, 0, frame_of("c"));
    CHECK(frames_out(kept) == std::vector<std::string>{"a", "b", "c"});
    kept.returned(4, 2);  // b back whole, behind a
    CHECK(frames_out(kept) == std::vector<std::string>{"a", "c"});
    kept.returned(0, 3);  // part of a
    CHECK(frames_out(kept) == std::vector<std::string>{"a", "c"});
    kept.returned(3, 1);
    CHECK(frames_out(kept) == std::vector<std::string>{"c"});
    CHECK(kept.out() == 1);
    // A run the client never sent, or more results than a batch holds, change nothing else.
    kept.returned(100, 5);
    kept.returned(6, 50);
    CHECK(kept.out() == 0);
    CHECK(frames_out(kept).empty());
}

TEST_CASE("KeptBatches.those_back_behind_a_slow_batch_do_not_pile_up" * doctest::timeout(10)) {
    // Arrival order: batch 0 stays out while 10,000 after it come back, one at a time.
    KeptBatches kept;
    kept.keep(0, 1, 0, frame_of("slow"));
    std::size_t most = 0;
    for (std::uint64_t i = 1; i <= 10'000; ++i) {
        kept.keep(i, 1, 0, frame_of("x"));
        kept.returned(i, 1);
        most = std::max(most, kept.places());
    }
    CHECK(kept.out() == 1);
    CHECK(most <= 200);
    CHECK(frames_out(kept) == std::vector<std::string>{"slow"});
    kept.returned(0, 1);
    CHECK(kept.out() == 0);
    CHECK(kept.places() == 0);
}

namespace {

/// A client process of restart_client and what it said.
struct StagedClient {
    Process process;
    std::string said;
    std::string end;  // its "result ..." or "error ..." line
};

/// How many times `part` is in `text`.
std::size_t count_of(const std::string& text, const std::string& part) {
    std::size_t count = 0;
    for (auto at = text.find(part); at != std::string::npos; at = text.find(part, at + 1))
        ++count;
    return count;
}

/// Reads the clients' lines until `done(client)` holds for each; false if it did not within
/// the deadline, or a client ended first.
template <class Done>
bool all_until(std::vector<StagedClient>& clients, Done done,
               std::chrono::steady_clock::time_point deadline) {
    for (auto& client : clients) {
        while (!done(client)) {
            if (!client.end.empty())
                return false;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            const auto next = client.process.read_line(std::max(left, 1ms));
            if (!next)
                return false;
            client.said += *next + "\n";
            if (next->starts_with("result ") || next->starts_with("error "))
                client.end = *next;
        }
    }
    return true;
}

/// The next `command` the broker receives, past the others (what an old connection still
/// had on the way); fails if none comes within 10 s.
dtask::detail::protocol::Inbound next_of(FakeBroker& broker,
                                         dtask::detail::protocol::Command command) {
    for (;;) {
        auto message = broker.next(10s);
        REQUIRE_MESSAGE(message.has_value(),
                        "no " << dtask::detail::protocol::command_name(command));
        if (message->command == command)
            return std::move(*message);
    }
}

/// The next message from `peer`, which must be a `command`: what an old connection still had
/// on the way may arrive after the new one's first messages, and is passed over.
dtask::detail::protocol::Inbound next_from(FakeBroker& broker, const std::string& peer,
                                           dtask::detail::protocol::Command command) {
    for (;;) {
        auto message = broker.next(10s);
        if (!message || broker.peer() == peer)
            return expected(std::move(message), command);
    }
}

}  // namespace

namespace {

/// The restart scenario: two restart_client workers and `client_count` restart_client clients
/// of `subtasks` subtasks each, on the broker at `endpoint`. Each client's split waits at a gate
/// before each quarter of its subtasks; once every client is at a gate (what it split off
/// before is out, or back and not yet folded, and it is back with the broker started after the
/// last restart), the first `restarts` gates call `restart()` before they are opened. Checks that
/// each client ends with the exact text "0,1,...,": each subtask folded once, in order, and the
/// last progress report said all were done, having seen each restart.
template <class Restart>
void staged_restarts(const std::string& endpoint, const std::vector<std::string>& worker_env,
                     const std::vector<std::string>& client_env, int client_count,
                     const std::string& subtasks, int restarts, Restart restart) {
    TempDir gates("restart-gates");
    const std::string program = helpers_directory() + "/restart_client";
    std::vector<Process> workers;
    for (int i = 0; i < 2; ++i)
        workers.emplace_back(program, std::vector<std::string>{"--dtask-worker", endpoint}, "",
                             worker_env);
    std::vector<StagedClient> clients;
    for (int i = 0; i < client_count; ++i) {
        clients.push_back(StagedClient{
            Process(program, {endpoint, subtasks, gates.path(), "60000"}, "|&", client_env),
            {},
            {}});
    }
    const auto said = [&] {
        std::string text;
        for (const auto& client : clients)
            text += "--- a client said:\n" + client.said;
        return text;
    };
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    for (int stage = 1; stage < 4; ++stage) {
        const std::string gate = "gate " + std::to_string(stage) + "\n";
        REQUIRE_MESSAGE(all_until(
                            clients,
                            [&](const StagedClient& client) {
                                return contains(client.said, gate) &&
                                       count_of(client.said, "is back (it restarted)") + 1 >=
                                           static_cast<std::size_t>(std::min(stage, restarts + 1));
                            },
                            deadline),
                        said());
        if (stage <= restarts)
            restart();
        std::ofstream(gates.path() + "/stage-" + std::to_string(stage)) << "open\n";
    }
    CHECK_MESSAGE(
        all_until(
            clients, [](const StagedClient& client) { return !client.end.empty(); }, deadline),
        said());
    for (auto& client : clients) {
        CHECK_MESSAGE(client.end == "result exact", said());
        CHECK_MESSAGE(
            count_of(client.said, "is back (it restarted)") == static_cast<std::size_t>(restarts),
            said());
        const auto status = client.process.wait_exit(30s);
        REQUIRE(status.has_value());
        CHECK(WEXITSTATUS(*status) == 0);
    }
}

/// A host_that_waits with a listen endpoint (tests/helpers), and what it printed.
struct ListeningHost {
    Process process;
    std::string endpoint;
    std::string join_token;
    std::string client_token;

    /// Starts one on `endpoint` ("" for a free port) with its keys in `keys`.
    ListeningHost(const TempDir& keys, const std::string& endpoint_wanted)
        : process(helpers_directory() + "/host_that_waits",
                  endpoint_wanted.empty()
                      ? std::vector<std::string>{"--listen", keys.path()}
                      : std::vector<std::string>{"--listen", keys.path(), endpoint_wanted},
                  "|") {
        for (std::string* line : {&endpoint, &join_token, &client_token}) {
            auto read = process.read_line(30s);
            REQUIRE_MESSAGE(read.has_value(), "the host did not start");
            *line = *read;
        }
    }
};

}  // namespace

TEST_CASE("BrokerRestart.dtaskd_killed_three_times_under_three_clients_loses_nothing" *
          doctest::timeout(170)) {
    // At each gate the test kills dtaskd and starts it again on the same endpoint with the
    // same keys.
    TempDir keys("dtaskd-keys");
    auto broker =
        std::make_unique<Dtaskd>(std::vector<std::string>{}, "tcp://127.0.0.1:*", keys.path());
    const std::string endpoint = broker->endpoint();
    staged_restarts(
        endpoint, broker->worker_environment(), broker->client_environment(), 3, "800", 3, [&] {
            broker->process().signal(SIGKILL);
            REQUIRE(broker->process().wait_exit(10s).has_value());
            broker = std::make_unique<Dtaskd>(std::vector<std::string>{}, endpoint, keys.path());
        });
}

TEST_CASE("BrokerRestart.a_listen_host_killed_twice_under_two_remote_clients_loses_nothing" *
          doctest::timeout(170)) {
    // As with dtaskd above, but the broker is a Cluster's, in a host with a listen endpoint
    // whose keys stay in a directory: the remote clients and workers take the next host on
    // the same endpoint for the same broker, restarted.
    TempDir keys;
    auto host = std::make_unique<ListeningHost>(keys, "");
    const std::string endpoint = host->endpoint;
    staged_restarts(endpoint, {"DTASK_TOKEN=" + host->join_token},
                    {"DTASK_TOKEN=" + host->client_token}, 2, "600", 2, [&] {
                        host->process.kill_and_reap();
                        const std::string client_token = host->client_token;
                        host = std::make_unique<ListeningHost>(keys, endpoint);
                        REQUIRE(host->client_token == client_token);  // the keys directory kept it
                    });
}

TEST_CASE("BrokerRestart.past_the_grace_a_job_fails_saying_how_long_it_waited" *
          doctest::timeout(120)) {
    auto broker = std::make_unique<Dtaskd>();
    Process worker(self_executable(), {"--dtask-worker", broker->endpoint()}, {},
                   broker->worker_environment());
    dtask::ClientOptions options = broker->client_options();
    options.broker_restart_grace = 1500ms;
    dtask::Client client(broker->endpoint(), options);
    REQUIRE(client.wait_for_workers(1, 30s));
    auto handle = client.submit(busy, Busy{1'000'000, 1000});
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (handle.progress().done == 0 && std::chrono::steady_clock::now() < deadline)
        REQUIRE_FALSE(handle.wait_for(10ms));
    REQUIRE(handle.progress().done > 0);
    broker->process().signal(SIGKILL);
    REQUIRE(broker->process().wait_exit(10s).has_value());
    REQUIRE(handle.wait_for(60s));
    std::string message;
    try {
        handle.get();
    } catch (const dtask::TransportError& e) {
        message = e.what();
    }
    REQUIRE_MESSAGE(contains(message,
                             "ms for it to come back, in vain (the grace period, "
                             "ClientOptions::broker_restart_grace, is 1500 ms)"),
                    message);
    const auto at = message.find("; waited ");
    REQUIRE(at != std::string::npos);
    CHECK(std::stoll(message.substr(at + 9)) >= 1500);
    CHECK_MESSAGE(contains(message, "job 'tests.busy': lost contact with the broker at " +
                                        broker->endpoint()),
                  message);
}

TEST_CASE("BrokerRestart.a_broker_that_forgot_the_client_without_restarting_fails_its_jobs" *
          doctest::timeout(60)) {
    using namespace dtask::detail::protocol;
    for (const std::uint64_t second : {std::uint64_t{7}, std::uint64_t{8}}) {
        CAPTURE(second);
        FakeBroker broker;
        dtask::Client client(broker.endpoint(), broker.client_options());
        broker.expect(Command::hello);
        // Heartbeats every 250 ms, and 1000 of them missed before silence counts.
        broker.send(broker.peer(), message_of(header(Command::welcome, {250, 1000, 0, 7})));
        auto handle = client.submit(squares, std::uint64_t{3});
        CHECK(broker.expect(Command::submit).fields[0] == 1);
        const std::string first_peer = broker.peer();
        broker.expect(Command::task);
        broker.send(first_peer, message_of(header(Command::reconnect)));
        next_of(broker, Command::hello);
        const std::string second_peer = broker.peer();
        CHECK(second_peer != first_peer);  // a new connection
        broker.send(second_peer, message_of(header(Command::welcome, {250, 1000, 0, second})));
        if (second == 7) {
            // The same broker: it dropped the client, and the job with it.
            REQUIRE(handle.wait_for(30s));
            CHECK_THROWS_WITH_AS(handle.get(),
                                 doctest::Contains("no longer knew this client: it did not "
                                                   "restart (the same broker welcomed it "
                                                   "again), but dropped this client"),
                                 dtask::TransportError);
        } else {
            // Another: the job is registered again, under its id, with what was out.
            CHECK(next_from(broker, second_peer, Command::submit).fields[0] == 1);
            const auto task = next_from(broker, second_peer, Command::task);
            CHECK(task.fields[0] == 1);
            CHECK(task.fields[1] == 0);
            handle.cancel();
        }
    }
}
