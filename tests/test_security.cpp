// Who may join a cluster over TCP: holders of its tokens, each in its own role; what crosses
// the network is encrypted; a refused peer is told why and does not retry for ever.

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <zmq.hpp>

#include "jobs.hpp"
#include "raw_peers.hpp"
#include "recording_proxy.hpp"
#include "security/handshake_watch.hpp"
#include "security/join_token.hpp"
#include "support.hpp"
#include "temp_dir.hpp"

using namespace test_support;
using namespace test_jobs;
using namespace std::chrono_literals;
using dtask::detail::TokenRole;
using dtask::detail::protocol::Command;
using dtask::detail::protocol::Role;

namespace {

dtask::ClusterOptions listening(int local_workers = 0) {
    auto options = small_cluster(local_workers);
    options.listen.push_back("tcp://127.0.0.1:*");
    return options;
}

std::uint16_t port_of(const std::string& endpoint) {
    return static_cast<std::uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
}

/// A token of `role` for `cluster`'s broker key, but with a credential the cluster never
/// issued: what a peer that guessed the broker's public key would hold.
std::string forged_token(const dtask::Cluster& cluster, TokenRole role) {
    const auto real = dtask::detail::parse_join_token(cluster.join_token());
    return dtask::detail::new_join_token(role, real.broker_public_key).text();
}

/// Runs this binary as a worker of `endpoint` with `environment`; its exit status (must
/// exit within 60 s) and what it logged.
std::pair<int, std::string> worker_outcome(const std::string& endpoint,
                                           const std::vector<std::string>& environment) {
    TempDir logs;
    const std::string log = logs.path() + "/worker.log";
    Process worker(self_executable(), {"--dtask-worker", endpoint}, log, environment);
    const auto status = worker.wait_exit(60s);
    REQUIRE_MESSAGE(status.has_value(), "the worker did not exit: " << read_file(log));
    REQUIRE(WIFEXITED(*status));
    return {WEXITSTATUS(*status), read_file(log)};
}

/// The error a job submitted through a Client with `options` fails with.
std::string client_failure(const std::string& endpoint, dtask::ClientOptions options) {
    dtask::Client client(endpoint, options);
    auto handle = client.submit(squares, std::uint64_t{10});
    return error_of<dtask::TransportError>(handle).what();
}

}  // namespace

TEST_CASE("Security.tcp_traffic_carries_no_plaintext_of_the_jobs" * doctest::timeout(120)) {
    // A remote worker reaches the cluster through a relay that records every byte. Its
    // subtasks and results all carry a marker: encrypted, the marker never shows; with plain
    // TCP (the control, which shows the recording would catch it) it does.
    for (const bool insecure : {false, true}) {
        CAPTURE(insecure);
        auto options = listening();
        options.insecure_tcp = insecure;
        dtask::Cluster cluster(options);
        RecordingProxy proxy(port_of(cluster.endpoints().back()));
        Process worker(self_executable(), {"--dtask-worker", proxy.endpoint()}, {},
                       insecure ? std::vector<std::string>{"DTASK_INSECURE_TCP=1"}
                                : worker_environment(cluster));
        REQUIRE(cluster.wait_for_workers(1, 30s));
        const std::string all = run_within(cluster, marked, std::uint64_t{50});
        CHECK(contains(all, std::string(marker) + "-49;"));
        const std::string recorded = proxy.recorded();
        CHECK(recorded.size() > 1000);
        CHECK(contains(recorded, marker) == insecure);
        CHECK(contains(recorded, "tests.marked") == insecure);  // the job's name too
    }
}

TEST_CASE("Security.workers_without_a_valid_token_are_refused_with_the_reason" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(listening());
    dtask::Cluster other(listening());
    const std::string endpoint = cluster.endpoints().back();
    SUBCASE("no token: a usage error, before any connection") {
        const auto [status, said_] = worker_outcome(endpoint, {});
        const std::string said = said_;
        CHECK(status == 2);
        CHECK_MESSAGE(contains(said, "needs a join token: set DTASK_TOKEN"), said);
    }
    SUBCASE("a damaged token") {
        const auto [status, said_] =
            worker_outcome(endpoint, {"DTASK_TOKEN=" + cluster.join_token().substr(0, 100)});
        const std::string said = said_;
        CHECK(status == 2);
        CHECK_MESSAGE(contains(said, "the join token is damaged"), said);
        CHECK_MESSAGE(!contains(said, cluster.join_token().substr(80, 20)), said);  // no secret
    }
    SUBCASE("a token file without end: read 1 KiB of it, no more") {
        const auto [status, said_] = worker_outcome(endpoint, {"DTASK_TOKEN_FILE=/dev/zero"});
        const std::string said = said_;
        CHECK(status == 2);
        CHECK_MESSAGE(contains(said, "not a dtask join token"), said);
    }
    SUBCASE("another cluster's token: the broker's key does not match") {
        const auto [status, said_] =
            worker_outcome(endpoint, {"DTASK_TOKEN=" + other.join_token()});
        const std::string said = said_;
        CHECK(status == 3);
        CHECK_MESSAGE(contains(said, "belongs to another broker"), said);
    }
    SUBCASE("a credential the cluster never issued") {
        const auto [status, said_] =
            worker_outcome(endpoint, {"DTASK_TOKEN=" + forged_token(cluster, TokenRole::worker)});
        const std::string said = said_;
        CHECK(status == 3);
        CHECK_MESSAGE(contains(said, "refused the join token (status 400)"), said);
    }
    SUBCASE("the client token, which cannot serve") {
        const auto [status, said_] =
            worker_outcome(endpoint, {"DTASK_TOKEN=" + cluster.client_token()});
        const std::string said = said_;
        CHECK(status == 3);
        CHECK_MESSAGE(contains(said, "its join token is a client's: it cannot serve as a worker"),
                      said);
    }
    CHECK(cluster.workers() == 0);
}

TEST_CASE("Security.clients_without_a_valid_token_are_refused_with_the_reason" *
          doctest::timeout(120)) {
    dtask::Cluster cluster(listening(1));
    dtask::Cluster other(listening(0));
    const std::string endpoint = cluster.endpoints().back();
    dtask::ClientOptions options;
    SUBCASE("no token") {
        CHECK_THROWS_WITH_AS(dtask::Client(endpoint, options),
                             doctest::Contains("needs a client token"), dtask::Error);
    }
    SUBCASE("another cluster's token") {
        options.token = other.client_token();
        CHECK_MESSAGE(contains(client_failure(endpoint, options), "belongs to another broker"), "");
    }
    SUBCASE("a credential the cluster never issued") {
        options.token = forged_token(cluster, TokenRole::client);
        const auto what = client_failure(endpoint, options);
        CHECK_MESSAGE(contains(what, "refused the join token (status 400)"), what);
    }
    SUBCASE("the worker token, which cannot submit") {
        options.token = cluster.join_token();
        const auto what = client_failure(endpoint, options);
        CHECK_MESSAGE(contains(what, "its join token is a worker's: it cannot submit jobs"), what);
    }
    SUBCASE("the client token: admitted") {
        options.token = cluster.client_token();
        dtask::Client client(endpoint, options);
        CHECK(run_within(client, squares, std::uint64_t{100}) == serial_squares(100));
    }
}

TEST_CASE("Security.a_peer_without_a_credential_gets_no_message_through" * doctest::timeout(60)) {
    // Plain ZeroMQ and a forged key fail at the handshake, which the peer's own monitor
    // reports: ZeroMQ passes no message of a connection whose handshake failed. A peer with
    // the token, on the same endpoint, is then welcomed: nothing of the broker was harmed.
    dtask::Cluster cluster(listening());
    const std::string endpoint = cluster.endpoints().back();
    zmq::context_t context(1);
    auto first_failure = [&](zmq::socket_t& socket) {
        dtask::detail::HandshakeWatch watch(context, socket, endpoint);
        socket.connect(endpoint);
        (void)socket.send(dtask::detail::protocol::hello_header(), zmq::send_flags::dontwait);
        const auto give_up = std::chrono::steady_clock::now() + 30s;
        for (;;) {
            if (auto why = watch.failure())
                return *why;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                give_up - std::chrono::steady_clock::now());
            if (left.count() <= 0)
                return std::string("no failure reported");
            poll_readable(watch.fd(), left);
        }
    };
    zmq::socket_t plain(context, zmq::socket_type::dealer);
    plain.set(zmq::sockopt::linger, 0);
    // Which side notices the mismatch first is a race: either answer is a refusal.
    const std::string why = first_failure(plain);
    CHECK_MESSAGE((contains(why, "speaks another security mechanism") ||
                   contains(why, "cut the secure handshake 3 times")),
                  why);
    zmq::socket_t forged(context, zmq::socket_type::dealer);
    forged.set(zmq::sockopt::linger, 0);
    dtask::detail::use_token(
        forged, dtask::detail::parse_join_token(forged_token(cluster, TokenRole::worker)));
    CHECK(contains(first_failure(forged), "refused the join token"));
    RawPeer admitted(context, endpoint, cluster.join_token());
    admitted.send(
        message_of(dtask::detail::protocol::hello_header(), {hello_body(Role::worker, 1)}));
    admitted.expect(Command::welcome);
    CHECK(cluster.workers() == 1);
}

TEST_CASE("Security.the_host_logs_refused_connections_once_per_address" * doctest::timeout(60)) {
    // Three connections from 127.0.0.1 with a forged credential: each is refused (its own
    // monitor says so), and the host's log names the address once.
    Process host(examples_directory() + "/sum_squares",
                 {"--listen", "tcp://127.0.0.1:*", "--workers", "0", "--wait", "60"}, "|&");
    std::string command;
    while (auto line = host.read_line(30s)) {
        if (contains(*line, "--dtask-worker ")) {
            command = *line;
            break;
        }
    }
    REQUIRE_MESSAGE(!command.empty(), "the host printed no worker command");
    const auto start = command.find("DTASK_TOKEN=") + 12;
    const std::string token = command.substr(start, command.find(' ', start) - start);
    const std::string endpoint = command.substr(command.rfind(' ') + 1);
    const auto real = dtask::detail::parse_join_token(token);
    zmq::context_t context(1);
    for (int i = 0; i < 3; ++i) {
        zmq::socket_t forged(context, zmq::socket_type::dealer);
        forged.set(zmq::sockopt::linger, 0);
        dtask::detail::use_token(
            forged, dtask::detail::new_join_token(TokenRole::worker, real.broker_public_key));
        dtask::detail::HandshakeWatch watch(context, forged, endpoint);
        forged.connect(endpoint);
        std::optional<std::string> why;
        const auto give_up = std::chrono::steady_clock::now() + 20s;
        while (!(why = watch.failure()) && std::chrono::steady_clock::now() < give_up)
            poll_readable(watch.fd(), 1s);
        REQUIRE(why.has_value());
        CHECK(contains(*why, "refused the join token (status 400)"));
    }
    host.signal(SIGTERM);
    std::string log;
    while (auto line = host.read_line(30s))
        log += *line + "\n";
    std::size_t refusals = 0;
    for (std::size_t at = 0;
         (at = log.find("refused a connection from 127.0.0.1", at)) != std::string::npos; ++at)
        ++refusals;
    CHECK_MESSAGE(refusals == 1, log);
}
